from __future__ import annotations

import pytest

from nlu.interpreter import Interpreter


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("你好", "greet"),
        ("您好！", "greet"),
        ("谢谢", "thanks"),
        ("转人工", "human"),
        ("再见", "bye"),
        ("你能做什么", "help"),
        ("thank you", "thanks"),
    ],
)
def test_chat_intents(lexical, text, intent):
    assert lexical.parse_sync(text).intent == intent


def test_question_starting_with_greeting_is_a_question(lexical):
    u = lexical.parse_sync("你好，请问宝鸡哪里可以办卡")
    assert u.intent == "faq/sx.branch.baoji"
    assert u.engine == "lexical"


def test_entities(lexical):
    u = lexical.parse_sync("宝鸡的法人卡线下怎么办")
    assert u.entities == {"region": "shaanxi", "city": "宝鸡", "card_type": "法人卡", "channel": "线下"}


def test_language(lexical):
    assert lexical.parse_sync("What is the hotline in Shaanxi?").lang == "en"
    assert lexical.parse_sync("陕西热线").lang == "zh"


async def test_implements_protocol(lexical):
    assert isinstance(lexical, Interpreter)
    u = await lexical.parse("珠海海关数据分中心电话")
    assert u.intent == "faq/zh.jc.cards"
    assert u.is_faq


def test_a_question_about_the_procedure_is_not_a_request_to_be_led(lexical):
    assert lexical.parse_sync("新企业入网要办些啥 陕西的").intent.startswith("faq")
    assert lexical.parse_sync("新企业入网怎么开始").intent == "start_walkthrough"
    assert lexical.parse_sync("能带我走一遍流程不").intent == "start_walkthrough"


def test_what_next_is_read_from_a_lead_and_an_ask_not_only_from_fixed_phrases():
    from nlu.cues import default_cues

    cues = default_cues()
    assert cues.finished("海关注册登记办完了该干嘛") == "海关注册登记办完了"
    assert cues.finished("JC备案批下来了 后续呢") == "JC备案批下来了"
    assert cues.finished("本地备案搞定后要做什么") == "本地备案搞定后"
    assert cues.finished("卡拿到手了，还有啥要做的") == "卡拿到手了"
    assert cues.finished("海关编码要怎么办") is None  # nothing said done: how, not what next
    assert cues.finished("用法人卡登录以后用户名是啥") is None  # asks about a thing after it


def test_what_next_after_a_time_supposes_rather_than_says_done():
    from nlu.cues import default_cues

    cues = default_cues()
    assert cues.supposes("系统备案批下来以后还有什么要做的吗")
    assert not cues.supposes("系统备案批下来了，还有什么要做的")


def test_an_overview_is_read_from_its_parts_and_an_ask_for_all_of_them():
    from nlu.cues import default_cues

    cues = default_cues()
    for asked in ("陕西这边总共有哪些手续", "新公司在珠海做跨境 要经过哪些程序", "陕西从注册到入驻都要干啥"):
        assert cues.without_overview(asked) is not None, asked
    assert cues.without_overview("陕西跨境电商入网要怎么走流程，带我做一下") is None  # a request to be led
    assert cues.without_overview("办卡要带什么材料") is None


def test_a_message_that_ends_asking_to_be_led_through_the_procedure_starts(lexical):
    run_on = "你好我们是珠海某某报关有限公司现在要接入珠海的跨境电商系统你帮我看下要怎么弄"
    assert lexical.parse_sync(run_on).intent == "start_walkthrough"
    assert lexical.parse_sync("珠海的跨境电商系统要接入 从哪步开始弄啊").intent == "start_walkthrough"
    assert lexical.parse_sync("本地备案材料怎么弄").intent.startswith("faq")  # how a thing is done
    assert lexical.parse_sync("办卡要准备什么材料，你帮我看下").intent.startswith("faq")  # that question


def test_done_said_in_english_and_in_chinese_with_english_words():
    from nlu.cues import default_cues

    cues = default_cues()
    for said in (
        "got the cards, our legal rep picked them up yesterday",
        "the registration went through",
        "卡拿到了 all good",
    ):
        assert cues.says_done(said), said
    assert not cues.says_done("has the registration gone through?")


def test_done_inside_a_run_on_without_punctuation():
    from nlu.cues import default_cues

    cues = default_cues()
    assert cues.says_done("新卡收到了快递今天下午到的")
    assert not cues.says_done("提交了申请还没批")
    assert not cues.says_done("我提交了申请要多久")


def test_done_written_with_yi_before_the_verb():
    from nlu.cues import default_cues

    cues = default_cues()
    assert cues.says_done("统一版接入申请材料已递交海关窗口，相应权限已开通。")
    assert cues.says_done("本地备案已批复，DXPID及报关、报检入口账号均已收到。")
    assert cues.says_done("法人回来咧 卡在建行办好拿到手咧")  # 咧: the northwest's 了
    assert not cues.says_done("已开通的权限在哪看")  # a question
    assert not cues.says_done("我们已有海关编码")  # a fact held, not a step done


def test_a_request_to_be_guided_after_a_question_about_the_whole_procedure_starts(lexical):
    for said in (
        "你好 珠海跨境电商接入要走哪些流程 我们是新成立的公司 帮忙带一下",
        "您好，请问珠海跨境电商企业接入的手续应该怎么办理？麻烦您按步骤指导一下，谢谢。",
    ):
        assert lexical.parse_sync(said).intent == "start_walkthrough", said
    assert lexical.parse_sync("办卡要带一下身份证吗").intent.startswith("faq")  # 带 = bring


def test_haishi_compares_two_things_but_not_when_it_means_rather():
    from nlu.cues import default_cues

    cues = default_cues()
    for asked in ("加签用卡好还是加密机好", "线上办还是线下办", "选web还是选api", "用卡还是用加密机"):
        assert cues.compares(asked), asked
    for rather in ("还是线下办吧", "我们还是用客户端", "老板说还是去空港新城那边的建行柜台办", "搞不定 还是换回客户端"):
        assert not cues.compares(rather), rather


def test_a_statement_with_no_word_of_starting_starts_nothing(lexical):
    said = "这个入驻先不弄了 我们跨境店铺明年开春才上线 到时候再说"
    assert lexical.parse_sync(said).intent == "skip"  # not a start, for 跨境店铺
    assert lexical.parse_sync("我想弄陕西的").intent == "start_walkthrough"  # a region says which


def test_decided_is_not_done():
    from nlu.cues import default_cues

    cues = default_cues()
    assert not cues.says_done("先说下 我们后面平台对接肯定是mq 技术都定好了")
    assert cues.says_done("这步搞定好了")  # 搞定: done
