"""The `scim` root command: global options, `init`, and the command groups."""

import importlib
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from skilljar_scim.cli import fastparams, output
from skilljar_scim.cli.context import AppContext, app_context

fastparams.install()  # plain options skip pydantic: ~0.3 s off every command (README "Performance")

# Command groups: name -> module holding its Typer `app`. Each is imported only when needed.
# Command modules do not use `from __future__ import annotations`: typer reads every
# parameter's annotation on each run, and a string annotation costs an eval (about 25 ms).
GROUPS = {
    "token": "skilljar_scim.cli.tokens",
    "users": "skilljar_scim.cli.users",
    "groups": "skilljar_scim.cli.groups",
    "roles": "skilljar_scim.cli.roles",
    "mappings": "skilljar_scim.cli.mappings",
    "events": "skilljar_scim.cli.events",
    "db": "skilljar_scim.cli.db",
    "webhooks": "skilljar_scim.cli.webhooks",
}
ROOT_OPTIONS_WITH_VALUES = ("--config", "-c", "--db")

root_app = typer.Typer(
    cls=output.ErrorTranslatingGroup,
    help="skilljar-scim: SCIM 2.0 provisioning for dashboard accounts and roles.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,  # tracebacks with locals would leak tokens
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@root_app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="Settings file (default: $SKILLJAR_SCIM_CONFIG or ./scim.toml).")] = None,
    db: Annotated[Optional[str], typer.Option("--db", help="Database URL, e.g. sqlite:///scim.db or postgresql://user@host/db.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON for every command that shows data.")] = False,
) -> None:
    """Manage tokens, users, groups and role mappings, and run the SCIM server."""
    ctx.obj = AppContext(config_flag=config, db_url=db, json=json_out, root=ctx)


@root_app.command()
def init(
    ctx: typer.Context,
    force: Annotated[bool, typer.Option("--force", help="Replace the secret key (invalidates every token).")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation with --force.")] = False,
) -> None:
    """Create the settings file, the database and the secret key (safe to run again)."""
    from skilljar_scim.domain import bootstrap as setup

    app_ctx = app_context(ctx)
    confirm = lambda: output.confirm("Replace the secret key? Every existing token stops working.", yes)  # noqa: E731
    report = setup.initialise(app_ctx.config_path, app_ctx.settings, force_key=force, confirm_replace=confirm)
    for line in report.lines:
        output.info(line)
    output.info("Initialised." if report.changed else "Already initialised: nothing changed.")


@root_app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[Optional[str], typer.Option("--host", help="Interface to listen on (server.host).")] = None,
    port: Annotated[Optional[int], typer.Option("--port", help="TCP port (server.port).")] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", help="Worker processes (server.workers).")] = None,
    threads: Annotated[Optional[int], typer.Option("--threads", help="Threads per worker (server.threads).")] = None,
    certfile: Annotated[Optional[str], typer.Option("--certfile", help="TLS certificate chain, PEM (server.certfile).")] = None,
    keyfile: Annotated[Optional[str], typer.Option("--keyfile", help="TLS private key, PEM (server.keyfile).")] = None,
    init: Annotated[bool, typer.Option("--init/--no-init", help="Run `scim init` first if needed.")] = True,
) -> None:
    """Run the SCIM 2.0 server until SIGTERM or Ctrl-C; SIGHUP re-reads the keys and TLS certificate."""
    from skilljar_scim.domain import bootstrap as setup
    from skilljar_scim.web import server

    app_ctx = app_context(ctx)
    app_ctx.override({"server.host": host, "server.port": port, "server.workers": workers, "server.threads": threads,
                      "server.certfile": certfile, "server.keyfile": keyfile})
    if init:
        for line in setup.initialise(app_ctx.config_path, app_ctx.settings).lines_changed():
            output.info(line)
    server.serve(app_ctx.settings())


def add_groups(names) -> typer.Typer:
    """Add these command groups to the root command (once each); return it."""
    added = {info.name for info in root_app.registered_groups}
    for name in names:
        if name not in added:
            root_app.add_typer(importlib.import_module(GROUPS[name]).app, name=name)
    return root_app


def invoked_group(argv: list[str]) -> str | None:
    """Return the command group `argv` invokes, or None (a root command, help, or a mistake)."""
    words = iter(argv)
    for word in words:
        if word in ROOT_OPTIONS_WITH_VALUES:
            next(words, None)
        elif not word.startswith("-"):
            return word if word in GROUPS else None
    return None


def run() -> None:
    """Entry point of the `scim` console script: builds only the group it runs (start-up time)."""
    wanted = invoked_group(sys.argv[1:])
    add_groups([wanted] if wanted else GROUPS)()


def __getattr__(name: str):
    """`app` for importers (tests, `python -m`): the root command with every group."""
    if name == "app":
        return add_groups(GROUPS)
    raise AttributeError(name)
