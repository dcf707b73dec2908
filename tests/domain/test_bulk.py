"""Bulk (RFC 7644 §3.7): operations in order, bulkId references, per-operation errors, limits."""

from __future__ import annotations

import pytest

from skilljar_scim.base.errors import InvalidValue, PayloadTooLarge
from skilljar_scim.domain import bulk, groups
from skilljar_scim.domain.events import CLI
from skilljar_scim.scim.schemas import BULK_REQUEST, BULK_RESPONSE, ERROR
from skilljar_scim.store.models import User

from domain.support import BASE, group_body, user_body


def _run(limits, *operations, **extra) -> list[dict]:
    answer = bulk.execute(CLI, {"schemas": [BULK_REQUEST], "Operations": list(operations), **extra}, BASE, limits)
    assert answer["schemas"] == [BULK_RESPONSE]
    return answer["Operations"]


def _post_user(bulk_id: str, name: str) -> dict:
    return {"method": "POST", "path": "/Users", "bulkId": bulk_id, "data": user_body(name)}


def test_bulk_post_can_refer_to_a_user_created_earlier_in_the_request(store, limits) -> None:
    results = _run(limits, _post_user("u1", "ann@example.com"),
                   {"method": "POST", "path": "/Groups", "bulkId": "g1", "data": group_body("Ops", ["bulkId:u1"])})
    assert [r["status"] for r in results] == ["201", "201"]
    user_id = results[0]["location"].rsplit("/", 1)[1]
    group = groups.get(results[1]["location"].rsplit("/", 1)[1])
    assert [m["value"] for m in groups.render(group, BASE)["members"]] == [user_id]


def test_bulk_failed_operation_has_its_own_error_and_the_rest_run(store, limits) -> None:
    results = _run(limits, _post_user("u1", "ann@example.com"), _post_user("u2", "ann@example.com"),
                   _post_user("u3", "bob@example.com"))
    assert [r["status"] for r in results] == ["201", "409", "201"]
    assert results[1]["response"]["schemas"] == [ERROR] and results[1]["response"]["scimType"] == "uniqueness"
    assert sorted(u.user_name for u in User.select()) == ["ann@example.com", "bob@example.com"]


def test_bulk_fail_on_errors_stops_after_that_many_failures(store, limits) -> None:
    results = _run(limits, _post_user("u1", "ann@example.com"), _post_user("u2", "ann@example.com"),
                   _post_user("u3", "bob@example.com"), failOnErrors=1)
    assert [r["status"] for r in results] == ["201", "409"]


@pytest.mark.parametrize("body, error", [
    ({"schemas": ["urn:example:wrong"], "Operations": []}, InvalidValue),
    ({"schemas": [BULK_REQUEST], "Operations": [], "failOnErrors": 0}, InvalidValue),
])
def test_bulk_bad_envelope_is_refused(store, limits, body, error) -> None:
    with pytest.raises(error):
        bulk.execute(CLI, body, BASE, limits)


def test_bulk_more_operations_than_the_limit_is_payload_too_large(store, limits) -> None:
    operations = [_post_user(f"u{i}", f"u{i}@example.com") for i in range(limits.max_bulk_operations + 1)]
    with pytest.raises(PayloadTooLarge):
        bulk.execute(CLI, {"schemas": [BULK_REQUEST], "Operations": operations}, BASE, limits)
    assert User.select().count() == 0
