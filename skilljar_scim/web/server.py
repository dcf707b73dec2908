"""`scim serve`: gunicorn as the process manager, web/worker.ScimWorker as its worker.

gunicorn pre-forks `server.workers` processes (one per core by default), drains requests in
flight on SIGTERM, replaces a worker that dies, and on SIGHUP starts fresh workers from a
re-built app (keys and TLS certificate read again) while the old ones finish. Each worker
reads whole requests on an asyncio loop before a thread runs the app (README "Serving model").
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import ssl
from typing import Any, Callable

from gunicorn.app.base import BaseApplication

from skilljar_scim.base.config import ServerSettings, Settings
from skilljar_scim.base.errors import ConfigError, ListenError, SkilljarError
from skilljar_scim.store import db as store_db
from skilljar_scim.store import models
from skilljar_scim.web import deliverer
from skilljar_scim.web.access import AccessLog, configure_logging, gunicorn_log_config
from skilljar_scim.web.app import create_app

__all__ = ["AccessLog", "configure_logging", "serve", "gunicorn_options", "build_app", "run_gunicorn"]
log = logging.getLogger("skilljar_scim.server")
WORKER_CLASS = "skilljar_scim.web.worker.ScimWorker"
BACKLOG = 2048


def serve(settings: Settings) -> None:
    """Listen (failing fast on a taken port, bad settings, keys, certificate or database) and run gunicorn."""
    server = settings.server
    configure_logging(server.log_format)
    listener = listen(server)
    tls_context(server)  # a bad certificate fails here, before anything starts
    app = build_app(settings)  # migrates the store before the delivery worker opens it
    scheme = "https" if server.tls else "http"
    log.info("serving SCIM at %s://%s:%s%s with %d workers", scheme, _bracket(server.host), server.port,
             server.base_path, server.worker_count)
    owner, webhook_worker = os.getpid(), deliverer.start(settings, listener)  # a fork before any thread
    try:
        run_gunicorn(app, settings, listener)
    finally:
        deliverer.stop(webhook_worker, owner)


def build_app(settings: Settings) -> Callable:
    """Build the WSGI app `scim serve` runs, with no database connection left open across fork."""
    app = AccessLog(create_app(settings, reuse_connections=True))
    store_db.close_all(models.database.obj)  # no connection may cross the fork into the workers
    return app


def listen(server: ServerSettings) -> socket.socket:
    """Bind and listen on server.host:server.port, or say in one line why that is impossible."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(server.host, server.port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise ListenError(f"cannot listen on {server.host}: {exc.strerror}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise ListenError(_listen_failure(server, exc)) from None
    sock.set_inheritable(True)
    return sock


def _listen_failure(server: ServerSettings, exc: OSError) -> str:
    where = f"cannot listen on {server.host} port {server.port}"
    return {
        errno.EADDRINUSE: f"{where}: the port is already in use by another program",
        errno.EACCES: f"{where}: permission denied (ports below 1024 need privileges)",
        errno.EADDRNOTAVAIL: f"{where}: {server.host} is not an address of this machine",
    }.get(exc.errno, f"{where}: {exc.strerror}")


def tls_context(server: ServerSettings) -> ssl.SSLContext | None:
    """Return the TLS context for server.certfile/keyfile (TLS 1.2 or later), or None without TLS."""
    if not server.tls:
        return None
    if not (server.certfile and server.keyfile):
        raise ConfigError("server.certfile and server.keyfile (--certfile, --keyfile) must be given together")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    try:
        context.load_cert_chain(server.certfile, server.keyfile)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
        raise ConfigError(f"cannot load the TLS certificate {server.certfile} and key {server.keyfile}: {reason}") from None
    return context


def gunicorn_options(server: ServerSettings, listener: socket.socket | None = None) -> dict[str, Any]:
    """Return the gunicorn settings `scim serve` runs with (scripts/bench.py uses them too)."""
    options = {
        "bind": f"fd://{listener.fileno()}" if listener else f"{_bracket(server.host)}:{server.port}",
        "workers": server.worker_count,
        "worker_class": WORKER_CLASS,
        "graceful_timeout": server.graceful_timeout,
        "timeout": 60,  # a worker whose loop stops for a minute is replaced
        "backlog": BACKLOG,
        "preload_app": True,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "info",
        "proc_name": "scim-serve",
        "control_socket_disable": True,
    }
    if server.log_format == "json":
        options["logconfig_dict"] = gunicorn_log_config("json")
    return options


class _Gunicorn(BaseApplication):
    """gunicorn around the SCIM app; the app is built before gunicorn starts, and again on SIGHUP."""

    def __init__(self, app: Callable | None, settings: Settings, listener: socket.socket | None,
                 overrides: dict[str, Any] | None = None):
        self.scim_settings = settings
        self.scim_ssl = tls_context(settings.server)
        self.options = {**gunicorn_options(settings.server, listener), **(overrides or {})}
        self.callable_built = app or build_app(settings)
        super().__init__()
        self.callable = self.callable_built

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Callable:
        return self.callable_built

    def reload(self) -> None:
        """SIGHUP: read the secret keys and the TLS certificate again for the workers about to start.

        A file that cannot be read keeps the running app and certificate (and says so in the log).
        """
        super().reload()
        try:
            context = tls_context(self.scim_settings.server)
            self.callable_built = self.callable = build_app(self.scim_settings)
        except SkilljarError as exc:
            log.error("SIGHUP: keeping the running keys and certificate: %s", exc.detail)
            return
        self.scim_ssl = context
        log.info("SIGHUP: secret keys and TLS certificate read again; new workers use them")


def run_gunicorn(app: Callable | None, settings: Settings, listener: socket.socket | None = None,
                 overrides: dict[str, Any] | None = None) -> None:
    """Serve `app` (else the SCIM app built from `settings`) under gunicorn until SIGTERM.

    `overrides` replaces gunicorn settings (scripts/serving_models.py compares worker classes).
    """
    _Gunicorn(app, settings, listener, overrides).run()


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
