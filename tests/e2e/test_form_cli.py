"""Documents through the installed command: `portpal form list / render` and `portpal chat`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from docx import Document

from bot.store import engine_url
from tests.auxil import database
from tests.e2e.test_cli import run

pytestmark = pytest.mark.e2e

PROFILE = Path(__file__).parents[1] / "data" / "forms" / "profile.json"


def doc_text(path: Path) -> str:
    doc = Document(str(path))
    cells = [c.text for t in doc.tables for r in t.rows for c in r.cells]
    return "\n".join([p.text for p in doc.paragraphs] + cells)


def test_form_list():
    proc = run(["form", "list"])
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"zh_entrustment\s+zhuhai\s+\.docx\s+委托书", proc.stdout)
    proc = run(["form", "list", "--region", "shaanxi", "--json"])
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert {r["region"] for r in rows} == {"shaanxi"} and len(rows) == 10
    assert run(["form", "list", "--region", "beijing"]).returncode == 2


def test_form_render_prints_the_written_paths(tmp_path):
    proc = run(["form", "render", "zh_access_application", "--data", str(PROFILE), "--out", str(tmp_path / "out")])
    assert proc.returncode == 0, proc.stderr
    [path] = [Path(line) for line in proc.stdout.splitlines()]
    assert path.name == "陕西丝路优选跨境电子商务有限公司跨境电商统一版企业接入申请表.docx"
    assert "91110000600037341L" in doc_text(path)


def test_form_render_with_pdf(tmp_path):
    proc = run(["form", "render", "zh_entrustment", "--data", str(PROFILE), "--out", str(tmp_path), "--pdf"])
    assert proc.returncode == 0, proc.stderr
    paths = [Path(line) for line in proc.stdout.splitlines()]
    assert [p.name for p in paths] == ["委托书.docx", "委托书.pdf"]
    assert paths[1].read_bytes()[:5] == b"%PDF-"


def test_form_render_accepts_ids_of_people_born_before_their_district_existed(tmp_path):
    # 宝鸡渭滨区 (610302) in 1980 and 西安雁塔区 (610113) in 1975: valid numbers that
    # stdnum's county-history check refused.
    profile = json.loads(PROFILE.read_text(encoding="utf-8"))
    profile.update(legal_rep_id="610302198003150012", agent_id="610113197506202025")
    data = tmp_path / "older.json"
    data.write_text(json.dumps(profile, ensure_ascii=False), encoding="utf-8")
    proc = run(["form", "render", "sx_legal_rep_authorization", "--data", str(data), "--out", str(tmp_path / "o")])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [path] = [Path(line) for line in proc.stdout.splitlines()]
    assert "610302198003150012" in doc_text(path)


def test_form_render_reports_field_errors_as_json(tmp_path):
    bad = json.loads(PROFILE.read_text(encoding="utf-8"))
    bad.update(uscc="91110000600037341X", legal_rep_id="110105194912310021", contact_mobile="1380013800")
    bad.update(customs_code="6101A609AB")  # unusual shape: a warning, not an error
    data = tmp_path / "bad.json"
    data.write_text(json.dumps(bad, ensure_ascii=False), encoding="utf-8")
    proc = run(["form", "render", "zh_access_application", "--data", str(data), "--out", str(tmp_path / "o")])
    assert proc.returncode == 1
    errors = {e["field"]: e["message"] for e in json.loads(proc.stdout)}
    assert set(errors) == {"uscc", "contact_mobile"}
    assert "校验位不对" in errors["uscc"] and "13800138000" in errors["contact_mobile"]
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_form_render_bad_input(tmp_path):
    assert run(["form", "render", "nope", "--data", str(PROFILE), "--out", str(tmp_path)]).returncode == 2
    (tmp_path / "x.json").write_text("[1, 2]", encoding="utf-8")
    proc = run(["form", "render", "zh_ticket", "--data", str(tmp_path / "x.json"), "--out", str(tmp_path)])
    assert proc.returncode == 2 and "JSON object" in proc.stderr


def test_a_form_filled_entirely_in_chat_with_a_correction(tmp_path):
    lines = [
        "帮我生成委托书",
        "珠海丝路跨境电子商务有限公司",
        "91440400MA4W000000",  # a typo: wrong check character
        "91110000600037341L",
        "张三",
        "联系人：王五，联系人身份证号：110101199003074477，联系人手机：13900139000",
        "改一下联系人手机",
        "13700137000",
        "跳过",
        "生成文件",
    ]
    proc = run(["chat"], stdin="\n".join(lines) + "\n", data_dir=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "校验位不对" in out and "请输入统一社会信用代码" in out
    assert "修改“联系人手机”" in out
    [line] = [ln for ln in out.splitlines() if ln.startswith("[文件] ")]
    path = Path(line.removeprefix("[文件] "))
    assert path.name == "委托书.docx" and path.is_relative_to(tmp_path / "documents")
    text = doc_text(path)
    assert "珠海丝路跨境电子商务有限公司" in text and "110101199003074477" in text
    assert "13700137000" in text and "13900139000" not in text
    # The transcript in the database keeps no full ID or phone number.
    engine = sa.create_engine(engine_url(database.url_for(tmp_path)))
    with engine.connect() as conn:
        transcript = "\n".join(row[0] for row in conn.execute(sa.text("SELECT text FROM message")))
    engine.dispose()
    assert "联系人身份证号" in transcript
    assert "110101199003074477" not in transcript and "13700137000" not in transcript
    # The profile survives a restart: the next document does not ask again.
    again = run(["chat"], stdin="帮我生成本地备案工单\n生成文件\n", data_dir=tmp_path)
    assert "请核对《本地备案工单内容》" in again.stdout
    assert "珠海丝路跨境电子商务有限公司本地备案工单内容.txt" in again.stdout
