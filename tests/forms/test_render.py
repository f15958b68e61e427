"""Every form renders; values land where the layout puts them; hostile values stay text.

Outputs are opened with python-docx / openpyxl, and LibreOffice (installed by .ci/run)
converts every .docx and .xlsx to PDF.
"""

from __future__ import annotations

import itertools
import json
import re
import zipfile
from datetime import date
from pathlib import Path

import pytest
from docx import Document
from openpyxl import load_workbook

from forms.catalog import applies, default_catalog
from forms.pdf import available, convert_all
from forms.profile import complete, render_context
from forms.render import Renderer, RenderError, safe_filename
from forms.templates import expand_layout
from knowledge.procedure import as_condition

PROFILE = json.loads((Path(__file__).parents[1] / "data" / "forms" / "profile.json").read_text(encoding="utf-8"))
TODAY = date(2026, 11, 23)
PLACEHOLDER = re.compile(r"^\{\{ (\w+) \}\}$")


@pytest.fixture(scope="module")
def renderer(kb):
    return Renderer(default_catalog(), kb)


@pytest.fixture(scope="module")
def rendered(renderer, tmp_path_factory):
    """Every form rendered from the valid profile (files by form id)."""
    out = tmp_path_factory.mktemp("forms")
    files = {}
    for form in default_catalog().forms.values():
        written = renderer.render(form, PROFILE, out, today=TODAY)
        files[form.id] = [w.path for w in written]
    return files


def docx_text(path: Path) -> tuple[list[str], set[tuple[str, str]]]:
    """Paragraph texts, and every pair of neighbouring cells in the tables."""
    doc = Document(str(path))
    paragraphs = [p.text for p in doc.paragraphs]
    pairs = set()
    for table in doc.tables:
        for row in table.rows:
            cells = [c.text for c in row.cells]
            paragraphs.extend(cells)
            pairs.update(itertools.pairwise(cells))
    return paragraphs, pairs


def holds(block, raw):
    when, unless = as_condition(block.get("when") or {}), as_condition(block.get("unless") or {})
    return applies(when, raw) and not (unless and applies(unless, raw))


def test_every_form_renders_from_a_valid_profile(rendered):
    catalog = default_catalog()
    assert set(rendered) == set(catalog.forms)
    for form_id, paths in rendered.items():
        assert paths[0].suffix == "." + catalog.forms[form_id].kind
        assert all(p.stat().st_size > 0 for p in paths)


def test_docx_values_sit_beside_their_labels_and_no_tags_are_left(rendered, kb):
    catalog = default_catalog()
    context = render_context(catalog, PROFILE, TODAY)
    raw = complete(catalog, PROFILE)
    checked = 0
    for form in catalog.forms.values():
        if form.kind != "docx":
            continue
        path = rendered[form.id][0]
        texts, pairs = docx_text(path)
        body = "\n".join(texts)
        assert "{{" not in body and "{%" not in body and "}}" not in body, form.id
        xml = zipfile.ZipFile(path).read("word/document.xml").decode("utf-8")
        assert "{%" not in xml and "{{" not in xml, form.id
        for block in expand_layout(form, catalog, kb):
            if "table" not in block or not holds(block, raw):
                continue
            for row in block["table"]:
                spec = row if isinstance(row, dict) else {"cells": row}
                if not holds(spec, raw):
                    continue
                cells = spec["cells"]
                for label, cell in itertools.pairwise(cells):
                    match = PLACEHOLDER.match(cell)
                    if match and context[match.group(1)]:
                        assert (label, context[match.group(1)]) in pairs, (form.id, label)
                        checked += 1
        for fid in form.field_ids():
            shown = context[fid]
            # Choices shape the document (boxes, conditional rows) rather than appear as text.
            if shown and fid != "sign_date" and not catalog.fields[fid].is_choice:
                assert shown in body or any(shown in t for t in texts), (form.id, fid)
    assert checked > 90


def test_specific_placements(rendered):
    texts, pairs = docx_text(rendered["sx_card_application"][0])
    assert ("统一社会信用代码", "91110000600037341L") in pairs
    assert ("证件号码", "11010519491231002X") in pairs  # the holder is the legal representative
    assert ("制卡机构", "西安数据分中心") in pairs
    assert any("收卡地址：西安市雁塔区某路2号；收卡人：李四；联系电话：13700137000" in t for t in texts)
    assert not any("操作员卡持卡人2" in t for t in texts)
    texts, _ = docx_text(rendered["zh_written_application"][0])
    assert any("在珠海市拱北跨境工业区开展跨境电子商务进口业务，已经实现订单、清单单据的申报对接" in t for t in texts)
    texts, pairs = docx_text(rendered["zh_filing_info_sheet"][0])
    assert ("属地检验检疫机构", "跨境工业区 480040") in pairs
    texts, _ = docx_text(rendered["zh_quality_commitment"][0])
    body = "\n".join(texts)
    assert "作为电商企业" in body and "作为物流企业" not in body and "作为支付企业" not in body
    texts, _ = docx_text(rendered["sx_materials"][0])
    body = "\n".join(texts)
    assert "授权委托书（无固定格式" not in body  # online path: the offline letter is not listed
    assert "数据交换安全承诺书" in body and "加密机认证书" not in body  # MQ with card signing
    assert "（参考格式）" in "\n".join(docx_text(rendered["zh_entrustment"][0])[0])


def test_names_follow_the_manual(rendered):
    names = {fid: [p.name for p in paths] for fid, paths in rendered.items()}
    company = PROFILE["company_name"]
    assert names["zh_access_application"][0] == f"{company}跨境电商统一版企业接入申请表.docx"
    assert names["zh_entrustment"] == ["委托书.docx"]
    assert f"{company}电子口岸数据交换平台用户申请表.xlsx" in names["zh_dxp_user_application"]
    # The manual wants .xls for KJDS-001: made by LibreOffice, which CI installs.
    assert f"{company}电子口岸数据交换平台用户申请表.xls" in names["zh_dxp_user_application"]


def test_the_spreadsheet_form(rendered):
    path = next(p for p in rendered["zh_dxp_user_application"] if p.suffix == ".xlsx")
    ws = load_workbook(path).active
    rows = {r[0]: r[1] for r in ws.iter_rows(min_row=2, values_only=True) if r[0]}
    assert rows["*企业名称"] == PROFILE["company_name"]
    assert rows["*统一社会信用代码"] == PROFILE["uscc"]
    assert rows["*电子邮箱"] == PROFILE["contact_email"]
    assert rows["*报文传输方式"] == "客户端传输" or rows["*报文传输方式"]
    assert not any("{{" in str(v) for v in rows.values())
    assert str(ws.page_setup.paperSize) == ws.PAPERSIZE_A4


def test_the_ticket_text(rendered):
    text = rendered["zh_ticket"][0].read_text(encoding="utf-8")
    company = PROFILE["company_name"]
    assert f"工单标题：{company}申请开通跨境电商珠海本地备案" in text
    assert "业务分类：跨境电商" in text and "工单种类：业务办理" in text


def test_fonts_are_set_for_chinese_text(rendered):
    xml = zipfile.ZipFile(rendered["sx_card_application"][0]).read("word/styles.xml").decode("utf-8")
    assert 'w:eastAsia="宋体"' in xml
    doc = zipfile.ZipFile(rendered["sx_card_application"][0]).read("word/document.xml").decode("utf-8")
    assert 'w:eastAsia="黑体"' in doc  # the title
    section = Document(str(rendered["sx_card_application"][0])).sections[0]
    assert (round(section.page_width.mm), round(section.page_height.mm)) == (210, 297)


HOSTILE = "{{7*7}}{% for x in y %}<w:p>&amp;'\"../../x"


def test_hostile_values_are_literal_text_and_safe_names(renderer, tmp_path):
    values = {**PROFILE, "company_name": HOSTILE, "agent_name": "Mary·O'Neil"}
    for form_id in ("sx_power_of_attorney", "zh_dxp_user_application", "zh_ticket", "zh_access_application"):
        form = default_catalog().forms[form_id]
        written = renderer.render(form, values, tmp_path / form_id, today=TODAY)
        for item in written:
            assert item.path.parent == (tmp_path / form_id).resolve()
            assert "/" not in item.filename and ".." not in item.filename
        path = written[0].path
        if path.suffix == ".docx":
            texts, _ = docx_text(path)
            assert any(HOSTILE in t for t in texts), form_id
            assert not any("49" in t and "7*7" not in t for t in texts)
        elif path.suffix == ".xlsx":
            ws = load_workbook(path).active
            assert ws["B3"].value == HOSTILE
        else:
            assert HOSTILE in path.read_text(encoding="utf-8")


def test_a_formula_stays_text_in_the_spreadsheet(renderer, tmp_path):
    values = {**PROFILE, "company_name": '=HYPERLINK("http://x","y")'}
    written = renderer.render(default_catalog().forms["zh_dxp_user_application"], values, tmp_path, today=TODAY)
    cell = load_workbook(written[0].path).active["B3"]
    assert cell.data_type == "s" and cell.value.startswith("=HYPERLINK")


def test_a_10000_character_name_is_refused_with_a_message_and_names_stay_short(renderer, tmp_path):
    with pytest.raises(RenderError) as err:
        renderer.render(default_catalog().forms["zh_ticket"], {"company_name": "名" * 10_000}, tmp_path)
    assert "最多 200 个字" in err.value.errors[0].message
    name = safe_filename("名" * 10_000 + "/../\x00x", "docx")
    assert len(name) <= 85 and "/" not in name and "\x00" not in name
    assert safe_filename("../../etc/passwd", "txt") == "etc_passwd.txt"
    assert safe_filename("CON", "docx") == "_CON.docx"
    assert safe_filename("", "docx") == "document.docx"
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_leaves_no_file(renderer, tmp_path, monkeypatch):
    form = default_catalog().forms["sx_power_of_attorney"]

    def broken_save(self, path):
        Path(path).write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr("docxtpl.DocxTemplate.save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        renderer.render(form, PROFILE, tmp_path, today=TODAY)
    assert list(tmp_path.iterdir()) == []


def test_libreoffice_converts_every_document_to_pdf(rendered, tmp_path):
    # CI installs LibreOffice (scripts/install-system-deps): missing it is a failure, not a skip.
    assert available(), "LibreOffice (soffice) is not installed"
    sources = [p for paths in rendered.values() for p in paths if p.suffix in {".docx", ".xlsx", ".xls"}]
    copies = []
    for i, source in enumerate(sources):
        copy = tmp_path / f"{i:02d}{source.suffix}"
        copy.write_bytes(source.read_bytes())
        copies.append(copy)
    pdfs = convert_all(copies, "pdf")
    assert len(pdfs) == len(sources) == 19
    for pdf in pdfs:
        assert pdf.read_bytes()[:5] == b"%PDF-", pdf
