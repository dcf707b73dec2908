"""Read-only tokens and the events API (GET /api/v1/events) through the Flask test client."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from skilljar_scim.base import clock
from skilljar_scim.domain import events, feed, tokens
from skilljar_scim.store import models

EVENTS = "/api/v1/events"
T0 = datetime(2026, 1, 1, 12, 0, 0)


@pytest.fixture
def reader(api, keys) -> str:
    return tokens.generate(keys, "Dashboard", None, scope="read").value


def _get(api, token: str, query: str = ""):
    return api.client.get(EVENTS + query, headers={"Authorization": f"Bearer {token}"})


def _page(api, token: str, query: str = "") -> dict:
    response = _get(api, token, query)
    assert response.status_code == 200, response.get_json()
    assert response.mimetype == "application/json"
    return response.get_json()


def _walk(api, token: str, after: str | None = None, limit: int = 2, types: str = "") -> tuple[list[dict], str]:
    """Follow `next` until has_more is false; return every item and the final cursor."""
    items, pages = [], 0
    while True:
        query = f"?limit={limit}" + (f"&after={after}" if after else "") + (f"&types={types}" if types else "")
        body = _page(api, token, query)
        items += body["data"]
        after, pages = body["next"], pages + 1
        assert len(body["data"]) <= limit and pages < 50
        if not body["has_more"]:
            return items, after


@pytest.fixture
def clock_at(monkeypatch):
    """A controlled clock: set now[0] to move it."""
    now = [T0]
    monkeypatch.setattr(clock, "utcnow", lambda: now[0])
    return now


# --- scopes -----------------------------------------------------------------------------


@pytest.mark.parametrize("method, path, body", [
    ("POST", "/Users", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "x@example.com"}),
    ("PUT", "/Users/{id}", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "y@example.com"}),
    ("PATCH", "/Users/{id}", {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                              "Operations": [{"op": "replace", "path": "active", "value": False}]}),
    ("DELETE", "/Users/{id}", None),
    ("POST", "/Groups", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "G"}),
    ("POST", "/Bulk", {"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": []}),
])
def test_scope_read_token_is_refused_every_write(api, reader, method, path, body) -> None:
    alice = api.create_user("alice@example.com")
    response = api.request(method, path.format(id=alice["id"]), body, token=reader)
    detail = api.assert_error(response, 403)["detail"]
    assert "read token" in detail
    assert api.get(f"/Users/{alice['id']}").get_json()["active"] is True  # nothing changed
    assert models.User.select().count() == 1


@pytest.mark.parametrize("method, path, body", [
    ("GET", "/Users", None),
    ("GET", "/Users/{id}", None),
    ("GET", "/Groups", None),
    ("POST", "/Users/.search", {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]}),
    ("POST", "/.search", {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]}),
    ("GET", "/ServiceProviderConfig", None),
    ("GET", "/Schemas", None),
])
def test_scope_read_token_can_do_every_scim_read(api, reader, method, path, body) -> None:
    alice = api.create_user("alice@example.com")
    response = api.request(method, path.format(id=alice["id"]), body, token=reader)
    assert response.status_code == 200, response.get_json()


def test_scope_provision_token_is_refused_the_events_api(api) -> None:
    response = _get(api, api.token)
    assert "provision token" in api.assert_error(response, 403)["detail"]


def test_scope_events_api_without_or_with_revoked_token_is_401(api, reader) -> None:
    api.assert_error(api.client.get(EVENTS), 401)
    tokens.revoke(tokens.find("Dashboard"))
    response = _get(api, reader)
    api.assert_error(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


# --- the feed ---------------------------------------------------------------------------


def test_events_api_pages_oldest_first_and_follows_new_events(api, reader) -> None:
    created = [api.create_user(f"u{n}@example.com")["id"] for n in range(5)]
    items, cursor = _walk(api, reader, limit=2)
    assert [i["type"] for i in items] == ["user.created"] * 5  # token.* only when asked for
    assert [i["data"]["id"] for i in items] == created
    assert _page(api, reader, f"?after={cursor}") == {"data": [], "next": cursor, "has_more": False}
    late = api.create_user("late@example.com")["id"]
    body = _page(api, reader, f"?after={cursor}")
    assert [i["data"]["id"] for i in body["data"]] == [late] and body["next"] > cursor


def test_events_api_any_event_id_is_a_cursor(api, reader) -> None:
    for n in range(3):
        api.create_user(f"u{n}@example.com")
    items, _ = _walk(api, reader, limit=10)
    rest = _page(api, reader, f"?after={items[0]['id']}")["data"]
    assert rest == items[1:]


def test_events_api_types_filter_and_token_types_when_asked(api, reader) -> None:
    alice = api.create_user("alice@example.com")
    api.create_group("Team", [alice["id"]])
    only, _ = _walk(api, reader, types="group.created,membership.added", limit=10)
    assert [i["type"] for i in only] == ["group.created", "membership.added"]
    minted, _ = _walk(api, reader, types="token.created", limit=10)
    assert [i["data"]["name"] for i in minted] == ["Test IdP", "Dashboard"]


def test_events_api_cursor_moves_past_events_of_other_types(api, reader) -> None:
    api.create_user("alice@example.com")
    body = _page(api, reader, "?types=role.granted")
    newest = models.Event.select().order_by(models.Event.id.desc()).first()
    assert body == {"data": [], "next": events.event_id(newest.id), "has_more": False}


@pytest.mark.parametrize("query", ["?types=user.created,user.exploded", "?types=token.*"])
def test_events_api_unknown_type_is_400_listing_valid_ones(api, reader, query) -> None:
    detail = api.assert_error(_get(api, reader, query), 400, "invalidValue")["detail"]
    assert "user.created" in detail and "role.revoked" in detail


@pytest.mark.parametrize("limit", ["0", "1001", "-1", "abc", "1.5", "1e3", " "])
def test_events_api_limit_outside_1_to_1000_is_400(api, reader, limit) -> None:
    api.assert_error(_get(api, reader, f"?limit={limit}"), 400, "invalidValue")


def test_events_api_limit_default_100_and_max_1000(api, reader, keys) -> None:
    for n in range(101):
        models.Event.create(at=clock.utcnow(), actor="cli", action="user.updated", data='{"id": "x"}')
    assert len(_page(api, reader)["data"]) == 100
    assert len(_page(api, reader, "?limit=1000")["data"]) == 101


@pytest.mark.parametrize("cursor", ["42", "evt_xyz", "evt_00000000000000zz", "evt_" + "0" * 17, "../../etc"])
def test_events_api_malformed_cursor_is_400(api, reader, cursor) -> None:
    api.assert_error(_get(api, reader, f"?after={cursor}"), 400, "invalidValue")


def test_events_api_cursor_ahead_of_the_store_is_410(api, reader) -> None:
    api.create_user("alice@example.com")
    detail = api.assert_error(_get(api, reader, f"?after={events.event_id(10_000)}"), 410)["detail"]
    assert "SCIM" in detail


def test_events_api_other_methods_and_paths_are_scim_errors(api, reader) -> None:
    api.assert_error(api.client.post(EVENTS, headers={"Authorization": f"Bearer {reader}"}), 405)
    api.assert_error(api.client.get("/api/v1/nothing", headers={"Authorization": f"Bearer {reader}"}), 404)


# --- retention (controlled clock) -------------------------------------------------------


def _old_and_new(api, clock_at) -> tuple[list[dict], list[dict]]:
    """Three users created at T0, two at T0 + 50 days; returns their user.created items by era."""
    for n in range(3):
        api.create_user(f"old{n}@example.com")
    clock_at[0] = T0 + timedelta(days=50)
    for n in range(2):
        api.create_user(f"new{n}@example.com")
    items = [events.feed_item(e) for e in models.Event.select().where(models.Event.action == "user.created")
             .order_by(models.Event.id)]
    return items[:3], items[3:]


def test_events_api_retention_hides_expired_events_and_410s_their_cursors(clock_at, api, reader) -> None:
    old, new = _old_and_new(api, clock_at)
    clock_at[0] = T0 + timedelta(days=95)  # retention 90 days: the T0 events are past it
    api.app.extensions["skilljar_pruner"].retention_days = 0  # nothing deleted yet: hidden by the clock alone
    assert [i["id"] for i in _walk(api, reader)[0]] == [i["id"] for i in new]
    detail = api.assert_error(_get(api, reader, f"?after={old[0]['id']}"), 410)["detail"]
    assert "resync" in detail.lower() or "SCIM" in detail
    assert _page(api, reader, f"?after={old[-1]['id']}")["data"] == new  # it missed nothing


def test_events_api_pruning_deletes_expired_events_and_410s_cursors_before_them(clock_at, api, reader) -> None:
    old, new = _old_and_new(api, clock_at)
    clock_at[0] = T0 + timedelta(days=95)
    api.app.extensions["skilljar_pruner"].next_at = None  # a pass is due at the next request's end
    _page(api, reader)
    kept = {e.action for e in models.Event.select()}
    assert models.Event.select().where(models.Event.at < T0 + timedelta(days=5)).count() == 0
    assert "user.created" in kept
    assert models.EventsPruned.get().through_id >= feed.decode_cursor(old[-1]["id"])
    assert _page(api, reader, f"?after={old[-1]['id']}")["data"] == new
    # Even with retention raised afterwards, what was deleted stays gone: 410, not a silent gap.
    api.app.config["SKILLJAR_SETTINGS"] = _with_retention(api.app.config["SKILLJAR_SETTINGS"], 3650)
    api.assert_error(_get(api, reader, f"?after={old[0]['id']}"), 410)


def _with_retention(settings, days: int):
    return replace(settings, events=replace(settings.events, retention_days=days))
