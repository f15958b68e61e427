"""The installed ``portpal`` command, run as a user would: real processes, real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.auxil import database

pytestmark = pytest.mark.e2e

PORTPAL = Path(sys.executable).with_name("portpal")


def run(args, stdin="", data_dir: Path | None = None, env_extra=None):
    if data_dir is not None:
        env = database.env_for(data_dir)
    else:
        env = {k: v for k, v in os.environ.items() if k not in database.FOREIGN}
    # The lexical engine unless a test asks for Rasa (tests/e2e/test_nlu_cli.py does).
    env["PORTPAL_NLU"] = "lexical"
    env.update(env_extra or {})
    return subprocess.run([str(PORTPAL), *args], input=stdin, capture_output=True, text=True, timeout=120, env=env)


def test_run_starts_console_chat_and_answers_baoji(tmp_path):
    proc = run(["run"], stdin="宝鸡哪里可以办卡\n", data_dir=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "陕西省宝鸡市渭滨区红旗路36号" in proc.stdout
    assert "0917-3276018" in proc.stdout
    assert "来源：陕西手册 2.3.3" in proc.stdout


def test_chat_replies_in_order_and_keeps_state_across_restarts(tmp_path):
    first = run(["chat"], stdin="你好\n我们公司在珠海\n", data_dir=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.index("您好") < first.stdout.index("珠海")
    second = run(["chat"], stdin="法人卡去哪办\n", data_dir=tmp_path)
    assert "0756-8125566" in second.stdout
    assert "【陕西】" not in second.stdout


def test_chat_button_by_number(tmp_path):
    proc = run(["chat"], stdin="法人卡去哪办\n2\n", data_dir=tmp_path)
    assert "  2. 珠海" in proc.stdout
    assert "之后按珠海的手册回答" in proc.stdout


def test_ask_json_fields(tmp_path):
    proc = run(["ask", "--json"], stdin="珠海海关数据分中心电话\n推荐一家好吃的餐厅\n\n", data_dir=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(rows) == 3
    keys = {"question", "answer", "intent", "confidence", "region", "sources", "fallback", "nlu"}
    assert all(keys <= row.keys() for row in rows)
    first, second = rows[0], rows[1]
    assert "0756-8125566" in first["answer"] and first["fallback"] is False
    assert first["sources"] == [{"manual": "珠海手册 V3.6.1", "section": "一.4"}]
    assert first["region"] == "zhuhai" and first["nlu"] == "lexical"
    assert first["intent"] == "faq/zh.jc.cards"
    assert second["fallback"] is True and second["sources"] == []


def test_ask_single_question_argument(tmp_path):
    proc = run(["ask", "MQ版用卡加签要上传几项材料"], data_dir=tmp_path)
    assert proc.returncode == 0
    assert "1-6" in proc.stdout


def test_ask_shows_the_offered_options(tmp_path):
    # What a fallback offers ("did you mean" entries, a human) is listed as in the console.
    proc = run(["ask", "推荐一家好吃的餐厅"], data_dir=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "  1. " in proc.stdout and "转人工" in proc.stdout


def test_kb_check_against_manuals(manuals_dir):
    files = [str(p) for p in sorted(manuals_dir.glob("*.txt"))]
    proc = run(["kb", "check", "--manual", *files])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 not in manuals, 0 missing from knowledge base" in proc.stdout


def test_kb_check_reports_what_a_manual_has_and_kb_lacks(tmp_path):
    extra = tmp_path / "extra.txt"
    extra.write_text("新热线：0756-7654321，新网址 https://example.gov.cn/x", encoding="utf-8")
    proc = run(["kb", "check", "--manual", str(extra)])
    assert proc.returncode == 1
    assert "missing from knowledge base: phone 0756-7654321" in proc.stdout
    assert "missing from knowledge base: url example.gov.cn/x" in proc.stdout


def test_kb_check_missing_file_is_a_clear_error(tmp_path):
    proc = run(["kb", "check", "--manual", str(tmp_path / "nope.txt")])
    assert proc.returncode == 2
    assert "manual file not found" in proc.stderr
