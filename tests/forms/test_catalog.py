"""The form catalog loads, and broken form data is reported with file and id."""

from __future__ import annotations

import shutil

import pytest

from forms.catalog import DATA_DIR, CatalogError, default_catalog, load_catalog
from tests.auxil.knowledge_data import edit


@pytest.fixture
def data(tmp_path):
    target = tmp_path / "forms"
    shutil.copytree(DATA_DIR, target)
    return target


def test_every_document_of_the_issue_is_in_the_catalog():
    titles = {f.title.zh for f in default_catalog().forms.values()}
    for title in (
        "电子口岸制发卡业务申请书", "授权委托书", "复印件签注说明", "电子口岸数据交换平台用户申请表", "电子签章授权委托书",
        "数据交换安全承诺书", "数据交换接口申请表", "企业法人授权书", "平台入驻信息表", "陕西入网材料清单", "申请书",
        "跨境电商统一版企业接入申请表", "委托书", "书面申请（拱跨工区海关）", "质量诚信经营承诺书",
        "跨境电子商务经营主体备案信息表", "本地备案工单内容", "珠海接入材料清单",
    ):  # fmt: skip
        assert title in titles


def test_choice_fields_borrow_walkthrough_options_and_kb_branches(kb):
    catalog = default_catalog()
    assert [o.value for o in catalog.fields["card_channel"].options] == ["online", "offline"]
    issuers = catalog.fields["card_issuer"].options
    assert len(issuers) == 1 + len(kb.branches("shaanxi")) == 14
    assert {o.label.zh for o in issuers[1:]} == {b.name for b in kb.branches("shaanxi")}


def test_forms_are_found_by_their_names():
    catalog = default_catalog()
    assert [f.id for f in catalog.forms_by_words("帮我生成授权委托书")] == ["sx_power_of_attorney"]
    assert [f.id for f in catalog.forms_by_words("要一份 KJDS-003")] == ["zh_entrustment"]
    both = {f.id for f in catalog.forms_by_words("生成电子口岸数据交换平台用户申请表")}
    assert both == {"sx_dxp_user_application", "zh_dxp_user_application"}
    assert catalog.field_by_words("改一下法人姓名").id == "legal_rep_name"
    assert catalog.field_by_words("法人手机号填错了").id == "legal_rep_mobile"


def test_an_unknown_field_in_a_form_names_file_and_form(data):
    edit(data / "forms" / "shaanxi.yaml", lambda raw: raw["forms"][0]["fields"].append("favourite_colour"))
    with pytest.raises(CatalogError, match=r"shaanxi.yaml: sx_card_application: unknown field 'favourite_colour'"):
        load_catalog(data)


def test_a_placeholder_without_a_field_is_reported(data):
    edit(data / "forms" / "zhuhai.yaml", lambda raw: raw["forms"][0]["layout"].append({"text": "{{ ceo_name }}"}))
    with pytest.raises(CatalogError, match=r"zh_application_letter: layout uses unknown value 'ceo_name'"):
        load_catalog(data)


def test_a_field_without_example_or_options_is_reported(data):
    def change(raw):
        raw["fields"][0].pop("example")
        raw["fields"].append({"id": "colour", "group": "company", "label": "颜色", "type": "choice"})

    edit(data / "fields.yaml", change)
    with pytest.raises(CatalogError) as err:
        load_catalog(data)
    assert "company_name: needs an example" in str(err.value)
    assert "colour: a choice field needs options" in str(err.value)


def test_schema_errors_name_the_form(data):
    edit(data / "forms" / "shaanxi.yaml", lambda raw: raw["forms"][1].update(kind="pptx"))
    with pytest.raises(CatalogError, match=r"shaanxi.yaml: sx_power_of_attorney: .*kind"):
        load_catalog(data)


def test_a_borrowed_choice_that_does_not_exist_is_reported(data):
    edit(data / "fields.yaml", lambda raw: raw["fields"][13]["options_from"].update(choice="no_such_choice"))
    with pytest.raises(CatalogError, match="no choice 'no_such_choice' in procedure"):
        load_catalog(data)


def test_the_forms_state_no_phone_code_or_url_the_manuals_lack(kb, manual_texts):
    from knowledge.drift import check

    report = check(kb, manual_texts, extra=[("forms", list(default_catalog().profile_texts()))])
    assert [r for r in report.not_in_manuals if r[0] == "forms"] == []


def test_an_invented_phone_in_a_form_is_reported(data, kb, manual_texts):
    from knowledge.drift import check

    edit(
        data / "forms" / "zhuhai.yaml", lambda raw: raw["forms"][0]["layout"].append({"note": "咨询电话 0756-9999999"})
    )
    texts = list(load_catalog(data).profile_texts())
    report = check(kb, manual_texts, extra=[("forms", texts)])
    assert ("forms", "phone", "0756-9999999") in report.not_in_manuals
