"""A company profile: the values of the catalog's fields, checked, completed and shown.

Values are stored as normalised strings keyed by field id (a multi-choice field holds its
option values joined by commas). This module decides which fields a set of forms still
needs, validates one value or a whole profile, applies the cross-field rules and builds the
values a template shows. It has no I/O, so the chat core and the CLI share it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache

from jinja2 import Template
from jinja2.sandbox import ImmutableSandboxedEnvironment

from forms.catalog import MULTI_SEP, Catalog, FieldDef, Form, applies
from forms.validators import Check, clean_text, uscc_org_code, validate

__all__ = [
    "FieldError",
    "check_field",
    "complete",
    "display_value",
    "explain",
    "missing_fields",
    "needed_fields",
    "render_context",
    "required_missing",
    "rule_errors",
    "text_template",
    "validate_profile",
]

_MULTI_SPLIT = re.compile(r"[,，、;；/\s]+|和|及|以及|\band\b")


@dataclass(frozen=True)
class FieldError:
    """A problem with one field, ready to show or to print as JSON."""

    field: str
    label: str
    message: str
    value: str = ""
    warning: bool = False

    def as_dict(self) -> dict[str, object]:
        return {"field": self.field, "label": self.label, "message": self.message, "warning": self.warning}


@cache
def _env() -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment(autoescape=False)


@cache
def text_template(source: str) -> Template:
    """A compiled plain-text template (derived values, file names, cells), cached by source."""
    return _env().from_string(source)


def needed_fields(catalog: Catalog, forms: Iterable[Form], values: Mapping[str, str]) -> list[FieldDef]:
    """The fields the forms use on the path the values describe, in catalog order."""
    wanted = {ff.id for form in forms for ff in form.fields}
    return [f for fid, f in catalog.fields.items() if fid in wanted and applies(f.when, dict(values))]


def _required(forms: Iterable[Form]) -> set[str]:
    return {ff.id for form in forms for ff in form.fields if ff.required}


def missing_fields(
    catalog: Catalog, forms: list[Form], values: Mapping[str, str], skipped: Iterable[str] = ()
) -> list[FieldDef]:
    """Needed fields without a value: required ones first asked, optional ones unless skipped."""
    skipped = set(skipped)
    return [
        f
        for f in needed_fields(catalog, forms, values)
        if not values.get(f.id) and f.id not in skipped and not (f.default_from and values.get("uscc"))
    ]


def required_missing(catalog: Catalog, forms: list[Form], values: Mapping[str, str]) -> list[FieldDef]:
    required = _required(forms)
    return [f for f in missing_fields(catalog, forms, values) if f.id in required]


# ---------------------------------------------------------------------- one value
def _match_option(fdef: FieldDef, text: str) -> str | None:
    low = clean_text(text).lower()
    if not low:
        return None
    if low.isdigit() and 1 <= int(low) <= len(fdef.options) and not any(low in o.says for o in fdef.options):
        return fdef.options[int(low) - 1].value
    for option in fdef.options:
        names = {option.value.lower(), option.label.zh.lower(), option.label.en.lower()}
        if low in names:
            return option.value
    best: tuple[int, str] | None = None
    for option in fdef.options:
        for phrase in (option.label.zh, *option.says):
            p = phrase.lower()
            if p and p in low and (best is None or len(p) > best[0]):
                best = (len(p), option.value)
    return best[1] if best else None


def _options_text(fdef: FieldDef, lang: str) -> str:
    return "、".join(f"{i}. {o.label.get(lang)}" for i, o in enumerate(fdef.options, 1))


def check_field(fdef: FieldDef, raw: str) -> Check:
    """Validate one value for ``fdef``; choices accept a value, a label, a phrase or a number."""
    if fdef.type == "choice":
        value = _match_option(fdef, raw)
        return Check(value) if value else Check(None, error="choice")
    if fdef.type == "choices":
        parts = [p for p in _MULTI_SPLIT.split(clean_text(raw)) if p]
        picked: list[str] = []
        for part in parts or [raw]:
            value = _match_option(fdef, part)
            if value is None:
                return Check(None, error="choices_some")
            if value not in picked:
                picked.append(value)
        order = [o.value for o in fdef.options]
        return Check(MULTI_SEP.join(sorted(picked, key=order.index)))
    return validate(fdef.type, raw)


def explain(catalog: Catalog, fdef: FieldDef, check: Check, lang: str) -> str:
    """The message for a failed (or warned) check, naming the field and a correct example."""
    key = check.error or check.warning
    assert key is not None
    values = {
        "label": fdef.label.get(lang),
        "example": fdef.example,
        "options": _options_text(fdef, lang),
        **check.params,
    }
    return catalog.message(key, lang, **values)


# ---------------------------------------------------------------------- whole profile
def complete(catalog: Catalog, values: Mapping[str, str]) -> dict[str, str]:
    """Stored values plus defaults (organisation code from the credit code) and derived values."""
    out = {fid: "" for fid in catalog.fields}
    out.update({k: v for k, v in values.items() if k in catalog.fields})
    for fid, fdef in catalog.fields.items():
        if not out[fid] and fdef.default_from == "uscc_org_code" and out.get("uscc"):
            out[fid] = uscc_org_code(out["uscc"])
    base = dict(out)
    for name, expression in catalog.derived.items():
        out[name] = text_template(expression).render(base).strip()
    return out


def rule_errors(catalog: Catalog, values: Mapping[str, str], lang: str) -> list[FieldError]:
    """Cross-field rules that fail; a rule is checked only once its values are known."""
    full = complete(catalog, values)
    errors: list[FieldError] = []
    for rule in catalog.rules:
        failed = False
        if rule.differ:
            held = [full.get(name, "") for name in rule.differ]
            failed = all(held) and len(set(held)) < len(held)
        elif applies(rule.when, full):
            targets = {*rule.expect, *rule.forbid}
            if all(full.get(name) for name in targets):
                failed = (bool(rule.expect) and not applies(rule.expect, full)) or (
                    bool(rule.forbid) and applies(rule.forbid, full)
                )
        if failed:
            target = catalog.fields[rule.fields[0]]
            errors.append(FieldError(target.id, target.label.get(lang), rule.message.get(lang)))
    return errors


def validate_profile(
    catalog: Catalog, forms: list[Form], values: Mapping[str, str], lang: str = "zh"
) -> list[FieldError]:
    """Every problem that stops the forms from being rendered, plus warnings.

    Values of fields the forms do not use are not reported (a profile is shared by all
    forms); keys that are no field at all are, since they are usually typos.
    """
    errors: list[FieldError] = []
    clean: dict[str, str] = {}
    used = {ff.id for form in forms for ff in form.fields}
    for key, raw in values.items():
        if key not in catalog.fields:
            msg = catalog.message("unknown_field", lang, name=str(key)[:60])
            errors.append(FieldError(str(key)[:60], str(key)[:60], msg))
            continue
        fdef = catalog.fields[key]
        if raw is None or not str(raw).strip():
            continue
        if key not in used:  # a shared profile: other forms' fields are their business
            check = check_field(fdef, str(raw))
            if check.ok and check.value is not None:
                clean[key] = check.value
            continue
        check = check_field(fdef, str(raw))
        if not check.ok:
            errors.append(FieldError(key, fdef.label.get(lang), explain(catalog, fdef, check, lang), str(raw)))
            continue
        assert check.value is not None
        clean[key] = check.value
        if check.warning:
            msg = explain(catalog, fdef, check, lang)
            errors.append(FieldError(key, fdef.label.get(lang), msg, str(raw), warning=True))
    for fdef in required_missing(catalog, forms, clean):
        if not any(e.field == fdef.id for e in errors):
            msg = catalog.message(
                "empty", lang, label=fdef.label.get(lang), example=fdef.example or _options_text(fdef, lang)
            )
            errors.append(FieldError(fdef.id, fdef.label.get(lang), msg))
    errors += [e for e in rule_errors(catalog, clean, lang) if e.field in used]
    return errors


def normalise(catalog: Catalog, values: Mapping[str, str]) -> dict[str, str]:
    """Validated values only (invalid or empty ones dropped): what a render may use."""
    out: dict[str, str] = {}
    for key, raw in values.items():
        fdef = catalog.fields.get(key)
        if fdef is None or raw is None or not str(raw).strip():
            continue
        check = check_field(fdef, str(raw))
        if check.ok and check.value is not None:
            out[key] = check.value
    return out


# ---------------------------------------------------------------------- showing values
def _date_text(iso: str) -> str:
    day = date.fromisoformat(iso)
    return f"{day.year}年{day.month}月{day.day}日"


def display_value(fdef: FieldDef, value: str, lang: str = "zh") -> str:
    """A stored value as a person reads it: option labels, dates in Chinese."""
    if not value:
        return ""
    if fdef.is_choice:
        labels = [o.label.get(lang) for v in value.split(MULTI_SEP) if (o := fdef.option(v)) is not None]
        return "、".join(labels)
    if fdef.type == "date":
        return _date_text(value) if lang != "en" else value
    return value


def _boxes(fdef: FieldDef, value: str) -> str:
    held = set(value.split(MULTI_SEP))
    return "  ".join(("☑" if o.value in held else "☐") + o.label.zh for o in fdef.options)


def render_context(catalog: Catalog, values: Mapping[str, str], today: date) -> dict[str, object]:
    """What a template sees: display strings by field id, ``<id>_boxes`` for choices, the
    derived values, ``raw`` (stored values) and ``today``."""
    full = complete(catalog, values)
    context: dict[str, object] = {}
    for fid, fdef in catalog.fields.items():
        context[fid] = display_value(fdef, full[fid])
        if fdef.is_choice:
            context[f"{fid}_boxes"] = _boxes(fdef, full[fid])
    for name in catalog.derived:
        context[name] = full[name]
    if not full.get("sign_date"):
        context["sign_date"] = "        年    月    日"
    context["raw"] = full
    context["today"] = _date_text(today.isoformat())
    return context
