"""Webhook endpoints, the outbox and the delivery worker, through the domain services."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from datetime import timedelta

import peewee
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from skilljar_scim.base import clock
from skilljar_scim.base.errors import ConfigError, InvalidValue
from skilljar_scim.domain import delivery, events, outbox, stream, users, webhooks, worker
from skilljar_scim.store.db import write_transaction
from skilljar_scim.store.models import Event, WebhookDelivery, WebhookEndpoint


def _create(user_name: str) -> str:
    body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": user_name}
    return users.create(events.CLI, body).user.id


def _rows(endpoint_id: str) -> list[WebhookDelivery]:
    return list(WebhookDelivery.select().where(WebhookDelivery.endpoint == endpoint_id).order_by(WebhookDelivery.id))


def _queued(endpoint_id: str, user_id: str) -> None:
    """Give the user's newest event a delivery row (as a resend or a retry has), due now."""
    event = Event.select().where(Event.resource_id == user_id).order_by(Event.id.desc()).first()
    with write_transaction():
        outbox.add([(event.id, endpoint_id, f"User:{user_id}")], clock.utcnow())
        WebhookEndpoint.update(stream_cursor=event.id).where(WebhookEndpoint.id == endpoint_id).execute()


def _with(settings, **webhook_settings):
    return replace(settings, webhooks=replace(settings.webhooks, **webhook_settings))


class Clock:
    """A controlled clock for the worker's `now`."""

    def __init__(self):
        self.at = clock.utcnow()

    def __call__(self):
        return self.at

    def advance(self, **delta) -> None:
        self.at += timedelta(**delta)


@pytest.fixture
def endpoint(store, keys, receiver):
    return webhooks.add(keys, receiver.url)


def test_scim_write_adds_no_delivery_row_its_event_is_the_outbox(store, keys, settings, endpoint, receiver):
    user_id = _create("ada@example.com")
    assert _rows(endpoint.endpoint.id) == []  # the SCIM write path writes the event only
    assert stream.backlog(webhooks.find(endpoint.endpoint.id)) == 1
    assert worker.drain(settings)["delivered"] == 1
    assert receiver.delivered()[0].json["data"]["id"] == user_id
    found = webhooks.find(endpoint.endpoint.id)
    assert (stream.backlog(found), found.stream_cursor, _rows(found.id)) == (0, Event.select().count(), [])


def test_stream_sends_every_endpoint_each_event_once(store, keys, settings, receiver):
    first, second = webhooks.add(keys, receiver.url).endpoint, webhooks.add(keys, receiver.url).endpoint
    with write_transaction():
        events.record_many(events.CLI, "user.updated", "User", [(f"u{n}", {}) for n in range(3)])
    assert worker.drain(settings)["delivered"] == 6
    got = sorted((r.json["data"]["id"], r.headers["webhook-id"]) for r in receiver.delivered())
    assert [user for user, _ in got] == ["u0", "u0", "u1", "u1", "u2", "u2"]
    assert len({webhook_id for _, webhook_id in got}) == 3
    assert worker.drain(settings)["sent"] == 0


def test_stream_starts_after_the_events_before_the_endpoint(store, keys, settings, receiver):
    _create("early@example.com")
    webhooks.add(keys, receiver.url)
    late = _create("late@example.com")
    worker.drain(settings)
    assert [r.json["data"]["id"] for r in receiver.received] == [late]


def test_outbox_rolls_back_with_the_change(store, keys, settings, endpoint, receiver):
    with pytest.raises(RuntimeError):
        with write_transaction():
            events.record(events.CLI, "user.updated", "User", "u1", {})
            raise RuntimeError("the change fails")
    assert worker.drain(settings)["sent"] == 0 and receiver.received == []


def test_outbox_filter_takes_only_listed_types(store, keys, settings, receiver):
    only_roles = webhooks.add(keys, receiver.url, webhooks.parse_types("role.*")).endpoint
    everything = webhooks.add(keys, receiver.url).endpoint
    _create("bo@example.com")
    with write_transaction():
        events.record(events.CLI, "token.created", "Token", "t1", {})
    assert (stream.backlog(only_roles), stream.backlog(everything)) == (0, 1)  # token.* is not sent by default
    worker.drain(settings)
    assert [r.json["type"] for r in receiver.delivered()] == ["user.created"]
    assert webhooks.find(only_roles.id).stream_cursor == Event.select(peewee.fn.MAX(Event.id)).scalar()


def test_outbox_skips_disabled_endpoints(store, keys, settings, endpoint, receiver):
    WebhookEndpoint.update(disabled_at=clock.utcnow()).execute()
    _create("cy@example.com")
    assert worker.drain(settings)["sent"] == 0 and receiver.received == []


def test_stream_sends_each_users_events_in_order_in_one_batch(store, keys, settings, endpoint, receiver):
    made = [_create(f"or{n}@example.com") for n in range(3)]
    for user_id in made:
        users.delete(events.CLI, user_id)
    assert worker.drain(settings)["delivered"] == 6
    for user_id in made:
        assert [r.json["type"] for r in receiver.received if r.json["data"]["id"] == user_id] == [
            "user.created", "user.deprovisioned"]
    assert _rows(endpoint.endpoint.id) == []


def test_stream_leased_by_another_worker_waits_for_its_lease(store, keys, settings, endpoint, receiver):
    now = Clock()
    until = now.at + 2 * delivery.lease(settings.webhooks)
    WebhookEndpoint.update(stream_claimed_by="other", stream_lease_until=until).execute()
    _create("le@example.com")
    assert worker.drain(settings, now)["sent"] == 0
    now.at = until
    assert worker.drain(settings, now)["delivered"] == 1


def test_stream_move_refused_after_the_lease_was_taken_over(store, keys, settings, endpoint, receiver):
    _create("to@example.com")
    found = webhooks.find(endpoint.endpoint.id)
    batch = stream.take(keys, found, "w1", settings.webhooks, clock.utcnow())
    WebhookEndpoint.update(stream_claimed_by="w2").execute()  # w1's lease ran out; w2 took the stream
    outcome = delivery.Outcome(batch.items[0][0].id, found.id, 500, "HTTP 500")
    assert not stream.finish(batch, {outcome.delivery_id: outcome}, "w1", settings.webhooks, clock.utcnow(),
                             random.Random())
    assert (webhooks.find(found.id).stream_cursor, _rows(found.id)) == (found.stream_cursor, [])


@pytest.mark.sqlite
def test_stream_reads_and_builds_bodies_outside_the_write_lock(store, keys, settings, endpoint, monkeypatch):
    """SQLite's one write lock is what every SCIM write waits for: a leased stream is read without it."""
    _create("ri@example.com")
    found = webhooks.find(endpoint.endpoint.id)
    assert stream.take(keys, found, "w1", settings.webhooks, clock.utcnow()) is not None  # takes the lease
    held = []
    build = delivery.body_bytes
    monkeypatch.setattr(delivery, "body_bytes", lambda *event: held.append(store.write_lock.threads.locked())
                        or build(*event))
    batch = stream.take(keys, webhooks.find(found.id), "w1", settings.webhooks, clock.utcnow())
    assert held == [False] and batch.items


def test_delivery_verifies_with_standardwebhooks(store, keys, settings, endpoint, receiver):
    user_id = _create("di@example.com")
    assert worker.drain(settings)["delivered"] == 1
    [got] = receiver.received
    payload = Webhook(endpoint.secret).verify(got.body, got.headers)
    assert payload["type"] == "user.created" and got.headers["webhook-id"] == payload["id"]
    assert user_id in got.body.decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(webhooks.new_secret()).verify(got.body, got.headers)


def test_delivery_body_is_the_events_api_item(store, keys, settings, endpoint, receiver):
    user_id = _create("zoë@example.com")
    events.record(events.CLI, "mapping.added", None, None, {"group": "Ops", "role": "api-admin"})
    assert worker.drain(settings)["delivered"] == 2
    sent = {got.headers["webhook-id"]: got.body for got in receiver.received}
    for event in Event.select().where(Event.action.in_(["user.created", "mapping.added"])):
        item = events.feed_item(event)
        assert json.loads(sent[item["id"]]) == item
    assert "zoë".encode() in sent[events.event_id(Event.get(Event.resource_id == user_id).id)]


def test_sender_sends_up_to_concurrency_at_once_outcomes_in_order(store, keys, settings, endpoint, receiver):
    for n in range(8):
        _create(f"pa{n}@example.com")
    receiver.gather(4)  # each answer waits until 4 requests are in flight together
    batch = stream.take(keys, webhooks.find(endpoint.endpoint.id), "w1", settings.webhooks, clock.utcnow())
    claimed = [item for item, _ in batch.items]
    sender = delivery.Sender(timeout_ms=15000, concurrency=4)
    try:
        outcomes = sender.send_all(claimed)
    finally:
        sender.close()
    assert [o.delivery_id for o in outcomes] == [c.id for c in claimed]
    assert [o.status for o in outcomes] == [204] * 8


@pytest.mark.sqlite
def test_claim_builds_bodies_outside_the_write_lock(store, keys, settings, endpoint, monkeypatch):
    """SQLite's one write lock is what every SCIM write waits for: a claim holds it only for the lease."""
    _queued(endpoint.endpoint.id, _create("qi@example.com"))
    held = []
    build = delivery.body_bytes
    monkeypatch.setattr(delivery, "body_bytes", lambda *event: held.append(store.write_lock.threads.locked())
                        or build(*event))
    [claimed] = delivery.claim(keys, "w1", settings.webhooks, clock.utcnow())
    assert held == [False] and claimed.body


def test_delivery_retries_with_backoff_after_500(store, keys, settings, endpoint, receiver):
    receiver.answers.extend([500, 500])
    _create("ed@example.com")
    now = Clock()
    worker.drain(settings, now, random.Random(1))
    [row] = _rows(endpoint.endpoint.id)
    assert (row.attempts, row.last_status, row.state) == (1, 500, "pending")
    assert timedelta(seconds=27) <= row.next_attempt_at - now.at <= timedelta(seconds=33)
    assert worker.drain(settings, now)["sent"] == 0  # not due yet
    now.advance(seconds=34)
    worker.drain(settings, now, random.Random(1))
    [row] = _rows(endpoint.endpoint.id)
    assert (row.attempts, row.last_status) == (2, 500)
    assert timedelta(seconds=108) <= row.next_attempt_at - now.at <= timedelta(seconds=132)
    now.advance(seconds=133)
    worker.drain(settings, now)
    [row] = _rows(endpoint.endpoint.id)
    assert (row.attempts, row.state, row.last_status) == (3, "delivered", 204)
    assert [r.answered for r in receiver.received] == [500, 500, 204]


def test_retry_schedule_first_within_a_minute_last_about_three_days():
    rng, now = random.Random(7), clock.utcnow()
    waits = [delivery.retry_at(n, now, rng) - now for n in range(1, len(delivery.RETRY_DELAYS) + 1)]
    assert waits[0] < timedelta(minutes=1)
    assert timedelta(days=2.5) < sum(waits, timedelta()) < timedelta(days=3.5)
    assert delivery.retry_at(len(delivery.RETRY_DELAYS) + 1, now, rng) is None


def test_delivery_gives_up_after_the_last_retry(store, keys, settings, endpoint, receiver):
    settings = _with(settings, disable_after_hours=1000)
    receiver.default = 503
    _create("fa@example.com")
    now = Clock()
    for _ in range(len(delivery.RETRY_DELAYS) + 1):
        worker.drain(settings, now)
        now.advance(days=2)
    [row] = _rows(endpoint.endpoint.id)
    assert (row.state, row.attempts) == ("failed", len(delivery.RETRY_DELAYS) + 1)


def test_delivery_in_order_per_user(store, keys, settings, endpoint, receiver):
    receiver.answers.append(500)
    first = _create("gu@example.com")
    users.delete(events.CLI, first)
    now = Clock()
    worker.drain(settings, now)
    # The user's first event failed: the next one about that user waits behind it.
    assert [(r.json["type"], r.answered) for r in receiver.received] == [("user.created", 500)]
    now.advance(seconds=34)
    worker.drain(settings, now)
    assert [(r.json["type"], r.answered) for r in receiver.received] == [
        ("user.created", 500), ("user.created", 204), ("user.deprovisioned", 204)]


def test_delivery_later_event_queues_behind_a_retrying_one(store, keys, settings, endpoint, receiver):
    receiver.answers.append(500)
    first = _create("qb@example.com")
    now = Clock()
    worker.drain(settings, now)  # user.created failed: a row, retried in about 30 s
    users.delete(events.CLI, first)  # a later batch: it must wait behind that row
    worker.drain(settings, now)
    assert [(r.json["type"], r.answered) for r in receiver.received] == [("user.created", 500)]
    now.advance(seconds=34)
    worker.drain(settings, now)
    assert [r.json["type"] for r in receiver.delivered()] == ["user.created", "user.deprovisioned"]


def test_delivery_other_users_do_not_wait(store, keys, settings, endpoint, receiver):
    receiver.answers.append(500)
    first = _create("gu@example.com")
    other = _create("ha@example.com")
    worker.drain(_with(settings, concurrency=1))
    assert [(r.json["data"]["id"], r.answered) for r in receiver.received[:2]] == [(first, 500), (other, 204)]


def test_410_disables_the_endpoint_with_an_event(store, keys, settings, endpoint, receiver):
    receiver.answers.append(410)
    _create("ia@example.com")
    worker.drain(settings)
    found = webhooks.find(endpoint.endpoint.id)
    assert found.disabled_at is not None and "410" in found.disabled_reason
    assert events.query(action="webhook.disabled")[0].resource_id == found.id
    _create("jo@example.com")
    assert worker.drain(settings)["sent"] == 0  # disabled: nothing goes out, the rows wait
    webhooks.enable(found)  # its retry goes now, and its stream sends the event it missed
    assert worker.drain(settings)["delivered"] == 2
    assert [r.json["type"] for r in receiver.delivered()] == ["user.created", "user.created"]


def test_endpoint_failing_for_too_long_is_disabled(store, keys, settings, endpoint, receiver):
    receiver.default = 500
    now = Clock()
    _create("ka@example.com")
    worker.drain(settings, now)
    assert webhooks.find(endpoint.endpoint.id).failing_since == now.at
    now.advance(hours=settings.webhooks.disable_after_hours - 1)
    worker.drain(settings, now)
    assert webhooks.find(endpoint.endpoint.id).disabled_at is None
    _create("li@example.com")
    now.advance(hours=1)
    worker.drain(settings, now)
    assert webhooks.find(endpoint.endpoint.id).disabled_at == now.at


def test_success_brings_waiting_retries_forward(store, keys, settings, endpoint, receiver):
    receiver.answers.append(500)
    _create("mo@example.com")
    now = Clock()
    worker.drain(settings, now)
    _create("ny@example.com")  # the receiver is back: this one succeeds...
    now.at = clock.utcnow()  # due now (times are whole seconds, and one may have passed); the retry is >= 27 s away
    worker.drain(settings, now)
    # ...and the first user's retry, due in 30 s, went at once.
    assert len(receiver.delivered()) == 2


def test_rotation_signs_with_both_secrets_during_the_overlap(store, keys, settings, endpoint, receiver):
    new = webhooks.rotate_secret(keys, webhooks.find(endpoint.endpoint.id), timedelta(hours=1))
    _create("ol@example.com")
    worker.drain(settings)
    got = receiver.received[-1]
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    Webhook(new).verify(got.body, got.headers)
    Webhook(endpoint.secret).verify(got.body, got.headers)
    now = Clock()
    now.advance(hours=1, seconds=1)
    _create("pi@example.com")
    worker.drain(settings, now)
    got = receiver.received[-1]
    Webhook(new).verify(got.body, got.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(endpoint.secret).verify(got.body, got.headers)


def test_secret_is_stored_encrypted(store, keys, endpoint):
    row = WebhookEndpoint.get()
    raw = endpoint.secret.removeprefix("whsec_")
    assert raw not in row.secret_encrypted and endpoint.secret not in row.secret_encrypted
    assert webhooks.unseal(keys, row.secret_encrypted) == endpoint.secret
    with pytest.raises(ConfigError):
        webhooks.unseal(["another key"], row.secret_encrypted)


@pytest.mark.parametrize("url", ["ftp://example.com/x", "http://example.com/hook", "https://u:p@example.com/",
                                 "https:///nohost", "http://10.0.0.1/hook", "not a url"])
def test_check_url_refuses(url):
    with pytest.raises(InvalidValue):
        webhooks.check_url(url)


@pytest.mark.parametrize("url", ["https://example.com/hook", "http://127.0.0.1:9/x", "http://127.8.9.10/",
                                 "http://[::1]:8000/", "http://localhost/x"])
def test_check_url_accepts(url):
    assert webhooks.check_url(url) == url


def test_check_url_allow_http():
    assert webhooks.check_url("http://example.com/hook", allow_http=True) == "http://example.com/hook"


def test_timeout_counts_as_a_failed_attempt(store, keys, settings, endpoint, receiver):
    quick = _with(settings, timeout_ms=300)
    receiver.answers.append("hang")
    _create("qu@example.com")
    worker.drain(quick)
    [row] = _rows(endpoint.endpoint.id)
    assert (row.attempts, row.state, row.last_status) == (1, "pending", None)
    assert "timed out" in row.last_error


def test_redirect_is_not_followed(store, keys, settings, endpoint, receiver):
    receiver.answers.append(307)
    _create("ra@example.com")
    worker.drain(settings)
    [row] = _rows(endpoint.endpoint.id)
    assert (row.attempts, row.last_status, row.state) == (1, 307, "pending")
    assert len(receiver.received) == 1


def test_delivery_survives_a_receiver_closing_idle_connections(store, keys, settings, endpoint, receiver):
    # Receivers and proxies close kept-alive connections they find idle, without a word: the
    # next delivery on one must go out on a new connection, not fail and wait for its retry.
    receiver.keep_alive = False
    made = [_create(f"ka{n}@example.com") for n in range(3)]
    worker.drain(_with(settings, concurrency=1))
    assert [r.json["data"]["id"] for r in receiver.delivered()] == made
    assert len(receiver.received) == 3 and _rows(endpoint.endpoint.id) == []  # each went at its first attempt


def test_two_workers_claim_each_delivery_once(store, keys, settings, endpoint, receiver):
    import threading

    receiver.delay = 0.01
    made = {_create(f"w{n}@example.com") for n in range(30)}
    threads = [threading.Thread(target=worker.drain, args=(settings,)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    ids = [r.headers["webhook-id"] for r in receiver.received]
    assert len(ids) == len(set(ids)) == 30
    assert {r.json["data"]["id"] for r in receiver.received} == made


def test_delivery_of_a_pruned_event_gives_up(store, keys, settings, endpoint, receiver):
    from skilljar_scim.store.models import Event

    _queued(endpoint.endpoint.id, _create("so@example.com"))
    Event.delete().execute()  # what retention does to old events
    assert worker.drain(settings)["sent"] == 0
    [row] = _rows(endpoint.endpoint.id)
    assert row.state == "failed" and "retention" in row.last_error
    assert delivery.prune() == 1 and _rows(endpoint.endpoint.id) == []


def test_lease_covers_a_batch_of_timeouts(settings):
    slow = _with(settings, batch_size=100, concurrency=4, timeout_ms=5000, lease_seconds=60)
    assert delivery.lease(slow.webhooks) == timedelta(seconds=130)
    assert delivery.lease(_with(settings, batch_size=8, lease_seconds=60).webhooks) == timedelta(seconds=60)


def _lose_secret(endpoint_id: str) -> str:
    """Seal the endpoint's secret with a key the key file does not have (a key removed by hand); return it."""
    secret = webhooks.new_secret()
    WebhookEndpoint.update(secret_encrypted=webhooks.seal(["a key no longer in the key file"], secret)).where(
        WebhookEndpoint.id == endpoint_id).execute()
    return secret


def test_stream_endpoint_whose_secret_cannot_be_opened_waits_alone(store, keys, settings, receiver, caplog):
    broken, healthy = webhooks.add(keys, receiver.url).endpoint, webhooks.add(keys, receiver.url).endpoint
    secret = _lose_secret(broken.id)
    user_id = _create("lost-key@example.com")
    assert worker.drain(settings) == {"sent": 1, "delivered": 1, "failed": 0}  # the healthy endpoint's
    assert worker.drain(settings)["sent"] == 0
    found = webhooks.find(broken.id)
    assert (stream.backlog(found), _rows(broken.id), stream.backlog(webhooks.find(healthy.id))) == (1, [], 0)
    logged = [r.getMessage() for r in caplog.records if broken.id in r.getMessage()]
    assert len(logged) == 1 and "cannot be decrypted" in logged[0] and secret not in logged[0]
    webhooks.rotate_secret(keys, found, timedelta(0))  # the documented fix: nothing was lost meanwhile
    assert worker.drain(settings)["delivered"] == 1
    assert [r.json["data"]["id"] for r in receiver.delivered()] == [user_id, user_id]


def test_delivery_rows_of_an_endpoint_whose_secret_cannot_be_opened_are_not_attempted(store, keys, settings,
                                                                                      receiver):
    broken, healthy = webhooks.add(keys, receiver.url).endpoint, webhooks.add(keys, receiver.url).endpoint
    receiver.answers.extend([500, 500])
    _create("row-key@example.com")
    now = Clock()
    worker.drain(settings, now)  # both failed once: a row each, retried in about 30 s
    _lose_secret(broken.id)
    now.advance(seconds=40)
    assert worker.drain(settings, now) == {"sent": 1, "delivered": 1, "failed": 0}
    [row] = _rows(broken.id)
    assert (row.state, row.attempts) == ("pending", 1)  # not attempted: no retry used up, nothing given up
    assert [r.state for r in _rows(healthy.id)] == ["delivered"]
