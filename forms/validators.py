"""Field validators: one function per field type, returning a normalised value or a problem.

Identifiers with a published check character are checked with python-stdnum (USCC, the
resident ID). Formats without one (customs code, DXPID) only warn: a company may hold a
valid code of an unusual shape, and the office, not PortPal, is the judge. A validator never
raises on odd input; it returns a ``Check`` whose ``error`` / ``warning`` is a message key of
``data/validation.yaml``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from stdnum.cn import ric as _ric
from stdnum.cn import uscc as _uscc
from stdnum.exceptions import ValidationError

__all__ = [
    "VALIDATORS",
    "Check",
    "clean_text",
    "is_ric",
    "org_code_check_char",
    "uscc_org_code",
    "validate",
]

# GB 32100 character set: digits and upper-case letters without I, O, Z, S, V.
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_LANDLINE = re.compile(r"^(0\d{2,3})-?(\d{7,8})(?:-(\d{1,6}))?$")
_EMAIL = re.compile(r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}$")
_CUSTOMS = re.compile(r"^\d{6}[0-9A-Z]{4}$")
_DXPID = re.compile(r"^DXPENT\d{10}$")
_DATE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")
_URL = re.compile(r"^(?:https?://)?(?:[A-Za-z0-9\-]+\.)+[A-Za-z]{2,}(?::\d+)?(?:/\S*)?$")
_PERSON = re.compile(r"^[\u3400-\u9fffA-Za-z·•.'\- ]+$")
_SEPARATORS = re.compile(r"[\s\-－—()（）]+")
_TEXT_MAX = 200
# Nobody born before this holds a valid resident ID today.
_RIC_EARLIEST_YEAR = 1900
_NAME_MAX = 40


@dataclass(frozen=True)
class Check:
    """The outcome of validating one value.

    ``value`` is the normalised value to store (None when rejected); ``error`` and
    ``warning`` are message keys, ``params`` fills their placeholders.
    """

    value: str | None
    error: str | None = None
    warning: str | None = None
    params: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None


def clean_text(raw: str) -> str:
    """NFKC-normalise full-width forms, drop control characters and squeeze spaces."""
    text = unicodedata.normalize("NFKC", raw)
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C" or ch in "\t\n")
    return re.sub(r"\s+", " ", text).strip()


def _compact(raw: str) -> str:
    return _SEPARATORS.sub("", clean_text(raw)).upper()


def _fail(key: str, **params: str) -> Check:
    return Check(None, error=key, params=params)


# ---------------------------------------------------------------------- identifiers
def org_code_check_char(body: str) -> str:
    """GB 11714 check character of the first eight characters of an organisation code."""
    total = sum(int(ch, 36) * w for ch, w in zip(body, _ORG_WEIGHTS, strict=True))
    c = 11 - total % 11
    return "X" if c == 10 else "0" if c == 11 else str(c)


def uscc_org_code(uscc: str) -> str:
    """The organisation code embedded in a USCC (characters 9-17), as ``XXXXXXXX-X``."""
    code = _compact(uscc)[8:17]
    return f"{code[:8]}-{code[8:]}" if len(code) == 9 else ""


def check_uscc(raw: str) -> Check:
    """GB 32100. stdnum rejects registering-authority letters (N, Y, A ...) that the
    standard allows, so those are checked here with stdnum's own check-digit routine."""
    number = _compact(raw)
    if len(number) != 18:
        return _fail("uscc_length", length=str(len(number)))
    if is_ric(number):
        return _fail("uscc_is_ric")
    if any(ch not in _USCC_ALPHABET for ch in number):
        bad = next(ch for ch in number if ch not in _USCC_ALPHABET)
        return _fail("uscc_chars", char=bad)
    if not number[2:8].isdigit():
        return _fail("uscc_region")
    try:
        return Check(_uscc.validate(number))
    except ValidationError:
        pass
    if number[-1] != _uscc.calc_check_digit(number[:17]):
        return _fail("uscc_checksum")
    return Check(number)


def _known_area(code: str) -> bool:
    """Whether stdnum's table of county codes has ever listed ``code`` (in any year)."""
    from stdnum import numdb

    return any("county" in props for _part, props in numdb.get("cn/loc").info(code))


def check_ric(raw: str) -> Check:
    """居民身份证: 18 characters, a real past birth date and the ISO 7064 MOD 11-2 character.

    stdnum's ``cn.ric.validate`` also demands that the county code existed in the birth
    year, but numbers are assigned (and re-assigned after a district is created) long after
    birth: a 1975 number of a district created in 1980 is valid. So the area code is never
    a reason to refuse; a code stdnum has never heard of is only a warning.
    """
    number = _compact(raw)
    if len(number) != 18:
        return _fail("ric_length", length=str(len(number)))
    if not number[:17].isdigit() or not (number[17].isdigit() or number[17] == "X"):
        return _fail("ric_chars")
    try:
        born = _ric.get_birth_date(number)
    except ValidationError:
        return _fail("ric_birth")
    if born > date.today() or born.year < _RIC_EARLIEST_YEAR:
        return _fail("ric_birth_range", year=str(born.year))
    if number[-1] != _ric.calc_check_digit(number):
        return _fail("ric_checksum")
    return Check(number, warning=None if _known_area(number[:6]) else "ric_area_unknown")


def is_ric(raw: str) -> bool:
    """Whether ``raw`` is a resident ID number by :func:`check_ric`'s rules."""
    return check_ric(raw).ok


def check_org_code(raw: str) -> Check:
    number = _compact(raw)
    if len(number) != 9 or not number[:8].isalnum() or not (number[8].isdigit() or number[8] == "X"):
        return _fail("org_code_format")
    if org_code_check_char(number[:8]) != number[8]:
        return _fail("org_code_checksum")
    return Check(f"{number[:8]}-{number[8]}")


def check_customs_code(raw: str) -> Check:
    number = _compact(raw)
    if not number.isalnum() or not 8 <= len(number) <= 12:
        return _fail("customs_code_format")
    return Check(number, warning=None if _CUSTOMS.match(number) else "customs_code_unusual")


def check_dxpid(raw: str) -> Check:
    number = _compact(raw)
    if not number.isalnum() or not 6 <= len(number) <= 30:
        return _fail("dxpid_format")
    return Check(number, warning=None if _DXPID.match(number) else "dxpid_unusual")


# ---------------------------------------------------------------------- contact data
def _digits_phone(raw: str) -> str:
    text = clean_text(raw).replace(" ", "").replace("－", "-").replace("—", "-")
    text = re.sub(r"^(?:\+?86|0086)-?(?=1)", "", text)
    return re.sub(r"[()（）]", "", text)


def check_mobile(raw: str) -> Check:
    number = _digits_phone(raw).replace("-", "")
    if not number.isdigit():
        return _fail("mobile_chars")
    if not _MOBILE.match(number):
        return _fail("mobile_format", length=str(len(number)))
    return Check(number)


def check_phone(raw: str) -> Check:
    """A mobile number or a landline with area code (extension allowed)."""
    text = _digits_phone(raw)
    flat = text.replace("-", "")
    if _MOBILE.match(flat):
        return Check(flat)
    match = _LANDLINE.match(text)
    if match is None:
        return _fail("phone_format")
    area, local, ext = match.groups()
    return Check(f"{area}-{local}" + (f"-{ext}" if ext else ""))


def check_email(raw: str) -> Check:
    text = clean_text(raw).replace(" ", "")
    if "@" not in text:
        return _fail("email_at")
    if not _EMAIL.match(text):
        return _fail("email_format")
    return Check(text.lower() if text.isascii() else text)


def check_url(raw: str) -> Check:
    text = clean_text(raw).replace(" ", "")
    if not _URL.match(text):
        return _fail("url_format")
    return Check(text)


def check_date(raw: str) -> Check:
    text = clean_text(raw)
    match = _DATE.match(text)
    if match is None:
        return _fail("date_format")
    try:
        day = date(*(int(part) for part in match.groups()))
    except ValueError:
        return _fail("date_invalid")
    return Check(day.isoformat())


# ---------------------------------------------------------------------- free text
def check_text(raw: str) -> Check:
    text = clean_text(raw)
    if not text:
        return _fail("empty")
    if len(text) > _TEXT_MAX:
        return _fail("too_long", max=str(_TEXT_MAX), length=str(len(text)))
    return Check(text)


def check_person(raw: str) -> Check:
    """A person's name: Chinese or Latin letters, middle dot for transliterated names."""
    text = clean_text(raw)
    if not text:
        return _fail("empty")
    if len(text) > _NAME_MAX:
        return _fail("too_long", max=str(_NAME_MAX), length=str(len(text)))
    if not _PERSON.match(text) or not any(ch.isalpha() for ch in text):
        return _fail("person_chars")
    return Check(text)


VALIDATORS: dict[str, Callable[[str], Check]] = {
    "text": check_text,
    "person": check_person,
    "uscc": check_uscc,
    "ric": check_ric,
    "org_code": check_org_code,
    "customs_code": check_customs_code,
    "dxpid": check_dxpid,
    "mobile": check_mobile,
    "phone": check_phone,
    "email": check_email,
    "url": check_url,
    "date": check_date,
}


def validate(kind: str, raw: str) -> Check:
    """Validate ``raw`` as a value of field type ``kind`` (choices are checked by the catalog)."""
    return VALIDATORS[kind](raw)
