"""The benchmark's ceiling: a trivial Flask app under exactly `scim serve`'s gunicorn settings.

Run by scripts/bench.py, not by people: `python scripts/bench/ceiling.py SETTINGS_FILE`.
It answers every GET with a fixed small JSON body, so the gap between it and the SCIM
server is what the SCIM server itself costs (auth, SQL, rendering, access log).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

BODY = b'{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":0,"Resources":[]}'


def main() -> None:
    from flask import Flask

    from skilljar_scim import config
    from skilljar_scim.web import server

    settings = config.load(sys.argv[1], env={})
    app = Flask("ceiling")

    @app.get("/", defaults={"path": ""})
    @app.get("/<path:path>")
    def fixed(path: str):
        return app.response_class(BODY, mimetype="application/json")

    server.run_gunicorn(app, settings.server)


if __name__ == "__main__":
    main()
