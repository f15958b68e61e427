"""Shared fixtures: the packaged knowledge base, the manuals, a fresh database."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.core.dialogue import Dialogue
from bot.core.messages import default_messages
from bot.store import Store
from knowledge.index import Retriever, default_retriever
from knowledge.loader import KnowledgeBase, load_default
from nlu.lexical import LexicalInterpreter, default_lexical

ROOT = Path(__file__).resolve().parent.parent
MANUALS_DIR = Path(os.environ.get("PORTPAL_MANUALS_DIR", ROOT.parent / "shared" / "manuals"))


@pytest.fixture(scope="session")
def manuals_dir() -> Path:
    # The manuals are the source of truth and CI has them beside the clone: fail, never skip.
    assert MANUALS_DIR.is_dir(), f"manuals not found at {MANUALS_DIR}; set PORTPAL_MANUALS_DIR"
    return MANUALS_DIR


@pytest.fixture(scope="session")
def manual_texts(manuals_dir: Path) -> list[str]:
    return [p.read_text(encoding="utf-8") for p in sorted(manuals_dir.glob("*.txt"))]


@pytest.fixture(scope="session")
def kb() -> KnowledgeBase:
    return load_default()


@pytest.fixture(scope="session")
def retriever() -> Retriever:
    return default_retriever()


@pytest.fixture(scope="session")
def lexical() -> LexicalInterpreter:
    return default_lexical()


@pytest.fixture(scope="session")
def dialogue(retriever: Retriever) -> Dialogue:
    return Dialogue(retriever, default_messages())


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'data' / 'portpal.sqlite3'}")
