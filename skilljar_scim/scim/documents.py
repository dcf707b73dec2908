"""What users.py and groups.py share about stored SCIM documents."""

from __future__ import annotations

import json

from skilljar_scim.base import textkey
from skilljar_scim.base.errors import Mutability


def load(row) -> dict:
    """Return the canonical SCIM document stored in a row's `attributes` column."""
    return json.loads(row.attributes or "{}")


def strip(resource: dict, computed: tuple[str, ...]) -> dict:
    """Drop server-assigned and computed attributes before a resource is stored."""
    return {k: v for k, v in resource.items() if k not in computed}


def check_body_id(body: object, resource_id: str) -> None:
    """Accept an `id` in a PUT body only when it is the URL's (RFC 7643 §3.1: id is readOnly)."""
    if isinstance(body, dict):
        sent = textkey.get(body, "id")
        if sent not in (None, "", resource_id):
            raise Mutability(f"id is read-only: the body says {sent!r} but the URL says {resource_id!r}")
