"""Resource versions as weak ETags (RFC 7644 §3.14)."""

from __future__ import annotations

from typing import TypeVar

from skilljar_scim.base.errors import PreconditionFailed

T = TypeVar("T")


def etag(resource) -> str:
    """Return the weak ETag of a stored resource; it changes on every modification."""
    return f'W/"{resource.version}"'


def matches(header: str | None, resource) -> bool:
    """Say whether an If-Match / If-None-Match header names this resource's version."""
    if header is None:
        return False
    wanted = [v.strip() for v in header.split(",")]
    current = etag(resource)
    # Weak comparison (RFC 7232 §2.3.2): W/"3" and "3" name the same version.
    return "*" in wanted or any(v.removeprefix("W/") == current.removeprefix("W/") for v in wanted)


def check_if_match(resource: T, header: str | None) -> T:
    """Raise 412 when If-Match is given and names another version (RFC 7644 §3.14)."""
    if header is not None and not matches(header, resource):
        raise PreconditionFailed(f"the resource has changed: its version is now {etag(resource)}")
    return resource
