"""Webhook workloads for `scripts/bench.py --webhooks` (issue 14, "Measured").

- throughput: POST /Users with wrk, without and with one webhook endpoint (and its receiver)
  configured, on two fresh stores, in the order ABBA ABBA; the ratio of the summed rates, and
  of the server's CPU per create (its delivery process included: same process group, counted
  until every delivery of the run is made), which a busy shared box skews less.
- lag: users created by paced Python clients at the rate the hooked run reached; the time
  from each SCIM answer to that user's delivery arriving at the receiver (p50, p99).
- outage: the receiver is down (connection refused) while users are created and updated,
  then comes back; every event must end delivered, no event answered 2xx twice, and each
  user's events in the order they happened.

The receiver (scripts/bench/receiver.py) is a minimal asyncio HTTP server in a process of its
own on 127.0.0.1, answering 204: it stands in for the dashboard, which runs on another box, so
it does as little as it can on this one; its CPU is reported apart from the server's.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

BASE = "/scim/v2"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"


NGINX_CONF = """worker_processes 1;
error_log {prefix}/error.log warn;
pid {prefix}/nginx.pid;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/tmp; proxy_temp_path {prefix}/tmp; fastcgi_temp_path {prefix}/tmp;
    uwsgi_temp_path {prefix}/tmp; scgi_temp_path {prefix}/tmp;
    log_format hooks '$msec $http_webhook_id';
    keepalive_requests 10000000;
    keepalive_timeout 600s;
    server {{
        listen 127.0.0.1:{port};
        location / {{ access_log {out} hooks buffer=256k flush=1s; return 204; }}
    }}
}}
"""


class Receiver:
    """The dashboard's stand-in: answers every POST 204 and logs "arrival-time webhook-id" per request.

    nginx when it is installed (C: the least CPU taken from `scim serve` on this shared box),
    else scripts/bench/receiver.py (asyncio). Either runs in processes of its own, whose CPU
    is counted apart from the server's. Arrival times are wall-clock seconds (nginx's $msec).
    """

    def __init__(self, port: int, folder: Path):
        self.port, self.folder, self.process, self.cpu_s = port, folder / f"receiver-{port}", None, 0.0
        self.out = self.folder / "received.log"
        (self.folder / "tmp").mkdir(parents=True, exist_ok=True)
        self.kind = "nginx" if shutil.which("nginx") else "python"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> None:
        if self.kind == "nginx":
            conf = self.folder / "nginx.conf"
            conf.write_text(NGINX_CONF.format(prefix=self.folder, port=self.port, out=self.out))
            command = ["nginx", "-p", str(self.folder), "-c", str(conf), "-g", "daemon off;"]
        else:
            command = [sys.executable, str(Path(__file__).with_name("receiver.py")), str(self.port), str(self.out)]
        self.process = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not _listening(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the webhook receiver ({self.kind}) did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.cpu_s += sum(process_cpu_s(pid) for pid in group_pids(self.process.pid))
            self.process.send_signal(signal.SIGQUIT if self.kind == "nginx" else signal.SIGTERM)
            self.process.wait(30)
            self.process = None

    def arrivals(self) -> list[tuple[float, str]]:
        """Every request answered 204: (arrival time, webhook-id), in the order they were answered."""
        lines = self.out.read_text().split("\n") if self.out.exists() else []
        return [(float(at), webhook_id) for at, _, webhook_id in (line.partition(" ") for line in lines) if at]

    def got(self, store) -> list[tuple]:
        """Every delivery answered: (arrival, webhook-id, event type, user id, userName), from `store`'s events."""
        feed = {f"evt_{row_id:016x}": (action, json.loads(data) if data else {})
                for row_id, action, data in store.sql("SELECT id, action, data FROM event")}
        return [(at, webhook_id, feed[webhook_id][0], feed[webhook_id][1].get("id"), feed[webhook_id][1].get("userName"))
                for at, webhook_id in self.arrivals()]


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def group_pids(pgid: int) -> list[int]:
    """Return the processes of a process group (Linux /proc)."""
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            if int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[2]) == pgid:
                found.append(int(entry))
        except (OSError, IndexError):
            continue
    return found


def process_cpu_s(pid: int) -> float:
    """Return a process's user + system CPU seconds so far (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def delivery_cpu_s(server) -> float:
    """Return the CPU seconds of the server's delivery process: the one of its group running niced."""
    total = 0.0
    for pid in server.pids():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[16]) > 0:  # field 19, nice: only the delivery process lowers its priority
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


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
        answered[created["userName"]] = time.time()  # the receiver logs wall-clock time
        if updates:
            api.send("PATCH", f"/Users/{created['id']}", {"schemas": [PATCH_OP], "Operations": [
                {"op": "replace", "path": "displayName", "value": f"Renamed {n}"}]}, expect=(200, 204))


def drive(bench, store, rate: float, seconds: float, clients: int, tag: str, updates: bool = False) -> dict:
    """Run `clients` paced clients; return {userName: wall-clock time the create was answered}."""
    answered: dict = {}
    pacer = Pacer(rate, seconds)
    threads = [threading.Thread(target=_drive, args=(bench, store, pacer, tag, updates, answered)) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 120)
    return answered


# Events an endpoint without a type filter wants (domain/outbox.py NOT_BY_DEFAULT), and how many
# deliveries wait: rows not delivered, and wanted events after an enabled endpoint's stream cursor.
WANTED = "e.action NOT LIKE 'token.%' AND e.action NOT LIKE 'webhook.%'"
PENDING_SQL = ("SELECT (SELECT COUNT(*) FROM webhook_delivery WHERE state != 'delivered') + (SELECT COUNT(*) FROM "
               f"event e JOIN webhook_endpoint w ON e.id > w.stream_cursor WHERE w.disabled_at IS NULL AND {WANTED})")


def pending_deliveries(store) -> int:
    """Return how many deliveries are not made yet (rows and stream backlog)."""
    return store.sql(PENDING_SQL)[0][0]


def wait_delivered(store, seconds: float) -> int:
    """Wait (bounded) until no delivery is pending; return how many still are."""
    deadline = time.monotonic() + seconds
    while True:
        pending = pending_deliveries(store)
        if pending == 0 or time.monotonic() > deadline:
            return pending
        time.sleep(0.2)


ORDER = ("without", "with_endpoint", "with_endpoint", "without") * 2  # ABBA twice: drift on a shared box cancels


def throughput(bench, folder: Path, args, duration: float, report: dict) -> float:
    """Create throughput and server CPU per create, with and without an endpoint; return the hooked rate."""
    receiver = Receiver(bench.free_port(), folder / "receiver")
    receiver.start()
    stores = {"without": fresh(bench, folder / "plain", args),
              "with_endpoint": hooked(bench, folder / "hooked", args, receiver)}
    totals = {name: dict.fromkeys(("requests", "seconds", "cpu_s", "delivery_cpu_s", "left", "drain_s"), 0.0)
              for name in stores}
    try:
        for turn, name in enumerate(ORDER):
            for key, value in _create_run(bench, stores[name], args, duration, f"{name}{turn}").items():
                totals[name][key] += value
    finally:
        receiver.stop()
    hooked_run = totals["with_endpoint"]
    rates = {name: round(t["requests"] / t["seconds"], 1) for name, t in totals.items()}
    cpu = {name: round(t["cpu_s"] * 1000 / t["requests"], 3) for name, t in totals.items()}
    delivered = len(receiver.arrivals())
    report.update({
        "create_rps": rates, "create_ratio": round(rates["with_endpoint"] / rates["without"], 3),
        "create_server_cpu_ms": cpu, "create_cpu_ratio": round(cpu["with_endpoint"] / cpu["without"], 3),
        "delivery_process_cpu_ms_per_event": round(hooked_run["delivery_cpu_s"] * 1000 / max(delivered, 1), 3),
        "receiver_cpu_ms_per_event": round(receiver.cpu_s * 1000 / max(delivered, 1), 3),
        "pending_at_end_of_runs": int(hooked_run["left"]), "drain_after_runs_s": round(hooked_run["drain_s"], 1),
        "delivered": delivered, "receiver": receiver.kind})
    return rates["with_endpoint"]


def _create_run(bench, store, args, duration: float, tag: str) -> dict:
    """Serve `store`, POST users with wrk for `duration` s, then wait until the outbox is drained.

    The server's CPU (its delivery process included) counts until every delivery of the run is
    made, so a delivery process that falls behind during the run is not let off its work.
    """
    server = store.serve()
    try:
        before = delivery_cpu_s(server)
        summary = bench.run_wrk(store, "create.lua", BASE + "/Users", [BASE, tag, "1000000"], duration,
                                args.connections, min(args.wrk_threads, args.connections), server)
        cpu_at_end, drained = server.cpu_seconds(), time.monotonic()
        left = pending_deliveries(store)
        if wait_delivered(store, 120):
            raise SystemExit(f"{tag}: deliveries still pending 120 s after the run")
        drain_s = time.monotonic() - drained if left else 0.0
        tail_cpu = server.cpu_seconds() - cpu_at_end
        delivery = delivery_cpu_s(server) - before
    finally:
        server.stop()
    rate = summary["requests"] / (summary["duration_us"] / 1e6)
    bench.log(f"webhooks create {tag}: {rate:.1f} req/s, {left} pending at the end, drained in {drain_s:.1f} s")
    return {"requests": summary["requests"], "seconds": summary["duration_us"] / 1e6,
            "cpu_s": summary["server_cpu_s"] + tail_cpu, "delivery_cpu_s": delivery, "left": left, "drain_s": drain_s}


def lag(bench, folder: Path, args, rate: float, seconds: float, report: dict) -> None:
    """Delivery lag from each SCIM answer to the receiver, creating at `rate` per second."""
    receiver = Receiver(bench.free_port(), folder / "receiver")
    receiver.start()
    store = hooked(bench, folder / "lag", args, receiver)
    server = store.serve()
    try:
        answered = drive(bench, store, rate, seconds, args.connections, "lag")
        wait_delivered(store, 60)
    finally:
        server.stop()
        receiver.stop()
    arrived = {name: at for at, _, kind, _, name in receiver.got(store) if kind == "user.created"}
    lags = sorted(arrived[n] - t for n, t in answered.items() if n in arrived)
    report["lag"] = {"rate_asked": round(rate, 1), "rate_reached": round(len(answered) / seconds, 1),
                     "users": len(answered), "delivered": len(lags),
                     "p50_s": round(bench.percentile(lags, 50), 3) if lags else None,
                     "p99_s": round(bench.percentile(lags, 99), 3) if lags else None,
                     "max_s": round(lags[-1], 3) if lags else None}


def outage(bench, folder: Path, args, down: float, rate: float, report: dict) -> None:
    """The receiver is down for `down` seconds while users are created and updated, then back."""
    receiver = Receiver(bench.free_port(), folder / "receiver")
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
    """Every event after the endpoint was added delivered, none answered 2xx twice, each user's events in order.

    Attempts: each delivery row's, plus one for each event the stream delivered at its first try (no row).
    """
    wanted = store.sql(f"SELECT COUNT(*) FROM event e WHERE e.id > (SELECT MIN(id) FROM event WHERE action = "
                       f"'webhook.created') AND {WANTED}")[0][0]
    row_count, row_attempts = store.sql("SELECT COUNT(*), COALESCE(SUM(attempts), 0) FROM webhook_delivery")[0]
    rows = (wanted, row_attempts + wanted - row_count)
    got = receiver.got(store)
    ids = [webhook_id for _, webhook_id, _, _, _ in got]
    per_user: dict = {}
    for _, webhook_id, _, user, _ in got:
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
