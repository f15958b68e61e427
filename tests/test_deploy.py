"""The production set-up in deploy/ stays in step with the code: its settings are ones the
bot reads, its commands exist, the compose file is well formed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from bot.config import Settings

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
PORTPAL = Path(sys.executable).with_name("portpal")
FIELDS = {name.upper() for name in Settings.model_fields}
OTHERS = {"FORWARDED_ALLOW_IPS"}  # read by uvicorn


def test_every_setting_named_in_deploy_is_one_the_bot_reads():
    example = (DEPLOY / "portpal.env.example").read_text()
    named = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", example, re.MULTILINE))
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    named |= set(compose["services"]["bot"]["environment"])
    assert named and named - OTHERS <= FIELDS, sorted(named - OTHERS - FIELDS)


def test_the_compose_file_wires_the_bot_to_postgres_rasa_and_the_proxy():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    bot = compose["services"]["bot"]
    assert bot["environment"]["DATABASE_URL"].startswith("postgresql://")
    assert bot["environment"]["RASA_URL"] == "http://rasa:5005"
    assert set(bot["depends_on"]) == {"postgres", "rasa"}
    assert "reverse_proxy bot:8080" in (DEPLOY / "Caddyfile").read_text()


def test_the_systemd_units_run_commands_that_exist():
    for unit in (DEPLOY / "systemd").glob("*.service"):
        exec_start = re.search(r"^ExecStart=(\S+) (.*)$", unit.read_text(), re.MULTILINE)
        assert exec_start is not None, unit.name
        binary, args = exec_start.groups()
        assert binary == "/opt/portpal/.venv/bin/portpal", unit.name
        words = [w for w in args.split() if not w.startswith("-")]
        done = subprocess.run([str(PORTPAL), *words[:2], "--help"], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, (unit.name, done.stderr)
        for option in re.findall(r"(--[a-z-]+)", args):
            assert option in done.stdout, (unit.name, option)
