"""`scim groups`: list groups, show members and the roles a group grants."""

from typing import Annotated

import typer

from skilljar_scim.cli import output
from skilljar_scim.cli.context import app_context
from skilljar_scim.cli.options import JsonFlag, wants_json

app = typer.Typer(help="Inspect groups pushed by the identity provider.", no_args_is_help=True)


@app.command("list")
def list_(ctx: typer.Context, json_flag: JsonFlag = False) -> None:
    """List groups with member counts and the roles they grant."""
    from skilljar_scim.domain import listings as directory

    app_context(ctx).open_store()
    rows = ({"id": g.id, "displayName": g.display_name, "externalId": g.external_id, "members": g.member_count,
             "roles": directory.mapped_roles(g)} for g in directory.stream(directory.group_query()))
    if wants_json(ctx, json_flag):
        output.emit_json_lines(rows)
        return
    output.table("Groups", ("id", "displayName", "members", "roles"),
                 ([r["id"], r["displayName"], r["members"], ", ".join(r["roles"]) or "-"] for r in rows))


@app.command()
def show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="Group id or displayName.")],
    page: Annotated[int, typer.Option("--page", min=1, help="Page of members to show.")] = 1,
    page_size: Annotated[int, typer.Option("--page-size", min=1, max=10000, help="Members per page.")] = 50,
    json_flag: JsonFlag = False,
) -> None:
    """Show a group, a page of its members, and the roles it grants."""
    from skilljar_scim.domain import listings as directory

    app_context(ctx).open_store()
    group = directory.find_group(ref)
    members = directory.members(group).offset((page - 1) * page_size).limit(page_size)
    data = {
        "id": group.id, "displayName": group.display_name, "externalId": group.external_id,
        "roles": directory.mapped_roles(group), "member_count": directory.member_count(group),
        "page": page, "page_size": page_size,
        "members": [{"id": u.id, "userName": u.user_name, "status": directory.status(u)} for u in members],
    }
    if wants_json(ctx, json_flag):
        output.emit_json(data)
        return
    output.details(f"Group {group.display_name}", [(k, data[k]) for k in ("id", "displayName", "externalId", "member_count")]
                   + [("roles", ", ".join(data["roles"]) or "-")])
    output.table(f"Members (page {page}, {page_size} per page)", ("id", "userName", "status"),
                 ([m["id"], m["userName"], m["status"]] for m in data["members"]))
