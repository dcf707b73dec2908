"""The Flask application factory: settings in, WSGI app out; nothing built at import."""

from __future__ import annotations

import contextlib
import inspect
import logging
import re
from types import FunctionType
from typing import Any, Callable

from flask import Flask, current_app, g, request
from werkzeug.exceptions import HTTPException

from skilljar_scim.base import clock as base_clock
from skilljar_scim.base import keyfile
from skilljar_scim.base.config import Settings
from skilljar_scim.base.errors import NotFound, SkilljarError, Unauthorized
from skilljar_scim.domain import feed, ratelimit
from skilljar_scim.scim.errors import INTERNAL, error_body, error_response
from skilljar_scim.store import db as store_db
from skilljar_scim.store import models
from skilljar_scim.web import auth, events_api, http, views
from skilljar_scim.web.http import respond

log = logging.getLogger("skilljar_scim.web")


def create_app(settings: Settings, reuse_connections: bool = False,
               clock: base_clock.Monotonic = base_clock.monotonic) -> Flask:
    """Build the app: load keys, open (and migrate) the store, register views and handlers.

    `reuse_connections` (what `scim serve` uses) pools SQLite connections across requests;
    `clock` drives the failure rate limiter and request deadlines (tests pass a controlled one).
    """
    app = _App("skilljar_scim")
    app.wsgi_app = _merged_slashes(app.wsgi_app)
    app.config.update(
        SKILLJAR_SETTINGS=settings,
        SKILLJAR_KEYRING=keyfile.KeyRing(settings.key_path),  # read again when the file changes
        SKILLJAR_CLOCK=clock,
        SKILLJAR_LIMITER=ratelimit.Limiter(ratelimit.Policy.from_settings(settings.security), clock),
        MAX_CONTENT_LENGTH=settings.server.max_body_bytes,
    )
    database = store_db.open_configured(settings.database, reuse_connections=reuse_connections)
    pruner = app.extensions["skilljar_pruner"] = feed.Pruner(settings.events.retention_days)
    _prune(pruner)  # on start, then every few minutes after a request
    store_db.close_all(database)
    app.before_request(_begin)  # one hook each way: Flask's per-hook dispatch is paid on every request
    app.teardown_request(_finish)
    # Before any rule is added: a rule takes the map's setting when it is bound.
    app.url_map.strict_slashes = False
    app.register_blueprint(views.blueprint(), url_prefix=settings.server.base_path.rstrip("/"))
    app.register_blueprint(events_api.blueprint())
    app.add_url_rule("/healthz", "healthz", views.healthz)
    _check_declared(app)
    _register_errors(app)
    _warn_about_urls(settings)
    return app


def _warn_about_urls(settings: Settings) -> None:
    """Say when resource URLs may not be the ones clients use: public_base_url unset behind a proxy or on 0.0.0.0."""
    server = settings.server
    if server.public_base_url:
        return
    if settings.security.trusted_proxies > 0:
        log.warning("server.public_base_url is not set but trusted_proxies is: Location and meta.location "
                    "name this server's own address, not the proxy's; set public_base_url to the URL clients use")
    elif http.is_wildcard(server.host):
        log.warning("server.public_base_url is not set and server.host binds every interface: Location and "
                    "meta.location name the local address each connection reached (never the Host header); "
                    "set public_base_url to the URL clients use")


def _merged_slashes(wsgi_app):
    """Serve `/scim/v2//Users` as `/scim/v2/Users`, not as a 308 redirect.

    An IdP base URL entered with a trailing slash (OneLogin's and Okta's own examples have
    one) yields such paths, and a redirected POST or PATCH may not be followed.
    """

    def merged(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if "//" in path:
            environ["PATH_INFO"] = re.sub("/{2,}", "/", path)
        return wsgi_app(environ, start_response)

    return merged


class _App(Flask):
    """Flask whose views run in the transaction they declare (web/http.read, write, each_operation)."""

    def dispatch_request(self):
        rule = request.url_rule
        if rule is None:  # a routing error: Flask raises it, no transaction needed
            return super().dispatch_request()
        view = self.view_functions[rule.endpoint]
        with _transaction(view.scim_transaction, getattr(view, "scim_before_lock", None)):
            result = super().dispatch_request()
        answer = getattr(view, "scim_after_lock", None)  # built from the result alone: no lock needed
        return result if answer is None else answer(result)

    def ensure_sync(self, func):
        """Return a plain function as it is, without Flask's inspect-based check on each call of each hook."""
        if type(func) is FunctionType and not func.__code__.co_flags & inspect.CO_COROUTINE:
            return func
        return super().ensure_sync(func)


def _transaction(kind: str, before_lock: Callable[[Any], Any] | None = None):
    """A write holds the write lock while it reads, writes and renders its answer; reads see one snapshot.

    Without it a PATCH's answer could pair its own version with members a later PATCH added;
    only an answer made from what the write returned (web/http.after_lock) renders after it.
    A write's body is parsed and checked before the lock is taken, so a lock is only ever held
    while writing (the server has read the whole body before the app sees the request).
    """
    if kind == http.WRITE:
        if request.method in http.BODY_METHODS:
            http.body()
        if before_lock is not None:  # e.g. hashing passwords: costly, so never under the lock
            g.scim_prepared = before_lock(http.body())
        return store_db.write_transaction()
    if kind == http.READ:
        return store_db.read_transaction()
    return contextlib.nullcontext()


def _check_declared(app: Flask) -> None:
    """Refuse to build an app with a view that declares no transaction (web/http.read, write, each_operation)."""
    undeclared = sorted(name for name, view in app.view_functions.items()
                        if name != "static" and not hasattr(view, "scim_transaction"))
    if undeclared:
        raise RuntimeError(f"views without @read, @write or @each_operation: {', '.join(undeclared)}")


def _begin() -> None:
    """Set a request up: its deadline, then the refusal of a NUL path, then its own connection."""
    config = current_app.config
    _start_deadline(config["SKILLJAR_SETTINGS"].limits.request_deadline_seconds, config["SKILLJAR_CLOCK"])
    _refuse_nul()
    _connect()


def _finish(_exc: BaseException | None) -> None:
    """After the response is complete: prune events when due, close the connection, end the deadline."""
    _prune(current_app.extensions["skilljar_pruner"])  # domain/feed.py
    _disconnect()
    _end_deadline()


def _start_deadline(seconds: float, clock: base_clock.Monotonic) -> None:
    """Give the request limits.request_deadline_seconds; long loops check it (base/clock.check_deadline)."""
    g.deadline = base_clock.start_deadline(seconds, clock)


def _end_deadline() -> None:
    found = g.pop("deadline", None)
    if found is not None:
        base_clock.end_deadline(found)


def _refuse_nul() -> None:
    """Answer 404 for a path holding NUL: no id has one, and PostgreSQL refuses it as a parameter."""
    if "\x00" in request.path:
        raise NotFound("no such resource")


def _connect() -> None:
    """Give each request its own connection (peewee keeps one per thread)."""
    models.database.connect(reuse_if_open=True)


def _disconnect() -> None:
    if not models.database.is_closed():
        models.database.close()


def _prune(pruner: feed.Pruner) -> None:
    if not pruner.due():
        return
    try:
        models.database.connect(reuse_if_open=True)
        deleted = pruner.run()
    except Exception:  # maintenance must never fail a request or the start; the next pass retries
        log.exception("could not delete events past retention")
        return
    if deleted:
        log.info("deleted %d events past retention", deleted)


def _register_errors(app: Flask) -> None:
    app.register_error_handler(SkilljarError, scim_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)


def scim_error(exc: SkilljarError):
    """Render a domain error as a SCIM error response (RFC 7644 §3.12)."""
    if exc.status == 500:  # an internal failure: logged with its traceback
        return _unexpected(exc)
    answer = error_response(exc, auth.challenge() if isinstance(exc, Unauthorized) else "Bearer")
    return respond(answer.body, answer.status, answer.headers)


def _http_error(exc: HTTPException):
    detail = {404: "no such endpoint", 405: "method not allowed on this endpoint",
              413: "the request body is too large"}.get(exc.code or 500, exc.description or exc.name)
    headers = {k: v for k, v in exc.get_headers() if k.lower() == "allow"}
    return respond(error_body(exc.code or 500, detail), exc.code or 500, headers)


def _unexpected(exc: Exception):
    # The traceback goes to the server log only; the client gets a generic body.
    log.exception("unexpected error while serving a request")
    return respond(error_body(500, INTERNAL), 500)
