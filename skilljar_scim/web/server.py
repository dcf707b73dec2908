"""Production HTTP server: gunicorn (gthread workers) around the app, with an access log.

gunicorn and its default of one worker with two threads were chosen by measurement
(scripts/bench.py, README "Performance"): gunicorn served more than waitress, and its SIGTERM
handling stops accepting, lets requests in flight finish (graceful_timeout), then exits; two
threads served more lookups than four or eight (threads of one process contend for one
interpreter lock), and one worker keeps memory within budget.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, Callable, Iterable

from skilljar_scim.base.config import ServerSettings, Settings
from skilljar_scim.web.auth import TOKEN_NAME_KEY

access_log = logging.getLogger("skilljar_scim.access")


class AccessLog:
    """WSGI middleware: one line per request: method, path, status, duration, token name.

    Never the query string (filters carry user names and emails), a header or a body.
    """

    def __init__(self, app: Callable):
        self.app = app

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        started = time.perf_counter()
        status: list[str] = ["-"]

        def recording_start_response(code: str, headers: list, exc_info: Any = None):
            status[0] = code.split(" ", 1)[0]
            return start_response(code, headers, exc_info)

        try:
            return self.app(environ, recording_start_response)
        finally:
            access_log.info(
                '%s %s %s %.1fms token=%s',
                environ.get("REQUEST_METHOD", "-"),
                environ.get("PATH_INFO", "-"),
                status[0],
                (time.perf_counter() - started) * 1000,
                environ.get(TOKEN_NAME_KEY, "-"),
            )


def configure_logging(level: int = logging.INFO) -> None:
    """Send the service's logs to stderr, one line each."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger("skilljar_scim")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def serve(settings: Settings) -> None:
    """Build the app (failing fast on bad settings, keys or database) and run gunicorn."""
    from skilljar_scim.store import db as store_db
    from skilljar_scim.store import models
    from skilljar_scim.web.app import create_app

    configure_logging()
    app = AccessLog(create_app(settings, reuse_connections=True))
    store_db.close_all(models.database.obj)  # no connection may cross the fork into the workers
    server = settings.server
    logging.getLogger("skilljar_scim.server").info("serving SCIM at http://%s:%s%s", server.host, server.port, server.base_path)
    run_gunicorn(app, server)


def gunicorn_options(server: ServerSettings) -> dict[str, Any]:
    """Return the gunicorn settings `scim serve` runs with (scripts/bench.py uses them too)."""
    return {
        "bind": f"{_bracket(server.host)}:{server.port}",
        "workers": max(server.workers, 1),
        "threads": max(server.threads, 1),
        "worker_class": "gthread",
        "graceful_timeout": server.graceful_timeout,
        "timeout": 60,
        "preload_app": True,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "info",
        "proc_name": "scim-serve",
        "limit_request_line": 8190,
        "control_socket_disable": True,
    }


def run_gunicorn(app: Callable, server: ServerSettings) -> None:
    """Serve a WSGI app under gunicorn with `scim serve`'s settings until SIGTERM."""
    from gunicorn.app.base import BaseApplication

    options = gunicorn_options(server)

    class Server(BaseApplication):
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self):
            return app

    Server().run()


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
