"""The ``portpal`` command: chat, ask, run, kb check."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from collections.abc import Coroutine
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bot.config import Settings
from nlu.config import EngineMode

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from bot.privacy import Privacy
    from nlu.interpreter import Interpreter

__all__ = ["app", "main"]

app = typer.Typer(help="PortPal (口岸助手): cross-border e-commerce onboarding assistant.", no_args_is_help=True)
kb_app = typer.Typer(help="Knowledge base tools.", no_args_is_help=True)
app.add_typer(kb_app, name="kb")
nlu_app = typer.Typer(help="The Rasa NLU engine: export, train, serve, cross-validate.", no_args_is_help=True)
app.add_typer(nlu_app, name="nlu")
form_app = typer.Typer(help="Documents: list the forms, render one from a JSON profile.", no_args_is_help=True)
app.add_typer(form_app, name="form")
handoff_app = typer.Typer(help="Help-desk handoffs: records for the help-desk lead.", no_args_is_help=True)
app.add_typer(handoff_app, name="handoff")
privacy_app = typer.Typer(help="A user's data: export, delete; the retention purge.", no_args_is_help=True)
app.add_typer(privacy_app, name="privacy")
db_app = typer.Typer(help="The database: migrations (they also run when the bot starts).", no_args_is_help=True)
app.add_typer(db_app, name="db")

log = logging.getLogger("portpal")


def _setup_logging() -> None:
    from bot.logs import setup_logging

    settings = Settings()
    setup_logging(settings.portpal_log_level, settings.portpal_log_format)


NluOption = Annotated[
    EngineMode | None,
    typer.Option(
        "--nlu",
        help="NLU engine: auto (Rasa if available, else lexical), rasa (Rasa or fail), lexical. Default: PORTPAL_NLU.",
    ),
]


def _open_nlu(settings: Settings, mode: EngineMode | None) -> AbstractAsyncContextManager[Interpreter]:
    from nlu.engine import open_interpreter

    return open_interpreter(settings.nlu_config(mode))


def _run_with_nlu(main: Coroutine[Any, Any, None], *, fast_loop: bool = False) -> None:
    """Run a command's event loop; Rasa required (``--nlu rasa``) but missing exits 2.

    ``fast_loop``: uvloop where installed (the Telegram bot: about 15% less CPU a message).
    """
    from nlu.engine import NluUnavailableError

    try:
        if fast_loop:
            try:
                import uvloop
            except ImportError:  # Windows
                asyncio.run(main)
            else:
                uvloop.run(main)
        else:
            asyncio.run(main)
    except NluUnavailableError as exc:
        typer.echo(f"Rasa required but unavailable: {exc}", err=True)
        raise typer.Exit(2) from exc


def _pdf(settings: Settings) -> bool:
    """PDFs when asked for and LibreOffice is there; asked for but missing is said once."""
    from forms.pdf import available

    if settings.portpal_forms_pdf and not available():
        log.warning("PORTPAL_FORMS_PDF is set but LibreOffice (soffice) is not installed: sending .docx/.xlsx only")
        return False
    return settings.portpal_forms_pdf


def _chat(chat_id: str, mode: EngineMode | None = None) -> None:
    from bot.assistant import Assistant
    from bot.cardlink import CardLink
    from bot.channels.console import CHANNEL, ConsoleChannel
    from bot.reminders import ReminderScheduler
    from bot.serving import agent_endpoint
    from bot.store import Store

    settings = Settings()
    store = Store(settings.resolved_database_url())
    interactive = sys.stdin.isatty()

    async def loop() -> None:
        if interactive and settings.rasa_url is None and (mode or settings.portpal_nlu) != "lexical":
            typer.echo("正在启动 NLU 引擎（Rasa）… / starting the NLU engine (Rasa) …", err=True)
        async with contextlib.AsyncExitStack() as stack:
            interpreter = await stack.enter_async_context(_open_nlu(settings, mode))
            assistant = Assistant(store, interpreter, documents_dir=settings.documents_dir, pdf=_pdf(settings))
            channel = ConsoleChannel(assistant, sys.stdout, interactive=interactive, chat_id=chat_id)
            scheduler = ReminderScheduler(assistant, channel.deliver, channels=[CHANNEL])
            # A card agent on this PC pairs with and reports to this chat (/pair).
            link = CardLink(assistant, channel.deliver)
            host, port = settings.portpal_http_host, settings.portpal_http_port
            assistant.agent_url = await stack.enter_async_context(agent_endpoint(link, host, port))
            if interactive:
                channel.console.print("口岸助手 PortPal — 输入问题，/help 查看帮助，Ctrl-D 退出。", style="bold green")
            # Reminders that fell due while the assistant was not running come first.
            await scheduler.run_due()
            if interactive:
                # A new user gets the welcome; a returning one their walkthrough, where they left it.
                state = (await store.call(store.load, CHANNEL, chat_id)).state
                progress = state.progress()
                if progress is not None and not progress.finished:
                    await channel.send("/walkthrough")
                elif not state.history:
                    await channel.send("/start")
            reminders = asyncio.create_task(scheduler.run())
            try:
                while True:
                    try:
                        line = await asyncio.to_thread(input, "你> " if interactive else "")
                    except EOFError:
                        break
                    if line.strip():
                        await channel.send(line)
            finally:
                reminders.cancel()

    _run_with_nlu(loop())


@app.command()
def chat(
    chat_id: Annotated[str, typer.Option(help="Conversation id; progress is kept per id.")] = "local",
    nlu: NluOption = None,
) -> None:
    """Chat in the terminal. With piped stdin: one message a line, replies in order."""
    _setup_logging()
    _chat(chat_id, nlu)


@app.command()
def ask(
    question: Annotated[str | None, typer.Argument(help="The question; none: one question a line from stdin.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object a line.")] = False,
    nlu: NluOption = None,
) -> None:
    """Answer questions one at a time, without keeping a conversation."""
    _setup_logging()
    from bot.core.dialogue import Dialogue
    from bot.core.events import TextMessage
    from bot.core.messages import default_messages
    from bot.core.state import ConversationState
    from knowledge.index import default_retriever

    settings = Settings()
    dialogue = Dialogue(default_retriever(), default_messages())

    async def answer_all() -> None:
        async with _open_nlu(settings, nlu) as interpreter:
            questions = [question] if question is not None else None
            while True:
                if questions is not None:
                    if not questions:
                        break
                    q = questions.pop(0)
                else:
                    line = await asyncio.to_thread(sys.stdin.readline)
                    if not line:
                        break
                    q = line.rstrip("\n")
                understanding = await interpreter.parse(q) if q.strip() else None
                outcome = dialogue.handle(ConversationState(), TextMessage(q), understanding)
                text = "\n".join(r.text for r in outcome.replies)
                if not as_json:
                    # The offered buttons ("did you mean" entries among them), as the console shows them.
                    options = [b.label for r in outcome.replies for b in r.buttons]
                    typer.echo("\n".join([text, *(f"  {i}. {label}" for i, label in enumerate(options, 1))]) + "\n")
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
                    "suggestions": list(ans.suggestions) if ans else [],
                    "nlu": understanding.engine if understanding else None,
                }
                typer.echo(json.dumps(record, ensure_ascii=False))
                sys.stdout.flush()

    _run_with_nlu(answer_all())


@app.command()
def run(nlu: NluOption = None) -> None:
    """Start the assistant: Telegram when TELEGRAM_BOT_TOKEN is set, else the console chat."""
    _setup_logging()
    settings = Settings()
    if settings.telegram_bot_token is None:
        _chat("local", nlu)
        return
    from bot.runtime import StartupError, TelegramBot

    async def serve() -> None:
        async with _open_nlu(settings, nlu) as interpreter:
            bot = TelegramBot(settings, interpreter, pdf=_pdf(settings))
            await bot.run()

    try:
        _run_with_nlu(serve(), fast_loop=True)
    except StartupError as exc:
        typer.echo(f"PortPal cannot start: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from exc


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
    from forms.catalog import default_catalog

    # The documents state facts too (codes, file names): checked like the knowledge base.
    forms = ("forms", list(default_catalog().profile_texts()))
    report = check(load_default(), [p.read_text(encoding="utf-8") for p in manual], extra=[forms])
    for line in report.lines():
        typer.echo(line)
    kb = load_default()
    typer.echo(
        f"{len(kb.entries)} entries checked against {len(manual)} manual(s): "
        f"{len(report.not_in_manuals)} not in manuals, {len(report.missing_from_kb)} missing from knowledge base"
    )
    if not report.ok:
        raise typer.Exit(1)


def _rasa_bin(settings: Settings) -> Path:
    from nlu.training import find_rasa_bin

    rasa = find_rasa_bin(settings.portpal_rasa_venv)
    if rasa is None:
        typer.echo("Rasa is not installed: no .venv-rasa here (run `make rasa`, or set PORTPAL_RASA_VENV).", err=True)
        raise typer.Exit(2)
    return rasa


@nlu_app.command("export")
def nlu_export(
    out: Annotated[Path | None, typer.Option(help="Directory to write; default: the packaged nlu/rasa.")] = None,
    check: Annotated[bool, typer.Option("--check", help="Write nothing; exit 1 if the export is stale.")] = False,
) -> None:
    """Write the Rasa project (config.yml, domain.yml, data/nlu.yml, dictionary) from the knowledge base."""
    from nlu.export import PROJECT_DIR, default_project, write_project

    target = out or PROJECT_DIR
    project = default_project()
    if check:
        stale = [
            rel
            for rel, content in project.files.items()
            if not (target / rel).is_file() or (target / rel).read_text(encoding="utf-8") != content
        ]
        if stale:
            typer.echo(f"stale Rasa export in {target}: {', '.join(stale)}; run `portpal nlu export`", err=True)
            raise typer.Exit(1)
        typer.echo(f"Rasa export in {target} is up to date")
        return
    write_project(project, target)
    counts: dict[str, int] = {}
    for ex in project.examples:
        top = ex.intent.split("/", 1)[0]
        counts[top] = counts.get(top, 0) + 1
    typer.echo(
        f"wrote {len(project.files)} files to {target}: {len(project.examples)} examples, "
        f"{len(project.intents)} intents ({counts.get('faq', 0)} knowledge-question examples), "
        f"{len(project.conflicts)} clashing and {len(project.misaligned)} misaligned examples left out"
    )


@nlu_app.command("train")
def nlu_train(force: Annotated[bool, typer.Option(help="Train even if a model of this data exists.")] = False) -> None:
    """Train the Rasa NLU model in .venv-rasa; skipped when the exported data has not changed."""
    from nlu.training import RasaEnvError, model_path, train

    settings = Settings()
    rasa = _rasa_bin(settings)
    if force or not model_path(settings.rasa_model_dir).is_file():
        typer.echo(f"Training the Rasa NLU model into {settings.rasa_model_dir} (a few minutes) ...", err=True)
    try:
        result = train(settings.rasa_model_dir, rasa, force=force)
    except RasaEnvError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    if result.trained:
        typer.echo(f"model: {result.model} (trained in {result.seconds:.0f} s)")
    else:
        typer.echo(f"model: {result.model} (up to date, not retrained)")


@nlu_app.command("serve")
def nlu_serve(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 5005,
    host: Annotated[str, typer.Option(help="Interface; 0.0.0.0 only inside a private network (a container).")] = (
        "127.0.0.1"
    ),
) -> None:
    """Run the Rasa server for the current model (for RASA_URL); Ctrl-C stops it."""
    import os

    from nlu.server import RasaServer
    from nlu.training import model_path

    settings = Settings()
    rasa = _rasa_bin(settings)
    model = model_path(settings.rasa_model_dir)
    if not model.is_file():
        typer.echo(f"no model for the current data at {model}; run `portpal nlu train`", err=True)
        raise typer.Exit(2)
    command = RasaServer(rasa, model, host=host, port=port).command()
    typer.echo(f"Rasa server on http://{host}:{port} (model {model.name})", err=True)
    os.execv(command[0], command)


@nlu_app.command("test")
def nlu_test(
    folds: Annotated[int, typer.Option(min=2, help="Cross-validation folds.")] = 3,
    out: Annotated[Path | None, typer.Option(help="Where Rasa writes its reports.")] = None,
    epochs: Annotated[
        int | None, typer.Option(min=1, help="Train each fold with this many epochs (default: the config's).")
    ] = None,
) -> None:
    """Rasa's k-fold cross-validation of the exported data: intent, entity and response P/R/F1."""
    from nlu.training import RasaEnvError, cross_validate

    settings = Settings()
    rasa = _rasa_bin(settings)
    results = out or settings.data_dir / "rasa-results"
    typer.echo(f"Cross-validating with {folds} folds (each fold trains a model) ...", err=True)
    try:
        report = cross_validate(rasa, results, folds=folds, cache_dir=settings.rasa_model_dir / "cache", epochs=epochs)
    except RasaEnvError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"{'':<22}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}")
    rows = [("intent", report.intent), ("entity (micro avg)", report.entity), ("response (faq/...)", report.response)]
    rows += [(f"  entity {name}", score) for name, score in sorted(report.per_entity.items())]
    for label, score in rows:
        if score is not None:
            typer.echo(f"{label:<22}{score.precision:>10.3f}{score.recall:>10.3f}{score.f1:>10.3f}{score.support:>10}")
    typer.echo(f"reports: {results}")


def main() -> None:
    app()


@form_app.command("list")
def form_list(
    region: Annotated[str | None, typer.Option(help="Only this region (shaanxi, zhuhai).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object a line.")] = False,
) -> None:
    """The forms PortPal fills: id, region, kind, title, manual section and fields."""
    from forms.catalog import default_catalog

    catalog = default_catalog()
    forms = catalog.for_region(region)
    if region is not None and not forms:
        typer.echo(f"no forms for region {region!r}; regions: shaanxi, zhuhai", err=True)
        raise typer.Exit(2)
    for form in forms:
        if as_json:
            record = {
                "id": form.id,
                "region": form.region,
                "kind": form.kind,
                "title": form.title.zh,
                "section": form.section,
                "reference": form.reference,
                "fields": [{"id": f.id, "required": f.required} for f in form.fields],
            }
            typer.echo(json.dumps(record, ensure_ascii=False))
        else:
            mark = "  参考格式" if form.reference else ""
            typer.echo(f"{form.id:<28} {form.region:<8} .{form.kind:<5} {form.title.zh}（{form.section}）{mark}")


@form_app.command("render")
def form_render(
    form_id: Annotated[str, typer.Argument(help="A form id from `portpal form list`.")],
    data: Annotated[Path, typer.Option("--data", help="The company profile: a JSON object of field id -> value.")],
    out: Annotated[Path, typer.Option("--out", help="Directory to write to (created if missing).")],
    pdf: Annotated[bool, typer.Option("--pdf", help="Also write a PDF with LibreOffice.")] = False,
) -> None:
    """Fill FORM_ID from a JSON profile; prints the written paths, or a JSON list of field errors (exit 1)."""
    _setup_logging()
    from forms.catalog import default_catalog
    from forms.pdf import ConversionError
    from forms.render import Renderer, RenderError

    catalog = default_catalog()
    form = catalog.forms.get(form_id)
    if form is None:
        typer.echo(f"unknown form {form_id!r}; see `portpal form list`", err=True)
        raise typer.Exit(2)
    try:
        values = json.loads(data.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        typer.echo(f"{data}: cannot read a JSON profile: {exc}", err=True)
        raise typer.Exit(2) from exc
    if not isinstance(values, dict):
        typer.echo(f"{data}: the profile must be a JSON object of field id -> value", err=True)
        raise typer.Exit(2)
    profile = {str(k): "" if v is None else str(v) for k, v in values.items()}
    try:
        written = Renderer(catalog).render(form, profile, out, pdf=pdf)
    except RenderError as exc:
        typer.echo(json.dumps([e.as_dict() for e in exc.errors], ensure_ascii=False, indent=2))
        raise typer.Exit(1) from exc
    except ConversionError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(3) from exc
    for item in written:
        typer.echo(str(item.path))


def _day(since: str) -> datetime:
    """``--since YYYY-MM-DD``: the start of that day in China time; exit 2 if malformed."""
    from zoneinfo import ZoneInfo

    try:
        return datetime.strptime(since, "%Y-%m-%d").replace(tzinfo=ZoneInfo("Asia/Shanghai"))
    except ValueError as exc:
        typer.echo(f"--since {since!r}: expected a date as YYYY-MM-DD, e.g. 2026-11-01", err=True)
        raise typer.Exit(2) from exc


@handoff_app.command("export")
def handoff_export(
    since: Annotated[str, typer.Option("--since", help="First day to include, YYYY-MM-DD (Asia/Shanghai).")],
    out: Annotated[Path | None, typer.Option("--out", help="CSV file to write (default: standard output).")] = None,
) -> None:
    """Handoffs opened since a day, as CSV (personal data masked): waiting and handling time,
    reason, resolution."""

    from bot.reports import handoff_csv
    from bot.store import Store
    from forms.render import atomic_write

    day = _day(since)
    settings = Settings()
    text = handoff_csv(Store(settings.resolved_database_url()).handoffs_since(day))
    if out is None:
        typer.echo(text, nl=False)
        return
    atomic_write(out, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    typer.echo(f"{text.count(chr(10)) - 1} handoffs written to {out}", err=True)


def _db_engine(create: bool) -> Engine:
    """An engine of DATABASE_URL; ``create``: make a missing SQLite file (owner-only), else
    report it missing rather than let SQLite create an empty one."""
    from sqlalchemy import create_engine

    from bot.store import engine_url, make_private_file, sqlite_file

    url = engine_url(Settings().resolved_database_url())
    if (path := sqlite_file(url)) is not None:
        if create:
            make_private_file(path)
        elif not path.is_file():
            from bot.migrate import head

            typer.echo(f"revision none; no database at {path} yet; this version's head: {head()}")
            raise typer.Exit(1)
    return create_engine(url)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Migrate DATABASE_URL's tables to this version (the bot also does it at start-up)."""
    _setup_logging()
    from sqlalchemy.exc import SQLAlchemyError

    from bot.migrate import current, head, upgrade

    engine = _db_engine(create=True)
    try:
        before = current(engine)
        upgrade(engine)
        typer.echo(f"database at revision {current(engine)} (head {head()}; was {before or 'unmigrated'})")
    except SQLAlchemyError as exc:
        typer.echo(f"cannot migrate the database: {exc}", err=True)
        raise typer.Exit(1) from exc
    finally:
        engine.dispose()


@db_app.command("current")
def db_current() -> None:
    """Show the revision DATABASE_URL is at; exit 1 when it is behind this version."""
    from sqlalchemy.exc import SQLAlchemyError

    from bot.migrate import current, head

    engine = _db_engine(create=False)
    try:
        at, newest = current(engine), head()
    except SQLAlchemyError as exc:
        typer.echo(f"cannot read the database: {exc}", err=True)
        raise typer.Exit(1) from exc
    finally:
        engine.dispose()
    typer.echo(f"revision {at or 'none'}; this version's head: {newest}")
    if at != newest:
        raise typer.Exit(1)


def _privacy() -> Privacy:
    from bot.privacy import Privacy
    from bot.store import Store

    settings = Settings()
    return Privacy(Store(settings.resolved_database_url()), settings.documents_dir)


UserArg = Annotated[str, typer.Argument(help="CHANNEL:CHAT_ID, e.g. telegram:4242 or console:local.")]


def _user(text: str) -> tuple[str, str]:
    from bot.privacy import parse_user

    try:
        return parse_user(text)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc


@privacy_app.command("export")
def privacy_export(
    user: UserArg,
    out: Annotated[Path | None, typer.Option("--out", help="Write the JSON here (default: stdout).")] = None,
) -> None:
    """Everything kept about a user, as one JSON document (exit 1: nothing is kept)."""
    _setup_logging()
    channel, chat_id = _user(user)
    privacy = _privacy()
    try:
        data = privacy.export(channel, chat_id)
    finally:
        privacy.store.close()
    if data is None:
        typer.echo(f"nothing is kept about {user}", err=True)
        raise typer.Exit(1)
    text = json.dumps(data, ensure_ascii=False, indent=2)
    if out is None:
        typer.echo(text)
        return
    from forms.render import atomic_write

    atomic_write(out, lambda tmp: tmp.write_text(text, encoding="utf-8"))  # mkstemp: owner-only
    typer.echo(f"wrote {out}")


@privacy_app.command("delete")
def privacy_delete(
    user: UserArg,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete everything kept about a user: conversation, transcript, progress, profile,
    documents, handoff records, card agents."""
    _setup_logging()
    channel, chat_id = _user(user)
    if not yes:
        if not sys.stdin.isatty():
            typer.echo("refusing to delete without --yes when not asked at a terminal", err=True)
            raise typer.Exit(2)
        typer.confirm(f"Delete everything kept about {user}? This cannot be undone.", abort=True)
    privacy = _privacy()
    try:
        done = privacy.delete(channel, chat_id)
    finally:
        privacy.store.close()
    rows = ", ".join(f"{name} {count}" for name, count in done.rows.items() if count)
    typer.echo(f"deleted {user}: {rows or 'no rows'}; {done.files} files")


@privacy_app.command("purge")
def privacy_purge(
    days: Annotated[int | None, typer.Option(help="Retention in days (default: PORTPAL_RETENTION_DAYS).")] = None,
) -> None:
    """Delete conversations untouched for the retention period, and old delivery records."""
    from datetime import timedelta

    _setup_logging()
    keep = days if days is not None else Settings().portpal_retention_days
    if keep <= 0:
        typer.echo("retention is off (PORTPAL_RETENTION_DAYS=0): nothing purged")
        return
    privacy = _privacy()
    try:
        done = privacy.purge(timedelta(days=keep))
    finally:
        privacy.store.close()
    rows = ", ".join(f"{name} {count}" for name, count in done.rows.items() if count)
    typer.echo(f"purged data older than {keep} days: {rows or 'no rows'}; {done.files} files")


@app.command()
def stats(
    since: Annotated[
        str | None, typer.Option("--since", help="First day to count, YYYY-MM-DD (Asia/Shanghai).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False,
) -> None:
    """Questions answered, questions the manuals did not answer (with their text), how far
    companies got in each walkthrough step, handoffs."""

    from bot.stats import as_json as stats_json
    from bot.stats import collect
    from bot.store import Store
    from knowledge.loader import load_default

    day = _day(since) if since is not None else None
    store = Store(Settings().resolved_database_url())
    try:
        figures = collect(store, load_default(), day)
    finally:
        store.close()
    typer.echo(stats_json(figures) if as_json else figures.text(load_default()))
