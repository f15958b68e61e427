"""Train and cross-validate the Rasa model inside ``.venv-rasa``.

Rasa cannot live in the bot's environment (it pins SQLAlchemy 1.4 and pydantic 1), so it is
run as a command of its own virtual environment. A model is named after the content hash of
the exported project: training is skipped when a model of the same data exists, and a model
is renamed into place only when complete, so an interrupted run never leaves a model that
looks trained.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import yaml

from nlu.export import PROJECT_DIR, project_hash

__all__ = [
    "CrossValidation",
    "RasaEnvError",
    "Score",
    "TrainResult",
    "cross_validate",
    "find_rasa_bin",
    "model_path",
    "train",
]

log = logging.getLogger(__name__)
_REPO_ROOT = PROJECT_DIR.parent.parent
_VENV_NAME = ".venv-rasa"


class RasaEnvError(Exception):
    """Rasa is not installed, or a Rasa command failed."""


def find_rasa_bin(venv: Path | None = None) -> Path | None:
    """The ``rasa`` executable: in ``venv`` if given, else ``./.venv-rasa``, else the checkout's."""
    candidates = [venv] if venv is not None else [Path.cwd() / _VENV_NAME, _REPO_ROOT / _VENV_NAME]
    for candidate in candidates:
        rasa = candidate / "bin" / "rasa"
        if rasa.is_file() and os.access(rasa, os.X_OK):
            return rasa
    return None


def model_path(model_dir: Path, project_dir: Path = PROJECT_DIR) -> Path:
    """Where the model of the project's current data is (or will be)."""
    return model_dir / f"portpal-{project_hash(project_dir)}.tar.gz"


@dataclass(frozen=True)
class TrainResult:
    model: Path
    trained: bool  # False: an up-to-date model existed
    seconds: float


def _env(cache_dir: Path | None = None) -> dict[str, str]:
    extra = {"RASA_CACHE_DIRECTORY": str(cache_dir)} if cache_dir is not None else {}
    return {
        **os.environ,
        **extra,
        "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONWARNINGS": "ignore",
    }


def _run(cmd: list[str], cwd: Path, out: IO[str] | None, cache_dir: Path | None = None) -> None:
    """Run a Rasa command; its output goes to ``out`` as it comes (progress bars included)
    and its tail is kept for the error message."""
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=_env(cache_dir), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    assert proc.stdout is not None
    tail = b""
    while chunk := os.read(proc.stdout.fileno(), 4096):
        tail = (tail + chunk)[-4000:]
        if out is not None:
            out.write(chunk.decode("utf-8", errors="replace"))
            out.flush()
    if proc.wait() != 0:
        text = tail.decode("utf-8", errors="replace")
        raise RasaEnvError(f"`{' '.join(cmd[:3])}` failed with status {proc.returncode}:\n{text}")


def train(
    model_dir: Path,
    rasa_bin: Path,
    *,
    project_dir: Path = PROJECT_DIR,
    force: bool = False,
    out: IO[str] | None = sys.stderr,
    clock: Callable[[], float] = time.perf_counter,
) -> TrainResult:
    """Train an NLU model of ``project_dir`` into ``model_dir`` unless an up-to-date one exists."""
    target = model_path(model_dir, project_dir)
    if target.is_file() and not force:
        return TrainResult(target, trained=False, seconds=0.0)
    model_dir.mkdir(parents=True, exist_ok=True)
    # Rasa drops anything after a dot in the name; "-partial" survives.
    partial_name = target.name.removesuffix(".tar.gz") + "-partial"
    start = clock()
    _run(
        [
            str(rasa_bin),
            "train",
            "nlu",
            "--config",
            "config.yml",
            "--domain",
            "domain.yml",
            "--nlu",
            "data",
            "--out",
            str(model_dir),
            "--fixed-model-name",
            partial_name,
        ],
        project_dir,
        out,
        # Rasa caches trained components by their inputs; keep the cache with the models,
        # not in the (packaged) project directory.
        cache_dir=model_dir / "cache",
    )
    produced = model_dir / f"{partial_name}.tar.gz"
    if not produced.is_file():
        raise RasaEnvError(f"rasa train finished but wrote no model at {produced}")
    produced.replace(target)
    for old in model_dir.glob("portpal-*.tar.gz"):
        if old != target:
            old.unlink(missing_ok=True)
    return TrainResult(target, trained=True, seconds=clock() - start)


@dataclass(frozen=True)
class Score:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class CrossValidation:
    intent: Score
    entity: Score | None
    response: Score | None
    per_entity: dict[str, Score]


def _score(report: dict[str, object], key: str = "weighted avg") -> Score | None:
    row = report.get(key)
    if not isinstance(row, dict):
        return None
    return Score(float(row["precision"]), float(row["recall"]), float(row["f1-score"]), int(row["support"]))


def _read(path: Path) -> dict[str, object]:
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def cross_validate(
    rasa_bin: Path,
    results_dir: Path,
    *,
    folds: int = 3,
    project_dir: Path = PROJECT_DIR,
    out: IO[str] | None = sys.stderr,
    cache_dir: Path | None = None,
    epochs: int | None = None,
) -> CrossValidation:
    """Rasa's own k-fold cross-validation of the exported data; reads its reports.

    ``epochs`` overrides the classifiers' epochs in a copy of the project: a quick check of
    the data (each fold trains a model) without the cost of the production schedule.
    """
    results_dir.mkdir(parents=True, exist_ok=True)
    if epochs is not None:
        with tempfile.TemporaryDirectory(prefix="portpal-cv-") as tmp:
            copy = Path(tmp) / "project"
            shutil.copytree(project_dir, copy)
            _override_epochs(copy / "config.yml", epochs)
            return cross_validate(rasa_bin, results_dir, folds=folds, project_dir=copy, out=out, cache_dir=cache_dir)
    _run(
        [
            str(rasa_bin),
            "test",
            "nlu",
            "--cross-validation",
            "--folds",
            str(folds),
            "--config",
            "config.yml",
            "--nlu",
            "data",
            "--domain",
            "domain.yml",
            "--out",
            str(results_dir),
        ],
        project_dir,
        out,
        cache_dir=cache_dir,
    )
    intent = _score(_read(results_dir / "intent_report.json"))
    if intent is None:
        raise RasaEnvError(f"no intent report in {results_dir}")
    entities = _read(results_dir / "DIETClassifier_report.json")
    per_entity = {
        name: s
        for name in entities
        if name not in {"micro avg", "macro avg", "weighted avg", "accuracy"}
        and (s := _score(entities, name)) is not None
    }
    return CrossValidation(
        intent=intent,
        entity=_score(entities, "micro avg") or _score(entities),
        response=_score(_read(results_dir / "response_selection_report.json")),
        per_entity=per_entity,
    )


def _override_epochs(config: Path, epochs: int) -> None:
    """Set ``epochs`` of every trained component of a Rasa config (others are left alone)."""
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    for component in data.get("pipeline") or []:
        if "epochs" in component:
            component["epochs"] = epochs
    config.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
