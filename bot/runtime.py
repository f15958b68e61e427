"""``portpal run`` with a Telegram token: the bot process.

Polling by default; webhook when ``PORTPAL_PUBLIC_URL`` is set (then several replicas can
share one PostgreSQL behind a reverse proxy). Either way one uvicorn server serves the
ASGI app (webhook, card-agent endpoints, ``/healthz``, ``/metrics``), and three loops run
beside it: the outbox retrying undelivered replies, the reminder scheduler and the card
agents' silence check.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import uvicorn
from telegram.error import InvalidToken, NetworkError, TelegramError

from bot.api import WEBHOOK_PATH, create_app, webhook_secret
from bot.assistant import Assistant
from bot.cardlink import CardLink
from bot.channels.telegram import ALLOWED_UPDATES, CHANNEL, TelegramChannel, build_application
from bot.config import Settings
from bot.metrics import Metrics
from bot.reminders import ReminderScheduler
from bot.serving import base_url
from bot.store import Store
from nlu.interpreter import Interpreter

__all__ = ["StartupError", "TelegramBot"]

log = logging.getLogger(__name__)


class StartupError(Exception):
    """The bot cannot start; ``exit_code`` is what ``portpal run`` exits with."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise StartupError(
            f"cannot listen on {host}:{port} ({exc.strerror}); set PORTPAL_HTTP_PORT to a free port", 4
        ) from exc
    sock.set_inheritable(True)
    return sock


class TelegramBot:
    """One bot process: PTB application, channel, HTTP server and background loops."""

    def __init__(self, settings: Settings, interpreter: Interpreter, *, pdf: bool = False) -> None:
        token = settings.telegram_bot_token
        if token is None or not token.get_secret_value().strip():
            raise StartupError("TELEGRAM_BOT_TOKEN is not set", 2)
        self.settings = settings
        self.token = token.get_secret_value().strip()
        self.webhook = bool(settings.portpal_public_url)
        self.store = Store(settings.resolved_database_url())
        staff = settings.staff_chat_id
        self.assistant = Assistant(
            self.store, interpreter, documents_dir=settings.documents_dir, pdf=pdf, outbox_channels={CHANNEL},
            desk=settings.desk(), staff_route=(CHANNEL, str(staff)) if staff is not None else None,
            user_rate=settings.portpal_user_rate,
        )  # fmt: skip
        self.metrics = Metrics()
        self.metrics.track_outbox(lambda: self.store.outbox_size(CHANNEL))
        self.application = build_application(
            self.token,
            base_url=settings.telegram_api_base_url,
            rate_limit=settings.portpal_telegram_rate,
            webhook=self.webhook,
        )
        self.channel = TelegramChannel(self.assistant, self.application, self.metrics, staff_chat_id=staff)
        secret = settings.portpal_webhook_secret
        self.secret = secret.get_secret_value() if secret else webhook_secret(self.token)
        self.scheduler = ReminderScheduler(self.assistant, self.channel.deliver, channels=[CHANNEL])
        # Card agents pair with and report to this bot at PORTPAL_PUBLIC_URL (HTTPS behind a
        # proxy) or, without one, on this machine only.
        self.cardlink = CardLink(self.assistant, self.channel.deliver)
        self.port = settings.portpal_http_port
        self._server: uvicorn.Server | None = None

    @property
    def api_url(self) -> str:
        return self.settings.telegram_api_base_url or "https://api.telegram.org/bot"

    async def health(self) -> tuple[bool, dict[str, Any]]:
        details: dict[str, Any] = {"mode": "webhook" if self.webhook else "polling"}
        healthy = True
        try:
            await self.store.call(self.store.ping)
            details["database"] = "ok"
        except Exception as exc:
            details["database"] = f"unreachable: {type(exc).__name__}"
            healthy = False
        # The NLU engine answers a probe (Rasa, or the lexical engine while Rasa is down:
        # the bot still answers then, so it stays healthy and says it is degraded).
        interpreter = self.assistant.interpreter
        try:
            await asyncio.wait_for(interpreter.parse("你好"), timeout=5)
            details["nlu"] = interpreter.name
        except Exception as exc:
            details["nlu"] = f"failing: {type(exc).__name__}"
            healthy = False
        details["nlu_degraded"] = bool(getattr(interpreter, "degraded", False))
        return healthy, details

    async def _start_telegram(self) -> None:
        try:
            await self.application.initialize()  # getMe: checks the token and the API
        except InvalidToken as exc:
            await self.application.bot.shutdown()  # close the HTTP connections it opened
            # PTB's message repeats the token: name the setting, never its value.
            raise StartupError(
                f"Telegram rejected TELEGRAM_BOT_TOKEN at {self.api_url} (401/404); get a valid token from @BotFather",
                2,
            ) from exc
        except NetworkError as exc:  # includes TimedOut
            await self.application.bot.shutdown()
            raise StartupError(f"cannot reach the Telegram Bot API at {self.api_url}: {exc}", 3) from exc
        await self.channel.register_commands()
        try:
            if self.webhook:
                url = str(self.settings.portpal_public_url).rstrip("/") + WEBHOOK_PATH
                await self.application.bot.set_webhook(url, secret_token=self.secret, allowed_updates=ALLOWED_UPDATES)
                log.info("webhook mode: Telegram posts updates to %s", url)
            else:
                updater = self.application.updater
                assert updater is not None
                await updater.start_polling(
                    allowed_updates=ALLOWED_UPDATES, timeout=30, error_callback=self._polling_error
                )
                log.info("polling mode: fetching updates from %s", self.api_url)
        except TelegramError as exc:
            await self.application.shutdown()
            raise StartupError(f"could not {'set the webhook' if self.webhook else 'start polling'}: {exc}", 3) from exc
        await self.application.start()

    def _polling_error(self, exc: TelegramError) -> None:
        """A failed getUpdates (PTB retries with back-off): one line, not a traceback each time."""
        self.metrics.errors.labels("polling").inc()
        log.warning("getUpdates failed, retrying: %s", exc)

    async def run(
        self, stop: asyncio.Event | None = None, started: Callable[[int], Awaitable[None]] | None = None
    ) -> None:
        """Run until ``stop`` is set (or SIGINT/SIGTERM); raises ``StartupError`` early."""
        stop = stop or asyncio.Event()
        sock = _bind(self.settings.portpal_http_host, self.port)
        self.port = sock.getsockname()[1]
        public = self.settings.portpal_public_url
        self.assistant.agent_url = (
            public.rstrip("/") if public else base_url(self.settings.portpal_http_host, self.port)
        )
        try:
            await self._start_telegram()
        except BaseException:
            sock.close()
            self.store.close()
            raise
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        app = create_app(
            metrics=self.metrics, health=self.health, telegram=self.channel, secret=self.secret, cardlink=self.cardlink
        )
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False, log_config=None)
        self._server = uvicorn.Server(config)
        tasks = [
            asyncio.create_task(self._server.serve(sockets=[sock]), name="http"),
            asyncio.create_task(self.channel.outbox.run(), name="outbox"),
            asyncio.create_task(self._reminders(), name="reminders"),
            asyncio.create_task(self.cardlink.watch(), name="card-agents"),
            asyncio.create_task(self._purge(), name="retention"),
        ]
        try:
            while not self._server.started:
                if tasks[0].done():
                    raise StartupError(f"the HTTP server did not start on port {self.port}", 4)
                await asyncio.sleep(0.01)
            # What start-up loaded (knowledge base, jieba's dictionary, the libraries) lives as
            # long as the process: out of the collector's sight, or each full collection walks
            # it again, a 65 ms pause every few seconds under load (bench/telegram_throughput.py).
            gc.collect()
            gc.freeze()
            log.info("PortPal is running; HTTP on %s:%s", self.settings.portpal_http_host, self.port)
            if started is not None:
                await started(self.port)
            await stop.wait()
        finally:
            await self._shutdown(tasks)
            sock.close()

    async def _purge(self) -> None:
        """The retention purge, at start-up and then daily (PORTPAL_RETENTION_DAYS)."""
        days = self.settings.portpal_retention_days
        if days <= 0:
            return
        while True:
            try:
                await self.store.call(self.assistant.privacy.purge, timedelta(days=days))
            except Exception:
                log.exception("retention purge failed; trying again in an hour")
                await asyncio.sleep(3600)
                continue
            await asyncio.sleep(86_400)

    async def _reminders(self) -> None:
        await self.scheduler.run_due()  # those that fell due while the bot was down, first
        await self.scheduler.run()

    async def _shutdown(self, tasks: list[asyncio.Task[None]]) -> None:
        """Stop taking updates, finish the ones under way, then close everything."""
        if self._server is not None:
            self._server.should_exit = True
        if self.application.updater is not None and self.application.updater.running:
            await self.application.updater.stop()
        if self.application.running:
            await self.application.stop()  # processes the updates already fetched
        for task in tasks[1:]:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.application.shutdown()
        self.store.close()
