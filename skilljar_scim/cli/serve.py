"""`scim serve`: run the SCIM 2.0 server."""

from typing import Annotated, Optional

import typer

from skilljar_scim.base.config import ServerSettings
from skilljar_scim.cli import output
from skilljar_scim.cli.context import app_context
from skilljar_scim.domain import bootstrap
from skilljar_scim.web import server

command = typer.Typer(add_completion=False)


@command.command()
def serve(
    ctx: typer.Context,
    host: Annotated[Optional[str], typer.Option("--host", help=f"Interface to listen on (default: server.host, {ServerSettings.host}).")] = None,
    port: Annotated[Optional[int], typer.Option("--port", min=1, max=65535, help=f"TCP port, 1-65535 (default: server.port, {ServerSettings.port}).")] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", help=f"Worker processes (default: server.workers, {ServerSettings.workers}).")] = None,
    threads: Annotated[Optional[int], typer.Option("--threads", help=f"Threads per worker (default: server.threads, {ServerSettings.threads}).")] = None,
    certfile: Annotated[Optional[str], typer.Option("--certfile", help="TLS certificate chain, PEM (default: server.certfile; none: plain HTTP).")] = None,
    keyfile: Annotated[Optional[str], typer.Option("--keyfile", help="TLS private key, PEM (default: server.keyfile).")] = None,
    init: Annotated[bool, typer.Option("--init/--no-init", help="Run `scim init` first if needed.", show_default=True)] = True,
) -> None:
    """Run the SCIM 2.0 server until SIGTERM or Ctrl-C; SIGHUP re-reads the keys and TLS certificate.

    Example: scim serve --host 0.0.0.0 --port 8443
    """
    app_ctx = app_context(ctx)
    app_ctx.override({"server.host": host, "server.port": port, "server.workers": workers, "server.threads": threads,
                      "server.certfile": certfile, "server.keyfile": keyfile})
    if init:
        for line in bootstrap.initialise(app_ctx.config_path, app_ctx.settings).lines_changed():
            output.info(line)
    settings = app_ctx.settings()
    for group, role in bootstrap.uncatalogued_mappings(settings):
        output.info(f"Warning: mapping {output.quoted(group)} -> {output.quoted(role)}: the role is not in "
                    "[roles.catalog] but is still granted; `scim mappings remove` stops it.")
    server.serve(settings)
