"""The form catalog: profile fields and forms, read from ``forms/data`` and checked at load.

Every document PortPal produces is data: a form names the profile fields it needs, the
manual section that asks for it, the walkthrough steps it serves, a layout (what the page
says, with ``{{ field }}`` placeholders) and an output-name rule. The fields form one
company profile shared by every form, so a value is collected once and reused everywhere.
Choice fields can borrow their options from a procedure choice (so a walkthrough answer
fills them) or from the knowledge base's card-agent branches.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from forms.validators import VALIDATORS
from knowledge.loader import KnowledgeBase, load_default, read_yaml
from knowledge.procedure import Option, Text, as_condition

__all__ = [
    "Catalog",
    "CatalogError",
    "Condition",
    "FieldDef",
    "Form",
    "FormField",
    "Group",
    "Rule",
    "applies",
    "default_catalog",
    "load_catalog",
]

DATA_DIR = Path(__file__).resolve().parent / "data"
_Id = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
# A condition: each named field must hold one of the listed values (a multi-choice field:
# any of its values). ``{field: "*"}`` means "has a value".
Condition = dict[str, tuple[str, ...]]
FieldType = Literal[
    "text", "person", "uscc", "ric", "org_code", "customs_code", "dxpid", "mobile", "phone", "email", "url", "date",
    "choice", "choices",
]  # fmt: skip
MULTI_SEP = ","


class CatalogError(ValueError):
    """The form data is inconsistent; the message names the file and the form or field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _normalise_conditions(cls, value: Any) -> Any:
        if isinstance(value, dict) and "when" in value:
            value = {**value, "when": as_condition(value["when"])}
        return value


def applies(condition: Condition, values: dict[str, str]) -> bool:
    """Whether stored ``values`` satisfy ``condition``."""
    for key, wanted in condition.items():
        held = [v for v in values.get(key, "").split(MULTI_SEP) if v]
        if "*" in wanted:
            if not held:
                return False
        elif not any(v in wanted for v in held):
            return False
    return True


class OptionsFrom(_Strict):
    """Where a choice field's options come from besides its own list."""

    procedure: str | None = None
    choice: str | None = None
    branches: str | None = None  # a region: its card-agent branches, in manual order


class Group(_Strict):
    id: _Id
    title: Text


class FieldDef(_Strict):
    """One profile field: how it is asked, checked and shown."""

    id: _Id
    group: _Id
    label: Text
    type: FieldType = "text"
    help: Text | None = None
    example: str = ""
    aliases: tuple[str, ...] = ()
    options: tuple[Option, ...] = ()
    options_from: OptionsFrom | None = None
    # Asked only when this holds (e.g. operator-card holders only when there are some).
    when: Condition = Field(default_factory=dict)
    # Personal data: masked in logs and staff views.
    personal: bool = False
    # A value computed from another field when the user gives none (e.g. the
    # organisation code inside the credit code).
    default_from: Literal["uscc_org_code"] | None = None

    def option(self, value: str) -> Option | None:
        return next((o for o in self.options if o.value == value), None)

    @property
    def is_choice(self) -> bool:
        return self.type in {"choice", "choices"}


class Rule(_Strict):
    """A cross-field rule: the named values must ``differ``; or, when ``when`` holds, the
    values must satisfy ``expect`` and must not satisfy ``forbid``."""

    id: _Id
    differ: tuple[str, ...] = ()
    when: Condition = Field(default_factory=dict)
    expect: Condition = Field(default_factory=dict)
    forbid: Condition = Field(default_factory=dict)
    fields: Annotated[tuple[str, ...], Field(min_length=1)]  # the fields to correct when it fails
    message: Text

    @model_validator(mode="before")
    @classmethod
    def _conditions(cls, value: Any) -> Any:
        if isinstance(value, dict):
            value = {**value, **{k: as_condition(value[k]) for k in ("expect", "forbid") if k in value}}
        return value

    def names(self) -> tuple[str, ...]:
        return (*self.differ, *self.when, *self.expect, *self.forbid, *self.fields)


class FormField(_Strict):
    """A field as one form uses it: required or not there."""

    id: _Id
    required: bool = True

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        return {"id": value} if isinstance(value, str) else value


class Form(_Strict):
    """One document."""

    id: _Id
    title: Text
    kind: Literal["docx", "xlsx", "txt"] = "docx"
    # Further formats made with LibreOffice when it is installed (KJDS-001 must be .xls).
    also: tuple[Literal["xls"], ...] = ()
    region: str = ""  # filled in from the file
    manual: str = ""  # filled in from the file
    section: str
    aliases: tuple[str, ...] = ()
    # 参考格式: the official template is not in the manual, this is a clean substitute.
    reference: bool = True
    note: Text | None = None
    steps: tuple[str, ...] = ()  # walkthrough steps that need this document
    when: Condition = Field(default_factory=dict)  # the path on which it is needed
    fields: tuple[FormField, ...]
    filename: str
    layout: tuple[dict[str, Any], ...]

    def field_ids(self) -> list[str]:
        return [f.id for f in self.fields]


class _FieldsFile(_Strict):
    groups: tuple[Group, ...]
    fields: tuple[FieldDef, ...]
    derived: dict[str, str] = Field(default_factory=dict)
    rules: tuple[Rule, ...] = ()


class _FormsFile(_Strict):
    region: str
    forms: tuple[Form, ...]


@dataclass(frozen=True)
class Catalog:
    """Every profile field and form, with look-ups by id and by words."""

    groups: tuple[Group, ...]
    fields: dict[str, FieldDef]
    derived: dict[str, str]
    rules: tuple[Rule, ...]
    forms: dict[str, Form]
    messages: dict[str, dict[str, str]]
    _alias_index: list[tuple[str, str]] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        index = [(alias.lower(), f.id) for f in self.fields.values() for alias in (f.label.zh, *f.aliases)]
        index += [(f.label.en.lower(), f.id) for f in self.fields.values() if f.label.en]
        # Longest first, so "法定代表人手机" wins over "法定代表人".
        index.sort(key=lambda pair: -len(pair[0]))
        object.__setattr__(self, "_alias_index", index)

    def for_region(self, region: str | None) -> list[Form]:
        return [f for f in self.forms.values() if region is None or f.region == region]

    def for_step(self, region: str, step: str) -> list[Form]:
        return [f for f in self.forms.values() if f.region == region and step in f.steps]

    def field_by_words(self, text: str) -> FieldDef | None:
        """The field whose label or alias appears in ``text`` (longest match)."""
        low = text.lower()
        return next((self.fields[fid] for alias, fid in self._alias_index if alias and alias in low), None)

    def field_at_start(self, text: str) -> tuple[FieldDef, str] | None:
        """``text`` begins with a field label or alias: the field and the rest."""
        low = text.lower()
        for alias, fid in self._alias_index:
            if alias and low.startswith(alias):
                return self.fields[fid], text[len(alias) :]
        return None

    def forms_by_words(self, text: str) -> list[Form]:
        """Forms whose title or alias appears in ``text``, longest names first, no repeats."""
        low = text.lower()
        names = sorted(
            ((name.lower(), f) for f in self.forms.values() for name in (f.title.zh, f.title.en, *f.aliases) if name),
            key=lambda pair: -len(pair[0]),
        )
        found: list[Form] = []
        covered: list[str] = []
        for name, form in names:
            if name in low and form not in found and not any(name in c and name != c for c in covered):
                found.append(form)
                covered.append(name)
        return found

    def message(self, key: str, lang: str, **values: str) -> str:
        node = self.messages[key]
        text = node.get(lang) or node["zh"]
        return text.format(**values)

    def profile_texts(self) -> Iterator[str]:
        """User-visible texts the forms state, for the drift check against the manuals
        (placeholders removed: a value the user gives is no fact of ours)."""
        for text in self._texts():
            yield _ANY_PLACEHOLDER.sub("", text)

    def _texts(self) -> Iterator[str]:
        for f in self.fields.values():
            yield from (f.label.zh, f.label.en)
            for option in f.options:
                yield from (option.label.zh, option.label.en)
        yield from self.derived.values()
        for form in self.forms.values():
            yield from (form.title.zh, form.title.en)
            yield from _layout_strings(form.layout)


def _layout_strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            if key != "when":
                yield from _layout_strings(value)
    elif isinstance(node, list | tuple):
        for item in node:
            yield from _layout_strings(item)


def _explain(path: Path, raw: Any, exc: ValidationError) -> CatalogError:
    lines = []
    for err in exc.errors():
        loc = list(err["loc"])
        where = [path.name]
        node = raw
        for part in loc:
            try:
                node = node[part]
            except (KeyError, IndexError, TypeError):
                break
            if isinstance(node, dict) and "id" in node:
                where.append(str(node["id"]))
        where.append(".".join(str(p) for p in loc))
        lines.append(f"{': '.join(where)}: {err['msg']}")
    return CatalogError("\n".join(lines))


_PLACEHOLDER = re.compile(r"\{\{\s*([a-z][a-z0-9_]*)")
_ANY_PLACEHOLDER = re.compile(r"\{\{.*?\}\}")


def _resolve_options(fdef: FieldDef, kb: KnowledgeBase, problems: list[str]) -> FieldDef:
    src = fdef.options_from
    if src is None:
        return fdef
    options = list(fdef.options)
    if src.procedure:
        proc = kb.procedures.get(src.procedure)
        choice = next((c for c in proc.choices if c.id == src.choice), None) if proc else None
        if choice is None:
            problems.append(f"fields.yaml: {fdef.id}: no choice {src.choice!r} in procedure {src.procedure!r}")
        else:
            options += choice.options
    if src.branches:
        branches = kb.branches(src.branches)
        if not branches:
            problems.append(f"fields.yaml: {fdef.id}: region {src.branches!r} has no branches")
        for b in branches:
            value = b.id.rsplit(".", 1)[-1]
            label = Text(zh=b.name, en=b.en.name or b.name)
            options.append(Option(value=value, label=label, says=(b.name, *b.keywords)))
    return fdef.model_copy(update={"options": tuple(options)})


def load_catalog(data_dir: Path = DATA_DIR, kb: KnowledgeBase | None = None) -> Catalog:
    """Read and cross-check the catalog; every problem is reported with file and id."""
    kb = kb or load_default()
    raw = read_yaml(data_dir / "fields.yaml", CatalogError)
    try:
        fields_file = _FieldsFile.model_validate(raw)
    except ValidationError as exc:
        raise _explain(data_dir / "fields.yaml", raw, exc) from exc
    problems: list[str] = []
    groups = {g.id for g in fields_file.groups}
    fields: dict[str, FieldDef] = {}
    for fdef in fields_file.fields:
        if fdef.id in fields:
            problems.append(f"fields.yaml: {fdef.id}: defined twice")
        if fdef.group not in groups:
            problems.append(f"fields.yaml: {fdef.id}: unknown group {fdef.group!r}")
        if fdef.type not in VALIDATORS and not fdef.is_choice:
            problems.append(f"fields.yaml: {fdef.id}: no validator for type {fdef.type!r}")
        fdef = _resolve_options(fdef, kb, problems)
        if fdef.is_choice and not fdef.options:
            problems.append(f"fields.yaml: {fdef.id}: a choice field needs options")
        if not fdef.is_choice and not fdef.example:
            problems.append(f"fields.yaml: {fdef.id}: needs an example (validation messages show it)")
        fields[fdef.id] = fdef
    known = set(fields) | set(fields_file.derived)
    for fdef in fields.values():
        for key, values in fdef.when.items():
            target = fields.get(key)
            if target is None:
                problems.append(f"fields.yaml: {fdef.id}: when names unknown field {key!r}")
            elif target.is_choice:
                bad = [v for v in values if v != "*" and target.option(v) is None]
                if bad:
                    problems.append(f"fields.yaml: {fdef.id}: when: {key} has no option {bad}")
    for rule in fields_file.rules:
        for name in rule.names():
            if name not in known:
                problems.append(f"fields.yaml: rule {rule.id}: unknown field {name!r}")
    forms: dict[str, Form] = {}
    for path in sorted((data_dir / "forms").glob("*.yaml")):
        raw_forms = read_yaml(path, CatalogError)
        try:
            forms_file = _FormsFile.model_validate(raw_forms)
        except ValidationError as exc:
            raise _explain(path, raw_forms, exc) from exc
        region = forms_file.region
        if region not in kb.regions:
            problems.append(f"{path.name}: unknown region {region!r}")
            continue
        proc = kb.procedures.get(region)
        for form in forms_file.forms:
            form = form.model_copy(update={"region": region, "manual": kb.regions[region].manual})
            where = f"{path.name}: {form.id}"
            if form.id in forms:
                problems.append(f"{where}: form id used twice")
            for ff in form.fields:
                if ff.id not in fields:
                    problems.append(f"{where}: unknown field {ff.id!r}")
            for step in form.steps:
                if proc is None or step not in {s.id for s in proc.steps}:
                    problems.append(f"{where}: unknown walkthrough step {step!r}")
            for key in form.when:
                if key not in fields:
                    problems.append(f"{where}: when names unknown field {key!r}")
            for name in _PLACEHOLDER.findall(form.filename + "".join(_layout_strings(form.layout))):
                if name not in known and name not in {"raw", "today", "reference"} and not name.endswith("_boxes"):
                    problems.append(f"{where}: layout uses unknown value {name!r}")
            forms[form.id] = form
    if problems:
        raise CatalogError("\n".join(problems))
    messages = read_yaml(data_dir / "validation.yaml", CatalogError)
    return Catalog(
        groups=fields_file.groups,
        fields=fields,
        derived=dict(fields_file.derived),
        rules=fields_file.rules,
        forms=forms,
        messages=messages,
    )


@cache
def default_catalog() -> Catalog:
    return load_catalog()
