"""`scim events`: the provisioning and audit trail."""

from typing import Annotated, Optional

import typer

from skilljar_scim.cli import output
from skilljar_scim.cli.context import app_context
from skilljar_scim.cli.options import JsonFlag, wants_json

app = typer.Typer(help="Read the provisioning and audit trail.", no_args_is_help=True)


@app.command("list")
def list_(
    ctx: typer.Context,
    user: Annotated[Optional[str], typer.Option("--user", help="User id or userName.")] = None,
    group: Annotated[Optional[str], typer.Option("--group", help="Group id or displayName.")] = None,
    token: Annotated[Optional[str], typer.Option("--token", help="Token id or name.")] = None,
    action: Annotated[Optional[str], typer.Option("--action", help="e.g. user.created, role.granted.")] = None,
    since: Annotated[Optional[str], typer.Option("--since", help="ISO date or time (UTC).")] = None,
    limit: Annotated[int, typer.Option("--limit", min=0, help="Newest N events.")] = 50,
    json_flag: JsonFlag = False,
) -> None:
    """List events, newest first."""
    from skilljar_scim.base import clock
    from skilljar_scim.domain import listings as directory, events, tokens
    from skilljar_scim.base.errors import InvalidValue

    app_context(ctx).open_store()
    try:
        since_at = clock.parse_iso(since) if since else None
    except ValueError:
        raise InvalidValue(f"--since must be an ISO date or time, not {since!r}") from None
    found = events.query(
        user_id=directory.find_user(user).id if user else None,
        group_id=directory.find_group(group).id if group else None,
        token_id=tokens.find(token).id if token else None,
        action=action, since=since_at, limit=limit,
    )
    rows = [events.as_dict(e) for e in found]
    if wants_json(ctx, json_flag):
        output.emit_json(rows)
        return
    output.table("Events (newest first)", ("id", "at", "actor", "action", "resource", "summary"),
                 ([r["id"], r["at"], r["actor"], r["action"], f"{r['resource_type'] or ''} {r['resource_id'] or ''}".strip(),
                   _short(r["summary"])] for r in rows))


def _short(summary) -> str:
    if isinstance(summary, dict):
        return ", ".join(f"{k}={v}" for k, v in summary.items())
    return str(summary)
