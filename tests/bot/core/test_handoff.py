"""Handoff to help-desk staff, driven through the dialogue core with staff events (no transport)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.core.dialogue import Dialogue
from bot.core.events import ButtonPress, Command, FileMessage, StaffMessage, TextMessage, Timer
from bot.core.handoff import Desk, ServiceHours
from bot.core.messages import default_messages
from bot.core.state import Company, ConversationState

# A Tuesday, 10:00 in Shanghai: inside "mon-fri 09:00-17:30".
TUESDAY_10 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
SATURDAY_10 = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
ID_NUMBER = "11010519491231002X"
MOBILE = "13800138000"


@pytest.fixture(scope="module")
def desk_dialogue(retriever) -> Dialogue:
    desk = Desk(
        enabled=True,
        hours=ServiceHours.parse("mon-fri 09:00-17:30"),
        nudge_after=timedelta(minutes=5),
        give_up_after=timedelta(minutes=15),
    )
    return Dialogue(retriever, default_messages(), desk=desk)


def user(d, lexical, state, text, at=TUESDAY_10):
    return d.handle(state, TextMessage(text, at=at), lexical.parse_sync(text))


def staff(d, state, text="", command="", args="", who=("s1", "王芳"), at=TUESDAY_10):
    return d.handle(state, StaffMessage(who[0], who[1], text=text, command=command, args=args, at=at))


def split(outcome):
    return [r.text for r in outcome.replies if r.to == "user"], [r.text for r in outcome.replies if r.to == "staff"]


def company_state() -> ConversationState:
    profile = {
        "company_name": "陕西丝路优选跨境电子商务有限公司",
        "legal_rep_id": ID_NUMBER,
        "legal_rep_mobile": MOBILE,
    }
    return ConversationState(
        region="shaanxi", companies=[Company(name=profile["company_name"], profile=profile)], company=0
    )


def test_user_to_staff_and_back_then_the_bot_answers_again(desk_dialogue, lexical):
    d = desk_dialogue
    out = d.handle(company_state(), Command("human", at=TUESDAY_10))
    to_user, to_staff = split(out)
    assert "转接人工客服" in to_user[0] and "5 分钟" in to_user[0]
    card = to_staff[0]
    assert "人工服务请求 #1" in card and "用户要求转人工" in card and "陕西丝路优选" in card and "陕西" in card
    assert out.state.handoff is not None and out.state.handoff.status == "waiting"

    out = user(d, lexical, out.state, "我的法人卡丢了怎么办")
    to_user, to_staff = split(out)
    assert to_user == [] and to_staff == ["👤 我的法人卡丢了怎么办"]  # the bot does not answer itself

    out = staff(d, out.state, command="take")
    to_user, to_staff = split(out)
    assert to_staff == ["✅ 王芳 已接手。"] and "客服已接入" in to_user[0]
    out = staff(d, out.state, text="请到原办卡网点挂失补办。")
    assert split(out) == (["客服：请到原办卡网点挂失补办。"], [])
    assert out.state.handoff is not None and out.state.handoff.answered_at == TUESDAY_10

    out = staff(d, out.state, command="close", args="已告知补办流程")
    to_user, to_staff = split(out)
    assert "人工服务已结束" in to_user[0] and "已结束（已告知补办流程）" in to_staff[0]
    assert out.state.handoff is None
    assert out.state.last_handoff is not None and out.state.last_handoff.resolution == "已告知补办流程"
    out = user(d, lexical, out.state, "宝鸡哪里可以办卡")
    to_user, to_staff = split(out)
    assert to_staff == [] and "宝鸡" in to_user[0] and "来源" in to_user[0]


def test_two_failed_answers_hand_over_with_the_reason(desk_dialogue, lexical):
    out = user(desk_dialogue, lexical, ConversationState(region="shaanxi"), "推荐一家好吃的餐厅")
    assert out.state.handoff is None
    out = user(desk_dialogue, lexical, out.state, "今天股市怎么样")
    to_user, to_staff = split(out)
    assert "没能在手册里找到" in to_user[0] and "转接人工客服" in to_user[0]
    assert "机器人连续两次未能回答" in to_staff[0]
    assert out.state.handoff is not None and out.state.handoff.reason == "fallback"


def test_the_context_card_masks_id_numbers_and_phones_until_revealed(desk_dialogue, lexical):
    state = company_state()
    state.remember("user", f"我的手机是{MOBILE}")
    out = desk_dialogue.handle(state, Command("human", at=TUESDAY_10))
    card = split(out)[1][0]
    assert ID_NUMBER not in card and MOBILE not in card
    assert "110***********002X" in card and "138****8000" in card
    out = user(desk_dialogue, lexical, out.state, f"身份证是{ID_NUMBER}")
    assert all(ID_NUMBER not in t for t in split(out)[1])

    out = staff(desk_dialogue, out.state, command="reveal")
    assert "法定代表人身份证号" in split(out)[1][0] and ID_NUMBER not in split(out)[1][0]
    out = staff(desk_dialogue, out.state, command="reveal", args="法定代表人身份证号")
    assert ID_NUMBER in split(out)[1][0] and split(out)[0] == []
    assert out.notes["revealed"] == {"field": "legal_rep_id", "staff": "王芳", "staff_id": "s1"}


def test_notes_stay_internal_and_kb_answers_go_to_the_user(desk_dialogue):
    out = desk_dialogue.handle(ConversationState(region="shaanxi"), Command("human", at=TUESDAY_10))
    out = staff(desk_dialogue, out.state, command="note", args=f"客户急，回电 {MOBILE}")
    assert split(out) == ([], ["📝 备注已记录（不会发给用户）。"])
    assert out.state.handoff is not None and out.state.handoff.notes == ["王芳: 客户急，回电 138****8000"]
    out = staff(desk_dialogue, out.state, command="kb", args="宝鸡哪里可以办卡")
    to_user, to_staff = split(out)
    assert to_user[0].startswith("客服为您查到：") and "来源" in to_user[0]
    assert to_staff[0].startswith("已发送给用户")
    out = staff(desk_dialogue, out.state, command="kb", args="推荐一家好吃的餐厅")
    assert split(out)[0] == [] and "没有找到" in split(out)[1][0]


def test_only_the_holder_keeps_it_until_released(desk_dialogue):
    out = desk_dialogue.handle(ConversationState(), Command("human", at=TUESDAY_10))
    out = staff(desk_dialogue, out.state, command="take")
    out = staff(desk_dialogue, out.state, command="take", who=("s2", "李雷"))
    assert "已由 王芳 接手" in split(out)[1][0]
    assert out.state.handoff is not None and out.state.handoff.staff_id == "s1"
    out = staff(desk_dialogue, out.state, command="release")
    assert out.state.handoff is not None and out.state.handoff.status == "waiting"
    out = staff(desk_dialogue, out.state, text="我来处理", who=("s2", "李雷"))  # answering takes it
    assert out.state.handoff is not None and out.state.handoff.staff_name == "李雷"
    assert split(out)[0] == ["客服：我来处理"]


def test_files_are_relayed_both_ways_by_reference(desk_dialogue):
    out = desk_dialogue.handle(ConversationState(), Command("human", at=TUESDAY_10))
    out = desk_dialogue.handle(out.state, FileMessage("photo", "AgAD-photo", caption="营业执照", at=TUESDAY_10))
    relay = next(r for r in out.replies if r.to == "staff")
    assert relay.file is not None and relay.file.ref == "AgAD-photo" and "营业执照" in relay.text
    reply = FileMessage("document", "BQAD-doc", name="说明.pdf")
    out = desk_dialogue.handle(out.state, StaffMessage("s1", "王芳", file=reply, at=TUESDAY_10))
    to_user = next(r for r in out.replies if r.to == "user")
    assert to_user.file is not None and to_user.file.ref == "BQAD-doc"


def test_timers_nudge_staff_then_give_the_user_the_hotline(desk_dialogue, lexical):
    out = desk_dialogue.handle(ConversationState(region="zhuhai"), Command("human", at=TUESDAY_10))
    keys = {r.key: r.due for r in out.state.reminders}
    assert keys == {
        "handoff:1:nudge": TUESDAY_10 + timedelta(minutes=5),
        "handoff:1:give_up": TUESDAY_10 + timedelta(minutes=15),
    }
    out = desk_dialogue.handle(out.state, Timer("handoff:1:nudge", at=TUESDAY_10 + timedelta(minutes=5)))
    assert split(out) == ([], ["⏰ 用户已等待 5 分钟，尚无人接手。"])
    assert {r.key for r in out.state.reminders} == {"handoff:1:give_up"}
    out = desk_dialogue.handle(out.state, Timer("handoff:1:nudge", at=TUESDAY_10 + timedelta(minutes=6)))
    assert out.replies == []  # once
    out = desk_dialogue.handle(out.state, Timer("handoff:1:give_up", at=TUESDAY_10 + timedelta(minutes=15)))
    to_user, to_staff = split(out)
    assert "客服暂时都在忙" in to_user[0] and "0756" in to_user[0] and "15 分钟内无人回复" in to_staff[0]
    assert out.state.handoff is not None and out.state.handoff.status == "message"
    # Nobody answered today: the topic comes up again when the desk opens tomorrow.
    wednesday_9 = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)
    assert {r.key: r.due for r in out.state.reminders} == {"handoff:1:hours": wednesday_9}
    out = user(desk_dialogue, lexical, out.state, "请回电", at=TUESDAY_10 + timedelta(minutes=20))
    assert split(out) == ([], ["👤 请回电"])  # kept for staff; told once already
    out = staff(desk_dialogue, out.state, text="您好，我来回电。", at=TUESDAY_10 + timedelta(minutes=30))
    assert out.state.reminders == []  # answered: no reminder tomorrow


def test_a_claimed_handoff_cancels_its_timers(desk_dialogue):
    out = desk_dialogue.handle(ConversationState(), Command("human", at=TUESDAY_10))
    out = staff(desk_dialogue, out.state, command="take")
    assert out.state.reminders == []
    out = desk_dialogue.handle(out.state, Timer("handoff:1:give_up", at=TUESDAY_10 + timedelta(minutes=15)))
    assert out.replies == []


def test_outside_service_hours_the_user_leaves_a_message(desk_dialogue, lexical):
    out = desk_dialogue.handle(ConversationState(region="shaanxi"), Command("human", at=SATURDAY_10))
    to_user, to_staff = split(out)
    assert "不是人工客服的服务时间" in to_user[0] and "mon-fri 09:00-17:30" in to_user[0] and "029" in to_user[0]
    assert "服务时间外" in to_staff[0]
    assert out.state.handoff is not None and out.state.handoff.status == "message"
    monday_9 = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
    assert {r.key: r.due for r in out.state.reminders} == {"handoff:1:hours": monday_9}
    out = user(desk_dialogue, lexical, out.state, "周一请联系我", at=SATURDAY_10)
    assert split(out) == ([], ["👤 周一请联系我"])
    # When the desk opens the topic comes up again, once.
    out = desk_dialogue.handle(out.state, Timer("handoff:1:hours", at=monday_9))
    assert split(out) == ([], ["🔔 服务时间开始：此用户 11-28 10:00 起的留言尚未回复。"])
    assert out.state.reminders == []
    out = desk_dialogue.handle(out.state, Timer("handoff:1:hours", at=monday_9 + timedelta(seconds=1)))
    assert out.replies == []


def test_the_user_can_cancel_and_asking_again_does_not_open_a_second(desk_dialogue):
    out = desk_dialogue.handle(ConversationState(), Command("human", at=TUESDAY_10))
    out = desk_dialogue.handle(out.state, ButtonPress("human", at=TUESDAY_10))
    assert "已在等待人工客服" in split(out)[0][0] and split(out)[1] == []
    out = desk_dialogue.handle(out.state, Command("cancel", at=TUESDAY_10))
    to_user, to_staff = split(out)
    assert "已取消转人工" in to_user[0] and "用户取消" in to_staff[0]
    assert out.state.handoff is None and out.state.last_handoff is not None
    out = desk_dialogue.handle(out.state, Command("human", at=TUESDAY_10))
    assert out.state.handoff is not None and out.state.handoff.number == 2


def test_staff_messages_for_a_conversation_not_handed_over_reach_nobody(desk_dialogue):
    out = staff(desk_dialogue, ConversationState(), text="你好")
    assert split(out) == ([], ["该会话目前不在人工服务中（已交还机器人），消息未发送给用户。"])
    out = staff(desk_dialogue, ConversationState(), command="take")
    assert split(out)[0] == []


def test_without_a_desk_a_request_for_a_person_gets_the_hotlines(dialogue):
    out = dialogue.handle(ConversationState(region="shaanxi"), Command("human", at=TUESDAY_10))
    assert out.state.handoff is None and all(r.to == "user" for r in out.replies)
    assert "没有在线的人工客服" in out.replies[0].text


@pytest.mark.parametrize("spec", ["weekdays", "mon-fri 9-17", "mon-fri 18:00-09:00", "xyz-fri 09:00-17:00"])
def test_service_hours_that_do_not_parse_say_what_is_expected(spec):
    with pytest.raises(ValueError, match=r"expected e\.g\. 'mon-fri 09:00-17:30'|start before end"):
        ServiceHours.parse(spec)


def test_service_hours_cover_the_window_in_shanghai_time():
    hours = ServiceHours.parse("mon-fri 09:00-17:30")
    assert hours.open_at(TUESDAY_10)
    assert not hours.open_at(SATURDAY_10)
    assert not hours.open_at(datetime(2026, 11, 24, 9, 31, tzinfo=UTC))  # 17:31 in Shanghai
    assert ServiceHours.parse("always").open_at(SATURDAY_10)
    friday_evening = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)  # 18:00 in Shanghai
    assert hours.next_opening(friday_evening) == datetime(2026, 11, 30, 1, 0, tzinfo=UTC)
    assert hours.next_opening(TUESDAY_10) == datetime(2026, 11, 25, 1, 0, tzinfo=UTC)
    weekend = ServiceHours.parse("sat-sun 10:00-12:00")
    assert weekend.next_opening(TUESDAY_10) == datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
