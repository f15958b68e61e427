"""Word templates built from a form's layout: A4, East-Asian fonts, tables that print well.

A layout (``forms/data/forms/*.yaml``) lists blocks: headings, paragraphs, label/value
tables, checklists, signature lines. This module turns it once into a .docx *template*
whose text still holds the ``{{ field }}`` placeholders, and docxtpl fills that template per
render. Conditional blocks become docxtpl's paragraph and row tags over ``cond[i]``, a list
of booleans the renderer computes from the profile, so a layout never carries a Jinja
expression written by hand.

python-docx sets only the Latin font from ``font.name``; Chinese text needs ``w:eastAsia``
in the run properties, set here on every style used.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from docx import Document
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_BREAK
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Mm, Pt, RGBColor
from docx.table import Table
from docx.text.paragraph import Paragraph

from forms.catalog import Catalog, Condition, Form
from knowledge.loader import KnowledgeBase
from knowledge.procedure import as_condition

__all__ = ["BODY_FONT", "TITLE_FONT", "CompiledDocx", "compile_docx", "expand_layout"]

BODY_FONT = "宋体"  # SimSun
TITLE_FONT = "黑体"  # SimHei
_LATIN = {BODY_FONT: "SimSun", TITLE_FONT: "SimHei"}
_PAGE_W, _PAGE_H = Mm(210), Mm(297)
_MARGIN_X, _MARGIN_Y = Mm(22), Mm(20)
_TEXT_W = _PAGE_W - 2 * _MARGIN_X


@dataclass(frozen=True)
class CompiledDocx:
    """A form's template bytes and the conditions its ``cond[i]`` tags refer to."""

    data: bytes
    conditions: tuple[tuple[Condition, Condition], ...]  # (when, unless)


def _fonts(element: Any, font: str) -> None:
    """Set Latin and East-Asian fonts on a style's or run's properties."""
    rpr = element.get_or_add_rPr()
    rfonts = rpr.find(qn("w:rFonts"))
    if rfonts is None:
        rfonts = OxmlElement("w:rFonts")
        rpr.insert(0, rfonts)
    for attr in ("w:ascii", "w:hAnsi", "w:cs"):
        rfonts.set(qn(attr), _LATIN[font])
    rfonts.set(qn("w:eastAsia"), font)


class _Builder:
    def __init__(self) -> None:
        self.doc = Document()
        self.conditions: list[tuple[Condition, Condition]] = []
        section = self.doc.sections[0]
        section.page_width, section.page_height = _PAGE_W, _PAGE_H
        section.left_margin = section.right_margin = _MARGIN_X
        section.top_margin = section.bottom_margin = _MARGIN_Y
        normal = self.doc.styles["Normal"]
        normal.font.size = Pt(12)
        _fonts(normal.element, BODY_FONT)
        normal.paragraph_format.space_after = Pt(4)
        normal.paragraph_format.line_spacing = 1.25
        # The default body is empty but for one paragraph; start clean.
        for p in list(self.doc.paragraphs):
            p._element.getparent().remove(p._element)

    # -------------------------------------------------------------- primitives
    def para(
        self,
        text: str = "",
        *,
        bold: bool = False,
        size: float | None = None,
        font: str = BODY_FONT,
        align: WD_ALIGN_PARAGRAPH | None = None,
        grey: bool = False,
        indent: bool = False,
    ) -> Paragraph:
        p = self.doc.add_paragraph()
        if align is not None:
            p.alignment = align
        if indent:
            p.paragraph_format.first_line_indent = Pt(24)
        if text:
            run = p.add_run(text)
            run.bold = bold
            if size:
                run.font.size = Pt(size)
            if grey:
                run.font.color.rgb = RGBColor(0x59, 0x59, 0x59)
            _fonts(run._element, font)
        return p

    def tag(self, text: str) -> None:
        """A paragraph holding only a docxtpl ``{%p ... %}`` tag (removed when rendered)."""
        self.doc.add_paragraph(text)

    def cond(self, block: dict[str, Any]) -> int | None:
        when, unless = as_condition(block.get("when") or {}), as_condition(block.get("unless") or {})
        if not when and not unless:
            return None
        self.conditions.append((when, unless))
        return len(self.conditions) - 1

    # -------------------------------------------------------------- blocks
    def block(self, block: dict[str, Any]) -> None:
        index = self.cond(block)
        if index is not None and "table" not in block:
            self.tag(f"{{%p if cond[{index}] %}}")
        if "heading" in block:
            self.para(block["heading"], bold=True, size=13, font=TITLE_FONT).paragraph_format.space_before = Pt(8)
        elif "text" in block:
            self.para(block["text"], indent=bool(block.get("indent", True)))
        elif "plain" in block:
            self.para(block["plain"])
        elif "note" in block:
            self.para(block["note"], size=10, grey=True)
        elif "items" in block:
            for item in block["items"]:
                item = item if isinstance(item, dict) else {"text": item}
                sub = self.cond(item)
                if sub is not None:
                    self.tag(f"{{%p if cond[{sub}] %}}")
                p = self.para("☐ " + item["text"])
                p.paragraph_format.left_indent = Pt(12)
                if sub is not None:
                    self.tag("{%p endif %}")
        elif "table" in block:
            self.table(block["table"], index)
        elif "sign" in block:
            self.para()
            for line in block["sign"]:
                self.para(line, align=WD_ALIGN_PARAGRAPH.RIGHT).paragraph_format.space_after = Pt(14)
        elif "page_break" in block:
            self.doc.add_paragraph().add_run().add_break(WD_BREAK.PAGE)
        else:
            raise ValueError(f"unknown layout block: {sorted(block)}")
        if index is not None and "table" not in block:
            self.tag("{%p endif %}")

    def table(self, rows: list[Any], index: int | None) -> None:
        if index is not None:
            self.tag(f"{{%p if cond[{index}] %}}")
        specs = [r if isinstance(r, dict) else {"cells": r} for r in rows]
        width = max(len(s["cells"]) for s in specs)
        table: Table = self.doc.add_table(rows=0, cols=width)
        table.style = "Table Grid"
        table.alignment = WD_TABLE_ALIGNMENT.CENTER
        widths = _column_widths(width)
        table.autofit = False
        for column, w in zip(table.columns, widths, strict=True):
            column.width = w  # the grid widths LibreOffice and Word lay out by
        for spec in specs:
            sub = self.cond(spec)
            if sub is not None:
                self._row(table, widths, [f"{{%tr if cond[{sub}] %}}"])
            self._row(table, widths, list(spec["cells"]), label_cols=bool(spec.get("labels", True)))
            if sub is not None:
                self._row(table, widths, ["{%tr endif %}"])
        if index is not None:
            self.tag("{%p endif %}")

    def _row(self, table: Table, widths: list[Any], cells: list[str], label_cols: bool = True) -> None:
        row = table.add_row()  # type: ignore[no-untyped-call]
        trpr = row._tr.get_or_add_trPr()
        trpr.append(OxmlElement("w:cantSplit"))  # a row never breaks across pages
        if len(cells) < len(widths):  # a short row spans the rest of the table
            row.cells[len(cells) - 1].merge(row.cells[len(widths) - 1])
        for i, text in enumerate(cells):
            cell = row.cells[i]
            cell.width = widths[i] if len(cells) == len(widths) else cell.width
            p = cell.paragraphs[0]
            run = p.add_run(text)
            run.bold = label_cols and i % 2 == 0 and len(cells) > 1
            run.font.size = Pt(10.5)  # 五号, the usual size in Chinese forms
            _fonts(run._element, BODY_FONT)


def _column_widths(n: int) -> list[Any]:
    if n == 1:
        return [_TEXT_W]
    if n == 2:
        return [Mm(48), _TEXT_W - Mm(48)]
    if n == 4:
        return [Mm(32), Mm(51), Mm(32), _TEXT_W - Mm(115)]
    return [int(_TEXT_W / n)] * n


def expand_layout(form: Form, catalog: Catalog, kb: KnowledgeBase) -> list[dict[str, Any]]:
    """The layout with ``materials`` blocks replaced by the procedure's steps and items.

    A step a choice skips (``skip_if``) is hidden on that path; items keep their ``when``.
    Choice ids are mapped to the profile fields that borrow them.
    """
    out: list[dict[str, Any]] = []
    for block in form.layout:
        if "materials" not in block:
            out.append(block)
            continue
        proc = kb.procedures[form.region]
        to_field = {
            f.options_from.choice: fid
            for fid, f in catalog.fields.items()
            if f.options_from and f.options_from.procedure == form.region and f.options_from.choice
        }

        def mapped(cond: Condition, to_field: dict[str, str] = to_field) -> Condition:
            return {to_field.get(k, k): v for k, v in cond.items()}

        for n, step in enumerate(proc.steps, 1):
            items = [{"text": item.zh, "when": mapped(item.when)} for item in step.bring]
            if not items:
                continue
            out.append({"heading": f"第{n}步 {step.title.zh}（手册 {step.section}）", "unless": mapped(step.skip_if)})
            out.append({"items": items, "unless": mapped(step.skip_if)})
            if step.policy:
                out.append({"note": "注：" + kb.policy_notes[step.policy].text, "unless": mapped(step.skip_if)})
    return out


def compile_docx(form: Form, catalog: Catalog, kb: KnowledgeBase) -> CompiledDocx:
    """Build the .docx template of ``form``."""
    b = _Builder()
    b.para(form.title.zh, bold=True, size=18, font=TITLE_FONT, align=WD_ALIGN_PARAGRAPH.CENTER)
    if form.reference:
        b.para("（参考格式）", size=10.5, grey=True, align=WD_ALIGN_PARAGRAPH.CENTER)
    for block in expand_layout(form, catalog, kb):
        b.block(block)
    manual = kb.manuals[form.manual]
    b.para()
    source = f"依据：{manual.label} {form.section}"
    if form.reference:
        source += "。官方模板未收录于手册，此为按手册所列内容整理的参考格式；如受理机构要求使用其模板，请以其模板为准。"
    b.para(source, size=9, grey=True)
    buffer = io.BytesIO()
    b.doc.save(buffer)
    return CompiledDocx(buffer.getvalue(), tuple(b.conditions))
