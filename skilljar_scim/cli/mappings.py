"""`scim mappings`: map IdP groups to dashboard roles, preview, export and import."""

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from skilljar_scim.cli import output
from skilljar_scim.cli.context import app_context
from skilljar_scim.cli.options import JsonFlag, wants_json

app = typer.Typer(help="Map identity-provider groups to dashboard roles.", no_args_is_help=True)

class Action(str, Enum):
    add = "add"
    remove = "remove"


GroupArg = Annotated[str, typer.Argument(help="Group displayName as the IdP pushes it (case-insensitive).")]
RoleArg = Annotated[str, typer.Argument(help="Dashboard role (see `scim roles list`).")]


def _report(ctx: typer.Context, outcome, json_flag: bool, preview: bool = False) -> None:
    """Print what changed: mappings added/removed and who gained or lost which role."""
    data = {
        "added": [{"group": g, "role": r} for g, r in outcome.added],
        "removed": [{"group": g, "role": r} for g, r in outcome.removed],
        "changes": [{"user_id": c.user_id, "userName": c.user_name, "role": c.role, "change": c.change}
                    for c in outcome.changes],
    }
    if wants_json(ctx, json_flag):
        output.emit_json(data)
        return
    for verb, key in (("add", "added"), ("remove", "removed")):
        for item in data[key]:
            said = f"Would {verb}" if preview else key.capitalize()
            output.info(f"{said} mapping {item['group']!r} -> {item['role']}.")
    if data["changes"]:
        output.table("Role changes", ("userName", "role", "change"),
                     ([c["userName"], c["role"], c["change"]] for c in data["changes"]))
    elif outcome.changed:
        output.info("No user gains or loses a role.")


@app.command()
def add(ctx: typer.Context, group: GroupArg, role: RoleArg, json_flag: JsonFlag = False) -> None:
    """Map a group to a role (a no-op if it is already mapped)."""
    from skilljar_scim.domain import events, roles

    actx = app_context(ctx)
    actx.open_store()
    outcome = roles.add_mapping(events.CLI, group, role, actx.settings().roles.catalog)
    if not outcome.changed and not wants_json(ctx, json_flag):
        output.info(f"Mapping {group!r} -> {role} already exists: nothing changed.")
    _report(ctx, outcome, json_flag)


@app.command()
def remove(ctx: typer.Context, group: GroupArg, role: RoleArg, json_flag: JsonFlag = False) -> None:
    """Remove a group-to-role mapping (a no-op if there is none)."""
    from skilljar_scim.domain import events, roles

    app_context(ctx).open_store()
    outcome = roles.remove_mapping(events.CLI, group, role)
    if not outcome.changed and not wants_json(ctx, json_flag):
        output.info(f"No mapping {group!r} -> {role}: nothing changed.")
    _report(ctx, outcome, json_flag)


@app.command("list")
def list_(ctx: typer.Context, json_flag: JsonFlag = False) -> None:
    """List mappings, the group each matches now, and its member count."""
    from skilljar_scim.domain import roles

    app_context(ctx).open_store()
    rows = roles.list_mappings()
    if wants_json(ctx, json_flag):
        output.emit_json(rows)
        return
    output.table("Group-to-role mappings", ("group", "role", "group id", "members", "created"),
                 ([r["group"], r["role"], r["group_id"] or "(not pushed yet)", r["members"], r["created_at"]] for r in rows))


@app.command()
def plan(
    ctx: typer.Context,
    action: Annotated[Action, typer.Argument(help="add or remove.")],
    group: GroupArg,
    role: RoleArg,
    json_flag: JsonFlag = False,
) -> None:
    """Preview who would gain or lose which role, without changing anything."""
    from skilljar_scim.domain import events, roles

    actx = app_context(ctx)
    actx.open_store()
    if action is Action.add:
        outcome = roles.add_mapping(events.CLI, group, role, actx.settings().roles.catalog, preview=True)
    else:
        outcome = roles.remove_mapping(events.CLI, group, role, preview=True)
    _report(ctx, outcome, json_flag, preview=True)


@app.command()
def export(
    ctx: typer.Context,
    fmt: Annotated[str, typer.Option("--format", help="toml or json.")] = "toml",
) -> None:
    """Print every mapping as TOML or JSON, for version control."""
    from skilljar_scim.domain import roles

    app_context(ctx).open_store()
    typer.echo(roles.export(_format(fmt)), nl=False)


@app.command("import")
def import_(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A file made by `scim mappings export`.")],
    replace: Annotated[bool, typer.Option("--replace", help="Also remove mappings the file does not list.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would change; change nothing.")] = False,
    fmt: Annotated[Optional[str], typer.Option("--format", help="toml or json (default: from the file name).")] = None,
    json_flag: JsonFlag = False,
) -> None:
    """Apply a mapping file all-or-nothing; report what was added and removed."""
    from skilljar_scim.domain import events, roles

    actx = app_context(ctx)
    pairs = roles.parse_mappings(_read(file), _format(fmt or file.suffix.lstrip(".") or "toml"),
                                 actx.settings().roles.catalog)
    actx.open_store()
    outcome = roles.import_mappings(events.CLI, pairs, replace, preview=dry_run)
    if not outcome.changed and not wants_json(ctx, json_flag):
        output.info("Mappings already match the file: nothing changed.")
    _report(ctx, outcome, json_flag, preview=dry_run)


def _format(fmt: str) -> str:
    from skilljar_scim.base.errors import InvalidValue

    if fmt.lower() not in ("toml", "json"):
        raise InvalidValue(f"format must be toml or json, not {fmt!r}")
    return fmt.lower()


def _read(file: Path) -> str:
    from skilljar_scim.base.errors import InvalidValue

    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidValue(f"cannot read {file}: {exc}") from None
