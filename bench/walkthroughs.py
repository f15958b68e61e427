"""Walkthrough conversations in users' words, turn by turn: held out (tests/data/conversations/heldout/)
and tuned on (tests/data/conversations/tuning/).

Conversations written in users' own words before any tuning; each turn says in words that do
not depend on the bot's wording what it must leave the conversation in (the region walked,
the company, branch answers, the open step, steps done or skipped, "answered as a question").
Every turn is run and judged, a wrong turn included (it derails the turns after it, as it
would a user). Prints turns and whole conversations passed per engine, and which kinds of
expectation were missed, counted: the conversations themselves are not looked at one by one.

    .venv/bin/python bench/walkthroughs.py [--lexical-only] [--part tuning] [--show]

``--show`` prints the failed turns of the tuning part (never of the held-out part).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.rasa_model import current_rasa  # noqa: E402
from nlu.interpreter import Interpreter  # noqa: E402
from nlu.lexical import default_lexical  # noqa: E402
from tests.auxil.conversations import HELD_OUT_DIR, TUNING_DIR, CoreRunner, load_conversations  # noqa: E402

PARTS = {"heldout": HELD_OUT_DIR, "tuning": TUNING_DIR}


async def measure(name: str, interpreter: Interpreter, part: str = "heldout", show: bool = False) -> None:
    conversations = load_conversations(PARTS[part])
    lexical = default_lexical()
    with tempfile.TemporaryDirectory() as tmp:
        runner = CoreRunner(f"sqlite:///{Path(tmp) / 'bench.sqlite3'}", interpreter, lexical.retriever, strict=False)
        for conv in conversations:
            await runner.run(conv)
    turns = len(runner.results)
    passed = sum(not problems for _, _, problems in runner.results)
    failed_convs = {conv for conv, _, problems in runner.results if problems}
    missed: Counter[str] = Counter()
    for _, _, problems in runner.results:
        missed.update({p.split()[0] for p in problems})
    if show and part != "heldout":
        said = {(c.name, i): t.value for c in conversations for i, t in enumerate(c.turns)}
        for conv, index, problems in runner.results:
            if problems:
                print(f"    {conv[:40]} #{index} {said.get((conv, index - 1), '')!r}: {'; '.join(problems)}")
    print(
        f"{part:<8} {name:<8} turns {passed}/{turns} ({passed / turns:.1%})  "
        f"conversations {len(conversations) - len(failed_convs)}/{len(conversations)}"
    )
    print("         missed: " + ", ".join(f"{k} {n}" for k, n in missed.most_common()))
    files = {c.name: c.file for c in conversations}
    if len(set(files.values())) > 1:
        for file in sorted(set(files.values())):
            rows = [problems for conv, _, problems in runner.results if files[conv] == file]
            convs = {conv for conv in files if files[conv] == file}
            bad = {conv for conv, _, problems in runner.results if problems and files[conv] == file}
            print(
                f"         {file}: turns {sum(not p for p in rows)}/{len(rows)}  "
                f"conversations {len(convs) - len(bad)}/{len(convs)}"
            )


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lexical-only", action="store_true")
    ap.add_argument("--part", choices=list(PARTS), action="append", help="default: both")
    ap.add_argument("--show", action="store_true")
    args = ap.parse_args()
    parts = args.part or list(PARTS)
    for part in parts:
        await measure("lexical", default_lexical(), part, args.show)
    if args.lexical_only:
        return
    async with current_rasa() as client:
        for part in parts:
            await measure("rasa", client, part, args.show)


if __name__ == "__main__":
    asyncio.run(main())
