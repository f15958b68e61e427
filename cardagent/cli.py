"""The ``portpal-agent`` command.

``status`` (readers and cards once, no pairing needed) is what the help desk asks for
first. Pairing, ``run`` and ``unpair`` are not built yet: those commands say so rather
than pretend to work.
"""

from __future__ import annotations

import json
from dataclasses import asdict

import typer

__all__ = ["app", "main"]

app = typer.Typer(
    help="PortPal card agent: reports smart-card reader and card status to the bot.",
    no_args_is_help=True,
    add_completion=False,
)

_NO_SERVICE_HINT = (
    "请启动智能卡服务：Windows 为“Smart Card”服务（services.msc），"
    "Linux 为 pcscd（sudo systemctl start pcscd.socket），macOS 自带（请重新插拔读卡器）。"
)


@app.command()
def status(as_json: bool = typer.Option(False, "--json", help="One JSON object instead of text.")) -> None:
    """Show the smart-card readers this PC sees and whether a card is in each (no pairing needed).

    Exit status 0 when the smart-card service answers, 1 when it does not.
    """
    from cardagent.monitor import snapshot

    now = snapshot()
    if as_json:
        typer.echo(json.dumps(asdict(now), ensure_ascii=False))
    elif not now.service:
        typer.echo(f"智能卡服务不可用：{now.error}\n{_NO_SERVICE_HINT}")
    elif not now.readers:
        typer.echo("智能卡服务：正常\n未检测到读卡器：请检查读卡器（或 UKey）是否插好、驱动是否已安装。")
    else:
        lines = ["智能卡服务：正常", "读卡器："]
        for reader in now.readers:
            state = f"已插卡（ATR {reader.atr}）" if reader.card else "未插卡"
            lines.append(f"  {reader.name}：{state}")
        typer.echo("\n".join(lines))
    raise typer.Exit(0 if now.service else 1)


def _not_built(command: str) -> None:
    typer.echo(f"portpal-agent {command}: not available in this version yet (pairing is being built).", err=True)
    raise typer.Exit(2)


@app.command()
def pair(code: str, server: str = typer.Option("http://127.0.0.1:8080", help="The bot's address.")) -> None:
    """Pair this PC with a chat using the code /pair showed (not built yet)."""
    _not_built("pair")


@app.command()
def run() -> None:
    """Report reader and card changes to the paired bot until stopped (not built yet)."""
    _not_built("run")


@app.command()
def unpair() -> None:
    """Revoke this PC's pairing (not built yet)."""
    _not_built("unpair")


def main() -> None:
    app()
