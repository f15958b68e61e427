"""The card agent in the conversation, through the pure dialogue core: what each report
says where the user is, and questions answered from the last status."""

from __future__ import annotations

from datetime import timedelta

from bot.core.events import AgentReport, CardChange, CardReader, Command, PairingCode
from tests.auxil.chat import T0, Walk

PC = "财务室电脑"
READER = "ACS ACR39U 00 00"
ATR = "3B 88 80 01"


def report(*changes, card=True, service=True, late=0, readers=None, at=T0):
    readers = readers if readers is not None else ((CardReader(READER, card, ATR if card else ""),) if service else ())
    return AgentReport(
        "report", PC, service=service, error="" if service else "pcscd stopped", readers=readers,
        changes=tuple(CardChange(kind, READER, ATR if kind == "card_inserted" else "", at) for kind in changes),
        late=late, at=at,
    )  # fmt: skip


def paired(dialogue, lexical):
    walk = Walk(dialogue, lexical)
    walk.event(AgentReport("paired", PC, at=T0))
    return walk


def at_card_step(walk):
    """Shaanxi, with a card: step 1 (Single Window registration) is done with the e-port card."""
    walk.say("我要办理跨境电商入网")
    walk.press("陕西")
    walk.press("有卡")
    return walk


def test_a_pairing_code_is_shown_with_the_command_and_kept_out_of_the_history(dialogue, lexical):
    walk = Walk(dialogue, lexical)
    text = walk.event(PairingCode("ABCD2345", T0 + timedelta(minutes=10), "http://127.0.0.1:8080", at=T0))
    assert "portpal-agent pair ABCD-2345 --server http://127.0.0.1:8080" in text
    assert "09:10 前有效（10 分钟）" in text  # China time
    assert not any("ABCD" in turn.text for turn in walk.state.history)


def test_without_an_agent_endpoint_pair_and_unpair_say_what_they_can(dialogue, lexical):
    walk = Walk(dialogue, lexical)
    assert "没有开放卡片助手的接口" in walk.event(Command("pair", at=T0))
    assert "目前没有连接卡片助手" in walk.event(Command("unpair", at=T0))


def test_paired_confirms_with_the_pc_name_and_names_the_pc_it_replaced(dialogue, lexical):
    walk = Walk(dialogue, lexical)
    text = walk.event(AgentReport("paired", PC, replaced=("旧电脑",), at=T0))
    assert text.startswith(f"已连接：电脑 {PC}。") and "旧电脑" in text
    assert walk.state.card is not None and walk.state.card.agent == PC
    assert walk.event(AgentReport("unpaired", PC, at=T0)).startswith(f"已断开与电脑 {PC} 的连接")
    assert walk.state.card is None


def test_a_card_step_shows_what_the_agent_sees(dialogue, lexical):
    walk = at_card_step(Walk(dialogue, lexical))
    assert "🔌 本步骤要用电子口岸卡。" in walk.replies[-1].text and "发送 /pair" in walk.replies[-1].text

    walk = at_card_step(paired(dialogue, lexical))
    assert f"卡片助手：电脑 {PC} 目前没有检测到卡片，请插入。" in walk.replies[-1].text
    walk.event(report("card_inserted"))
    walk.event(Command("walkthrough", at=T0))
    assert f"卡片助手：读卡器 {READER} 中已插入卡片 ✓" in walk.replies[-1].text


def test_no_card_branch_needs_no_card(dialogue, lexical):
    walk = paired(dialogue, lexical)
    walk.say("我要办理跨境电商入网")
    walk.press("陕西")
    text = walk.press("无卡")
    assert "本步骤要用" not in text
    assert walk.event(report("card_inserted")) == f"检测到读卡器 {READER} 中已插入卡片。"
    assert walk.buttons() == []


def test_inserting_the_card_at_a_card_step_confirms_and_offers_to_go_on(dialogue, lexical):
    walk = at_card_step(paired(dialogue, lexical))
    text = walk.event(report("card_inserted"))
    assert (
        text
        == f"检测到读卡器 {READER} 中已插入卡片，可以继续“中国（陕西）国际贸易“单一窗口”注册”了（本步骤用电子口岸卡）。"
    )
    assert walk.buttons() == ["这一步办好了", "查看本步骤"]
    walk.press("这一步办好了")
    assert walk.state.progress().done == ["sw_register"]


def test_taking_the_card_out_mid_step_warns_and_elsewhere_just_says_so(dialogue, lexical):
    walk = at_card_step(paired(dialogue, lexical))
    walk.event(report("card_inserted"))
    text = walk.event(report("card_removed", card=False))
    assert text.startswith(f"⚠️ 卡片已从读卡器 {READER} 中取出") and "要用电子口岸卡：请重新插入" in text

    elsewhere = paired(dialogue, lexical)
    assert elsewhere.event(report("card_removed", card=False)) == f"读卡器 {READER} 中的卡片已取出。"


def test_offline_is_told_only_at_a_card_step_and_then_its_return(dialogue, lexical):
    elsewhere = paired(dialogue, lexical)
    assert elsewhere.event(AgentReport("offline", PC, at=T0)) == ""
    assert elsewhere.state.card is not None and not elsewhere.state.card.online
    assert elsewhere.event(report()) == "", "its return is news only if its absence was told"

    walk = at_card_step(paired(dialogue, lexical))
    text = walk.event(AgentReport("offline", PC, at=T0))
    assert f"卡片助手（电脑 {PC}）已有 2 分钟没有上报" in text and "portpal-agent run" in text
    assert walk.event(report()) == f"卡片助手（电脑 {PC}）又连上了。"


def test_the_card_question_is_answered_from_the_last_status(dialogue, lexical):
    walk = Walk(dialogue, lexical)
    assert "还没有连接卡片助手" in walk.say("我的卡插好了吗") and "/pair" in walk.replies[-1].text

    walk = paired(dialogue, lexical)
    walk.event(report(card=True))
    assert walk.say("我的卡插好了吗") == f"读卡器 {READER} 中已插入卡片。"
    walk.event(report(card=False))
    assert walk.say("读卡器识别到卡了吗") == f"读卡器 {READER} 中没有卡片。"
    walk.event(report("service_down", service=False))
    assert "智能卡服务不可用（pcscd stopped）" in walk.say("我的卡插好了吗")
    walk.event(report("service_up", readers=()))
    assert "没有检测到读卡器" in walk.say("我的卡插好了吗")
    walk.event(report("reader_added", "card_inserted"))
    walk.event(AgentReport("offline", PC, at=T0 + timedelta(minutes=3)))
    text = walk.say("我的卡插好了吗")
    assert text.startswith(f"卡片助手（电脑 {PC}）目前离线，最后一次上报在 11-23 09:00")
    assert text.endswith(f"读卡器 {READER} 中已插入卡片。")


def test_the_card_question_at_a_card_step_offers_to_go_on_when_the_card_is_in(dialogue, lexical):
    walk = at_card_step(paired(dialogue, lexical))
    walk.event(report(card=True))
    walk.say("我的卡插好了吗")
    assert walk.buttons() == ["这一步办好了", "查看本步骤"]


def test_changes_kept_while_the_bot_was_unreachable_are_summed_up_with_the_state_now(dialogue, lexical):
    walk = paired(dialogue, lexical)
    text = walk.event(report(card=True, late=4))
    assert text == f"卡片助手（电脑 {PC}）连不上机器人期间发生了 4 个变化；现在的状态：\n读卡器 {READER} 中已插入卡片。"


def test_service_changes_and_readers_are_told_in_order(dialogue, lexical):
    walk = paired(dialogue, lexical)
    walk.event(report("service_down", service=False))
    assert walk.replies[-1].text == f"⚠️ 电脑 {PC} 上的智能卡服务停止了，暂时看不到读卡器。服务恢复后我会告诉您。"
    text = walk.event(report("service_up", "reader_added", "card_inserted"))
    assert text.splitlines() == [
        f"电脑 {PC} 上的智能卡服务已恢复。", f"检测到读卡器：{READER}。", f"检测到读卡器 {READER} 中已插入卡片。",
    ]  # fmt: skip


def test_english_users_get_english(dialogue, lexical):
    walk = paired(dialogue, lexical)
    walk.say("is my card inserted")
    assert walk.state.lang == "en"
    assert walk.event(report("card_inserted")) == f"A card is in reader {READER}."
