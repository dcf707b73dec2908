"""Bearer-token authentication on every SCIM request (RFC 7644 §2, RFC 6750)."""

from __future__ import annotations

from flask import current_app, g, request

from skilljar_scim.base.errors import RateLimited, TokenRefused
from skilljar_scim.domain import ratelimit
from skilljar_scim.domain.events import Actor

TOKEN_NAME_KEY = "skilljar_scim.token_name"  # read by the access log; never the value
REALM = "skilljar-scim"


def authenticate() -> None:
    """Check the bearer token, within the failure rate limits; remember it for the view and log."""
    value = _bearer_value()
    g.token_presented = value is not None
    try:
        token = ratelimit.authenticate(current_app.config["SKILLJAR_LIMITER"], current_app.config["SKILLJAR_KEYS"],
                                       client_address(), value)
    except (TokenRefused, RateLimited) as exc:
        if exc.token_name is not None:  # a genuine token, revoked or expired: the log names it
            request.environ[TOKEN_NAME_KEY] = exc.token_name
        raise
    g.token = token
    request.environ[TOKEN_NAME_KEY] = token.name


def _bearer_value() -> str | None:
    """Return the token of an `Authorization: Bearer <token>` header, or None (RFC 6750 §2.1)."""
    scheme, _, value = request.headers.get("Authorization", "").strip().partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


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
