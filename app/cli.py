"""The `dunwell` command: a Flask CLI group (the app's own commands are app/commands.py)."""

from __future__ import annotations

import sys

import click
from flask import Flask
from flask.cli import FlaskGroup, NoAppException

from app import create_app
from app.demo import run_demo
from app.fees_cli import fees_group


def _create_app() -> Flask:
    """The app from the environment; a missing setting is one line on stderr, not a traceback."""
    try:
        return create_app()
    except RuntimeError as exc:
        raise NoAppException(str(exc)) from exc


cli = FlaskGroup(create_app=_create_app, add_default_commands=False,
                 help="Dunwell: collections for QuickBooks Online and Xero.")


def main() -> None:
    cli(prog_name="dunwell")


@cli.command("demo", with_appcontext=False,
             help="Run everything locally: sandbox, web, worker (Ctrl-C stops all).")
@click.option("--port", default=5000, type=int)
@click.option("--sandbox-port", default=5055, type=int)
def demo_command(port: int, sandbox_port: int) -> None:
    sys.exit(run_demo(port=port, sandbox_port=sandbox_port))


# The calculator needs no app or database: it works before anything is configured.
cli.add_command(fees_group)


if __name__ == "__main__":
    main()
