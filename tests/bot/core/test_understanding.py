"""Questions as users type them, through the lexical engine and the dialogue core.

Each test is one mechanism (normalisation, focus on the asking clause, region by terms,
composed answers, "did you mean", places the manuals do not cover), with phrasings written
for the test, not taken from the corpora.
"""

from __future__ import annotations

from bot.core.answering import answer_question
from bot.core.events import ButtonPress
from nlu.cues import Comparison, default_cues
from nlu.normalize import default_normalizer
from tests.auxil.chat import Walk


def ask(retriever, lexical, text, region=None):
    return answer_question(text, retriever, region=region, nlu=lexical.parse_sync(text), strategy="lexical")


def test_spelling_is_brought_to_the_manuals():
    spell = default_normalizer().spell
    assert spell("電子口岸卡怎麼辦") == "电子口岸卡怎么办"  # traditional characters
    assert spell("宝鸡能办电子口暗卡吗") == "宝鸡能办电子口岸卡吗"  # a homophone
    assert spell("营业执招要盖章吗") == "营业执照要盖章吗"
    assert spell("账号末激活") == "账号未激活"  # a look-alike character
    assert spell("单一窗户怎么注册") == "单一窗口怎么注册"  # one character wrong in a long term
    assert spell("ＫＪＤＳ００１") == "kjds-001"  # full width, and the dash
    assert spell("dyck账号") == "单一窗口账号"  # pinyin initials
    # Right words are never changed, though one character away from a term.
    assert spell("海关编码是多少") == "海关编码是多少"
    assert spell("e-port card in english") == "e-port card in english"


def test_padding_is_removed_for_the_search_only(lexical):
    u = lexical.parse_sync("你好")
    assert u.intent == "greet"  # "你好" is a greeting, not filler, when it is all there is
    u = lexical.parse_sync("麻烦问下哈，这个委拖书有没有固定格式呀")
    assert u.query.startswith("这个委托书") and "麻烦" not in u.query


def test_a_story_before_the_question_does_not_hide_it(retriever, lexical):
    a = ask(
        retriever,
        lexical,
        "我们是咸阳一家做家居用品的新公司，老板让我负责这块，刚接手什么都不太懂，想先办电子口岸卡，要带哪些材料去建行",
    )
    assert not a.fallback and "授权委托书" in a.text


def test_common_words_of_a_story_count_less_and_do_not_ask(retriever, lexical):
    # "没多久" says the company is new, it asks no duration; 老板, 负责, 不懂 are the story.
    a = ask(
        retriever,
        lexical,
        "您好，我们公司刚成立没多久，老板让我负责这一块，我啥也不懂，想问下陕西单一窗口注册的时候用户类型选哪个",
    )
    assert not a.fallback and "法人及其他组织用户" in a.text


def test_spelling_keeps_words_whole():
    spell = default_normalizer().spell
    # No correction to a piece of a term (区主管海关 is 关区 + 主管海关 cut in the middle).
    assert spell("系统备案填主管海关选哪个") == "系统备案填主管海关选哪个"
    assert spell("我们那边审批通过了") == "我们那边审批通过了"


def test_two_character_homophones_need_the_same_tones():
    spell = default_normalizer().spell
    assert spell("企业类型备按") == "企业类型备案"
    assert spell("铜穿有网点吗") == "铜川有网点吗"
    # Same syllables in other tones, or a particle: what the user wrote.
    assert spell("办ukey还是ic卡好") == "办ukey还是ic卡好"
    assert spell("两个代码各是多少") == "两个代码各是多少"
    assert spell("代码带吗") == "代码带吗"


def test_terms_of_one_manual_decide_the_region(retriever, lexical):
    a = ask(retriever, lexical, "总署统一版接入那几份材料交到哪", region="shaanxi")
    assert not a.fallback and a.regions == ("zhuhai",) and "【珠海】" in a.text


def test_the_other_manual_answers_when_the_remembered_one_cannot(retriever, lexical):
    a = ask(retriever, lexical, "身份证复印件空白的地方要写句什么话", region="zhuhai")
    assert not a.fallback and a.regions == ("shaanxi",) and "同意使用本人信息" in a.text and "陕西手册" in a.text


def test_what_next_follows_the_procedure(retriever, lexical):
    a = ask(retriever, lexical, "我们海关注册登记已经弄好啦，接下来要干嘛", region="shaanxi")
    assert a.text.startswith("下一步是第 3/5 步「电子口岸制卡」")
    assert "来源：陕西手册 2.3" in a.text


def test_what_next_inside_a_chain_of_the_manual(retriever, lexical):
    a = ask(retriever, lexical, "线下身份核验通过了 之后呢")
    assert "下一步：制卡机构制卡" in a.text


def test_what_next_follows_the_actions_of_a_step(retriever, lexical):
    # The next action of the same step, in the manual's order, with its entry.
    a = ask(retriever, lexical, "网上的办卡申请已经提交啦 接着呢", region="shaanxi")
    assert a.text.startswith("下一步：身份核验") and "来源：陕西手册 2.3.2" in a.text
    # The step's last action: the next step.
    a = ask(retriever, lexical, "企业基本信息跟管理员帐号信息都填好，确认注册完成了，然后")
    assert a.text.startswith("下一步是第 2/5 步「海关注册登记")


def test_what_next_depends_on_an_option_only_when_it_is_unknown(retriever, lexical):
    # The area is not known: the written application is for 拱跨工区 only, and then comes
    # what every company does.
    a = ask(retriever, lexical, "报关入口那边的企业备案交上去了，后面要做啥", region="zhuhai")
    assert a.text.startswith("下一步：如选拱跨工区") and "然后：报检入口" in a.text
    # Said in the question: no condition, and the next action only.
    a = ask(retriever, lexical, "我们在横琴 报关入口的备案已经交了 下一步", region="zhuhai")
    assert a.text.startswith("下一步：报检入口") and "书面申请" not in a.text


def test_what_next_after_an_approval_is_the_action_it_precedes(retriever, lexical):
    a = ask(retriever, lexical, "系统备案那边审批通过啦，接下来呢", region="zhuhai")
    assert a.text.startswith("下一步：在客户服务平台新建工单") and "角色权限" in a.text


def test_an_overview_lists_the_regions_steps(retriever, lexical):
    a = ask(retriever, lexical, "珠海这边整个流程是怎样的")
    assert not a.fallback and a.regions == ("zhuhai",)
    for step in ("JC", "总署统一版", "本地备案", "系统备案"):
        assert step in a.text


def test_an_overview_of_a_step_named_as_users_call_it(retriever, lexical):
    a = ask(retriever, lexical, "办卡那一步整体流程是怎样", region="shaanxi")
    assert a.text.startswith("第 3/5 步「电子口岸制卡」怎么办")


def test_a_new_company_asking_for_the_steps_gets_the_overview(retriever, lexical):
    # Neither 的 nor 新 is a typo here (西安高新 is a district the manual names).
    a = ask(retriever, lexical, "我们是西安的新公司 要走哪几步")
    assert a.intent == "overview" and a.regions == ("shaanxi",) and "海关注册登记" in a.text


def test_both_sides_of_a_comparison_are_answered(retriever, lexical):
    a = ask(retriever, lexical, "web版跟mq版要传的东西有区别吗", region="shaanxi")
    assert len(a.entry_ids) == 2 and "数据交换安全承诺书" in a.text and "电子签章授权委托书" in a.text
    assert a.text.count("来源：") == 2


def test_each_side_gets_its_own_entry_not_the_one_both_share(retriever, lexical):
    """The registration page covers both kinds of user; 没卡 has an entry of its own."""
    a = ask(retriever, lexical, "有卡和没卡注册陕西单一窗口有什么不同")
    assert {"sx.sw.register_with_card", "sx.sw.register_without_card"} <= set(a.entry_ids)


def test_a_side_ends_where_the_first_side_does():
    cues = default_cues()
    assert cues.comparison("进口和出口备案要分开办吗") == Comparison("进口 备案要分开办吗", "出口备案要分开办吗")
    assert cues.comparison("api版和web版上传的材料一样吗") == Comparison("api版 上传的材料", "web版上传的材料")


def test_a_comparison_split_by_spaces_or_asked_for_each_side_is_one(retriever, lexical):
    a = ask(retriever, lexical, "KJDS-002 与 KJDS-003 分别是什么")
    assert set(a.entry_ids) == {"zh.code.kjds002", "zh.code.kjds003"}
    a = ask(retriever, lexical, "选邮寄跟选现场领取，各有什么要求", region="shaanxi")
    assert {"sx.card.mail_delivery", "sx.card.onsite_pickup"} <= set(a.entry_ids)


def test_each_entry_is_answered_once(retriever, lexical):
    # Both sides of the comparison expand to both of the area's codes.
    a = ask(retriever, lexical, "大桥那边报关的代码和报检的代码分别填啥", region="zhuhai")
    assert a.text.count("主管海关代码是 5788") == 1 and a.text.count("检验检疫机构代码是 485500") == 1
    assert len(a.entry_ids) == len(set(a.entry_ids))


def test_an_answer_without_what_was_asked_is_not_given(retriever, lexical):
    a = ask(retriever, lexical, "宝鸡那个建行网点周六上班不")
    assert a.fallback and a.suggestions  # the branch is one tap away, its hours are in no manual
    # Neither manual says how long a certificate is valid or how a lost card is replaced: the
    # certificate's entry (which Rasa may pick) does not answer that.
    cues = default_cues()
    certificate = ask(retriever, lexical, "数字证书申请表怎么填").text
    assert "validity" in cues.unanswered_attributes("法人卡的证书有效期是多久", certificate)
    assert cues.unanswered_attributes("操作员卡弄丢了咋整", certificate) == ["replacement"]
    assert cues.unanswered_attributes("数字证书申请表怎么填", certificate) == []


def test_near_misses_become_suggestions_and_one_tap_answers(dialogue, lexical):
    walk = Walk(dialogue, lexical)
    text = walk.say("卡和证书那些东西怎么弄")
    assert "您是不是想问" in text
    labels = [b.label for b in walk.replies[0].buttons]
    assert 2 <= len(labels) <= 4 and labels[-1] == "转人工"
    payload = walk.replies[0].buttons[0].payload
    assert payload.startswith("kb:")
    out = dialogue.handle(walk.state, ButtonPress(payload, at=walk.at))
    assert out.notes["suggestion_taken"] == payload[3:]
    assert out.answer is not None and not out.answer.fallback and "来源：" in out.replies[0].text


def test_places_no_manual_covers_are_said_so_in_the_users_language(dialogue, lexical):
    walk = Walk(dialogue, lexical)
    assert "只有陕西和珠海" in walk.say("我们公司在杭州，电子口岸卡在哪办")
    text = walk.say("Where do I get the e-port card in Chengdu?")
    assert "only have the Shaanxi and Zhuhai" in text and "Chengdu" in text
    assert "转人工" not in text and walk.buttons()[0] == "Human"
    # A place one character away from a term is no typo of it (上海电子口岸 is not 珠海电子口岸),
    # and a place jieba joins to the word after it (北京海关) is still named.
    assert "只有陕西和珠海" in walk.say("上海电子口岸的客服电话是哪个")
    assert "只有陕西和珠海" in walk.say("北京海关的电话有吗")


def test_all_codes_of_an_area_when_asked_for_them_all(retriever, lexical):
    a = ask(retriever, lexical, "横琴那边报关报检的两个代码分别是多少")
    assert "5795" in a.text and "485400" in a.text and len(a.entry_ids) == 2
    one = ask(retriever, lexical, "横琴的主管海关代码")
    assert "5795" in one.text and "485400" not in one.text


def test_asked_where_in_a_city_with_a_branch_the_branch_answers(retriever, lexical):
    a = ask(retriever, lexical, "Where can I get the e-port card in Baoji?")
    assert a.entry_ids == ("sx.branch.baoji",) and "0917-3276018" in a.text


def test_a_clause_that_lost_what_the_message_is_about_counts_less(retriever, lexical):
    # "应该打哪个电话问" alone is closest to another entry's phone; the message is about 入驻平台.
    a = ask(retriever, lexical, "入驻平台的过程中遇到问题了，系统一直报错，我们弄了一上午了，应该打哪个电话问")
    assert a.entry_ids[0] == "sx.hotline.platform"
    b = ask(retriever, lexical, "我们公司IT说后面想用加密机传报文，不想插卡，那需要去申请啥")
    assert b.entry_ids == ("zh.jc.cards",)


def test_a_place_and_nothing_the_manuals_know_is_no_question_about_its_branch(retriever, lexical):
    # The city matches its branch; the rest (traffic, food) is nothing any entry says.
    assert ask(retriever, lexical, "渭南今天堵车厉害吗").fallback
    assert not ask(retriever, lexical, "渭南今天堵车厉害吗").suggestions
    # A place alone, or with the domain's words, still asks for the branch.
    assert "渭南" in ask(retriever, lexical, "渭南有没有").text
    assert "渭南" in ask(retriever, lexical, "渭南能做口岸卡不").text


def test_a_code_no_manual_has_is_not_answered_by_its_neighbours(retriever, lexical):
    a = ask(retriever, lexical, "9810模式的企业要怎么接入")
    assert a.fallback  # the manuals know 9610 and 1210 only
    assert not ask(retriever, lexical, "9610模式的企业要怎么接入").fallback
    assert retriever.unknown_codes("我们2023年开始做 9810") == ["9810"]  # a year is no code


def test_every_code_of_a_series_when_asked_for_them_all(retriever, lexical):
    # "kjds" alone (the series of kjds-001) is a word of the entries that have the codes.
    text = ask(retriever, lexical, "KJDS的表都有哪几个").text
    assert all(f"KJDS-00{i}" in text for i in (1, 2, 3))
    a = ask(retriever, lexical, "what are all the KJDS forms called")
    assert {"zh.code.kjds001", "zh.code.kjds002", "zh.code.kjds003"} <= set(a.entry_ids)


def test_a_street_is_not_answered_by_a_building(retriever, lexical):
    # The manual gives the service centre's floor and window, never its street.
    assert ask(retriever, lexical, "行政服务中心具体在哪条路上").fallback
    assert not ask(retriever, lexical, "汉中那个建行在哪条路").fallback  # a branch has its street


def test_english_names_of_the_manuals_terms_find_their_entries(retriever, lexical):
    # The glossary in the lexicon: "encryption machine" is 加密机, "written application" 书面申请.
    assert ask(retriever, lexical, "MQ mode using an encryption device: which files on top").entry_ids[0] == (
        "sx.platform.mq_materials"
    )
    assert ask(retriever, lexical, "is a written application required for the gongkua customs").entry_ids[0] == (
        "zh.system.gongkua_letter"
    )


def test_asking_for_the_overview_is_answered_whichever_engine_read_a_start(dialogue):
    # Rasa may read "珠海接入整体流程" as start_walkthrough: it asks for the overview, which is
    # answered and offers the walkthrough; a request to be led still starts it.
    from bot.core.events import TextMessage
    from bot.core.state import ConversationState
    from nlu.interpreter import Understanding

    state = ConversationState()
    text = "珠海那边接入的整体流程"
    out = dialogue.handle(state, TextMessage(text), Understanding(text, "start_walkthrough", 0.9, "rasa"))
    assert state.walkthrough is None and out.answer is not None and not out.answer.fallback
    assert "本地备案" in out.replies[0].text and out.replies[0].buttons  # the offer to start
    led = "珠海整体流程带我走一遍"
    reading = Understanding(led, "start_walkthrough", 0.9, "rasa", entities={"region": "zhuhai"})
    out = dialogue.handle(state, TextMessage(led), reading)
    assert "珠海跨境电商企业接入的流程" in out.replies[0].text and "企业名称" in out.replies[0].text


def test_voice_input_without_punctuation_is_cut_into_sentences():
    clauses = default_cues().clauses(
        "你好我们是珠海港珠通报关服务有限公司我们是做代理报关的现在要接入珠海的跨境电商系统"
    )
    assert clauses == ["你好我们是珠海港珠通报关服务有限公司", "我们是做代理报关的", "现在要接入珠海的跨境电商系统"]
    assert default_cues().clauses("我们现在要办卡") == ["我们现在要办卡"]  # short: one sentence
