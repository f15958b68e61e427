"""Render forms to files: .docx (docxtpl), .xlsx (openpyxl), .txt, and PDF via LibreOffice.

Values never become template code: docxtpl renders in a sandboxed Jinja environment with
autoescape on, so ``{{7*7}}`` or ``<w:p>`` in a company name come out as literal text;
spreadsheet cells are written as strings, never formulas. Output names keep the Chinese
company name but lose path separators and control characters and are bounded in length.
Every file is written to a temporary name in the target directory and renamed into place,
so a reader never sees half a document.
"""

from __future__ import annotations

import io
import logging
import os
import re
import tempfile
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

from docxtpl import DocxTemplate
from jinja2 import Template
from jinja2.sandbox import ImmutableSandboxedEnvironment
from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, Side
from openpyxl.worksheet.page import PageMargins
from openpyxl.worksheet.properties import PageSetupProperties

from forms.catalog import Catalog, Form, applies, default_catalog
from forms.pdf import available, convert
from forms.profile import FieldError, normalise, render_context, text_template, validate_profile
from forms.templates import BODY_FONT, CompiledDocx, compile_docx
from knowledge.loader import KnowledgeBase, load_default

__all__ = ["RenderError", "Rendered", "Renderer", "atomic_write", "safe_filename"]

log = logging.getLogger(__name__)
_NAME_MAX = 80
_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f]')
_RESERVED = re.compile(r"^(con|prn|aux|nul|com\d|lpt\d)(\..*)?$", re.IGNORECASE)


class RenderError(Exception):
    """The profile cannot produce the form; ``errors`` says which fields and why."""

    def __init__(self, form: Form, errors: list[FieldError]) -> None:
        super().__init__(f"{form.id}: " + "; ".join(f"{e.field}: {e.message}" for e in errors))
        self.form = form
        self.errors = errors


@dataclass(frozen=True)
class Rendered:
    form_id: str
    path: Path

    @property
    def filename(self) -> str:
        return self.path.name


def safe_filename(name: str, extension: str, limit: int = _NAME_MAX) -> str:
    """A file name for any text: no separators, control or reserved characters, bounded."""
    text = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    text = _UNSAFE.sub("_", text)
    text = re.sub(r"\s+", " ", text).strip(" ._")
    text = re.sub(r"\.{2,}", ".", text)
    if not text:
        text = "document"
    if _RESERVED.match(text):
        text = "_" + text
    return f"{text[:limit].rstrip(' .')}.{extension}"


def atomic_write(path: Path, write: Callable[[Path], object]) -> Path:
    """Let ``write`` fill a temporary file beside ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with tmp.open("rb+") as handle:
            os.fsync(handle.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


class _CachingEnvironment(ImmutableSandboxedEnvironment):
    """Sandboxed, autoescaping, and compiling each template source once.

    docxtpl compiles the document XML on every render; the XML of one form's template is the
    same every time, so the compiled template is kept (a handful of forms: a small cache).
    """

    _MAX = 64

    def __init__(self) -> None:
        super().__init__(autoescape=True)
        self._compiled: dict[str, Template] = {}

    def from_string(self, source: Any, globals: Any = None, template_class: Any = None) -> Template:
        if not isinstance(source, str) or globals is not None or template_class is not None:
            return super().from_string(source, globals, template_class)
        template = self._compiled.get(source)
        if template is None:
            if len(self._compiled) >= self._MAX:
                self._compiled.clear()
            template = self._compiled[source] = super().from_string(source)
        return template


class _FormTemplate(DocxTemplate):  # type: ignore[misc]
    """docxtpl's template with its tag clean-up (``patch_xml``, regex work over the whole
    document) done once per distinct document XML."""

    _patched: ClassVar[dict[str, str]] = {}

    def patch_xml(self, src_xml: str) -> str:
        patched = self._patched.get(src_xml)
        if patched is None:
            if len(self._patched) >= 64:
                self._patched.clear()
            patched = self._patched[src_xml] = super().patch_xml(src_xml)
        return patched


@cache
def _docx_env() -> _CachingEnvironment:
    return _CachingEnvironment()


class Renderer:
    """Renders any form of a catalog; compiled templates are cached per form."""

    def __init__(self, catalog: Catalog | None = None, kb: KnowledgeBase | None = None) -> None:
        self.kb = kb or load_default()
        self.catalog = catalog or default_catalog()
        self._compiled: dict[str, CompiledDocx] = {}

    def compiled(self, form: Form) -> CompiledDocx:
        if form.id not in self._compiled:
            self._compiled[form.id] = compile_docx(form, self.catalog, self.kb)
        return self._compiled[form.id]

    def check(self, form: Form, values: Mapping[str, str], lang: str = "zh") -> list[FieldError]:
        """Blocking problems only (warnings do not stop a render)."""
        return [e for e in validate_profile(self.catalog, [form], values, lang) if not e.warning]

    def output_name(self, form: Form, values: Mapping[str, str], today: date) -> str:
        return self._name(form, render_context(self.catalog, normalise(self.catalog, values), today))

    def _name(self, form: Form, context: Mapping[str, object]) -> str:
        return safe_filename(text_template(form.filename).render(context), form.kind)

    def render(
        self,
        form: Form,
        values: Mapping[str, str],
        out_dir: Path,
        *,
        today: date | None = None,
        pdf: bool = False,
        lang: str = "zh",
    ) -> list[Rendered]:
        """Write ``form`` filled with ``values`` into ``out_dir``; raises RenderError."""
        errors = self.check(form, values, lang)
        if errors:
            raise RenderError(form, errors)
        today = today or date.today()
        clean = normalise(self.catalog, values)
        context = render_context(self.catalog, clean, today)
        out_dir = out_dir.resolve()
        target = out_dir / self._name(form, context)
        if target.parent != out_dir:  # safe_filename makes this impossible; keep it so
            raise ValueError(f"unsafe output path for {form.id}: {target}")
        if form.kind == "docx":
            self._docx(form, context, target)
        elif form.kind == "xlsx":
            self._xlsx(form, context, target)
        else:
            self._txt(form, context, target)
        written = [Rendered(form.id, target)]
        for extension in form.also:
            if available():
                written.append(Rendered(form.id, convert(target, extension)))
            else:
                log.info("%s: LibreOffice not installed, no .%s made", form.id, extension)
        if pdf and form.kind in {"docx", "xlsx"}:
            written.append(Rendered(form.id, convert(target, "pdf")))
        log.info("rendered %s: %s", form.id, ", ".join(r.filename for r in written))
        return written

    # ------------------------------------------------------------------ kinds
    def _docx(self, form: Form, context: dict[str, Any], target: Path) -> None:
        compiled = self.compiled(form)
        raw = context["raw"]
        assert isinstance(raw, dict)
        conds = [applies(when, raw) and not (unless and applies(unless, raw)) for when, unless in compiled.conditions]
        template = _FormTemplate(io.BytesIO(compiled.data))
        template.render({**context, "cond": conds}, jinja_env=_docx_env(), autoescape=True)
        atomic_write(target, lambda tmp: template.save(str(tmp)))

    def _xlsx(self, form: Form, context: dict[str, Any], target: Path) -> None:
        wb = Workbook()
        ws = wb.active
        assert ws is not None
        thin = Side(style="thin")
        box = Border(left=thin, right=thin, top=thin, bottom=thin)
        font, bold = Font(name=BODY_FONT, size=11), Font(name=BODY_FONT, size=11, bold=True)
        ws.page_setup.paperSize = ws.PAPERSIZE_A4
        ws.page_setup.orientation = "portrait"
        ws.page_setup.fitToWidth = 1
        ws.page_setup.fitToHeight = 0
        ws.sheet_properties.pageSetUpPr = PageSetupProperties(fitToPage=True)
        ws.page_margins = PageMargins(left=0.7, right=0.7, top=0.75, bottom=0.75)
        ws.column_dimensions["A"].width = 24
        ws.column_dimensions["B"].width = 60
        ws.append([form.title.zh + ("（参考格式）" if form.reference else "")])
        ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=2)
        ws.cell(1, 1).font = Font(name=BODY_FONT, size=14, bold=True)
        ws.cell(1, 1).alignment = Alignment(horizontal="center")

        def put(cells: list[str], style: Font, border: bool = True) -> None:
            row = ws.max_row + 1
            for col, template in enumerate(cells, 1):
                cell = ws.cell(row, col)
                cell.value = text_template(str(template)).render(context)
                cell.data_type = "s"  # a value starting with "=" stays text, never a formula
                cell.font = style
                cell.alignment = Alignment(wrap_text=True, vertical="center")
                if border:
                    cell.border = box

        for block in form.layout:
            if "sheet" in block:
                ws.title = str(block["sheet"])[:31]
            elif "head" in block:
                put(block["head"], bold)
            elif "row" in block:
                put(block["row"], font)
            elif "foot" in block:
                put([block["foot"]], Font(name=BODY_FONT, size=9, italic=True), border=False)
                ws.merge_cells(start_row=ws.max_row, start_column=1, end_row=ws.max_row, end_column=2)
            else:
                raise ValueError(f"{form.id}: unknown spreadsheet block {sorted(block)}")
        atomic_write(target, lambda tmp: wb.save(str(tmp)))

    def _txt(self, form: Form, context: dict[str, Any], target: Path) -> None:
        lines = [text_template(str(block["text"])).render(context) for block in form.layout]
        data = ("\n".join(lines) + "\n").encode("utf-8")
        atomic_write(target, lambda tmp: tmp.write_bytes(data))
