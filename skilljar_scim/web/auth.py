"""Bearer-token authentication on every SCIM request (RFC 7644 §2, RFC 6750)."""

from __future__ import annotations

from flask import current_app, g, request

from skilljar_scim import tokens
from skilljar_scim.errors import Unauthorized
from skilljar_scim.events import Actor

TOKEN_NAME_KEY = "skilljar_scim.token_name"  # read by the access log; never the value
REALM = "skilljar-scim"


def authenticate() -> None:
    """Check the Authorization header; remember the token for the view and the access log."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthorized("authentication required: send Authorization: Bearer <token>")
    g.token_presented = True
    token = tokens.authenticate(current_app.config["SKILLJAR_KEYS"], value.strip())
    g.token = token
    request.environ[TOKEN_NAME_KEY] = token.name


def actor() -> Actor:
    """Return who is making this request, for the audit trail."""
    return Actor.for_token(g.token)


def challenge() -> str:
    """Return the WWW-Authenticate value; a refused token adds error=invalid_token (RFC 6750 §3)."""
    if g.get("token_presented"):
        return f'Bearer realm="{REALM}", error="invalid_token"'
    return f'Bearer realm="{REALM}"'
