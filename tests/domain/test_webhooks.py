"""Webhook endpoints, the outbox and the delivery worker, through the domain services."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from datetime import timedelta

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from skilljar_scim.base import clock
from skilljar_scim.base.errors import ConfigError, InvalidValue
from skilljar_scim.domain import delivery, events, users, webhooks, worker
from skilljar_scim.store.models import Event, WebhookDelivery, WebhookEndpoint


def _create(user_name: str) -> str:
    body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": user_name}
    return users.create(events.CLI, body).user.id


def _rows(endpoint_id: str) -> list[WebhookDelivery]:
    return list(WebhookDelivery.select().where(WebhookDelivery.endpoint == endpoint_id).order_by(WebhookDelivery.id))


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


def test_outbox_row_commits_with_the_event(store, keys, endpoint):
    user_id = _create("ada@example.com")
    rows = _rows(endpoint.endpoint.id)
    assert [(r.subject, r.state, r.attempts) for r in rows] == [(f"User:{user_id}", "pending", 0)]


def test_outbox_rows_name_their_events_in_a_batch(store, keys, receiver):
    first, second = webhooks.add(keys, receiver.url).endpoint, webhooks.add(keys, receiver.url).endpoint
    from skilljar_scim.store.db import write_transaction

    with write_transaction():
        events.record_many(events.CLI, "user.updated", "User", [(f"u{n}", {}) for n in range(3)])
    for endpoint in (first, second):
        rows = _rows(endpoint.id)
        assert [Event.get_by_id(r.event_id).resource_id for r in rows] == ["u0", "u1", "u2"]
        assert [r.subject for r in rows] == ["User:u0", "User:u1", "User:u2"]


def test_outbox_rolls_back_with_the_change(store, keys, endpoint):
    from skilljar_scim.store.db import write_transaction

    with pytest.raises(RuntimeError):
        with write_transaction():
            events.record(events.CLI, "user.updated", "User", "u1", {})
            raise RuntimeError("the change fails")
    assert _rows(endpoint.endpoint.id) == []


def test_outbox_filter_takes_only_listed_types(store, keys, receiver):
    only_roles = webhooks.add(keys, receiver.url, webhooks.parse_types("role.*")).endpoint
    everything = webhooks.add(keys, receiver.url).endpoint
    _create("bo@example.com")
    events.record(events.CLI, "token.created", "Token", "t1", {})
    assert _rows(only_roles.id) == []
    assert len(_rows(everything.id)) == 1  # user.created; token.* is not sent by default


def test_outbox_skips_disabled_endpoints(store, keys, endpoint):
    WebhookEndpoint.update(disabled_at=clock.utcnow()).execute()
    _create("cy@example.com")
    assert _rows(endpoint.endpoint.id) == []


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
    for event in Event.select().where(Event.id.in_([r.event_id for r in _rows(endpoint.endpoint.id)])):
        item = events.feed_item(event)
        assert json.loads(sent[item["id"]]) == item
    assert "zoë".encode() in sent[events.event_id(Event.get(Event.resource_id == user_id).id)]


def test_sender_sends_up_to_concurrency_at_once_outcomes_in_order(store, keys, settings, endpoint, receiver):
    for n in range(8):
        _create(f"pa{n}@example.com")
    receiver.gather(4)  # each answer waits until 4 requests are in flight together
    claimed = delivery.claim(keys, "w1", settings.webhooks, clock.utcnow())
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
    _create("qi@example.com")
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
    webhooks.enable(found)  # the event it missed while disabled is queued too
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
    assert [(row.state, row.attempts) for row in _rows(endpoint.endpoint.id)] == [("delivered", 1)] * 3


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

    _create("so@example.com")
    Event.delete().execute()  # what retention does to old events
    assert worker.drain(settings)["sent"] == 0
    [row] = _rows(endpoint.endpoint.id)
    assert row.state == "failed" and "retention" in row.last_error
    assert delivery.prune() == 1 and _rows(endpoint.endpoint.id) == []


def test_lease_covers_a_batch_of_timeouts(settings):
    slow = _with(settings, batch_size=100, concurrency=4, timeout_ms=5000, lease_seconds=60)
    assert delivery.lease(slow.webhooks) == timedelta(seconds=130)
    assert delivery.lease(_with(settings, batch_size=8, lease_seconds=60).webhooks) == timedelta(seconds=60)
