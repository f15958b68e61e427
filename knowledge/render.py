"""How an entry reads: to the retriever (search text) and to the user (answer text).

Branch entries hold only fields; their wording is generated here so the 13 branches stay
13 short records in the data file.
"""

from __future__ import annotations

from collections.abc import Iterator

from knowledge.loader import KnowledgeBase
from knowledge.schema import BranchEntry, Entry

__all__ = ["answer_lines", "search_texts", "title"]

_BRANCH_QUESTIONS = (
    "{name}地址",
    "{name}电话",
    "{name}在哪",
    "{city}{district}建行",
    "{city}哪里可以办卡",
    "{city}办卡地址",
    "{city}代理点电话",
)


def title(entry: Entry, lang: str = "zh") -> str:
    if isinstance(entry, BranchEntry):
        return entry.en.name or entry.name if lang == "en" else entry.name
    return entry.en.title or entry.title if lang == "en" else entry.title


def search_texts(entry: Entry) -> Iterator[tuple[str, float]]:
    """(text, weight) pairs the retriever indexes for an entry, Chinese and English."""
    yield entry.title, 2.0
    for q in entry.questions:
        yield q, 2.0
    for k in entry.keywords:
        yield k, 2.0
    yield entry.answer, 1.0
    for b in entry.bullets:
        yield b, 1.0
    yield entry.en.title or entry.en.name, 2.0
    yield entry.en.answer, 1.0
    for b in entry.en.bullets:
        yield b, 1.0
    if isinstance(entry, BranchEntry):
        fields = {"name": entry.name, "city": entry.city, "district": entry.district}
        yield entry.name, 3.0
        yield f"{entry.city} {entry.district} 建行 代理点 办卡 制卡 地址 电话 联系电话", 1.0
        yield entry.address, 1.0
        yield entry.phone, 1.0
        for template in _BRANCH_QUESTIONS:
            yield template.format(**fields), 1.0
        yield "CCB branch card agent address phone", 1.0


def branch_line(entry: BranchEntry, lang: str = "zh") -> str:
    if lang == "en":
        return f"{title(entry, 'en')} ({entry.name}): {entry.address}, phone {entry.phone}"
    return f"{entry.name}：{entry.address}，电话 {entry.phone}"


def answer_lines(entry: Entry, kb: KnowledgeBase, lang: str = "zh") -> list[str]:
    """The answer as a headline and bullet lines, without the source line."""
    if isinstance(entry, BranchEntry):
        if lang == "en":
            head = f"{title(entry, 'en')} ({entry.name}), {entry.city} {entry.district}"
            return [head, f"• Address: {entry.address}", f"• Phone: {entry.phone}"]
        return [f"{entry.name}（{entry.city}{entry.district}）", f"• 地址：{entry.address}", f"• 电话：{entry.phone}"]
    if lang == "en" and entry.en.answer:
        lines = [entry.en.answer, *(f"• {b}" for b in entry.en.bullets)]
    else:
        lines = [entry.answer, *(f"• {b}" for b in entry.bullets)]
    if entry.includes == "branches":
        lines.extend(f"• {branch_line(b, lang)}" for b in kb.branches(entry.region))
    if entry.policy:
        note = kb.policy_notes[entry.policy]
        lines.append(f"⚠ {note.text_en if lang == 'en' else note.text}")
    return lines
