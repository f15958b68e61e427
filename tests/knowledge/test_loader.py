from __future__ import annotations

import pytest

from knowledge.loader import KnowledgeError, load
from knowledge.schema import BranchEntry, HotlineEntry
from tests.auxil.knowledge_data import copy_data, edit


def test_every_entry_cites_a_manual_section(kb):
    assert len(kb.entries) >= 100
    for entry in kb.entries:
        assert entry.manual in kb.manuals
        assert entry.section
        assert kb.source_label(entry)


def test_all_thirteen_ccb_branches(kb):
    branches = kb.branches("shaanxi")
    assert len(branches) == 13
    assert all(isinstance(b, BranchEntry) and b.phone and b.address for b in branches)
    assert {b.city for b in branches} >= {
        "西安",
        "宝鸡",
        "咸阳",
        "安康",
        "榆林",
        "渭南",
        "商洛",
        "汉中",
        "延安",
        "铜川",
    }


def test_codes_and_hotlines_present(kb):
    text = " ".join(e.answer + " ".join(e.bullets) for e in kb.entries)
    for code in ["5791", "5795", "5770", "5788", "480040", "480100", "485400", "485500", "9610", "1210"]:
        assert code in text
    phones = {p for e in kb.entries if isinstance(e, HotlineEntry) for p in e.phones}
    assert {"029-95198", "029-83196210", "029-38018380", "029-38017010", "0756-8125566"} <= phones


def test_policy_note_attached_to_foreign_trade_operator_filing(kb):
    entry = kb.get("zh.jc.foreign_trade")
    assert entry.policy == "foreign_trade_operator"
    assert "2022年12月30日" in kb.policy_notes["foreign_trade_operator"].text


def test_bad_field_names_file_entry_and_field(tmp_path):
    data = copy_data(tmp_path)
    region_file = data / "regions" / "shaanxi.yaml"

    def break_phone(raw):
        for e in raw["entries"]:
            if e["id"] == "sx.hotline.eport":
                e["phones"] = ["029-ABC"]

    edit(region_file, break_phone)
    with pytest.raises(KnowledgeError) as err:
        load(data)
    message = str(err.value)
    assert "shaanxi.yaml" in message
    assert "sx.hotline.eport" in message
    assert "phones" in message


def test_missing_section_and_unknown_type_are_reported(tmp_path):
    data = copy_data(tmp_path)

    def damage(raw):
        raw["entries"][0].pop("section")
        raw["entries"][1]["type"] = "rumour"

    edit(data / "regions" / "zhuhai.yaml", damage)
    with pytest.raises(KnowledgeError) as err:
        load(data)
    message = str(err.value)
    assert "zhuhai.yaml" in message and "section" in message and "rumour" in message


def test_duplicate_ids_and_unknown_policy_are_reported(tmp_path):
    data = copy_data(tmp_path)

    def damage(raw):
        raw["entries"][1]["id"] = raw["entries"][0]["id"]
        raw["entries"][2]["policy"] = "made_up"

    edit(data / "regions" / "zhuhai.yaml", damage)
    with pytest.raises(KnowledgeError) as err:
        load(data)
    assert "duplicate id" in str(err.value)
    assert "made_up" in str(err.value)


def test_invalid_yaml_names_the_file(tmp_path):
    data = copy_data(tmp_path)
    (data / "regions" / "zhuhai.yaml").write_text("entries: [\n  - id: x\n", encoding="utf-8")
    with pytest.raises(KnowledgeError, match=r"zhuhai\.yaml: not valid YAML"):
        load(data)
