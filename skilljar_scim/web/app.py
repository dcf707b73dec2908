"""The Flask application factory: settings in, WSGI app out; nothing built at import."""

from __future__ import annotations

import logging

from flask import Flask, request
from werkzeug.exceptions import HTTPException

from skilljar_scim import keyfile
from skilljar_scim.config import Settings
from skilljar_scim.errors import NotFound, RateLimited, SkilljarError, Unauthorized
from skilljar_scim.scim.errors import error_body
from skilljar_scim.store import db as store_db
from skilljar_scim.store import models

log = logging.getLogger("skilljar_scim.web")


def create_app(settings: Settings) -> Flask:
    """Build the app: load keys, open (and migrate) the store, register views and handlers."""
    from skilljar_scim.web import views

    app = Flask("skilljar_scim")
    app.config.update(
        SKILLJAR_SETTINGS=settings,
        SKILLJAR_KEYS=keyfile.load(settings.key_path),
        MAX_CONTENT_LENGTH=settings.server.max_body_bytes,
    )
    database = store_db.open_database(settings.database.url, busy_timeout_ms=settings.database.busy_timeout_ms)
    database.close()
    app.before_request(_refuse_nul)
    app.before_request(_connect)
    app.teardown_request(_disconnect)
    # Before any rule is added: a rule takes the map's setting when it is bound.
    app.url_map.strict_slashes = False
    app.register_blueprint(views.blueprint(), url_prefix=settings.server.base_path.rstrip("/"))
    app.add_url_rule("/healthz", "healthz", views.healthz)
    _register_errors(app)
    return app


def _refuse_nul() -> None:
    """Answer 404 for a path holding NUL: no id has one, and PostgreSQL refuses it as a parameter."""
    if "\x00" in request.path:
        raise NotFound("no such resource")


def _connect() -> None:
    """Give each request its own connection (peewee keeps one per thread)."""
    models.database.connect(reuse_if_open=True)


def _disconnect(_exc: BaseException | None) -> None:
    if not models.database.is_closed():
        models.database.close()


def _register_errors(app: Flask) -> None:
    app.register_error_handler(SkilljarError, scim_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)


def scim_error(exc: SkilljarError):
    """Render a domain error as a SCIM error response (RFC 7644 §3.12)."""
    from skilljar_scim.web.auth import challenge
    from skilljar_scim.web.http import respond

    if exc.status == 500:  # an internal failure: its detail may name paths or SQL
        return _unexpected(exc)
    headers = {}
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = challenge()
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    return respond(error_body(exc.status, exc.detail, exc.scim_type), exc.status, headers)


def _http_error(exc: HTTPException):
    from skilljar_scim.web.http import respond

    detail = {404: "no such endpoint", 405: "method not allowed on this endpoint",
              413: "the request body is too large"}.get(exc.code or 500, exc.description or exc.name)
    headers = {k: v for k, v in exc.get_headers() if k.lower() == "allow"}
    return respond(error_body(exc.code or 500, detail), exc.code or 500, headers)


def _unexpected(exc: Exception):
    from skilljar_scim.web.http import respond

    # The traceback goes to the server log only; the client gets a generic body.
    log.exception("unexpected error while serving a request")
    return respond(error_body(500, "internal server error"), 500)
