"""SCIM error bodies (RFC 7644 §3.12)."""

from __future__ import annotations

from skilljar_scim.scim.schemas import ERROR


def error_body(status: int, detail: str, scim_type: str | None = None) -> dict:
    """Return the JSON error document: schemas, status as a string, scimType, detail."""
    body: dict = {"schemas": [ERROR], "status": str(status)}
    if scim_type:
        body["scimType"] = scim_type
    body["detail"] = detail
    return body
