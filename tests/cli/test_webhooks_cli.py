"""`scim webhooks` through the real root app: secrets shown once, refusals as one-line errors."""

from __future__ import annotations

import json

import pytest
from standardwebhooks.webhooks import Webhook

from skilljar_scim.base.errors import ExitCode


@pytest.fixture
def added(initialised, receiver) -> dict:
    return initialised.json("webhooks", "add", receiver.url, "--events", "user.*", "--description", "Dashboard")


def test_webhooks_add_json_shows_secret_once(initialised, added, receiver, config_file) -> None:
    assert set(added) == {"id", "url", "secret", "events"}
    assert added["secret"].startswith("whsec_") and added["url"] == receiver.url
    assert "user.created" in added["events"] and "role.granted" not in added["events"]
    for args in (("webhooks", "list"), ("webhooks", "show", added["id"])):
        shown = initialised(*args, "--json").stdout
        assert added["secret"] not in shown and added["secret"][6:] not in shown
    database = (config_file.parent / "scim.db")
    if database.exists():
        assert added["secret"][6:].encode() not in database.read_bytes()


def test_webhooks_add_prints_secret_on_its_own_line(initialised, receiver) -> None:
    result = initialised("webhooks", "add", receiver.url)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1].startswith("whsec_")


@pytest.mark.parametrize("url", ["http://example.com/hook", "ftp://example.com/", "https://u:p@example.com/"])
def test_webhooks_add_refuses_url(initialised, url) -> None:
    result = initialised("webhooks", "add", url)
    assert result.exit_code == ExitCode.USAGE
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    assert initialised.json("webhooks", "list") == []


def test_webhooks_add_allow_http(initialised) -> None:
    made = initialised.json("webhooks", "add", "http://hooks.internal/x", "--allow-http")
    assert made["url"] == "http://hooks.internal/x"


def test_webhooks_add_refuses_unknown_event_type(initialised, receiver) -> None:
    result = initialised("webhooks", "add", receiver.url, "--events", "user.exploded")
    assert result.exit_code == ExitCode.USAGE and "unknown event type" in result.stderr


def test_webhooks_remove_asks_first(initialised, added) -> None:
    result = initialised("webhooks", "remove", added["id"], input="n\n")
    assert result.exit_code == ExitCode.ABORTED
    assert len(initialised.json("webhooks", "list")) == 1
    assert initialised("webhooks", "remove", added["id"], "--yes").exit_code == 0
    assert initialised.json("webhooks", "list") == []


def test_webhooks_show_unknown_is_not_found(initialised) -> None:
    result = initialised("webhooks", "show", "ep_nope")
    assert result.exit_code == ExitCode.NOT_FOUND and result.stderr.startswith("Error: ")


def test_webhooks_test_goes_to_that_endpoint_only(initialised, added, receiver) -> None:
    other = initialised.json("webhooks", "add", receiver.url)
    queued = initialised.json("webhooks", "test", added["id"])
    assert initialised.json("webhooks", "deliver", "--once") == {"sent": 1, "delivered": 1, "failed": 0}
    [got] = receiver.received
    assert Webhook(added["secret"]).verify(got.body, got.headers)["type"] == "webhook.test"
    assert got.headers["webhook-id"] == str(queued["event_id"])
    assert initialised.json("webhooks", "deliveries", other["id"]) == []


def test_webhooks_rotate_secret_json(initialised, added, receiver) -> None:
    rotated = initialised.json("webhooks", "rotate-secret", added["id"], "--overlap", "0")
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != added["secret"]
    initialised.json("webhooks", "test", added["id"])
    initialised.json("webhooks", "deliver", "--once")
    got = receiver.received[0]
    assert got.headers["webhook-signature"].count("v1,") == 1  # no overlap: the new secret only
    Webhook(rotated["secret"]).verify(got.body, got.headers)


def test_webhooks_rotate_secret_refuses_bad_overlap(initialised, added) -> None:
    result = initialised("webhooks", "rotate-secret", added["id"], "--overlap", "forever")
    assert result.exit_code == ExitCode.USAGE and "overlap" in result.stderr


def test_webhooks_deliveries_failed_and_resend(initialised, added, receiver) -> None:
    receiver.answers.append(500)
    event_id = initialised.json("webhooks", "test", added["id"])["event_id"]
    assert initialised.json("webhooks", "deliver", "--once")["failed"] == 1
    [failed] = initialised.json("webhooks", "deliveries", added["id"], "--failed")
    assert (failed["event_id"], failed["last_status"], failed["state"]) == (event_id, 500, "pending")
    assert initialised.json("webhooks", "resend", str(event_id)) == {"event_id": event_id, "endpoints": [added["id"]]}
    tally = initialised.json("webhooks", "deliver", "--once")
    assert tally["delivered"] == 1  # the resent copy; the failed one waits for its retry
    assert [r.answered for r in receiver.received] == [500, 204]


def test_webhooks_resend_unknown_event(initialised, added) -> None:
    result = initialised("webhooks", "resend", "999999")
    assert result.exit_code == ExitCode.NOT_FOUND


def test_webhooks_enable_after_disable(initialised, added, receiver) -> None:
    receiver.answers.append(410)
    initialised.json("webhooks", "test", added["id"])
    initialised.json("webhooks", "deliver", "--once")
    shown = initialised.json("webhooks", "show", added["id"])
    assert shown["status"] == "disabled" and "410" in shown["disabled_reason"]
    assert initialised.json("webhooks", "enable", added["id"])["status"] == "enabled"
    assert initialised.json("webhooks", "deliver", "--once")["delivered"] == 1
