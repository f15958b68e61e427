"""Telegram channel: python-telegram-bot updates in, Bot API calls out.

The adapter translates and nothing more (as Rasa's channel layer does): a message becomes
a ``TextMessage``, ``Command`` or ``FileMessage``, a pressed inline button a
``ButtonPress``, and the core's replies become ``sendMessage`` / ``sendDocument`` calls with
inline keyboards. State lives in the database, not in PTB's ``ConversationHandler``, so any
process can handle any update.

Order and exactly-once, per chat:

* ``ChatSerializer`` runs the updates of one chat one at a time, in the order received,
  and different chats concurrently.
* The update id is the event's idempotency key: an update delivered twice (a webhook
  retry, a second process) is applied once. A keyboard is consumed by its first press.
* Replies are committed to the outbox with the state and sent after; a send that fails
  for a while (429, 5xx, network) is retried by ``Outbox`` in order, so a reply is neither
  lost nor overtaken. AIORateLimiter keeps within Telegram's flood limits and retries a
  429 after its ``retry_after`` before the outbox has to.

Texts are sent as plain text (no parse mode), so nothing the knowledge base or a user
typed can break formatting; long texts are split at line boundaries below Telegram's
4096-character limit (counted in UTF-16 code units, as Telegram counts).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import OperationalError
from telegram import (
    BotCommand,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
)
from telegram.error import BadRequest, ChatMigrated, Forbidden, RetryAfter, TelegramError, TimedOut
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    BaseUpdateProcessor,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.assistant import Assistant
from bot.channels.telegram_http import AiohttpRequest, maybe_delivered
from bot.core.dialogue import Outcome
from bot.core.events import ButtonPress, Command, Event, FileMessage, StaffMessage, TextMessage
from bot.core.replies import Button, Reply
from bot.locks import KeyedLocks
from bot.metrics import Metrics
from bot.outbox import DeliveryError, Outbox, Ticket
from forms.masking import mask_text

__all__ = [
    "CHANNEL",
    "COMMANDS",
    "ChatSerializer",
    "TelegramChannel",
    "build_application",
    "merge_replies",
    "split_text",
    "utf16_len",
]

log = logging.getLogger(__name__)

# PTB 22 reports durations (RetryAfter.retry_after) as timedelta when opted in, as int with a
# deprecation warning otherwise; opt in, the coming default.
os.environ.setdefault("PTB_TIMEDELTA", "1")

CHANNEL = "telegram"
MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64  # bytes
_LONG_PAYLOAD = "k:"  # callback data that names a stored payload (core payloads never start so)

# The command menu (setMyCommands); the core answers every command, these are the ones shown.
COMMANDS: tuple[tuple[str, str], ...] = (
    ("start", "开始 / 选择地区"),
    ("help", "我能问什么"),
    ("walkthrough", "一步步办理入网"),
    ("progress", "办理进度"),
    ("forms", "生成申请文件"),
    ("profile", "查看已填企业资料"),
    ("pair", "连接电脑上的卡片助手"),
    ("unpair", "断开卡片助手"),
    ("human", "转人工"),
    ("cancel", "取消当前操作"),
    ("deletedata", "删除我的全部数据"),
)
ALLOWED_UPDATES = ["message", "callback_query"]
# What staff may do in a handoff's topic (bot.core.handoff); from anywhere else, nothing.
STAFF_COMMANDS = frozenset({"take", "release", "close", "note", "kb", "reveal"})


def utf16_len(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units (an emoji outside the BMP is 2)."""
    return len(text.encode("utf-16-le")) // 2


def _hard_split(line: str, limit: int) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    units = 0
    for char in line:
        width = 2 if ord(char) > 0xFFFF else 1  # a surrogate pair in UTF-16
        if units + width > limit:
            parts.append("".join(current))
            current, units = [], 0
        current.append(char)
        units += width
    if current:
        parts.append("".join(current))
    return parts


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Split ``text`` into messages of at most ``limit`` UTF-16 units, at line boundaries
    where possible (a single longer line is cut between characters)."""
    if utf16_len(text) <= limit:
        return [text]
    chunks: list[str] = []
    current = ""
    for line in text.split("\n"):
        pieces = _hard_split(line, limit) if utf16_len(line) > limit else [line]
        for piece in pieces:
            candidate = f"{current}\n{piece}" if current else piece
            if utf16_len(candidate) <= limit:
                current = candidate
                continue
            if current.strip():
                chunks.append(current)
            current = piece
    if current.strip():
        chunks.append(current)
    return chunks


class ChatSerializer(BaseUpdateProcessor):
    """Processes updates of one chat one at a time, in arrival order; chats concurrently.

    PTB creates a task per update in the order the updates arrive; each task queues on its
    chat's lock (asyncio locks are fair), so a chat's updates keep their order while other
    chats proceed.
    """

    def __init__(self, max_concurrent_updates: int = 256) -> None:
        super().__init__(max_concurrent_updates)
        self._chats: KeyedLocks[int] = KeyedLocks()

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        chat = update.effective_chat if isinstance(update, Update) else None
        if chat is None:
            await coroutine
            return
        async with self._chats.hold(chat.id):
            await coroutine

    async def initialize(self) -> None:
        """Nothing to set up: the locks are made on demand."""

    async def shutdown(self) -> None:
        """Nothing to release."""


# Telegram takes about 20 messages a minute in one group. AIORateLimiter's default for
# groups is a bucket of 20 that refills at that rate, which lets up to 39 through in the
# first minute of a burst; a 429 then pauses every request of the bot, users' chats too.
# One message per 3.1 s never exceeds 20 in any 60 s, and the outbox merges what queues.
GROUP_INTERVAL = 3.1
_Result = bool | dict[str, Any] | list[dict[str, Any]]  # a Bot API call's result


class GroupPacedRateLimiter(AIORateLimiter):
    """AIORateLimiter with groups paced one message per ``GROUP_INTERVAL``; creating a
    forum topic is not a message and does not take a turn."""

    def __init__(self, overall_max_rate: float, max_retries: int) -> None:
        super().__init__(
            overall_max_rate=overall_max_rate,
            group_max_rate=1,
            group_time_period=GROUP_INTERVAL,
            max_retries=max_retries,
        )

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, _Result]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> _Result:
        if endpoint == "createForumTopic":
            data = {k: v for k, v in data.items() if k != "chat_id"}
        return await super().process_request(callback, args, kwargs, endpoint, data, rate_limit_args)


def build_application(
    token: str,
    *,
    base_url: str | None = None,
    rate_limit: float = 30.0,
    webhook: bool = False,
    max_retries: int = 2,
) -> Application[Any, Any, Any, Any, Any, Any]:
    """The PTB application: rate limited, chat-serialised, no updater in webhook mode.

    ``rate_limit`` is messages per second over all chats (Telegram's is about 30; 0 turns
    the limiter's overall limit off, e.g. against a local test server). Groups keep
    Telegram's 20 per minute, strictly (``GroupPacedRateLimiter``).
    """
    builder = (
        ApplicationBuilder()
        .token(token)
        .concurrent_updates(ChatSerializer())
        .rate_limiter(GroupPacedRateLimiter(rate_limit, max_retries))
        .request(AiohttpRequest(pool_size=16, read_timeout=20.0, write_timeout=30.0, pool_timeout=10.0))
        # getUpdates: one request at a time, a long poll of up to 30 s.
        .get_updates_request(AiohttpRequest(pool_size=1, read_timeout=40.0, write_timeout=30.0, pool_timeout=10.0))
    )
    if base_url:
        root = base_url.rstrip("/")
        builder = builder.base_url(root).base_file_url(root.replace("/bot", "/file/bot", 1))
    if webhook:
        builder = builder.updater(None)
    return builder.build()


def _topic_lane(reply: Reply) -> object:
    """A staff group's replies keep their order per handoff (topic); a user chat has one."""
    return reply.meta.get("ticket")


def merge_replies(first: Reply, second: Reply) -> Reply | None:
    """Two replies to a staff topic as one message when both are plain text of the same
    handoff and fit in one message: a burst of a user's messages reaches the topic in a
    few sends (a group takes about 20 a minute), in order, one line each."""
    if first.to != "staff" or second.to != "staff" or first.meta.get("ticket") != second.meta.get("ticket"):
        return None
    if any(r.buttons or r.document is not None or r.file is not None or r.form is not None for r in (first, second)):
        return None
    text = f"{first.text}\n{second.text}"
    if utf16_len(text) > MAX_TEXT:
        return None
    return replace(first, text=text)


def _delivery_error(exc: TelegramError) -> DeliveryError:
    """What the outbox should do about a failed Bot API call."""
    if isinstance(exc, RetryAfter):
        wait = exc.retry_after
        seconds = wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
        return DeliveryError(f"flood limit: {exc}", retry_after=seconds)
    if isinstance(exc, Forbidden | ChatMigrated):
        return DeliveryError(f"chat refuses messages: {exc}", permanent=True)
    if isinstance(exc, BadRequest):
        return DeliveryError(f"request refused: {exc}", permanent=True)
    if isinstance(exc, TimedOut) and maybe_delivered(exc):
        # The request may have been delivered; a duplicate is better than a lost reply.
        return DeliveryError(f"no answer in time, delivery unknown: {exc}")
    return DeliveryError(f"{type(exc).__name__}: {exc}")


class TelegramChannel:
    """Adapter between the PTB ``Application`` and the assistant."""

    def __init__(
        self,
        assistant: Assistant,
        application: Application[Any, Any, Any, Any, Any, Any],
        metrics: Metrics | None = None,
        staff_chat_id: int | None = None,
    ) -> None:
        self.assistant = assistant
        self.application = application
        self.metrics = metrics or Metrics()
        self.staff_chat_id = staff_chat_id
        self.outbox = Outbox(assistant.store, CHANNEL, self.send, merge=merge_replies, lane=_topic_lane)
        self._redeliver: set[int] = set()
        application.add_handler(
            MessageHandler(
                filters.ChatType.PRIVATE & (filters.TEXT | filters.Document.ALL | filters.PHOTO), self._on_message
            )
        )
        if staff_chat_id is not None:
            staff = filters.Chat(staff_chat_id) & (filters.TEXT | filters.Document.ALL | filters.PHOTO)
            application.add_handler(MessageHandler(staff, self._on_staff))
        application.add_handler(CallbackQueryHandler(self._on_button))
        application.add_handler(TypeHandler(Update, self._on_other), group=1)
        application.add_error_handler(self._on_error)

    @property
    def bot(self) -> Any:
        return self.application.bot

    # ------------------------------------------------------------------ in
    @staticmethod
    def to_event(message: Message, update_id: int | None = None) -> Event | None:
        """A user's message as a core event; None for kinds the bot does not handle."""
        if message.text is not None:
            entities = message.entities or ()
            if message.text.startswith("/") and any(e.type == "bot_command" and e.offset == 0 for e in entities):
                return Command.parse(message.text, update_id)
            return TextMessage(message.text, update_id)
        if message.document is not None:
            doc = message.document
            return FileMessage(
                "document", doc.file_id, doc.file_name or "", doc.mime_type or "", doc.file_size or 0,
                message.caption or "", update_id,
            )  # fmt: skip
        if message.photo:
            photo = max(message.photo, key=lambda p: p.width * p.height)
            return FileMessage(
                "photo", photo.file_id, "", "image/jpeg", photo.file_size or 0, message.caption or "", update_id
            )
        return None

    async def process(self, update: Update) -> bool:
        """Handle one update as the webhook receives it; False: Telegram should send it
        again (a failure that did not apply it, such as the database being unreachable)."""
        app = self.application
        await app.update_processor.process_update(update, app.process_update(update))
        if update.update_id in self._redeliver:
            self._redeliver.discard(update.update_id)
            return False
        return True

    async def _deliver_event(self, update: Update, chat_id: str, event: Event, keys: Sequence[str]) -> bool:
        """Apply an event and send its replies; False if it was applied before."""
        where = {"update_id": update.update_id, "chat_id": chat_id}
        started = time.perf_counter()
        try:
            outcome = await self.assistant.handle(CHANNEL, chat_id, event, keys=keys)
        except OperationalError:
            # The database is unreachable: nothing was applied; ask for the update again.
            self.metrics.errors.labels("database").inc()
            log.exception("database unavailable; update left for redelivery", extra=where)
            self._redeliver.add(update.update_id)
            return True
        duplicate = bool(outcome.notes.get("duplicate"))
        if duplicate:
            self.metrics.duplicates.inc()
            log.info("update applied before; sending what is still unsent", extra=where)
        elif engine := outcome.notes.get("nlu"):
            self.metrics.nlu.labels(str(engine)).inc()
        await self._flush(chat_id, outcome)
        self.metrics.reply_latency.observe(time.perf_counter() - started)
        return not duplicate

    async def _on_message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None:
            return
        event = self.to_event(message, update.update_id)
        if event is None:
            return
        if isinstance(event, Command) and event.name in STAFF_COMMANDS:
            # Only the staff group's topics carry staff actions; here it is a user's command.
            log.warning("staff command /%s outside the staff group: not a staff action", event.name,
                        extra={"update_id": update.update_id, "chat_id": message.chat_id})  # fmt: skip
        self.metrics.updates.labels(type(event).__name__).inc()
        await self._deliver_event(update, str(message.chat_id), event, [f"{CHANNEL}:update:{update.update_id}"])

    async def _on_staff(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A message in the staff group: in a handoff's topic, an event of that user's
        conversation; anywhere else in the group (the general topic), ignored."""
        message = update.effective_message
        sender = update.effective_user
        where = {"update_id": update.update_id, "chat_id": self.staff_chat_id}
        if message is None or sender is None or sender.is_bot:
            return
        thread = message.message_thread_id if message.is_topic_message else None
        conversation = None
        if thread is not None:
            topic = f"{message.chat_id}:{thread}"
            conversation = await self.assistant.store.call(self.assistant.store.conversation_of_topic, topic)
        if conversation is None:
            log.info("staff group message outside a handoff topic ignored", extra=where)
            return
        event = self.to_event(message, update.update_id)
        staff_id, name = str(sender.id), sender.full_name
        if isinstance(event, Command):
            staff_event = StaffMessage(staff_id, name, command=event.name, args=event.args, update_id=update.update_id)
        elif isinstance(event, FileMessage):
            staff_event = StaffMessage(staff_id, name, text=event.caption, file=event, update_id=update.update_id)
        elif isinstance(event, TextMessage):
            staff_event = StaffMessage(staff_id, name, text=event.text, update_id=update.update_id)
        else:
            return
        self.metrics.updates.labels("StaffMessage").inc()
        channel, chat_id = conversation
        if channel != CHANNEL:
            log.warning("handoff topic of another channel (%s) ignored", channel, extra=where)
            return
        await self._deliver_event(update, chat_id, staff_event, [f"{CHANNEL}:update:{update.update_id}"])

    async def _on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None:
            return
        self.metrics.updates.labels("ButtonPress").inc()
        message = query.message
        if message is None or not isinstance(message, Message) or message.chat.type != "private":
            await self._answer(query, update)
            return
        chat_id = str(message.chat_id)
        payload = query.data or ""
        if payload.startswith(_LONG_PAYLOAD):
            stored: str | None = await self.assistant.store.call(
                self.assistant.store.expand, payload[len(_LONG_PAYLOAD) :]
            )
            payload = stored or "stale"  # the core answers an unknown payload as a stale button
        # Stop the spinner and take the keyboard away, then apply the press: the keyboard's
        # key makes a second press of it (already on its way) a no-op.
        await self._answer(query, update)
        with contextlib.suppress(TelegramError):
            # Fails harmlessly when the keyboard is already gone (a second press, an old message).
            await self.bot.edit_message_reply_markup(chat_id=message.chat_id, message_id=message.message_id)
        keys = [f"{CHANNEL}:update:{update.update_id}", f"{CHANNEL}:keyboard:{chat_id}:{message.message_id}"]
        if not await self._deliver_event(update, chat_id, ButtonPress(payload, update.update_id), keys):
            log.info("keyboard pressed again; ignored", extra={"update_id": update.update_id, "chat_id": chat_id})

    async def _answer(self, query: CallbackQuery, update: Update) -> None:
        try:
            await query.answer()
        except TelegramError as exc:  # too old to answer, or a network blip: the press still counts
            log.warning("answerCallbackQuery failed: %s", exc, extra={"update_id": update.update_id})

    async def _on_other(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Updates outside private chats (groups, channels): logged, not answered."""
        chat = update.effective_chat
        if chat is None or chat.type != "private":
            log.debug("update outside a private chat ignored", extra={"update_id": update.update_id})

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """An update's handler raised: log it with the update id and chat; the loop goes on."""
        self.metrics.errors.labels("handler").inc()
        update_id = update.update_id if isinstance(update, Update) else None
        chat = update.effective_chat.id if isinstance(update, Update) and update.effective_chat else None
        error = context.error
        log.error(
            "update %s (chat %s) failed: %s",
            update_id,
            chat,
            mask_text(repr(error)),
            exc_info=error,
            extra={"update_id": update_id, "chat_id": chat},
        )

    # ------------------------------------------------------------------ out
    def _callback_data(self, payload: str) -> str:
        if len(payload.encode()) <= MAX_CALLBACK_DATA and not payload.startswith(_LONG_PAYLOAD):
            return payload
        return _LONG_PAYLOAD + self.assistant.store.shorten(payload)

    def keyboard(self, buttons: Sequence[Button]) -> InlineKeyboardMarkup | None:
        """An inline keyboard: short labels two to a row, long ones on their own row."""
        if not buttons:
            return None
        rows: list[list[InlineKeyboardButton]] = []
        for button in buttons:
            key = InlineKeyboardButton(button.label, callback_data=self._callback_data(button.payload))
            if rows and len(rows[-1]) == 1 and len(button.label) <= 8 and len(rows[-1][0].text) <= 8:
                rows[-1].append(key)
            else:
                rows.append([key])
        return InlineKeyboardMarkup(rows)

    async def send(self, chat_id: str, reply: Reply) -> None:
        """One reply as Bot API calls; raises ``DeliveryError`` if it did not get through."""
        try:
            markup = await asyncio.to_thread(self.keyboard, reply.buttons) if reply.buttons else None
            ticket = reply.meta.get("ticket")
            thread = await self._topic(chat_id, ticket) if isinstance(ticket, Ticket) else None
            if reply.document is not None:
                await self._send_document(chat_id, reply, markup)
                return
            if reply.file is not None:
                await self._send_file(chat_id, reply, thread)
                return
            parts = split_text(reply.text)
            for i, part in enumerate(parts):
                await self.bot.send_message(
                    chat_id, part, reply_markup=markup if i == len(parts) - 1 else None, message_thread_id=thread
                )
                self.metrics.sent.labels("sendMessage").inc()
        except TelegramError as exc:
            self.metrics.errors.labels("send").inc()
            raise _delivery_error(exc) from exc

    async def _topic(self, chat_id: str, ticket: Ticket) -> int:
        """The staff-group topic of a handoff, opened (createForumTopic) on its first message."""
        store = self.assistant.store
        topic = await store.call(store.handoff_topic, ticket.channel, ticket.chat_id, ticket.number)
        if topic is not None:
            return int(topic.rsplit(":", 1)[1])
        name = f"#{ticket.number} {ticket.title}"[:128]
        created = await self.bot.create_forum_topic(chat_id, name)
        self.metrics.sent.labels("createForumTopic").inc()
        mine = f"{chat_id}:{created.message_thread_id}"
        used = await store.call(store.set_handoff_topic, ticket.channel, ticket.chat_id, ticket.number, mine)
        if used != mine:
            log.warning("handoff topic opened twice (another process was first); using %s", used)
        return int(used.rsplit(":", 1)[1])

    async def _send_file(self, chat_id: str, reply: Reply, thread: int | None) -> None:
        """A file Telegram already holds, by its file_id (a user's photo to staff, a staff
        member's document to the user)."""
        file = reply.file
        assert file is not None
        caption = reply.text
        if utf16_len(caption) > MAX_CAPTION:
            for part in split_text(caption):
                await self.bot.send_message(chat_id, part, message_thread_id=thread)
            caption = file.name
        if file.kind == "photo":
            await self.bot.send_photo(chat_id, photo=file.ref, caption=caption or None, message_thread_id=thread)
            self.metrics.sent.labels("sendPhoto").inc()
        else:
            await self.bot.send_document(chat_id, document=file.ref, caption=caption or None, message_thread_id=thread)
            self.metrics.sent.labels("sendDocument").inc()

    async def _send_document(self, chat_id: str, reply: Reply, markup: InlineKeyboardMarkup | None) -> None:
        doc = reply.document
        assert doc is not None
        caption = reply.text
        if utf16_len(caption) > MAX_CAPTION:
            for part in split_text(caption):
                await self.bot.send_message(chat_id, part)
                self.metrics.sent.labels("sendMessage").inc()
            caption = doc.filename
        try:
            content = await asyncio.to_thread(doc.path.read_bytes)
        except OSError as exc:
            raise DeliveryError(f"document {doc.filename} is gone: {exc}", permanent=True) from exc
        await self.bot.send_document(
            chat_id, document=content, filename=doc.filename, caption=caption, reply_markup=markup
        )
        self.metrics.sent.labels("sendDocument").inc()

    async def deliver(self, channel: str, chat_id: str, outcome: Outcome) -> None:
        """Send what the bot says unprompted (reminders): they are in the outbox already."""
        if channel == CHANNEL:
            await self._flush(chat_id, outcome)

    async def _flush(self, chat_id: str, outcome: Outcome) -> None:
        leased = outcome.notes.get("outbox")
        destinations = outcome.notes.get("destinations")
        await self.outbox.flush_event(
            chat_id,
            leased if isinstance(leased, list) else (),
            destinations if isinstance(destinations, list) else (),
        )

    # ------------------------------------------------------------------ start-up
    async def register_commands(self) -> bool:
        """The command menu; not essential: a failure is logged and start-up goes on."""
        try:
            await self.bot.set_my_commands([BotCommand(name, text) for name, text in COMMANDS])
        except TelegramError as exc:
            log.warning("could not register the command menu (setMyCommands): %s", exc)
            return False
        return True
