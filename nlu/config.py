"""How the bot reaches its NLU engine; plain data, cheap to import."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["EngineMode", "NluConfig"]

# auto: Rasa when it can be had, else lexical; rasa: Rasa or an error; lexical: never Rasa.
EngineMode = Literal["auto", "rasa", "lexical"]


@dataclass(frozen=True)
class NluConfig:
    mode: EngineMode = "auto"
    rasa_url: str | None = None  # external server; None: the bot runs its own
    rasa_venv: Path | None = None  # None: ./.venv-rasa, then the checkout's
    model_dir: Path = Path("models")
    log_dir: Path | None = None  # the managed server's log goes here
    timeout: float = 0.3  # seconds; a slower parse counts as no parse
