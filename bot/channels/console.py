"""Terminal channel: one line in, the core's replies out.

Buttons are printed as numbered options; the user picks one by number or by its label.
Interactive sessions get colour and wrapping; piped input gets plain lines in order, each
message echoed as ``> message`` before its replies, so ``echo 宝鸡哪里可以办卡 | portpal
chat`` works in scripts and tests and its output reads as a transcript.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TextIO

from rich.console import Console

from bot.assistant import Assistant
from bot.core.dialogue import Outcome
from bot.core.events import ButtonPress, Command, Event, TextMessage
from bot.core.replies import Button, Reply

__all__ = ["ConsoleChannel"]

CHANNEL = "console"


class ConsoleChannel:
    """Adapter between a terminal (or a pipe) and the assistant."""

    def __init__(self, assistant: Assistant, out: TextIO, *, interactive: bool, chat_id: str = "local") -> None:
        self.assistant = assistant
        self.chat_id = chat_id
        self.interactive = interactive
        self.console = Console(file=out, highlight=False, soft_wrap=not interactive, force_terminal=interactive)
        self._buttons: tuple[Button, ...] = ()
        self._numbered = True  # whether typed numbers pick the last buttons

    def to_event(self, line: str) -> Event:
        """A typed line as a core event: a command, a pick of the last buttons, or text."""
        text = line.strip()
        if text.startswith("/"):
            return Command.parse(text)
        if self._buttons:
            if self._numbered and text.isascii() and text.isdigit() and 1 <= int(text) <= len(self._buttons):
                return ButtonPress(self._buttons[int(text) - 1].payload)
            for button in self._buttons:
                if text == button.label:
                    return ButtonPress(button.payload)
        return TextMessage(text)

    def render(self, replies: Iterable[Reply]) -> None:
        """Print replies; their buttons stay pickable until other buttons are offered.
        Replies for help-desk staff are not this terminal's to show."""
        for reply in replies:
            if reply.to != "user":
                continue
            style = "cyan" if self.interactive else None
            self.console.print(reply.text, style=style, markup=False)
            if reply.document is not None:
                self.console.print(f"[文件] {reply.document.path}", markup=False)
            if reply.buttons:
                self._buttons, self._numbered = reply.buttons, reply.numbered
                for i, button in enumerate(reply.buttons, 1):
                    mark = f"{i}." if reply.numbered else "-"
                    self.console.print(
                        f"  {mark} {button.label}", style="bold" if self.interactive else None, markup=False
                    )
        if not self.interactive:
            self.console.print("")
        # Replies that come unprompted (reminders, card events) must show now, piped or not.
        self.console.file.flush()

    async def deliver(self, channel: str, chat_id: str, outcome: Outcome) -> None:
        """Show replies the bot sends unprompted (reminders) for this terminal's chat."""
        if channel == CHANNEL and chat_id == self.chat_id:
            self.render(outcome.replies)

    async def send(self, line: str) -> list[Reply]:
        if not self.interactive:
            # Piped input is not on screen: echo it so the output reads as a transcript.
            self.console.print(f"> {line.strip()}", markup=False)
        outcome = await self.assistant.handle(CHANNEL, self.chat_id, self.to_event(line))
        self.render(outcome.replies)
        return outcome.replies
