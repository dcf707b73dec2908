"""Render for people (rich tables, panels) or scripts (JSON); errors become exit codes."""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime
from typing import Any, Iterable, Sequence

import typer
from typer.core import TyperGroup

from skilljar_scim.base import clock
from skilljar_scim.base.errors import Aborted, ExitCode, SkilljarError

log = logging.getLogger("skilljar_scim.cli")


def console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=False)


def emit_json(data: Any) -> None:
    """Print `data` as JSON on stdout (nothing else goes to stdout in --json mode)."""
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return clock.iso(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Print a rich table with one row per item."""
    from rich.table import Table

    grid = Table(title=title, title_justify="left")
    for index, column in enumerate(columns):
        # The first column is an identifier people copy: never wrap it.
        grid.add_column(column, overflow="fold", no_wrap=index == 0)
    for row in rows:
        grid.add_row(*(_cell(value) for value in row))
    console().print(grid)


def details(title: str, pairs: Iterable[tuple[str, Any]]) -> None:
    """Print key/value pairs as a two-column table."""
    table(title, ("field", "value"), pairs)


def panel(text: str, title: str, style: str = "yellow") -> None:
    from rich.panel import Panel

    console().print(Panel(text, title=title, border_style=style, expand=False))


def info(message: str) -> None:
    """Print a diagnostic line on stderr (stdout stays clean for data)."""
    typer.echo(message, err=True)


def confirm(question: str, yes: bool) -> None:
    """Ask `question` unless `yes`; raise Aborted on no (or when there is nobody to ask)."""
    if yes:
        return
    if not typer.confirm(question, default=False, err=True):
        raise Aborted("aborted: nothing was changed")


def when(moment: datetime | None, empty: str = "never") -> str:
    """Format a stored UTC time for a table."""
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else empty


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return when(value)
    from rich.markup import escape

    return escape(str(value))


def fail(message: str, code: int) -> None:
    """Print `Error: <one line>` on stderr and exit with `code`."""
    line = " ".join(str(message).split())
    typer.echo(f"Error: {line}", err=True)
    sys.exit(int(code))


class ErrorTranslatingGroup(TyperGroup):
    """Root command group: the one place where errors become a message and an exit code."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SkilljarError as exc:
            fail(exc.detail, exc.exit_code)
        except typer.Abort:
            fail("aborted: nothing was changed", ExitCode.ABORTED)
        except typer.Exit:
            raise
        except typer.exceptions.TyperException as exc:
            fail(*_usage(exc))
        except Exception as exc:  # noqa: BLE001 - last line of defence: no tracebacks for users
            fail(*_unexpected(exc))


def _usage(exc: Exception) -> tuple[str, int]:
    """Turn a usage error (bad flag or argument) into one line that names the help to read."""
    message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
    context = getattr(exc, "ctx", None)
    hint = f" (see `{context.command_path} --help`)" if context is not None else ""
    return message + hint, getattr(exc, "exit_code", ExitCode.USAGE)


def _unexpected(exc: Exception) -> tuple[str, int]:
    import peewee

    if isinstance(exc, peewee.DatabaseError):
        return f"database error: {exc}", ExitCode.DATABASE
    log.debug("unexpected error", exc_info=True)
    return f"unexpected {type(exc).__name__}: {exc}", ExitCode.ERROR


def emit_json_lines(items) -> None:
    """Print a JSON array item by item, so a long listing is never held in memory.

    Items go out 500 at a time: one echo (a write and a flush) per item cost more than the
    rest of `scim users list --json` on a large store (README "Performance").
    """
    encode = json.JSONEncoder(ensure_ascii=False, default=_json_default).encode
    chunk = ["["]
    for index, item in enumerate(items):
        chunk.append(("," if index else "") + "\n  " + encode(item))
        if len(chunk) >= 500:
            typer.echo("".join(chunk), nl=False)
            chunk = []
    chunk.append("\n]")
    typer.echo("".join(chunk))
