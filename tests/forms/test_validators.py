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


def test_resident_ids():
    assert check_ric("11010519491231002X").value == "11010519491231002X"
    assert check_ric("11010519491231002x").value == "11010519491231002X"
    assert check_ric("110105194912310021").error == "ric_checksum"
    assert check_ric("110105194913310021").error == "ric_birth"
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
