"""Rasa alone, lexical alone and the hybrid: accuracy, parse and answer latency, training time.

Starts a Rasa server for the current model (as the bot's managed mode does), then for each
question of the project's own set and of the shared development set measures:

- accuracy, scored like ../shared/eval/run_eval.py (expected strings, fallbacks);
- parse latency: the engine's reading of the question (Rasa: HTTP /model/parse);
- answer latency: parse plus the dialogue core's answer, per strategy.

It first trains a model from scratch into a temporary directory and prints the time (about
4 minutes on 2 cores; ``--skip-train`` leaves that out).

    .venv/bin/python bench/nlu_compare.py [--rounds 3] [--skip-train]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.config import Settings  # noqa: E402
from bot.core.dialogue import Dialogue  # noqa: E402
from bot.core.events import TextMessage  # noqa: E402
from bot.core.messages import default_messages  # noqa: E402
from bot.core.state import ConversationState  # noqa: E402
from nlu.gazetteer import default_gazetteer  # noqa: E402
from nlu.hybrid import STRATEGIES, Strategy  # noqa: E402
from nlu.interpreter import Understanding  # noqa: E402
from nlu.lexical import default_lexical  # noqa: E402
from nlu.rasa import RasaInterpreter  # noqa: E402
from nlu.server import RasaServer  # noqa: E402
from nlu.training import find_rasa_bin, train  # noqa: E402

DEV_SET = ROOT.parent / "shared" / "eval" / "dev_questions.json"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))]


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def load_sets() -> dict[str, list[dict]]:
    own = yaml.safe_load((ROOT / "tests/data/questions.yaml").read_text(encoding="utf-8"))["questions"]
    dev = json.loads(DEV_SET.read_text(encoding="utf-8"))
    return {"own (180)": own, f"dev ({len(dev)})": dev}


def correct(item: dict, text: str, fallback: bool) -> bool:
    if item.get("kind") == "fallback":
        return fallback
    flat = squash(text)
    return not fallback and all(any(squash(str(s)) in flat for s in group) for group in item["expect"])


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3, help="latency rounds over all questions")
    ap.add_argument("--skip-train", action="store_true", help="do not time a training run from scratch")
    args = ap.parse_args()

    settings = Settings()
    rasa_bin = find_rasa_bin(settings.portpal_rasa_venv)
    if rasa_bin is None:
        sys.exit("Rasa is not installed (make rasa)")
    if not args.skip_train:
        with tempfile.TemporaryDirectory() as tmp:
            result = train(Path(tmp), rasa_bin, force=True, out=None)
        print(f"training from scratch: {result.seconds:.0f} s")
    model = train(settings.rasa_model_dir, rasa_bin, out=None).model
    sets = load_sets()
    lexical = default_lexical()
    dialogues = {s: Dialogue(lexical.retriever, default_messages(), strategy=s) for s in STRATEGIES}

    t0 = time.perf_counter()
    async with RasaServer(rasa_bin, model) as server:
        ready = time.perf_counter() - t0
        rasa = RasaInterpreter(server.url, default_gazetteer(), timeout=5.0)
        parse_ms: dict[str, list[float]] = {"lexical": [], "rasa": []}
        answer_ms: dict[Strategy, list[float]] = {s: [] for s in STRATEGIES}
        scores: dict[tuple[str, Strategy], int] = {}
        for round_no in range(args.rounds):
            for set_name, items in sets.items():
                for item in items:
                    q = item["q"]
                    a = time.perf_counter()
                    lex_u = lexical.parse_sync(q)
                    b = time.perf_counter()
                    rasa_u = await rasa.parse(q)
                    c = time.perf_counter()
                    parse_ms["lexical"].append((b - a) * 1000)
                    parse_ms["rasa"].append((c - b) * 1000)
                    readings: dict[Strategy, tuple[Understanding, float]] = {
                        "lexical": (lex_u, b - a),
                        "rasa": (rasa_u, c - b),
                        "hybrid": (rasa_u, c - b),
                    }
                    for strategy, (understanding, parse_s) in readings.items():
                        d = time.perf_counter()
                        out = dialogues[strategy].handle(ConversationState(), TextMessage(q), understanding)
                        answer_ms[strategy].append((parse_s + time.perf_counter() - d) * 1000)
                        if round_no == 0:
                            text = "\n".join(r.text for r in out.replies)
                            ok = correct(item, text, bool(out.answer and out.answer.fallback))
                            scores[(set_name, strategy)] = scores.get((set_name, strategy), 0) + ok
        await rasa.aclose()

    n_questions = sum(len(v) for v in sets.values())
    print(f"Rasa server ready in {ready:.1f} s (model {model.name})")
    print(f"{n_questions} questions x {args.rounds} rounds\n")
    print("| strategy | " + " | ".join(sets) + " | answer p50 | answer p99 |")
    print("| --- | " + " | ".join("---" for _ in sets) + " | --- | --- |")
    for strategy in STRATEGIES:
        cells = [f"{scores[(name, strategy)] / len(items):.1%}" for name, items in sets.items()]
        lat = answer_ms[strategy]
        print(
            f"| {strategy} | " + " | ".join(cells) + f" | {percentile(lat, 50):.1f} ms | {percentile(lat, 99):.1f} ms |"
        )
    print()
    for engine, values in parse_ms.items():
        print(f"parse {engine:<8} p50 {percentile(values, 50):6.1f} ms   p99 {percentile(values, 99):6.1f} ms")


if __name__ == "__main__":
    asyncio.run(main())
