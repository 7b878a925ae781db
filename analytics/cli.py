"""The ``python -m analytics`` command line.

Every command reports bad input as a one-line message on stderr and a non-zero
exit status, never a traceback.
"""

from __future__ import annotations

import sys
from typing import NoReturn

import typer

from analytics import db

__all__ = ["app", "main", "fail"]

app = typer.Typer(
    name="analytics",
    help="Lookout: Trust & Safety trend analytics. Database set-up, demo data, import.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Lookout: Trust & Safety trend analytics. The database URL comes from LOOKOUT_DATABASE_URL."""


def fail(message: str, code: int = 2) -> NoReturn:
    """Print a one-line error to stderr and exit non-zero."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@app.command("init-db")
def init_db_cmd() -> None:
    """Create the schema in the configured database (idempotent)."""
    url = db.database_url()
    try:
        created = db.init_db(db.make_engine(url))
    except Exception as exc:  # noqa: BLE001 - reported as one line
        fail(f"cannot initialise {db.safe_url(url)}: {type(exc).__name__}: {_first_line(exc)}")
    if created:
        typer.echo(f"created tables: {', '.join(created)} in {db.safe_url(url)}")
    else:
        typer.echo(f"schema up to date in {db.safe_url(url)}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else ""


def main() -> None:
    """Run the CLI; unexpected errors become a one-line message."""
    try:
        app()
    except SystemExit:
        raise
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the last line of defence against tracebacks
        typer.echo(f"error: {type(exc).__name__}: {_first_line(exc)}", err=True)
        sys.exit(1)
