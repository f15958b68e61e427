"""The ``portpal-agent`` command.

The card agent (reader and card status over PC/SC, pairing, signed reports) is not built
yet; until it is, the command says so instead of pretending to work.
"""

from __future__ import annotations

import typer

__all__ = ["app", "main"]

app = typer.Typer(help="PortPal card agent: reports smart-card reader and card status to the bot.")


@app.callback(invoke_without_command=True)
def _root(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None:
        typer.echo("portpal-agent: the card agent is not available in this version yet.", err=True)
        raise typer.Exit(2)


def main() -> None:
    app()
