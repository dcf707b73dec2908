"""`scim users`: list and explain provisioned dashboard users; purge for good."""

from typing import Annotated, Optional

import typer

from skilljar_scim.cli import output
from skilljar_scim.cli.context import app_context
from skilljar_scim.cli.options import JsonFlag, wants_json

app = typer.Typer(help="Inspect provisioned users, their groups and roles.", no_args_is_help=True)

UserArg = Annotated[str, typer.Argument(help="User id or userName.")]


def summary(user) -> dict:
    """Return the listing fields of a user (stable --json keys)."""
    from skilljar_scim.domain import listings as directory

    return {
        "id": user.id, "userName": user.user_name, "displayName": user.display_name, "email": user.primary_email,
        "externalId": user.external_id, "status": directory.status(user),
        "created_at": user.created_at, "updated_at": user.updated_at,
    }


@app.command("list")
def list_(
    ctx: typer.Context,
    active: Annotated[bool, typer.Option("--active", help="Only active users.")] = False,
    inactive: Annotated[bool, typer.Option("--inactive", help="Only deactivated users.")] = False,
    deprovisioned: Annotated[bool, typer.Option("--deprovisioned", help="Only deprovisioned (deleted) users.")] = False,
    role: Annotated[Optional[str], typer.Option("--role", help="Only users who hold this role.")] = None,
    group: Annotated[Optional[str], typer.Option("--group", help="Only members of this group (id or name).")] = None,
    search: Annotated[Optional[str], typer.Option("--search", help="Text in userName, name, email, or an exact id/externalId.")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", min=0, help="At most this many (tables: 100 by default).")] = None,
    json_flag: JsonFlag = False,
) -> None:
    """List users, filtered by status, role, group or text."""
    from skilljar_scim.domain import listings as directory
    from skilljar_scim.base.errors import InvalidValue

    app_context(ctx).open_store()
    states = [s for s, on in (("active", active), ("inactive", inactive), ("deprovisioned", deprovisioned)) if on]
    if len(states) > 1:
        raise InvalidValue("choose at most one of --active, --inactive, --deprovisioned")
    query = directory.user_query(states[0] if states else None, role, group, search)
    if wants_json(ctx, json_flag):
        output.emit_json_lines(directory.user_rows(query, limit))
        return
    shown = limit if limit is not None else 100
    rows = list(directory.user_rows(query, shown))
    output.table("Users", ("id", "userName", "name", "email", "status"),
                 ([r["id"], r["userName"], r["displayName"], r["email"], r["status"]] for r in rows))
    total = query.count()
    if total > len(rows):
        output.info(f"Showing {len(rows)} of {total}: use --limit N or --json for more.")


@app.command()
def show(ctx: typer.Context, ref: UserArg, json_flag: JsonFlag = False) -> None:
    """Show a user's attributes, status, groups, and each role with the group and mapping granting it."""
    from skilljar_scim.domain import listings as directory, roles, users
    import json as _json

    app_context(ctx).open_store()
    user = directory.find_user(ref)
    data = {
        **summary(user),
        "active": user.active,
        "deprovisioned_at": user.deprovisioned_at,
        "groups": [{"id": gid, "displayName": name} for gid, name in users.groups_of(user)],
        "roles": [{"role": g.role, "group": g.group_name, "group_id": g.group_id, "mapping_id": g.mapping_id}
                  for g in roles.explain(user)],
        "attributes": _json.loads(user.attributes or "{}"),
    }
    if wants_json(ctx, json_flag):
        output.emit_json(data)
        return
    keys = ("id", "userName", "displayName", "email", "externalId", "status", "created_at", "updated_at")
    output.details(f"User {user.user_name}", [(k, data[k]) for k in keys])
    output.table("Groups", ("id", "displayName"), ([g["id"], g["displayName"]] for g in data["groups"]))
    output.table("Roles (and why)", ("role", "granted by group", "mapping"),
                 ([r["role"], r["group"], f"{r['group']} -> {r['role']} (#{r['mapping_id']})"] for r in data["roles"]))
    if not data["roles"] and user.deprovisioned_at is None and not user.active:
        output.info("No roles: the user is deactivated.")


@app.command()
def purge(
    ctx: typer.Context,
    ref: UserArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Remove a deprovisioned user for good (their past events stay, anonymised)."""
    from skilljar_scim.domain import listings as directory, events, users

    app_context(ctx).open_store()
    user = users.ensure_purgeable(directory.find_user(ref))
    output.info(f"User {user.user_name!r} (id {user.id}, deprovisioned {output.when(user.deprovisioned_at)})")
    output.confirm("Purge this user for good? This cannot be undone.", yes)
    users.purge(events.CLI, user)
    output.info(f"Purged user {user.user_name!r}.")
