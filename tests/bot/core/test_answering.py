from __future__ import annotations

import re

from bot.core.answering import answer_question


def test_branch_answer_has_address_phone_and_source(retriever):
    a = answer_question("宝鸡哪里可以办卡", retriever)
    assert "陕西省宝鸡市渭滨区红旗路36号" in a.text
    assert "0917-3276018" in a.text
    assert a.text.splitlines()[-1] == "来源：陕西手册 2.3.3"
    assert [(s.manual, s.section) for s in a.sources] == [("陕西手册", "2.3.3")]
    assert not a.fallback and a.region == "shaanxi"


def test_city_with_several_branches_lists_them_all(retriever, kb):
    a = answer_question("西安哪里可以办卡", retriever)
    for branch in kb.branches("shaanxi", "西安"):
        assert branch.phone in a.text
    assert len(a.entry_ids) == 3


def test_named_branch_is_answered_alone(retriever):
    a = answer_question("西安锦业一路建行地址", retriever)
    assert a.entry_ids == ("sx.branch.xa_jinye",)
    assert "88330575" not in a.text


def test_ambiguous_region_answers_both(retriever):
    a = answer_question("法人卡去哪办", retriever)
    assert a.ambiguous and set(a.regions) == {"shaanxi", "zhuhai"}
    assert "【陕西】" in a.text and "【珠海】" in a.text
    assert "0756-8125566" in a.text


def test_remembered_region_decides(retriever):
    a = answer_question("法人卡去哪办", retriever, region="zhuhai")
    assert a.regions == ("zhuhai",)
    assert "0756-8125566" in a.text


def test_region_in_question_beats_remembered_region(retriever):
    a = answer_question("陕西电子口岸客服电话", retriever, region="zhuhai")
    assert "029-95198" in a.text


def test_english_answer_keeps_facts(retriever):
    a = answer_question("What is the phone number of the CCB Yulin branch?", retriever, lang="en")
    assert "0912-3646288" in a.text
    assert a.text.splitlines()[-1].startswith("Source: Shaanxi manual")


def test_policy_note_shown_with_abolished_filing(retriever):
    a = answer_question("对外贸易经营者备案怎么办", retriever)
    assert "2022年12月30日" in a.text and "取消" in a.text


def test_fallback_for_unrelated_question(retriever):
    a = answer_question("推荐一家好吃的餐厅", retriever)
    assert a.fallback and a.text == "" and a.sources == ()


def test_numbers_in_answers_are_all_in_the_manuals(retriever, kb, manual_texts):
    manual = re.sub(r"\s+", "", "".join(manual_texts)).replace("--", "-")
    number = re.compile(r"\d[\d\-]{3,}\d")
    for entry in kb.entries:
        for q in entry.questions[:1] or [entry.title]:
            a = answer_question(q, retriever)
            for token in number.findall(re.sub(r"\s+", "", a.text)):
                assert token in manual, (q, token)


def test_a_weak_but_clear_best_entry_is_answered(retriever):
    # Below the answer threshold, but no other entry is near: answered, not "did you mean".
    from bot.core.answering import CONFIDENCE_THRESHOLD

    a = answer_question("领卡的期限是从哪一天起算的", retriever)
    assert not a.fallback and a.entry_ids == ("sx.card.onsite_pickup",)
    assert a.confidence < CONFIDENCE_THRESHOLD
    assert "90" in a.text


def test_a_weak_best_entry_with_a_close_second_is_only_suggested(retriever, kb):
    from bot.core.answering import _stands_out
    from knowledge.index import Hit

    one, other = kb.get("sx.card.onsite_pickup"), kb.get("sx.card.channels")
    assert _stands_out([Hit(one, 1.0, 0.3), Hit(other, 0.5, 0.2)])
    assert not _stands_out([Hit(one, 1.0, 0.3), Hit(other, 0.9, 0.26)])
    assert not _stands_out([Hit(one, 1.0, 0.2), Hit(other, 0.1, 0.0)])


def test_an_entry_about_another_option_does_not_answer_for_this_one(retriever):
    # The manual lists the materials of Web版 and MQ版, none for API版: not the MQ list.
    a = answer_question("api版要交哪些材料", retriever)
    assert a.fallback and "sx.platform.mq_materials" in a.suggestions
    mq = answer_question("MQ版入驻要准备什么材料", retriever)
    assert not mq.fallback and mq.entry_ids[0] == "sx.platform.mq_materials"
    both = answer_question("线上办卡和线下办卡流程有啥不同", retriever)
    assert not both.fallback


def test_a_district_with_several_branches_lists_them_all(retriever, kb):
    a = answer_question("西安高新区附近哪个建行能办卡", retriever)
    assert set(a.entry_ids) == {"sx.branch.xa_jinye", "sx.branch.xa_tangyan"}
    anywhere = answer_question("高新区那边的建行网点", retriever)
    assert {b.id for b in kb.branches("shaanxi") if b.district == "高新区"} == set(anywhere.entry_ids)
    assert answer_question("唐延路那个建行网点", retriever).entry_ids == ("sx.branch.xa_tangyan",)


def test_a_term_no_manual_defines_is_said_so_with_where_it_is_mentioned(retriever):
    a = answer_question("DXPID是啥意思", retriever)
    assert a.fallback and a.undefined == "DXPID"
    assert a.suggestions and all(
        "DXPID" in retriever.kb.get(e).answer + " ".join(retriever.kb.get(e).bullets) for e in a.suggestions
    )
    defined = answer_question("介质是什么意思", retriever)
    assert not defined.fallback and defined.entry_ids == ("sx.term.medium",)


def test_what_comes_before_a_step_is_answered_from_the_procedure(retriever, kb):
    a = answer_question("企业类型备案之前得先弄啥", retriever)
    earlier = [st.title.zh for st in kb.procedures["shaanxi"].steps[:3]]
    assert not a.fallback and all(t in a.text for t in earlier)
    assert a.offer == ("shaanxi", "enterprise_type_filing") and "来源：陕西手册" in a.text
    # A step said not done, before the one asked about: the order, and what the manual says of it.
    b = answer_question("海关注册登记没办能先做企业类型备案吗", retriever)
    assert "第 2 步，在第 4 步「跨境电商企业类型备案」之前" in b.text
    # Asked for a document before a step, not for steps: the search answers.
    c = answer_question("物流企业入驻之前要先拿到什么证", retriever)
    assert not c.intent.startswith("before/")


def test_hotline_in_a_city_is_the_help_desk_not_a_branch(retriever):
    """热线 is the help desk's number: "西安的热线" is no branch's phone."""
    a = answer_question("西安的热线是多少", retriever)
    assert "029-95198" in a.text
    assert not any(i.startswith("sx.branch.") for i in a.entry_ids)


def test_hotline_without_region_answers_both(retriever):
    a = answer_question("热线电话多少", retriever)
    assert set(a.regions) == {"shaanxi", "zhuhai"}


def test_a_city_named_in_english_lists_its_branches_and_a_street_singles_one_out(retriever, kb):
    a = answer_question("which ccb branches in xi'an can make the e-port card", retriever, lang="en")
    assert all(b.phone in a.text for b in kb.branches("shaanxi", "西安"))
    a = answer_question("ccb branch on jinye road in xi'an", retriever, lang="en")
    assert a.entry_ids == ("sx.branch.xa_jinye",)
