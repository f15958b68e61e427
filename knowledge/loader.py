"""Load and validate the knowledge base.

A bad data file stops start-up with one message that names the file, the entry and the
field, because a silently skipped entry would turn into a wrong or missing answer later.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from knowledge.procedure import Procedure, WalkthroughSettings
from knowledge.schema import BranchEntry, Entry, HotlineEntry, Manual, PolicyNote, Region, RegionFile, SharedFile

__all__ = ["DATA_DIR", "KnowledgeBase", "KnowledgeError", "load", "load_default", "read_yaml"]

DATA_DIR = Path(__file__).resolve().parent / "data"
SHARED_FILE = "common.yaml"


class KnowledgeError(ValueError):
    """A knowledge data file is invalid; the message names file, entry and field."""


@dataclass(frozen=True)
class KnowledgeBase:
    """All entries of all regions, with the shared manuals, regions and policy notes."""

    entries: tuple[Entry, ...]
    manuals: dict[str, Manual]
    regions: dict[str, Region]
    policy_notes: dict[str, PolicyNote]
    procedures: dict[str, Procedure] = field(default_factory=dict)
    walkthrough: WalkthroughSettings = field(default_factory=WalkthroughSettings)
    by_id: dict[str, Entry] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_id", {e.id: e for e in self.entries})

    def get(self, entry_id: str) -> Entry:
        return self.by_id[entry_id]

    def branches(self, region: str | None = None, city: str | None = None) -> list[BranchEntry]:
        """Card-agent branches, optionally of one region and city, in manual order."""
        return [
            e
            for e in self.entries
            if isinstance(e, BranchEntry)
            and (region is None or e.region == region)
            and (city is None or e.city == city)
        ]

    def source_label(self, entry: Entry, lang: str = "zh") -> str:
        manual = self.manuals[entry.manual]
        return f"{manual.label_en if lang == 'en' else manual.label} {entry.section}"


def read_yaml(path: Path, error: type[Exception] = KnowledgeError) -> Any:
    """A data file's content; a syntax error becomes ``error`` naming the file (the form
    catalog passes its own error type)."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise error(f"{path.name}: not valid YAML: {exc}") from exc


def _explain(path: Path, raw: Any, exc: ValidationError) -> KnowledgeError:
    """Turn pydantic's error list into 'file: entry id: field: problem' lines."""
    lines = []
    for err in exc.errors():
        loc = list(err["loc"])
        where = ".".join(str(p) for p in loc)
        if len(loc) >= 2 and loc[0] == "entries" and isinstance(loc[1], int):
            try:
                entry_id = raw["entries"][loc[1]].get("id", f"#{loc[1]}")
            except (KeyError, IndexError, TypeError, AttributeError):
                entry_id = f"#{loc[1]}"
            rest = [str(p) for p in loc[2:]]
            # Drop the union tag pydantic inserts ("fact", "branch", ...) before the field.
            if rest and rest[0] in {"fact", "rule", "materials", "term", "code", "hotline", "branch"}:
                rest = rest[1:]
            where = f"entry {entry_id}: field {'.'.join(rest) or '(entry)'}"
        lines.append(f"{path.name}: {where}: {err['msg']}")
    return KnowledgeError("\n".join(lines))


def _check_references(files: Sequence[tuple[Path, RegionFile]], shared: SharedFile) -> None:
    seen: dict[str, str] = {}
    problems: list[str] = []
    for path, rf in files:
        if rf.region not in shared.regions:
            problems.append(f"{path.name}: region {rf.region!r} is not in {SHARED_FILE}")
        if rf.manual not in shared.manuals:
            problems.append(f"{path.name}: manual {rf.manual!r} is not in {SHARED_FILE}")
        for entry in rf.entries:
            if entry.id in seen:
                problems.append(f"{path.name}: entry {entry.id}: duplicate id (also in {seen[entry.id]})")
            seen[entry.id] = path.name
            if entry.policy and entry.policy not in shared.policy_notes:
                problems.append(f"{path.name}: entry {entry.id}: field policy: unknown note {entry.policy!r}")
            if entry.type != "branch" and not entry.answer:
                problems.append(f"{path.name}: entry {entry.id}: field answer: required for {entry.type}")
            if entry.type != "branch" and not entry.title:
                problems.append(f"{path.name}: entry {entry.id}: field title: required for {entry.type}")
    for key, region in shared.regions.items():
        if region.hotline not in seen:
            problems.append(f"{SHARED_FILE}: regions.{key}.hotline: unknown entry {region.hotline!r}")
    if problems:
        raise KnowledgeError("\n".join(problems))


def _load_procedures(data_dir: Path, shared: SharedFile, entries: dict[str, Entry]) -> dict[str, Procedure]:
    """Each region's procedure; every reference must resolve, every region have one file."""
    procedures: dict[str, Procedure] = {}
    problems: list[str] = []
    for path in sorted((data_dir / "procedures").glob("*.yaml")):
        raw = read_yaml(path)
        try:
            proc = Procedure.model_validate(raw)
        except ValidationError as exc:
            lines = [f"{path.name}: {'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()]
            raise KnowledgeError("\n".join(lines)) from None
        if proc.region not in shared.regions:
            problems.append(f"{path.name}: region {proc.region!r} is not in {SHARED_FILE}")
        if proc.region in procedures:
            problems.append(f"{path.name}: second procedure for region {proc.region!r}")
        problems += [f"{path.name}: {p}" for p in proc.problems(set(entries), set(shared.policy_notes))]
        for step in proc.steps:
            problems += [
                f"{path.name}: step {step.id}: call {e!r} is not a hotline entry"
                for e in step.call
                if e in entries and not isinstance(entries[e], HotlineEntry)
            ]
        procedures[proc.region] = proc
    if problems:
        raise KnowledgeError("\n".join(problems))
    return procedures


def load(data_dir: Path = DATA_DIR) -> KnowledgeBase:
    """Read and validate every YAML file in ``data_dir``."""
    shared_path = data_dir / SHARED_FILE
    raw_shared = read_yaml(shared_path)
    try:
        shared = SharedFile.model_validate(raw_shared)
    except ValidationError as exc:
        raise _explain(shared_path, raw_shared, exc) from None

    files: list[tuple[Path, RegionFile]] = []
    for path in sorted((data_dir / "regions").glob("*.yaml")):
        raw = read_yaml(path)
        try:
            rf = RegionFile.model_validate(raw)
        except ValidationError as exc:
            raise _explain(path, raw, exc) from None
        stamped = tuple(e.model_copy(update={"region": rf.region, "manual": rf.manual}) for e in rf.entries)
        files.append((path, rf.model_copy(update={"entries": stamped})))
    _check_references(files, shared)
    entries: tuple[Entry, ...] = tuple(e for _, rf in files for e in rf.entries)
    return KnowledgeBase(
        entries=entries,
        manuals=dict(shared.manuals),
        regions=dict(shared.regions),
        policy_notes=dict(shared.policy_notes),
        procedures=_load_procedures(data_dir, shared, {e.id: e for e in entries}),
        walkthrough=shared.walkthrough,
    )


@cache
def load_default() -> KnowledgeBase:
    """The packaged knowledge base, loaded once per process."""
    return load(DATA_DIR)
