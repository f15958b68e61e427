"""The card-agent endpoint of ``portpal chat``: the same ASGI app as the bot's, on loopback.

The terminal chat has no webhook and no metrics to scrape, but a card agent on the same
PC must reach it to pair and report. It listens on ``PORTPAL_HTTP_HOST:PORTPAL_HTTP_PORT``
or, when that port is taken (a bot already running, a second chat), on a free port: /pair
shows the address the agent should use, so any port will do.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import AsyncIterator
from typing import Any

import uvicorn

from bot.api import create_app
from bot.cardlink import CardLink
from bot.metrics import Metrics

__all__ = ["agent_endpoint", "base_url"]

log = logging.getLogger(__name__)


def base_url(host: str, port: int) -> str:
    """How a program on this PC reaches a server bound to ``host``."""
    if host in {"", "0.0.0.0", "::"}:
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for attempt in (port, 0):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart within TIME_WAIT
        try:
            sock.bind((host, attempt))
        except OSError as exc:
            sock.close()
            if exc.errno != errno.EADDRINUSE or attempt == 0:
                raise
            log.info("port %s is taken; the card-agent endpoint uses a free port", port)
            continue
        return sock
    raise AssertionError("unreachable")


@contextlib.asynccontextmanager
async def agent_endpoint(link: CardLink, host: str, port: int) -> AsyncIterator[str | None]:
    """Serve the card-agent endpoints (and /healthz) while inside; yields their base URL,
    or None when nothing could listen (the chat goes on without pairing)."""
    try:
        sock = _listen(host, port)
    except OSError as exc:
        log.warning("card-agent endpoint not started (%s:%s: %s); /pair is unavailable", host, port, exc)
        yield None
        return

    async def healthy() -> tuple[bool, dict[str, Any]]:
        return True, {"mode": "console"}

    app = create_app(metrics=Metrics(), health=healthy, cardlink=link)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False, log_config=None))
    serving = asyncio.create_task(server.serve(sockets=[sock]), name="agent-endpoint")
    watching = asyncio.create_task(link.watch(), name="agent-silence")
    try:
        while not server.started and not serving.done():
            await asyncio.sleep(0.01)
        yield base_url(host, sock.getsockname()[1]) if server.started else None
    finally:
        server.should_exit = True
        watching.cancel()
        await asyncio.gather(serving, watching, return_exceptions=True)
        sock.close()
