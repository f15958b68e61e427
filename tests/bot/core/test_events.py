"""Incoming events: NULs dropped everywhere in them, an event without any left as it is."""

from __future__ import annotations

from bot.core.events import AgentReport, CardChange, CardReader, StaffMessage, TextMessage, without_nul


def test_nuls_are_dropped_from_every_text_nested_ones_too():
    report = AgentReport(
        "report",
        "财务\x00室",
        readers=(CardReader("R\x0000", True),),
        changes=(CardChange("card_inserted", "R\x0000"),),
    )
    cleaned = without_nul(report)
    assert (cleaned.agent, cleaned.readers[0].name, cleaned.changes[0].reader) == ("财务室", "R00", "R00")
    assert cleaned.readers[0].card is True and cleaned.at == report.at
    staff = without_nul(StaffMessage("9", "客服", text="您好\x00", command="note", args="\x00x"))
    assert (staff.text, staff.args) == ("您好", "x")


def test_an_event_without_nuls_is_the_same_object():
    for event in (TextMessage("宝鸡哪里可以办卡"), AgentReport("report", "pc", readers=(CardReader("R 00"),))):
        assert without_nul(event) is event
