"""`scim events`: the provisioning and audit trail."""

import itertools
import json
import time
from typing import Annotated, Optional

import typer

from skilljar_scim.base import clock
from skilljar_scim.base.errors import InvalidValue
from skilljar_scim.cli import output
from skilljar_scim.cli.context import app_context
from skilljar_scim.cli.options import JsonFlag, wants_json
from skilljar_scim.domain import events, feed, listings, tokens

app = typer.Typer(help="Read the provisioning and audit trail.", no_args_is_help=True)

# Summary keys whose value is a user id: shown as the userName when the user still exists.
USER_ID_KEYS = ("user", "user_id")
_SUBJECT_KEYS = ("userName", "displayName", "group", "name", "id")  # what a tail line names a resource by


@app.command("list")
def list_(
    ctx: typer.Context,
    user: Annotated[Optional[str], typer.Option("--user", help="User id or userName.")] = None,
    group: Annotated[Optional[str], typer.Option("--group", help="Group id or displayName.")] = None,
    token: Annotated[Optional[str], typer.Option("--token", help="Token id or name.")] = None,
    action: Annotated[Optional[str], typer.Option("--action", help="One action, e.g. user.created or role.granted (README lists them).")] = None,
    since: Annotated[Optional[str], typer.Option("--since", metavar="WHEN", help="Events from this moment: a duration ago (30m, 1h, 7d, 2w) or an ISO date or time (UTC).")] = None,
    limit: Annotated[int, typer.Option("--limit", min=0, help="Newest N events.", show_default=True)] = 50,
    json_flag: JsonFlag = False,
) -> None:
    """List events, newest first.

    Example: scim events list --user alice@example.com --since 7d
    """
    app_context(ctx).open_store()
    found = events.query(
        user_id=listings.filter_user(user).id if user else None,
        group_id=listings.filter_group(group).id if group else None,
        token_id=tokens.find(token).id if token else None,
        action=action, since=_since(since), limit=limit,
    )
    rows = [events.as_dict(e) for e in found]
    if wants_json(ctx, json_flag):
        output.emit_json_list(rows)
        return
    names = _names(rows)
    output.table("Events (newest first)", ("id", "at", "actor", "action", "resource", "summary"),
                 ([r["id"], r["at"], r["actor"], r["action"], _resource(r, names), _summary(r["summary"], names)]
                  for r in rows))


def _since(text: str | None):
    if not text:
        return None
    try:
        return clock.parse_since(text)
    except ValueError:
        raise InvalidValue(f"--since must be a duration (30m, 1h, 7d, 2w) or an ISO date or time, not {text!r}") from None


def _names(rows: list[dict]) -> dict[str, str]:
    """Return the current name of every user and group the rows mention by id."""
    users = [r["resource_id"] for r in rows if r["resource_type"] == "User"]
    users += [r["summary"][k] for r in rows if isinstance(r["summary"], dict) for k in USER_ID_KEYS if k in r["summary"]]
    groups = [r["resource_id"] for r in rows if r["resource_type"] == "Group"]
    return listings.names([u for u in users if isinstance(u, str)], [g for g in groups if g])


def _resource(row: dict, names: dict[str, str]) -> str:
    """Say what an event is about: its kind and, where known, its name rather than its id."""
    kind, rid = row["resource_type"] or "", row["resource_id"] or ""
    return f"{kind} {output.shown(names.get(rid, rid))}".strip()


def _summary(summary, names: dict[str, str]) -> str:
    """Render a summary as `key: value` pairs people read (lists joined, yes/no, names for ids)."""
    if not isinstance(summary, dict):
        return output.shown(summary)
    return "; ".join(f"{key}: {output.shown(names.get(value, value) if key in USER_ID_KEYS and isinstance(value, str) else value)}"
                     for key, value in summary.items())


@app.command()
def tail(
    ctx: typer.Context,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing events as they are recorded "
                                                                "(Ctrl-C stops).")] = False,
    types: Annotated[Optional[str], typer.Option(
        "--types", help="Comma-separated event types, e.g. user.created,role.granted (default: all but token.*).")] = None,
    lines: Annotated[int, typer.Option("--lines", "-n", min=0, help="How many recent events to print first.")] = 10,
    interval: Annotated[float, typer.Option("--interval", min=0.05, max=60.0,
                                            help="Seconds between looks at the store with --follow.")] = 0.5,
    max_events: Annotated[Optional[int], typer.Option("--max-events", min=1, help="Stop after printing this many "
                                                                                  "events (scripts).")] = None,
    json_flag: JsonFlag = False,
) -> None:
    """Print the latest events, oldest first; with --follow, stream new ones as they are recorded.

    Example: scim events tail --follow --types user.created,role.granted
    """
    chosen = feed.parse_types(types)
    app_context(ctx).open_store()
    recent = feed.latest(lines, chosen)
    later = feed.follow(recent.next, chosen, lambda: time.sleep(interval)) if follow else ()
    stream = itertools.chain(recent.data, later)
    show = _json_line if wants_json(ctx, json_flag) else _text_line
    try:
        for item in itertools.islice(stream, max_events):
            typer.echo(show(item))
    except KeyboardInterrupt:  # the way to stop --follow: a quiet, successful end
        return


def _json_line(item: dict) -> str:
    return json.dumps(item, ensure_ascii=False, separators=(",", ":"))


def _text_line(item: dict) -> str:
    """Return `time  type  subject  detail` for people; control characters are shown escaped."""
    data = item["data"]
    subject = next((data[k] for k in _SUBJECT_KEYS if isinstance(data.get(k), str) and data[k]), "")
    change = data.get("change") or {}
    detail = (change.get("role") or (change.get("group") or {}).get("displayName") or data.get("role")
              or data.get("state") or "")
    return "  ".join(output.shown(str(part)) for part in (item["created_at"], f"{item['type']:<18}", subject, detail))
