"""The `scim` root command: global options, `init`, `serve`, and the lazily loaded command groups."""

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

import skilljar_scim
from skilljar_scim.cli.context import AppContext
from skilljar_scim.cli.group import RootGroup

# Commands: name -> module, imported only when that command runs (or help lists it). A module
# holds a Typer `app` (a command group) or a Typer `command` with one command. Command modules
# do not use `from __future__ import annotations`: typer reads every parameter's annotation
# on each run, and a string annotation costs an eval.
COMMANDS = {
    "init": "skilljar_scim.cli.init",
    "serve": "skilljar_scim.cli.serve",
    "status": "skilljar_scim.cli.status",
    "token": "skilljar_scim.cli.tokens",
    "users": "skilljar_scim.cli.users",
    "groups": "skilljar_scim.cli.groups",
    "roles": "skilljar_scim.cli.roles",
    "mappings": "skilljar_scim.cli.mappings",
    "events": "skilljar_scim.cli.events",
    "db": "skilljar_scim.cli.db",
    "webhooks": "skilljar_scim.cli.webhooks",
}

# What `scim --help` lists for each command without importing it: the first line of the
# command's own help (tests/cli/test_startup.py checks that they match).
SUMMARIES = {
    "init": "Create the settings file, the database and the secret key (safe to run again).",
    "serve": "Run the SCIM 2.0 server until SIGTERM or Ctrl-C; SIGHUP re-reads the keys and TLS certificate.",
    "status": "Show the service's state and what needs attention.",
    "token": "Manage bearer tokens: provision tokens for identity providers, read tokens for consumers.",
    "users": "Inspect provisioned users, their groups and roles.",
    "groups": "Inspect groups pushed by the identity provider.",
    "roles": "Show the dashboard roles that mappings can grant.",
    "mappings": "Map identity-provider groups to dashboard roles.",
    "events": "Read the provisioning and audit trail.",
    "db": "Back up and check the database.",
    "webhooks": "Send every change to your application as signed HTTPS POSTs.",
}


class ScimGroup(RootGroup):
    """The root group, with this CLI's command groups."""

    lazy = COMMANDS
    summaries = SUMMARIES


app = typer.Typer(
    cls=ScimGroup,
    help="skilljar-scim: SCIM 2.0 provisioning for dashboard accounts and roles.",
    no_args_is_help=True,
    rich_markup_mode=None,  # plain help: no boxes, flags read as flags
    pretty_exceptions_enable=False,  # tracebacks with locals would leak tokens
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
root_app = app


def _version(value: bool) -> None:
    """Print the version and stop (an eager flag: nothing else runs)."""
    if value:
        typer.echo(f"scim (skilljar-scim) {skilljar_scim.__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[Optional[Path], typer.Option("--config", "-c", metavar="FILE", help="Settings file (default: $SKILLJAR_SCIM_CONFIG, else ./scim.toml).")] = None,
    db: Annotated[Optional[str], typer.Option("--db", metavar="URL", help="Database URL, e.g. sqlite:///scim.db or postgresql://user@host/db (default: database.url).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON for every command that shows data (README \"JSON output\").")] = False,
    version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_version, help="Print the version and exit.")] = False,
) -> None:
    """Manage tokens, users, groups and role mappings, and run the SCIM server.

    Example: scim --config /etc/scim/scim.toml token list --json
    """
    ctx.obj = AppContext(config_flag=config, db_url=db, json=json_out, root=ctx)


def run() -> None:
    """Entry point of the `scim` console script."""
    app(args=sys.argv[1:], prog_name="scim")
