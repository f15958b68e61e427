"""`portpal nlu ...` and the bot's engine modes, as a user runs them (real Rasa)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.auxil import database

pytestmark = [pytest.mark.e2e, pytest.mark.rasa]

PORTPAL = Path(sys.executable).with_name("portpal")


def run(args, stdin="", env_extra=None, timeout=600):
    env = {k: v for k, v in os.environ.items() if k not in database.FOREIGN}
    env.update(env_extra or {})
    return subprocess.run([str(PORTPAL), *args], input=stdin, capture_output=True, text=True, timeout=timeout, env=env)


def test_export_check_passes_on_the_committed_export():
    proc = run(["nlu", "export", "--check"])
    assert proc.returncode == 0, proc.stderr
    assert "up to date" in proc.stdout


def test_export_to_a_directory_writes_the_project(tmp_path):
    proc = run(["nlu", "export", "--out", str(tmp_path)])
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "data" / "nlu.yml").is_file() and (tmp_path / "dictionary" / "portpal.txt").is_file()
    assert "examples" in proc.stdout
    (tmp_path / "domain.yml").write_text("stale", encoding="utf-8")
    stale = run(["nlu", "export", "--check", "--out", str(tmp_path)])
    assert stale.returncode == 1 and "domain.yml" in stale.stderr


def test_train_skips_when_the_data_has_not_changed(rasa_model, rasa_model_dir):
    proc = run(["nlu", "train"], env_extra={"PORTPAL_RASA_MODEL_DIR": str(rasa_model_dir)})
    assert proc.returncode == 0, proc.stderr
    assert "up to date" in proc.stdout and rasa_model.name in proc.stdout


def test_ask_with_an_external_server(rasa_url, tmp_path):
    proc = run(
        ["ask", "--json", "--nlu", "rasa"],
        stdin="宝鸡哪里可以办卡\n帮我写一首诗\n",
        env_extra={"RASA_URL": rasa_url, "PORTPAL_DATA_DIR": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["nlu"] for r in rows] == ["rasa", "rasa"]
    assert "红旗路36号" in rows[0]["answer"] and rows[1]["fallback"] is True


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
    except OSError:
        return ""


def test_ask_manages_its_own_rasa_server_and_stops_it(rasa_model, rasa_model_dir, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in database.FOREIGN}
    env.update({"PORTPAL_DATA_DIR": str(tmp_path), "PORTPAL_RASA_MODEL_DIR": str(rasa_model_dir)})
    with subprocess.Popen(
        [str(PORTPAL), "ask", "--json"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as proc:
        rasa_pids: list[int] = []
        deadline = time.monotonic() + 240
        while not rasa_pids and time.monotonic() < deadline and proc.poll() is None:
            rasa_pids = [p for p in _children(proc.pid) if "rasa" in _cmdline(p)]
            time.sleep(0.5)
        assert rasa_pids, "portpal did not start a Rasa server"
        out, err = proc.communicate("珠海海关数据分中心电话\n", timeout=300)
    assert proc.returncode == 0, err
    row = json.loads(out.splitlines()[0])
    assert row["nlu"] == "rasa" and "0756-8125566" in row["answer"]
    assert not any(Path(f"/proc/{p}").exists() for p in rasa_pids), "the Rasa server outlived the bot"
    assert (tmp_path / "logs" / "rasa-server.log").is_file()


def test_rasa_required_but_missing_is_a_clear_error(tmp_path):
    proc = run(
        ["ask", "--json", "--nlu", "rasa"],
        stdin="你好\n",
        env_extra={"PORTPAL_DATA_DIR": str(tmp_path), "PORTPAL_RASA_MODEL_DIR": str(tmp_path / "empty")},
    )
    assert proc.returncode == 2
    assert "no Rasa model" in proc.stderr and "portpal nlu train" in proc.stderr


def test_auto_mode_without_a_model_answers_lexically_with_a_warning(tmp_path):
    proc = run(
        ["ask", "--json"],
        stdin="珠海海关数据分中心电话\n",
        env_extra={"PORTPAL_DATA_DIR": str(tmp_path), "PORTPAL_RASA_MODEL_DIR": str(tmp_path / "empty")},
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["nlu"] == "lexical"
    assert "answering with the lexical engine" in proc.stderr


@pytest.mark.corpus
def test_nlu_test_cross_validates_and_prints_scores(rasa_model_dir, tmp_path):
    """Rasa's own 2-fold cross-validation through `portpal nlu test` (trains twice). With the
    production schedule (60 epochs) this took 13 minutes of CI; intent accuracy on the
    training data is 0.99 by epoch 6, so 12 epochs check the data as well. No database: it
    runs in the SQLite pass only (marker ``corpus``)."""
    proc = run(
        ["nlu", "test", "--folds", "2", "--epochs", "12", "--out", str(tmp_path / "results")],
        env_extra={"PORTPAL_RASA_MODEL_DIR": str(rasa_model_dir)},
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {line[:22].strip(): line[22:].split() for line in proc.stdout.splitlines() if line[22:].strip()}
    _precision, _recall, intent_f1, support = rows["intent"]
    assert int(support) > 1000 and float(intent_f1) >= 0.85
    assert float(rows["entity (micro avg)"][2]) >= 0.90
    assert "entity city" in rows and "response (faq/...)" in rows
    assert (tmp_path / "results" / "intent_report.json").is_file()
