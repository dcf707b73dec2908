"""Bulk operations (RFC 7644 §3.7)."""

from __future__ import annotations

import logging
import re
from typing import Any, Callable

from skilljar_scim.base import clock
from skilljar_scim.domain import groups, users
from skilljar_scim.base.errors import (InvalidSyntax, InvalidValue, MethodNotAllowed, NotFound,
                                  PayloadTooLarge, SkilljarError)
from skilljar_scim.domain.events import Actor
from skilljar_scim.scim.errors import error_response
from skilljar_scim.scim.resources import Bounds
from skilljar_scim.scim.schemas import BULK_REQUEST, BULK_RESPONSE, declares

log = logging.getLogger("skilljar_scim.domain")

# A whole value `bulkId:<id>`, or a quoted one inside a PATCH filter path (RFC 7644 §3.7.2).
_WHOLE = re.compile(r"^bulkId:([^\s\"/]+)$")
_QUOTED = re.compile(r"\"bulkId:([^\s\"/]+)\"")


def execute(actor: Actor, body: object, base_url: str, limits) -> dict:
    """Run a BulkRequest's operations in order, each on its own (RFC 7644 §3.7).

    Past the request's deadline, the operation at hand answers 503 (rolled back) and none
    after it runs, as failOnErrors would stop them; those before it stay done.
    """
    operations, fail_on_errors = _check_request(body, limits.max_bulk_operations)
    ids: dict[str, str] = {}
    results, errors = [], 0
    for operation in operations:
        result = _run_one(actor, operation, ids, base_url, limits)
        results.append(result)
        errors += int(result["status"]) >= 400
        if (fail_on_errors and errors >= fail_on_errors) or (result["status"] == "503" and clock.past_deadline()):
            break
    return {"schemas": [BULK_RESPONSE], "Operations": results}


def _check_request(body: object, max_operations: int) -> tuple[list, int | None]:
    """Check the BulkRequest envelope (RFC 7644 §3.7, §3.7.4)."""
    if not isinstance(body, dict):
        raise InvalidSyntax("a BulkRequest must be a JSON object")
    if not declares(body.get("schemas"), BULK_REQUEST):
        raise InvalidValue(f"a BulkRequest must declare schemas [{BULK_REQUEST!r}]")
    operations = body.get("Operations")
    if not isinstance(operations, list):
        raise InvalidSyntax('"Operations" must be a JSON array')
    if len(operations) > max_operations:
        raise PayloadTooLarge(f"a bulk request may hold at most {max_operations} operations")
    fail_on_errors = body.get("failOnErrors")
    if fail_on_errors is not None and (isinstance(fail_on_errors, bool) or not isinstance(fail_on_errors, int) or fail_on_errors < 1):
        raise InvalidValue("failOnErrors must be a positive integer")
    return operations, fail_on_errors


def _run_one(actor: Actor, operation: Any, ids: dict[str, str], base_url: str, limits) -> dict:
    """Run one operation and describe its outcome; a failure is its own (RFC 7644 §3.7.3)."""
    given = operation if isinstance(operation, dict) else {}
    result: dict = {"method": str(given.get("method", "")).upper() or None, "bulkId": given.get("bulkId")}
    try:
        clock.check_deadline()
        if not isinstance(operation, dict):
            raise InvalidSyntax("each bulk operation must be a JSON object")
        kind, resource_id = _target(_resolve_path(operation.get("path"), ids))
        if resource_id is not None:
            result["location"] = f"{base_url}/{kind}/{resource_id}"
        status, resource = _dispatch(actor, result["method"], operation, (kind, resource_id), ids, base_url, limits)
        result["status"] = str(status)
        if resource is not None:
            result.update(location=resource["meta"]["location"], version=resource["meta"]["version"])
    except SkilljarError as exc:
        if exc.status == 500:  # as the server's handler does: the detail goes to the log only
            log.error("bulk operation failed", exc_info=exc)
        answer = error_response(exc)
        result["status"] = str(answer.status)
        result["response"] = answer.body
    return {k: v for k, v in result.items() if v is not None}


def _dispatch(actor: Actor, method: str | None, operation: dict, target: tuple[str, str | None],
              ids: dict[str, str], base_url: str, limits) -> tuple[int, dict | None]:
    """Call the domain function the method names on the target (RFC 7644 §3.7)."""
    (kind, resource_id) = target
    service = _services(base_url)[kind]
    data, version = _resolve(operation.get("data"), ids), _version(operation.get("version"))
    if method == "POST" and resource_id is None:
        bulk_id = _new_bulk_id(operation.get("bulkId"), ids)
        created = service["create"](actor, data, limits)
        ids[bulk_id] = created.id
        return 201, service["render"](created)
    if resource_id is None or method not in ("PUT", "PATCH", "DELETE"):
        raise MethodNotAllowed(f"{method or 'an empty method'} is not allowed on {operation.get('path')!r}")
    if method == "DELETE":
        service["delete"](actor, resource_id, version)
        return 204, None
    changed = service[method.lower()](actor, resource_id, data, version, limits)
    return 200, service["render"](changed)


def _version(version: Any) -> str | None:
    """Check an operation's `version`: an ETag string, used as If-Match (RFC 7644 §3.7, §3.14)."""
    if version is not None and not isinstance(version, str):
        raise InvalidValue("a bulk operation's version must be an ETag string such as W/\"3\"")
    return version


def _new_bulk_id(bulk_id: Any, ids: dict[str, str]) -> str:
    """Check a POST's bulkId: required, and unique within the request (RFC 7644 §3.7)."""
    if not isinstance(bulk_id, str) or not bulk_id:
        raise InvalidValue("a bulk POST needs a bulkId")
    if bulk_id in ids:
        raise InvalidValue(f"bulkId {bulk_id!r} is used by an earlier operation of this request")
    return bulk_id


def _target(path: Any) -> tuple[str, str | None]:
    """Split `/Users` or `/Groups/{id}` into (endpoint, id or None)."""
    if not isinstance(path, str):
        raise InvalidValue("each bulk operation needs a path such as /Users or /Groups/{id}")
    parts = path.strip("/").split("/")
    if parts[0] not in ("Users", "Groups") or len(parts) > 2:
        raise NotFound(f"no such endpoint {path!r}")
    return parts[0], parts[1] if len(parts) == 2 else None


def _resolve_path(path: Any, ids: dict[str, str]) -> Any:
    """Replace a `bulkId:<id>` path segment (`/Users/bulkId:u1`) with the created id."""
    if not isinstance(path, str):
        return path
    return "/".join(_resolve(segment, ids) for segment in path.split("/"))


def _resolve(value: Any, ids: dict[str, str]) -> Any:
    """Replace bulkId references in data with the ids created earlier in this request (RFC 7644 §3.7.2)."""
    if isinstance(value, str):
        whole = _WHOLE.match(value)
        if whole:
            return _lookup(whole.group(1), ids)
        return _QUOTED.sub(lambda m: f'"{_lookup(m.group(1), ids)}"', value)
    if isinstance(value, list):
        return [_resolve(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _resolve(v, ids) for k, v in value.items()}
    return value


def _lookup(bulk_id: str, ids: dict[str, str]) -> str:
    if bulk_id not in ids:
        raise InvalidValue(f"bulkId {bulk_id!r} does not name a resource created earlier in this request")
    return ids[bulk_id]


def _services(base_url: str) -> dict[str, dict[str, Callable]]:
    """Map each endpoint to the domain calls a bulk operation can make on it."""
    return {
        "Users": {
            "create": lambda actor, data, limits: users.create(actor, data, Bounds.from_limits(limits)).user,
            "put": lambda actor, rid, data, version, limits: users.replace(actor, rid, data, version,
                                                                           Bounds.from_limits(limits)),
            "patch": lambda actor, rid, data, version, limits: users.patch(actor, rid, data, version, limits.max_patch_operations,
                                                                           Bounds.from_limits(limits)),
            "delete": users.delete,
            "render": lambda user: users.render(user, base_url),
        },
        "Groups": {
            "create": lambda actor, data, limits: groups.create(actor, data, limits.max_members_per_patch,
                                                                Bounds.from_limits(limits)),
            "put": lambda actor, rid, data, version, limits: groups.replace(actor, rid, data, version, limits.max_members_per_patch,
                                                                            Bounds.from_limits(limits)),
            "patch": lambda actor, rid, data, version, limits: groups.patch(
                actor, rid, data, version, limits.max_patch_operations, limits.max_members_per_patch,
                Bounds.from_limits(limits)),
            "delete": groups.delete,
            "render": lambda group: groups.render(group, base_url, with_members=False),
        },
    }
