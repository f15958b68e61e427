from __future__ import annotations

from bot.core.events import ButtonPress, Command, TextMessage
from bot.core.state import ConversationState


def say(dialogue, lexical, state, text):
    return dialogue.handle(state, TextMessage(text), lexical.parse_sync(text))


def test_handle_does_not_mutate_the_input_state(dialogue, lexical):
    state = ConversationState()
    out = say(dialogue, lexical, state, "我在珠海，法人卡去哪办")
    assert state.region is None and state.history == []
    assert out.state.region == "zhuhai"


def test_region_named_is_remembered(dialogue, lexical):
    out = say(dialogue, lexical, ConversationState(), "珠海单一窗口怎么注册")
    assert out.state.region == "zhuhai"
    out = say(dialogue, lexical, out.state, "法人卡去哪办")
    assert "0756-8125566" in out.replies[0].text
    assert "【陕西】" not in out.replies[0].text


def test_ambiguous_question_offers_regions_and_reanswers(dialogue, lexical):
    out = say(dialogue, lexical, ConversationState(), "法人卡去哪办")
    assert len(out.replies) == 2
    payloads = [b.payload for b in out.replies[1].buttons]
    assert payloads == ["region:shaanxi", "region:zhuhai"]
    out = dialogue.handle(out.state, ButtonPress("region:shaanxi"))
    assert out.state.region == "shaanxi" and out.state.pending_question is None
    assert "线下办理" in out.replies[1].text and "0756" not in out.replies[1].text


def test_fallback_offers_human_then_gives_hotline(dialogue, lexical):
    out = say(dialogue, lexical, ConversationState(region="shaanxi"), "推荐一家好吃的餐厅")
    assert out.answer is not None and out.answer.fallback
    assert [b.payload for b in out.replies[0].buttons] == ["human", "help"]
    out = say(dialogue, lexical, out.state, "今天股市怎么样")
    assert out.state.fallback_streak == 2
    assert "029-95198" in out.replies[0].text
    out = say(dialogue, lexical, out.state, "宝鸡哪里可以办卡")
    assert out.state.fallback_streak == 0


def test_human_request_without_staff_gives_region_hotlines(dialogue, lexical):
    out = say(dialogue, lexical, ConversationState(region="zhuhai"), "转人工")
    assert out.notes.get("handoff_requested") is True
    assert "0756-8125566" in out.replies[0].text and "029-95198" not in out.replies[0].text


def test_english_question_gets_english_reply(dialogue, lexical):
    out = say(dialogue, lexical, ConversationState(), "What is the Shaanxi e-port hotline?")
    assert out.state.lang == "en"
    assert "029-95198" in out.replies[0].text and "hotline" in out.replies[0].text


def test_commands(dialogue):
    state = ConversationState()
    start = dialogue.handle(state, Command.parse("/start"))
    assert "口岸助手" in start.replies[0].text
    assert [b.payload for b in start.replies[0].buttons] == ["region:shaanxi", "region:zhuhai", "wt:start"]
    assert "我可以帮您" in dialogue.handle(state, Command.parse("/help@PortPalBot")).replies[0].text
    unknown = dialogue.handle(state, Command.parse("/frobnicate now"))
    assert "/frobnicate" in unknown.replies[0].text and "/help" in unknown.replies[0].text


def test_forged_button_payload_is_rejected_politely(dialogue):
    for payload in ["region:mars", "", "x" * 500, "region:"]:
        out = dialogue.handle(ConversationState(), ButtonPress(payload))
        assert "失效" in out.replies[0].text
        assert out.state.region is None


def test_empty_text(dialogue):
    out = dialogue.handle(ConversationState(), TextMessage("   "))
    assert "请输入" in out.replies[0].text


def test_history_is_bounded(dialogue, lexical):
    state = ConversationState()
    for _ in range(30):
        state = say(dialogue, lexical, state, "谢谢").state
    assert len(state.history) == 20


def test_lone_number_without_buttons_falls_back(dialogue, lexical):
    out = say(dialogue, lexical, ConversationState(region="shaanxi"), "2")
    assert out.answer is not None and out.answer.fallback
