"""The PC/SC supervisor against the real stack: pcscd, vpcd's virtual readers, a virtual card."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator

import pytest

from cardagent.monitor import Change, Monitor, Status, format_atr, snapshot
from tests.auxil.pcsc import ATR, READER, Pcscd

SECOND_READER = READER.replace("00 00", "00 01")


class Recorder:
    """Changes as the monitor emits them, with the status after each."""

    def __init__(self) -> None:
        self.changes: queue.Queue[tuple[Change, Status]] = queue.Queue()

    def __call__(self, change: Change, status: Status) -> None:
        self.changes.put((change, status))

    def next(self, timeout: float = 5) -> tuple[str, str]:
        change, _ = self.changes.get(timeout=timeout)
        return change.kind, change.reader

    def take(self, count: int, timeout: float = 5) -> list[tuple[str, str]]:
        return [self.next(timeout) for _ in range(count)]

    def quiet(self, seconds: float = 0.5) -> bool:
        try:
            change = self.changes.get(timeout=seconds)
        except queue.Empty:
            return True
        raise AssertionError(f"unexpected change {change}")


@pytest.fixture
def watched(running_pcscd: Pcscd) -> Iterator[tuple[Monitor, Recorder]]:
    recorder = Recorder()
    monitor = Monitor(recorder, backoff=(0.1, 0.2, 0.5))
    thread = threading.Thread(target=monitor.run, daemon=True)
    thread.start()
    yield monitor, recorder
    assert monitor.stop(), "the monitor did not stop"
    thread.join(5)
    assert not thread.is_alive()


def test_status_once_lists_readers_and_the_card(running_pcscd):
    status = snapshot()
    assert status.service and [r.name for r in status.readers] == [READER, SECOND_READER]
    assert not status.readers[0].card
    card = running_pcscd.card()
    card.insert()
    try:
        deadline = time.monotonic() + 5
        while not (status := snapshot()).readers[0].card and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (
            status.readers[0].card
            and status.readers[0].atr == format_atr(ATR) == "3B 88 80 01 80 50 50 4F 52 54 50 41 50 4C"
        )
    finally:
        card.remove()


def test_status_says_when_the_service_is_not_running(running_pcscd):
    running_pcscd.stop()
    status = snapshot()
    assert not status.service and status.readers == ()
    assert "0x8010001D" in status.error  # SCARD_E_NO_SERVICE


def test_insert_and_remove_are_reported_in_order_with_the_atr(watched, running_pcscd):
    monitor, recorder = watched
    assert recorder.take(2) == [("reader_added", READER), ("reader_added", SECOND_READER)]
    card = running_pcscd.card()
    card.insert()
    change, status = recorder.changes.get(timeout=5)
    assert (change.kind, change.reader, change.atr) == ("card_inserted", READER, format_atr(ATR))
    assert status.reader(READER) is not None and status.reader(READER).card  # type: ignore[union-attr]
    card.remove()
    assert recorder.next() == ("card_removed", READER)
    assert not monitor.status.readers[0].card
    assert recorder.quiet()


def test_the_monitor_survives_pcscd_stopping_and_reports_it(watched, running_pcscd):
    """pyscard's own monitor threads die here (pyscard #27, #82, #114); ours reports the
    service gone, waits for it, and carries on with the card inserted meanwhile."""
    monitor, recorder = watched
    recorder.take(2)
    card = running_pcscd.card()
    card.insert()
    assert recorder.next() == ("card_inserted", READER)
    card.remove()
    assert recorder.next() == ("card_removed", READER)
    running_pcscd.stop()
    assert recorder.next() == ("service_down", "")
    assert not monitor.status.service and "0x" in monitor.status.error and monitor.status.readers == ()
    time.sleep(1)  # several attempts to reconnect fail meanwhile: reported once
    assert recorder.quiet(0.1)
    running_pcscd.start()
    assert recorder.take(3, timeout=10) == [
        ("service_up", ""),
        ("reader_added", READER),
        ("reader_added", SECOND_READER),
    ]
    card.insert()
    assert recorder.next() == ("card_inserted", READER)
    card.remove()
    assert recorder.next() == ("card_removed", READER)
