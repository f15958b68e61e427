"""The bot's HTTP side, one ASGI app: Telegram webhook, card-agent endpoints, health and metrics.

Served by uvicorn in both modes (polling too, for ``/healthz`` and ``/metrics``). The
webhook accepts an update only with Telegram's ``X-Telegram-Bot-Api-Secret-Token``
header, answers after the update is applied and its replies sent (Telegram then sends a
chat's next update: per-chat order holds across replicas), and asks for redelivery
(503) when the update could not be applied.

The card-agent endpoints (``cardagent.protocol``: pair, events, unpair) answer JSON with
an ``error`` code the agent acts on and a ``detail`` a person can read. They refuse plain
HTTP except from loopback: behind a TLS proxy, uvicorn takes the scheme from the proxy's
``X-Forwarded-Proto``.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from telegram import Update

from bot.agents import PairingRefusedError, ReportRefusedError
from bot.cardlink import BadRequestError, CardLink, RateLimitedError
from bot.channels.telegram import TelegramChannel
from bot.metrics import CONTENT_TYPE, Metrics
from cardagent.protocol import (
    HEADER_AGENT,
    HEADER_SEQ,
    HEADER_SIGNATURE,
    HEADER_TIME,
    PATH_EVENTS,
    PATH_PAIR,
    PATH_UNPAIR,
)

__all__ = [
    "MAX_AGENT_BODY",
    "MAX_WEBHOOK_BODY",
    "SECRET_HEADER",
    "WEBHOOK_PATH",
    "BodyTooLargeError",
    "Health",
    "create_app",
    "read_body",
    "webhook_secret",
]

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"

# Returns (healthy, details) for /healthz.
Health = Callable[[], Awaitable[tuple[bool, dict[str, Any]]]]

MAX_AGENT_BODY = 64 * 1024
# Telegram's largest update (a 4,096-character text with entities, a reply and a keyboard)
# is a few tens of kilobytes.
MAX_WEBHOOK_BODY = 1024 * 1024
# How each refusal is answered: the agent acts on the code (409: move its sequence on;
# 410: stop and ask for pairing again; 401 stale: the PC's clock is wrong).
_PAIR_STATUS = {"malformed": 400, "unknown": 403, "expired": 403, "used": 403, "locked": 429}
_REPORT_STATUS = {"unknown": 401, "signature": 401, "stale": 401, "revoked": 410, "replay": 409}


class BodyTooLargeError(Exception):
    """The body is longer than the endpoint takes (declared or as it arrives)."""


class BadLengthError(Exception):
    """The Content-Length header is not a number."""


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, read chunk by chunk and given up on as soon as it passes ``limit``.

    Starlette's ``request.body()`` reads to the end before anyone can look at the size, and a
    chunked body declares none: a client could make the process hold any number of bytes.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise BadLengthError(declared)
        if int(declared) > limit:
            raise BodyTooLargeError(declared)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLargeError(size)
        chunks.append(chunk)
    return b"".join(chunks)


# A body refused half-read must not be read on: the server closes the connection after the
# answer instead of draining what the client still sends.
_CLOSE = {"Connection": "close"}


def _refuse(status: int, error: str, detail: str, **extra: Any) -> JSONResponse:
    headers = {"Retry-After": str(extra["retry_after"])} if "retry_after" in extra else {}
    if status == 413:
        headers |= _CLOSE
    return JSONResponse({"ok": False, "error": error, "detail": detail, **extra}, status_code=status, headers=headers)


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


def _plain_http_from_afar(request: Request) -> bool:
    if request.url.scheme == "https":
        return False
    try:
        return not ipaddress.ip_address(_client(request)).is_loopback
    except ValueError:
        return True


def agent_routes(cardlink: CardLink) -> list[Route]:
    """``POST /agent/pair``, ``/agent/events`` and ``/agent/unpair``."""

    async def body_of(request: Request) -> bytes | JSONResponse:
        if _plain_http_from_afar(request):
            log.warning("card agent request over plain HTTP from %s refused", _client(request))
            return _refuse(403, "https_required", "use https:// (plain http is accepted only from this machine)")
        try:
            return await read_body(request, MAX_AGENT_BODY)
        except BodyTooLargeError:
            log.warning("card agent request body over %d bytes from %s refused", MAX_AGENT_BODY, _client(request))
            return _refuse(413, "too_large", f"a request body is at most {MAX_AGENT_BODY} bytes")
        except BadLengthError:
            return _refuse(400, "bad_request", "Content-Length must be a number of bytes")

    async def pair(request: Request) -> Response:
        body = await body_of(request)
        if isinstance(body, Response):
            return body
        try:
            paired = await cardlink.pair(body, _client(request))
        except RateLimitedError as exc:
            return _refuse(429, "rate_limited", str(exc), retry_after=exc.retry_after)
        except BadRequestError as exc:
            return _refuse(400, "bad_request", str(exc))
        except PairingRefusedError as exc:
            log.warning("pairing refused (%s) for %s: %s", exc.reason, _client(request), exc)
            return _refuse(_PAIR_STATUS[exc.reason], exc.reason, str(exc))
        return JSONResponse({"ok": True, **paired})

    async def signed(request: Request, path: str) -> Response:
        body = await body_of(request)
        if isinstance(body, Response):
            return body
        h = request.headers
        try:
            agent, signature = h[HEADER_AGENT], h[HEADER_SIGNATURE]
            timestamp, seq = int(h[HEADER_TIME]), int(h[HEADER_SEQ])
        except (KeyError, ValueError):
            names = f"{HEADER_AGENT}, {HEADER_TIME}, {HEADER_SEQ}, {HEADER_SIGNATURE}"
            return _refuse(401, "unsigned", f"a signed request needs the headers {names} (time and seq as integers)")
        try:
            if path == PATH_EVENTS:
                await cardlink.report(agent, path, timestamp, seq, body, signature)
            else:
                await cardlink.unpair(agent, path, timestamp, seq, body, signature)
        except ReportRefusedError as exc:
            log.warning("card agent request refused (%s): agent %s seq %s: %s", exc.reason, agent[:40], seq, exc)
            extra = {"last_seq": exc.last_seq} if exc.reason == "replay" else {}
            return _refuse(_REPORT_STATUS[exc.reason], exc.reason, str(exc), **extra)
        except BadRequestError as exc:
            log.warning("card agent report malformed: agent %s seq %s: %s", agent[:40], seq, exc)
            return _refuse(400, "bad_request", str(exc))
        return JSONResponse({"ok": True, "seq": seq})

    async def events(request: Request) -> Response:
        return await signed(request, PATH_EVENTS)

    async def unpair(request: Request) -> Response:
        return await signed(request, PATH_UNPAIR)

    return [
        Route(PATH_PAIR, pair, methods=["POST"]),
        Route(PATH_EVENTS, events, methods=["POST"]),
        Route(PATH_UNPAIR, unpair, methods=["POST"]),
    ]


def webhook_secret(token: str) -> str:
    """The webhook secret when none is configured: derived from the bot token, so every
    replica agrees without sharing another secret (Telegram allows ``[A-Za-z0-9_-]``)."""
    return hmac.new(token.encode(), b"portpal-webhook", hashlib.sha256).hexdigest()


def create_app(
    *,
    metrics: Metrics,
    health: Health,
    telegram: TelegramChannel | None = None,
    secret: str | None = None,
    cardlink: CardLink | None = None,
) -> Starlette:
    """The routes: ``/healthz``, ``/metrics``, with a channel and secret the webhook, with
    a card link the card-agent endpoints."""

    async def healthz(request: Request) -> JSONResponse:
        ok, details = await health()
        return JSONResponse({"ok": ok, **details}, status_code=200 if ok else 503)

    async def metrics_page(request: Request) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    async def webhook(request: Request) -> Response:
        assert telegram is not None and secret is not None
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            metrics.webhook_rejected.inc()
            client = request.client.host if request.client else "?"
            log.warning("webhook request with a wrong secret token refused", extra={"client": client})
            return JSONResponse({"ok": False, "error": "wrong secret token"}, status_code=403)
        try:
            raw = await read_body(request, MAX_WEBHOOK_BODY)
        except BodyTooLargeError:
            log.warning("webhook body over %d bytes refused", MAX_WEBHOOK_BODY)
            return JSONResponse({"ok": False, "error": "body too large"}, status_code=413, headers=_CLOSE)
        except BadLengthError:
            return JSONResponse({"ok": False, "error": "bad Content-Length"}, status_code=400)
        try:
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise TypeError(f"a JSON object was expected, not {type(data).__name__}")
            update = Update.de_json(data, telegram.bot)
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("webhook body is not a Telegram update: %s", exc)
            return JSONResponse({"ok": False, "error": "not a Telegram update"}, status_code=400)
        if not await telegram.process(update):
            return JSONResponse({"ok": False, "error": "try again"}, status_code=503)
        return Response(status_code=200)

    routes = [Route("/healthz", healthz), Route("/metrics", metrics_page)]
    if telegram is not None and secret is not None:
        routes.append(Route(WEBHOOK_PATH, webhook, methods=["POST"]))
    if cardlink is not None:
        routes.extend(agent_routes(cardlink))
    return Starlette(routes=routes)
