"""Profiles: the fields a path needs, cross-field rules, whole-profile validation."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from forms.catalog import default_catalog
from forms.profile import complete, missing_fields, render_context, rule_errors, validate_profile

PROFILE = json.loads((Path(__file__).parents[1] / "data" / "forms" / "profile.json").read_text(encoding="utf-8"))


def test_fields_follow_the_path():
    catalog = default_catalog()
    form = [catalog.forms["sx_card_application"]]
    online_mail = {"card_channel": "online", "delivery": "mail", "operator_cards": "none", "card_holder_same": "yes"}
    ids = {f.id for f in missing_fields(catalog, form, online_mail)}
    assert {"card_receiver", "receiver_address"} <= ids
    assert not ids & {"operator1_name", "card_holder_name"}
    offline = {"card_channel": "offline", "operator_cards": "two", "card_holder_same": "no"}
    ids = {f.id for f in missing_fields(catalog, form, offline)}
    assert {"operator2_id", "card_holder_id"} <= ids
    assert not ids & {"delivery", "card_receiver"}


def test_the_legal_person_card_holder_is_not_an_operator():
    catalog = default_catalog()
    values = {**PROFILE, "operator1_id": PROFILE["legal_rep_id"]}
    errors = rule_errors(catalog, values, "zh")
    assert [e.field for e in errors] == ["operator1_id"]
    assert "法人卡和操作员卡不能是同一个人" in errors[0].message
    # The holder may be someone other than the legal representative: compared with them.
    other_holder = {**PROFILE, "card_holder_same": "no", "card_holder_id": PROFILE["operator1_id"]}
    assert [e.field for e in rule_errors(catalog, other_holder, "zh")] == ["operator1_id"]
    assert rule_errors(catalog, {**values, "card_holder_same": "no", "card_holder_id": PROFILE["agent_id"]}, "zh") == []
    assert rule_errors(catalog, PROFILE, "zh") == []


def test_mail_delivery_needs_the_data_centre_and_offline_a_branch():
    catalog = default_catalog()
    mail = {**PROFILE, "card_issuer": "baoji"}
    assert "西安数据分中心" in rule_errors(catalog, mail, "zh")[0].message
    offline = {**PROFILE, "card_channel": "offline", "card_issuer": "xian_center"}
    assert "建行网点" in rule_errors(catalog, offline, "zh")[0].message


def test_receiver_and_trustee_come_from_the_people_already_named():
    # The recipient is the handler or the legal representative by construction (a choice),
    # and the Zhuhai power of attorney's attorney is the access application's contact.
    catalog = default_catalog()
    full = complete(catalog, PROFILE)
    assert (full["receiver_name"], full["receiver_mobile"]) == (PROFILE["agent_name"], PROFILE["agent_mobile"])
    assert complete(catalog, {**PROFILE, "card_receiver": "legal_rep"})["receiver_name"] == PROFILE["legal_rep_name"]
    entrust = catalog.forms["zh_entrustment"]
    assert {"contact_name", "contact_id"} <= set(entrust.field_ids())
    assert "被委托人" in catalog.fields["contact_name"].aliases


def test_validate_profile_lists_every_problem_with_its_field():
    catalog = default_catalog()
    form = [catalog.forms["zh_access_application"]]
    bad = {**PROFILE, "uscc": "91110000600037341X", "contact_mobile": "12345", "customs_code": "6101A609AB"}
    bad.pop("contact_email")
    errors = {e.field: e for e in validate_profile(catalog, form, bad)}
    assert set(errors) == {"uscc", "contact_mobile", "customs_code", "contact_email"}
    assert errors["customs_code"].warning and not errors["uscc"].warning
    assert validate_profile(catalog, form, PROFILE) == []


def test_unknown_keys_are_errors_not_crashes():
    catalog = default_catalog()
    errors = validate_profile(catalog, [catalog.forms["zh_ticket"]], {"company_name": "某公司", "x" * 500: "1"})
    assert errors and errors[0].field == "x" * 60


def test_context_shows_labels_boxes_codes_and_blank_dates():
    catalog = default_catalog()
    ctx = render_context(catalog, PROFILE, date(2026, 11, 23))
    assert ctx["card_issuer"] == "西安数据分中心"
    assert ctx["open_modules_boxes"] == "☑进口  ☑出口  ☐仓储"
    assert ctx["inspection_office"] == "跨境工业区 480040"
    assert ctx["customs_office"] == "拱跨工区 5791"
    assert ctx["org_code"] == "60003734-1"
    assert ctx["sign_date"].strip() == "年    月    日"
    assert (
        render_context(catalog, {**PROFILE, "sign_date": "2026-11-23"}, date(2026, 1, 1))["sign_date"]
        == "2026年11月23日"
    )
