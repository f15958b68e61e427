"""``portpal-agent run``: watch the readers, tell the bot, survive whatever happens.

Two threads. The monitor (``cardagent.monitor``) waits on PC/SC and puts each change
with the status after it on a queue. The main thread waits on that queue, with a time-out
only for the next heartbeat (every ``HEARTBEAT`` seconds) or retry: no busy polling.

Each report carries the status now and the changes not yet accepted, under a sequence
number. Until the bot answers, the same changes are resent under the same number: if the
first try did arrive, the bot refuses the resend as a replay (409) and the agent knows
they were delivered, so no change is told twice. Changes that come meanwhile wait for the
next number. The unsent changes are kept in a file (``AgentFiles.save_queue``), so a
restart or a long outage loses nothing but what passes ``QUEUE_LIMIT``; when the bot is
back the report carries the status now first, and the bot sums up the old changes.

An unpaired or unknown agent (410, 401) stops with a message: nothing it sends would be
accepted until it is paired again. Everything else is retried with back-off.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cardagent.client import RefusedError, UnreachableError, post_signed
from cardagent.files import QUEUE_LIMIT, AgentFiles, Registration
from cardagent.monitor import Change, Monitor, Status
from cardagent.protocol import PATH_EVENTS

__all__ = ["HEARTBEAT", "Runner"]

log = logging.getLogger("portpal-agent")

HEARTBEAT = 30.0
RETRY = (1.0, 2.0, 5.0, 10.0, 30.0)
_STOP = object()

Post = Callable[[str, str, str, Ed25519PrivateKey, int, dict[str, Any]], dict[str, Any]]

_SAY = {
    "service_up": "智能卡服务已恢复",
    "service_down": "智能卡服务不可用",
    "reader_added": "检测到读卡器 {reader}",
    "reader_removed": "读卡器 {reader} 已断开",
    "card_inserted": "读卡器 {reader} 中已插入卡片（ATR {atr}）",
    "card_removed": "读卡器 {reader} 中的卡片已取出",
}


def describe(change: Change) -> str:
    return _SAY[change.kind].format(reader=change.reader, atr=change.atr)


class Runner:
    """Runs until ``stop`` (from a signal handler or another thread); returns an exit status."""

    def __init__(
        self,
        files: AgentFiles,
        registration: Registration,
        key: Ed25519PrivateKey,
        *,
        heartbeat: float = HEARTBEAT,
        post: Post = post_signed,
        monitor: Callable[[Callable[[Change, Status], None]], Monitor] = Monitor,
    ) -> None:
        self.files = files
        self.registration = registration
        self.key = key
        self.heartbeat = heartbeat
        self.post = post
        self._inbox: queue.Queue[Any] = queue.Queue()
        self.monitor = monitor(lambda change, status: self._inbox.put((change, status)))
        self.queue = files.load_queue()
        self.sent = 0  # reports accepted (for tests and the log)

    def stop(self) -> None:
        """Safe from a signal handler: the main loop wakes and ends."""
        self._inbox.put(_STOP)

    # ------------------------------------------------------------------ the queue of changes
    def _add(self, change: Change) -> None:
        q = self.queue
        q.pending.append({"kind": change.kind, "reader": change.reader, "atr": change.atr, "at": change.at})
        over = len(q.batch) + len(q.pending) - QUEUE_LIMIT
        if over > 0:
            del q.pending[:over]
            q.dropped += over

    def _next_seq(self) -> int:
        self.registration.seq += 1
        self.files.save(self.registration)  # before sending: a restart never reuses a number
        return self.registration.seq

    # ------------------------------------------------------------------ sending
    def _send(self, status: Status) -> bool | None:
        """One report; True: accepted, False: try again later, None: stop (unpaired)."""
        q = self.queue
        if not q.batch_seq:
            q.batch, q.pending, q.batch_seq, q.batch_tried = q.pending, [], self._next_seq(), False
        first, q.batch_tried = not q.batch_tried, True
        self.files.save_queue(q)
        payload = {
            "status": {
                "service": status.service,
                "error": status.error,
                "readers": [asdict(r) for r in status.readers],
            },
            "changes": q.batch,
        }
        reg = self.registration
        try:
            self.post(reg.server, PATH_EVENTS, reg.agent_id, self.key, q.batch_seq, payload)
        except UnreachableError as exc:
            log.warning("连不上机器人，稍后重试（%d 个变化待发送）：%s", len(q.batch) + len(q.pending), exc)
            return False
        except RefusedError as exc:
            if exc.error == "replay":
                reg.seq = max(reg.seq, exc.last_seq)
                if first:
                    # Never sent before, so the number was used by something else (a pairing
                    # file restored from a backup): number the batch afresh.
                    q.batch_seq, q.batch_tried = self._next_seq(), False
                    self.files.save_queue(q)
                    return False
                # Sent before and its answer lost: the bot has it already.
            elif exc.error in {"revoked", "unknown", "signature"}:
                log.error(
                    "机器人不再接受这台电脑的上报（%s）：请在聊天中发送 /pair，再运行 portpal-agent pair 配对码。", exc
                )
                return None
            elif exc.error == "bad_request":
                log.error("机器人拒收了一批变化（%s），已丢弃；下一次上报会带上当前状态。", exc)
            else:  # stale (the PC's clock), rate limits: wait and try again
                log.warning("机器人拒收上报，稍后重试：%s", exc)
                return False
        q.batch, q.batch_seq, q.batch_tried = [], 0, False
        self.files.save_queue(q)
        self.sent += 1
        return True

    # ------------------------------------------------------------------ the loop
    def run(self) -> int:
        thread = threading.Thread(target=self.monitor.run, name="pcsc-monitor", daemon=True)
        thread.start()
        self.monitor.ready.wait(10.0)
        while True:  # what the monitor found at start is the state, not news
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                self.monitor.stop()
                return 0
        status = self.monitor.status
        log.info("开始监测：%s", _summary(status))
        failures = 0
        due = time.monotonic()  # the state now goes first
        try:
            while True:
                try:
                    item = self._inbox.get(timeout=max(0.0, due - time.monotonic()))
                except queue.Empty:
                    item = None
                if item is _STOP:
                    return 0
                if item is not None:
                    change, status = item
                    log.info(describe(change))
                    self._add(change)
                    while True:  # changes that came together go together
                        try:
                            more = self._inbox.get_nowait()
                        except queue.Empty:
                            break
                        if more is _STOP:
                            self.files.save_queue(self.queue)
                            return 0
                        change, status = more
                        log.info(describe(change))
                        self._add(change)
                    self.files.save_queue(self.queue)
                    if failures:  # the bot is unreachable: the retry time stands
                        continue
                elif time.monotonic() < due:
                    continue
                result = self._send(status)
                if result is None:
                    return 3
                if result:
                    failures = 0
                    # More may have come while this was sent; otherwise the next heartbeat.
                    due = time.monotonic() + (0 if self.queue.pending else self.heartbeat)
                else:
                    due = time.monotonic() + RETRY[min(failures, len(RETRY) - 1)]
                    failures += 1
        finally:
            self.monitor.stop()


def _summary(status: Status) -> str:
    if not status.service:
        return f"智能卡服务不可用（{status.error}）"
    if not status.readers:
        return "没有读卡器"
    return "；".join(f"{r.name}：{'已插卡' if r.card else '未插卡'}" for r in status.readers)
