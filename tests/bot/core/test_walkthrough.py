"""The walkthrough engine through the pure dialogue core (no store, no transport)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.core.events import ButtonPress, Timer
from tests.auxil.chat import T0, Walk


def started(dialogue, lexical, region="陕西"):
    walk = Walk(dialogue, lexical)
    walk.say("我要办理跨境电商入网")
    walk.press(region)
    walk.press("先不填")
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


def test_a_company_name_is_checked(dialogue, lexical):
    walk = Walk(dialogue, lexical)
    walk.say("我要办理跨境电商入网")
    walk.press("陕西")
    assert "企业名称需要 2 到 60 个字" in walk.say("甲")
    assert walk.state.companies == []
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
    assert "请问为哪家企业办理" in walk.say("珠海"), "a typed region answers the question, not a CCB branch"
    assert "好的，为「我的企业」办理" in walk.say("先不填")
    assert walk.state.walkthrough == "zhuhai" and walk.state.active_company.placeholder
