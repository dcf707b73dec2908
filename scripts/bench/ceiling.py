"""Apps scripts/bench.py serves besides `scim serve`; not for people.

    python scripts/bench/ceiling.py SETTINGS_FILE [gunicorn|waitress] [ceiling|scim]

`ceiling` is a trivial Flask app answering every GET with a fixed small JSON body, under
exactly `scim serve`'s gunicorn settings (web/server.gunicorn_options), so the gap between
it and the SCIM server is what the SCIM server itself costs. `waitress` serves the ceiling
or the real SCIM app (built as `scim serve` builds it) with waitress and server.threads
threads, to compare WSGI servers (waitress is not a dependency: pip install waitress).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

BODY = b'{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":0,"Resources":[]}'


def ceiling_app():
    from flask import Flask

    app = Flask("ceiling")

    @app.get("/", defaults={"path": ""})
    @app.get("/<path:path>")
    def fixed(path: str):
        return app.response_class(BODY, mimetype="application/json")

    return app


def scim_app(settings):
    from skilljar_scim.store import db as store_db
    from skilljar_scim.store import models
    from skilljar_scim.web.app import create_app
    from skilljar_scim.web.server import AccessLog, configure_logging

    configure_logging()
    app = AccessLog(create_app(settings, reuse_connections=True))
    store_db.close_all(models.database.obj)
    return app


def main() -> None:
    from skilljar_scim.base import config
    from skilljar_scim.web import server

    settings = config.load(sys.argv[1], env={})
    wsgi = sys.argv[2] if len(sys.argv) > 2 else "gunicorn"
    app = scim_app(settings) if len(sys.argv) > 3 and sys.argv[3] == "scim" else ceiling_app()
    if wsgi == "waitress":
        import waitress

        waitress.serve(app, host=settings.server.host, port=settings.server.port, threads=settings.server.threads,
                       _quiet=True)
    else:
        server.run_gunicorn(app, settings)


if __name__ == "__main__":
    main()
