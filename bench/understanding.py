"""Accuracy on the corpus written as users type (tests/data/corpus/), per kind and engine.

For each part (tuning, held-out) and each engine -- lexical alone, Rasa alone (its intent
and response selector decide) and the hybrid (the bot's default with Rasa) -- prints the
share answered right, one tap from right (a "did you mean" suggestion), wrong (an answer
missing a fact it needs, or an answer to an out-of-scope question), unanswered, and the
invented numbers; then a table per kind. Starts a Rasa server for the current model, as the
bot's managed mode does (``--lexical-only`` leaves Rasa out).

    .venv/bin/python bench/understanding.py [--part heldout] [--lexical-only] [--show 0]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.rasa_model import current_rasa  # noqa: E402
from bot.core.dialogue import Dialogue  # noqa: E402
from bot.core.messages import default_messages  # noqa: E402
from nlu.lexical import default_lexical  # noqa: E402
from nlu.rasa import RasaInterpreter  # noqa: E402
from tests.auxil import corpus  # noqa: E402

MANUALS = ROOT.parent / "shared" / "manuals"
VERDICTS = ("right", "suggested", "wrong", "unanswered")


def print_report(title: str, report: corpus.Report, show: int) -> None:
    n = len(report.verdicts)
    shares = "  ".join(f"{v} {report.share(v):6.1%}" for v in VERDICTS)
    print(f"{title:<22} n={n:<4} {shares}  invented {len(report.invented)}")
    misses = [v for v in report.verdicts if v.verdict != "right"][:show]
    for v in misses:
        print(f"    - {v.item.id} [{v.item.kind}] {v.verdict}: {v.item.q}  =>  {corpus.squash(v.answer)[:90]}")


def print_kinds(reports: dict[str, corpus.Report]) -> None:
    kinds = sorted({v.item.kind for r in reports.values() for v in r.verdicts})
    engines = list(reports)
    print(f"  {'kind':<14}{'n':>4}  " + "  ".join(f"{e + ' right/tap':>18}" for e in engines))
    for kind in kinds:
        first = next(iter(reports.values()))
        n = sum(v.item.kind == kind for v in first.verdicts)
        cells = "  ".join(
            f"{r.share('right', kind):>10.0%} / {r.share('right', kind) + r.share('suggested', kind):>4.0%}"
            for r in reports.values()
        )
        print(f"  {kind:<14}{n:>4}  {cells}")


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", choices=corpus.PARTS, action="append", help="default: both")
    ap.add_argument("--lexical-only", action="store_true")
    ap.add_argument("--show", type=int, default=0, help="misses to print per engine (tuning part only)")
    args = ap.parse_args()
    parts = args.part or list(corpus.PARTS)
    manual_texts = [p.read_text(encoding="utf-8") for p in MANUALS.glob("*.txt")]
    lexical = default_lexical()
    messages = default_messages()
    dialogues = {s: Dialogue(lexical.retriever, messages, strategy=s) for s in ("lexical", "rasa", "hybrid")}
    items = {part: corpus.load(part) for part in parts}

    async def report(rasa: RasaInterpreter | None) -> None:
        for part, qs in items.items():
            t0 = time.perf_counter()
            lex = [lexical.parse_sync(q.q) for q in qs]
            reports = {"lexical": corpus.run(qs, dialogues["lexical"], lex, manual_texts)}
            if rasa is not None:
                ras = [await rasa.parse(q.q) for q in qs]
                reports["rasa"] = corpus.run(qs, dialogues["rasa"], ras, manual_texts)
                reports["hybrid"] = corpus.run(qs, dialogues["hybrid"], ras, manual_texts)
            print(f"\n== {part} ({len(qs)} questions, {time.perf_counter() - t0:.1f} s)")
            for engine, result in reports.items():
                print_report(engine, result, args.show if part != "heldout" else 0)
            print_kinds(reports)

    if args.lexical_only:
        await report(None)
        return
    async with current_rasa() as rasa:
        await report(rasa)


if __name__ == "__main__":
    asyncio.run(main())
