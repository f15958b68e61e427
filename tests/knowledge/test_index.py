from __future__ import annotations

import pytest

from knowledge.text import is_english


@pytest.mark.parametrize(
    ("text", "region"),
    [
        ("宝鸡哪里办卡", "shaanxi"),
        ("西安的建行", "shaanxi"),
        ("横琴主管海关", "zhuhai"),
        ("拱北窗口", "zhuhai"),
        ("Where is the branch in Baoji?", "shaanxi"),
        ("法人卡去哪办", None),
        ("陕西和珠海有什么区别", None),
    ],
)
def test_detect_region(retriever, text, region):
    assert retriever.detect_region(text) == region


@pytest.mark.parametrize(
    ("question", "entry_id"),
    [
        ("宝鸡哪里可以办卡", "sx.branch.baoji"),
        ("宝鸡那里可以办卡", "sx.branch.baoji"),  # 那里 for 哪里
        ("陕西电子口岸客服电化", "sx.hotline.eport"),  # typo 电化
        ("唐延路支行的号码", "sx.branch.xa_tangyan"),
        ("横琴检疫机构编号", "zh.code.485400"),
        ("KJDS-003是什么", "zh.code.kjds003"),
        ("What is the customs code of Doumen?", "zh.code.5770"),
    ],
)
def test_top_entry(retriever, question, entry_id):
    hits = retriever.search(question, retriever.detect_region(question))
    assert hits[0].entry.id == entry_id
    assert hits[0].confidence >= 0.5


@pytest.mark.parametrize(
    "question", ["你觉得比特币还会涨吗", "推荐一家好吃的餐厅", "明天北京天气怎么样", "how to bake bread"]
)
def test_out_of_scope_has_low_confidence(retriever, question):
    hits = retriever.search(question)
    assert not hits or hits[0].confidence < 0.5


def test_region_filter_restricts_results(retriever):
    hits = retriever.search("法人卡去哪办", "zhuhai", k=10)
    assert hits and all(h.entry.region == "zhuhai" for h in hits)


def test_empty_and_contentless_messages(retriever):
    for text in ["", "？？？！", "2", "12", " 3 ", "a", "…"]:
        assert retriever.search(text) == [], text


def test_codes_are_still_searchable(retriever):
    assert retriever.search("5788")[0].entry.id == "zh.code.5788"


def test_is_english():
    assert is_english("Where can I get the card?")
    assert not is_english("宝鸡哪里可以办卡")
    assert not is_english("KJDS-003是什么")
