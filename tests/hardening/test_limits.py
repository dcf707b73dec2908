"""Every limit is configurable, enforced end to end at its boundary, and advertised where SCIM has a place."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from urllib.parse import quote

import pytest

from skilljar_scim.base import config
from skilljar_scim.web.app import create_app

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
README = Path(__file__).resolve().parents[2] / "README.md"


def _limited(api, settings, *, server: dict | None = None, **limits):
    """Return an Api on an app whose [limits] (and [server]) settings are changed."""
    changed = dataclasses.replace(settings, limits=dataclasses.replace(settings.limits, **limits),
                                  server=dataclasses.replace(settings.server, **(server or {})))
    application = create_app(changed)
    application.config["TESTING"] = False
    return type(api)(application, api.token)


def _ops(count: int) -> dict:
    return {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "title", "value": f"t{n}"}
                                                  for n in range(count)]}


def _filter(depth: int) -> str:
    return "(" * depth + "title pr" + ")" * depth


# --- discovery ------------------------------------------------------------------------------


def test_limits_are_advertised_in_service_provider_config(api, settings) -> None:
    limited = _limited(api, settings, max_page_size=7, max_bulk_operations=3, max_bulk_payload_bytes=999)
    doc = limited.get("/ServiceProviderConfig").get_json()
    assert doc["filter"] == {"supported": True, "maxResults": 7}
    assert doc["bulk"] == {"supported": True, "maxOperations": 3, "maxPayloadSize": 999}


def test_limits_every_setting_is_documented_in_readme() -> None:
    text = README.read_text()
    section = text[text.index("### Limits"):]
    for name in [f.name for f in dataclasses.fields(config.LimitsSettings)] + ["max_body_bytes"]:
        assert f"`{name}`" in section, name
    for name in ("auth_failures_per_minute", "token_failures_per_minute", "trusted_proxies"):
        assert f"`{name}`" in text[text.index("### Rate limiting"):], name


# --- body size ------------------------------------------------------------------------------


BODY_LIMIT_CASES = [
    ("POST", "/Users", {"userName": "bob@example.com", "title": ""}, 201),
    ("PUT", "/Users/{id}", {"userName": "alice@example.com", "title": ""}, 200),
    ("PATCH", "/Users/{id}", {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "title", "value": ""}]}, 200),
    ("POST", "/Groups", {"displayName": "Engineering"}, 201),
    ("POST", "/Users/.search", {"schemas": [SEARCH], "filter": "userName pr"}, 200),
    ("POST", "/.search", {"schemas": [SEARCH], "filter": "externalId pr"}, 200),
]


@pytest.mark.parametrize(("method", "path", "body", "status"), BODY_LIMIT_CASES)
def test_limits_max_body_bytes_at_and_over(api, settings, method, path, body, status) -> None:
    """A valid body of exactly max_body_bytes gets its endpoint's success status; one byte more is 413."""
    limited = _limited(api, settings, server={"max_body_bytes": 300})
    user = api.create_user("alice@example.com")
    padded = json.dumps(body)
    at = padded[:-1] + " " * (300 - len(padded)) + padded[-1:]  # whitespace: still the same JSON
    assert len(at.encode()) == 300
    url = path.format(id=user["id"])
    response = limited.request(method, url, data=at)
    assert response.status_code == status, response.get_json()
    over = limited.request(method, url, data=at + " ")
    assert "too large" in limited.assert_error(over, 413)["detail"]


def test_limits_max_bulk_payload_bytes_at_and_over(api, settings) -> None:
    raw = json.dumps({"schemas": [BULK], "Operations": [{"method": "POST", "path": "/Users", "bulkId": "a",
                                                         "data": {"userName": "bulk@example.com"}}]})
    limited = _limited(api, settings, max_bulk_payload_bytes=len(raw))
    assert limited.request("POST", "/Bulk", data=raw).status_code == 200
    body = limited.assert_error(limited.request("POST", "/Bulk", data=raw + " "), 413)
    assert str(len(raw)) in body["detail"]


def test_limits_bulk_payload_limit_applies_to_bulk_instead_of_max_body_bytes(api, settings) -> None:
    """A BulkRequest may be larger than max_body_bytes, up to max_bulk_payload_bytes (RFC 7644 §3.7.4)."""
    limited = _limited(api, settings, server={"max_body_bytes": 200}, max_bulk_payload_bytes=10_000)
    body = {"schemas": [BULK], "Operations": [{"method": "POST", "path": "/Users", "bulkId": f"u{n}",
                                               "data": {"userName": f"u{n}@example.com", "title": "x" * 300}}
                                              for n in range(2)]}
    assert limited.post("/Bulk", body).status_code == 200
    limited.assert_error(limited.post("/Users", {"userName": "x", "title": "y" * 300}), 413)


# --- filters --------------------------------------------------------------------------------


def test_limits_max_filter_length_at_and_over(api, settings) -> None:
    limited = _limited(api, settings, max_filter_length=40)
    at = 'externalId eq "' + "a" * 24 + '"'  # an attribute of Users and Groups: valid at every endpoint
    assert len(at) == 40
    for text, ok in ((at, True), (at + " ", False)):
        for response in (limited.get(f"/Users?filter={quote(text)}"), limited.get(f"/Groups?filter={quote(text)}"),
                         limited.post("/Users/.search", {"schemas": [SEARCH], "filter": text}),
                         limited.post("/Groups/.search", {"schemas": [SEARCH], "filter": text}),
                         limited.post("/.search", {"schemas": [SEARCH], "filter": text})):
            if ok:  # exactly at the limit: answered, never refused
                assert response.status_code == 200, response.get_json()
                assert response.get_json()["totalResults"] == 0
            else:
                assert "40" in limited.assert_error(response, 400, "invalidFilter")["detail"]


def test_limits_max_filter_depth_at_and_over(api, settings) -> None:
    limited = _limited(api, settings, max_filter_depth=3)
    for text in (_filter(3), "not (((title pr)))", '((emails[type eq "work"]))'):
        assert limited.get(f"/Users?filter={quote(text)}").status_code == 200, text
        assert limited.post("/Users/.search", {"schemas": [SEARCH], "filter": text}).status_code == 200
    for text in (_filter(4), "not ((((title pr))))", '(((emails[type eq "work"])))'):
        body = limited.assert_error(limited.get(f"/Users?filter={quote(text)}"), 400, "invalidFilter")
        assert "3" in body["detail"]
        limited.assert_error(limited.get(f"/Groups?filter={quote(text)}"), 400, "invalidFilter")
        limited.assert_error(limited.post("/.search", {"schemas": [SEARCH], "filter": text}), 400, "invalidFilter")


# --- paging ---------------------------------------------------------------------------------


def test_limits_default_and_max_page_size(api, settings) -> None:
    limited = _limited(api, settings, default_page_size=2, max_page_size=3)
    for n in range(5):
        api.create_user(f"u{n}@example.com")
    api.create_group("G1"), api.create_group("G2"), api.create_group("G3"), api.create_group("G4")
    for path in ("/Users", "/Groups"):
        assert limited.get(path).get_json()["itemsPerPage"] == 2
        assert limited.get(f"{path}?count=3").get_json()["itemsPerPage"] == 3
        big = limited.get(f"{path}?count=1000000").get_json()
        assert big["itemsPerPage"] == 3 and big["totalResults"] >= 4
    searched = limited.post("/.search", {"schemas": [SEARCH], "count": 10**9}).get_json()
    assert searched["itemsPerPage"] == 3 and searched["totalResults"] == 9


# --- PATCH ------------------------------------------------------------------------------------


def test_limits_max_patch_operations_at_and_over(api, settings) -> None:
    limited = _limited(api, settings, max_patch_operations=3)
    user, group = api.create_user("alice@example.com"), api.create_group("Engineering")
    for path in (f"/Users/{user['id']}", f"/Groups/{group['id']}"):
        body = _ops(3) if path.startswith("/Users") else {"schemas": [PATCH_OP], "Operations": [
            {"op": "replace", "path": "externalId", "value": f"e{n}"} for n in range(3)]}
        if path.startswith("/Users"):
            assert limited.patch(path, body).status_code == 200
        else:  # a Group PATCH answers 204 (RFC 7644 §3.5.2)
            assert limited.group_ops(path, *body["Operations"]).get_json()["externalId"] == "e2"
        body["Operations"].append(body["Operations"][0])
        assert "3" in limited.assert_error(limited.patch(path, body), 400, "tooMany")["detail"]
    bulk = {"schemas": [BULK], "Operations": [{"method": "PATCH", "path": f"/Users/{user['id']}", "data": _ops(4)}]}
    result = limited.post("/Bulk", bulk).get_json()["Operations"][0]
    assert (result["status"], result["response"]["scimType"]) == ("400", "tooMany")


def test_limits_max_members_per_patch_at_and_over(api, settings) -> None:
    limited = _limited(api, settings, max_members_per_patch=3)
    ids = [api.create_user(f"m{n}@example.com")["id"] for n in range(4)]
    group = api.create_group("Engineering")
    path = f"/Groups/{group['id']}"

    def members(count: int) -> list[dict]:
        return [{"value": i} for i in ids[:count]]

    bodies = {
        "add": lambda n: {"op": "add", "path": "members", "value": members(n)},
        "replace": lambda n: {"op": "replace", "path": "members", "value": members(n)},
        "pathless": lambda n: {"op": "add", "value": {"members": members(n)}},
        "remove": lambda n: {"op": "remove", "path": "members[" + " or ".join(
            f'value eq "{i}"' for i in ids[:n]) + "]"},
    }
    for name, operation in bodies.items():
        after = limited.group_ops(path, operation(3)).get_json()  # a Group PATCH answers 204 (RFC 7644 §3.5.2)
        expected = [] if name == "remove" else sorted(ids[:3])
        assert sorted(m["value"] for m in after.get("members", [])) == expected, name
        limited.assert_error(limited.patch(path, {"schemas": [PATCH_OP], "Operations": [operation(4)]}), 400, "tooMany")
    split = {"schemas": [PATCH_OP], "Operations": [bodies["add"](2), bodies["remove"](2)]}  # 4 changes in all
    limited.assert_error(limited.patch(path, split), 400, "tooMany")
    create = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Big", "members": members(4)}
    limited.assert_error(limited.post("/Groups", create), 400, "tooMany")
    limited.assert_error(limited.put(path, {**create, "displayName": "Engineering"}), 400, "tooMany")
    assert limited.post("/Groups", {**create, "members": members(3)}).status_code == 201


# --- Bulk ---------------------------------------------------------------------------------------


def test_limits_max_bulk_operations_at_and_over(api, settings) -> None:
    limited = _limited(api, settings, max_bulk_operations=2)

    def bulk(count: int) -> dict:
        return {"schemas": [BULK], "Operations": [{"method": "POST", "path": "/Users", "bulkId": f"b{n}",
                                                   "data": {"userName": f"b{n}-{count}@example.com"}}
                                                  for n in range(count)]}

    response = limited.post("/Bulk", bulk(2))
    assert [op["status"] for op in response.get_json()["Operations"]] == ["201", "201"]
    assert "2" in limited.assert_error(limited.post("/Bulk", bulk(3)), 413)["detail"]
    assert limited.get("/Users").get_json()["totalResults"] == 2  # nothing of the refused request ran
