"""Hand a whole, buffered request to the WSGI app (PEP 3333) and collect its whole answer."""

from __future__ import annotations

import io
import json
import logging
import sys
from typing import Callable
from urllib.parse import unquote_to_bytes

from skilljar_scim.scim.errors import error_body
from skilljar_scim.web.wire import Answer, Request

log = logging.getLogger("skilljar_scim.web")


def environ(request: Request, peer: tuple, local: tuple, scheme: str) -> dict:
    """Build the WSGI environ of a request whose body is already in memory."""
    target = request.target
    if target.startswith((b"http://", b"https://")):  # absolute-form (RFC 9112 §3.2.2): keep the path
        target = b"/" + target.split(b"/", 3)[3] if target.count(b"/") >= 3 else b"/"
    path, _, query = target.partition(b"?")
    env = {
        "REQUEST_METHOD": request.method.decode("ascii"),
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
        "QUERY_STRING": query.decode("latin-1"),
        "RAW_URI": target.decode("latin-1"),
        "SERVER_NAME": str(local[0]),
        "SERVER_PORT": str(local[1]),
        "SERVER_PROTOCOL": "HTTP/" + request.http_version.decode("ascii"),
        "REMOTE_ADDR": str(peer[0]) if peer else "",
        "REMOTE_PORT": str(peer[1]) if peer else "",
        "CONTENT_LENGTH": str(len(request.body)),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scheme,
        "wsgi.input": io.BytesIO(request.body),
        "wsgi.input_terminated": True,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    env.update(_header_variables(request.headers))
    return env


def _header_variables(headers: list[tuple[bytes, bytes]]) -> dict:
    """Map headers to HTTP_* variables, joining repeats; a name with "_" is dropped.

    Dropping it keeps `X_Forwarded_For` from posing as `X-Forwarded-For` (both would be
    HTTP_X_FORWARDED_FOR). The body is already de-chunked, so no framing header is passed on.
    """
    found: dict[str, str] = {}
    for name, value in headers:
        if b"_" in name or name in (b"content-length", b"transfer-encoding"):
            continue
        key = name.decode("latin-1").upper().replace("-", "_")
        key = key if key == "CONTENT_TYPE" else "HTTP_" + key
        text = value.decode("latin-1")
        found[key] = f"{found[key]}, {text}" if key in found else text
    return found


def call(app: Callable, env: dict) -> Answer:
    """Run the app on one request (in a worker thread) and return its whole answer."""
    started: list = []
    chunks: list[bytes] = []

    def start_response(status: str, headers: list, exc_info=None):
        if exc_info and started:
            raise exc_info[1].with_traceback(exc_info[2])
        started[:] = [status, headers]
        return chunks.append

    try:
        result = app(env, start_response)
        try:
            chunks.extend(result)
        finally:
            getattr(result, "close", lambda: None)()
    except Exception:  # the app's own handler failed: the traceback to the log, a generic body out
        log.exception("unexpected error while serving a request")
        return internal_error()
    return Answer(int(started[0].split(" ", 1)[0]), list(started[1]), b"".join(chunks))


def internal_error() -> Answer:
    body = json.dumps(error_body(500, "internal server error")).encode()
    return Answer(500, [("Content-Type", "application/scim+json")], body)
