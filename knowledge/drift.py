"""Compare the knowledge base with the manual text, both ways.

Answers must never state a phone number, URL, address or code the manuals do not contain,
and the knowledge base should hold every number, URL and code the manuals do. This module
extracts those tokens from both sides and reports the differences.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from knowledge.loader import KnowledgeBase
from knowledge.procedure import Procedure, Text
from knowledge.schema import BranchEntry, Entry, HotlineEntry

__all__ = ["DriftReport", "check", "entry_texts", "extract", "procedure_texts"]

_PHONE = re.compile(r"(?<![\d-])(0\d{2,3})\s*-{1,2}\s*(\d{5,8})(?!\d)")
_URL = re.compile(
    r"(?:https?://)?(?:[a-z0-9-]+\.)+(?:gov\.cn|com\.cn|cn|com|net|org)(?:/[A-Za-z0-9_./-]*)?",
    re.IGNORECASE,
)
_NAMED_CODE = re.compile(r"(?<![A-Za-z0-9])(?:KJDS-\d{3}|GM\d{8,}|DXPENT\d*)(?!\d)")
# 4- or 6-digit numbers standing alone: customs, inspection and business-mode codes.
_BARE_CODE = re.compile(r"(?<![\d.:/_\-A-Za-z])(\d{4}|\d{6})(?![\d.:/_\-A-Za-z])")
_ADDRESS = re.compile(r"地址[：:]\s*([^\s，,。；;）)（(]+)")


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _norm_url(url: str) -> str:
    url = re.sub(r"^https?://", "", url.lower()).rstrip("/.")
    return url


def extract(text: str) -> dict[str, set[str]]:
    """Phones (``0AAA-NNNN``), URLs (without scheme) and codes found in ``text``."""
    phones = {f"{a}-{b}" for a, b in _PHONE.findall(text)}
    without_phones = _PHONE.sub(" ", text)
    urls = {_norm_url(u) for u in _URL.findall(without_phones)}
    without_urls = _URL.sub(" ", without_phones)
    codes = set(_NAMED_CODE.findall(without_urls)) | set(_BARE_CODE.findall(without_urls))
    return {"phone": phones, "url": urls, "code": codes}


def entry_texts(entry: Entry) -> Iterator[str]:
    """Every piece of user-visible text an entry can produce."""
    yield from (entry.title, entry.answer, *entry.bullets, *entry.questions, *entry.keywords)
    yield from (entry.en.title, entry.en.name, entry.en.answer, *entry.en.bullets)
    if isinstance(entry, HotlineEntry):
        yield from entry.phones
    if isinstance(entry, BranchEntry):
        yield from (entry.name, entry.address, entry.phone)


def procedure_texts(procedure: Procedure) -> Iterator[str]:
    """Every user-visible text of a procedure: choices, options, steps, milestones."""

    def both(text: Text | None) -> Iterator[str]:
        if text is not None:
            yield from (text.zh, text.en)

    yield from both(procedure.title)
    for choice in procedure.choices:
        yield from (*both(choice.title), *both(choice.ask))
        for option in choice.options:
            yield from (*both(option.label), *option.says)
    for step in procedure.steps:
        yield from (*both(step.title), *both(step.skip_reason), *both(step.skip_warning))
        for item in (*step.do, *step.where, *step.bring, *step.pitfalls, *step.wait):
            yield from both(item)
        for action in step.actions:
            yield from both(action.name)
        for ms in step.milestones:
            yield from (*both(ms.label), *both(ms.confirm))
            for rule in ms.reminders:
                yield from both(rule.text)


@dataclass
class DriftReport:
    """What the knowledge base states that the manuals lack, and the reverse."""

    not_in_manuals: list[tuple[str, str, str]] = field(default_factory=list)  # (entry id, kind, value)
    missing_from_kb: list[tuple[str, str]] = field(default_factory=list)  # (kind, value)

    @property
    def ok(self) -> bool:
        return not self.not_in_manuals and not self.missing_from_kb

    def lines(self) -> list[str]:
        out = [f"not in manuals: {eid}: {kind} {value}" for eid, kind, value in self.not_in_manuals]
        out += [f"missing from knowledge base: {kind} {value}" for kind, value in self.missing_from_kb]
        return out


def check(kb: KnowledgeBase, manual_texts: Iterable[str], extra: Iterable[tuple[str, list[str]]] = ()) -> DriftReport:
    """Compare ``kb`` (and ``extra`` sources, e.g. the form catalog's texts, as (name, texts)
    pairs) with the concatenated manual texts."""
    manual = "\n".join(manual_texts)
    manual_flat = _squash(manual)
    in_manual = extract(manual)
    in_kb: dict[str, set[str]] = {"phone": set(), "url": set(), "code": set()}
    report = DriftReport()
    sources: list[tuple[str, list[str]]] = [(e.id, list(entry_texts(e))) for e in kb.entries]
    sources += [(f"procedure {region}", list(procedure_texts(p))) for region, p in kb.procedures.items()]
    sources += list(extra)
    for source_id, texts in sources:
        for text in texts:
            for kind, values in extract(text).items():
                in_kb[kind] |= values
                for value in sorted(values - in_manual[kind]):
                    report.not_in_manuals.append((source_id, kind, value))
            for address in _ADDRESS.findall(text):
                if not _URL.search(address) and _squash(address) not in manual_flat:
                    report.not_in_manuals.append((source_id, "address", address))
    for entry in kb.entries:
        if isinstance(entry, BranchEntry) and _squash(entry.address) not in manual_flat:
            report.not_in_manuals.append((entry.id, "address", entry.address))
    report.not_in_manuals = sorted(set(report.not_in_manuals))
    for kind in ("phone", "url", "code"):
        for value in sorted(in_manual[kind] - in_kb[kind]):
            report.missing_from_kb.append((kind, value))
    return report
