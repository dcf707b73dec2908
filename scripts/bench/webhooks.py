"""Webhook workloads for `scripts/bench.py --webhooks` (issue 14, "Measured").

- throughput: POST /Users with wrk, without and with one webhook endpoint (and its receiver)
  configured, on two fresh stores, in the order ABBA ABBA; the ratio of the summed rates, and
  of the server's CPU per create (its delivery worker included: same process group), which a
  busy shared box skews less.
- lag: users created by paced Python clients at the rate the hooked run reached; the time
  from each SCIM answer to that user's delivery arriving at the receiver (p50, p99).
- outage: the receiver is down (connection refused) while users are created and updated,
  then comes back; every outbox row must end delivered, no event answered 2xx twice, and each
  user's events in the order they happened.

The receiver is a ThreadingHTTPServer in this process, on 127.0.0.1, answering 204.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

BASE = "/scim/v2"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"


class Receiver:
    """Records every delivery answered 2xx: arrival time, webhook-id, event type, user."""

    def __init__(self, port: int):
        self.port, self.got, self.lock, self.server = port, [], threading.Lock(), None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                arrived = time.monotonic()
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()
                data = body.get("data") or {}
                name = data.get("userName") or (data.get("summary") or {}).get("userName")
                with receiver.lock:
                    receiver.got.append((arrived, self.headers["webhook-id"], body["type"], data.get("id"), name))

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


class Pacer:
    """Hands out request numbers on a fixed schedule (rate per second) until a deadline."""

    def __init__(self, rate: float, seconds: float):
        self.rate, self.started, self.seconds = rate, time.monotonic(), seconds
        self.next, self.lock = 0, threading.Lock()

    def take(self) -> int | None:
        with self.lock:
            n, self.next = self.next, self.next + 1
        due = self.started + n / self.rate
        if due - self.started > self.seconds:
            return None
        time.sleep(max(0.0, due - time.monotonic()))
        return n


def fresh(bench, folder: Path, args):
    """Return a new store (settings, key, database, token) in its own folder."""
    folder.mkdir(parents=True, exist_ok=True)
    return bench.Store(folder, args.workers, args.threads)


def hooked(bench, folder: Path, args, receiver: Receiver):
    """Return a fresh store with one webhook endpoint pointing at `receiver`."""
    store = fresh(bench, folder, args)
    store.cli("webhooks", "add", receiver.url, "--json")
    return store


def _user(tag: str, n: int) -> dict:
    return {"schemas": [USER_SCHEMA], "userName": f"wh-{tag}-{n}@example.com", "displayName": f"Webhook {n}",
            "emails": [{"value": f"wh-{tag}-{n}@example.com", "type": "work", "primary": True}]}


def _drive(bench, store, pacer: Pacer, tag: str, updates: bool, answered: dict) -> None:
    """One client: create (and with `updates`, then PATCH) users on the pacer's schedule."""
    api = bench.Api(store)
    while (n := pacer.take()) is not None:
        created = api.send("POST", "/Users", _user(tag, n), expect=(201,))
        answered[created["userName"]] = time.monotonic()
        if updates:
            api.send("PATCH", f"/Users/{created['id']}", {"schemas": [PATCH_OP], "Operations": [
                {"op": "replace", "path": "displayName", "value": f"Renamed {n}"}]}, expect=(200, 204))


def drive(bench, store, rate: float, seconds: float, clients: int, tag: str, updates: bool = False) -> dict:
    """Run `clients` paced clients; return {userName: monotonic time the create was answered}."""
    answered: dict = {}
    pacer = Pacer(rate, seconds)
    threads = [threading.Thread(target=_drive, args=(bench, store, pacer, tag, updates, answered)) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 120)
    return answered


def wait_delivered(store, seconds: float) -> int:
    """Wait (bounded) until no delivery is pending; return how many still are."""
    deadline = time.monotonic() + seconds
    while True:
        pending = store.sql("SELECT COUNT(*) FROM webhook_delivery WHERE state != 'delivered'")[0][0]
        if pending == 0 or time.monotonic() > deadline:
            return pending
        time.sleep(0.2)


ORDER = ("without", "with_endpoint", "with_endpoint", "without") * 2  # ABBA twice: drift on a shared box cancels


def throughput(bench, folder: Path, args, duration: float, report: dict) -> float:
    """Create throughput and server CPU per create, with and without an endpoint; return the hooked rate."""
    receiver = Receiver(bench.free_port())
    receiver.start()
    stores = {"without": fresh(bench, folder / "plain", args),
              "with_endpoint": hooked(bench, folder / "hooked", args, receiver)}
    totals = {name: [0, 0.0, 0.0] for name in stores}  # requests, seconds, server CPU seconds
    try:
        for turn, name in enumerate(ORDER):
            summary = _create_run(bench, stores[name], args, duration, f"{name}{turn}")
            totals[name][0] += summary["requests"]
            totals[name][1] += summary["duration_us"] / 1e6
            totals[name][2] += summary["server_cpu_s"]
        server = stores["with_endpoint"].serve()  # let the worker finish what the timed runs queued
        try:
            left = wait_delivered(stores["with_endpoint"], 120)
        finally:
            server.stop()
    finally:
        receiver.stop()
    rates = {name: round(requests / seconds, 1) for name, (requests, seconds, _) in totals.items()}
    cpu = {name: round(used * 1000 / requests, 3) for name, (requests, _, used) in totals.items()}
    report.update({"create_rps": rates, "create_ratio": round(rates["with_endpoint"] / rates["without"], 3),
                   "create_server_cpu_ms": cpu, "create_cpu_ratio": round(cpu["with_endpoint"] / cpu["without"], 3),
                   "create_backlog_undelivered": left})
    return rates["with_endpoint"]


def _create_run(bench, store, args, duration: float, tag: str) -> dict:
    """Serve `store`, POST users with wrk for `duration` s; return wrk's summary (server CPU included)."""
    server = store.serve()
    try:
        summary = bench.run_wrk(store, "create.lua", BASE + "/Users", [BASE, tag, "1000000"], duration,
                                args.connections, min(args.wrk_threads, args.connections), server)
    finally:
        server.stop()
    bench.log(f"webhooks create {tag}: {summary['requests'] / (summary['duration_us'] / 1e6):.1f} req/s")
    return summary


def lag(bench, folder: Path, args, rate: float, seconds: float, report: dict) -> None:
    """Delivery lag from each SCIM answer to the receiver, creating at `rate` per second."""
    receiver = Receiver(bench.free_port())
    receiver.start()
    store = hooked(bench, folder / "lag", args, receiver)
    server = store.serve()
    try:
        answered = drive(bench, store, rate, seconds, args.connections, "lag")
        wait_delivered(store, 60)
    finally:
        server.stop()
        receiver.stop()
    arrived = {name: at for at, _, kind, _, name in receiver.got if kind == "user.created"}
    lags = sorted(arrived[n] - t for n, t in answered.items() if n in arrived)
    report["lag"] = {"rate_asked": round(rate, 1), "rate_reached": round(len(answered) / seconds, 1),
                     "users": len(answered), "delivered": len(lags),
                     "p50_s": round(bench.percentile(lags, 50), 3) if lags else None,
                     "p99_s": round(bench.percentile(lags, 99), 3) if lags else None,
                     "max_s": round(lags[-1], 3) if lags else None}


def outage(bench, folder: Path, args, down: float, rate: float, report: dict) -> None:
    """The receiver is down for `down` seconds while users are created and updated, then back."""
    receiver = Receiver(bench.free_port())
    store = hooked(bench, folder / "outage", args, receiver)  # nothing listens there yet
    server = store.serve()
    try:
        drive(bench, store, rate, down, 2, "down", updates=True)
        receiver.start()
        back = time.monotonic()
        drive(bench, store, rate, 5, 2, "back", updates=True)
        pending = wait_delivered(store, 300)
        caught_up = time.monotonic() - back
    finally:
        server.stop()
        receiver.stop()
    report["outage"] = {"down_s": down, "rate": rate, **check_outage(store, receiver, pending),
                        "caught_up_after_back_s": round(caught_up, 1)}


def check_outage(store, receiver: Receiver, pending: int) -> dict:
    """Every outbox row delivered, none answered 2xx twice, each user's events in order."""
    rows = store.sql("SELECT COUNT(*), SUM(attempts) FROM webhook_delivery")[0]
    ids = [webhook_id for _, webhook_id, _, _, _ in receiver.got]
    per_user: dict = {}
    for _, webhook_id, _, user, _ in receiver.got:
        per_user.setdefault(user, []).append(webhook_id)
    order = lambda webhook_id: (len(webhook_id), webhook_id)  # noqa: E731 - event ids: longer is later
    out_of_order = sum(1 for seen in per_user.values() if seen != sorted(seen, key=order))
    return {"events": rows[0], "attempts": rows[1], "undelivered": pending, "delivered_2xx": len(ids),
            "answered_2xx_twice": len(ids) - len(set(ids)), "users_out_of_order": out_of_order,
            "ok": pending == 0 and len(ids) == len(set(ids)) == rows[0] and out_of_order == 0}


def run(bench, folder: Path, args) -> dict:
    """Run the three webhook workloads; return their figures."""
    report: dict = {"settings": {"workers": args.workers, "threads": args.threads, "connections": args.connections,
                                 "duration_s": args.duration or 10, "outage_s": args.webhook_outage}}
    rate = throughput(bench, folder, args, args.duration or 10, report)
    bench.log(f"webhooks create: {report['create_rps']} ratio {report['create_ratio']}")
    lag(bench, folder, args, rate, args.duration or 10, report)
    bench.log(f"webhooks lag: {report['lag']}")
    outage(bench, folder, args, args.webhook_outage, args.webhook_outage_rate, report)
    bench.log(f"webhooks outage: {report['outage']}")
    report["targets"] = [
        {"target": "create with one endpoint >= 0.9 x without", "value": report["create_ratio"],
         "met": report["create_ratio"] >= 0.9},
        {"target": "delivery lag p50 < 1 s", "value": report["lag"]["p50_s"],
         "met": report["lag"]["p50_s"] is not None and report["lag"]["p50_s"] < 1},
        {"target": "delivery lag p99 < 5 s", "value": report["lag"]["p99_s"],
         "met": report["lag"]["p99_s"] is not None and report["lag"]["p99_s"] < 5},
        {"target": "receiver down then back: all delivered, none twice, in order", "value": report["outage"]["ok"],
         "met": report["outage"]["ok"]},
    ]
    return report
