from __future__ import annotations

import dataclasses

from knowledge.drift import check, extract


def test_knowledge_base_matches_manuals_both_ways(kb, manual_texts):
    report = check(kb, manual_texts)
    assert report.ok, "\n".join(report.lines())


def test_extract_finds_phones_urls_and_codes():
    found = extract(
        "电话 0756--2538065，网址 https://e.chinaport.gov.cn ，代码 5791、480040，KJDS-001模板，日期 2020-05-28"
    )
    assert found["phone"] == {"0756-2538065"}
    assert found["url"] == {"e.chinaport.gov.cn"}
    assert found["code"] == {"5791", "480040", "KJDS-001"}


def test_invented_phone_and_address_are_reported(kb, manual_texts):
    entry = kb.get("sx.branch.baoji")
    forged = entry.model_copy(update={"phone": "0917-1234567", "address": "陕西省宝鸡市幸福路1号"})
    entries = tuple(forged if e.id == entry.id else e for e in kb.entries)
    report = check(dataclasses.replace(kb, entries=entries), manual_texts)
    kinds = {(eid, kind) for eid, kind, _ in report.not_in_manuals}
    assert ("sx.branch.baoji", "phone") in kinds
    assert ("sx.branch.baoji", "address") in kinds
    # The real number is no longer anywhere in the knowledge base.
    assert ("phone", "0917-3276018") in report.missing_from_kb


def test_missing_entry_is_reported(kb, manual_texts):
    entries = tuple(e for e in kb.entries if e.id != "zh.code.485500")
    entries = tuple(e for e in entries if e.id != "zh.system.inspection_filing")
    # The procedures state the code too; without them and the entries it is missing.
    report = check(dataclasses.replace(kb, entries=entries, procedures={}), manual_texts)
    assert ("code", "485500") in report.missing_from_kb


def test_invented_fact_in_a_procedure_is_reported(kb, manual_texts):
    proc = kb.procedures["zhuhai"]
    step = proc.step("local_filing")
    forged_item = step.wait[0].model_copy(update={"zh": "预计十个工作日内完成，加急请拨打 0756-9999999。"})
    forged_step = step.model_copy(update={"wait": (forged_item,)})
    steps = tuple(forged_step if s.id == step.id else s for s in proc.steps)
    procedures = {**kb.procedures, "zhuhai": proc.model_copy(update={"steps": steps})}
    report = check(dataclasses.replace(kb, procedures=procedures), manual_texts)
    assert ("procedure zhuhai", "phone", "0756-9999999") in report.not_in_manuals
