"""The access log and the service's log format: one line per request, never a forged one.

Request data (the path, a method, a token's name) reaches the log only through `escape()`
in the text format or `json.dumps` in the JSON format, so CR, LF, ESC or any other control
character in it can never start a new line or drive a terminal. Never logged: a token value,
the query string (filters carry user names and emails), a header or a body.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any, Callable, Iterable

from skilljar_scim.web.auth import TOKEN_NAME_KEY

access_log = logging.getLogger("skilljar_scim.access")
# C0 controls, DEL, C1 controls, the Unicode line and paragraph separators, and the backslash
# itself (so an escape in the log always means an escaped character).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\\\\]")


def escape(text: str) -> str:
    """Return `text` with every control character and backslash written as a \\xNN escape."""
    return _UNSAFE.sub(lambda m: "\\\\" if m.group() == "\\" else f"\\x{ord(m.group()):02x}", text)


def record(method: str, path: str, status: int | str, duration_ms: float, token: str = "-") -> None:
    """Log one request: method, path, status, duration, the token's name (never its value)."""
    if not access_log.isEnabledFor(logging.INFO):
        return
    fields = {"method": method, "path": path, "status": str(status), "duration_ms": round(duration_ms, 1),
              "token": token}
    # makeRecord + handle is what Logger.info does, less the walk up the stack for the caller's
    # file and line, which no format of ours prints: a line a request is worth the saving.
    line = access_log.makeRecord(access_log.name, logging.INFO, __file__, 0, "%s %s %s %.1fms token=%s",
                                 (escape(method), escape(path), escape(str(status)), duration_ms, escape(token)),
                                 None, extra={"access": fields})
    access_log.handle(line)


class AccessLog:
    """WSGI middleware: one access log line per request the app answers."""

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
            record(environ.get("REQUEST_METHOD", "-"), environ.get("PATH_INFO", "-"), status[0],
                   (time.perf_counter() - started) * 1000, environ.get(TOKEN_NAME_KEY, "-"))


class TextFormatter(logging.Formatter):
    """`time level logger message`: every message escaped, so no data in it can start a line.

    Access lines arrive escaped field by field (record()); every other message (ours,
    gunicorn's, which may quote a request) is escaped whole here.
    """

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        if getattr(record, "access", None) is None:
            record.message = escape(record.message)
        return super().formatMessage(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line for log shippers; json.dumps escapes every control character."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {"time": self.formatTime(record), "level": record.levelname, "logger": record.name}
        access = getattr(record, "access", None)
        if access is not None:
            entry.update(access)
        else:
            entry["message"] = record.getMessage()
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=True)


FORMATTERS = {"text": TextFormatter, "json": JsonFormatter}


def configure_logging(log_format: str = "text", level: int = logging.INFO) -> None:
    """Send the service's logs to stderr, one line each, in the configured format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(FORMATTERS[log_format]())
    root = logging.getLogger("skilljar_scim")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def gunicorn_log_config(log_format: str) -> dict:
    """Return gunicorn's logging dictConfig: its own lines in the same format as ours."""
    formatter = f"{__name__}.{FORMATTERS[log_format].__name__}"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"scim": {"()": formatter}},
        "handlers": {name: {"class": "logging.StreamHandler", "formatter": "scim", "stream": "ext://sys.stderr"}
                     for name in ("console", "error_console")},  # the names gunicorn's defaults refer to
        "root": {"level": "INFO", "handlers": ["console"]},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["error_console"], "propagate": False, "qualname": "gunicorn.error"},
            "gunicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False, "qualname": "gunicorn.access"},
        },
    }
