"""The Rasa NLU engine as the bot sees it: an HTTP client of ``POST /model/parse``.

Rasa runs as its own server (its own Python and dependencies, see DESIGN.md); this module
only talks to it. ``RasaInterpreter`` turns a parse result into an ``Understanding``;
``ResilientInterpreter`` keeps the bot answering with the lexical engine while the server is
down, slow or failing, and goes back to Rasa when it recovers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx

from knowledge.text import is_english
from nlu.gazetteer import Gazetteer
from nlu.interpreter import FAQ_INTENT, OUT_OF_SCOPE, Interpreter, Understanding
from nlu.normalize import Normalizer, default_normalizer

__all__ = ["DEFAULT_TIMEOUT", "RasaError", "RasaInterpreter", "ResilientInterpreter", "understanding_from_parse"]

log = logging.getLogger(__name__)

# A reply slower than this is treated as no reply: the user should not wait on Rasa.
DEFAULT_TIMEOUT = 0.3
_RASA_FALLBACK = "nlu_fallback"


class RasaError(Exception):
    """The Rasa server did not give a usable answer (down, slow, error status, bad body)."""


def _ranking(items: Any, key: str) -> tuple[tuple[str, float], ...]:
    out: list[tuple[str, float]] = []
    for item in items or ():
        name = item.get(key)
        if isinstance(name, str):
            out.append((name, float(item.get("confidence") or 0.0)))
    return tuple(out)


def understanding_from_parse(
    text: str, body: dict[str, Any], gazetteer: Gazetteer, normalized: str = "", spelled: str = ""
) -> Understanding:
    """Read Rasa's parse result: intent, retrieval ranking and entities.

    Rasa's ``nlu_fallback`` (FallbackClassifier) counts as out of scope. A city or district
    entity also gives the region it belongs to, unless Rasa found a region itself.
    """
    intent = body.get("intent") or {}
    name = str(intent.get("name") or _RASA_FALLBACK)
    confidence = float(intent.get("confidence") or 0.0)
    if name == _RASA_FALLBACK:
        name = OUT_OF_SCOPE
    selector = (body.get("response_selector") or {}).get(FAQ_INTENT) or {}
    faq_ranking = tuple(
        (key.split("/", 1)[1], conf)
        for key, conf in _ranking(selector.get("ranking"), "intent_response_key")
        if key.startswith(FAQ_INTENT + "/")
    )
    if name == FAQ_INTENT and faq_ranking:
        name = f"{FAQ_INTENT}/{faq_ranking[0][0]}"
    entities: dict[str, str] = {}
    for ent in body.get("entities") or ():
        entity, value = ent.get("entity"), ent.get("value")
        # A value outside the gazetteer is a misreading (a half word, a wrong synonym).
        if isinstance(entity, str) and isinstance(value, str) and value in gazetteer.entities.get(entity, {}):
            entities.setdefault(entity, value)
    if "region" not in entities:
        for entity in ("city", "district"):
            region = gazetteer.region_of(entity, entities.get(entity, ""))
            if region:
                entities["region"] = region
                break
    return Understanding(
        text=text,
        intent=name,
        confidence=confidence,
        engine="rasa",
        lang="en" if is_english(text) and is_english(spelled or text) else "zh",
        entities=entities,
        faq_ranking=faq_ranking,
        intent_ranking=_ranking(body.get("intent_ranking"), "name"),
        normalized=normalized,
        spelled=spelled,
    )


# Chat turns Rasa must be this sure of to be answered as one (else read as a question).
CHAT_MIN_CONFIDENCE = 0.8
_CHAT = frozenset({"greet", "thanks", "bye", "affirm", "deny"})
# Rasa's readings that a walkthrough command read by ``commands`` replaces.
_OVERRIDABLE = frozenset({FAQ_INTENT, OUT_OF_SCOPE, "greet", "thanks", "bye", "affirm", "deny", "inform", "help"})


class RasaInterpreter:
    """Client of a Rasa server's ``/model/parse``; raises ``RasaError`` instead of waiting."""

    name = "rasa"

    def __init__(
        self,
        url: str,
        gazetteer: Gazetteer,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        client: httpx.AsyncClient | None = None,
        normalizer: Normalizer | None = None,
        commands: Callable[[str], tuple[str, float] | None] | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        # Walkthrough commands read by another engine (the lexical one's learned classifier),
        # which win over Rasa reading the same message as a question, a greeting or a yes:
        # "麻烦带我走一遍珠海跨境电商企业接入" is a start whatever DIET made of it.
        self.commands = commands
        self.gazetteer = gazetteer
        self.normalizer = normalizer or default_normalizer()
        self.timeout = timeout
        self._client = client or httpx.AsyncClient(timeout=httpx.Timeout(timeout), trust_env=False)

    async def parse(self, text: str) -> Understanding:
        # Rasa reads the spelling corrected (its training examples are spelt right) but
        # keeps the padding: "你好" is an intent, not filler, to it.
        spelled = self.normalizer.spell(text)
        try:
            # httpx's timeout bounds each phase; this bounds the whole exchange.
            async with asyncio.timeout(self.timeout):
                response = await self._client.post(
                    f"{self.url}/model/parse", json={"text": spelled}, timeout=self.timeout
                )
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise RasaError(f"no reply from {self.url} within {self.timeout * 1000:.0f} ms") from exc
        except httpx.HTTPError as exc:
            raise RasaError(f"{self.url} unreachable: {exc.__class__.__name__}: {exc}") from exc
        if response.status_code != httpx.codes.OK:
            raise RasaError(f"{self.url}/model/parse answered HTTP {response.status_code}: {response.text[:200]}")
        try:
            body = response.json()
        except ValueError as exc:
            raise RasaError(f"{self.url}/model/parse answered something that is not JSON") from exc
        if not isinstance(body, dict) or "intent" not in body:
            raise RasaError(f"{self.url}/model/parse answered without an intent (is a model loaded?)")
        understanding = understanding_from_parse(
            text, body, self.gazetteer, self.normalizer.strip_padding(spelled), spelled
        )
        if self.commands is not None and understanding.intent.split("/")[0] in _OVERRIDABLE:
            command = self.commands(spelled)
            if command is not None:
                understanding = dataclasses.replace(understanding, intent=command[0], confidence=command[1])
        if understanding.intent in _CHAT and understanding.confidence < CHAT_MIN_CONFIDENCE:
            # An unsure "yes" / "hello" for a sentence ("推荐几部好看的电影" read as affirm at
            # 0.56) is no chat turn: the message is read as a question and judged as one.
            understanding = dataclasses.replace(understanding, intent=FAQ_INTENT)
        return understanding

    async def aclose(self) -> None:
        await self._client.aclose()


class ResilientInterpreter:
    """Rasa first; the fallback engine while Rasa fails; Rasa again once it answers.

    After a failure Rasa is not asked again for ``retry_after`` seconds, so an outage costs
    one timeout, not one per message. A warning is logged when Rasa is lost and when it is
    back, not for every message in between.
    """

    def __init__(
        self,
        primary: Interpreter,
        fallback: Interpreter,
        *,
        retry_after: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.primary = primary
        self.fallback = fallback
        self.retry_after = retry_after
        self._clock = clock
        self._down = False
        self._next_try = 0.0

    @property
    def name(self) -> str:
        return self.fallback.name if self._down else self.primary.name

    @property
    def degraded(self) -> bool:
        return self._down

    async def parse(self, text: str) -> Understanding:
        if not self._down or self._clock() >= self._next_try:
            try:
                understanding = await self.primary.parse(text)
            except RasaError as exc:
                if not self._down:
                    log.warning("NLU: %s; answering with the %s engine until it recovers", exc, self.fallback.name)
                self._down = True
                self._next_try = self._clock() + self.retry_after
            else:
                if self._down:
                    log.warning("NLU: %s is answering again", self.primary.name)
                    self._down = False
                return understanding
        return await self.fallback.parse(text)
