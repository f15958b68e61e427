"""Masking of personal data (ID numbers, phone numbers) for logs, transcripts and staff views.

Masking keeps enough to tell two values apart when talking to the user (the first and last
few characters) and nothing that identifies a person.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from forms.catalog import Catalog

__all__ = ["mask_id", "mask_phone", "mask_text", "mask_value", "masked_profile"]

# 18-character resident IDs (and 15-digit old ones), mobiles, landlines with an area code.
_ID = re.compile(r"(?<![0-9A-Za-z])(\d{6})(\d{8})(\d{3}[\dXx])(?![0-9A-Za-z])|(?<!\d)(\d{6})(\d{6})(\d{3})(?!\d)")
_MOBILE = re.compile(r"(?<!\d)(?:\+?86[- ]?)?(1[3-9]\d)[- ]?(\d{4})[- ]?(\d{4})(?!\d)")


def mask_id(value: str) -> str:
    """``11010519491231002X`` -> ``110***********002X``."""
    if len(value) <= 7:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


def mask_phone(value: str) -> str:
    """``13800138000`` -> ``138****8000``; landlines keep the area code and last two digits."""
    digits = value.replace("-", "")
    if len(digits) == 11 and digits.startswith("1"):
        return digits[:3] + "****" + digits[-4:]
    area, _, local = value.partition("-")
    if local:
        return f"{area}-" + "*" * (len(local) - 2) + local[-2:]
    return "*" * max(len(value) - 2, 0) + value[-2:]


def mask_value(kind: str, value: str) -> str:
    if not value:
        return value
    if kind == "ric":
        return mask_id(value)
    if kind in {"mobile", "phone"}:
        return mask_phone(value)
    return value[:1] + "*" * (len(value) - 1)


def mask_text(text: str) -> str:
    """Free text with every ID number and mobile number in it masked."""

    def ident(match: re.Match[str]) -> str:
        return mask_id(match.group(0))

    def mobile(match: re.Match[str]) -> str:
        return f"{match.group(1)}****{match.group(3)}"

    return _MOBILE.sub(mobile, _ID.sub(ident, text))


def masked_profile(catalog: Catalog, values: Mapping[str, str]) -> dict[str, str]:
    """A profile with every personal field masked."""
    out: dict[str, str] = {}
    for key, value in values.items():
        fdef = catalog.fields.get(key)
        out[key] = mask_value(fdef.type, value) if fdef is not None and fdef.personal else value
    return out
