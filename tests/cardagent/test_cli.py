"""``portpal-agent`` as a user runs it, against the real PC/SC stack."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.auxil.pcsc import ATR, READER

AGENT = Path(sys.executable).with_name("portpal-agent")


def agent(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(AGENT), *args], capture_output=True, text=True, timeout=60)


def test_status_shows_readers_and_the_inserted_card(running_pcscd):
    done = agent("status")
    assert done.returncode == 0, done.stderr
    assert "智能卡服务：正常" in done.stdout and f"{READER}：未插卡" in done.stdout
    card = running_pcscd.card()
    card.insert()
    try:
        for _ in range(50):
            done = agent("status", "--json")
            status = json.loads(done.stdout)
            if status["readers"][0]["card"]:
                break
        assert status["service"] and status["readers"][0] == {
            "name": READER, "card": True, "atr": " ".join(f"{b:02X}" for b in ATR),
        }  # fmt: skip
        assert "已插卡（ATR 3B 88 80 01" in agent("status").stdout
    finally:
        card.remove()


def test_status_without_the_smart_card_service_says_how_to_start_it(running_pcscd):
    running_pcscd.stop()
    done = agent("status")
    assert done.returncode == 1
    assert "智能卡服务不可用" in done.stdout and "pcscd" in done.stdout and "Smart Card" in done.stdout


def test_commands_not_built_yet_say_so():
    done = agent("run")
    assert done.returncode == 2 and "not available in this version yet" in done.stderr
