from __future__ import annotations

from datetime import date

import pytest

from knowledge.loader import KnowledgeError, load
from knowledge.procedure import Delay, matches
from tests.auxil.knowledge_data import copy_data, edit


def test_both_regions_have_a_procedure(kb):
    assert set(kb.procedures) == set(kb.regions)
    assert [s.id for s in kb.procedures["zhuhai"].steps] == [
        "jc_filing",
        "unified_access",
        "local_filing",
        "system_filing",
        "transmission",
    ]


def test_conditions_need_every_named_choice():
    assert matches(
        {"card_channel": ("online",), "delivery": ("pickup",)}, {"card_channel": "online", "delivery": "pickup"}
    )
    assert not matches({"card_channel": ("online",), "delivery": ("pickup",)}, {"card_channel": "online"})
    assert matches({}, {})


def test_working_days_skip_the_weekend():
    friday = date(2026, 11, 27)
    assert Delay(working_days=1).after(friday) == date(2026, 11, 30)
    assert Delay(working_days=10).after(friday) == date(2026, 12, 11)
    assert Delay(days=90).after(date(2026, 11, 23)) == date(2027, 2, 21)
    with pytest.raises(ValueError, match="exactly one"):
        Delay(days=1, working_days=1)


def test_unknown_choice_in_a_condition_is_named(tmp_path):
    data = copy_data(tmp_path)
    edit(
        data / "procedures" / "shaanxi.yaml",
        lambda raw: raw["steps"][2]["do"][0].update(when={"card_chanel": "online"}),
    )
    with pytest.raises(KnowledgeError, match=r"shaanxi.yaml: step card: do: unknown choice 'card_chanel'"):
        load(data)


def test_unknown_option_and_entry_are_named(tmp_path):
    data = copy_data(tmp_path)

    def change(raw):
        raw["steps"][0]["skip_if"] = {"customs_code": "maybe"}
        raw["steps"][2]["see"].append("zh.local.nowhere")

    edit(data / "procedures" / "zhuhai.yaml", change)
    with pytest.raises(KnowledgeError) as err:
        load(data)
    assert "step jc_filing: skip_if: choice customs_code has no option 'maybe'" in str(err.value)
    assert "step local_filing: unknown entry 'zh.local.nowhere'" in str(err.value)


def test_call_must_name_a_hotline(tmp_path):
    data = copy_data(tmp_path)
    edit(data / "procedures" / "shaanxi.yaml", lambda raw: raw["steps"][0].update(call=["sx.sw.register"]))
    with pytest.raises(KnowledgeError, match=r"call 'sx\.sw\.register' is not a hotline entry"):
        load(data)


def test_a_misspelt_field_is_an_error(tmp_path):
    data = copy_data(tmp_path)
    edit(data / "procedures" / "zhuhai.yaml", lambda raw: raw["steps"][1].update(pitfall=["typo"]))
    with pytest.raises(KnowledgeError, match=r"zhuhai.yaml: steps.1.pitfall: Extra inputs are not permitted"):
        load(data)
