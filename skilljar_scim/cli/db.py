"""`scim db`: back up the database while the server runs, and check its integrity."""

from pathlib import Path
from typing import Annotated

import typer

from skilljar_scim.cli import output
from skilljar_scim.cli.context import app_context
from skilljar_scim.cli.options import JsonFlag, wants_json
from skilljar_scim.domain import backup as store_backup, integrity

app = typer.Typer(help="Back up and check the database.", no_args_is_help=True)


@app.command()
def backup(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(metavar="PATH", help="File to write the copy to (mode 600).")],
    force: Annotated[bool, typer.Option("--force", help="Replace PATH if it exists.")] = False,
    json_flag: JsonFlag = False,
) -> None:
    """Copy the SQLite database to PATH, consistently, while the server keeps running.

    Example: scim db backup /var/backups/scim-$(date +%F).db
    """
    settings = app_context(ctx).settings()
    with output.working("Backing up the database"):
        report = store_backup.backup(settings.database.url, path, force, settings.database.busy_timeout_ms)
    if wants_json(ctx, json_flag):
        output.emit_json(report.as_dict())
        return
    output.details("Backup written", [
        ("path", report.path), ("bytes", report.bytes), ("schema version", report.schema_version), ("integrity", report.integrity),
        *report.counts.items(),
    ])


@app.command()
def check(ctx: typer.Context, json_flag: JsonFlag = False) -> None:
    """Verify the database's integrity and that its schema version matches this scim.

    Exits 8 when a problem is found.

    Example: scim db check --json
    """
    settings = app_context(ctx).settings()
    with output.working("Checking the database"):
        report = integrity.check(settings.database.url, settings.database.busy_timeout_ms)
    if wants_json(ctx, json_flag):
        output.emit_json(report.as_dict())
    else:
        verdict = "ok" if report.ok else "FAILED"
        output.details(f"Database check: {verdict}", [
            ("result", verdict), ("database", report.database), ("schema version", report.schema_version),
            ("expected schema version", report.expected_schema_version), ("integrity", report.integrity),
            ("foreign key violations", report.foreign_key_violations),
        ])
    report.raise_for_problems()
