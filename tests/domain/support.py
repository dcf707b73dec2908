"""Bodies and look-ups the domain tests share."""

from __future__ import annotations

from skilljar_scim.store.models import Event

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BASE = "http://scim.test/scim/v2"
CATALOG = {"api-admin": "API", "codes-admin": "Codes", "analytics-admin": "Analytics"}


def user_body(user_name: str, **attributes) -> dict:
    return {"schemas": [USER], "userName": user_name, **attributes}


def group_body(name: str, members: list[str] = (), **attributes) -> dict:
    return {"schemas": [GROUP], "displayName": name, "members": [{"value": m} for m in members], **attributes}


def patch_body(*operations) -> dict:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


def actions(resource_id: str) -> list[str]:
    """Return the actions recorded about one resource, oldest first."""
    return [e.action for e in Event.select().where(Event.resource_id == resource_id).order_by(Event.id)]
