"""Validators with real-format identifiers, and the messages a rejection produces."""

from __future__ import annotations

import pytest
from stdnum.cn import uscc as stdnum_uscc

from forms.catalog import default_catalog
from forms.profile import check_field, explain
from forms.validators import (
    check_customs_code,
    check_date,
    check_dxpid,
    check_email,
    check_mobile,
    check_org_code,
    check_phone,
    check_ric,
    check_uscc,
    uscc_org_code,
)


def message(field_id: str, raw: str, lang: str = "zh") -> str:
    catalog = default_catalog()
    fdef = catalog.fields[field_id]
    check = check_field(fdef, raw)
    assert check.error or check.warning, f"{raw!r} passed as {field_id}"
    return explain(catalog, fdef, check, lang)


@pytest.mark.parametrize("raw", ["91110000600037341L", "9111 0000 6000 3734 1L", "91110000600037341l"])
def test_valid_credit_codes_are_accepted_and_normalised(raw):
    assert check_uscc(raw).value == "91110000600037341L"


@pytest.mark.parametrize("first", ["N", "Y", "A", "1", "5"])
def test_credit_codes_with_letter_authorities_pass_when_the_check_character_is_right(first):
    body = f"{first}2110000600037341"
    code = body + stdnum_uscc.calc_check_digit(body)
    assert check_uscc(code).ok, code
    wrong = body + ("0" if code[-1] != "0" else "1")
    assert check_uscc(wrong).error == "uscc_checksum"


def test_stdnum_alone_rejects_what_the_wrapper_accepts():
    # Why the wrapper exists: GB 32100 allows letter authorities, stdnum does not.
    body = "N2110000600037341"
    assert not stdnum_uscc.is_valid(body + stdnum_uscc.calc_check_digit(body))


@pytest.mark.parametrize(
    ("raw", "key", "says"),
    [
        ("91110000600037341X", "uscc_checksum", "校验位不对"),
        ("9111000060003734", "uscc_length", "您输入的是 16 位"),
        ("91110000600O37341L", "uscc_chars", "“O”不应出现"),
        ("11010519491231002X", "uscc_is_ric", "身份证号码，不是统一社会信用代码"),
    ],
)
def test_bad_credit_codes_say_what_is_wrong_and_show_a_valid_one(raw, key, says):
    assert check_uscc(raw).error == key
    text = message("uscc", raw)
    assert says in text
    assert "91110000600037341L" in text


def mod11_2(body: str) -> str:
    """ISO 7064 MOD 11-2 check character, written out from GB 11643 (not stdnum's)."""
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]


def resident_id(area: str, born: str, seq: str) -> str:
    body = area + born + seq
    return body + mod11_2(body)


# (area code, birth date): provinces from Beijing to Xinjiang, Hong Kong-born residents
# excluded; births from the 1940s to the 2000s. Several areas were created, or renumbered,
# after these people were born (宝鸡渭滨区 610302, 西安雁塔区 610113, 浦东新区 310115,
# 珠海香洲区 440402, 深圳南山区 440305, 重庆渝北区 500112, 海口龙华区 460106).
PEOPLE = [
    ("610302", "19800315"),
    ("610113", "19750620"),
    ("610113", "19480101"),
    ("610302", "19521111"),
    ("610102", "19631009"),
    ("610402", "19991231"),
    ("610802", "20050228"),
    ("612401", "19710808"),
    ("440402", "19560707"),
    ("440402", "19840229"),
    ("440403", "19920101"),
    ("440404", "20011010"),
    ("440305", "19470505"),
    ("110105", "19491231"),
    ("110108", "19690401"),
    ("310115", "19580812"),
    ("310104", "19770303"),
    ("500112", "19660606"),
    ("460106", "19730909"),
    ("650102", "19441225"),
    ("540102", "19851120"),
    ("230102", "19610214"),
    ("320102", "19880630"),
    ("330106", "19950717"),
    ("420106", "19540403"),
    ("510107", "19821205"),
    ("530102", "20030318"),
    ("150102", "19590929"),
    ("370102", "19400101"),
    ("350203", "19970611"),
    ("640104", "19781001"),
    ("630102", "20080808"),
    ("410105", "19430721"),
    ("210102", "19860111"),
    ("450103", "19900505"),
]


@pytest.mark.parametrize(("area", "born"), PEOPLE)
@pytest.mark.parametrize("seq", ["001", "202", "999"])
def test_valid_resident_ids_of_every_decade_and_province_are_accepted(area, born, seq):
    number = resident_id(area, born, seq)
    check = check_ric(number)
    assert check.ok, (number, check.error)
    assert check.value == number
    assert check_ric(number.lower()).value == number  # a lower-case x
    assert check_ric(f"{number[:6]} {number[6:14]} {number[14:]}").value == number


def test_the_birth_decades_and_provinces_are_covered():
    assert {born[:3] for _, born in PEOPLE} >= {"194", "195", "196", "197", "198", "199", "200"}
    assert len({area[:2] for area, _ in PEOPLE}) >= 20 and len(PEOPLE) >= 30


@pytest.mark.parametrize(("area", "born"), PEOPLE[:8])
def test_a_wrong_check_character_is_refused_as_such(area, born):
    number = resident_id(area, born, "123")
    wrong = "X" if number[-1] == "0" else "0"
    assert check_ric(number[:-1] + wrong).error == "ric_checksum"


@pytest.mark.parametrize(
    ("born", "key"),
    [
        ("19801332", "ric_birth"),
        ("19750230", "ric_birth"),
        ("19810229", "ric_birth"),
        ("20990101", "ric_birth_range"),
        ("18991231", "ric_birth_range"),
    ],
)
def test_impossible_birth_dates_are_refused_with_their_own_message(born, key):
    assert check_ric(resident_id("610113", born, "123")).error == key


def test_an_unknown_area_code_is_only_a_warning():
    number = resident_id("619999", "19800101", "123")
    check = check_ric(number)
    assert check.ok and check.value == number and check.warning == "ric_area_unknown"
    assert "地区代码" in message("legal_rep_id", number)
    assert check_ric(resident_id("610302", "19800315", "123")).warning is None


def test_resident_ids():
    assert check_ric("11010519491231002X").value == "11010519491231002X"
    assert check_ric("11010519491231002x").value == "11010519491231002X"
    assert check_ric("110105194912310021").error == "ric_checksum"
    assert check_ric("110105194913310021").error == "ric_birth"
    text = message("legal_rep_id", "110105197513310021")
    assert "出生日期不存在" in text
    text = message("legal_rep_id", "110105209901010021")
    assert "出生日期（2099 年）不可能" in text
    assert check_ric("1101051949123100").error == "ric_length"
    assert check_ric("1101051949123100AB").error == "ric_chars"
    text = message("legal_rep_id", "110105194912310021")
    assert "校验位" in text and "11010519491231002X" in text


def test_phones():
    assert check_mobile("138 0013 8000").value == "13800138000"
    assert check_mobile("+86 138-0013-8000").value == "13800138000"
    assert check_mobile("1380013800").error == "mobile_format"
    assert check_mobile("12800138000").error == "mobile_format"
    assert check_phone("029-87606648").value == "029-87606648"
    assert check_phone("0756 2538065").value == "0756-2538065"
    assert check_phone("13800138000").value == "13800138000"
    assert check_phone("12345").error == "phone_format"
    assert "11 位数字，您输入的是 10 位" in message("agent_mobile", "1380013800")
    assert "13800138000" in message("agent_mobile", "1380013800")


def test_customs_code_and_dxpid_only_warn():
    assert check_customs_code("61019609AB") == check_customs_code("6101 9609ab")
    assert check_customs_code("61019609AB").warning is None
    odd = check_customs_code("6101A609AB")
    assert odd.ok and odd.warning == "customs_code_unusual"
    assert "已记录，但请核对" in message("customs_code", "6101A609AB")
    assert check_customs_code("610").error == "customs_code_format"
    assert check_dxpid("DXPENT0000012345").warning is None
    assert check_dxpid("DXPLOG0000012345").warning == "dxpid_unusual"
    assert check_dxpid("DXP ENT-00").value == "DXPENT00"


def test_organisation_code_gb_11714():
    assert check_org_code("60003734-1").value == "60003734-1"
    assert check_org_code("600037341").value == "60003734-1"
    assert check_org_code("60003734-2").error == "org_code_checksum"
    assert check_org_code("6000").error == "org_code_format"
    # The organisation code inside a valid credit code passes GB 11714.
    assert check_org_code(uscc_org_code("91110000600037341L")).ok


def test_email_and_dates():
    assert check_email("Name@Example.com").value == "name@example.com"
    assert check_email("name.example.com").error == "email_at"
    assert check_email("name@example").error == "email_format"
    assert check_date("2026年1月2日").value == "2026-01-02"
    assert check_date("2026/1/2").value == "2026-01-02"
    assert check_date("2026-02-30").error == "date_invalid"
    assert check_date("明天").error == "date_format"


def test_choices_accept_labels_phrases_and_numbers():
    catalog = default_catalog()
    issuer = catalog.fields["card_issuer"]
    assert check_field(issuer, "西安数据分中心").value == "xian_center"
    assert check_field(issuer, "2").value == "xa_jinye"
    assert check_field(issuer, "宝鸡分行营业部").value == "baoji"
    assert check_field(issuer, "北京").error == "choice"
    roles = catalog.fields["enterprise_roles"]
    assert check_field(roles, "物流企业、电商企业").value == "ecommerce,logistics"
    assert check_field(roles, "1, 3").value == "ecommerce,logistics"
    assert "电商平台" in message("enterprise_roles", "银行")


def test_english_messages():
    text = message("uscc", "91110000600037341X", "en")
    assert "check character" in text and "91110000600037341L" in text


@pytest.mark.parametrize("raw", ["", " ", "\x00\x01", "😀" * 300, "a" * 10_000])
def test_odd_values_never_raise(raw):
    catalog = default_catalog()
    for fdef in catalog.fields.values():
        check = check_field(fdef, raw)
        if not check.ok:
            assert explain(catalog, fdef, check, "zh")
