"""CPU per Bot API call of the two HTTP clients PTB can use here: httpx (PTB's default)
and aiohttp (``bot/channels/telegram_http.py``).

A minimal HTTP server in another process answers every POST with a fixed sendMessage
result, so the figure is the client's own cost: 3,000 form-encoded POSTs, 16 at a time,
over a pool of 16 keep-alive connections, on uvloop as the bot runs. Run:
``python bench/http_client.py``.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import socket
import time
from collections.abc import Awaitable, Callable

import aiohttp
import httpx
import uvloop

RESULT = b'{"ok":true,"result":{"message_id":1,"date":1,"chat":{"id":1,"type":"private"},"text":"ok"}}'
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(RESULT), RESULT)
FORM = {"chat_id": "123", "text": "您好" * 100, "reply_markup": '{"inline_keyboard": []}'}
CALLS = 3000


def serve(port: int) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length:")), 0
                )
                await reader.readexactly(length)
                writer.write(RESPONSE)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port)
        await server.serve_forever()

    asyncio.run(main())


async def measure(name: str, call: Callable[[], Awaitable[object]]) -> None:
    limit = asyncio.Semaphore(16)

    async def one() -> None:
        async with limit:
            await call()

    await asyncio.gather(*(one() for _ in range(200)))  # warm the pool
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one() for _ in range(CALLS)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(f"{name:8s} CPU {cpu / CALLS * 1000:.3f} ms per call, {CALLS / wall:7.0f} calls/s")


async def main(url: str) -> None:
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=16)) as client:

        async def with_httpx() -> object:
            return (await client.post(url, data=FORM)).content

        await measure("httpx", with_httpx)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=16)) as session:

        async def with_aiohttp() -> object:
            async with session.post(url, data=FORM) as response:
                return await response.read()

        await measure("aiohttp", with_aiohttp)


if __name__ == "__main__":
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = multiprocessing.Process(target=serve, args=(port,), daemon=True)
    server.start()
    time.sleep(0.5)
    uvloop.run(main(f"http://127.0.0.1:{port}/bot123:X/sendMessage"))
    server.terminate()
