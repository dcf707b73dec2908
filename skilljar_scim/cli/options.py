"""Options shared by many commands."""

from __future__ import annotations

from typing import Annotated

import typer

from skilljar_scim.cli.context import app_context

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON (stable keys) for scripts.")]


def wants_json(ctx: typer.Context, flag: bool) -> bool:
    """Return True when this command's --json or the root --json was given."""
    return flag or app_context(ctx).json
