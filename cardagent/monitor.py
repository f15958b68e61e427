"""Smart-card readers and cards as PC/SC reports them, watched by a supervisor that never dies.

pyscard's ``ReaderMonitor`` and ``CardMonitor`` run threads that end silently when pcscd
(or the Windows smart-card service) stops, and never come back (pyscard issues #27, #82,
#114). ``Monitor.run`` is its own loop around ``SCardGetStatusChange`` instead:

* it waits for events (no busy polling): with the PnP notification reader
  (``\\\\?PnP?\\Notification``) the wait has no time-out and also wakes when a reader is
  plugged in or out; where that reader is not supported, the wait times out every
  ``poll`` seconds to list the readers again;
* any error that is not a time-out or a cancel ends the context: the service is reported
  unavailable, and a new context is tried with back-off until the service is back;
* ``stop`` cancels the wait from another thread (``SCardCancel``).

Every change is passed to ``emit`` with the full status after it, so a consumer that
missed changes can always send the current state.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from smartcard import scard

__all__ = ["Change", "Monitor", "PcscError", "ReaderState", "Status", "format_atr", "snapshot"]

log = logging.getLogger(__name__)

PNP = "\\\\?PnP?\\Notification"
Kind = Literal["service_up", "service_down", "reader_added", "reader_removed", "card_inserted", "card_removed"]
_BACKOFF = (0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


class PcscError(Exception):
    """A PC/SC call failed; the context is no longer usable."""

    def __init__(self, call: str, code: int) -> None:
        self.code = code & 0xFFFFFFFF
        super().__init__(f"{call}: {scard.SCardGetErrorMessage(code)} (0x{self.code:08X})")


def format_atr(atr: Sequence[int]) -> str:
    """``3B 88 80 01 ...``: how PC/SC tools show an ATR."""
    return " ".join(f"{b:02X}" for b in atr)


@dataclass(frozen=True)
class ReaderState:
    name: str
    card: bool = False
    atr: str = ""  # of the card in it, when there is one


@dataclass(frozen=True)
class Status:
    """What the PC sees now. ``service``: False when the smart-card service is not
    answering (``error`` says why); the readers are then unknown."""

    service: bool
    readers: tuple[ReaderState, ...] = ()
    error: str = ""

    def reader(self, name: str) -> ReaderState | None:
        return next((r for r in self.readers if r.name == name), None)


@dataclass(frozen=True)
class Change:
    kind: Kind
    reader: str = ""
    atr: str = ""
    at: float = field(default_factory=time.time)


Emit = Callable[[Change, Status], None]


def _check(call: str, code: int) -> None:
    if code != scard.SCARD_S_SUCCESS:
        raise PcscError(call, code)


def _establish() -> Any:
    code, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    _check("SCardEstablishContext", code)
    return context


def _list_readers(context: Any) -> list[str]:
    code, readers = scard.SCardListReaders(context, [])
    if code == scard.SCARD_E_NO_READERS_AVAILABLE:
        return []
    _check("SCardListReaders", code)
    return list(readers)


def _read_states(context: Any, names: Sequence[str]) -> dict[str, ReaderState]:
    if not names:
        return {}
    code, states = scard.SCardGetStatusChange(context, 0, [(n, scard.SCARD_STATE_UNAWARE) for n in names])
    _check("SCardGetStatusChange", code)
    return {name: _reader(name, event, atr) for name, event, atr in states}


def _reader(name: str, event: int, atr: Sequence[int]) -> ReaderState:
    present = bool(event & scard.SCARD_STATE_PRESENT)
    return ReaderState(name, present, format_atr(atr) if present else "")


def snapshot() -> Status:
    """The readers and cards once (``portpal-agent status``); never raises for PC/SC."""
    try:
        context = _establish()
    except PcscError as exc:
        return Status(False, error=str(exc))
    try:
        names = _list_readers(context)
        states = _read_states(context, names)
        return Status(True, tuple(states[n] for n in names if n in states))
    except PcscError as exc:
        return Status(False, error=str(exc))
    finally:
        scard.SCardReleaseContext(context)


class Monitor:
    """Watches PC/SC until ``stop``; ``run`` blocks (start it in a thread)."""

    def __init__(self, emit: Emit, *, poll: float = 2.0, backoff: Sequence[float] = _BACKOFF) -> None:
        self.emit = emit
        self.poll = poll
        self.backoff = tuple(backoff)
        self._stop = threading.Event()
        self._done = threading.Event()
        # Set once the first look is done (readers read, or the service found missing):
        # what ``emit`` got before it is the state found at start, not news.
        self.ready = threading.Event()
        self._lock = threading.RLock()  # ``emit`` may read ``status``
        self._context: Any = None
        self._service: bool | None = None  # None: not known yet
        self._readers: dict[str, ReaderState] = {}
        self._error = ""

    @property
    def status(self) -> Status:
        with self._lock:
            return self._status()

    def _status(self) -> Status:
        return Status(bool(self._service), tuple(self._readers.values()), "" if self._service else self._error)

    def stop(self, timeout: float = 5.0) -> bool:
        """End ``run``, from any thread; True once it has ended. A cancel only reaches a
        wait already under way, so it is repeated until ``run`` notices."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        while not self._done.wait(0.05):
            if time.monotonic() > deadline:
                return False
            with self._lock:
                if self._context is not None:
                    scard.SCardCancel(self._context)
        return True

    def run(self) -> None:
        self._done.clear()
        try:
            self._supervise()
        finally:
            self._done.set()

    def _supervise(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                context = _establish()
            except PcscError as exc:
                self._service_down(str(exc))
                self._stop.wait(self.backoff[min(failures, len(self.backoff) - 1)])
                failures += 1
                continue
            with self._lock:
                self._context = context
            if self._stop.is_set():  # stopped between the check and holding the context
                scard.SCardReleaseContext(context)
                break
            try:
                self._watch(context)
                failures = 0
            except PcscError as exc:
                log.warning("智能卡服务中断：%s", exc)  # the agent's log is read by the user at the PC
                self._service_down(str(exc))
                self._stop.wait(self.backoff[min(failures, len(self.backoff) - 1)])
                failures += 1
            except Exception as exc:  # a bug must not end the agent's monitoring
                log.exception("读卡监测出错，重新开始")
                self._service_down(f"{type(exc).__name__}: {exc}")
                self._stop.wait(self.backoff[-1])
            finally:
                with self._lock:
                    self._context = None
                scard.SCardReleaseContext(context)

    # ------------------------------------------------------------------ one context
    def _watch(self, context: Any) -> None:
        """Follow readers and cards on one context; returns when stopped."""
        # Where the PnP reader is not supported it comes back UNKNOWN (as pyscard checks).
        code, probe = scard.SCardGetStatusChange(context, 0, [(PNP, scard.SCARD_STATE_UNAWARE)])
        if code != scard.SCARD_E_TIMEOUT:
            _check("SCardGetStatusChange", code)
        event = probe[0][1] if probe else scard.SCARD_STATE_UNKNOWN
        pnp = not event & scard.SCARD_STATE_UNKNOWN
        pnp_state = event & ~scard.SCARD_STATE_CHANGED
        self._service_up()
        known = self._refresh(context)
        self.ready.set()
        while not self._stop.is_set():
            query = [*known.items()] + ([(PNP, pnp_state)] if pnp else [])
            if not query:  # no readers and no way to be told of one: look again later
                self._stop.wait(self.poll)
                known = self._refresh(context)
                continue
            timeout = scard.INFINITE if pnp else int(self.poll * 1000)
            code, states = scard.SCardGetStatusChange(context, timeout, query)
            if code == scard.SCARD_E_CANCELLED or self._stop.is_set():
                return
            if code == scard.SCARD_E_TIMEOUT:  # polling: a reader may have come or gone
                if set(_list_readers(context)) != set(known):
                    known = self._refresh(context)
                continue
            if code in (scard.SCARD_E_UNKNOWN_READER, scard.SCARD_E_READER_UNAVAILABLE):
                known = self._refresh(context)
                continue
            _check("SCardGetStatusChange", code)
            readers_changed = False
            current = dict(self._readers)
            for name, event, atr in states:
                if name == PNP:
                    readers_changed |= bool(event & scard.SCARD_STATE_CHANGED)
                    pnp_state = event & ~scard.SCARD_STATE_CHANGED
                elif event & (scard.SCARD_STATE_UNKNOWN | scard.SCARD_STATE_UNAVAILABLE):
                    readers_changed = True
                else:
                    known[name] = event & ~scard.SCARD_STATE_CHANGED
                    current[name] = _reader(name, event, atr)
            if readers_changed:
                known = self._refresh(context)
            else:
                self._update(current)

    def _refresh(self, context: Any) -> dict[str, int]:
        """Read every reader afresh (after readers came or went); returns their states."""
        for _ in range(3):
            names = _list_readers(context)
            if not names:
                self._update({})
                return {}
            query = [(n, scard.SCARD_STATE_UNAWARE) for n in names]
            code, states = scard.SCardGetStatusChange(context, 0, query)
            if code in (scard.SCARD_E_UNKNOWN_READER, scard.SCARD_E_READER_UNAVAILABLE):
                continue  # one went away between the list and the read
            _check("SCardGetStatusChange", code)
            self._update({name: _reader(name, event, atr) for name, event, atr in states})
            return {name: event & ~scard.SCARD_STATE_CHANGED for name, event, _ in states}
        raise PcscError("SCardGetStatusChange", scard.SCARD_E_READER_UNAVAILABLE)

    # ------------------------------------------------------------------ reporting
    def _send(self, changes: list[Change]) -> None:
        status = self._status()
        for change in changes:
            try:
                self.emit(change, status)
            except Exception:
                log.exception("card event consumer failed", extra={"change": change.kind})

    def _service_up(self) -> None:
        with self._lock:
            was, self._service, self._error = self._service, True, ""
            changes = [Change("service_up")] if was is False else []
            if changes:
                self._send(changes)

    def _service_down(self, error: str) -> None:
        with self._lock:
            was, self._service, self._error = self._service, False, error
            if was is not False:
                self._readers = {}
                self._send([Change("service_down")])
        self.ready.set()

    def _update(self, readers: dict[str, ReaderState]) -> None:
        """Make ``readers`` the known state, emitting what changed (removals first)."""
        with self._lock:
            old, self._readers = self._readers, dict(readers)
            changes: list[Change] = []
            for name, was in old.items():
                now = readers.get(name)
                if was.card and (now is None or not now.card or now.atr != was.atr):
                    changes.append(Change("card_removed", name))
                if now is None:
                    changes.append(Change("reader_removed", name))
            for name, now in readers.items():
                prior = old.get(name)
                if prior is None:
                    changes.append(Change("reader_added", name))
                if now.card and (prior is None or not prior.card or prior.atr != now.atr):
                    changes.append(Change("card_inserted", name, now.atr))
            if changes:
                self._send(changes)
