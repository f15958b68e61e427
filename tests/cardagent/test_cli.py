"""``portpal-agent`` as a user runs it, against the real PC/SC stack (pairing and ``run``
with a bot: tests/e2e/test_card_agent.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.auxil.pcsc import ATR, READER

AGENT = Path(sys.executable).with_name("portpal-agent")


def agent(*args: str, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PORTPAL_AGENT_HOME=str(home)) if home else None
    return subprocess.run([str(AGENT), *args], capture_output=True, text=True, timeout=60, env=env)


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


def test_run_and_unpair_before_pairing_say_how_to_pair(tmp_path):
    done = agent("run", home=tmp_path)
    assert done.returncode == 2 and "还没有配对" in done.stderr and "/pair" in done.stderr
    done = agent("unpair", home=tmp_path)
    assert done.returncode == 0 and "这台电脑没有配对" in done.stdout


def test_pair_says_what_is_wrong_with_a_code_or_an_address(tmp_path):
    done = agent("pair", "ABCD-EF0H", home=tmp_path)
    assert done.returncode == 2 and "配对码格式不对" in done.stderr and "(0)" in done.stderr
    done = agent("pair", "ABCD-EFGH", "--server", "http://bot.example.com", home=tmp_path)
    assert done.returncode == 2 and "use https://bot.example.com" in done.stderr
    done = agent("pair", "ABCD-EFGH", "--server", "http://127.0.0.1:9", home=tmp_path)
    assert done.returncode == 1 and "连不上机器人 http://127.0.0.1:9" in done.stderr
    assert not any(tmp_path.iterdir()), "nothing is saved for a pairing that failed"
