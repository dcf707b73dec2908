"""Bearer-token authentication on every SCIM request (RFC 7644 §2, RFC 6750)."""

from __future__ import annotations

import re

from flask import current_app, g, request

from skilljar_scim.base.errors import RateLimited, TokenRefused
from skilljar_scim.domain import ratelimit, tokens
from skilljar_scim.domain.events import Actor
from skilljar_scim.web import http

TOKEN_NAME_KEY = "skilljar_scim.token_name"  # read by the access log; never the value
REALM = "skilljar-scim"
# RFC 6750 §2.1: credentials = "Bearer" 1*SP b64token.
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


def authenticate() -> None:
    """Check the bearer token for a SCIM request, and that its scope allows a read or a write."""
    _authenticate(scim_operation())


def authenticate_events() -> None:
    """Check the bearer token for the events API: a read token only."""
    _authenticate("events.read")


def scim_operation() -> str:
    """Return "scim.write" for a view declared @write or @each_operation (/Bulk), else "scim.read" (web/http)."""
    declared = current_app.view_functions[request.endpoint].scim_transaction
    return "scim.read" if declared == http.READ else "scim.write"


def _authenticate(operation: str) -> None:
    """Check the token within the failure rate limits, then its scope; remember it for the view and log."""
    value = _bearer_value()
    g.token_presented = value is not None
    config, environ = current_app.config, request.environ  # each proxy lookup costs: once here
    keys = config["SKILLJAR_KEYRING"].current()  # a replaced key file is read again
    try:
        token = ratelimit.authenticate(config["SKILLJAR_LIMITER"], keys, client_address, value)
    except (TokenRefused, RateLimited) as exc:
        if exc.token_name is not None:  # a genuine token, revoked or expired: the log names it
            environ[TOKEN_NAME_KEY] = exc.token_name
        raise
    g.token = token
    environ[TOKEN_NAME_KEY] = token.name
    tokens.authorize(token, operation)  # like expiry and revocation, on every request


def _bearer_value() -> str | None:
    """Return the credentials of an `Authorization: Bearer <b64token>` header (RFC 6750 §2.1).

    None: no Bearer credentials (no header, "Bearer" alone, or another scheme such as Basic
    or Token). The scheme is case-insensitive (RFC 7235 §2.1) and 1*SP may separate it from
    the token. "" is a Bearer header whose token breaks the b64token grammar (a tab, a second
    word, a comma: also two Authorization headers, which arrive joined by a comma), refused
    as an invalid token.
    """
    header = request.headers.get("Authorization", "")
    scheme, _, rest = header.strip(" \t").partition(" ")  # OWS is SP / HTAB (RFC 9110 §5.6.3)
    if scheme.lower() != "bearer":
        return None
    value = rest.lstrip(" ")
    if not value:
        return None
    return value if _B64TOKEN.fullmatch(value) else ""


def client_address() -> str:
    """Return the client address failures count against (X-Forwarded-For only from trusted proxies)."""
    trusted = current_app.config["SKILLJAR_SETTINGS"].security.trusted_proxies
    return ratelimit.client_address(request.remote_addr, request.headers.getlist("X-Forwarded-For"), trusted)


def actor() -> Actor:
    """Return who is making this request, for the audit trail."""
    return Actor.for_token(g.token)


def challenge() -> str:
    """Return the WWW-Authenticate value; a refused token adds error=invalid_token (RFC 6750 §3)."""
    if g.get("token_presented"):
        return f'Bearer realm="{REALM}", error="invalid_token"'
    return f'Bearer realm="{REALM}"'
