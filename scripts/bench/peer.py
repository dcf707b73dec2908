"""The comparison target scripts/bench.py runs: scim2-server, in memory, on waitress; not for people.

    PEER_VENV/bin/python scripts/bench/peer.py PORT TOKEN [SEED_FILE]

Runs under the bench's own venv of scim2-server 0.8.3 and waitress (bench.py makes it), never
under skilljar-scim's. The app is built the way scim2-server's own command builds it (the
default RFC 7643 schemas, resource types and service provider configuration, bearer token
scheme announced, one static token, InMemoryStorage), and served by waitress with 4 threads
under /v2. SEED_FILE holds one SCIM User per line; each is POSTed to the app in process
before the port opens, so every seeded user went through the same request path (validation,
uniqueness, indexing) as a user created over HTTP.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import sys
import time

import waitress
from scim2_models import ScimProvider
from scim2_server.memory import InMemoryStorage
from scim2_server.service import ScimService
from scim2_server.testserver.application import BEARER_TOKEN_SCHEME, BearerTokenApplication
from scim2_server.utils import load_default_resource_types, load_default_schemas, load_default_service_provider_config

THREADS = 4


def build_app(token: str) -> BearerTokenApplication:
    """Build the app as scim2-server's CLI does with --bearer-token TOKEN."""
    config = load_default_service_provider_config()
    config.authentication_schemes = [*(config.authentication_schemes or []), BEARER_TOKEN_SCHEME]
    provider = ScimProvider.from_discovery(load_default_schemas().values(), load_default_resource_types().values(),
                                           config=config)
    service = ScimService(provider, secret=secrets.token_urlsafe(32))
    return BearerTokenApplication(InMemoryStorage(), provider, service=service, bearer_tokens=[token])


def post(app, token: str, body: bytes) -> str:
    """POST one user to the app in process (a WSGI call, no socket); return the status line."""
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/v2/Users", "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
               "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http",
               "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr, "wsgi.version": (1, 0),
               "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False,
               "CONTENT_TYPE": "application/scim+json", "CONTENT_LENGTH": str(len(body)),
               "HTTP_AUTHORIZATION": f"Bearer {token}"}
    status = []
    b"".join(app(environ, lambda line, headers, exc_info=None: status.append(line)))
    return status[0]


def seed(app, token: str, path: str) -> None:
    """POST every user of the file; stop at the first one not answered 201."""
    began, count = time.perf_counter(), 0
    with open(path, "rb") as lines:
        for line in lines:
            if line.strip():
                status = post(app, token, line.strip())
                if not status.startswith("201"):
                    raise SystemExit(f"peer seed: user {count + 1} answered {status}")
                count += 1
    print(json.dumps({"seeded": count, "seconds": round(time.perf_counter() - began, 1)}), flush=True)


def main() -> None:
    port, token = int(sys.argv[1]), sys.argv[2]
    app = build_app(token)
    if len(sys.argv) > 3:
        seed(app, token, sys.argv[3])
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    waitress.serve(app, host="127.0.0.1", port=port, threads=THREADS, _quiet=True)


if __name__ == "__main__":
    main()
