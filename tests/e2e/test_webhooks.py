"""Webhooks end to end: a real `scim serve` delivers to a real receiver on a local port."""

from __future__ import annotations

import json
import os
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook

from skilljar_scim.base import clock, config
from skilljar_scim.domain import worker
from skilljar_scim.store import db as store_db

pytestmark = pytest.mark.e2e

WEBHOOK_SETTINGS = "[webhooks]\npoll_interval_ms = 50\nlease_seconds = 2\ntimeout_ms = 500\nbatch_size = 8\n"


def _user(name: str) -> dict:
    return {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name}


@pytest.fixture
def hooked(make_server, database_url: str):
    """A `scim serve` whose delivery worker polls often, with short leases and timeouts."""
    server = make_server(database_url=database_url, workers=1, threads=4, start=False)
    server.config.write_text(server.config.read_text() + WEBHOOK_SETTINGS)
    server.start()
    return server


def _add(server, url: str, *flags: str) -> dict:
    result = server.cli("webhooks", "add", url, "--json", *flags)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _deliveries(server, endpoint_id: str) -> list[dict]:
    result = server.cli("webhooks", "deliveries", endpoint_id, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _drain_later(server, **ahead) -> dict:
    """Run the worker in this process with its clock moved ahead (the retry is due then)."""
    settings = config.load(server.config, env={})
    database = store_db.open_database(settings.database.url)
    try:
        later = clock.utcnow() + timedelta(**ahead)
        return worker.drain(settings, now=lambda: later)
    finally:
        database.close()


def test_serve_delivers_signed_events(hooked, receiver) -> None:
    endpoint = _add(hooked, receiver.url)
    token = hooked.token()["token"]
    status, _, created = hooked.request("POST", "/Users", token, _user("wh1@example.com"))
    assert status == 201
    receiver.wait_for(lambda r: r.delivered())
    got = receiver.delivered()[0]
    payload = Webhook(endpoint["secret"]).verify(got.body, got.headers)
    assert payload["type"] == "user.created" and got.headers["webhook-id"] == payload["id"]
    assert created["id"] in got.body.decode()
    assert _deliveries(hooked, endpoint["id"])[0]["state"] == "delivered"


@pytest.mark.parametrize("answer, error", [(500, "HTTP 500"), ("hang", "timed out")])
def test_serve_retries_after_failure(hooked, receiver, answer, error) -> None:
    endpoint = _add(hooked, receiver.url)
    receiver.answers.append(answer)
    token = hooked.token()["token"]
    hooked.request("POST", "/Users", token, _user("wh2@example.com"))
    receiver.wait_for(lambda r: r.received)
    # The first attempt gets a row when it has failed (until then its event has no row of its own).
    receiver.wait_for(lambda r: [d["attempts"] for d in _deliveries(hooked, endpoint["id"])] == [1])
    [row] = _deliveries(hooked, endpoint["id"])
    assert row["state"] == "pending" and error in row["last_error"] and len(receiver.received) == 1
    assert _drain_later(hooked, seconds=40)["delivered"] == 1
    [row] = _deliveries(hooked, endpoint["id"])
    assert (row["state"], row["attempts"], row["last_status"]) == ("delivered", 2, 204)
    assert len(receiver.delivered()) == 1


def test_serve_410_disables_the_endpoint(hooked, receiver) -> None:
    endpoint = _add(hooked, receiver.url)
    receiver.answers.append(410)
    hooked.request("POST", "/Users", hooked.token()["token"], _user("wh3@example.com"))

    def disabled(_) -> bool:
        shown = json.loads(hooked.cli("webhooks", "show", endpoint["id"], "--json").stdout)
        return shown["status"] == "disabled"

    receiver.wait_for(disabled)
    events = json.loads(hooked.cli("events", "list", "--action", "webhook.disabled", "--json").stdout)
    assert events[0]["resource_id"] == endpoint["id"]


def test_serve_rotation_signs_with_both_secrets(hooked, receiver) -> None:
    endpoint = _add(hooked, receiver.url)
    rotated = hooked.cli("webhooks", "rotate-secret", endpoint["id"], "--overlap", "1h", "--json")
    new = json.loads(rotated.stdout)["secret"]
    hooked.request("POST", "/Users", hooked.token()["token"], _user("wh4@example.com"))
    receiver.wait_for(lambda r: r.delivered())
    got = receiver.delivered()[0]
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    assert Webhook(new).verify(got.body, got.headers) == Webhook(endpoint["secret"]).verify(got.body, got.headers)


def test_serve_sigkilled_mid_delivery_loses_nothing(hooked, receiver) -> None:
    _add(hooked, receiver.url)
    receiver.delay = 0.1
    token = hooked.token()["token"]
    ids = {hooked.request("POST", "/Users", token, _user(f"crash{n}@example.com"))[2]["id"] for n in range(40)}
    receiver.wait_for(lambda r: len(r.delivered()) >= 5)
    hooked.kill()  # SIGKILL the master, HTTP workers and delivery worker mid-stream
    assert len({r.json["data"]["id"] for r in receiver.delivered()}) < len(ids)
    receiver.delay = 0
    hooked.start()
    receiver.wait_for(lambda r: {x.json["data"]["id"] for x in r.delivered()} >= ids, seconds=60)


def _niceness_in_group(pgid: int) -> dict[int, int]:
    """Return {pid: nice} of every process in a process group (Linux /proc: stat fields 5 and 19)."""
    found = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            found[int(entry)] = int(fields[16])
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_serve_runs_the_delivery_process_at_lower_cpu_priority(make_server, database_url: str) -> None:
    server = make_server(database_url=database_url, workers=2, threads=2, settings={"webhooks": {"niceness": 7}})
    base = os.getpriority(os.PRIO_PROCESS, server.process.pid)
    niceness = _niceness_in_group(server.process.pid)
    [(delivery_pid, nice)] = [(pid, nice) for pid, nice in niceness.items() if nice != base]  # the delivery process
    assert nice == base + 7 and delivery_pid != server.process.pid
    assert len(niceness) >= 3, niceness  # serve (the gunicorn master) and its HTTP workers stay at `base`
