"""`domain.status`: what `scim status` reports and which states count as problems."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from skilljar_scim.base import clock
from skilljar_scim.base.errors import DatabaseError
from skilljar_scim.domain import events, roles, status, tokens
from skilljar_scim.store import models

NOW = datetime(2026, 12, 2, 12, 0, 0)


def _token(keys, name: str, expires_in: timedelta | None, revoked: bool = False):
    made = tokens.generate(keys, name, NOW + expires_in if expires_in is not None else None, now=NOW - timedelta(days=1))
    if revoked:
        tokens.revoke(made.token, now=NOW)
    return made.token


def _collect(settings, store, days: int = 14) -> status.Status:
    store.close()
    return status.collect(settings, expiring_within_days=days, now=NOW)


def test_status_empty_store_reports_no_problems(settings, store, keys):
    report = _collect(settings, store)
    assert report.problems == []
    assert report.store.schema_version == report.store.expected_schema_version
    assert report.store.size_bytes and report.store.size_bytes > 0
    assert report.users == {"active": 0, "inactive": 0, "deprovisioned": 0}
    assert report.groups == 0 and report.tokens == [] and report.last_provisioning is None


@pytest.mark.sqlite
def test_status_sqlite_store_names_file_and_passes_quick_check(settings, store):
    report = _collect(settings, store)
    assert report.store.kind == "sqlite" and report.store.integrity == "ok"
    assert report.store.location == str(settings.sqlite_path)


@pytest.mark.parametrize("days_left, days, problem", [
    (3, 14, True), (14, 14, True), (15, 14, False), (3, 2, False), (None, 14, False),
])
def test_status_token_expiring_within_the_window_is_a_problem(settings, store, keys, days_left, days, problem):
    token = _token(keys, "Okta Production", timedelta(days=days_left) if days_left is not None else None)
    report = _collect(settings, store, days)
    [state] = report.tokens
    assert (state.id, state.expiring_soon) == (token.id, problem)
    assert state.days_left == days_left
    assert any("Okta Production" in p and "expires in" in p for p in report.problems) is problem


def test_status_expired_live_token_is_a_problem_and_revoked_one_is_not_listed(settings, store, keys):
    _token(keys, "Old Okta", timedelta(days=-1))
    _token(keys, "Gone", timedelta(days=1), revoked=True)
    report = _collect(settings, store)
    assert [t.name for t in report.tokens] == ["Old Okta"]
    assert report.tokens[0].status == "expired"
    assert report.problems == [p for p in report.problems if "Old Okta" in p and "expired" in p] != []


def test_status_counts_users_by_state_and_groups(settings, store, keys):
    now = clock.utcnow()
    for index, (active, deprovisioned) in enumerate([(True, None), (True, None), (False, None), (False, now)]):
        models.User.create(id=f"u{index}", user_name=f"u{index}", user_name_key=f"u{index}", active=active,
                           deprovisioned_at=deprovisioned, created_at=now, updated_at=now)
    models.Group.create(id="g1", display_name="Eng", display_name_key="eng", created_at=now, updated_at=now)
    report = _collect(settings, store)
    assert report.users == {"active": 2, "inactive": 1, "deprovisioned": 1}
    assert report.groups == 1


def test_status_mapping_gaps_waiting_groups_and_missing_roles(settings, store, keys):
    catalog = settings.roles.catalog
    roles.add_mapping(events.CLI, "Not Pushed Yet", "api-admin", catalog)
    roles.add_mapping(events.CLI, "Retired Role Group", "codes-admin", catalog)
    now = clock.utcnow()
    models.Group.create(id="g1", display_name="Retired Role Group", display_name_key="retired role group",
                        created_at=now, updated_at=now)
    shrunk = {k: v for k, v in catalog.items() if k != "codes-admin"}
    report = _collect(settings.__class__(**{**settings.__dict__, "roles": settings.roles.__class__(catalog=shrunk)}),
                      store)
    assert report.mappings_waiting_for_group == [{"group": "Not Pushed Yet", "role": "api-admin"}]
    assert report.mappings_to_missing_roles == [{"group": "Retired Role Group", "role": "codes-admin"}]
    assert report.problems == ["mapping 'Retired Role Group' -> 'codes-admin': the role is not in [roles.catalog]"]


def test_status_last_provisioning_is_the_newest_token_made_change(settings, store, keys):
    token = _token(keys, "Okta", None)
    idp = events.Actor.for_token(token)
    events.record(idp, "user.created", "User", "u1", {}, now=NOW - timedelta(hours=2))
    events.record(idp, "user.updated", "User", "u1", {}, now=NOW - timedelta(hours=1))
    events.record(events.CLI, "mapping.added", None, None, {}, now=NOW)
    report = _collect(settings, store)
    assert report.last_provisioning["action"] == "user.updated"
    assert report.last_provisioning["actor"] == "token:Okta"
    assert report.last_provisioning["at"] == NOW - timedelta(hours=1)


def test_status_older_schema_is_a_problem_and_nothing_else_is_read(settings, store):
    models.SchemaVersion.delete().where(models.SchemaVersion.version == models.SchemaVersion.select(
        models.SchemaVersion.version).order_by(models.SchemaVersion.version.desc()).limit(1).scalar()).execute()
    report = _collect(settings, store)
    assert report.store.schema_version == report.store.expected_schema_version - 1
    assert report.problems and "run `scim init`" in report.problems[0]
    assert report.users == {}


@pytest.mark.sqlite
def test_status_damaged_sqlite_page_is_a_problem(settings, store):
    now = clock.utcnow()
    models.Event.insert_many([{"at": now, "actor": "cli", "action": "x", "summary": "y" * 500}] * 200).execute()
    store.close()
    path, page = settings.sqlite_path, store.execute_sql("PRAGMA page_size").fetchone()[0]
    store.close()
    with open(path, "r+b") as db_file:  # the last page belongs to the event table's rows
        db_file.seek(path.stat().st_size - page)
        db_file.write(b"\xff" * 64)
    report = status.collect(settings, now=NOW)
    assert report.store.integrity != "ok"
    assert [p for p in report.problems if "integrity check" in p] != []


@pytest.mark.sqlite
def test_status_unreadable_sqlite_store_is_a_database_error(settings, store):
    store.execute_sql("PRAGMA writable_schema = ON")
    store.execute_sql("UPDATE sqlite_master SET rootpage = 9999 WHERE name = 'event'")
    store.execute_sql("PRAGMA writable_schema = OFF")
    with pytest.raises(DatabaseError, match="cannot read the store"):
        _collect(settings, store)


def test_status_webhooks_disabled_endpoint_is_a_problem_and_url_query_hidden(settings, store, keys):
    from skilljar_scim.domain import webhooks

    healthy = webhooks.add(keys, "https://hooks.example.com/ok").endpoint
    broken = webhooks.add(keys, "https://hooks.example.com/gone?token=s3cret").endpoint
    models.WebhookEndpoint.update(disabled_at=NOW - timedelta(hours=1), disabled_reason="answered 410 Gone").where(
        models.WebhookEndpoint.id == broken.id).execute()
    report = _collect(settings, store)
    by_id = {w["id"]: w for w in report.webhooks}
    assert by_id[healthy.id]["status"] == "enabled" and by_id[broken.id]["status"] == "disabled"
    assert "s3cret" not in str(report.as_dict())
    [problem] = report.problems
    assert broken.id in problem and "410 Gone" in problem and "scim webhooks enable" in problem
