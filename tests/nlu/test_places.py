"""Places outside the manuals' regions are named in a question only where words start and end."""

from __future__ import annotations

import pytest

from nlu.places import default_other_places


@pytest.mark.parametrize(
    ("text", "places"),
    [
        ("我们在温州做电商，怎么办卡", ["温州"]),
        ("上海怎么办电子口岸卡", ["上海"]),
        ("深圳市的公司能在这里备案吗", ["深圳市"]),
        ("how do i register in shenzhen", ["Shenzhen"]),
        ("总署统一版交材料是开通什么权限", []),  # 通什 (a town) across 开通 / 什么
        ("西安的建行网点在哪", []),  # a place the manuals cover
        ("天津海关那边也能办吗", ["天津"]),  # jieba's one word 天津海关: a place and a word
        ("南京东路旁边有建行吗", []),  # a street named after a city
        ("上海电子口岸怎么注册", ["上海"]),
    ],
)
def test_other_places_are_whole_words(text: str, places: list[str]) -> None:
    assert default_other_places().find(text) == places
