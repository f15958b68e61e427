"""The bot's HTTP side, one ASGI app: Telegram webhook, health and metrics.

Served by uvicorn in both modes (polling too, for ``/healthz`` and ``/metrics``). The
webhook accepts an update only with Telegram's ``X-Telegram-Bot-Api-Secret-Token``
header, answers after the update is applied and its replies sent (Telegram then sends a
chat's next update: per-chat order holds across replicas), and asks for redelivery
(503) when the update could not be applied.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from telegram import Update

from bot.channels.telegram import TelegramChannel
from bot.metrics import CONTENT_TYPE, Metrics

__all__ = ["SECRET_HEADER", "WEBHOOK_PATH", "Health", "create_app", "webhook_secret"]

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"

# Returns (healthy, details) for /healthz.
Health = Callable[[], Awaitable[tuple[bool, dict[str, Any]]]]


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
) -> Starlette:
    """The routes: ``/healthz``, ``/metrics`` and, with a channel and secret, the webhook."""

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
            data = json.loads(await request.body())
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
    return Starlette(routes=routes)
