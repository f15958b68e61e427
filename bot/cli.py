"""The ``portpal`` command: chat, ask, run, kb check."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from bot.config import Settings

__all__ = ["app", "main"]

app = typer.Typer(help="PortPal (口岸助手): cross-border e-commerce onboarding assistant.", no_args_is_help=True)
kb_app = typer.Typer(help="Knowledge base tools.", no_args_is_help=True)
app.add_typer(kb_app, name="kb")

log = logging.getLogger("portpal")


def _setup_logging() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _chat(chat_id: str) -> None:
    from bot.assistant import Assistant
    from bot.channels.console import ConsoleChannel
    from bot.store import Store

    settings = Settings()
    store = Store(settings.resolved_database_url())
    assistant = Assistant(store)
    interactive = sys.stdin.isatty()
    channel = ConsoleChannel(assistant, sys.stdout, interactive=interactive, chat_id=chat_id)

    async def loop() -> None:
        if interactive:
            channel.console.print("口岸助手 PortPal — 输入问题，/help 查看帮助，Ctrl-D 退出。", style="bold green")
            await channel.send("/start")
        while True:
            try:
                line = input("你> " if interactive else "")
            except EOFError:
                break
            if line.strip():
                await channel.send(line)

    asyncio.run(loop())


@app.command()
def chat(chat_id: Annotated[str, typer.Option(help="Conversation id; progress is kept per id.")] = "local") -> None:
    """Chat in the terminal. With piped stdin: one message a line, replies in order."""
    _setup_logging()
    _chat(chat_id)


@app.command()
def ask(
    question: Annotated[str | None, typer.Argument(help="The question; none: one question a line from stdin.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object a line.")] = False,
) -> None:
    """Answer questions one at a time, without keeping a conversation."""
    _setup_logging()
    from bot.core.dialogue import Dialogue
    from bot.core.events import TextMessage
    from bot.core.messages import default_messages
    from bot.core.state import ConversationState
    from nlu.lexical import default_lexical

    interpreter = default_lexical()
    dialogue = Dialogue(interpreter.retriever, default_messages())
    questions = [question] if question is not None else (line.rstrip("\n") for line in sys.stdin)
    for q in questions:
        understanding = interpreter.parse_sync(q) if q.strip() else None
        outcome = dialogue.handle(ConversationState(), TextMessage(q), understanding)
        text = "\n".join(r.text for r in outcome.replies)
        if not as_json:
            typer.echo(text + "\n")
            continue
        ans = outcome.answer
        record = {
            "question": q,
            "answer": text,
            "intent": ans.intent if ans else (understanding.intent if understanding else "empty"),
            "confidence": ans.confidence if ans else (understanding.confidence if understanding else 0.0),
            "region": ans.region if ans else None,
            "sources": [{"manual": s.manual, "section": s.section} for s in ans.sources] if ans else [],
            "fallback": ans.fallback if ans else False,
            "nlu": understanding.engine if understanding else None,
        }
        typer.echo(json.dumps(record, ensure_ascii=False))
        sys.stdout.flush()


@app.command()
def run() -> None:
    """Start the assistant: Telegram when TELEGRAM_BOT_TOKEN is set, else the console chat."""
    _setup_logging()
    settings = Settings()
    if settings.telegram_bot_token is not None:
        typer.echo(
            "TELEGRAM_BOT_TOKEN is set, but this build has no Telegram channel yet; unset it to use the console chat.",
            err=True,
        )
        raise typer.Exit(2)
    _chat("local")


@kb_app.command("check")
def kb_check(
    manual: Annotated[list[Path], typer.Option("--manual", help="Manual text file(s).")],
    more: Annotated[list[Path] | None, typer.Argument(help="Further manual files (--manual a.txt b.txt).")] = None,
) -> None:
    """List KB phones/URLs/addresses/codes not in the manuals, and manual ones the KB lacks."""
    manual = [*manual, *(more or [])]
    from knowledge.drift import check
    from knowledge.loader import load_default

    missing = [str(p) for p in manual if not p.is_file()]
    if missing:
        typer.echo(f"manual file not found: {', '.join(missing)}", err=True)
        raise typer.Exit(2)
    report = check(load_default(), [p.read_text(encoding="utf-8") for p in manual])
    for line in report.lines():
        typer.echo(line)
    kb = load_default()
    typer.echo(
        f"{len(kb.entries)} entries checked against {len(manual)} manual(s): "
        f"{len(report.not_in_manuals)} not in manuals, {len(report.missing_from_kb)} missing from knowledge base"
    )
    if not report.ok:
        raise typer.Exit(1)


def main() -> None:
    app()
