"""`scim roles`: the dashboard role catalog."""

import typer

from skilljar_scim.cli import output
from skilljar_scim.cli.context import app_context
from skilljar_scim.cli.options import JsonFlag, wants_json

app = typer.Typer(help="Show the dashboard roles that mappings can grant.", no_args_is_help=True)


@app.command("list")
def list_(ctx: typer.Context, json_flag: JsonFlag = False) -> None:
    """List the role catalog (from settings) with descriptions."""
    catalog = app_context(ctx).settings().roles.catalog
    rows = [{"role": role, "description": text} for role, text in sorted(catalog.items())]
    if wants_json(ctx, json_flag):
        output.emit_json(rows)
        return
    output.table("Dashboard roles", ("role", "description"), ([r["role"], r["description"]] for r in rows))
