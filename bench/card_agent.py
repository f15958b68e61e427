"""The card agent as a user runs it: insert-to-chat latency, and what the agent costs idle.

``portpal chat`` and ``portpal-agent run`` on this machine, pcscd with vpcd's virtual
reader and a virtual card (tests/auxil/pcsc.py; needs root and scripts/install-system-deps).
Each round inserts the card and times until the chat prints "检测到读卡器 … 已插入卡片",
then removes it and waits for the removal line. Then the agent sits idle for ``--idle``
seconds (heartbeats only) while its resident memory and CPU time are read from /proc.

Targets (issue 8): insert-to-chat p99 <= 1 s; agent resident memory <= 40 MB; no busy
polling (idle CPU near zero).

    .venv/bin/python bench/card_agent.py [--rounds 40] [--idle 60]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.auxil.pcsc import READER, Pcscd, pcsc_missing  # noqa: E402

BIN = Path(sys.executable).parent
TICK = os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


class Lines:
    """A process's output lines with the time each arrived."""

    def __init__(self, stream) -> None:  # type: ignore[no-untyped-def]
        self.lines: list[tuple[float, str]] = []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream) -> None:  # type: ignore[no-untyped-def]
        for line in stream:
            with self.cond:
                self.lines.append((time.perf_counter(), line.rstrip("\n")))
                self.cond.notify_all()

    def wait(self, pattern: str, after: int, timeout: float = 10.0) -> tuple[int, float, str]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i in range(after, len(self.lines)):
                    at, line = self.lines[i]
                    if re.search(pattern, line):
                        return i, at, line
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no line matching {pattern!r} in {timeout} s")
                self.cond.wait(left)


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM in kB."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in {"VmRSS", "VmHWM"}:
            out[key] = int(value.split()[0])
    return out


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--idle", type=float, default=60.0)
    args = ap.parse_args()
    if reason := pcsc_missing():
        sys.exit(f"cannot run: {reason}")

    pcscd = Pcscd()
    pcscd.start()
    home = Path(tempfile.mkdtemp(prefix="portpal-bench-card-"))
    env = {k: v for k, v in os.environ.items() if k not in {"TELEGRAM_BOT_TOKEN", "DATABASE_URL", "RASA_URL"}}
    env.update(
        PORTPAL_NLU="lexical",
        PORTPAL_DATA_DIR=str(home / "data"),
        PORTPAL_HTTP_PORT="0",
        PORTPAL_AGENT_HOME=str(home / "agent"),
    )
    chat = subprocess.Popen(
        [str(BIN / "portpal"), "chat", "--chat-id", "bench"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1, env=env,
    )  # fmt: skip
    agent: subprocess.Popen[str] | None = None
    card = pcscd.card()
    try:
        out = Lines(chat.stdout)
        assert chat.stdin is not None
        chat.stdin.write("/pair\n")
        chat.stdin.flush()
        _, _, line = out.wait(r"portpal-agent pair \S+ --server \S+", 0, timeout=60)
        code, server = re.search(r"portpal-agent pair (\S+) --server (\S+)", line).groups()  # type: ignore[union-attr]
        subprocess.run(
            [str(BIN / "portpal-agent"), "pair", code, "--server", server], env=env, check=True, capture_output=True
        )
        agent = subprocess.Popen(
            [str(BIN / "portpal-agent"), "run"], env=env, stderr=subprocess.PIPE, text=True, bufsize=1
        )
        log = Lines(agent.stderr)
        log.wait("开始监测", 0, timeout=30)
        time.sleep(1.0)

        inserted = rf"检测到读卡器 {re.escape(READER)} 中已插入卡片"
        removed = rf"读卡器 {re.escape(READER)} 中的卡片已取出"
        latencies: list[float] = []
        for _ in range(args.rounds):
            after = len(out.lines)
            start = time.perf_counter()
            card.insert()
            _, at, _ = out.wait(inserted, after)
            latencies.append(at - start)
            after = len(out.lines)
            card.remove()
            out.wait(removed, after)
            time.sleep(0.2)
        ms = [v * 1000 for v in latencies]
        print(f"insert-to-chat over {len(ms)} inserts: p50 {percentile(ms, 50):.0f} ms, "
              f"p99 {percentile(ms, 99):.0f} ms, max {max(ms):.0f} ms, mean {statistics.mean(ms):.0f} ms "
              f"(target p99 <= 1000 ms)")  # fmt: skip

        time.sleep(2.0)
        before_cpu, before = cpu_seconds(agent.pid), time.monotonic()
        time.sleep(args.idle)
        used, spent = cpu_seconds(agent.pid) - before_cpu, time.monotonic() - before
        memory = proc_status(agent.pid)
        print(f"agent idle {spent:.0f} s: CPU {used:.2f} s ({100 * used / spent:.2f}% of one core), "
              f"resident {memory['VmRSS'] / 1024:.1f} MB, peak {memory['VmHWM'] / 1024:.1f} MB "
              f"(target <= 40 MB)")  # fmt: skip
    finally:
        card.remove()
        if agent is not None:
            agent.terminate()
            agent.wait(20)
        if chat.stdin is not None:
            chat.stdin.close()
        chat.wait(30)
        pcscd.close()


if __name__ == "__main__":
    main()
