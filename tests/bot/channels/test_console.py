from __future__ import annotations

import io

from bot.assistant import Assistant
from bot.channels.console import ConsoleChannel
from bot.core.events import ButtonPress, Command, TextMessage


def make(store):
    out = io.StringIO()
    return ConsoleChannel(Assistant(store), out, interactive=False), out


async def test_buttons_are_numbered_and_pickable_by_number_or_label(store):
    channel, out = make(store)
    await channel.send("法人卡去哪办")
    assert "  1. 陕西\n  2. 珠海" in out.getvalue()
    assert channel.to_event("2") == ButtonPress("region:zhuhai")
    assert channel.to_event("陕西") == ButtonPress("region:shaanxi")
    assert isinstance(channel.to_event("9"), TextMessage)
    await channel.send("2")
    assert "之后按珠海的手册回答" in out.getvalue()


async def test_commands_and_text(store):
    channel, out = make(store)
    assert channel.to_event("/help") == Command("help")
    replies = await channel.send("宝鸡哪里可以办卡")
    assert "0917-3276018" in replies[0].text
    assert "0917-3276018" in out.getvalue()


async def test_state_survives_a_new_assistant(store):
    channel, _ = make(store)
    await channel.send("我们在珠海")
    channel2, out2 = make(store)  # as after a restart
    await channel2.send("法人卡去哪办")
    assert "0756-8125566" in out2.getvalue() and "【陕西】" not in out2.getvalue()


async def test_buttons_of_a_reply_that_numbers_its_own_options_are_not_numbered(store):
    from bot.core.replies import Button, Reply

    channel, out = make(store)
    channel.render([Reply("可多选：1. 电商企业、2. 物流企业", (Button("取消填表", "fm:cancel"),), numbered=False)])
    assert "  - 取消填表" in out.getvalue()
    assert channel.to_event("1") == TextMessage("1")
    assert channel.to_event("取消填表") == ButtonPress("fm:cancel")
