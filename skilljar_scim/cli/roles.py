"""`scim roles`: the dashboard role catalog."""

import typer

from skilljar_scim.cli import output
from skilljar_scim.cli.context import app_context
from skilljar_scim.cli.options import JsonFlag, wants_json
from skilljar_scim.domain import roles

app = typer.Typer(help="Show the dashboard roles that mappings can grant.", no_args_is_help=True)


@app.command("list")
def list_(ctx: typer.Context, json_flag: JsonFlag = False) -> None:
    """List the role catalog (from settings), and roles still mapped but missing from it.

    A mapped role missing from [roles.catalog] is still granted through its mappings until
    they are removed; it is listed with in_catalog false.

    Example: scim roles list --json
    """
    actx = app_context(ctx)
    catalog = actx.settings().roles.catalog
    actx.open_store()
    missing = sorted({role for _, role in roles.uncatalogued(catalog)})
    rows = [{"role": role, "description": text, "in_catalog": True} for role, text in sorted(catalog.items())]
    rows += [{"role": role, "description": None, "in_catalog": False} for role in missing]
    if wants_json(ctx, json_flag):
        output.emit_json_list(rows)
        return
    output.table("Dashboard roles", ("role", "description"),
                 ([r["role"], r["description"] if r["in_catalog"] else "(mapped, not in [roles.catalog]: still granted)"]
                  for r in rows))
