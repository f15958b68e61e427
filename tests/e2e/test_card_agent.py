"""The card agent tried as a new user would: ``portpal chat`` and ``portpal-agent`` on one
machine with the real PC/SC stack (pcscd, vpcd, a virtual card). /pair in the chat,
``portpal-agent pair CODE``, ``portpal-agent run``; then cards in and out and the smart-card
service restarted, each told in the chat, in order."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bot.store import Store
from tests.auxil import database
from tests.auxil.pcsc import READER

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent
OTHER_READER = READER.replace("00 00", "00 01")


class Process:
    """A running command whose output lines are collected as they come."""

    def __init__(self, args: list[str], env: dict[str, str], *, stdin: bool = False) -> None:
        self.proc = subprocess.Popen(
            args, env=env, text=True, bufsize=1,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        self.out: list[str] = []
        self.err: list[str] = []
        self.readers = [
            threading.Thread(target=self._collect, args=(stream, lines), daemon=True)
            for stream, lines in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))
        ]
        for reader in self.readers:
            reader.start()

    @staticmethod
    def _collect(stream, lines: list[str]) -> None:
        with stream:
            for line in stream:
                lines.append(line.rstrip("\n"))

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def wait_for(self, pattern: str, *, after: int = 0, timeout: float = 20.0, err: bool = False) -> int:
        """Index of the first line from ``after`` on matching ``pattern``."""
        lines = self.err if err else self.out
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i in range(after, len(lines)):
                if re.search(pattern, lines[i]):
                    return i
            time.sleep(0.02)
        raise AssertionError(f"no line matching {pattern!r} within {timeout} s:\n" + "\n".join(lines[after:]))

    def stop(self) -> int:
        """End it (SIGTERM unless its input was closed) and collect the rest of its output."""
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        elif self.proc.poll() is None:
            self.proc.terminate()
        code = self.proc.wait(30)
        for reader in self.readers:
            reader.join(10)
        return code


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    return database.env_for(
        tmp_path / "data", PORTPAL_NLU="lexical", PORTPAL_HTTP_PORT="0", PORTPAL_AGENT_HOME=str(tmp_path / "agent")
    )


def test_pair_in_chat_then_cards_and_a_service_restart_are_told_in_order(env, running_pcscd, tmp_path):
    chat = Process([str(BIN / "portpal"), "chat", "--chat-id", "new-user"], env, stdin=True)
    agent: Process | None = None
    card = running_pcscd.card()
    try:
        chat.send("/pair")
        line = chat.out[chat.wait_for(r"portpal-agent pair \S+ --server \S+")]
        code, server = re.search(r"portpal-agent pair (\S+) --server (\S+)", line).groups()
        assert server.startswith("http://127.0.0.1:")

        paired = subprocess.run(
            [str(BIN / "portpal-agent"), "pair", code.lower(), "--server", server, "--name", "财务室电脑"],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert paired.returncode == 0, paired.stderr
        assert "已连接：这台电脑（财务室电脑）已和聊天配对" in paired.stdout
        start = chat.wait_for(r"^已连接：电脑 财务室电脑。")
        again = subprocess.run(
            [str(BIN / "portpal-agent"), "pair", code, "--server", server], env=env, capture_output=True, text=True
        )
        assert again.returncode == 1 and "这个配对码已经用过了" in again.stderr

        agent = Process([str(BIN / "portpal-agent"), "run"], env)
        agent.wait_for(r"开始监测：", err=True)
        time.sleep(0.5)  # its first report: the state now, nothing to tell
        card.insert()
        chat.wait_for(rf"^检测到读卡器 {READER} 中已插入卡片。$", after=start)
        chat.send("我的卡插好了吗")
        chat.wait_for(rf"^读卡器 {READER} 中已插入卡片。$", after=start)
        card.remove()
        chat.wait_for(rf"^读卡器 {READER} 中的卡片已取出。$", after=start)

        running_pcscd.stop()
        chat.wait_for(r"^⚠️ 电脑 财务室电脑 上的智能卡服务停止了", after=start)
        running_pcscd.start()
        chat.wait_for(r"^电脑 财务室电脑 上的智能卡服务已恢复。$", after=start)
        chat.wait_for(rf"^检测到读卡器：{OTHER_READER}。$", after=start)
        card.insert()
        chat.wait_for(rf"^检测到读卡器 {READER} 中已插入卡片。$", after=chat.wait_for(r"智能卡服务已恢复"))

        told = [line for line in chat.out[start:] if re.match(r"^(检测到|读卡器|⚠️|电脑 财务室电脑 上)", line)]
        assert told == [
            f"检测到读卡器 {READER} 中已插入卡片。",
            f"读卡器 {READER} 中已插入卡片。",  # the answer to 我的卡插好了吗
            f"读卡器 {OTHER_READER} 中没有卡片。",
            f"读卡器 {READER} 中的卡片已取出。",
            "⚠️ 电脑 财务室电脑 上的智能卡服务停止了，暂时看不到读卡器。服务恢复后我会告诉您。",
            "电脑 财务室电脑 上的智能卡服务已恢复。",
            f"检测到读卡器：{READER}。",
            f"检测到读卡器：{OTHER_READER}。",
            f"检测到读卡器 {READER} 中已插入卡片。",
        ]

        unpaired = subprocess.run(
            [str(BIN / "portpal-agent"), "unpair"], env=env, capture_output=True, text=True, timeout=60
        )
        assert unpaired.returncode == 0 and "已解除配对" in unpaired.stdout, unpaired.stderr
        chat.wait_for(r"^已断开与电脑 财务室电脑 的连接", after=start)
        assert not any((tmp_path / "agent").iterdir()), "the key is deleted with the pairing"
    finally:
        card.remove()
        if agent is not None:
            assert agent.stop() == 0, "\n".join(agent.err)
        assert chat.stop() == 0, "\n".join(chat.err)
    assert card.apdus == []
    # The conversation's transcript holds the agent's events in the order they happened
    # (how they were batched into reports depends on timing; their order does not).
    store = Store(database.url_for(tmp_path / "data"))
    try:
        events = [m.text for m in store.transcript("console", "new-user") if m.text.startswith("[card agent")]
    finally:
        store.close()
    prefix = "[card agent 财务室电脑] "
    assert all(e.startswith(prefix) for e in events)
    kinds = [e.removeprefix(prefix) for e in events]
    assert kinds[0] == "paired" and kinds[-1] == "unpaired"
    changes = [c for k in kinds[1:-1] for c in k.removeprefix("report").lstrip(": ").split("; ") if c]
    assert changes == [
        f"card_inserted {READER}",
        f"card_removed {READER}",
        "service_down",
        "service unavailable",
        "service_up",
        f"reader_added {READER}",
        f"reader_added {OTHER_READER}",
        f"card_inserted {READER}",
    ]
