"""Schema 10: webhook endpoints gain a stream cursor; deliveries pending in the old outbox still go out, once."""

from __future__ import annotations

from datetime import timedelta

from skilljar_scim.base import clock
from skilljar_scim.domain import events, outbox, users, webhooks, worker
from skilljar_scim.store import db, models
from skilljar_scim.store.db import write_transaction


def _create(user_name: str) -> str:
    body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": user_name}
    return users.create(events.CLI, body).user.id


def _as_version_9(database) -> None:
    """Undo schema 10 by hand: the endpoint table as it was, the version mark gone."""
    for column in ("stream_cursor", "stream_claimed_by", "stream_lease_until"):
        database.execute_sql(f'ALTER TABLE "webhook_endpoint" DROP COLUMN "{column}"')
    models.SchemaVersion.delete().where(models.SchemaVersion.version >= 10).execute()


def _outbox_rows(endpoint_id: str) -> None:
    """Give every event so far an outbox row at the endpoint, delivered but the newest (schema 9's write path)."""
    rows = list(models.Event.select().order_by(models.Event.id))
    with write_transaction():
        outbox.add([(e.id, endpoint_id, f"{e.resource_type}:{e.resource_id}") for e in rows], clock.utcnow())
        models.WebhookDelivery.update(state="delivered").where(models.WebhookDelivery.event_id < rows[-1].id).execute()


def test_schema_10_pending_outbox_rows_still_go_out_and_streams_start_after_them(store, keys, settings, receiver):
    live, off = webhooks.add(keys, receiver.url).endpoint, webhooks.add(keys, receiver.url).endpoint
    early, pending = _create("early@example.com"), _create("pending@example.com")
    _outbox_rows(live.id)
    disabled_at = clock.utcnow() + timedelta(seconds=1)
    models.WebhookEndpoint.update(disabled_at=disabled_at).where(models.WebhookEndpoint.id == off.id).execute()
    newest = models.Event.select(models.Event.id).order_by(models.Event.id.desc()).scalar()
    _as_version_9(store)
    assert db.migrate(store) == db.SCHEMA_VERSION
    assert webhooks.find(live.id).stream_cursor == newest
    assert webhooks.find(off.id).stream_cursor == newest  # every event so far came before it was disabled
    later = _create("later@example.com")
    worker.drain(settings)
    got = [(r.json["data"]["id"], r.json["type"]) for r in receiver.delivered()]
    assert got == [(pending, "user.created"), (later, "user.created")]  # to `live` only: `off` is disabled
    assert early not in [user for user, _ in got]


def test_schema_10_disabled_endpoint_starts_where_it_was_disabled(store, keys, settings, receiver):
    off = webhooks.add(keys, receiver.url).endpoint
    before = _create("before@example.com")
    at = clock.utcnow() + timedelta(seconds=1)
    models.WebhookEndpoint.update(disabled_at=at).where(models.WebhookEndpoint.id == off.id).execute()
    missed_id = models.Event.insert(at=at + timedelta(seconds=1), actor="cli", action="user.updated",
                                    resource_type="User", resource_id=before, summary="").execute()
    _as_version_9(store)
    db.migrate(store)
    assert webhooks.find(off.id).stream_cursor == missed_id - 1
    webhooks.enable(webhooks.find(off.id))
    worker.drain(settings)
    assert [r.json["type"] for r in receiver.delivered()] == ["user.updated"]  # what it missed while disabled
