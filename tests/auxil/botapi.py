"""A Telegram Bot API test double: an HTTP server on 127.0.0.1 that speaks the Bot API.

It implements the methods PortPal uses, keeps chats, messages, forum topics and the update
queue in memory, records every call, and can inject faults (429 with ``retry_after``, 500,
a slow answer). Like Telegram, it refuses a group more than 20 messages a minute (429). The real python-telegram-bot ``Application`` runs against it end to end:
point ``base_url`` at ``double.base_url``. No test reaches the internet.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socket
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

__all__ = ["BotApiDouble", "Call", "Fault"]

# Methods that post a message to a chat (what Telegram's per-group limit counts).
_SENDS = frozenset({"sendMessage", "sendDocument", "sendPhoto"})

BOT_USER = {"id": 7000001, "is_bot": True, "first_name": "PortPal", "username": "portpal_test_bot"}


@dataclass
class Call:
    """One Bot API request as the double received it."""

    method: str
    params: dict[str, Any]
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # field -> (file name, content)
    at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class Fault:
    """What to answer instead of the method's result: ``429`` (with ``retry_after``),
    ``500``, or ``slow`` (answer normally after ``delay`` seconds)."""

    kind: str
    retry_after: int = 1
    delay: float = 0.0


class BotApiDouble:
    """The server; ``async with BotApiDouble() as api`` starts and stops it."""

    def __init__(self, token: str = "123456:TEST-TOKEN", group_limit: tuple[int, float] = (20, 60.0)) -> None:
        self.token = token
        self.calls: list[Call] = []
        # Telegram's flood limit for groups: at most ``group_limit[0]`` messages in any
        # ``group_limit[1]`` seconds (a sliding window, the strict reading); more get a 429.
        self.group_limit = group_limit
        self.floods: list[Call] = []
        self._group_sends: dict[int, deque[float]] = defaultdict(deque)
        self.faults: dict[str, deque[Fault]] = defaultdict(deque)
        self.webhook: dict[str, Any] | None = None
        self.commands: list[dict[str, Any]] = []
        self.topics: dict[int, dict[int, str]] = defaultdict(dict)  # chat -> thread id -> name
        self.documents: dict[str, tuple[str, bytes]] = {}  # file_id -> (name, content)
        # What reached each chat (calls answered with an error are in ``calls`` only).
        self.delivered: dict[int, list[dict[str, Any]]] = defaultdict(list)
        self.markups_removed: list[tuple[int, int]] = []  # (chat, message id)
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1000)
        self._thread_ids = itertools.count(500)
        self._new_update = asyncio.Event()
        # Per chat: (message count awaited, future) of the ``wait_delivered`` callers, so a
        # delivery wakes only those waiting on its chat (a benchmark has hundreds waiting).
        self._waiters: dict[int, list[tuple[int, asyncio.Future[None]]]] = defaultdict(list)
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.port = 0

    # ------------------------------------------------------------------ life
    @property
    def base_url(self) -> str:
        """What ``TELEGRAM_API_BASE_URL`` / PTB's ``base_url`` should be."""
        return f"http://127.0.0.1:{self.port}/bot"

    async def __aenter__(self) -> BotApiDouble:
        # IPPROTO_TCP so asyncio sets TCP_NODELAY on accepted connections (no 40 ms delayed ACKs).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        app = Starlette(routes=[Route("/bot{token}/{method}", self._handle, methods=["GET", "POST"])])
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False, log_config=None)
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None and self._task is not None
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    # ------------------------------------------------------------------ driving it
    def fail(self, method: str, *faults: Fault) -> None:
        """The next calls of ``method`` get these faults, in order, then normal answers."""
        self.faults[method].extend(faults)

    def _push(self, payload: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": next(self._update_ids), **payload}
        self._updates.append(update)
        self._new_update.set()
        return update

    def user_message(
        self, chat_id: int, text: str, *, user_id: int | None = None, thread_id: int | None = None,
        chat_type: str = "private", first_name: str = "测试用户",
    ) -> dict[str, Any]:  # fmt: skip
        """Queue a message from a user (for getUpdates) and return the update."""
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": chat_type},
            "from": {"id": user_id or chat_id, "is_bot": False, "first_name": first_name},
            "text": text,
        }
        if text.startswith("/"):
            command = text.split()[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            message["is_topic_message"] = True
        return self._push({"message": message})

    def _user(self, chat_id: int, user_id: int | None) -> dict[str, Any]:
        return {"id": user_id or chat_id, "is_bot": False, "first_name": "测试用户"}

    def user_document(
        self, chat_id: int, name: str, *, mime: str = "application/pdf", caption: str = ""
    ) -> dict[str, Any]:
        """Queue a document a user sent."""
        file_id = f"user-doc-{next(self._message_ids)}"
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private"},
            "from": self._user(chat_id, None),
            "document": {
                "file_id": file_id,
                "file_unique_id": file_id,
                "file_name": name,
                "mime_type": mime,
                "file_size": 1234,
            },
        }
        if caption:
            message["caption"] = caption
        return self._push({"message": message})

    def user_photo(self, chat_id: int, *, caption: str = "") -> dict[str, Any]:
        """Queue a photo a user sent (two sizes, as Telegram sends them)."""
        base = next(self._message_ids)
        sizes = [
            {"file_id": f"p{base}s", "file_unique_id": f"p{base}s", "width": 90, "height": 60, "file_size": 900},
            {"file_id": f"p{base}l", "file_unique_id": f"p{base}l", "width": 1280, "height": 960, "file_size": 99000},
        ]
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private"},
            "from": self._user(chat_id, None),
            "photo": sizes,
        }
        if caption:
            message["caption"] = caption
        return self._push({"message": message})

    def take_updates(self) -> list[dict[str, Any]]:
        """Remove and return the queued updates (to post them to a webhook instead)."""
        updates, self._updates = self._updates, []
        return updates

    def button_press(self, chat_id: int, data: str, *, message_id: int, user_id: int | None = None) -> dict[str, Any]:
        """Queue a callback query for an inline button of message ``message_id``."""
        query = {
            "id": str(next(self._update_ids) * 7919),
            "from": {"id": user_id or chat_id, "is_bot": False, "first_name": "测试用户"},
            "chat_instance": str(chat_id),
            "data": data,
            "message": {
                "message_id": message_id,
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private"},
                "from": BOT_USER,
                "text": "…",
            },
        }
        return self._push({"callback_query": query})

    def calls_of(self, method: str, chat_id: int | None = None) -> list[Call]:
        return [
            c
            for c in self.calls
            if c.method == method and (chat_id is None or str(c.params.get("chat_id")) == str(chat_id))
        ]

    def topic_texts(self, chat_id: int, thread_id: int) -> list[str]:
        """Texts (and captions) delivered to one forum topic of a group, in order."""
        return [
            m.get("text", m.get("caption", ""))
            for m in self.delivered[chat_id]
            if m.get("message_thread_id") == thread_id
        ]

    def texts(self, chat_id: int) -> list[str]:
        """The texts that reached a chat, in order (failed calls excluded)."""
        return [m["text"] for m in self.delivered[chat_id] if "text" in m]

    def last_keyboard(self, chat_id: int) -> tuple[int, list[tuple[str, str]]]:
        """The last delivered message with an inline keyboard: its id and (label, data) pairs."""
        for message in reversed(self.delivered[chat_id]):
            markup = message.get("reply_markup")
            if markup:
                keys = [(b["text"], b["callback_data"]) for row in markup["inline_keyboard"] for b in row]
                return message["message_id"], keys
        raise AssertionError(f"no keyboard delivered to chat {chat_id}")

    async def wait_for(
        self, method: str, count: int = 1, chat_id: int | None = None, timeout: float = 10
    ) -> list[Call]:
        """Wait until ``count`` calls of ``method`` (for ``chat_id``) have arrived."""
        deadline = time.monotonic() + timeout
        while len(self.calls_of(method, chat_id)) < count:
            if time.monotonic() > deadline:
                seen = [c.method for c in self.calls]
                raise TimeoutError(f"{count} x {method} not received within {timeout} s; calls: {seen}")
            await asyncio.sleep(0.01)
        return self.calls_of(method, chat_id)

    async def wait_delivered(self, chat_id: int, count: int, timeout: float = 10) -> list[dict[str, Any]]:
        """Wait until ``count`` messages (texts or documents) have reached a chat."""
        if len(self.delivered[chat_id]) >= count:
            return self.delivered[chat_id]
        waiter = (count, asyncio.get_running_loop().create_future())
        self._waiters[chat_id].append(waiter)
        try:
            await asyncio.wait_for(waiter[1], timeout)
        except TimeoutError:
            if waiter in self._waiters[chat_id]:
                self._waiters[chat_id].remove(waiter)
            got = [m.get("text", m.get("document", {}).get("file_name")) for m in self.delivered[chat_id]]
            raise TimeoutError(f"{count} messages not delivered to {chat_id} within {timeout} s; got {got}") from None
        return self.delivered[chat_id]

    async def wait_text(self, chat_id: int, needle: str, timeout: float = 10) -> str:
        """Wait until a message containing ``needle`` has reached a chat; returns it."""
        deadline = time.monotonic() + timeout
        while True:
            for text in self.texts(chat_id):
                if needle in text:
                    return text
            if time.monotonic() > deadline:
                raise TimeoutError(f"no message with {needle!r} reached {chat_id}; got {self.texts(chat_id)}")
            await asyncio.sleep(0.01)

    # ------------------------------------------------------------------ the HTTP side
    async def _params(self, request: Request) -> tuple[dict[str, Any], dict[str, tuple[str, bytes]]]:
        params: dict[str, Any] = {}
        files: dict[str, tuple[str, bytes]] = {}
        kind = request.headers.get("content-type", "")
        if kind.startswith("application/json"):
            params = dict(await request.json())
        elif kind.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
            async with request.form() as form:
                for key, value in form.multi_items():
                    if isinstance(value, UploadFile):
                        files[key] = (value.filename or key, await value.read())
                    else:
                        params[key] = value
        params.update(request.query_params)
        for key, value in list(params.items()):
            if isinstance(value, str) and value[:1] in "[{":
                with contextlib.suppress(ValueError):
                    params[key] = json.loads(value)
        return params, files

    async def _handle(self, request: Request) -> JSONResponse:
        if request.path_params["token"] != self.token:
            return JSONResponse({"ok": False, "error_code": 401, "description": "Unauthorized"}, status_code=401)
        method = request.path_params["method"]
        params, files = await self._params(request)
        call = Call(method, params, files)
        self.calls.append(call)
        if wait := self._flood_wait(call):
            self.floods.append(call)
            body = {
                "ok": False,
                "error_code": 429,
                "description": f"Too Many Requests: retry after {wait}",
                "parameters": {"retry_after": wait},
            }
            return JSONResponse(body, status_code=429)
        if self.faults[method]:
            fault = self.faults[method].popleft()
            if fault.kind == "429":
                body = {
                    "ok": False,
                    "error_code": 429,
                    "description": f"Too Many Requests: retry after {fault.retry_after}",
                    "parameters": {"retry_after": fault.retry_after},
                }
                return JSONResponse(body, status_code=429)
            if fault.kind == "500":
                body = {"ok": False, "error_code": 500, "description": "Internal Server Error"}
                return JSONResponse(body, status_code=500)
            await asyncio.sleep(fault.delay)
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            body = {"ok": False, "error_code": 404, "description": "Not Found: method not found"}
            return JSONResponse(body, status_code=404)
        try:
            result = await handler(params, files)
        except (KeyError, ValueError) as exc:
            body = {"ok": False, "error_code": 400, "description": f"Bad Request: {exc}"}
            return JSONResponse(body, status_code=400)
        return JSONResponse({"ok": True, "result": result})

    def _flood_wait(self, call: Call) -> int:
        """Seconds a message to a group must wait under the group limit; 0: it may go."""
        if call.method not in _SENDS or not str(call.params.get("chat_id", "")).startswith("-"):
            return 0
        limit, period = self.group_limit
        sent = self._group_sends[int(call.params["chat_id"])]
        while sent and sent[0] <= call.at - period:
            sent.popleft()
        if len(sent) >= limit:
            return max(1, int(sent[0] + period - call.at + 0.999))
        sent.append(call.at)
        return 0

    def _message(self, params: dict[str, Any], **content: Any) -> dict[str, Any]:
        chat_id = int(params["chat_id"])
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"},
            "from": BOT_USER,
            **content,
        }
        if params.get("message_thread_id"):
            thread = int(params["message_thread_id"])
            if thread not in self.topics[chat_id]:
                raise ValueError(f"message thread not found: {thread} in chat {chat_id}")
            message["message_thread_id"] = thread
            message["is_topic_message"] = True
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        return message

    async def _deliver(self, message: dict[str, Any]) -> dict[str, Any]:
        chat = message["chat"]["id"]
        self.delivered[chat].append(message)
        if waiters := self._waiters.get(chat):
            arrived = len(self.delivered[chat])
            for waiter in [w for w in waiters if w[0] <= arrived]:
                waiters.remove(waiter)
                if not waiter[1].done():
                    waiter[1].set_result(None)
        return message

    # ------------------------------------------------------------------ methods
    async def _m_getMe(self, params: dict[str, Any], files: Any) -> dict[str, Any]:  # noqa: N802
        return {
            **BOT_USER,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def _m_getUpdates(self, params: dict[str, Any], files: Any) -> list[dict[str, Any]]:  # noqa: N802
        offset = int(params.get("offset") or 0)
        if offset:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        timeout = float(params.get("timeout") or 0)
        if not self._updates and timeout:
            self._new_update.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new_update.wait(), min(timeout, 2.0))
        limit = int(params.get("limit") or 100)
        return self._updates[:limit]

    async def _m_setWebhook(self, params: dict[str, Any], files: Any) -> bool:  # noqa: N802
        self.webhook = params
        return True

    async def _m_deleteWebhook(self, params: dict[str, Any], files: Any) -> bool:  # noqa: N802
        self.webhook = None
        return True

    async def _m_getWebhookInfo(self, params: dict[str, Any], files: Any) -> dict[str, Any]:  # noqa: N802
        return {"url": (self.webhook or {}).get("url", ""), "has_custom_certificate": False, "pending_update_count": 0}

    async def _m_setMyCommands(self, params: dict[str, Any], files: Any) -> bool:  # noqa: N802
        self.commands = list(params.get("commands") or [])
        return True

    async def _m_sendMessage(self, params: dict[str, Any], files: Any) -> dict[str, Any]:  # noqa: N802
        text = str(params["text"])
        units = len(text.encode("utf-16-le")) // 2  # Telegram counts UTF-16 code units
        if not text.strip() or units > 4096:
            raise ValueError(f"message text is empty or longer than 4096 characters ({units})")
        if params.get("parse_mode"):
            raise ValueError(f"unexpected parse_mode {params['parse_mode']!r}: PortPal sends plain text")
        return await self._deliver(self._message(params, text=text))

    async def _m_editMessageText(self, params: dict[str, Any], files: Any) -> dict[str, Any]:  # noqa: N802
        return self._message(params, text=str(params["text"]))

    async def _m_editMessageReplyMarkup(self, params: dict[str, Any], files: Any) -> dict[str, Any]:  # noqa: N802
        key = (int(params["chat_id"]), int(params["message_id"]))
        if not params.get("reply_markup"):
            if key in self.markups_removed:
                raise ValueError("message is not modified")
            self.markups_removed.append(key)
        return self._message(params, text="…")

    async def _m_answerCallbackQuery(self, params: dict[str, Any], files: Any) -> bool:  # noqa: N802
        return True

    async def _m_sendChatAction(self, params: dict[str, Any], files: Any) -> bool:  # noqa: N802
        return True

    async def _m_sendDocument(self, params: dict[str, Any], files: dict[str, tuple[str, bytes]]) -> dict[str, Any]:  # noqa: N802
        if "document" in files:  # an upload
            name, content = files["document"]
            file_id = f"doc-{len(self.documents) + 1}"
            self.documents[file_id] = (name, content)
            document = {"file_id": file_id, "file_unique_id": file_id, "file_name": name, "file_size": len(content)}
        else:  # a file Telegram holds already, by file_id
            file_id = str(params["document"])
            name = self.documents.get(file_id, ("file", b""))[0]
            document = {"file_id": file_id, "file_unique_id": file_id, "file_name": name}
        caption = {"caption": params["caption"]} if params.get("caption") else {}
        if len(params.get("caption") or "") > 1024:
            raise ValueError("message caption is too long")
        return await self._deliver(self._message(params, document=document, **caption))

    async def _m_sendPhoto(self, params: dict[str, Any], files: Any) -> dict[str, Any]:  # noqa: N802
        file_id = str(params["photo"])
        photo = [{"file_id": file_id, "file_unique_id": file_id, "width": 800, "height": 600}]
        caption = {"caption": params["caption"]} if params.get("caption") else {}
        return await self._deliver(self._message(params, photo=photo, **caption))

    async def _m_createForumTopic(self, params: dict[str, Any], files: Any) -> dict[str, Any]:  # noqa: N802
        thread_id = next(self._thread_ids)
        self.topics[int(params["chat_id"])][thread_id] = str(params["name"])
        return {"message_thread_id": thread_id, "name": params["name"], "icon_color": 7322096}
