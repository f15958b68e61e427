"""python-telegram-bot's HTTP transport on aiohttp.

PTB ships one on httpx. Here httpx costs about 1.3 ms of CPU per Bot API call and aiohttp
about 0.12 ms (``bench/http_client.py``); at a few hundred calls a second that is the bot's
largest single cost. PTB lets an application bring its own ``BaseRequest``: this is one,
with the same timeouts and the same errors (``TimedOut``, ``NetworkError``) as PTB's own.
"""

from __future__ import annotations

import aiohttp
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

__all__ = ["AiohttpRequest", "maybe_delivered"]


class AiohttpRequest(BaseRequest):
    """A pool of keep-alive connections to the Bot API.

    Timeouts, as PTB's: ``connect`` to open a connection, ``pool`` to wait for a free one,
    ``read`` between bytes of the answer, ``write`` to send the request (``media_write`` when
    it uploads a file). aiohttp has no write timeout of its own, so the write budget bounds
    the whole request together with the others.
    """

    def __init__(
        self,
        *,
        pool_size: int = 16,
        connect_timeout: float | None = 5.0,
        read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
        media_write_timeout: float | None = 20.0,
    ) -> None:
        self._pool_size = pool_size
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._pool_timeout = pool_timeout
        self._media_write_timeout = media_write_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            # A session belongs to the event loop it was made in: make it here, not in __init__.
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=self._pool_size))

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if self._session is None or self._session.closed:
            raise RuntimeError("AiohttpRequest is not initialized")
        files = request_data.multipart_data if request_data else None
        params = request_data.json_parameters if request_data else None
        body: aiohttp.FormData | dict[str, str] | None = params
        if files:
            # Raw UTF-8 file names, as browsers and httpx send them: percent-quoted, Telegram
            # would show "%E9%99%95..." as the document's name.
            body = aiohttp.FormData(quote_fields=False)
            for name, value in (params or {}).items():
                body.add_field(name, value)
            for name, field in files.items():
                body.add_field(name, field[1], filename=field[0], content_type=field[2] if len(field) > 2 else None)

        read = self._read_timeout if isinstance(read_timeout, DefaultValue) else read_timeout
        connect = self._connect_timeout if isinstance(connect_timeout, DefaultValue) else connect_timeout
        pool = self._pool_timeout if isinstance(pool_timeout, DefaultValue) else pool_timeout
        write = write_timeout
        if isinstance(write, DefaultValue):
            write = self._media_write_timeout if files else self._write_timeout
        # aiohttp's ``connect`` covers waiting for a pooled connection and opening one.
        acquire = None if connect is None or pool is None else connect + pool
        parts = (acquire, write, read)
        total = None if any(p is None for p in parts) else sum(p for p in parts if p is not None)
        timeout = aiohttp.ClientTimeout(total=total, connect=acquire, sock_connect=connect, sock_read=read)
        try:
            async with self._session.request(
                method, url, data=body, headers={"User-Agent": self.USER_AGENT}, timeout=timeout
            ) as response:
                return response.status, await response.read()
        except aiohttp.ConnectionTimeoutError as exc:
            raise TimedOut("no connection to the Bot API in time: the request was not sent") from exc
        except TimeoutError as exc:  # aiohttp's read timeouts are TimeoutErrors too
            raise TimedOut("no answer from the Bot API in time") from exc
        except aiohttp.ClientError as exc:
            raise NetworkError(f"aiohttp.{type(exc).__name__}: {exc}") from exc


def maybe_delivered(exc: TimedOut) -> bool:
    """Whether a timed-out call may have reached Telegram (it timed out after the request
    was sent): then a retry may duplicate it, but not retrying may lose it."""
    return not isinstance(exc.__cause__, aiohttp.ConnectionTimeoutError)
