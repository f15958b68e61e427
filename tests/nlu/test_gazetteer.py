from __future__ import annotations

import pytest

from nlu.gazetteer import default_gazetteer, load_gazetteer


@pytest.fixture(scope="module")
def gaz():
    return default_gazetteer()


def test_longest_word_wins_and_offsets_point_into_the_text(gaz):
    text = "宝鸡哪里办法人IC卡，我们是物流企业，用MQ版"
    found = [(m.entity, m.value, text[m.start : m.end]) for m in gaz.find(text)]
    assert found == [
        ("city", "宝鸡", "宝鸡"),
        ("card_type", "法人卡", "法人IC卡"),
        ("company_role", "物流企业", "物流企业"),
        ("open_mode", "MQ", "MQ版"),
    ]


def test_ascii_words_need_word_boundaries(gaz):
    assert "open_mode" not in gaz.values("rapid growth")
    assert gaz.values("we use the API")["open_mode"] == "API"


def test_values_and_regions(gaz):
    assert gaz.values("珠海横琴的UKey") == {"region": "zhuhai", "district": "横琴", "card_type": "UKey"}
    assert gaz.region_of("city", "宝鸡") == "shaanxi"
    assert gaz.region_of("district", "拱跨工区") == "zhuhai"
    assert gaz.region_of("region", "zhuhai") == "zhuhai"
    assert gaz.region_of("card_type", "UKey") is None
    assert gaz.region_of("city", "上海") is None


def test_business_modes_are_strings(gaz):
    assert gaz.values("9610模式")["business_mode"] == "9610"


def test_every_place_has_a_known_region(gaz, kb):
    for entity in ("city", "district"):
        for value, spec in gaz.entities[entity].items():
            assert spec.region in kb.regions, (entity, value)
    assert set(gaz.entities["region"]) == set(kb.regions)


def test_a_bad_file_is_rejected_with_the_field_named(tmp_path):
    bad = tmp_path / "entities.yaml"
    bad.write_text("entities:\n  city:\n    西安: {words: []}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="words"):
        load_gazetteer(bad)
