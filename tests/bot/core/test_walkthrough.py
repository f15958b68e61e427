"""The walkthrough engine through the pure dialogue core (no store, no transport)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from bot.core.events import ButtonPress, Timer
from tests.auxil.chat import T0, Walk


def started(dialogue, lexical, region="陕西"):
    walk = Walk(dialogue, lexical)
    walk.say("我要办理跨境电商入网")
    walk.press(region)
    return walk


def test_the_input_state_is_not_changed(dialogue, lexical):
    walk = started(dialogue, lexical)
    before = walk.state.model_copy(deep=True)
    dialogue.handle(walk.state, ButtonPress("wt:choice:has_card:no_card", at=T0))
    assert walk.state == before


def test_negated_phrases_pick_the_negative_option(dialogue, lexical):
    walk = started(dialogue, lexical)
    assert "电子口岸卡 = 无卡" in walk.say("我们还没有卡")
    zh = started(dialogue, lexical, "珠海")
    zh.press("已有海关编码")
    assert "代理企业 = 不是代理企业" in zh.say("不是代理企业")


def test_a_question_while_a_choice_is_pending_is_answered_then_the_choice_asked_again(dialogue, lexical):
    walk = started(dialogue, lexical)
    text = walk.say("单一窗口推荐用什么浏览器")
    assert "Chrome" in text and "我们刚才在确认：贵企业现在已经有电子口岸卡" in text
    assert [b.label for b in walk.replies[-1].buttons] == ["有卡", "无卡"]
    assert walk.state.awaiting is not None and walk.state.awaiting.ref == "has_card"


def test_a_question_naming_a_branch_does_not_change_it(dialogue, lexical):
    walk = started(dialogue, lexical)
    walk.press("有卡")
    walk.press("完成，下一步")
    walk.press("完成，下一步")
    walk.press("线上办理")
    walk.press("邮寄")
    walk.say("线下办卡要带什么材料？")
    assert walk.state.progress().answers["card_channel"] == "online"
    assert "已把「办卡方式」从「线上办理」改为「线下建行代理点」" in walk.say("其实我们是线下办卡")
    assert "delivery" not in walk.state.progress().answers, "the delivery of an offline card no longer applies"


def test_a_region_in_a_question_does_not_move_the_walkthrough(dialogue, lexical):
    walk = started(dialogue, lexical)
    text = walk.say("珠海海关数据分中心电话是多少")
    assert "0756-8125566" in text
    assert walk.state.walkthrough == "shaanxi" and walk.state.region == "shaanxi"


def test_milestone_reminders_follow_the_step_and_fire_once(dialogue, lexical):
    walk = started(dialogue, lexical)
    for label in ("无卡", "完成，下一步", "完成，下一步", "线上办理", "现场领卡", "申请单已核验通过"):
        walk.press(label)
    keys = {r.key: r for r in walk.state.reminders if r.kind == "milestone"}
    assert len(keys) == 2
    first = min(keys.values(), key=lambda r: r.due)
    assert first.due == datetime(2027, 1, 22, 1, 0, tzinfo=UTC)  # 09:00 China time, 60 days on
    walk.at = first.due
    assert "还剩约30天" in walk.fire(first.key)
    assert first.key not in {r.key for r in walk.state.reminders}
    walk.press("继续办理")
    assert first.key not in {r.key for r in walk.state.reminders}, "activity does not bring it back"
    assert walk.dialogue.handle(walk.state, Timer(first.key, at=walk.at)).replies == [], "it never fires twice"
    walk.press("完成，下一步")
    assert not [r for r in walk.state.reminders if r.kind == "milestone"], "a finished step cancels its reminders"


def test_idle_nudge_moves_with_activity_and_reminders_can_be_turned_off(dialogue, lexical):
    walk = started(dialogue, lexical)
    (idle,) = walk.state.reminders
    assert idle.kind == "idle" and idle.due == T0 + timedelta(days=3)
    walk.at = T0 + timedelta(days=1)
    walk.press("有卡")
    (later,) = walk.state.reminders
    assert later.due == T0 + timedelta(days=4) and later.key != idle.key
    walk.say("关闭提醒")
    assert walk.state.reminders == [] and not walk.state.reminders_enabled
    walk.say("打开提醒")
    assert len(walk.state.reminders) == 1


def test_stale_and_malformed_buttons_get_a_clear_message(dialogue, lexical):
    walk = started(dialogue, lexical)
    for payload in ("wt:choice:has_card:maybe", "wt:skipwhy:7", "wt:company:x"):
        out = dialogue.handle(walk.state, ButtonPress(payload, at=T0))
        assert "这个按钮已经失效" in out.replies[0].text


def test_a_walkthrough_opens_at_once_and_takes_the_name_any_time(dialogue, lexical):
    walk = Walk(dialogue, lexical)
    walk.say("我要办理跨境电商入网")
    opened = walk.press("陕西")
    assert "第 1/5 步" in opened and "企业名称可以随时告诉我" in opened
    assert walk.state.active_company.placeholder
    assert "企业名称记为「甲乙贸易有限公司」" in walk.say("  甲乙贸易有限公司 ")
    assert not walk.state.active_company.placeholder and len(walk.state.companies) == 1
    # A 先不填 button of a message sent before this change still answers.
    walk = Walk(dialogue, lexical)
    walk.say("我要办理跨境电商入网")
    walk.press("陕西")
    assert "企业名称之后再说" in walk.event(ButtonPress("wt:company:later", at=T0))


def test_a_company_name_is_checked(dialogue, lexical):
    walk = Walk(dialogue, lexical)
    walk.say("我要办理跨境电商入网")
    walk.press("陕西")
    walk.event(ButtonPress("wt:company:new", at=T0))  # another company: its name first
    assert "企业名称需要 2 到 60 个字" in walk.say("甲")
    assert len(walk.state.companies) == 1
    assert "「甲乙贸易有限公司」" in walk.say("  甲乙贸易有限公司 ")


def test_the_company_prompt_takes_only_a_company_name(dialogue, lexical):
    walk = Walk(dialogue, lexical)
    walk.say("我要办理跨境电商入网")
    walk.press("陕西")
    # The answer to the next question is no company: the company is named for now and the
    # answer is taken as what it is.
    walk.say("我们已经有电子口岸卡了")
    company = walk.state.active_company
    assert company is not None and company.placeholder
    assert walk.state.progress().answers.get("has_card") == "with_card"
    for not_a_name in ("西安", "线下"):
        walk = Walk(dialogue, lexical)
        walk.say("我要办理跨境电商入网")
        walk.press("陕西")
        walk.say(not_a_name)
        assert walk.state.active_company is None or walk.state.active_company.placeholder, not_a_name
    # A proper name without 公司 is a name.
    walk = Walk(dialogue, lexical)
    walk.say("我要办理跨境电商入网")
    walk.press("陕西")
    assert "「秦川星河」" in walk.say("秦川星河")


def test_the_region_and_the_later_button_can_be_typed(dialogue, lexical):
    walk = Walk(dialogue, lexical)
    walk.say("我要办理跨境电商入网")
    assert "第 1/5 步" in walk.say("珠海"), "a typed region answers the question, not a CCB branch"
    assert "企业名称之后再说" in walk.say("先不填")
    assert walk.state.walkthrough == "zhuhai" and walk.state.active_company.placeholder


@pytest.mark.parametrize(
    ("reply", "name"),
    [
        ("我们叫珠海横琴鑫达贸易", "珠海横琴鑫达贸易"),
        ("名称：珠海横琴鑫达贸易", "珠海横琴鑫达贸易"),
        ("公司名 珠海拱北湾仔跨境供应链有限公司", "珠海拱北湾仔跨境供应链有限公司"),
        ("哦对 公司是珠海金湾航空城跨境物流有限公司", "珠海金湾航空城跨境物流有限公司"),
        ("我司名称：珠海香洲南屏跨境贸易有限公司。", "珠海香洲南屏跨境贸易有限公司"),
        ("就叫秦岭之光吧", "秦岭之光"),
        ("嗯 西安丝路云仓物流有限公司", "西安丝路云仓物流有限公司"),
        ("西安秦岭之光贸易有限公司（简称秦岭之光）", "西安秦岭之光贸易有限公司"),
        ("西安丝路云仓物流有限公司 统一社会信用代码91610131MA6W1234X5", "西安丝路云仓物流有限公司"),
    ],
)
def test_the_company_prompt_takes_the_name_out_of_its_naming_words(dialogue, lexical, reply, name):
    walk = Walk(dialogue, lexical)
    walk.say("我要办理跨境电商入网")
    walk.press("珠海")
    assert f"企业名称记为「{name}」" in walk.say(reply)
    walk.event(ButtonPress("wt:company:new", at=T0))
    assert f"好的，为「{name}」办理" in walk.say(reply)  # the prompt for another company reads it alike


def test_a_name_in_english_keeps_its_apostrophe_and_drops_the_words_before_it(dialogue, lexical):
    walk = Walk(dialogue, lexical)
    walk.say("Hi, I handle onboarding for Xi'an Terracotta Goods Trading Co., Ltd. Can you guide me through Shaanxi?")
    assert walk.state.active_company is not None
    assert walk.state.active_company.name == "Xi'an Terracotta Goods Trading Co., Ltd."


def test_a_corrected_answer_brings_its_skipped_step_back_as_the_open_one(dialogue, lexical):
    walk = started(dialogue, lexical, "珠海")
    walk.say("有海关编码")
    walk.say("我司属于代理企业，是替其他电商企业申报的。")
    assert walk.state.progress().current == "local_filing"
    text = walk.say("不好意思，刚跟领导确认了一下，我司是以自己的名义申报，不算代理企业，刚才说错了。")
    assert walk.state.progress().answers["agent"] == "direct", "不算代理企业: the entity 代理企业 is negated"
    assert "现在需要办理了" in text
    assert walk.state.progress().current == "unified_access"


def test_a_step_whose_result_is_held_already_is_done(dialogue, lexical):
    walk = started(dialogue, lexical)
    walk.say("有卡")
    walk.say("单一窗口注册好了")
    walk.say("海关注册登记我们几年前就有了 就是收发货人那个 一直在用")
    assert walk.state.progress().done == ["sw_register", "customs_registration"]
    walk.say("企业类型备案还没有")  # negated: nothing held
    assert walk.state.progress().current == "card"


def test_done_in_dialect_and_in_english(dialogue, lexical):
    walk = started(dialogue, lexical)
    walk.say("有卡")
    walk.say("ok registered, got the admin account")
    assert walk.state.progress().done == ["sw_register"]
    walk.say("海关的批下来咧 嘹得很")
    assert walk.state.progress().done == ["sw_register", "customs_registration"]


def test_a_pronoun_with_a_mark_is_no_name(dialogue, lexical):
    walk = Walk(dialogue, lexical)
    walk.say("我们斗门这边一个工厂 想做跨境电商出口 能不能一步步指导下 珠海的")
    assert walk.state.active_company is None or walk.state.active_company.name != "一个工厂"


# ---------------------------------------------------------------- sentences, not buttons (issue 21)


def _choice_at(dialogue, lexical, region_key, choice):
    """A walk whose open question is ``choice``, reached by pressing the first option of every
    choice before it (and "done" on the steps between)."""
    proc = dialogue.wt.kb.procedures[region_key]
    walk = started(dialogue, lexical, proc_region_name(dialogue, region_key))
    for _ in range(40):
        awaiting = walk.state.awaiting
        if awaiting is not None and awaiting.kind == "choice" and awaiting.ref == choice.id:
            return walk
        if awaiting is not None and awaiting.kind == "choice":
            asked = proc.choice(awaiting.ref)
            # The option that keeps the most steps open (not "agent": it skips a step).
            option = next((o for o in asked.options if o.reply != "affirm"), asked.options[0])
            walk.event(ButtonPress(f"wt:choice:{asked.id}:{option.value}", at=T0))
        else:
            walk.event(ButtonPress("wt:done", at=T0))
    return None


def proc_region_name(dialogue, key):
    return dialogue.wt.kb.regions[key].name


def test_no_option_is_chosen_by_a_question_about_it(dialogue, lexical):
    """Every option of every branch question, asked about while that question is open."""
    checked = 0
    for key, proc in dialogue.wt.kb.procedures.items():
        for choice in proc.choices:
            walk = _choice_at(dialogue, lexical, key, choice)
            if walk is None:
                continue  # a choice this path never asks (the delivery of an offline card)
            labels = [o.label.zh for o in choice.options]
            asked = [f"{label}是什么意思" for label in labels]
            asked += [f"{a}和{b}有什么区别" for a, b in itertools.pairwise(labels)]
            for question in asked:
                before = dict(walk.state.progress().answers)
                walk.say(question)
                assert walk.state.progress().answers == before, f"{key}: {question!r} chose an option"
                assert walk.state.awaiting is not None and walk.state.awaiting.ref == choice.id, question
                checked += 1
    assert checked >= 30, checked


def test_a_whole_walkthrough_in_sentences(dialogue, lexical):
    walk = Walk(dialogue, lexical)
    walk.say("你好，我们公司想在陕西开通跨境电商，法人卡之前就办过了，麻烦带我走一下流程")
    assert walk.state.walkthrough == "shaanxi"
    text = walk.say("西安秦风优选电子商务有限公司")
    assert walk.state.active_company.name == "西安秦风优选电子商务有限公司"
    assert "电子口岸卡 = 有卡" in text and walk.state.progress().answers == {"has_card": "with_card"}
    walk.say("好的 单一窗口这块搞定了")
    assert walk.state.progress().done == ["sw_register"]
    walk.say("这个也提交了，下一个吧")
    walk.say("我们打算直接去建行柜台办，离公司近")
    assert walk.state.progress().answers["card_channel"] == "offline"
    walk.say("这步弄完啦")
    walk.say("我们是做仓储运输的")
    assert walk.state.progress().answers["enterprise_type"] == "logistics"
    walk.say("ok 下一个")
    walk.say("我们走MQ，用卡签名")  # two choices in one message
    assert walk.state.progress().answers["open_mode"] == "mq"
    assert walk.state.progress().answers["signing"] == "card"
    walk.say("最后这步也搞定了")
    assert walk.state.progress().finished


def test_done_in_words_is_not_done_when_it_says_not(dialogue, lexical):
    walk = started(dialogue, lexical)
    walk.say("卡还没办呢")
    assert walk.state.progress().answers["has_card"] == "no_card"
    walk.say("还没弄好")
    assert walk.state.progress().done == []
    walk.say("注册好了")
    assert walk.state.progress().done == ["sw_register"]


def test_a_company_named_in_passing_names_the_placeholder(dialogue, lexical):
    walk = Walk(dialogue, lexical)
    walk.say("我要办陕西跨境电商新企业入网")
    walk.say("口岸卡我们还没办")  # not a name: the company is named for now, the card answered
    assert walk.state.active_company.placeholder
    assert walk.state.progress().answers["has_card"] == "no_card"
    text = walk.say("公司叫咸阳渭水跨境贸易有限公司")
    assert walk.state.active_company.name == "咸阳渭水跨境贸易有限公司" and "咸阳渭水跨境贸易有限公司" in text
    assert not walk.state.active_company.placeholder


def test_a_changed_answer_brings_back_the_step_it_skipped(dialogue, lexical):
    walk = started(dialogue, lexical, "珠海")
    text = walk.say("海关编码我们早就有了")
    assert "jc_filing" in walk.state.progress().skipped and "可以跳过" in text
    walk.say("我们不是代理 自己做")
    text = walk.say("其实我们还没有海关编码")
    assert "第 1 步「海关 JC 备案」现在需要办理了" in text
    assert "jc_filing" not in walk.state.progress().skipped


def asked_why_skip(dialogue, lexical):
    """A Shaanxi walkthrough at "为什么跳过" for step 4 (企业类型备案), the steps before done."""
    walk = started(dialogue, lexical)
    walk.press("有卡")
    walk.press("完成，下一步")
    walk.press("完成，下一步")
    walk.press("线下建行代理点")
    walk.press("完成，下一步")
    walk.press("电商企业")
    walk.press("跳过")
    return walk


def test_the_end_lists_required_skipped_steps_and_reminds(dialogue, lexical):
    walk = asked_why_skip(dialogue, lexical)
    text = walk.say("暂时不办")
    walk.press("Web版")
    text = walk.press("完成，下一步")
    assert walk.state.progress().finished
    assert "完成 4 步，跳过 1 步" in text and "全部步骤都已完成" not in text
    assert "手册仍要求办理" in text and "跨境电商企业类型备案" in text
    reminder = next(r for r in walk.state.reminders if r.kind == "skipped")
    walk.at = reminder.due
    text = walk.fire(reminder.key)
    assert "跳过的第 4 步「跨境电商企业类型备案」没有办理" in text
    walk.press("继续办理")
    assert walk.state.progress().current == "enterprise_type_filing" and not walk.state.progress().finished


def test_done_naming_another_step_marks_that_step(dialogue, lexical):
    walk = started(dialogue, lexical, "珠海")
    walk.say("海关十位编码早就有了")
    walk.say("我们不是代理企业 只做自己的进出口")
    walk.say("统一版接入材料交好了")
    assert walk.state.progress().current == "local_filing"
    walk.say("其实我们是代理企业，帮别人报关的")
    walk.say("不好意思又搞错了，我们还是自己做的，不是代理")  # step 2 comes back, step 3 stays open
    assert "unified_access" not in walk.state.progress().skipped
    text = walk.say("统一版那步也交了")
    assert "第 2 步「总署统一版接入申请」已完成" in text
    assert walk.state.progress().current == "local_filing"
    assert "local_filing" not in walk.state.progress().done


def test_a_bare_yes_or_no_answers_the_question_asked(dialogue, lexical):
    walk = started(dialogue, lexical, "珠海")
    assert "海关十位编码 = 还没有" in walk.say("木有哦")
    walk = started(dialogue, lexical)
    walk.say("有的呀")
    assert walk.state.progress().answers["has_card"] == "with_card"
    # A sentence with a topic word of another question is no bare reply.
    zh = started(dialogue, lexical, "珠海")
    zh.say("编码有的，JC早就备过了")
    assert "agent" not in zh.state.progress().answers


def test_step_commands_said_of_a_step_by_name(dialogue, lexical):
    walk = started(dialogue, lexical, "珠海")
    walk.say("还没有海关编码")
    walk.say("JC备案这步跳过 集团那边在办 办好了直接把编码给我们")
    assert "jc_filing" in walk.state.progress().skipped
    walk.say("不是代理")
    walk.say("本地备案跳过吧，以后再弄")
    walk.say("暂时不办")  # the reason it asks for
    walk.say("回到本地备案那步吧，先把它弄了")
    assert walk.state.progress().current == "local_filing"


def test_a_step_done_while_its_question_is_open_is_done(dialogue, lexical):
    walk = started(dialogue, lexical)
    walk.say("注册好了")  # whether there is a card was never said
    progress = walk.state.progress()
    assert "sw_register" in progress.done and progress.current == "customs_registration"
    assert "has_card" not in progress.answers


def test_a_statement_answering_a_later_question_is_noted(dialogue, lexical):
    walk = started(dialogue, lexical)
    text = walk.say("我人在宝鸡，跑西安太远了，打算直接拿材料去宝鸡本地的建行网点办")
    assert "办卡方式 = 线下建行代理点" in text
    assert walk.state.progress().answers["card_channel"] == "offline"
    assert walk.state.awaiting is not None and walk.state.awaiting.ref == "has_card"


def test_an_option_negated_after_its_words_is_not_chosen(dialogue, lexical):
    walk = started(dialogue, lexical)
    for label in (
        "有卡",
        "完成，下一步",
        "完成，下一步",
        "线下建行代理点",
        "完成，下一步",
        "电商企业",
        "完成，下一步",
        "API版",
    ):
        walk.press(label)
    walk.say("加密机还没到货 先用卡加签")
    assert walk.state.progress().answers["signing"] == "card"
    zh = started(dialogue, lexical, "珠海")
    zh.say("已有编码")
    zh.say("我们不替别人报关，就做自己的业务")
    assert zh.state.progress().answers["agent"] == "direct"


def test_names_said_as_names_and_cantonese(dialogue, lexical):
    walk = Walk(dialogue, lexical)
    walk.say("你好 我们公司名字叫长安优选，想办陕西跨境电商入网，带我弄一下")
    assert walk.state.active_company is not None and walk.state.active_company.name == "长安优选"
    walk = Walk(dialogue, lexical)
    walk.say("我要办理跨境电商入网")
    walk.press("陕西")
    walk.say("公司名稱是榆林塞上好物商貿有限公司")
    assert walk.state.active_company.name == "榆林塞上好物商貿有限公司"
    zh = Walk(dialogue, lexical)
    zh.say("喂 我哋公司喺横琴 想搞珠海跨境电商接入 已经有海关十位编码㗎喇")
    assert zh.state.walkthrough == "zhuhai"
    zh.say("横琴濠江优品科技有限公司")
    zh.say("我哋唔系代理，自己做自己嘅货")
    answers = zh.state.progress().answers
    assert answers["customs_code"] == "has_code" and answers["agent"] == "direct"
    assert answers["area"] == "hengqin", "the company is in Hengqin, said at the start"


def test_a_question_at_a_step_is_answered_from_that_step(dialogue, lexical):
    walk = started(dialogue, lexical)
    for label in ("无卡", "完成，下一步", "完成，下一步", "线上办理", "现场领卡"):
        walk.press(label)
    text = walk.say("核驗通過後多久之內要去領？")
    assert "90" in text and "来源：陕西手册 2.3.2" in text


def test_a_bare_name_right_after_the_name_was_invited_names_the_company(dialogue, lexical):
    walk = Walk(dialogue, lexical)
    walk.say("想办陕西入网 我们没有卡 做电商的")
    assert walk.state.active_company.placeholder
    assert "「秦味坊」" in walk.say("秦味坊")
    assert walk.state.progress().answers["has_card"] == "no_card"
    # Later, a bare word is not taken for a name.
    walk = Walk(dialogue, lexical)
    walk.say("想办陕西入网 我们没有卡 做电商的")
    walk.say("单一窗口推荐用什么浏览器")
    walk.say("长安优选")
    assert walk.state.active_company.placeholder


def test_an_answer_after_asking_back_answers(dialogue, lexical):
    walk = started(dialogue, lexical)
    walk.say("卡？啥卡 我们没有这东西 之前从来没弄过进出口")
    assert walk.state.progress().answers["has_card"] == "no_card"
    # A real question with its context chooses nothing.
    walk = started(dialogue, lexical)
    for label in ("无卡", "完成，下一步", "完成，下一步", "线上办理"):
        walk.press(label)
    walk.say("领卡是谁都能去领吗 我想让司机去拿")
    assert "delivery" not in walk.state.progress().answers


def test_done_with_what_next_and_the_name_put_off(dialogue, lexical):
    walk = started(dialogue, lexical)
    for label in ("无卡", "完成，下一步", "完成，下一步", "线下建行代理点", "完成，下一步"):
        walk.press(label)
    walk.say("我们是电商企业，这个备案做完了，下一步干啥")
    progress = walk.state.progress()
    assert progress.answers["enterprise_type"] == "ecommerce"
    assert "enterprise_type_filing" in progress.done and progress.current == "platform_access"
    walk = Walk(dialogue, lexical)
    walk.say("我要办理跨境电商入网")
    walk.press("珠海")
    walk.say("先不写公司名了")
    company = walk.state.active_company
    assert company is not None and company.placeholder


def test_a_skip_naming_a_step_by_what_users_call_it(dialogue, lexical):
    walk = started(dialogue, lexical)
    walk.say("有卡")
    walk.say("收发货人的备案几年前就做了，跳过")
    progress = walk.state.progress()
    assert "customs_registration" in progress.skipped and "sw_register" not in progress.skipped


def test_skip_said_again_at_the_reason_question_records_no_reason(dialogue, lexical):
    walk = asked_why_skip(dialogue, lexical)
    walk.say("跳过就行")
    assert walk.state.progress().skipped["enterprise_type_filing"] == ""
    assert "已跳过跳过" not in walk.say("进度")


def test_what_next_at_a_step_names_the_following_step_without_marking_it_done(dialogue, lexical):
    walk = started(dialogue, lexical, "珠海")
    walk.say("海关编码我们早就有了")
    walk.say("我们不是代理 自己做")
    current = walk.state.progress().current
    text = walk.say("然后呢")
    assert walk.state.progress().current == current and current not in walk.state.progress().done
    assert "接下来是第 3 步「珠海本地备案」" in text and walk.buttons()[0] == "完成，下一步"


def test_a_company_named_after_an_aside_or_in_english_has_the_name_only(dialogue, lexical):
    walk = Walk(dialogue, lexical)
    walk.say("陕西跨境电商入网 带我办一下")
    walk.say("btw 公司名字是咸阳秦川优选贸易有限公司")
    assert walk.state.active_company.name == "咸阳秦川优选贸易有限公司"
    other = Walk(dialogue, lexical)
    other.say("please walk me through the Shaanxi onboarding")
    other.say("the company name is Qinling Bridge Trading Co., Ltd.")
    assert other.state.active_company.name == "Qinling Bridge Trading Co., Ltd."


@pytest.mark.parametrize(
    ("region", "choice", "said", "value"),
    [
        ("shaanxi", "signing", "加签的话 加密机太贵了 不考虑", "card"),
        ("shaanxi", "signing", "加签就用卡吧 加密机太贵不买了", "card"),
        ("shaanxi", "signing", "加密机额们没有", "card"),
        ("shaanxi", "signing", "加密机 我们有", "hsm"),
        ("zhuhai", "transmission", "传输方式 接口太麻烦了 不考虑", "client"),
        ("zhuhai", "transmission", "技术说接口的加密我们搞不定", "client"),
    ],
)
def test_of_two_options_one_rejected_a_few_words_after_it_picks_the_other(
    dialogue, lexical, region, choice, said, value
):
    proc = dialogue.wt.kb.procedures[region]
    picked = dialogue.wt.match_option(proc.choice(choice), said, lexical.parse_sync(said))
    assert picked is not None and picked[0].value == value


def test_a_comparison_of_two_options_records_no_answer(dialogue, lexical):
    walk = started(dialogue, lexical)
    walk.say("单一窗口注册好了")
    before = dict(walk.state.progress().answers)
    walk.say("加签用卡好还是加密机好")
    assert walk.state.progress().answers == before


@pytest.mark.parametrize(
    ("said", "agent"),
    [("我们不给别人做代理 就自己一家在做", "direct"), ("没替别人做过代理", "direct"), ("给别人做代理的", "agent")],
)
def test_a_negation_before_whom_it_is_done_for_negates(dialogue, lexical, said, agent):
    walk = started(dialogue, lexical, "珠海")
    walk.press("已有海关编码")
    walk.say(said)
    assert walk.state.progress().answers["agent"] == agent


@pytest.mark.parametrize(
    ("said", "name", "answers"),
    [
        ("西安秦风电子商务有限公司，我们还没有卡", "西安秦风电子商务有限公司", {"has_card": "no_card"}),
        ("我是西安秦风电子商务有限公司的经办人小李", "西安秦风电子商务有限公司", {}),
        ("叫长安优选", "长安优选", {}),
        ("西安秦风", "西安秦风", {}),  # a place and words no entry uses: a name, not a topic
        ("公司叫西安驼铃国际物流有限公司 目前一张卡都没有", "西安驼铃国际物流有限公司", {"has_card": "no_card"}),
    ],
)
def test_a_name_given_in_passing_is_taken_with_what_the_rest_says(dialogue, lexical, said, name, answers):
    walk = started(dialogue, lexical)
    assert f"企业名称记为「{name}」" in walk.say(said)
    assert walk.state.active_company.name == name and walk.state.progress().answers == answers


def test_a_description_or_a_step_is_no_company_name(dialogue, lexical):
    walk = Walk(dialogue, lexical)
    walk.say("我们公司是做跨境电商的，想在珠海接入，流程带我走一遍")
    assert walk.state.active_company.placeholder
    walk = started(dialogue, lexical)
    walk.say("企业类型备案也交咧 过咧")
    assert walk.state.active_company.placeholder
