"""SCIM error responses (RFC 7644 §3.12): the one translation of a SkilljarError, for every edge."""

from __future__ import annotations

from dataclasses import dataclass, field

from skilljar_scim.base.errors import RateLimited, SkilljarError, StoreBusy, Unauthorized
from skilljar_scim.scim.schemas import ERROR

INTERNAL = "internal server error"  # a 500's detail may name paths or SQL: the client gets this


@dataclass(frozen=True)
class ErrorResponse:
    """What to answer for an error: its status, SCIM error body and extra headers."""

    status: int
    body: dict
    headers: dict[str, str] = field(default_factory=dict)


def error_body(status: int, detail: str, scim_type: str | None = None) -> dict:
    """Return the JSON error document: schemas, status as a string, scimType, detail."""
    body: dict = {"schemas": [ERROR], "status": str(status)}
    if scim_type:
        body["scimType"] = scim_type
    body["detail"] = detail
    return body


def error_response(exc: SkilljarError, challenge: str = "Bearer") -> ErrorResponse:
    """Translate a domain error; a 401 carries `challenge` as WWW-Authenticate (RFC 6750 §3)."""
    if exc.status == 500:
        return ErrorResponse(exc.status, error_body(exc.status, INTERNAL))
    headers = {}
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = challenge
    if isinstance(exc, (RateLimited, StoreBusy)):
        headers["Retry-After"] = str(exc.retry_after)  # RFC 9110 §10.2.3
    return ErrorResponse(exc.status, error_body(exc.status, exc.detail, exc.scim_type), headers)
