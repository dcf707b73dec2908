"""POST /Bulk (RFC 7644 §3.7): operations in order, bulkId references, per-operation results."""

from __future__ import annotations

import pytest

from skilljar_scim.base.errors import DatabaseError
from skilljar_scim.domain import users

BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
BULK_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
BASE = "http://127.0.0.1:8080/scim/v2"  # server.host and port: never the Host header


def bulk(api, *operations, **extra):
    """POST a BulkRequest of `operations`; return the response after checking its envelope."""
    response = api.post("/Bulk", {"schemas": [BULK_REQUEST], "Operations": list(operations), **extra})
    body = response.get_json()
    assert response.status_code == 200, body
    assert response.mimetype == "application/scim+json"
    assert body["schemas"] == [BULK_RESPONSE]
    return body["Operations"]


def post_user(bulk_id: str, user_name: str, **attributes) -> dict:
    return {"method": "POST", "path": "/Users", "bulkId": bulk_id,
            "data": {"schemas": [USER], "userName": user_name, **attributes}}


def post_group(bulk_id: str, name: str, members: list[str] = ()) -> dict:
    return {"method": "POST", "path": "/Groups", "bulkId": bulk_id,
            "data": {"schemas": [GROUP], "displayName": name, "members": [{"value": m} for m in members]}}


def patch_op(path: str, *operations) -> dict:
    return {"method": "PATCH", "path": path, "data": {"schemas": [PATCH_OP], "Operations": list(operations)}}


def id_of(result: dict) -> str:
    return result["location"].rsplit("/", 1)[1]


def assert_failed(result: dict, status: int, scim_type: str | None = None) -> dict:
    """Assert one operation's result carries a SCIM error body (RFC 7644 §3.7.3)."""
    assert result["status"] == str(status), result
    error = result["response"]
    assert error["schemas"] == [ERROR] and error["status"] == str(status)
    assert error.get("scimType") == scim_type and error["detail"]
    return error


def count(api, endpoint: str) -> int:
    return api.get(endpoint).get_json()["totalResults"]


# --- §3.7.1, §3.7.2: creating with bulkId references --------------------------------------


def test_bulk_creates_users_and_group_referencing_them_by_bulk_id(api) -> None:
    results = bulk(api,
                   post_user("u1", "ann@example.com"),
                   post_user("u2", "bob@example.com"),
                   post_group("g1", "Engineering", ["bulkId:u1", "bulkId:u2"]),
                   patch_op("/Users/bulkId:u1", {"op": "replace", "path": "displayName", "value": "Ann"}))
    assert [(r["method"], r.get("bulkId"), r["status"]) for r in results] == [
        ("POST", "u1", "201"), ("POST", "u2", "201"), ("POST", "g1", "201"), ("PATCH", None, "200")]
    ann, bob, group = (id_of(r) for r in results[:3])
    assert results[0]["location"] == f"{BASE}/Users/{ann}"
    assert results[2]["location"] == f"{BASE}/Groups/{group}"
    assert results[3]["location"] == f"{BASE}/Users/{ann}"
    # Ann's version: 1 at creation, 2 when the group gained her, 3 after the PATCH.
    assert [r["version"] for r in results] == ['W/"1"', 'W/"1"', 'W/"1"', 'W/"3"']
    got = api.get(f"/Groups/{group}").get_json()
    assert sorted(m["value"] for m in got["members"]) == sorted([ann, bob])
    assert api.get(f"/Users/{ann}").get_json()["displayName"] == "Ann"


def test_bulk_group_patch_references_user_created_in_same_request(api) -> None:
    group = api.create_group("Engineering")
    results = bulk(api, post_user("new", "cat@example.com"),
                   patch_op(f"/Groups/{group['id']}", {"op": "add", "path": "members", "value": [{"value": "bulkId:new"}]}))
    assert [r["status"] for r in results] == ["201", "200"]
    assert results[1]["version"] == 'W/"2"'
    members = api.get(f"/Groups/{group['id']}").get_json()["members"]
    assert [m["value"] for m in members] == [id_of(results[0])]


def test_bulk_id_in_a_patch_filter_path_is_resolved(api) -> None:
    results = bulk(api, post_user("u1", "ann@example.com"), post_user("u2", "bob@example.com"),
                   post_group("g1", "Engineering", ["bulkId:u1", "bulkId:u2"]),
                   patch_op("/Groups/bulkId:g1", {"op": "remove", "path": 'members[value eq "bulkId:u1"]'}))
    assert [r["status"] for r in results] == ["201", "201", "201", "200"]
    members = api.get(f"/Groups/{id_of(results[2])}").get_json()["members"]
    assert [m["value"] for m in members] == [id_of(results[1])]


def test_bulk_text_that_merely_mentions_bulk_id_is_kept(api) -> None:
    results = bulk(api, post_user("u1", "ann@example.com", title="see bulkId:u1 for details"))
    assert results[0]["status"] == "201", results
    assert api.get(f"/Users/{id_of(results[0])}").get_json()["title"] == "see bulkId:u1 for details"


@pytest.mark.parametrize("operation", [
    pytest.param(post_group("g1", "Engineering", ["bulkId:nope"]), id="in-data"),
    pytest.param(patch_op("/Users/bulkId:nope", {"op": "replace", "path": "displayName", "value": "X"}), id="in-path"),
    pytest.param({"method": "DELETE", "path": "/Groups/bulkId:nope"}, id="in-delete-path"),
])
def test_bulk_unknown_bulk_id_fails_that_operation_with_400(api, operation) -> None:
    results = bulk(api, operation, post_user("u1", "ann@example.com"))
    assert_failed(results[0], 400, "invalidValue")
    assert results[1]["status"] == "201"
    assert count(api, "/Groups") == 0 and count(api, "/Users") == 1


def test_bulk_reference_to_failed_post_fails_too(api) -> None:
    api.create_user("ann@example.com")
    results = bulk(api, post_user("u1", "ANN@example.com"), post_group("g1", "Engineering", ["bulkId:u1"]))
    assert_failed(results[0], 409, "uniqueness")
    assert "location" not in results[0] and results[0]["bulkId"] == "u1"
    assert_failed(results[1], 400, "invalidValue")
    assert count(api, "/Groups") == 0


def test_bulk_post_without_bulk_id_fails(api) -> None:
    operation = post_user("x", "ann@example.com")
    del operation["bulkId"]
    assert_failed(bulk(api, operation)[0], 400, "invalidValue")
    assert count(api, "/Users") == 0


def test_bulk_duplicate_bulk_id_fails_the_second_post(api) -> None:
    results = bulk(api, post_user("u1", "ann@example.com"), post_user("u1", "bob@example.com"))
    assert results[0]["status"] == "201"
    assert_failed(results[1], 400, "invalidValue")
    assert count(api, "/Users") == 1


# --- §3.7: PUT, PATCH and DELETE operations -------------------------------------------------


def test_bulk_put_patch_delete_report_status_location_and_version(api) -> None:
    user = api.create_user("ann@example.com")
    doomed = api.create_user("bob@example.com")
    group = api.create_group("Engineering", [user["id"]])
    # Joining the group changed the user's `groups`, so its version is already 2.
    assert api.get(f"/Users/{user['id']}").get_json()["meta"]["version"] == 'W/"2"'
    results = bulk(api,
                   {"method": "PUT", "path": f"/Users/{user['id']}",
                    "data": {"schemas": [USER], "userName": "ann@example.com", "displayName": "Ann"}},
                   patch_op(f"/Groups/{group['id']}", {"op": "replace", "path": "displayName", "value": "Platform"}),
                   {"method": "DELETE", "path": f"/Users/{doomed['id']}"},
                   {"method": "put", "path": f"/Groups/{group['id']}", "data": {"schemas": [GROUP], "displayName": "Core"}})
    assert results == [
        {"method": "PUT", "status": "200", "location": f"{BASE}/Users/{user['id']}", "version": 'W/"3"'},
        {"method": "PATCH", "status": "200", "location": f"{BASE}/Groups/{group['id']}", "version": 'W/"2"'},
        {"method": "DELETE", "status": "204", "location": f"{BASE}/Users/{doomed['id']}"},
        {"method": "PUT", "status": "200", "location": f"{BASE}/Groups/{group['id']}", "version": 'W/"3"'},
    ]
    assert api.get(f"/Users/{user['id']}").get_json()["displayName"] == "Ann"
    assert api.get(f"/Users/{doomed['id']}").status_code == 404
    got = api.get(f"/Groups/{group['id']}").get_json()
    assert got["displayName"] == "Core" and "members" not in got


def test_bulk_delete_group(api) -> None:
    group = api.create_group("Engineering")
    results = bulk(api, {"method": "DELETE", "path": f"/Groups/{group['id']}"})
    assert results == [{"method": "DELETE", "status": "204", "location": f"{BASE}/Groups/{group['id']}"}]
    assert api.get(f"/Groups/{group['id']}").status_code == 404


@pytest.mark.parametrize("version, status", [('W/"1"', "200"), ('W/"9"', "412")])
def test_bulk_operation_version_is_if_match(api, version, status) -> None:
    user = api.create_user("ann@example.com")
    operation = {**patch_op(f"/Users/{user['id']}", {"op": "replace", "path": "displayName", "value": "A"}),
                 "version": version}
    result = bulk(api, operation)[0]
    assert result["status"] == status
    if status == "412":
        assert_failed(result, 412)
        assert result["location"] == f"{BASE}/Users/{user['id']}"


# --- §3.7.3: errors in single operations --------------------------------------------------


def test_bulk_error_in_one_operation_is_reported_and_others_succeed(api) -> None:
    api.create_user("taken@example.com")
    results = bulk(api, post_user("a", "ann@example.com"), post_user("b", "TAKEN@example.com"),
                   post_user("c", "cat@example.com"))
    assert [r["status"] for r in results] == ["201", "409", "201"]
    error = assert_failed(results[1], 409, "uniqueness")
    assert "taken" in error["detail"].lower() or "exists" in error["detail"].lower()
    assert count(api, "/Users") == 3


@pytest.mark.parametrize("operation, status, scim_type", [
    pytest.param({"method": "GET", "path": "/Users"}, 405, None, id="get-not-allowed"),
    pytest.param({"method": "POST", "path": "/Users/abc", "bulkId": "x",
                  "data": {"schemas": [USER], "userName": "a@x"}}, 405, None, id="post-to-resource"),
    pytest.param({"method": "PATCH", "path": "/Users"}, 405, None, id="patch-collection"),
    pytest.param({"method": "DELETE", "path": "/Things/1"}, 404, None, id="unknown-endpoint"),
    pytest.param({"method": "DELETE", "path": "/Users/no-such-user"}, 404, None, id="unknown-user"),
    pytest.param({"method": "DELETE"}, 400, "invalidValue", id="no-path"),
    pytest.param({"path": "/Users", "bulkId": "x", "data": {"schemas": [USER], "userName": "a@x"}}, 405, None,
                 id="no-method"),
    pytest.param(post_user("x", ""), 400, "invalidValue", id="invalid-data"),
    pytest.param({"method": "POST", "path": "/Users", "bulkId": "x", "data": "text"}, 400, "invalidSyntax",
                 id="data-not-object"),
    pytest.param(patch_op("/Groups/nope", {"op": "remove", "path": "members"}), 404, None, id="patch-unknown-group"),
    pytest.param("not an object", 400, "invalidSyntax", id="operation-not-object"),
])
def test_bulk_invalid_operation_fails_alone(api, operation, status, scim_type) -> None:
    results = bulk(api, operation, post_user("ok", "ok@example.com"))
    assert_failed(results[0], status, scim_type)
    assert results[1]["status"] == "201"
    assert count(api, "/Users") == 1


@pytest.mark.parametrize("fail_on_errors, expected", [
    (1, ["400"]),
    (2, ["400", "201", "400"]),
    (3, ["400", "201", "400", "201"]),
    (None, ["400", "201", "400", "201"]),
])
def test_bulk_fail_on_errors_stops_after_that_many_errors(api, fail_on_errors, expected) -> None:
    operations = [post_user("a", ""), post_user("b", "bob@example.com"), post_user("c", ""),
                  post_user("d", "dan@example.com")]
    extra = {} if fail_on_errors is None else {"failOnErrors": fail_on_errors}
    results = bulk(api, *operations, **extra)
    assert [r["status"] for r in results] == expected
    assert count(api, "/Users") == expected.count("201")


# --- malformed requests (the limits of §3.7.4: tests/hardening/test_limits.py) ---------------


@pytest.mark.parametrize("body, scim_type", [
    pytest.param(["not", "an", "object"], "invalidSyntax", id="array"),
    pytest.param({"Operations": []}, "invalidValue", id="no-schemas"),
    pytest.param({"schemas": [PATCH_OP], "Operations": []}, "invalidValue", id="wrong-schema"),
    pytest.param({"schemas": [BULK_REQUEST]}, "invalidSyntax", id="no-operations"),
    pytest.param({"schemas": [BULK_REQUEST], "Operations": {"method": "POST"}}, "invalidSyntax", id="operations-object"),
    pytest.param({"schemas": [BULK_REQUEST], "Operations": [], "failOnErrors": 0}, "invalidValue", id="fail-zero"),
    pytest.param({"schemas": [BULK_REQUEST], "Operations": [], "failOnErrors": True}, "invalidValue", id="fail-bool"),
    pytest.param({"schemas": [BULK_REQUEST], "Operations": [], "failOnErrors": "1"}, "invalidValue", id="fail-text"),
])
def test_bulk_body_that_is_not_a_bulk_request_is_400(api, body, scim_type) -> None:
    api.assert_error(api.post("/Bulk", body), 400, scim_type)


def test_bulk_invalid_json_is_400(api) -> None:
    api.assert_error(api.post("/Bulk", data="{not json"), 400, "invalidSyntax")


def test_bulk_empty_operations_returns_empty_response(api) -> None:
    assert bulk(api) == []


def test_bulk_internal_error_of_one_operation_is_generic(api, caplog, monkeypatch) -> None:
    """A 500 inside an operation answers as the server's handler does: detail in the log only."""
    def broken(*_args, **_kwargs):
        raise DatabaseError("cannot use database /srv/s3cr3t.db")

    monkeypatch.setattr(users, "create", broken)
    [result] = bulk(api, post_user("u1", "ann@example.com"))
    assert result["status"] == "500"
    assert result["response"]["detail"] == "internal server error"
    assert "s3cr3t" not in str(result) and "s3cr3t" in caplog.text
