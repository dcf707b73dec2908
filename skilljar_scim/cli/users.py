"""`scim users`: list and explain provisioned dashboard users; purge for good."""

import json
from typing import Annotated, Optional

import typer

from skilljar_scim.base.errors import InvalidValue
from skilljar_scim.cli import output
from skilljar_scim.cli.context import app_context
from skilljar_scim.cli.options import JsonFlag, wants_json
from skilljar_scim.domain import events, listings, roles, users

app = typer.Typer(help="Inspect provisioned users, their groups and roles.", no_args_is_help=True)

UserArg = Annotated[str, typer.Argument(metavar="ID|USERNAME", help="User id or userName.")]
TABLE_ROWS = 100


def summary(user) -> dict:
    """Return the listing fields of a user (stable --json keys)."""
    return {
        "id": user.id, "userName": user.user_name, "displayName": user.display_name, "email": user.primary_email,
        "externalId": user.external_id, "status": listings.status(user),
        "created_at": user.created_at, "updated_at": user.updated_at,
    }


@app.command("list")
def list_(
    ctx: typer.Context,
    active: Annotated[bool, typer.Option("--active", help="Only active users.")] = False,
    inactive: Annotated[bool, typer.Option("--inactive", help="Only deactivated users.")] = False,
    deprovisioned: Annotated[bool, typer.Option("--deprovisioned", help="Only deprovisioned (deleted) users.")] = False,
    role: Annotated[Optional[str], typer.Option("--role", help="Only users who hold this role (see `scim roles list`).")] = None,
    group: Annotated[Optional[str], typer.Option("--group", help="Only members of this group (id or displayName).")] = None,
    search: Annotated[Optional[str], typer.Option("--search", help="Text in userName, name, email, or an exact id/externalId.")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", min=0, help=f"At most this many (default: {TABLE_ROWS} in a table, every match with --json).")] = None,
    json_flag: JsonFlag = False,
) -> None:
    """List users, filtered by status, role, group or text, ordered by userName.

    Example: scim users list --role api-admin --json
    """
    app_context(ctx).open_store()
    states = [s for s, on in (("active", active), ("inactive", inactive), ("deprovisioned", deprovisioned)) if on]
    if len(states) > 1:
        raise InvalidValue("choose at most one of --active, --inactive, --deprovisioned")
    catalog = app_context(ctx).settings().roles.catalog
    query = listings.user_query(states[0] if states else None, role, group, search, roles.known_roles(catalog))
    if wants_json(ctx, json_flag):
        with output.working("Listing users", streaming=True):
            output.emit_json_list(listings.user_rows(query, limit))
        return
    with output.working("Listing users"):
        rows = list(listings.user_rows(query, limit if limit is not None else TABLE_ROWS))
        total = query.count()
    output.table("Users", ("id", "userName", "name", "email", "status"),
                 ([r["id"], r["userName"], r["displayName"], r["email"], r["status"]] for r in rows))
    if total > len(rows):
        output.info(f"Showing {len(rows)} of {total}: use --limit N or --json for more.")


@app.command()
def show(ctx: typer.Context, ref: UserArg, json_flag: JsonFlag = False) -> None:
    """Show a user's attributes, status, groups, and each role with the group and mapping granting it.

    Example: scim users show alice@example.com
    """
    app_context(ctx).open_store()
    user = listings.find_user(ref)
    grants = roles.explain(user)
    data = {
        **summary(user),
        "active": user.active,
        "deprovisioned_at": user.deprovisioned_at,
        "groups": [{"id": gid, "displayName": name} for gid, name in users.groups_of(user)],
        "roles": sorted({g.role for g in grants}),
        "grants": [{"role": g.role, "group": g.group_name, "group_id": g.group_id, "mapping_id": g.mapping_id}
                   for g in grants],
        "attributes": json.loads(user.attributes or "{}"),
    }
    if wants_json(ctx, json_flag):
        output.emit_json(data)
        return
    keys = ("id", "userName", "displayName", "email", "externalId", "status", "created_at", "updated_at")
    output.details(f"User {user.user_name}", [(k, data[k]) for k in keys])
    output.table("Groups", ("id", "displayName"), ([g["id"], g["displayName"]] for g in data["groups"]))
    output.table("Roles (and why)", ("role", "granted by group", "mapping"),
                 ([g["role"], g["group"], f"#{g['mapping_id']}"] for g in data["grants"]))
    if not grants and user.deprovisioned_at is None and not user.active:
        output.info("No roles: the user is deactivated.")


@app.command()
def purge(
    ctx: typer.Context,
    ref: UserArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Remove a deprovisioned user for good (their past events stay, anonymised).

    Example: scim users purge former@example.com --yes
    """
    app_context(ctx).open_store()
    user = users.ensure_purgeable(listings.find_user(ref))
    output.info(f"User {output.quoted(user.user_name)} (id {user.id}, deprovisioned {output.when(user.deprovisioned_at)})")
    output.confirm("Purge this user for good? This cannot be undone.", yes)
    users.purge(events.CLI, user)
    output.info(f"Purged user {output.quoted(user.user_name)}.")
