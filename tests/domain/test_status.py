"""`domain.status`: what `scim status` reports and which states count as problems."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

import pytest

from skilljar_scim.base import clock
from skilljar_scim.domain import events, groups, roles, status, tokens, webhooks
from skilljar_scim.store import models

from domain.support import group_body

NOW = datetime(2026, 12, 2, 12, 0, 0)


def _token(keys, name: str, expires_in: timedelta | None, revoked: bool = False, scope: str = "provision"):
    made = tokens.generate(keys, name, NOW + expires_in if expires_in is not None else None,
                           now=NOW - timedelta(days=1), scope=scope)
    if revoked:
        tokens.revoke(made.token, now=NOW)
    return made.token


def _collect(settings, store, days: int = 14) -> status.Status:
    store.close()
    return status.collect(settings, expiring_within_days=days, now=NOW)


def _without_role(settings, role: str):
    catalog = {k: v for k, v in settings.roles.catalog.items() if k != role}
    return dataclasses.replace(settings, roles=dataclasses.replace(settings.roles, catalog=catalog))


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
    assert report.store.location == str(settings.sqlite_path.resolve())


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
    assert report.tokens[0].status == "expired" and not report.tokens[0].expiring_soon
    [problem] = report.problems
    assert "Old Okta" in problem and "expired" in problem


def test_status_read_token_problem_names_its_scope(settings, store, keys):
    _token(keys, "Reader", timedelta(days=2), scope="read")
    [problem] = _collect(settings, store).problems
    assert "scope read" in problem and "expires in 2 days" in problem


def test_status_token_no_current_key_verifies_is_a_problem(settings, store, keys):
    token = _token(keys, "Signed Long Ago", None)
    models.Token.update(key_id="0badc0de").where(models.Token.id == token.id).execute()
    report = _collect(settings, store)
    assert report.tokens[0].status == "unverifiable"
    [problem] = report.problems
    assert "Signed Long Ago" in problem and "key no longer in the secret key file" in problem


def test_status_missing_key_file_is_one_problem_for_every_token(settings, store, keys):
    _token(keys, "One", None)
    _token(keys, "Two", None)
    settings.key_path.unlink()
    report = _collect(settings, store)
    assert [t.status for t in report.tokens] == ["unverifiable", "unverifiable"]
    [problem] = report.problems
    assert str(settings.key_path) in problem and "no token can be verified" in problem


def test_status_shared_key_file_is_a_problem(settings, store, keys):
    settings.key_path.chmod(0o644)
    [problem] = _collect(settings, store).problems
    assert "chmod 600" in problem and "no token can be verified" in problem


def test_status_counts_users_by_state_and_groups(settings, store, keys):
    now = clock.utcnow()
    for index, (active, deprovisioned) in enumerate([(True, None), (True, None), (False, None), (False, now)]):
        models.User.create(id=f"u{index}", user_name=f"u{index}", user_name_key=f"u{index}", active=active,
                           deprovisioned_at=deprovisioned, created_at=now, updated_at=now)
    _group("Eng")
    report = _collect(settings, store)
    assert report.users == {"active": 2, "inactive": 1, "deprovisioned": 1}
    assert report.groups == 1


def _group(name: str) -> models.Group:
    return groups.create(events.CLI, group_body(name))


def test_status_mapping_waiting_for_its_group_is_listed_not_a_problem(settings, store, keys):
    catalog = settings.roles.catalog
    roles.add_mapping(events.CLI, "Not Pushed Yet", "api-admin", catalog)
    roles.add_mapping(events.CLI, "Pushed", "api-admin", catalog)
    _group("Pushed")
    gone = _group("Deleted Later")
    roles.add_mapping(events.CLI, "Deleted Later", "codes-admin", catalog)
    groups.delete(events.CLI, gone.id)
    report = _collect(settings, store)
    assert [(m["group"], m["role"], m["status"]) for m in report.mappings_waiting_for_group] == [
        ("Deleted Later", "codes-admin", "group deleted"), ("Not Pushed Yet", "api-admin", "waiting")]
    assert report.problems == []


def test_status_mapping_to_role_missing_from_catalog_is_a_problem(settings, store, keys):
    roles.add_mapping(events.CLI, "Retired Role Group", "codes-admin", settings.roles.catalog)
    _group("Retired Role Group")
    report = _collect(_without_role(settings, "codes-admin"), store)
    assert [(m["group"], m["role"]) for m in report.mappings_to_missing_roles] == [("Retired Role Group", "codes-admin")]
    [problem] = report.problems
    assert problem.startswith("mapping 'Retired Role Group' -> 'codes-admin': the role is not in [roles.catalog]")


def test_status_mapping_whose_name_another_group_took_is_a_problem(settings, store, keys):
    first = _group("Admins")
    roles.add_mapping(events.CLI, "Admins", "api-admin", settings.roles.catalog)
    groups.delete(events.CLI, first.id)
    second = _group("Admins")
    report = _collect(settings, store)
    [conflict] = report.mappings_in_conflict
    assert (conflict["group_id"], conflict["conflict_group_id"]) == (first.id, second.id)
    [problem] = report.problems
    assert second.id in problem and "scim mappings rebind 'Admins'" in problem


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
    assert report.last_provisioning["id"].startswith("evt_")


def test_status_last_provisioning_names_its_resource(settings, store, keys):
    token = _token(keys, "Okta", None)
    group = groups.create(events.Actor.for_token(token), group_body("Ops"))
    last = _collect(settings, store).last_provisioning
    assert (last["resource_type"], last["resource_id"], last["resource_name"]) == ("Group", group.id, "Ops")


def test_status_older_schema_is_a_problem_and_nothing_else_is_read(settings, store):
    newest = models.SchemaVersion.select(models.SchemaVersion.version).order_by(
        models.SchemaVersion.version.desc()).limit(1).scalar()
    models.SchemaVersion.delete().where(models.SchemaVersion.version == newest).execute()
    report = _collect(settings, store)
    assert report.store.schema_version == report.store.expected_schema_version - 1
    assert len(report.problems) == 1 and "run `scim init`" in report.problems[0]
    assert report.users == {}


def test_status_store_without_our_schema_is_a_problem(settings, store):
    models.SchemaVersion.delete().execute()
    [problem] = _collect(settings, store).problems
    assert "no skilljar-scim schema" in problem


def test_status_newer_schema_is_a_problem(settings, store):
    models.SchemaVersion.create(version=status.store_db.SCHEMA_VERSION + 1, applied_at=clock.utcnow())
    [problem] = _collect(settings, store).problems
    assert "newer than this scim's" in problem and "upgrade scim" in problem


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
    assert [p for p in report.problems if "quick integrity check" in p] != []
    assert report.tokens == [] and report.users == {}


@pytest.mark.sqlite
def test_status_unreadable_sqlite_store_is_a_problem(settings, store):
    store.execute_sql("PRAGMA writable_schema = ON")
    store.execute_sql("UPDATE sqlite_master SET rootpage = 9999 WHERE name = 'event'")
    store.execute_sql("PRAGMA writable_schema = OFF")
    report = _collect(settings, store)
    assert report.store.integrity == "cannot read: malformed database schema (event) - invalid rootpage"
    [problem] = report.problems
    assert problem.endswith("cannot be read: malformed database schema (event) - invalid rootpage")
    assert report.users == {} and report.tokens == []


@pytest.mark.sqlite
def test_status_file_that_is_not_sqlite_is_a_problem(settings, store):
    store.close()
    settings.sqlite_path.write_bytes(b"not a database at all" * 10)
    report = status.collect(settings, now=NOW)
    [problem] = report.problems
    assert "cannot be read" in problem and "not a SQLite database" in problem
    assert report.store.schema_version is None


def test_status_unreachable_postgresql_is_a_problem(settings, store):
    store.close()
    url = "postgresql://scim:s3cret@127.0.0.1:1/scim"  # port 1: nothing listens, the connection is refused
    report = status.collect(dataclasses.replace(settings, database=dataclasses.replace(settings.database, url=url)))
    [problem] = report.problems
    assert report.store.kind == "postgresql" and "cannot be read" in problem
    assert "s3cret" not in problem and "s3cret" not in str(report.as_dict())


def test_status_webhooks_disabled_endpoint_is_a_problem_and_url_query_hidden(settings, store, keys):
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


def test_status_webhook_secret_the_key_file_cannot_open_is_a_problem(settings, store, keys):
    healthy = webhooks.add(keys, "https://hooks.example.com/ok").endpoint
    locked = webhooks.add(keys, "https://hooks.example.com/locked?token=s3cret").endpoint
    secret = webhooks.new_secret()
    models.WebhookEndpoint.update(secret_encrypted=webhooks.seal(["a key no longer in the key file"], secret)).where(
        models.WebhookEndpoint.id == locked.id).execute()
    report = _collect(settings, store)
    [problem] = report.problems
    assert locked.id in problem and healthy.id not in problem and "cannot be decrypted" in problem
    assert f"scim webhooks rotate-secret {locked.id}" in problem
    assert "s3cret" not in problem and secret not in str(report.as_dict())
