"""`scim users list` on long listings: batches by keyset, the same rows in the same order (issue 6)."""

from __future__ import annotations

import pytest

from skilljar_scim.base import clock
from skilljar_scim.domain import listings as directory


@pytest.fixture
def people(api, initialised):
    """Seven users whose userNames sort differently from their creation order."""
    names = ["gus@example.com", "Ann@example.com", "eve@example.com", "bob@example.com", "Dan@example.com",
             "fay@example.com", "cat@example.com"]
    made = {name: api.create_user(name) for name in names}
    return {"cli": initialised, "api": api, "made": made}


@pytest.mark.parametrize("batch", [1, 2, 3, 7, 500])
def test_users_listing_batches_by_keyset_give_every_user_once_in_order(people, monkeypatch, batch):
    monkeypatch.setattr(directory, "BATCH", batch)
    rows = people["cli"].json("users", "list")
    assert [r["userName"] for r in rows] == sorted(people["made"], key=str.casefold)
    assert {r["id"] for r in rows} == {u["id"] for u in people["made"].values()}


@pytest.mark.parametrize("limit", [0, 1, 2, 5, 7, 9])
def test_users_listing_limit_across_batches(people, monkeypatch, limit):
    monkeypatch.setattr(directory, "BATCH", 2)
    rows = people["cli"].json("users", "list", "--limit", str(limit))
    assert [r["userName"] for r in rows] == sorted(people["made"], key=str.casefold)[:limit]


def test_users_listing_rows_match_the_scim_resource(people):
    api = people["api"]
    gus = people["made"]["gus@example.com"]
    api.ops(f"/Users/{gus['id']}", {"op": "replace", "value": {"active": False}})
    row = next(r for r in people["cli"].json("users", "list") if r["id"] == gus["id"])
    resource = api.get(f"/Users/{gus['id']}").get_json()
    assert row["status"] == "inactive"
    assert (row["created_at"], row["updated_at"]) == (resource["meta"]["created"], resource["meta"]["lastModified"])


@pytest.mark.parametrize("stored, shown", [
    ("2026-11-28 19:14:05", "2026-11-28T19:14:05Z"),
    ("2026-11-28 19:14:05.250000", "2026-11-28T19:14:05Z"),  # written by something else than utcnow()
    (None, None),
])
def test_users_listing_iso_stored_matches_iso(stored, shown):
    assert clock.iso_stored(stored) == shown
    if stored is not None:
        assert clock.iso_stored(clock.parse_iso(stored)) == shown
