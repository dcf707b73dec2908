"""`scim groups`: list groups, show members and the roles a group grants."""

from typing import Annotated

import typer

from skilljar_scim.cli import output
from skilljar_scim.cli.context import app_context
from skilljar_scim.cli.options import JsonFlag, wants_json
from skilljar_scim.domain import listings

app = typer.Typer(help="Inspect groups pushed by the identity provider.", no_args_is_help=True)


@app.command("list")
def list_(ctx: typer.Context, json_flag: JsonFlag = False) -> None:
    """List groups with member counts and the roles they grant.

    Example: scim groups list --json
    """
    app_context(ctx).open_store()
    rows = ({"id": g.id, "displayName": g.display_name, "externalId": g.external_id, "member_count": g.member_count,
             "roles": listings.mapped_roles(g)} for g in listings.stream(listings.group_query()))
    if wants_json(ctx, json_flag):
        output.emit_json_list(rows)
        return
    output.table("Groups", ("id", "displayName", "members", "roles"),
                 ([r["id"], r["displayName"], r["member_count"], r["roles"]] for r in rows))


@app.command()
def show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="ID|NAME", help="Group id or displayName.")],
    page: Annotated[int, typer.Option("--page", min=1, help="Page of members to show.", show_default=True)] = 1,
    page_size: Annotated[int, typer.Option("--page-size", min=1, max=10000, help="Members per page.", show_default=True)] = 50,
    json_flag: JsonFlag = False,
) -> None:
    """Show a group, a page of its members, and the roles it grants.

    Example: scim groups show Engineering --page 2
    """
    app_context(ctx).open_store()
    group = listings.find_group(ref)
    members = listings.members(group).offset((page - 1) * page_size).limit(page_size)
    data = {
        "id": group.id, "displayName": group.display_name, "externalId": group.external_id,
        "roles": listings.mapped_roles(group), "member_count": listings.member_count(group),
        "page": page, "page_size": page_size,
        "members": [{"id": u.id, "userName": u.user_name, "status": listings.status(u)} for u in members],
    }
    if wants_json(ctx, json_flag):
        output.emit_json(data)
        return
    output.details(f"Group {group.display_name}", [(k, data[k]) for k in ("id", "displayName", "externalId", "member_count", "roles")])
    output.table(f"Members (page {page}, {page_size} per page)", ("id", "userName", "status"),
                 ([m["id"], m["userName"], m["status"]] for m in data["members"]))
