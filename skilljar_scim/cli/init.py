"""`scim init`: create the settings file, the database and the secret key."""

from typing import Annotated

import typer

from skilljar_scim.cli import output
from skilljar_scim.cli.context import app_context
from skilljar_scim.domain import bootstrap

command = typer.Typer(add_completion=False)


@command.command()
def init(
    ctx: typer.Context,
    force: Annotated[bool, typer.Option("--force", help="Replace the secret key: every token stops working, "
                                        "on a running `scim serve` too (at its next request).")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation with --force.")] = False,
) -> None:
    """Create the settings file, the database and the secret key (safe to run again).

    Example: scim init
    """
    app_ctx = app_context(ctx)
    question = ("Replace the secret key? Every existing token stops working, at once on a running "
                "`scim serve` too (it reads the new key on its next request).")
    confirm = lambda: output.confirm(question, yes)  # noqa: E731
    report = bootstrap.initialise(app_ctx.config_path, app_ctx.settings, force_key=force, confirm_replace=confirm)
    for line in report.lines:
        output.info(line)
    output.info("Initialised." if report.changed else "Already initialised: nothing changed.")
