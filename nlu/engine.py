"""Choose and open the bot's NLU engine: external Rasa, managed Rasa, or lexical only.

- ``RASA_URL`` set: that server is used (external mode).
- otherwise the bot starts its own Rasa server from ``.venv-rasa`` and the model trained
  for the current data (managed mode), and stops it on exit.
- Rasa missing (no ``.venv-rasa``, no model, server failing to start): in ``auto`` mode a
  warning is logged and the lexical engine answers; in ``rasa`` mode that is an error.

Whatever Rasa does later, the lexical engine takes over while it is down
(``ResilientInterpreter``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from nlu.config import EngineMode, NluConfig
from nlu.gazetteer import default_gazetteer
from nlu.interpreter import Interpreter
from nlu.lexical import default_lexical
from nlu.rasa import RasaInterpreter, ResilientInterpreter
from nlu.server import RasaServer, RasaServerError
from nlu.training import find_rasa_bin, model_path

__all__ = ["EngineMode", "NluConfig", "NluUnavailableError", "open_interpreter"]

log = logging.getLogger(__name__)


class NluUnavailableError(Exception):
    """Rasa was required (mode ``rasa``) but cannot be used; the message says why."""


async def _reachable(url: str) -> str | None:
    try:
        async with httpx.AsyncClient(timeout=5.0, trust_env=False) as client:
            status = await client.get(f"{url.rstrip('/')}/status")
    except httpx.HTTPError as exc:
        return f"Rasa server {url} unreachable ({exc.__class__.__name__})"
    if status.status_code != httpx.codes.OK:
        return f"Rasa server {url} answered HTTP {status.status_code} on /status"
    return None


@asynccontextmanager
async def open_interpreter(config: NluConfig) -> AsyncIterator[Interpreter]:
    """The interpreter for the bot's lifetime; a managed server lives as long as the block."""
    lexical = default_lexical()
    if config.mode == "lexical":
        yield lexical
        return

    def unavailable(reason: str) -> None:
        if config.mode == "rasa":
            raise NluUnavailableError(reason)
        log.warning("NLU: %s; answering with the lexical engine", reason)

    server: RasaServer | None = None
    if config.rasa_url:
        url = config.rasa_url
        if config.mode == "rasa" and (problem := await _reachable(url)):
            unavailable(problem)
    else:
        rasa_bin = find_rasa_bin(config.rasa_venv)
        if rasa_bin is None:
            unavailable("Rasa is not installed (no .venv-rasa; `make rasa` builds it)")
            yield lexical
            return
        model = model_path(config.model_dir)
        if not model.is_file():
            unavailable(f"no Rasa model for the current training data in {config.model_dir} (`portpal nlu train`)")
            yield lexical
            return
        log_path = config.log_dir / "rasa-server.log" if config.log_dir else None
        server = RasaServer(rasa_bin, model, log_path=log_path)
        try:
            await server.start()
        except RasaServerError as exc:
            unavailable(str(exc))
            yield lexical
            return
        url = server.url
    client = RasaInterpreter(url, default_gazetteer(), timeout=config.timeout, commands=lexical.overriding_intent)
    try:
        yield ResilientInterpreter(client, lexical)
    finally:
        await client.aclose()
        if server is not None:
            await server.stop()
