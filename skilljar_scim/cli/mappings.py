"""`scim mappings`: map IdP groups to dashboard roles, preview, export and import."""

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from skilljar_scim.base.errors import InvalidValue
from skilljar_scim.cli import output
from skilljar_scim.cli.context import app_context
from skilljar_scim.cli.options import JsonFlag, wants_json
from skilljar_scim.domain import events, roles

app = typer.Typer(help="Map identity-provider groups to dashboard roles.", no_args_is_help=True)


class Action(str, Enum):
    add = "add"
    remove = "remove"


GroupArg = Annotated[str, typer.Argument(metavar="GROUP", help="Group displayName as the IdP pushes it (case-insensitive).")]
RoleArg = Annotated[str, typer.Argument(metavar="ROLE", help="Dashboard role (see `scim roles list`).")]
NOT_IN_CATALOG = "not in [roles.catalog]: still granted"


def _report(ctx: typer.Context, outcome, json_flag: bool, dry_run: bool = False, limit: int | None = None) -> None:
    """Print what changed (or would): counts first, then each role change sorted by userName."""
    changes = outcome.changes
    data = {
        "dry_run": dry_run,
        "added": [{"group": g, "role": r} for g, r in outcome.added],
        "removed": [{"group": g, "role": r} for g, r in outcome.removed],
        **_change_rows(changes, limit),
    }
    if wants_json(ctx, json_flag):
        output.emit_json(data)
        return
    _say_counts(data, outcome.changed, dry_run)
    _print_changes(data, len(changes))


def _print_changes(data: dict, total: int) -> None:
    if data["changes"]:
        output.table("Role changes", ("userName", "role", "change"),
                     ([c["userName"], c["role"], c["change"]] for c in data["changes"]))
    if len(data["changes"]) < total:
        output.info(f"Showing {len(data['changes'])} of {total} role changes: use --limit N or --json for more.")


def _change_rows(changes, limit: int | None = None) -> dict:
    """Return the role-change part of a report: counts, then each change sorted by userName."""
    ordered = sorted(changes, key=lambda c: (c.user_name.casefold(), c.role, c.change))
    return {"gains": sum(c.change == "gain" for c in ordered), "losses": sum(c.change == "lose" for c in ordered),
            "changes": [{"user_id": c.user_id, "userName": c.user_name, "role": c.role, "change": c.change}
                        for c in ordered[:limit]]}


def _say_counts(data: dict, changed: bool, dry_run: bool) -> None:
    for verb, key in (("add", "added"), ("remove", "removed")):
        for item in data[key]:
            said = f"Would {verb}" if dry_run else key.capitalize()
            output.info(f"{said} mapping {output.quoted(item['group'])} -> {output.shown(item['role'])}.")
    if changed or data["gains"] or data["losses"]:
        counts = f"{data['gains']} role(s) and {'revoke' if dry_run else 'revoked'} {data['losses']}."
        output.info(f"Would grant {counts}" if dry_run else f"Granted {counts}")


@app.command()
def add(ctx: typer.Context, group: GroupArg, role: RoleArg, json_flag: JsonFlag = False) -> None:
    """Map a group to a role (a no-op if it is already mapped).

    Example: scim mappings add Engineering api-admin
    """
    actx = app_context(ctx)
    actx.open_store()
    outcome = roles.add_mapping(events.CLI, group, role, actx.settings().roles.catalog)
    if not outcome.changed and not wants_json(ctx, json_flag):
        output.info(f"Mapping {output.quoted(group)} -> {output.shown(role)} already exists: nothing changed.")
    _report(ctx, outcome, json_flag)


@app.command()
def remove(ctx: typer.Context, group: GroupArg, role: RoleArg, json_flag: JsonFlag = False) -> None:
    """Remove a group-to-role mapping (a no-op if there is none).

    Example: scim mappings remove Engineering api-admin
    """
    app_context(ctx).open_store()
    outcome = roles.remove_mapping(events.CLI, group, role)
    if not outcome.changed and not wants_json(ctx, json_flag):
        output.info(f"No mapping {output.quoted(group)} -> {output.shown(role)}: nothing changed.")
    _report(ctx, outcome, json_flag)


@app.command("list")
def list_(ctx: typer.Context, json_flag: JsonFlag = False) -> None:
    """List mappings, the group each is pinned to, its member count and status, and roles missing from the catalog.

    Example: scim mappings list --json
    """
    actx = app_context(ctx)
    actx.open_store()
    rows = roles.list_mappings(actx.settings().roles.catalog)
    if wants_json(ctx, json_flag):
        output.emit_json_list(rows)
        return
    output.table("Group-to-role mappings", ("group", "role", "pinned to", "members", "status", "created", "note"),
                 ([r["group"], r["role"], _pinned(r), r["member_count"], r["status"], r["created_at"], _note(r)]
                  for r in rows))


def _pinned(row: dict) -> str:
    if row["group_id"] is None:
        return "(not pushed yet)"
    return f"{row['pinned_group']} ({row['group_id']})" if row["pinned_group"] else f"(deleted) {row['group_id']}"


def _note(row: dict) -> str:
    notes = [] if row["in_catalog"] else [NOT_IN_CATALOG]
    if row["conflict_group_id"]:
        notes.append(f"group {row['conflict_group_id']} has this name now and gets nothing: "
                     "`scim mappings rebind` to move the roles to it")
    return "; ".join(notes)


@app.command()
def rebind(
    ctx: typer.Context,
    group: GroupArg,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would change; change nothing.")] = False,
    json_flag: JsonFlag = False,
) -> None:
    """Pin every mapping of GROUP to the group that has that name now (its roles move to it).

    A mapping stays pinned to the group that first matched it; after that group is deleted or
    renamed, another group of the same name gets nothing until you rebind.

    Example: scim mappings rebind "Hx Admins" --dry-run
    """
    app_context(ctx).open_store()
    outcome = roles.rebind(events.CLI, group, preview=dry_run)
    data = {"dry_run": dry_run, "rebound": [{"group": g, "role": r} for g, r in outcome.rebound],
            **_change_rows(outcome.changes)}
    if wants_json(ctx, json_flag):
        output.emit_json(data)
        return
    for item in data["rebound"]:
        said = "Would rebind" if dry_run else "Rebound"
        output.info(f"{said} mapping {output.quoted(item['group'])} -> {output.shown(item['role'])}.")
    if not outcome.rebound:
        output.info(f"Every mapping of {output.quoted(group)} is pinned to that group already: nothing changed.")
    _say_counts({**data, "added": [], "removed": []}, outcome.changed, dry_run)
    _print_changes(data, len(outcome.changes))


@app.command()
def plan(
    ctx: typer.Context,
    action: Annotated[Action, typer.Argument(metavar="add|remove", help="add or remove.")],
    group: GroupArg,
    role: RoleArg,
    limit: Annotated[Optional[int], typer.Option("--limit", min=0, help="List at most N role changes (default: all); the counts cover all.")] = None,
    json_flag: JsonFlag = False,
) -> None:
    """Preview who would gain or lose which role, without changing anything.

    Prints the counts first, then the changes sorted by userName.

    Example: scim mappings plan add Engineering api-admin --limit 20
    """
    actx = app_context(ctx)
    actx.open_store()
    with output.working("Computing role changes"):
        if action is Action.add:
            outcome = roles.add_mapping(events.CLI, group, role, actx.settings().roles.catalog, preview=True)
        else:
            outcome = roles.remove_mapping(events.CLI, group, role, preview=True)
    _report(ctx, outcome, json_flag, dry_run=True, limit=limit)


@app.command()
def export(
    ctx: typer.Context,
    fmt: Annotated[Optional[str], typer.Option("--format", metavar="toml|json", help="File format (default: toml; json with --json).")] = None,
    json_flag: JsonFlag = False,
) -> None:
    """Print every mapping as TOML or JSON, for version control (`scim mappings import` reads it).

    Example: scim mappings export > mappings.toml
    """
    app_context(ctx).open_store()
    chosen = _format(fmt or ("json" if wants_json(ctx, json_flag) else "toml"))
    if wants_json(ctx, json_flag) and chosen != "json":
        raise InvalidValue("--json prints JSON: drop --format toml, or drop --json")
    typer.echo(roles.export(chosen), nl=False)


@app.command("import")
def import_(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(metavar="FILE", help="A file made by `scim mappings export`.")],
    replace: Annotated[bool, typer.Option("--replace", help="Also remove mappings the file does not list.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would change; change nothing.")] = False,
    fmt: Annotated[Optional[str], typer.Option("--format", metavar="toml|json", help="File format (default: from the file name, else toml).")] = None,
    json_flag: JsonFlag = False,
) -> None:
    """Apply a mapping file all-or-nothing; report what was added and removed.

    With --json it prints the report of `scim mappings add`, with "dry_run".

    Example: scim mappings import mappings.toml --replace --dry-run
    """
    actx = app_context(ctx)
    pairs = roles.parse_mappings(_read(file), _format(fmt or file.suffix.lstrip(".") or "toml"),
                                 actx.settings().roles.catalog)
    actx.open_store()
    with output.working("Applying mappings"):
        outcome = roles.import_mappings(events.CLI, pairs, replace, preview=dry_run)
    if not outcome.changed and not wants_json(ctx, json_flag):
        output.info("Mappings already match the file: nothing changed.")
    _report(ctx, outcome, json_flag, dry_run=dry_run)


def _format(fmt: str) -> str:
    if fmt.lower() not in ("toml", "json"):
        raise InvalidValue(f"format must be toml or json, not {fmt!r}")
    return fmt.lower()


def _read(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidValue(f"cannot read {file}: {exc}") from None
