"""The Rasa server for the current model, as the bot's managed mode starts it, for benchmarks."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bot.config import Settings
from nlu.gazetteer import default_gazetteer
from nlu.lexical import default_lexical
from nlu.rasa import RasaInterpreter
from nlu.server import RasaServer
from nlu.training import find_rasa_bin, model_path


@asynccontextmanager
async def current_rasa(timeout: float = 10.0) -> AsyncIterator[RasaInterpreter]:
    """A client of a Rasa server running the current model; exits when there is none."""
    settings = Settings()
    rasa_bin = find_rasa_bin(settings.portpal_rasa_venv)
    model = model_path(settings.rasa_model_dir)
    if rasa_bin is None or not model.is_file():
        sys.exit("Rasa or its model is missing (make model), or pass --lexical-only")
    async with RasaServer(rasa_bin, model) as server:
        client = RasaInterpreter(
            server.url, default_gazetteer(), timeout=timeout, commands=default_lexical().overriding_intent
        )
        try:
            yield client
        finally:
            await client.aclose()
