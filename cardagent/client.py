"""The agent's requests to the bot: pairing, then signed reports.

``urllib`` from the standard library, on purpose: the agent runs all day on the user's PC
and must stay small (``bench/card_agent.py`` measures it); a request every 30 seconds needs
no connection pool. Plain ``http://`` is refused unless the bot is on this machine.
"""

from __future__ import annotations

import ipaddress
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cardagent.protocol import (
    HEADER_AGENT,
    HEADER_SEQ,
    HEADER_SIGNATURE,
    HEADER_TIME,
    PATH_PAIR,
    canonical,
    public_key_text,
    sign,
)

__all__ = ["RefusedError", "UnreachableError", "check_server", "pair", "post_signed"]

TIMEOUT = 15.0


class UnreachableError(Exception):
    """The bot did not answer (network, time-out, 5xx): worth trying again later."""


@dataclass
class RefusedError(Exception):
    """The bot answered no: ``error`` is the protocol's code, ``detail`` a readable reason."""

    status: int
    error: str
    detail: str
    last_seq: int = 0
    retry_after: int = 0

    def __str__(self) -> str:
        return f"{self.status} {self.error}: {self.detail}"


def check_server(url: str) -> str:
    """The bot's base URL, without a trailing slash; ValueError says what is wrong with it."""
    parts = urlsplit(url.strip())
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError(f"{url!r} is not a bot address; it looks like https://bot.example.com")
    if parts.scheme == "http":
        host = parts.hostname
        try:
            local = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            local = False
        if not local:
            raise ValueError(f"plain http is only for a bot on this PC; use https://{parts.netloc}{parts.path}")
    return url.strip().rstrip("/")


def _post(url: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return dict(json.loads(response.read() or b"{}"))
    except urllib.error.HTTPError as exc:
        with exc:
            raw = exc.read()
        if exc.code >= 500:
            raise UnreachableError(f"the bot answered {exc.code}") from exc
        try:
            data = json.loads(raw)
        except ValueError:
            data = {}
        retry = exc.headers.get("Retry-After", "0") if exc.headers else "0"
        raise RefusedError(
            exc.code,
            str(data.get("error") or f"http_{exc.code}"),
            str(data.get("detail") or raw[:200].decode("utf-8", "replace")),
            int(data.get("last_seq") or 0),
            int(retry) if retry.isdigit() else 0,
        ) from exc
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UnreachableError(f"cannot reach {url}: {reason}") from exc
    except ValueError as exc:  # an answer that is not JSON: not our bot
        raise UnreachableError(f"{url} did not answer like a PortPal bot: {exc}") from exc


def pair(server: str, code: str, key: Ed25519PrivateKey, name: str) -> dict[str, Any]:
    """Exchange a pairing code for a registration (``agent_id``, ``name``)."""
    body = json.dumps({"code": code, "public_key": public_key_text(key), "name": name}).encode()
    return _post(check_server(server) + PATH_PAIR, body, {})


def post_signed(
    server: str, path: str, agent_id: str, key: Ed25519PrivateKey, seq: int, payload: dict[str, Any]
) -> dict[str, Any]:
    """A request signed over method, path, agent, time, sequence number and body."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    now = int(time.time())
    headers = {
        HEADER_AGENT: agent_id,
        HEADER_TIME: str(now),
        HEADER_SEQ: str(seq),
        HEADER_SIGNATURE: sign(key, canonical("POST", path, agent_id, now, seq, body)),
    }
    return _post(check_server(server) + path, body, headers)
