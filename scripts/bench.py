#!/usr/bin/env python3
"""Benchmark `scim serve` over real HTTP against a trivial Flask app on the same server.

Starts `scim serve` on a temporary database, seeds it, and drives it with wrk (a C load
generator that costs little CPU; install it with `apt-get install wrk` or `brew install wrk`).
In the same run it measures the *ceiling*: a Flask app returning a fixed small JSON body
under exactly the same gunicorn settings (scripts/bench/ceiling.py). Throughput is reported
as a ratio to that ceiling, with p50/p99 latency and the server's peak RSS.

Workloads: create (POST /Users, 8 clients), lookup (userName eq, at 5,000 and 50,000 users),
page (startIndex near the start and the end), group (fill to 5,000 members by PATCHes of 50;
single add/remove at 10 and 5,000 members; GET /Groups?excludedAttributes=members),
deactivate (PATCH active=false), CLI start-up, and a sweep of server settings on lookup
(gunicorn workers x threads, and waitress when it is installed). README "Performance" has
the results and what they led to.

Only ever talks to 127.0.0.1; every loop is bounded in time and count. Run on demand,
never in CI:  .venv/bin/python scripts/bench.py  (about 10 minutes on 2 cores; --quick: 2).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LUA_DIR = ROOT / "scripts" / "bench"
BASE = "/scim/v2"
HOST = "127.0.0.1"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GIVEN = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret", "Dennis"]
FAMILY = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Hamilton", "Ritchie"]
DEPARTMENTS = ["Engineering", "Sales", "Support", "Marketing", "Finance"]


@dataclass(frozen=True)
class Sizes:
    create: int = 5_000
    big: int = 50_000
    group: int = 5_000
    small_group: int = 10
    patch_batch: int = 50
    deactivate: int = 5_000
    duration: float = 10.0
    warmup: float = 1.0
    cli_runs: int = 5


QUICK = Sizes(create=500, big=5_000, group=500, deactivate=500, duration=3.0, warmup=0.5, cli_runs=3)


@dataclass
class Result:
    """One measured workload: throughput, latency, and what it cost the server."""

    name: str
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    server_cpu_ms_per_req: float | None = None
    client_cpu_ms_per_req: float | None = None
    ratio: float | None = None  # rps / ceiling rps
    cpu_ratio: float | None = None  # ceiling's server CPU per request / this one's (what an idle box would give)
    note: str = ""


@dataclass
class Report:
    settings: dict = field(default_factory=dict)
    results: dict = field(default_factory=dict)
    cli: dict = field(default_factory=dict)
    seeding: dict = field(default_factory=dict)
    client_check: dict = field(default_factory=dict)
    rss_mb: dict = field(default_factory=dict)
    disk: dict = field(default_factory=dict)
    load: dict = field(default_factory=dict)
    sweep: list = field(default_factory=list)
    targets: list = field(default_factory=list)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- processes ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class Served:
    """A gunicorn process group we started: `scim serve` or the ceiling app."""

    def __init__(self, command: list[str], port: int, log_path: Path, ready_path: str):
        self.port = port
        with open(log_path, "ab") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=log_path.parent,
                                            start_new_session=True)
        self._wait_ready(ready_path, log_path)

    def _wait_ready(self, path: str, log_path: Path) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"server exited early:\n{log_path.read_text()[-3000:]}")
            try:
                conn = http.client.HTTPConnection(HOST, self.port, timeout=2)
                conn.request("GET", path)
                if conn.getresponse().status == 200:
                    conn.close()
                    time.sleep(0.5)  # let every worker finish booting
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise SystemExit("server did not come up within 60 s")

    def pids(self) -> list[int]:
        """Return the master and its workers (our process group)."""
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                except OSError:
                    continue
                fields = stat.rsplit(")", 1)[1].split()
                if int(fields[2]) == self.process.pid:  # field 5: process group id
                    found.append(int(entry))
        return found

    def cpu_seconds(self) -> float:
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime + stime
        return total / ticks

    def memory_mb(self) -> dict:
        """Sum VmHWM (peak) and VmRSS over the master and workers."""
        peak = rss = 0
        for pid in self.pids():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    peak += int(line.split()[1])
                elif line.startswith("VmRSS:"):
                    rss += int(line.split()[1])
        return {"peak_mb": round(peak / 1024, 1), "current_mb": round(rss / 1024, 1), "processes": len(self.pids())}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


class Store:
    """The temporary installation: settings file, key, SQLite database, one token."""

    def __init__(self, folder: Path, workers: int, threads: int):
        self.folder = folder
        self.port = free_port()
        self.config = folder / "scim.toml"
        self.db_path = folder / "scim.db"
        self.configure(workers, threads)
        self.cli("init")
        self.token = json.loads(self.cli("token", "generate", "--name", "bench", "--expires", "1d", "--json"))["token"]

    def configure(self, workers: int, threads: int) -> None:
        self.workers, self.threads = workers, threads
        self.config.write_text(
            '[database]\nurl = "sqlite:///scim.db"\n[security]\nsecret_key_file = "scim.key"\n'
            f'[server]\nhost = "{HOST}"\nport = {self.port}\nworkers = {workers}\nthreads = {threads}\n'
            "graceful_timeout = 5\n"
        )

    def scim_command(self) -> list[str]:
        script = Path(sys.executable).with_name("scim")
        return [str(script)] if script.exists() else [sys.executable, "-m", "skilljar_scim"]

    def cli(self, *args: str) -> str:
        done = subprocess.run([*self.scim_command(), "--config", str(self.config), *args], cwd=self.folder,
                              capture_output=True, text=True, timeout=300, env=clean_env())
        if done.returncode != 0:
            raise SystemExit(f"scim {' '.join(args)} failed: {done.stderr}")
        return done.stdout

    def serve(self) -> Served:
        command = [*self.scim_command(), "--config", str(self.config), "serve", "--no-init"]
        return Served(command, self.port, self.folder / "serve.log", "/healthz")

    def ceiling(self, wsgi: str = "gunicorn") -> Served:
        command = [sys.executable, str(LUA_DIR / "ceiling.py"), str(self.config), wsgi, "ceiling"]
        return Served(command, self.port, self.folder / "ceiling.log", "/")

    def serve_with_waitress(self) -> Served:
        command = [sys.executable, str(LUA_DIR / "ceiling.py"), str(self.config), "waitress", "scim"]
        return Served(command, self.port, self.folder / "waitress.log", "/healthz")

    def sql(self, query: str, *params) -> list[tuple]:
        import sqlite3

        with sqlite3.connect(self.db_path, timeout=30) as conn:
            return conn.execute(query, params).fetchall()

    def write_lines(self, name: str, lines: list[str]) -> Path:
        path = self.folder / name
        path.write_text("\n".join(lines) + "\n")
        return path


def clean_env() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith("SKILLJAR_SCIM_")}


# --- load generation ----------------------------------------------------------------------


def run_wrk(store: Store, script: str, path: str, args: list[str], duration: float, connections: int,
            threads: int, server: Served | None = None) -> dict:
    """Run wrk with one of scripts/bench/*.lua; return its summary and both sides' CPU time.

    A script with a request quota drops one marker file per thread when done; wrk is then
    interrupted (it prints its summary on SIGINT) instead of sleeping out its duration.
    """
    out, done_dir = store.folder / "wrk.out", Path(tempfile.mkdtemp(dir=store.folder))
    command = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{max(duration, 1):.0f}s", "--timeout", "10s",
               "-H", f"Authorization: Bearer {store.token}", "-H", "Content-Type: application/scim+json",
               "-s", str(LUA_DIR / script), f"http://{HOST}:{store.port}{path}", "--", *args]
    env = {**os.environ, "BENCH_LUA_DIR": str(LUA_DIR), "BENCH_DONE_DIR": str(done_dir)}
    before = server.cpu_seconds() if server else 0.0
    with open(out, "wb") as stdout:
        process = subprocess.Popen(command, stdout=stdout, stderr=subprocess.STDOUT, env=env)
        status, usage, interrupted = _wait_wrk(process, done_dir, threads, duration + 30)
    after = server.cpu_seconds() if server else 0.0
    text = out.read_text()
    line = next((l for l in text.splitlines() if l.startswith("BENCH_JSON ")), None)
    if os.waitstatus_to_exitcode(status) != 0 or line is None:
        raise SystemExit(f"wrk failed ({status}):\n{text[-2000:]}")
    summary = json.loads(line.split(" ", 1)[1])
    if interrupted and summary["window_us"] > 0:
        summary["duration_us"] = summary["window_us"]  # the requests' own window, not wrk's sleep
    summary["client_cpu_s"] = usage.ru_utime + usage.ru_stime
    summary["server_cpu_s"] = (after - before) if server else None
    shutil.rmtree(done_dir, ignore_errors=True)
    return summary


def _wait_wrk(process: subprocess.Popen, done_dir: Path, threads: int, limit: float):
    """Wait for wrk; interrupt it once every thread has met its quota (or after `limit` s)."""
    deadline, interrupted = time.monotonic() + limit, False
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            return status, usage, interrupted
        finished = len(list(done_dir.glob("done.*"))) >= threads
        if (finished or time.monotonic() > deadline) and not interrupted:
            process.send_signal(signal.SIGINT)
            interrupted = True
        time.sleep(0.05)


def result(name: str, summary: dict, note: str = "") -> Result:
    seconds = summary["duration_us"] / 1e6
    requests = summary["requests"]
    errors = sum(summary[k] for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts"))
    per = lambda cpu: round(cpu * 1000 / requests, 3) if cpu is not None and requests else None  # noqa: E731
    return Result(name, requests, round(seconds, 2), round(requests / seconds, 1) if seconds else 0.0,
                  round(summary["p50_us"] / 1000, 2), round(summary["p99_us"] / 1000, 2), errors,
                  per(summary["server_cpu_s"]), per(summary["client_cpu_s"]), note=note)


class Api:
    """A small keep-alive JSON client for setting up workloads (not for timing load)."""

    def __init__(self, store: Store):
        self.store = store
        self.conn = http.client.HTTPConnection(HOST, store.port, timeout=60)

    def send(self, method: str, path: str, body: dict | None = None, expect: tuple = (200, 201, 204)) -> dict | None:
        headers = {"Authorization": f"Bearer {self.store.token}", "Content-Type": "application/scim+json"}
        data = json.dumps(body) if body is not None else None
        for attempt in (1, 2):  # the server closes idle keep-alive connections: reconnect once
            try:
                self.conn.request(method, BASE + path, body=data, headers=headers)
                response = self.conn.getresponse()
                break
            except (ConnectionError, http.client.HTTPException):
                self.conn.close()
                self.conn = http.client.HTTPConnection(HOST, self.store.port, timeout=60)
                if attempt == 2:
                    raise
        raw = response.read()
        if response.status not in expect:
            raise SystemExit(f"{method} {path} -> {response.status}: {raw[:500]!r}")
        return json.loads(raw) if raw else None


def user_body(tag: str, tid: int, n: int) -> dict:
    """The same realistic user create.lua POSTs (Okta/Entra shape, enterprise extension)."""
    g, f = GIVEN[n % len(GIVEN)], FAMILY[(n * 7) % len(FAMILY)]
    name = f"{g.lower()}.{f.lower()}.{tag}-{tid}-{n}@example.com"
    return {
        "schemas": [USER_SCHEMA, ENTERPRISE], "userName": name, "externalId": f"ext-{tag}-{tid}-{n}", "active": True,
        "displayName": f"{g} {f}", "name": {"givenName": g, "familyName": f, "formatted": f"{g} {f}"},
        "emails": [{"value": name, "type": "work", "primary": True}], "title": "Staff", "locale": "en-US",
        ENTERPRISE: {"department": DEPARTMENTS[n % len(DEPARTMENTS)], "employeeNumber": f"{tag}-{tid}-{n}"},
    }


def seed_rows(body: dict, actor, now) -> tuple[dict, list[dict], dict]:
    """Return the user, email-index and event rows users.create writes for a new user."""
    from skilljar_scim.domain import users
    from skilljar_scim.scim import resources
    from skilljar_scim.scim.schemas import USER_TYPE
    from skilljar_scim.base.textkey import key as casefold

    data = resources.normalise(USER_TYPE, body)
    data.setdefault("active", True)
    user_id = str(uuid.uuid4())
    user = {"id": user_id, "user_name": data["userName"], "user_name_key": casefold(data["userName"]),
            "external_id": data.get("externalId"), "active": bool(data["active"]), "deprovisioned_at": None,
            "display_name": users._display_name(data), "primary_email": users._primary_email(data),
            "attributes": json.dumps(data, ensure_ascii=False, sort_keys=True), "password_hash": None, "version": 1,
            "created_at": now, "updated_at": now}
    keys = sorted({casefold(e["value"]) for e in data.get("emails", []) if e.get("value")})
    emails = [{"user": user_id, "value_key": key} for key in keys]
    event = {"at": now, "actor": actor.label, "token_id": actor.token_id, "action": "user.created", "resource_type": "User",
             "resource_id": user_id, "summary": json.dumps({"userName": data["userName"]}, sort_keys=True, ensure_ascii=False)}
    return user, emails, event


def check_seed_rows(actor) -> None:
    """Refuse to seed unless seed_rows() writes what users.create writes (compared, then rolled back)."""
    from skilljar_scim.domain import users
    from skilljar_scim.store import models
    from skilljar_scim.store.models import Event, User, UserEmail

    body = user_body("check", 0, 1)
    with models.database.atomic() as transaction:
        created = users.create(actor, body).user
        user, emails, event = seed_rows(body, actor, created.created_at)
        got_user = User.select().where(User.id == created.id).dicts().get()
        got_emails = list(UserEmail.select(UserEmail.user, UserEmail.value_key).where(UserEmail.user == created.id).dicts())
        got_event = Event.select().where(Event.resource_id == created.id).dicts().get()
        transaction.rollback()
    user["id"], event["resource_id"] = created.id, created.id
    emails = [{**e, "user": created.id} for e in emails]
    got_event.pop("id")
    got_user["updated_at"], got_event["at"] = user["updated_at"], event["at"]  # the same second or the next
    if (got_user, sorted(got_emails, key=str), got_event) != (user, sorted(emails, key=str), event):
        raise SystemExit(f"scripts/bench.py seed_rows() no longer matches users.create: update it.\n"
                         f"users.create: {got_user} {got_emails} {got_event}\nseed_rows:    {user} {emails} {event}")


# --- workloads ------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace, folder: Path):
        self.args = args
        self.sizes = QUICK if args.quick else Sizes()
        if args.duration:
            self.sizes = Sizes(**{**asdict(self.sizes), "duration": args.duration})
        self.report = Report()
        self.load_before = round(os.getloadavg()[0], 2)  # other work on the box skews every figure
        self.store = Store(folder, args.workers, args.threads)
        self.server: Served | None = None

    def wrk(self, name: str, script: str, path: str, args: list[str] = (), connections: int | None = None,
            threads: int | None = None, duration: float | None = None, warm: bool = False, note: str = "") -> Result:
        connections = connections or self.args.connections
        threads = threads or min(self.args.wrk_threads, connections)
        if warm and self.sizes.warmup:
            run_wrk(self.store, script, path, list(args), self.sizes.warmup, connections, threads)
        summary = run_wrk(self.store, script, path, list(args), duration or self.sizes.duration, connections, threads,
                          self.server)
        measured = result(name, summary, note)
        self.report.results[name] = measured
        log(f"{name}: {measured.rps} req/s, p50 {measured.p50_ms} ms, p99 {measured.p99_ms} ms, errors {measured.errors}")
        return measured

    def run(self) -> Report:
        s = self.sizes
        self.report.settings = {"workers": self.store.workers, "threads": self.store.threads, "worker_class": "gthread",
                                "connections": self.args.connections, "wrk_threads": self.args.wrk_threads,
                                "duration_s": s.duration, "quick": self.args.quick, "cpus": os.cpu_count(), **asdict(s)}
        self.disk()
        self.ceiling()
        self.server = self.store.serve()
        try:
            self.create()
            self.lookup("lookup_small")
            self.seed(s.big)
            self.lookup("lookup_big")
            self.paging()
            self.group()
            self.deactivate()
            self.report.rss_mb = self.server.memory_mb()
            log(f"server memory after all workloads: {self.report.rss_mb}")
        finally:
            self.server.stop()
            self.server = None
        self.ceiling("ceiling_after")
        self.cli()
        if self.args.sweep:
            self.sweep()
        self.ratios()
        self.report.load = {"before": self.load_before, "after": round(os.getloadavg()[0], 2)}
        return self.report

    def disk(self) -> None:
        """Time a 4 KiB write + fsync in the store's folder: every committed write pays one (synchronous=FULL)."""
        path, times = self.store.folder / "fsync.probe", []
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            for _ in range(50):
                began = time.perf_counter()
                os.write(fd, b"x" * 4096)
                os.fsync(fd)
                times.append(time.perf_counter() - began)
        finally:
            os.close(fd)
            path.unlink()
        self.report.disk = {"fsync_p50_ms": round(statistics.median(times) * 1000, 2),
                            "fsync_p99_ms": round(percentile(times, 99) * 1000, 2)}
        log(f"disk: {self.report.disk}")

    def ceiling(self, name: str = "ceiling") -> None:
        """Measure the trivial app (before and again after the SCIM workloads: the box may be shared)."""
        log(f"{name}: trivial Flask app, gunicorn gthread {self.store.workers}x{self.store.threads}")
        server = self.store.ceiling()
        self.server = server
        try:
            self.wrk(name, "static.lua", "/", warm=True)
            if name == "ceiling" and not self.args.skip_client_check:
                self.client_check()
        finally:
            server.stop()
            self.server = None

    def client_check(self) -> None:
        """Would a Python client have been the bottleneck? Drive the ceiling with http.client threads."""
        seconds = min(self.sizes.duration, 5.0)
        port, counts, stop_at = self.store.port, [0] * self.args.connections, time.monotonic() + seconds

        def loop(slot: int) -> None:
            conn = http.client.HTTPConnection(HOST, port, timeout=10)
            while time.monotonic() < stop_at and counts[slot] < 10_000_000:
                conn.request("GET", "/")
                conn.getresponse().read()
                counts[slot] += 1

        cpu0, wall0 = time.process_time(), time.monotonic()
        workers = [threading.Thread(target=loop, args=(i,)) for i in range(len(counts))]
        for t in workers:
            t.start()
        for t in workers:
            t.join(timeout=seconds + 30)
        wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0
        ceiling = self.report.results["ceiling"]
        rps = sum(counts) / wall
        self.report.client_check = {
            "python_client": "http.client, keep-alive, one thread per connection",
            "connections": len(counts), "python_rps": round(rps, 1), "wrk_rps": ceiling.rps,
            "python_over_wrk": round(rps / ceiling.rps, 2) if ceiling.rps else None,
            "python_client_cpu_ms_per_req": round(cpu * 1000 / max(sum(counts), 1), 3),
            "wrk_client_cpu_ms_per_req": ceiling.client_cpu_ms_per_req,
        }
        log(f"client check: {self.report.client_check}")

    def create(self) -> None:
        threads = self.args.wrk_threads
        quota = -(-self.sizes.create // threads)
        self.wrk("create", "create.lua", BASE + "/Users", [BASE, "http", str(quota)], duration=300,
                 note=f"POST /Users, {self.args.connections} clients")

    def names_file(self) -> Path:
        names = [n for (n,) in self.store.sql('SELECT user_name FROM "user" WHERE deprovisioned_at IS NULL')]
        return self.store.write_lines("names.txt", names)

    def lookup(self, name: str) -> None:
        names = self.names_file()
        users = len(names.read_text().split())
        self.wrk(name, "lookup.lua", BASE + "/Users", [BASE, str(names)], warm=True,
                 note=f'userName eq "<random existing>" at {users:,} users')

    def seed(self, total: int) -> None:
        """Bring the store to `total` users with exactly the rows users.create writes, in bulk.

        users.create costs a few ms a user (seven statements); 45,000 of them would take
        minutes. seed_rows() builds the same rows and check_seed_rows() proves it first.
        """
        from skilljar_scim.base import clock
        from skilljar_scim.domain import events, tokens
        from skilljar_scim.store import db as store_db
        from skilljar_scim.store.models import Event, User, UserEmail

        have = self.store.sql('SELECT COUNT(*) FROM "user"')[0][0]
        database = store_db.open_database(f"sqlite:///{self.store.db_path}", busy_timeout_ms=30_000)
        started, made = time.perf_counter(), 0
        try:
            actor = events.Actor.for_token(tokens.find("bench"))
            check_seed_rows(actor)
            while have + made < total:
                batch = [seed_rows(user_body(f"seed{have}", 0, made + i + 1), actor, clock.utcnow())
                         for i in range(min(5_000, total - have - made))]
                with store_db.write_transaction():
                    for model, rows in ((User, [b[0] for b in batch]), (UserEmail, [e for b in batch for e in b[1]]),
                                        (Event, [b[2] for b in batch])):
                        for start in range(0, len(rows), 500):
                            model.insert_many(rows[start:start + 500]).execute()
                made += len(batch)
            # The bulk batches leave megabytes of WAL behind; a store that grew one request at a
            # time would have had them checkpointed long before, so lookups start from there too.
            database.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            database.close()
        seconds = time.perf_counter() - started
        self.report.seeding = {"users": made, "seconds": round(seconds, 1),
                               "how": "bulk inserts of the rows users.create writes (checked against it first)"}
        log(f"seeded {made:,} users in {seconds:.1f} s")

    def paging(self) -> None:
        total = self.store.sql('SELECT COUNT(*) FROM "user" WHERE deprovisioned_at IS NULL')[0][0]
        for name, start in (("page_start", 1), ("page_end", max(total - 99, 1))):
            self.wrk(name, "static.lua", f"{BASE}/Users?startIndex={start}&count=100", warm=True,
                     note=f"startIndex={start:,}&count=100 of {total:,}")

    def group(self) -> None:
        """One group: single add/remove and listings at 10 members, fill to N by 50s, the same at N."""
        s, api = self.sizes, Api(self.store)
        self.store.cli("mappings", "add", "Engineering", "api-admin")
        ids = [i for (i,) in self.store.sql('SELECT id FROM "user" WHERE deprovisioned_at IS NULL ORDER BY id')]
        if len(ids) < s.group + 2:
            raise SystemExit(f"need {s.group + 2} users for the group workload, have {len(ids)}")
        togglers, members = ids[:2], ids[2:s.group + 2]
        toggle_file = self.store.write_lines("togglers.txt", togglers)
        group = api.send("POST", "/Groups", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                                             "displayName": "Engineering", "externalId": "eng-1",
                                             "members": [{"value": m} for m in members[:s.small_group]]})
        path = f"{BASE}/Groups/{group['id']}"
        self.membership(path, toggle_file, s.small_group)
        self.fill(api, group["id"], members[s.small_group:])
        self.membership(path, toggle_file, s.group)

    def membership(self, path: str, toggle_file: Path, size: int) -> None:
        for suffix, query in (("", ""), ("_excluded", "?excludedAttributes=members")):
            self.wrk(f"member_toggle{suffix}_{size}", "toggle.lua", path + query, [path + query, str(toggle_file)],
                     connections=2, threads=2, warm=True,
                     note=f"single add / remove members[value eq] at {size:,} members{query and ', ' + query[1:]}")
        self.wrk(f"groups_excluded_{size}", "static.lua", f"{BASE}/Groups?excludedAttributes=members", warm=True,
                 note=f"GET /Groups?excludedAttributes=members, group of {size:,}")

    def fill(self, api: Api, group_id: str, members: list[str]) -> None:
        batch, times = self.sizes.patch_batch, []
        for start in range(0, len(members), batch):
            ops = [{"op": "add", "path": "members", "value": [{"value": m} for m in members[start:start + batch]]}]
            began = time.perf_counter()
            api.send("PATCH", f"/Groups/{group_id}", {"schemas": [PATCH_OP], "Operations": ops})
            times.append(time.perf_counter() - began)
        total = sum(times)
        self.report.results["group_fill"] = Result(
            "group_fill", len(times), round(total, 2), round(len(times) / total, 1),
            round(statistics.median(times) * 1000, 2), round(percentile(times, 99) * 1000, 2), 0,
            note=f"{len(times)} PATCHes adding {batch} members each, one client, default answer (204)")
        log(f"group fill: {len(times)} PATCHes in {total:.1f} s (p50 {statistics.median(times) * 1000:.1f} ms)")

    def deactivate(self) -> None:
        ids = [i for (i,) in self.store.sql('SELECT id FROM "user" WHERE active AND deprovisioned_at IS NULL')]
        random.Random(7).shuffle(ids)
        threads = self.args.wrk_threads
        quota = -(-self.sizes.deactivate // threads)
        self.wrk("deactivate", "deactivate.lua", BASE + "/Users",
                 [BASE, str(self.store.write_lines("active.txt", ids)), str(threads), str(quota)], duration=300,
                 note='PATCH {"op":"replace","value":{"active":false}}, random users, each once')

    def cli(self) -> None:
        """Time CLI commands on the big store against the bare import line (median of N runs).

        Both wall time and the child's CPU time (user + sys) are kept; the targets use CPU
        time, which other work on the box does not inflate. The runs leave Python's bytecode
        cache on (PYTHONDONTWRITEBYTECODE unset), as any installation has it: pip compiled the
        bare line's packages when it installed them, and an editable install caches ours on
        first import, unless the environment forbids it (this machine's does).
        """
        env = {k: v for k, v in clean_env().items() if k != "PYTHONDONTWRITEBYTECODE"}
        commands = {
            "bare_import": [sys.executable, "-c", "import typer, rich, peewee"],
            "token_list": [*self.store.scim_command(), "--config", str(self.store.config), "token", "list"],
            "users_list_json": [*self.store.scim_command(), "--config", str(self.store.config), "users", "list", "--json"],
        }
        for name, command in commands.items():
            walls, cpus = [], []
            for _ in range(self.sizes.cli_runs + 1):  # the first run warms the OS caches
                began = time.perf_counter()
                process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                           cwd=self.store.folder, env=env)
                _, status, usage = os.wait4(process.pid, 0)
                process.returncode = os.waitstatus_to_exitcode(status)
                if process.returncode != 0:
                    raise SystemExit(f"{' '.join(command)} exited {process.returncode}")
                walls.append(time.perf_counter() - began)
                cpus.append(usage.ru_utime + usage.ru_stime)
            self.report.cli[name] = {"wall_ms": round(statistics.median(walls[1:]) * 1000, 1),
                                     "cpu_ms": round(statistics.median(cpus[1:]) * 1000, 1)}
        bare = self.report.cli["bare_import"]
        self.report.cli["ratios"] = {
            k: {"wall": round(v["wall_ms"] / bare["wall_ms"], 2), "cpu": round(v["cpu_ms"] / bare["cpu_ms"], 2)}
            for k, v in self.report.cli.items() if k != "bare_import"}
        log(f"CLI (median ms): {self.report.cli}")

    def sweep(self) -> None:
        """Lookup at the big store under each server setting, each against its own ceiling.

        A setting is WORKERSxTHREADS (gunicorn gthread) or waitress:THREADS.
        """
        original = (self.store.workers, self.store.threads)
        names = str(self.names_file())
        for spec in self.args.sweep.split(","):
            wsgi, workers, threads = parse_setting(spec)
            if wsgi == "waitress" and not waitress_installed():
                log(f"sweep {spec}: skipped, waitress is not installed (pip install waitress)")
                continue
            self.store.configure(workers, threads)
            row = {"server": wsgi, "workers": workers, "threads": threads}
            for kind in ("ceiling", "lookup"):
                if kind == "ceiling":
                    server = self.store.ceiling(wsgi)
                else:
                    server = self.store.serve_with_waitress() if wsgi == "waitress" else self.store.serve()
                self.server = server
                try:
                    if kind == "ceiling":
                        measured = self.wrk(f"sweep_{spec}_ceiling", "static.lua", "/", warm=True)
                    else:
                        measured = self.wrk(f"sweep_{spec}_lookup", "lookup.lua", BASE + "/Users", [BASE, names], warm=True)
                        row["peak_rss_mb"] = server.memory_mb()["peak_mb"]
                finally:
                    server.stop()
                    self.server = None
                row[f"{kind}_rps"], row[f"{kind}_p99_ms"] = measured.rps, measured.p99_ms
                row[f"{kind}_cpu_ms"] = measured.server_cpu_ms_per_req
            row["ratio"] = round(row["lookup_rps"] / row["ceiling_rps"], 2)
            self.report.sweep.append(row)
            log(f"sweep {spec}: {row}")
        self.store.configure(*original)

    def ratios(self) -> None:
        """Ratio to the ceiling: by req/s (mean of both ceiling runs) and by server CPU per request."""
        results = self.report.results
        ceiling = statistics.mean(results[n].rps for n in ("ceiling", "ceiling_after") if n in results)
        cpu = statistics.mean(results[n].server_cpu_ms_per_req for n in ("ceiling", "ceiling_after") if n in results)
        for measured in results.values():
            if measured.name != "group_fill" and not measured.name.startswith("sweep_"):
                measured.ratio = round(measured.rps / ceiling, 3) if ceiling else None
                if measured.server_cpu_ms_per_req:
                    measured.cpu_ratio = round(cpu / measured.server_cpu_ms_per_req, 3)
        self.report.settings["ceiling_rps"] = round(ceiling, 1)
        self.report.targets = targets(self.report)


def parse_setting(spec: str) -> tuple[str, int, int]:
    """Parse "2x4" (gunicorn workers x threads) or "waitress:8" (threads)."""
    spec = spec.strip().lower()
    if spec.startswith("waitress:"):
        return "waitress", 1, int(spec.split(":", 1)[1])
    workers, threads = (int(x) for x in spec.split("x"))
    return "gunicorn", workers, threads


def waitress_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("waitress") is not None


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


def cost_ratio(report: Report, large: str, small: str, by: str = "rps") -> float | None:
    """How much more one request costs in `large` than in `small`: by throughput, or by server CPU."""
    a, b = report.results[large], report.results[small]
    if by == "cpu":
        if not a.server_cpu_ms_per_req or not b.server_cpu_ms_per_req:
            return None
        return round(a.server_cpu_ms_per_req / b.server_cpu_ms_per_req, 2)
    return round(b.rps / a.rps, 2)


def targets(report: Report) -> list[dict]:
    """Check each target by req/s in this run and by server CPU per request (robust to a busy box)."""
    r, s = report.results, report.settings
    big, small, users, created = s["group"], s["small_group"], s["big"], s["create"]
    cost = lambda large, little: (cost_ratio(report, large, little), cost_ratio(report, large, little, "cpu"))  # noqa: E731
    share = lambda name: (r[name].ratio, r[name].cpu_ratio)  # noqa: E731
    rows = [
        (f"lookup >= 0.6 x ceiling ({users:,} users)", *share("lookup_big"), ">=", 0.6),
        (f"lookup at {users:,} users <= 1.2 x its cost at {created:,}", *cost("lookup_big", "lookup_small"), "<=", 1.2),
        (f"single add/remove at {big:,} members <= 1.2 x at {small} (PATCH as IdPs send it)",
         *cost(f"member_toggle_{big}", f"member_toggle_{small}"), "<=", 1.2),
        (f"single add/remove at {big:,} members <= 1.2 x at {small} (PATCH ?excludedAttributes=members)",
         *cost(f"member_toggle_excluded_{big}", f"member_toggle_excluded_{small}"), "<=", 1.2),
        (f"GET /Groups?excludedAttributes=members at {big:,} members <= 1.2 x at {small}",
         *cost(f"groups_excluded_{big}", f"groups_excluded_{small}"), "<=", 1.2),
        ("paging near the end <= 1.5 x near the start", *cost("page_end", "page_start"), "<=", 1.5),
        ("create >= 0.3 x ceiling", *share("create"), ">=", 0.3),
        ("deactivate >= 0.3 x ceiling", *share("deactivate"), ">=", 0.3),
        ("scim token list <= 1.5 x bare import", report.cli["ratios"]["token_list"]["wall"],
         report.cli["ratios"]["token_list"]["cpu"], "<=", 1.5),
        (f"scim users list --json ({users:,} users) <= 1.5 x bare import", report.cli["ratios"]["users_list_json"]["wall"],
         report.cli["ratios"]["users_list_json"]["cpu"], "<=", 1.5),
        ("server peak RSS <= 150 MB (sum of VmHWM over master and workers)", report.rss_mb.get("peak_mb"), None, "<=", 150),
    ]
    met = lambda v, op, limit: None if v is None else (v >= limit if op == ">=" else v <= limit)  # noqa: E731
    return [{"target": name, "measured": value, "measured_cpu": by_cpu, "limit": f"{op} {limit}",
             "met": met(value, op, limit), "met_cpu": met(by_cpu, op, limit)}
            for name, value, by_cpu, op, limit in rows]


# --- output -----------------------------------------------------------------------------------


def markdown(report: Report) -> str:
    s = report.settings
    lines = [
        f"gunicorn gthread {s['workers']} workers x {s['threads']} threads; wrk {s['wrk_threads']} threads, "
        f"{s['connections']} connections, {s['duration_s']:.0f} s per workload; {s['cpus']} CPUs. "
        f"Ceiling: mean of the runs before and after the SCIM workloads, {s['ceiling_rps']:,.0f} req/s.",
        "",
        "| workload | req/s | x ceiling | x ceiling by CPU | p50 ms | p99 ms | server CPU ms/req | errors | detail |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in report.results.values():
        if r.name.startswith("sweep_"):
            continue
        ratio = f"{r.ratio:.2f}" if r.ratio is not None else "-"
        cpu = f"{r.server_cpu_ms_per_req:.2f}" if r.server_cpu_ms_per_req is not None else "-"
        by_cpu = f"{r.cpu_ratio:.2f}" if r.cpu_ratio is not None else "-"
        lines.append(f"| {r.name} | {r.rps:,.0f} | {ratio} | {by_cpu} | {r.p50_ms} | {r.p99_ms} | {cpu} | {r.errors} | {r.note} |")
    word = lambda met: "-" if met is None else ("yes" if met else "NO")  # noqa: E731
    lines += ["", "| target | limit | by req/s (wall) | met | by server CPU | met |", "|---|---|---:|---|---:|---|"]
    lines += [f"| {t['target']} | {t['limit']} | {t['measured']} | {word(t['met'])} | "
              f"{'-' if t['measured_cpu'] is None else t['measured_cpu']} | {word(t['met_cpu'])} |" for t in report.targets]
    c = report.cli
    lines += ["", "| command | wall ms | CPU ms | x bare (wall) | x bare (CPU) |", "|---|---:|---:|---:|---:|"]
    for name, label in (("bare_import", '`python -c "import typer, rich, peewee"`'), ("token_list", "`scim token list`"),
                        ("users_list_json", f"`scim users list --json` ({s['big']:,} users)")):
        ratio = c["ratios"].get(name, {"wall": 1.0, "cpu": 1.0})
        lines.append(f"| {label} | {c[name]['wall_ms']} | {c[name]['cpu_ms']} | {ratio['wall']} | {ratio['cpu']} |")
    lines.append("")
    if report.rss_mb:
        lines.append(f"Server memory after all workloads: peak {report.rss_mb['peak_mb']} MB, now "
                     f"{report.rss_mb['current_mb']} MB over {report.rss_mb['processes']} processes.")
    if report.disk:
        lines.append(f"Disk: a 4 KiB write + fsync takes {report.disk['fsync_p50_ms']} ms (p50), "
                     f"{report.disk['fsync_p99_ms']} ms (p99); every committed write pays at least one.")
    if report.load:
        lines.append(f"Load average (1 min) before / after the run: {report.load['before']} / {report.load['after']}.")
    if report.seeding:
        lines.append(f"Seeded {report.seeding['users']:,} users in {report.seeding['seconds']} s ({report.seeding['how']}).")
    if report.client_check:
        cc = report.client_check
        lines.append(f"Client check on the ceiling: Python http.client ({cc['connections']} threads) reached "
                     f"{cc['python_rps']:,.0f} req/s = {cc['python_over_wrk']} x wrk's {cc['wrk_rps']:,.0f}; client CPU per "
                     f"request: Python {cc['python_client_cpu_ms_per_req']} ms, wrk {cc['wrk_client_cpu_ms_per_req']} ms.")
    if report.sweep:
        lines += ["", "| server | ceiling req/s | lookup req/s | lookup / ceiling | lookup p99 ms | lookup server CPU ms/req "
                      "| peak RSS MB (lookup only) |", "|---|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {setting_label(w)} | {w['ceiling_rps']:,.0f} | {w['lookup_rps']:,.0f} | {w['ratio']} | "
                  f"{w['lookup_p99_ms']} | {w.get('lookup_cpu_ms')} | {w.get('peak_rss_mb')} |" for w in report.sweep]
    return "\n".join(lines)


def setting_label(row: dict) -> str:
    if row.get("server") == "waitress":
        return f"waitress, {row['threads']} threads"
    return f"gunicorn gthread {row['workers']} x {row['threads']}"


def as_json(report: Report) -> str:
    data = asdict(report)
    data["results"] = {k: asdict(v) for k, v in report.results.items()}
    return json.dumps(data, indent=2)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from skilljar_scim.base.config import ServerSettings

    defaults = ServerSettings()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="Install wrk: apt-get install wrk")
    parser.add_argument("--quick", action="store_true", help="Small sizes and 3 s runs: a smoke run (about 2 minutes).")
    parser.add_argument("--json", action="store_true", help="Print the results as JSON on stdout (stable keys).")
    parser.add_argument("--duration", type=float, default=None, help="Seconds per timed workload (default 10; quick 3).")
    parser.add_argument("--workers", type=int, default=defaults.workers, help="gunicorn workers (default: scim's).")
    parser.add_argument("--threads", type=int, default=defaults.threads, help="Threads per worker (default: scim's).")
    parser.add_argument("--connections", type=int, default=8, help="Concurrent connections (default 8).")
    parser.add_argument("--wrk-threads", type=int, default=2, help="wrk threads (default 2).")
    parser.add_argument("--sweep", default="1x8,2x4,4x2,waitress:8",
                        help='Server settings to try on lookup: WORKERSxTHREADS (gunicorn) or waitress:THREADS '
                             '("" to skip; default 1x8,2x4,4x2,waitress:8; waitress runs only if installed).')
    parser.add_argument("--skip-client-check", action="store_true", help="Do not compare a Python client with wrk.")
    parser.add_argument("--keep", action="store_true", help="Keep the temporary folder (database, logs).")
    parser.add_argument("--json-out", type=Path, default=None, help="Also write the JSON results to this file.")
    parser.add_argument("--webhooks", action="store_true",
                        help="Run only the webhook workloads (scripts/bench/webhooks.py): create with and without an "
                             "endpoint, delivery lag, receiver outage.")
    parser.add_argument("--webhook-outage", type=float, default=600.0,
                        help="Seconds the receiver stays down in the webhook outage workload (default 600).")
    parser.add_argument("--webhook-outage-rate", type=float, default=10.0,
                        help="Users created (and then updated) per second during the outage (default 10).")
    return parser.parse_args(argv)


def run_webhooks(args: argparse.Namespace, folder: Path) -> int:
    """Run scripts/bench/webhooks.py's workloads with this script's servers and wrk; print JSON."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_webhooks", LUA_DIR / "webhooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    report = module.run(sys.modules[__name__], folder, args)
    text = json.dumps(report, indent=2)
    if args.json_out:
        args.json_out.write_text(text + "\n")
    print(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(ROOT))
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("Error: wrk is not installed: apt-get install wrk (Debian/Ubuntu) or brew install wrk", file=sys.stderr)
        return 2
    folder = Path(tempfile.mkdtemp(prefix="scim-bench-"))
    started = time.monotonic()
    try:
        if args.webhooks:
            return run_webhooks(args, folder)
        report = Bench(args, folder).run()
    finally:
        if args.keep:
            log(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    report.settings["total_seconds"] = round(time.monotonic() - started, 1)
    if args.json_out:
        args.json_out.write_text(as_json(report) + "\n")
    print(as_json(report) if args.json else markdown(report))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
