"""A Rasa server the bot runs itself (managed mode: no ``RASA_URL``).

The server is a child process in its own session (so it and anything it spawns are stopped
together), listens on loopback only, and is watched: if it dies it is started again with a
growing delay. ``start`` returns once the model is loaded and a first parse has answered, so
the first user does not pay for TensorFlow's warm-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from pathlib import Path
from typing import IO

import httpx

__all__ = ["RasaServer", "RasaServerError", "free_port", "wait_ready"]

log = logging.getLogger(__name__)


class RasaServerError(Exception):
    """The Rasa server could not be started or did not become ready."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


async def wait_ready(url: str, timeout: float, process: asyncio.subprocess.Process | None = None) -> None:
    """Wait until ``url`` has a model loaded and answers a parse; raise on timeout or exit."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=5.0, trust_env=False) as client:
        while True:
            if process is not None and process.returncode is not None:
                raise RasaServerError(f"the Rasa server exited with status {process.returncode} while starting")
            with contextlib.suppress(httpx.HTTPError, ValueError):
                status = await client.get(f"{url}/status")
                if status.status_code == httpx.codes.OK and status.json().get("model_file"):
                    warm = await client.post(f"{url}/model/parse", json={"text": "你好"}, timeout=30.0)
                    if warm.status_code == httpx.codes.OK:
                        return
            if time.monotonic() > deadline:
                raise RasaServerError(f"the Rasa server at {url} was not ready within {timeout:.0f} s")
            await asyncio.sleep(0.5)


class RasaServer:
    """``rasa run --enable-api`` on 127.0.0.1 for one model, started, watched and stopped."""

    def __init__(
        self,
        rasa_bin: Path,
        model: Path,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        log_path: Path | None = None,
        ready_timeout: float = 180.0,
    ) -> None:
        self.rasa_bin = rasa_bin
        self.model = model
        self.host = host
        self.port = port or free_port(host)
        self.log_path = log_path
        self.ready_timeout = ready_timeout
        self.restarts = 0
        self._process: asyncio.subprocess.Process | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._stopping = False
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def command(self) -> list[str]:
        return [
            str(self.rasa_bin),
            "run",
            "--enable-api",
            "--interface",
            self.host,
            "--port",
            str(self.port),
            "--model",
            str(self.model),
        ]

    async def _spawn(self) -> asyncio.subprocess.Process:
        if self._log is None and self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("ab")
        env = {**os.environ, "SQLALCHEMY_SILENCE_UBER_WARNING": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
        sink = self._log if self._log is not None else asyncio.subprocess.DEVNULL
        return await asyncio.create_subprocess_exec(
            *self.command(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=sink,
            stderr=sink,
            env=env,
            start_new_session=True,
        )

    async def start(self) -> None:
        """Start the server and return when it answers; raise ``RasaServerError`` if it cannot."""
        if not self.model.is_file():
            raise RasaServerError(f"no trained model at {self.model}; run `portpal nlu train`")
        if not self.rasa_bin.is_file():
            raise RasaServerError(f"no rasa executable at {self.rasa_bin}; run `make rasa`")
        self._stopping = False
        self._process = await self._spawn()
        log.info("Rasa server starting on %s (pid %s)", self.url, self._process.pid)
        try:
            await wait_ready(self.url, self.ready_timeout, self._process)
        except RasaServerError:
            await self._kill()
            raise
        self._watcher = asyncio.create_task(self._watch(), name="rasa-server-watch")

    async def _watch(self) -> None:
        delay = 1.0
        while not self._stopping:
            process = self._process
            if process is None:
                return
            code = await process.wait()
            if self._stopping:
                return
            log.warning("Rasa server (pid %s) exited with status %s; restarting in %.0f s", process.pid, code, delay)
            await asyncio.sleep(delay)
            if self._stopping:
                return
            try:
                self._process = await self._spawn()
                await wait_ready(self.url, self.ready_timeout, self._process)
            except (RasaServerError, OSError) as exc:
                log.error("Rasa server restart failed: %s", exc)
                delay = min(delay * 2, 60.0)
                continue
            self.restarts += 1
            delay = 1.0
            log.warning("Rasa server restarted on %s (pid %s)", self.url, self._process.pid)

    async def _kill(self, grace: float = 10.0) -> None:
        process = self._process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()

    async def stop(self) -> None:
        """Stop watching and stop the server (SIGTERM, then SIGKILL after a grace period)."""
        self._stopping = True
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        await self._kill()
        if self._log is not None:
            self._log.close()
            self._log = None

    async def __aenter__(self) -> RasaServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
