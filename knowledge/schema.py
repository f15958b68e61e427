"""Typed knowledge entries.

The YAML files under ``knowledge/data`` are validated against these models at start-up so a
typo in the data is an error at load time, not a wrong answer at run time. Every entry
carries the manual section it was taken from; answers cite it.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from knowledge.procedure import WalkthroughSettings

__all__ = [
    "BranchEntry",
    "CodeEntry",
    "English",
    "Entry",
    "EntryBase",
    "FactEntry",
    "HotlineEntry",
    "Manual",
    "MaterialsEntry",
    "PolicyNote",
    "Region",
    "RegionFile",
    "RuleEntry",
    "SharedFile",
    "TermEntry",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class English(_Strict):
    """The English version of an entry: same facts, English wording."""

    title: str = ""
    name: str = ""
    answer: str = ""
    bullets: tuple[str, ...] = ()


class EntryBase(_Strict):
    """Fields common to every entry type."""

    id: Annotated[str, Field(pattern=r"^[a-z]{2}\.[a-z_]+\.[a-z0-9_]+$")]
    section: Annotated[str, Field(min_length=1)]
    title: str = ""
    questions: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    answer: str = ""
    bullets: tuple[str, ...] = ()
    policy: str | None = None
    # "branches": the answer lists every card-agent branch of the entry's region.
    includes: Literal["branches"] | None = None
    en: English = English()
    # Filled in by the loader from the file header, never written in the YAML.
    region: str = ""
    manual: str = ""

    @field_validator("questions", "keywords", "bullets")
    @classmethod
    def _no_blank_items(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not item.strip() for item in value):
            raise ValueError("items must not be blank")
        return value


class FactEntry(EntryBase):
    type: Literal["fact"]


class RuleEntry(EntryBase):
    type: Literal["rule"]


class MaterialsEntry(EntryBase):
    type: Literal["materials"]


class TermEntry(EntryBase):
    type: Literal["term"]
    term: str


class CodeEntry(EntryBase):
    """A customs, inspection, business-mode or template code."""

    type: Literal["code"]
    code: str
    codes: tuple[str, ...] = ()


class HotlineEntry(EntryBase):
    type: Literal["hotline"]
    purpose: str
    phones: Annotated[tuple[str, ...], Field(min_length=1)]

    @field_validator("phones")
    @classmethod
    def _phone_shape(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for phone in value:
            if not phone.replace("-", "").isdigit():
                raise ValueError(f"phone {phone!r} must be digits and dashes")
        return value


class BranchEntry(EntryBase):
    """A card-agent branch; its question and answer text is generated from the fields."""

    type: Literal["branch"]
    name: str
    city: str
    district: str
    address: str
    phone: str


Entry = Annotated[
    FactEntry | RuleEntry | MaterialsEntry | TermEntry | CodeEntry | HotlineEntry | BranchEntry,
    Field(discriminator="type"),
]


class RegionFile(_Strict):
    region: str
    manual: str
    entries: tuple[Entry, ...]


class Manual(_Strict):
    file: str
    label: str
    label_en: str


class Region(_Strict):
    name: str
    name_en: str
    manual: str
    aliases: tuple[str, ...]
    hotline: str


class PolicyNote(_Strict):
    text: str
    text_en: str


class SharedFile(_Strict):
    manuals: dict[str, Manual]
    regions: dict[str, Region]
    policy_notes: dict[str, PolicyNote]
    walkthrough: WalkthroughSettings = WalkthroughSettings()
