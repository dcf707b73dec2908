"""Versions of /Users resources: weak ETags, If-Match and If-None-Match (RFC 7644 §3.14)."""

from __future__ import annotations

import re

import pytest

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


# --- helpers ------------------------------------------------------------------------------------


@pytest.fixture
def ann(api) -> dict:
    return api.create_user("ann@example.com", displayName="Ann", title="Engineer")


def fetch(api, user_id: str) -> dict:
    response = api.get(f"/Users/{user_id}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def replace_title(title: str) -> dict:
    return {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "title", "value": title}]}


def write(api, method: str, user_id: str, headers: dict | None = None):
    """Send one modifying request of each kind."""
    bodies = {"PUT": {"schemas": [USER], "userName": "ann@example.com", "title": "Put"},
              "PATCH": replace_title("Patched"), "DELETE": None}
    return api.request(method, f"/Users/{user_id}", bodies[method], headers=headers)


def strong(version: str) -> str:
    return version.removeprefix("W/")


# --- meta.version and ETag ------------------------------------------------------------------------


def test_version_is_a_weak_etag_in_header_and_meta(api, ann) -> None:
    assert re.fullmatch(r'W/"[^"]+"', ann["meta"]["version"])
    response = api.get(f"/Users/{ann['id']}")
    assert response.headers["ETag"] == response.get_json()["meta"]["version"] == ann["meta"]["version"]


def test_version_changes_on_every_modification(api, ann) -> None:
    seen = [ann["meta"]["version"]]
    steps = [
        lambda: api.put(f"/Users/{ann['id']}", {"schemas": [USER], "userName": "ann@example.com", "title": "A"}),
        lambda: api.patch(f"/Users/{ann['id']}", replace_title("B")),
        lambda: api.patch(f"/Users/{ann['id']}", replace_title("C")),
        lambda: api.put(f"/Users/{ann['id']}", {"schemas": [USER], "userName": "ann@example.com", "active": False}),
    ]
    for step in steps:
        response = step()
        body = response.get_json()
        assert response.status_code == 200, body
        assert response.headers["ETag"] == body["meta"]["version"] == fetch(api, ann["id"])["meta"]["version"]
        seen.append(body["meta"]["version"])
    assert len(set(seen)) == len(seen)


@pytest.mark.parametrize(
    "operations",
    [
        [{"op": "replace", "path": "title", "value": "Engineer"}],
        [{"op": "replace", "value": {"displayName": "Ann", "title": "Engineer"}}],
        [{"op": "add", "path": "title", "value": "Engineer"}],
        [{"op": "replace", "path": "title", "value": "Other"}, {"op": "replace", "path": "title", "value": "Engineer"}],
    ],
)
def test_version_unchanged_by_no_op_patch(api, ann, operations: list) -> None:
    response = api.patch(f"/Users/{ann['id']}", {"schemas": [PATCH_OP], "Operations": operations})
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == ann
    assert response.headers["ETag"] == ann["meta"]["version"]
    assert fetch(api, ann["id"])["meta"] == ann["meta"]


def test_version_unchanged_by_identical_put(api, ann) -> None:
    body = {"schemas": [USER], "userName": "ann@example.com", "displayName": "Ann", "title": "Engineer"}
    response = api.put(f"/Users/{ann['id']}", body)
    assert response.status_code == 200 and response.get_json() == ann


def test_version_listed_resources_carry_their_version(api, ann) -> None:
    listed = api.get("/Users").get_json()["Resources"]
    assert [r["meta"]["version"] for r in listed] == [ann["meta"]["version"]]


# --- If-Match (RFC 7644 §3.14, RFC 7232 §3.1) ------------------------------------------------------


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("stale", ['W/"999"', '"999"', 'W/"999", W/"998"'])
def test_if_match_mismatch_is_412_and_changes_nothing(api, ann, method: str, stale: str) -> None:
    api.assert_error(write(api, method, ann["id"], {"If-Match": stale}), 412)
    assert fetch(api, ann["id"]) == ann


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_if_match_previous_version_is_412(api, ann, method: str) -> None:
    api.patch(f"/Users/{ann['id']}", replace_title("Moved on"))
    current = fetch(api, ann["id"])
    api.assert_error(write(api, method, ann["id"], {"If-Match": ann["meta"]["version"]}), 412)
    assert fetch(api, ann["id"]) == current


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("form", ["weak", "strong", "star", "list"])
def test_if_match_current_version_succeeds(api, ann, method: str, form: str) -> None:
    version = ann["meta"]["version"]
    header = {"weak": version, "strong": strong(version), "star": "*", "list": f'W/"999", {version}'}[form]
    response = write(api, method, ann["id"], {"If-Match": header})
    assert response.status_code == (204 if method == "DELETE" else 200), response.get_json()
    if method == "DELETE":
        api.assert_error(api.get(f"/Users/{ann['id']}"), 404)
    else:
        assert response.get_json()["meta"]["version"] != version


def test_if_match_on_unknown_user_is_404(api) -> None:
    api.assert_error(api.patch("/Users/no-such-id", replace_title("x"), headers={"If-Match": "*"}), 404)


# --- If-None-Match on GET (RFC 7232 §3.2) ----------------------------------------------------------


@pytest.mark.parametrize("form", ["weak", "strong", "star"])
def test_if_none_match_current_version_is_304(api, ann, form: str) -> None:
    version = ann["meta"]["version"]
    header = {"weak": version, "strong": strong(version), "star": "*"}[form]
    response = api.get(f"/Users/{ann['id']}", headers={"If-None-Match": header})
    assert response.status_code == 304
    assert response.data == b""
    assert response.headers["ETag"] == version


def test_if_none_match_stale_version_returns_resource(api, ann) -> None:
    old = ann["meta"]["version"]
    api.patch(f"/Users/{ann['id']}", replace_title("Moved on"))
    response = api.get(f"/Users/{ann['id']}", headers={"If-None-Match": old})
    assert response.status_code == 200
    assert response.get_json()["title"] == "Moved on"
    assert response.headers["ETag"] != old


def test_if_none_match_on_deleted_user_is_404(api, ann) -> None:
    api.delete(f"/Users/{ann['id']}")
    api.assert_error(api.get(f"/Users/{ann['id']}", headers={"If-None-Match": "*"}), 404)
