"""The Rasa client and degraded mode, with httpx's MockTransport standing in for the server."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest

from nlu.gazetteer import default_gazetteer
from nlu.interpreter import Interpreter
from nlu.rasa import RasaError, RasaInterpreter, ResilientInterpreter, understanding_from_parse

PARSE = {
    "text": "宝鸡哪里办法人卡",
    "intent": {"name": "faq", "confidence": 0.98},
    "entities": [
        {"entity": "city", "start": 0, "end": 2, "value": "宝鸡", "extractor": "DIETClassifier"},
        {"entity": "card_type", "start": 5, "end": 8, "value": "法人卡", "extractor": "DIETClassifier"},
        {"entity": "city", "start": 3, "end": 4, "value": "里", "extractor": "DIETClassifier"},
    ],
    "intent_ranking": [{"name": "faq", "confidence": 0.98}, {"name": "inform", "confidence": 0.01}],
    "response_selector": {
        "all_retrieval_intents": ["faq"],
        "faq": {
            "response": {"intent_response_key": "faq/sx.branch.baoji", "confidence": 0.9},
            "ranking": [
                {"id": 1, "confidence": 0.9, "intent_response_key": "faq/sx.branch.baoji"},
                {"id": 2, "confidence": 0.05, "intent_response_key": "faq/sx.card.offline"},
            ],
        },
    },
}


def test_understanding_from_parse():
    u = understanding_from_parse("宝鸡哪里办法人卡", PARSE, default_gazetteer())
    assert u.engine == "rasa"
    assert u.intent == "faq/sx.branch.baoji" and u.confidence == pytest.approx(0.98)
    assert u.faq_ranking == (("sx.branch.baoji", 0.9), ("sx.card.offline", 0.05))
    # "里" is not a city: values outside the gazetteer are dropped; the city gives the region.
    assert u.entities == {"city": "宝鸡", "card_type": "法人卡", "region": "shaanxi"}
    assert u.intent_ranking[0] == ("faq", 0.98)


def test_rasa_fallback_intent_is_out_of_scope():
    body = {"intent": {"name": "nlu_fallback", "confidence": 0.3}, "entities": []}
    u = understanding_from_parse("讲个笑话", body, default_gazetteer())
    assert u.intent == "out_of_scope" and u.faq_ranking == ()


def _client(handler) -> RasaInterpreter:
    transport = httpx.MockTransport(handler)
    return RasaInterpreter("http://rasa.test", default_gazetteer(), client=httpx.AsyncClient(transport=transport))


async def test_parse_posts_the_normalised_text():
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["url"] = str(request.url)
        seen["body"] = request.read().decode()
        return httpx.Response(200, json=PARSE)

    client = _client(handler)
    u = await client.parse("宝鸡哪里办法人卡　")
    assert seen["url"] == "http://rasa.test/model/parse"
    assert '"text"' in seen["body"] and "\\u3000" not in seen["body"]
    assert u.intent == "faq/sx.branch.baoji"
    assert isinstance(client, Interpreter)


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (httpx.Response(500, text="boom"), "HTTP 500"),
        (httpx.Response(200, text="<html>"), "not JSON"),
        (httpx.Response(200, json={"text": "x"}), "without an intent"),
    ],
)
async def test_bad_answers_raise_rasa_error(response, message):
    client = _client(lambda request: response)
    with pytest.raises(RasaError, match=message):
        await client.parse("你好")


async def test_unreachable_and_slow_servers_raise_rasa_error():
    def refuse(request):
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(RasaError, match="unreachable"):
        await _client(refuse).parse("你好")

    def slow(request):
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(RasaError, match="within 300 ms"):
        await _client(slow).parse("你好")


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_resilient_falls_back_warns_once_and_recovers(lexical, caplog):
    state = {"up": True, "calls": 0}

    def handler(request):
        state["calls"] += 1
        if not state["up"]:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json=PARSE)

    clock = _Clock()
    nlu = ResilientInterpreter(_client(handler), lexical, retry_after=5.0, clock=clock)
    caplog.set_level(logging.WARNING, logger="nlu.rasa")

    assert (await nlu.parse("宝鸡哪里办法人卡")).engine == "rasa"
    state["up"] = False
    first = await nlu.parse("宝鸡哪里办法人卡")
    second = await nlu.parse("珠海海关数据分中心电话")
    assert first.engine == second.engine == "lexical" and nlu.degraded
    assert second.intent == "faq/zh.jc.cards"
    assert state["calls"] == 2  # within retry_after Rasa is not asked again
    assert sum("answering with the lexical engine" in r.message for r in caplog.records) == 1

    state["up"] = True
    clock.now = 6.0
    back = await nlu.parse("宝鸡哪里办法人卡")
    assert back.engine == "rasa" and not nlu.degraded
    assert any("answering again" in r.message for r in caplog.records)


async def test_resilient_times_out_a_hanging_server(lexical):
    async def hang(request):
        await asyncio.sleep(5)
        return httpx.Response(200, json=PARSE)

    client = RasaInterpreter(
        "http://rasa.test",
        default_gazetteer(),
        timeout=0.05,
        client=httpx.AsyncClient(transport=httpx.MockTransport(hang)),
    )
    nlu = ResilientInterpreter(client, lexical)
    loop = asyncio.get_running_loop()
    start = loop.time()
    u = await nlu.parse("宝鸡哪里办法人卡")
    assert u.engine == "lexical"
    assert loop.time() - start < 1.0
