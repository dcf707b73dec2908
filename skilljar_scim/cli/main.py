"""The `scim` root command: global options, `init`, and the command groups."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from skilljar_scim.cli import db, events, fastparams, groups, mappings, output, roles, tokens, users
from skilljar_scim.cli.context import AppContext, app_context

fastparams.install()  # plain options skip pydantic: ~0.3 s off every command (README "Performance")

app = typer.Typer(
    cls=output.ErrorTranslatingGroup,
    help="skilljar-scim: SCIM 2.0 provisioning for dashboard accounts and roles.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,  # tracebacks with locals would leak tokens
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(tokens.app, name="token")
app.add_typer(users.app, name="users")
app.add_typer(groups.app, name="groups")
app.add_typer(roles.app, name="roles")
app.add_typer(mappings.app, name="mappings")
app.add_typer(events.app, name="events")
app.add_typer(db.app, name="db")


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="Settings file (default: $SKILLJAR_SCIM_CONFIG or ./scim.toml).")] = None,
    db: Annotated[Optional[str], typer.Option("--db", help="Database URL, e.g. sqlite:///scim.db or postgresql://user@host/db.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON for every command that shows data.")] = False,
) -> None:
    """Manage tokens, users, groups and role mappings, and run the SCIM server."""
    ctx.obj = AppContext(config_flag=config, db_url=db, json=json_out, root=ctx)


@app.command()
def init(
    ctx: typer.Context,
    force: Annotated[bool, typer.Option("--force", help="Replace the secret key (invalidates every token).")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation with --force.")] = False,
) -> None:
    """Create the settings file, the database and the secret key (safe to run again)."""
    from skilljar_scim import setup

    app_ctx = app_context(ctx)
    confirm = lambda: output.confirm("Replace the secret key? Every existing token stops working.", yes)  # noqa: E731
    report = setup.initialise(app_ctx.config_path, app_ctx.settings, force_key=force, confirm_replace=confirm)
    for line in report.lines:
        output.info(line)
    output.info("Initialised." if report.changed else "Already initialised: nothing changed.")


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[Optional[str], typer.Option("--host", help="Interface to listen on (server.host).")] = None,
    port: Annotated[Optional[int], typer.Option("--port", help="TCP port (server.port).")] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", help="Worker processes (server.workers).")] = None,
    threads: Annotated[Optional[int], typer.Option("--threads", help="Threads per worker (server.threads).")] = None,
    init: Annotated[bool, typer.Option("--init/--no-init", help="Run `scim init` first if needed.")] = True,
) -> None:
    """Run the SCIM 2.0 server (gunicorn) until SIGTERM or Ctrl-C."""
    from skilljar_scim import setup
    from skilljar_scim.web import server

    app_ctx = app_context(ctx)
    app_ctx.override({"server.host": host, "server.port": port, "server.workers": workers, "server.threads": threads})
    if init:
        for line in setup.initialise(app_ctx.config_path, app_ctx.settings).lines_changed():
            output.info(line)
    server.serve(app_ctx.settings())


def run() -> None:
    """Entry point of the `scim` console script."""
    app()
