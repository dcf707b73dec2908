#!/usr/bin/env python3
"""Benchmark `scim serve` over real HTTP against a trivial app and against scim2-server, in one run.

Starts `scim serve` (its defaults: one worker per core) on a temporary database, seeds it,
and drives it with wrk (a C load generator that costs little CPU; install it with
`apt-get install wrk` or `brew install wrk`). In the same run it measures:
- the *ceiling*: a Flask app returning a fixed small JSON body under exactly the same server
  settings (scripts/bench/ceiling.py), before and after the SCIM workloads;
- the *peer*: scim2-server 0.8.3, in memory, on waitress with 4 threads
  (scripts/bench/peer.py), installed by this script into a cache venv
  (~/.cache/skilljar-scim-bench/peer-venv; --peer-venv to use another), driven by the same
  wrk scripts after a check that it answers each workload correctly.

Workloads: create (POST /Users, 8 clients), 8 writers for a fixed time (p99, creates per
writer), lookup (userName eq, at 5,000, 20,000 and 50,000 users), page (100 users of 20,000;
near the start and the end of 50,000), group (fill to 5,000 members by PATCHes of 50; single
add/remove at 10 and 5,000 members; GET /Groups?filter=...&excludedAttributes=members), deactivate
(PATCH active=false), CLI start-up; memory as PSS (and RSS) summed over the server's
processes, sampled throughout. The peer gets create, lookup and page of 100 on the same
20,000 users, in turns with ours (A B B A A B B A). The pairs whose ratio is a target run in turns
too: the lookup at 5,000 users (on a copy of the store made when it had them, served beside
ours) with the one at 50,000, and the single add/remove on a group of 10 with the one on a
group of 5,000, and a read of each group (filter=displayName eq, excludedAttributes=members).
The target table compares each figure of this run with its target.

--postgres runs the same on a throwaway PostgreSQL cluster (scripts/pg_test_cluster.sh) with
two `scim serve` instances on one database, as two boxes would run; wrk is split across
both (one wrk process per instance, run together, summed). --database-url uses an empty
database of your own instead. README "Performance" has the results.

Only ever talks to 127.0.0.1; every loop is bounded in time and count. Run on demand,
never in CI:  .venv/bin/python scripts/bench.py  (about 5 minutes on 2 cores; --quick: 2).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Callable
from urllib.parse import quote

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
    peer_users: int = 20_000  # both stores hold these users for the lookups and pages compared with the peer
    writers: int = 8


QUICK = Sizes(create=500, big=5_000, group=500, deactivate=500, duration=3.0, warmup=0.5, cli_runs=3, peer_users=2_000)
PEER_REQUIREMENTS = ("scim2-server==0.8.3", "waitress==3.0.2")
PEER_BASE = "/v2"
# A workload compared with another (the peer's, or its flat-cost partner) runs in this many
# turns, the order flipping every round: A B B A A B B A. With two turns (A B B A) a slow
# spell of a few seconds in the middle of a pair fell on both of B's turns and none of A's.
TURNS = 4
# What --only can name, in the order a run measures them ("paging": page_start and page_end;
# "group": the member toggles, the group listings and the group fill; peer_* in turns with ours;
# lookup_small on a copy of the store as the creates left it, in turns with lookup_big).
WORKLOADS = ("ceiling", "create", "peer_create", "writers", "lookup_mid", "peer_lookup", "page_mid",
             "peer_page", "lookup_small", "lookup_big", "paging", "group", "deactivate", "ceiling_after", "cli")


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
    per_thread: list = field(default_factory=list)  # answers per wrk thread (one connection each: per writer)


@dataclass
class Report:
    settings: dict = field(default_factory=dict)
    results: dict = field(default_factory=dict)
    cli: dict = field(default_factory=dict)
    seeding: dict = field(default_factory=dict)
    client_check: dict = field(default_factory=dict)
    memory: dict = field(default_factory=dict)
    fairness: dict = field(default_factory=dict)
    peer: dict = field(default_factory=dict)
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

    def __init__(self, command: list[str], port: int, log_path: Path, ready_path: str, ready_within: float = 60):
        self.port = port
        with open(log_path, "ab") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=log_path.parent,
                                            start_new_session=True)
        self._wait_ready(ready_path, log_path, ready_within)

    def _wait_ready(self, path: str, log_path: Path, within: float) -> None:
        deadline = time.monotonic() + within
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
        raise SystemExit(f"server did not come up within {within:.0f} s:\n{log_path.read_text()[-3000:]}")

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
        return cpu_seconds(self.pids())

    def memory_kb(self) -> dict:
        """Sum Pss and Rss (kB) over the master, its workers and the webhook delivery process."""
        return memory_kb(self.pids())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def cpu_seconds(pids: list[int]) -> float:
    """Sum user + system CPU time of processes (those that exited are skipped)."""
    ticks, total = os.sysconf("SC_CLK_TCK"), 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / ticks


def read_rollup(text: str) -> dict:
    """Return the kB fields of a /proc/PID/smaps_rollup text (Rss, Pss, ...) by name."""
    fields = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if len(parts) == 2 and parts[1] == "kB":
            fields[name.strip()] = int(parts[0])
    return fields


def memory_kb(pids: list[int]) -> dict:
    """Sum Pss and Rss (kB) over processes; PSS splits each shared page among the processes mapping it."""
    pss = rss = 0
    for pid in pids:
        try:
            fields = read_rollup(Path(f"/proc/{pid}/smaps_rollup").read_text())
        except OSError:  # it exited between the listing and the read
            continue
        pss, rss = pss + fields.get("Pss", 0), rss + fields.get("Rss", 0)
    return {"pss_kb": pss, "rss_kb": rss, "processes": len(pids)}


class MemorySampler:
    """Sample the PSS and RSS of servers every `interval` s in a thread; keep each one's peak."""

    def __init__(self, interval: float = 0.5):
        self.interval, self.servers, self.peaks = interval, {}, {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def watch(self, label: str, server: "Served") -> None:
        self.servers[label] = server

    def forget(self, label: str) -> None:
        self.sample()
        self.servers.pop(label, None)

    def sample(self) -> None:
        for label, server in list(self.servers.items()):
            now, peak = server.memory_kb(), self.peaks.setdefault(label, {"pss_kb": 0, "rss_kb": 0, "processes": 0})
            for key in now:
                peak[key] = max(peak[key], now[key])

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def close(self) -> dict:
        self._stop.set()
        self._thread.join(timeout=10)
        return {label: {"peak_pss_mb": round(p["pss_kb"] / 1024, 1), "peak_rss_mb": round(p["rss_kb"] / 1024, 1),
                        "processes": p["processes"]} for label, p in self.peaks.items()}


class Store:
    """The temporary installation: settings, key, database (SQLite, or a PostgreSQL URL), one token.

    With `instances` > 1 (PostgreSQL), each instance has its own settings file and port, and all
    share the key file and the database, as `scim serve` on several boxes would.
    """

    def __init__(self, folder: Path, workers: int, threads: int, database_url: str | None = None, instances: int = 1,
                 name: str = "scim", token: str | None = None):
        self.folder, self.name = folder, name
        self.ports = [free_port() for _ in range(instances)]
        self.port = self.ports[0]
        self.configs = [folder / (f"{name}.toml" if i == 0 else f"{name}-{i + 1}.toml") for i in range(instances)]
        self.config = self.configs[0]
        self.db_path = folder / f"{name}.db"
        self.url = database_url or f"sqlite:///{self.db_path}"
        self.sqlite = database_url is None
        self.configure(workers, threads)
        if token is None:  # a new store; a copy has the token of the store it copies
            self.cli("init")
            token = json.loads(self.cli("token", "generate", "--name", "bench", "--expires", "1d", "--json"))["token"]
        self.token = token

    def copy(self, name: str) -> "Store":
        """Copy the database (no server may be using it) into a store `name` beside it: same key, token, settings.

        On PostgreSQL the copy is a database made from this one as a template (`drop()` removes it).
        """
        if self.sqlite:
            target = self.folder / f"{name}.db"
            with contextlib.closing(sqlite3.connect(self.db_path)) as source, \
                    contextlib.closing(sqlite3.connect(target)) as copied:
                source.backup(copied)
            os.chmod(target, 0o600)
            url = None
        else:
            server, _, database = self.url.rpartition("/")
            url = f"{server}/{database}_{name}"
            run_sql(f"{server}/postgres", f'DROP DATABASE IF EXISTS "{database}_{name}"',
                    f'CREATE DATABASE "{database}_{name}" TEMPLATE "{database}"')
            run_sql(url, "VACUUM ANALYZE")  # as seed() leaves the store it grows
        return Store(self.folder, self.workers, self.threads, url, len(self.ports), name, self.token)

    def drop(self) -> None:
        """Remove a PostgreSQL copy made by copy() (a SQLite one goes with the folder)."""
        if not self.sqlite:
            server, _, database = self.url.rpartition("/")
            run_sql(f"{server}/postgres", f'DROP DATABASE IF EXISTS "{database}"')

    def configure(self, workers: int, threads: int) -> None:
        self.workers, self.threads = workers, threads
        for config, port in zip(self.configs, self.ports):
            config.write_text(
                f'[database]\nurl = "{self.url}"\n[security]\nsecret_key_file = "scim.key"\n'
                f'[server]\nhost = "{HOST}"\nport = {port}\nworkers = {workers}\nthreads = {threads}\n'
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

    def serve(self, instance: int = 0) -> Served:
        command = [*self.scim_command(), "--config", str(self.configs[instance]), "serve", "--no-init"]
        log_name = f"serve-{instance + 1}.log" if self.name == "scim" else f"{self.name}-serve-{instance + 1}.log"
        return Served(command, self.ports[instance], self.folder / log_name, "/healthz")

    def ceiling(self, wsgi: str = "gunicorn", instance: int = 0) -> Served:
        command = [sys.executable, str(LUA_DIR / "ceiling.py"), str(self.configs[instance]), wsgi, "ceiling"]
        return Served(command, self.ports[instance], self.folder / f"ceiling-{instance + 1}.log", "/")

    def serve_with_waitress(self) -> Served:
        command = [sys.executable, str(LUA_DIR / "ceiling.py"), str(self.config), "waitress", "scim"]
        return Served(command, self.port, self.folder / "waitress.log", "/healthz")

    def open(self):
        """Open the store in this process (models bound to it), for seeding and counting."""
        from skilljar_scim.store import db as store_db

        return store_db.open_database(self.url, busy_timeout_ms=30_000)

    def sql(self, query: str) -> list[tuple]:
        if self.sqlite:
            with sqlite3.connect(self.db_path, timeout=30) as conn:
                return conn.execute(query).fetchall()
        database = self.open()
        try:
            return list(database.execute_sql(query).fetchall())
        finally:
            database.close()

    def write_lines(self, name: str, lines: list[str]) -> Path:
        path = self.folder / name
        path.write_text("\n".join(lines) + "\n")
        return path


def clean_env() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith("SKILLJAR_SCIM_")}


# --- load generation ----------------------------------------------------------------------


def run_wrk(store: Store, script: str, path: str, args: list[str], duration: float, connections: int,
            threads: int, server: Served | None = None, port: int | None = None, token: str | None = None,
            tid_base: int = 0) -> dict:
    """Run wrk with one of scripts/bench/*.lua; return its summary and both sides' CPU time.

    A script with a request quota drops one marker file per thread when done; wrk is then
    interrupted (it prints its summary on SIGINT) instead of sleeping out its duration.
    `port` and `token` default to the store's; `tid_base` numbers this wrk's threads after
    another wrk's that runs at the same time.
    """
    done_dir = Path(tempfile.mkdtemp(dir=store.folder))
    out = done_dir.with_suffix(".wrk.out")
    command = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{max(duration, 1):.0f}s", "--timeout", "10s",
               "-H", f"Authorization: Bearer {token or store.token}", "-H", "Content-Type: application/scim+json",
               "-s", str(LUA_DIR / script), f"http://{HOST}:{port or store.port}{path}", "--", *args]
    env = {**os.environ, "BENCH_LUA_DIR": str(LUA_DIR), "BENCH_DONE_DIR": str(done_dir), "BENCH_TID_BASE": str(tid_base)}
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
    out.unlink(missing_ok=True)
    return summary


def merge_summaries(parts: list[dict]) -> dict:
    """Merge the summaries of wrk processes that ran at the same time against different servers.

    Throughput adds up (each process's requests over its own window); a latency percentile
    cannot be merged exactly, so the merged p50/p90/p99/max is the worst process's.
    """
    if len(parts) == 1:
        return parts[0]
    merged = {k: sum(p[k] for p in parts) for k in ("requests", "bytes", "connect_errors", "read_errors",
                                                     "write_errors", "status_errors", "timeouts")}
    rate = sum(p["requests"] / (p["duration_us"] / 1e6) for p in parts if p["duration_us"])
    merged["duration_us"] = merged["requests"] / rate * 1e6 if rate else max(p["duration_us"] for p in parts)
    merged.update({k: max(p[k] for p in parts) for k in ("p50_us", "p90_us", "p99_us", "max_us", "window_us")})
    merged["mean_us"] = sum(p["mean_us"] * p["requests"] for p in parts) / max(merged["requests"], 1)
    merged["per_thread"] = [n for p in parts for n in p.get("per_thread", [])]
    for key in ("client_cpu_s", "server_cpu_s"):
        values = [p.get(key) for p in parts]
        merged[key] = None if None in values else sum(values)
    return merged


def merge_turns(parts: list[dict]) -> dict:
    """Merge the summaries of runs one after another against the same server (turns of one workload).

    Requests, time and CPU add up, so the rate is all requests over all the time; a latency
    percentile cannot be merged exactly, so the merged p50/p90/p99/max is the worst turn's.
    """
    if len(parts) == 1:
        return parts[0]
    merged = {k: sum(p[k] for p in parts) for k in ("requests", "bytes", "connect_errors", "read_errors",
                                                     "write_errors", "status_errors", "timeouts", "duration_us")}
    merged.update({k: max(p[k] for p in parts) for k in ("p50_us", "p90_us", "p99_us", "max_us", "window_us")})
    merged["mean_us"] = sum(p["mean_us"] * p["requests"] for p in parts) / max(merged["requests"], 1)
    merged["per_thread"] = [sum(counts) for counts in zip(*(p.get("per_thread", []) for p in parts))]
    for key in ("client_cpu_s", "server_cpu_s"):
        values = [p.get(key) for p in parts]
        merged[key] = None if None in values else sum(values)
    return merged


def fairness(counts: list[int]) -> dict:
    """How evenly writers were served: each writer's count as a deviation from the mean, in percent."""
    if not counts or not sum(counts):
        return {"writers": len(counts), "counts": counts, "max_deviation_pct": None}
    mean = statistics.mean(counts)
    return {"writers": len(counts), "counts": counts, "min": min(counts), "max": max(counts),
            "max_deviation_pct": round(max(abs(c - mean) for c in counts) / mean * 100, 1)}


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

    def __init__(self, store: Store, base: str = BASE):
        self.store, self.base = store, base
        self.conn = http.client.HTTPConnection(HOST, store.port, timeout=60)

    def send(self, method: str, path: str, body: dict | None = None, expect: tuple = (200, 201, 204)) -> dict | None:
        headers = {"Authorization": f"Bearer {self.store.token}", "Content-Type": "application/scim+json"}
        data = json.dumps(body) if body is not None else None
        for attempt in (1, 2):  # the server closes idle keep-alive connections: reconnect once
            try:
                self.conn.request(method, self.base + path, body=data, headers=headers)
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


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "skilljar-scim-bench"


def peer_python(venv: Path | None) -> Path:
    """Return the Python of a venv holding scim2-server 0.8.3 and waitress; make it on first use.

    Without `venv` it lives in the user's cache folder and is made (python -m venv, pip
    install) when missing or made for other versions, so a fresh machine needs nothing more.
    """
    if venv is not None:
        return venv / "bin" / "python"
    venv = cache_dir() / "peer-venv"
    python, stamp = venv / "bin" / "python", venv / "bench-requirements.txt"
    wanted = "\n".join(PEER_REQUIREMENTS) + "\n"
    if not python.exists() or not stamp.exists() or stamp.read_text() != wanted:
        log(f"installing {', '.join(PEER_REQUIREMENTS)} into {venv}")
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, timeout=300)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PEER_REQUIREMENTS], check=True, timeout=900)
        stamp.write_text(wanted)
    return python


def peer_server(python: Path, endpoint: SimpleNamespace, folder: Path, seed: Path | None = None) -> Served:
    """Start scim2-server (scripts/bench/peer.py) on endpoint.port; with `seed`, loaded from it first."""
    command = [str(python), str(LUA_DIR / "peer.py"), str(endpoint.port), endpoint.token, *([str(seed)] if seed else [])]
    return Served(command, endpoint.port, folder / "peer.log", f"{PEER_BASE}/ServiceProviderConfig", ready_within=900)


def peer_document(attributes: dict) -> dict:
    """Our stored user document as a create body for the peer (what the IdP sent, normalised)."""
    return {k: v for k, v in attributes.items() if k not in ("id", "meta", "groups", "password")}


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


def seed_rows(body: dict, actor, now, user_id: str | None = None) -> tuple[dict, list[dict], dict]:
    """Return the user, email-index and event rows users.create writes for a new user."""
    from skilljar_scim.domain import snapshots, users
    from skilljar_scim.scim import resources
    from skilljar_scim.scim.schemas import USER_TYPE
    from skilljar_scim.base.textkey import key as casefold

    data = resources.normalise(USER_TYPE, body)
    data.setdefault("active", True)
    user_id = user_id or str(uuid.uuid4())
    user = {"id": user_id, "user_name": data["userName"], "user_name_key": casefold(data["userName"]),
            "external_id": data.get("externalId"), "active": bool(data["active"]), "deprovisioned_at": None,
            "display_name": users._display_name(data), "primary_email": users._primary_email(data),
            "attributes": json.dumps(data, ensure_ascii=False, sort_keys=True), "password_hash": None, "version": 1,
            "created_at": now, "updated_at": now}
    keys = sorted({casefold(e["value"]) for e in data.get("emails", []) if e.get("value")})
    emails = [{"user": user_id, "value_key": key} for key in keys]
    snapshot = snapshots.user((user_id, user["attributes"], user["external_id"], user["display_name"], user["active"],
                               None), [], [])
    event = {"at": now, "actor": actor.label, "token_id": actor.token_id, "action": "user.created", "resource_type": "User",
             "resource_id": user_id, "summary": json.dumps({"userName": data["userName"]}, sort_keys=True, ensure_ascii=False),
             "data": json.dumps(snapshot, sort_keys=True, ensure_ascii=False, separators=(",", ":"))}
    return user, emails, event


def check_seed_rows(actor) -> None:
    """Refuse to seed unless seed_rows() writes what users.create writes (compared, then rolled back)."""
    from skilljar_scim.domain import users
    from skilljar_scim.store import models
    from skilljar_scim.store.models import Event, User, UserEmail

    body = user_body("check", 0, 1)
    with models.database.atomic() as transaction:
        created = users.create(actor, body).user
        user, emails, event = seed_rows(body, actor, created.created_at, created.id)
        got_user = User.select().where(User.id == created.id).dicts().get()
        got_emails = list(UserEmail.select(UserEmail.user, UserEmail.value_key).where(UserEmail.user == created.id).dicts())
        got_event = Event.select().where(Event.resource_id == created.id).dicts().get()
        transaction.rollback()
    got_event.pop("id")
    got_user["updated_at"], got_event["at"] = user["updated_at"], event["at"]  # the same second or the next
    if (got_user, sorted(got_emails, key=str), got_event) != (user, sorted(emails, key=str), event):
        raise SystemExit(f"scripts/bench.py seed_rows() no longer matches users.create: update it.\n"
                         f"users.create: {got_user} {got_emails} {got_event}\nseed_rows:    {user} {emails} {event}")


# --- workloads ------------------------------------------------------------------------------


@dataclass
class Target:
    """What wrk drives: one or more servers (one port each), the bearer token, the SCIM base path."""

    servers: list
    token: str
    base: str = BASE
    database: object | None = None  # the PostgreSQL server's processes, when this box runs them

    def cpu_seconds(self) -> float:
        own = self.database.cpu_seconds() if self.database else 0.0
        return own + sum(server.cpu_seconds() for server in self.servers)

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


class Bench:
    def __init__(self, args: argparse.Namespace, folder: Path, database_url: str | None = None,
                 database: "PostgresProcesses | None" = None):
        self.args = args
        self.sizes = QUICK if args.quick else Sizes()
        if args.duration:
            self.sizes = Sizes(**{**asdict(self.sizes), "duration": args.duration})
        self.report = Report()
        self.load_before = [round(x, 2) for x in os.getloadavg()]  # other work on the box skews every figure
        self.instances = 1 if database_url is None else args.instances
        self.store = Store(folder, args.workers, args.threads, database_url, self.instances)
        self.target: Target | None = None
        self.small: Store | None = None  # the store as the creates left it, for lookup_small (copy_small)
        self.small_names: Path | None = None
        self.database = database  # counted in our server CPU per request: the peer keeps its data in process
        self.memory = MemorySampler()

    def start(self, label: str, servers: list, token: str | None = None, base: str = BASE) -> Target:
        """Make `servers` what wrk drives; sample their memory under `label` until stop()."""
        self.target = Target(servers, token or self.store.token, base)
        for i, server in enumerate(servers):
            self.memory.watch(f"{label}-{i + 1}", server)
        return self.target

    def stop(self, target: Target | None = None) -> None:
        """Stop `target` (default: the current one) and its memory sampling."""
        target = target or self.target
        for label in [k for k, v in self.memory.servers.items() if v in target.servers]:
            self.memory.forget(label)
        target.stop()
        if self.target is target:
            self.target = None

    def wrk(self, name: str, script: str, path: str, args=(), connections: int | None = None,
            threads: int | None = None, duration: float | None = None, warm: bool = False, note: str = "") -> Result:
        """Drive the current target once and record the result under `name`."""
        return self.record(name, [self.measure(script, path, args, connections, threads, duration, warm)], note)

    def record(self, name: str, turns: list[dict], note: str = "") -> Result:
        """Record a workload's result from the summaries of its turns."""
        summary = merge_turns(turns)
        measured = result(name, summary, note)
        measured.per_thread = summary.get("per_thread", [])
        self.report.results[name] = measured
        log(f"{name}: {measured.rps} req/s, p50 {measured.p50_ms} ms, p99 {measured.p99_ms} ms, errors {measured.errors}")
        return measured

    def measure(self, script: str, path: str, args=(), connections: int | None = None, threads: int | None = None,
                duration: float | None = None, warm: bool = False) -> dict:
        """Drive the current target; with several servers, one wrk per server at once, connections split.

        `args` may be a function of the total number of wrk threads (for per-thread quotas).
        """
        n = len(self.target.servers)
        connections = max((connections or self.args.connections) // n, 1)
        threads = max((threads or min(self.args.wrk_threads, connections * n)) // n, 1)
        args = list(args(threads * n) if callable(args) else args)
        if warm and self.sizes.warmup:
            self._wrk_all(script, path, args, self.sizes.warmup, connections, threads)
        return self._wrk_all(script, path, args, duration or self.sizes.duration, connections, threads)

    def versus(self, sides: list[tuple[str, Target | None, Callable[[int], dict], str]]) -> None:
        """Measure our workload and the peer's in TURNS turns, A B B A A B B A, each result summing its turns.

        Measured one after the other, a box that speeds up or slows down during the run (other
        work, a host's CPU budget) would favour whichever ran on the faster stretch; in turns,
        a drift weighs on both alike. A side is (name, target, measure(turn) -> summary, note).
        """
        sides = [side for side in sides if side[0] not in WORKLOADS or self.wanted(side[0])]  # --only names some
        turns: dict[str, list[dict]] = {name: [] for name, *_ in sides}
        for turn in range(TURNS):
            for name, target, measure, _ in (sides if turn % 2 == 0 else sides[::-1]):
                self.target = target
                turns[name].append(measure(turn))
        for name, _, _, note in sides:
            self.record(name, turns[name], note)

    def _wrk_all(self, script: str, path: str, args: list, duration: float, connections: int, threads: int) -> dict:
        target, parts = self.target, {}
        before = target.cpu_seconds()

        def one(i: int, server: Served) -> None:
            parts[i] = run_wrk(self.store, script, path, args, duration, connections, threads, port=server.port,
                               token=target.token, tid_base=i * threads)

        runs = [threading.Thread(target=one, args=(i, server)) for i, server in enumerate(target.servers)]
        for run in runs:
            run.start()
        for run in runs:
            run.join()
        if len(parts) != len(runs):
            raise SystemExit("a wrk run failed (see above)")
        merged = merge_summaries([parts[i] for i in range(len(runs))])
        merged["server_cpu_s"] = target.cpu_seconds() - before
        return merged

    def serve_ours(self) -> Target:
        target = self.start("scim", [self.store.serve(i) for i in range(self.instances)])
        target.database = self.database
        return target

    def run(self) -> Report:
        s = self.sizes
        self.report.settings = {
            "database": "sqlite" if self.store.sqlite else "postgresql", "instances": self.instances,
            "workers": self.store.workers or os.cpu_count(), "threads": self.store.threads,
            "worker_class": "ScimWorker", "connections": self.args.connections, "wrk_threads": self.args.wrk_threads,
            "duration_s": s.duration, "quick": self.args.quick, "cpus": os.cpu_count(),
            "database_cpu_counted": self.database is not None, **asdict(s)}
        if not self.store.sqlite:
            self.report.settings["postgres"] = {name: run_sql(self.store.url, query)[0][0] for name, query in (
                ("version", "SHOW server_version"), ("fsync", "SHOW fsync"),
                ("synchronous_commit", "SHOW synchronous_commit"))}
        self.disk()
        self.phase("ceiling", self.ceiling)
        ours = self.serve_ours()
        try:
            self.check(Api(self.store))
            self.creates(ours)
            ours = self.copy_small(ours)
            self.target = ours
            self.phase("writers", self.writers)
            self.mid_store(ours)
            self.target = ours
            if self.wanted(*WORKLOADS[WORKLOADS.index("lookup_big"):WORKLOADS.index("ceiling_after")]):
                self.seed(s.big)
            self.flat_lookups(ours)
            self.target = ours
            self.phase("paging", self.paging)
            self.phase("group", self.group)
            self.phase("deactivate", self.deactivate)
        finally:
            self.stop(ours)
            if self.small:
                self.small.drop()
        if self.report.peer:
            log(f"peer: {self.report.peer}")
        self.phase("ceiling_after", lambda: self.ceiling("ceiling_after"))
        self.phase("cli", self.cli)
        if self.args.sweep and self.instances == 1:
            self.sweep()
        self.report.memory = self.memory.close()
        self.ratios()
        self.report.load = {"before": self.load_before, "after": [round(x, 2) for x in os.getloadavg()]}
        return self.report

    def wanted(self, *names: str) -> bool:
        """Say whether --only (or its absence: everything) asks for any of these workloads."""
        return self.args.only is None or any(name in self.args.only for name in names)

    def phase(self, name: str, measure) -> None:
        if self.wanted(name):
            measure()

    def mid_store(self, ours: Target) -> None:
        """At the peer's store size, look up and page on both servers in turns (same names, same users)."""
        if not self.wanted("lookup_mid", "peer_lookup", "page_mid", "peer_page"):
            return
        self.seed(self.sizes.peer_users)
        names = self.names_file("peer_names.txt")
        self.dump_for_peer()
        peer = self.start_peer(self.store.folder / "peer_seed.jsonl") if self.wanted("peer_lookup", "peer_page") else None
        try:
            if peer:
                self.report.peer["check_seeded"] = self.check(Api(self.peer_endpoint, PEER_BASE),
                                                              names.read_text().split("\n", 1)[0])
            users = len(names.read_text().split())
            self.versus([(name, target, lambda turn, base=base: self.timed_turn(
                              turn, "lookup.lua", base + "/Users", [base, str(names)]),
                          f'userName eq "<random existing>" at {users:,} users')
                         for name, target, base in (("lookup_mid", ours, BASE), ("peer_lookup", peer, PEER_BASE))])
            self.versus([(name, target, lambda turn, base=base: self.timed_turn(
                              turn, "static.lua", f"{base}/Users?startIndex=1&count=100"),
                          f"startIndex=1&count=100 of {users:,}")
                         for name, target, base in (("page_mid", ours, BASE), ("peer_page", peer, PEER_BASE))])
        finally:
            if peer:
                self.stop(peer)

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
        log(f"{name}: trivial Flask app, {self.instances} x scim serve's server ({self.store.workers} workers "
            f"(0: one per core) x {self.store.threads} threads)")
        self.start("ceiling", [self.store.ceiling(instance=i) for i in range(self.instances)])
        try:
            self.wrk(name, "static.lua", "/", warm=True)
            if name == "ceiling" and not self.args.skip_client_check and self.instances == 1:
                self.client_check()
        finally:
            self.stop()

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

    def check(self, api: Api, name: str | None = None) -> dict:
        """Make each timed workload's request once; refuse to time a server that answers one wrongly.

        Without `name` a user is created first (201) and looked up; with it, `name` is.
        """
        answers = {}
        if name is None:
            name = api.send("POST", "/Users", user_body("check", 99, 1), expect=(201,))["userName"]
            answers["create"] = 201
        found = api.send("GET", "/Users?filter=" + quote(f'userName eq "{name}"'), expect=(200,))
        page = api.send("GET", "/Users?startIndex=1&count=100", expect=(200,))
        if found.get("totalResults") != 1 or found["Resources"][0]["userName"] != name:
            raise SystemExit(f"lookup of {name!r} answered {found}")
        if len(page.get("Resources", [])) != min(100, page.get("totalResults", -1)):
            raise SystemExit(f"a page of 100 answered {len(page.get('Resources', []))} of {page.get('totalResults')}")
        return {**answers, "lookup": 200, "page": 200, "users": page["totalResults"]}

    def creates(self, ours: Target) -> None:
        """Create users on our empty store and on the peer's, in turns (the peer is then stopped)."""
        if not self.wanted("create", "peer_create"):
            return
        peer = self.start_peer() if self.wanted("peer_create") else None
        try:
            if peer:
                self.report.peer["check_empty"] = self.check(Api(self.peer_endpoint, PEER_BASE))
            note = f"POST /Users, {self.sizes.create:,} users, {self.args.connections} clients"
            self.versus([(name, target, lambda turn, base=base: self.create_turn(turn, base), note)
                         for name, target, base in (("create", ours, BASE), ("peer_create", peer, PEER_BASE))])
        finally:
            if peer:
                self.stop(peer)

    def create_turn(self, turn: int, base: str) -> dict:
        """One turn's share of the users to create, with names of its own."""
        per_thread = lambda threads: [base, f"http{turn}", str(-(-self.sizes.create // (TURNS * threads)))]  # noqa: E731
        return self.measure("create.lua", base + "/Users", per_thread, duration=300)

    def writers(self) -> None:
        """8 writers (one connection and one wrk thread each) create users for the duration: p99 and fairness."""
        n = self.sizes.writers
        measured = self.wrk("writers", "create.lua", BASE + "/Users", [BASE, "fair", "1000000000"], connections=n,
                            threads=n, note=f"{n} writers creating users for {self.sizes.duration:.0f} s")
        self.report.fairness = fairness([int(c) for c in measured.per_thread])
        log(f"writers: {self.report.fairness}")

    def copy_small(self, ours: Target) -> Target:
        """Copy the store as the creates left it, for lookup_small to run later in turns with lookup_big.

        The two lookups are a minute or more apart, on a store that grows in between, and this
        box's speed drifts by tens of percent in that time: measured one after the other, their
        ratio measured the drift. The copy is made with our server stopped (a PostgreSQL
        database cannot be a template while in use), which then starts again.
        """
        if not self.wanted("lookup_small"):
            return ours
        self.stop(ours)
        self.small = self.store.copy("small")
        self.small_names = self.names_file("small_names.txt")
        return self.serve_ours()

    def flat_lookups(self, ours: Target) -> None:
        """Look up at 5,000 users (the copy) and at 50,000 (ours) in turns (versus), both servers up."""
        if not self.wanted("lookup_small", "lookup_big"):
            return
        small = self.start("small", [self.small.serve(i) for i in range(self.instances)]) if self.small else None
        try:
            sides = [(name, target, names) for name, target, names in (
                ("lookup_small", small, self.small_names),
                ("lookup_big", ours, self.names_file() if self.wanted("lookup_big") else None)) if names]
            self.versus([(name, target, lambda turn, names=names: self.timed_turn(
                              turn, "lookup.lua", BASE + "/Users", [BASE, str(names)]),
                          f'userName eq "<random existing>" at {len(names.read_text().split()):,} users')
                         for name, target, names in sides])
        finally:
            if small:
                self.stop(small)

    def names_file(self, name: str = "names.txt") -> Path:
        names = [n for (n,) in self.store.sql('SELECT user_name FROM "user" WHERE deprovisioned_at IS NULL')]
        return self.store.write_lines(name, names)

    def timed_turn(self, turn: int, script: str, path: str, args=(), connections: int | None = None,
                   threads: int | None = None) -> dict:
        """One turn of a timed workload: its share of the duration, warmed up on the first turn only."""
        return self.measure(script, path, args, connections, threads, warm=turn == 0,
                            duration=self.sizes.duration / TURNS)

    def seed(self, total: int) -> None:
        """Bring the store to `total` users with exactly the rows users.create writes, in bulk.

        users.create costs a few ms a user (six statements); 45,000 of them would take
        minutes. seed_rows() builds the same rows and check_seed_rows() proves it first.
        """
        from skilljar_scim.base import clock
        from skilljar_scim.domain import events, tokens
        from skilljar_scim.store import db as store_db
        from skilljar_scim.store.models import Event, User, UserEmail

        have = self.store.sql('SELECT COUNT(*) FROM "user"')[0][0]
        database = self.store.open()
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
            # The bulk batches leave megabytes of WAL behind (SQLite) or tables neither vacuumed nor
            # analysed (PostgreSQL); a store that grew one request at a time would have been
            # checkpointed, or seen by autovacuum, long before, so lookups start from there too.
            if self.store.sqlite:
                database.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            database.close()
        if not self.store.sqlite:
            run_sql(self.store.url, "VACUUM ANALYZE")
        seconds = time.perf_counter() - started
        self.report.seeding[str(total)] = {"users": made, "seconds": round(seconds, 1),
                                           "how": "bulk inserts of the rows users.create writes (checked against it first)"}
        log(f"seeded {made:,} users in {seconds:.1f} s")

    def dump_for_peer(self) -> None:
        """Write every user of our store as the SCIM document we hold, one per line, for the peer to load."""
        rows = self.store.sql('SELECT attributes FROM "user" WHERE deprovisioned_at IS NULL')
        self.store.write_lines("peer_seed.jsonl", [json.dumps(peer_document(json.loads(a))) for (a,) in rows])

    def paging(self) -> None:
        total = self.store.sql('SELECT COUNT(*) FROM "user" WHERE deprovisioned_at IS NULL')[0][0]
        for name, start in (("page_start", 1), ("page_end", max(total - 99, 1))):
            self.wrk(name, "static.lua", f"{BASE}/Users?startIndex={start}&count=100", warm=True,
                     note=f"startIndex={start:,}&count=100 of {total:,}")

    def start_peer(self, seed: Path | None = None) -> Target:
        """Start scim2-server, empty or loaded from `seed`, beside ours (idle while the other is driven)."""
        if not self.report.peer:
            self.peer_python = peer_python(self.args.peer_venv)
            self.peer_endpoint = SimpleNamespace(port=free_port(), token=secrets.token_urlsafe(24))
            self.report.peer = {"server": "scim2-server 0.8.3, InMemoryStorage, waitress 4 threads",
                                "python": str(self.peer_python)}
        began = time.perf_counter()
        server = peer_server(self.peer_python, self.peer_endpoint, self.store.folder, seed)
        if seed:
            self.report.peer["seeding_s"] = round(time.perf_counter() - began, 1)
        return self.start("peer", [server], self.peer_endpoint.token, PEER_BASE)

    def group(self) -> None:
        """Groups of 10 and of N members (filled by 50s), both mapped: single add/remove and a read of each, in turns.

        Each pair (at 10 and at N members) runs in turns (versus) on the two groups, which
        both exist by then, each mapped to a role of its own: measured one after the other, a
        pair's ratio moved with the box's speed between them. The read is the listing an IdP
        sends for one group, `filter=displayName eq "..."&excludedAttributes=members`.
        """
        s, api = self.sizes, Api(self.store)
        ids = [i for (i,) in self.store.sql('SELECT id FROM "user" WHERE deprovisioned_at IS NULL ORDER BY id')]
        if len(ids) < s.group + 2:
            raise SystemExit(f"need {s.group + 2} users for the group workload, have {len(ids)}")
        togglers, members = ids[:2], ids[2:s.group + 2]
        toggle_file = self.store.write_lines("togglers.txt", togglers)
        groups = {}  # size -> (group path, displayName)
        for size, name, role in ((s.small_group, "Engineering", "api-admin"), (s.group, "Support", "codes-admin")):
            self.store.cli("mappings", "add", name, role)
            group = api.send("POST", "/Groups", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                                                 "displayName": name, "externalId": name.lower(),
                                                 "members": [{"value": m} for m in members[:s.small_group]]})
            if size > s.small_group:
                self.fill(api, group["id"], members[s.small_group:size])
            groups[size] = (f"{BASE}/Groups/{group['id']}", name)
        for suffix, query in (("", ""), ("_excluded", "?excludedAttributes=members")):
            self.versus([(f"member_toggle{suffix}_{size}", self.target, lambda turn, path=path + query: self.timed_turn(
                              turn, "toggle.lua", path, [path, str(toggle_file)], connections=2, threads=2),
                          f"single add / remove members[value eq] at {size:,} members{query and ', ' + query[1:]}")
                         for size, (path, _) in groups.items()])
        reads = {size: f"{BASE}/Groups?filter=" + quote(f'displayName eq "{name}"') + "&excludedAttributes=members"
                 for size, (_, name) in groups.items()}
        self.versus([(f"groups_excluded_{size}", self.target, lambda turn, path=path: self.timed_turn(
                          turn, "static.lua", path),
                      f'GET /Groups?filter=displayName eq "{groups[size][1]}"&excludedAttributes=members: '
                      f"{size:,} members") for size, path in reads.items()])

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
        active = str(self.store.write_lines("active.txt", ids))
        shares = lambda threads: [BASE, active, str(threads), str(-(-self.sizes.deactivate // threads))]  # noqa: E731
        self.wrk("deactivate", "deactivate.lua", BASE + "/Users", shares, duration=300,
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

        A setting is WORKERSxTHREADS (`scim serve`: gunicorn + ScimWorker) or waitress:THREADS.
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
                self.start(f"sweep-{spec}-{kind}", [server])
                try:
                    if kind == "ceiling":
                        measured = self.wrk(f"sweep_{spec}_ceiling", "static.lua", "/", warm=True)
                    else:
                        measured = self.wrk(f"sweep_{spec}_lookup", "lookup.lua", BASE + "/Users", [BASE, names], warm=True)
                        row["pss_mb"] = round(server.memory_kb()["pss_kb"] / 1024, 1)
                finally:
                    self.stop()
                row[f"{kind}_rps"], row[f"{kind}_p99_ms"] = measured.rps, measured.p99_ms
                row[f"{kind}_cpu_ms"] = measured.server_cpu_ms_per_req
            row["ratio"] = round(row["lookup_rps"] / row["ceiling_rps"], 2)
            self.report.sweep.append(row)
            log(f"sweep {spec}: {row}")
        self.store.configure(*original)

    def ratios(self) -> None:
        """Ratio to the ceiling: by req/s (mean of both ceiling runs) and by server CPU per request."""
        results = self.report.results
        runs = [results[n] for n in ("ceiling", "ceiling_after") if n in results]  # --only may leave both out
        ceiling = statistics.mean(r.rps for r in runs) if runs else None
        cpu = statistics.mean(r.server_cpu_ms_per_req for r in runs) if runs else None
        for measured in results.values():
            if measured.name != "group_fill" and not measured.name.startswith("sweep_"):
                measured.ratio = round(measured.rps / ceiling, 3) if ceiling else None
                if measured.server_cpu_ms_per_req and cpu:
                    measured.cpu_ratio = round(cpu / measured.server_cpu_ms_per_req, 3)
        self.report.settings["ceiling_rps"] = round(ceiling, 1) if ceiling else None
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
    a, b = report.results.get(large), report.results.get(small)
    if a is None or b is None:  # --only left one out
        return None
    if by == "cpu":
        if not a.server_cpu_ms_per_req or not b.server_cpu_ms_per_req:
            return None
        return round(a.server_cpu_ms_per_req / b.server_cpu_ms_per_req, 2)
    return round(b.rps / a.rps, 2)


def targets(report: Report) -> list[dict]:
    """Check each target by req/s in this run and by server CPU per request (robust to a busy box)."""
    r, s = report.results, report.settings
    big, small, users, created, peer_users = s["group"], s["small_group"], s["big"], s["create"], s["peer_users"]
    cost = lambda large, little: (cost_ratio(report, large, little), cost_ratio(report, large, little, "cpu"))  # noqa: E731
    share = lambda name: (r[name].ratio, r[name].cpu_ratio) if name in r else (None, None)  # noqa: E731
    cli = lambda name: tuple(report.cli.get("ratios", {}).get(name, {}).get(k) for k in ("wall", "cpu"))  # noqa: E731
    box = "per instance" if s.get("instances", 1) > 1 else ""
    pss = max((m["peak_pss_mb"] for k, m in report.memory.items() if k.startswith("scim-")), default=None)
    rows = [
        (f"lookup >= 2 x scim2-server ({peer_users:,} users)", *cost("peer_lookup", "lookup_mid"), ">=", 2),
        ("create >= 1 x scim2-server", *cost("peer_create", "create"), ">=", 1),
        (f"page of 100 of {peer_users:,} users >= 20 x scim2-server", *cost("peer_page", "page_mid"), ">=", 20),
        (f"write p99 with {s['writers']} concurrent writers <= 150 ms", r["writers"].p99_ms if "writers" in r else None, None,
         "<=", 150),
        (f"peak memory (PSS) with {users:,} users <= 150 MB {box}".strip(), pss, None, "<=", 150),
        (f"lookup at {users:,} users <= 1.2 x its cost at {created:,}", *cost("lookup_big", "lookup_small"), "<=", 1.2),
        (f"single add/remove at {big:,} members <= 1.2 x at {small} (PATCH as IdPs send it)",
         *cost(f"member_toggle_{big}", f"member_toggle_{small}"), "<=", 1.2),
        (f"single add/remove at {big:,} members <= 1.2 x at {small} (PATCH ?excludedAttributes=members)",
         *cost(f"member_toggle_excluded_{big}", f"member_toggle_excluded_{small}"), "<=", 1.2),
        (f"GET /Groups?filter=displayName eq ..&excludedAttributes=members at {big:,} members <= 1.2 x at {small}",
         *cost(f"groups_excluded_{big}", f"groups_excluded_{small}"), "<=", 1.2),
        ("paging near the end <= 1.5 x near the start", *cost("page_end", "page_start"), "<=", 1.5),
        (f"lookup >= 0.6 x ceiling ({users:,} users)", *share("lookup_big"), ">=", 0.6),
        ("create >= 0.3 x ceiling", *share("create"), ">=", 0.3),
        ("deactivate >= 0.3 x ceiling", *share("deactivate"), ">=", 0.3),
        ("scim token list <= 1.5 x bare import", *cli("token_list"), "<=", 1.5),
        (f"scim users list --json ({users:,} users) <= 1.5 x bare import", *cli("users_list_json"), "<=", 1.5),
    ]
    return [target_row(*row) for row in rows]


def target_row(name: str, value: float | None, by_cpu: float | None, op: str, limit: float) -> dict:
    """One row of the target table: the measured value (and by CPU), the limit, and whether each meets it."""
    met = lambda v: None if v is None else (v >= limit if op == ">=" else v <= limit)  # noqa: E731
    return {"target": name, "measured": value, "measured_cpu": by_cpu, "limit": f"{op} {limit}",
            "met": met(value), "met_cpu": met(by_cpu)}


# --- output -----------------------------------------------------------------------------------


def markdown(report: Report) -> str:
    s = report.settings
    pg = s.get("postgres")
    where = (f"`scim serve` on {s['database']}" if not pg else
             f"{s['instances']} `scim serve` instances on one PostgreSQL {pg['version']} database (fsync {pg['fsync']}, "
             f"synchronous_commit {pg['synchronous_commit']}), wrk split across them"
             + ("; server CPU counts PostgreSQL's processes too" if s.get("database_cpu_counted") else ""))
    lines = [
        f"{where}; each {s['workers']} workers (ScimWorker) x {s['threads']} threads; wrk {s['wrk_threads']} threads, "
        f"{s['connections']} connections, {s['duration_s']:.0f} s per workload; {s['cpus']} CPUs. "
        + (f"Ceiling: mean of the runs before and after the SCIM workloads, {s['ceiling_rps']:,.0f} req/s. "
         if s["ceiling_rps"] else "No ceiling run (--only). ") +
        "Rows peer_*: scim2-server 0.8.3 (in memory, waitress, 4 threads).",
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
    lines += [f"| {t['target']} | {t['limit']} | {'-' if t['measured'] is None else t['measured']} | {word(t['met'])} | "
              f"{'-' if t['measured_cpu'] is None else t['measured_cpu']} | {word(t['met_cpu'])} |" for t in report.targets]
    c = report.cli
    if c:
        lines += ["", "| command | wall ms | CPU ms | x bare (wall) | x bare (CPU) |", "|---|---:|---:|---:|---:|"]
    for name, label in (("bare_import", '`python -c "import typer, rich, peewee"`'), ("token_list", "`scim token list`"),
                        ("users_list_json", f"`scim users list --json` ({s['big']:,} users)")) if c else ():
        ratio = c["ratios"].get(name, {"wall": 1.0, "cpu": 1.0})
        lines.append(f"| {label} | {c[name]['wall_ms']} | {c[name]['cpu_ms']} | {ratio['wall']} | {ratio['cpu']} |")
    lines.append("")
    if report.fairness.get("max_deviation_pct") is not None:
        f = report.fairness
        lines.append(f"Writers: {f['writers']} writers created {f['min']:,}-{f['max']:,} users each; every writer within "
                     f"{f['max_deviation_pct']}% of the mean ({', '.join(str(c) for c in f['counts'])}).")
    if report.memory:
        lines.append("Peak memory, sampled every 0.5 s while each ran (sum over its processes): " + "; ".join(
            f"{label} PSS {m['peak_pss_mb']} MB (RSS {m['peak_rss_mb']} MB, {m['processes']} processes)"
            for label, m in report.memory.items()) + ".")
    if report.disk:
        lines.append(f"Disk: a 4 KiB write + fsync takes {report.disk['fsync_p50_ms']} ms (p50), "
                     f"{report.disk['fsync_p99_ms']} ms (p99); every committed write pays at least one.")
    if report.load:
        lines.append(f"Load average (1, 5, 15 min) before / after the run: {report.load['before']} / {report.load['after']}.")
    for total, seeded in report.seeding.items():
        lines.append(f"Seeded {seeded['users']:,} users (to {int(total):,}) in {seeded['seconds']} s ({seeded['how']}).")
    if report.peer:
        p = report.peer
        lines.append(f"Peer: {p['server']}; answered each workload correctly before timing (empty: "
                     f"{p.get('check_empty')}; loaded with our {p.get('check_seeded', {}).get('users', 0):,} users in "
                     f"{p.get('seeding_s')} s: {p.get('check_seeded')}).")
    if report.client_check:
        cc = report.client_check
        lines.append(f"Client check on the ceiling: Python http.client ({cc['connections']} threads) reached "
                     f"{cc['python_rps']:,.0f} req/s = {cc['python_over_wrk']} x wrk's {cc['wrk_rps']:,.0f}; client CPU per "
                     f"request: Python {cc['python_client_cpu_ms_per_req']} ms, wrk {cc['wrk_client_cpu_ms_per_req']} ms.")
    if report.sweep:
        lines += ["", "| server | ceiling req/s | lookup req/s | lookup / ceiling | lookup p99 ms | lookup server CPU ms/req "
                      "| PSS MB after lookup |", "|---|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {setting_label(w)} | {w['ceiling_rps']:,.0f} | {w['lookup_rps']:,.0f} | {w['ratio']} | "
                  f"{w['lookup_p99_ms']} | {w.get('lookup_cpu_ms')} | {w.get('pss_mb')} |" for w in report.sweep]
    return "\n".join(lines)


def setting_label(row: dict) -> str:
    if row.get("server") == "waitress":
        return f"waitress, {row['threads']} threads"
    return f"scim serve {row['workers']} x {row['threads']}"


def as_json(report: Report) -> str:
    data = asdict(report)
    data["results"] = {k: asdict(v) for k, v in report.results.items()}
    return json.dumps(data, indent=2)


def workload_names(text: str) -> frozenset[str]:
    """Parse --only: a comma list of names from WORKLOADS."""
    names = frozenset(n.strip() for n in text.split(",") if n.strip())
    unknown = sorted(names - set(WORKLOADS))
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown workload {', '.join(unknown) or '(none)'}: choose from "
                                         + ", ".join(WORKLOADS))
    return names


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from skilljar_scim.base.config import ServerSettings

    defaults = ServerSettings()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="Install wrk: apt-get install wrk")
    parser.add_argument("--quick", action="store_true", help="Small sizes and 3 s runs: a smoke run (about 2 minutes).")
    parser.add_argument("--only", type=workload_names, default=None, metavar="NAMES",
                        help="Measure only these workloads (comma list of " + ", ".join(WORKLOADS) + "); the store is "
                             "still seeded as far as they need, and the targets that need one left out show -.")
    parser.add_argument("--json", action="store_true", help="Print the results as JSON on stdout (stable keys).")
    parser.add_argument("--duration", type=float, default=None, help="Seconds per timed workload (default 10; quick 3).")
    parser.add_argument("--workers", type=int, default=defaults.workers,
                        help="Worker processes per instance (default: scim's, 0 = one per core).")
    parser.add_argument("--threads", type=int, default=defaults.threads, help="Threads per worker (default: scim's).")
    parser.add_argument("--connections", type=int, default=8, help="Concurrent connections (default 8).")
    parser.add_argument("--wrk-threads", type=int, default=2, help="wrk threads (default 2).")
    parser.add_argument("--sweep", default="",
                        help='Server settings to try on lookup, e.g. "1x2,2x2,2x4,waitress:8": WORKERSxTHREADS '
                             '(scim serve) or waitress:THREADS (waitress runs only if installed); default: none.')
    parser.add_argument("--postgres", action="store_true",
                        help="Run on a throwaway PostgreSQL cluster (scripts/pg_test_cluster.sh; fsync on) with "
                             "--instances `scim serve` instances on one database.")
    parser.add_argument("--database-url", default=None,
                        help="Run on this empty PostgreSQL database instead (with --instances instances).")
    parser.add_argument("--instances", type=int, default=2,
                        help="`scim serve` instances on the PostgreSQL database, one port each (default 2).")
    parser.add_argument("--peer-venv", type=Path, default=None,
                        help="A venv with scim2-server 0.8.3 and waitress (default: made under "
                             "~/.cache/skilljar-scim-bench/peer-venv on first use).")
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


@contextlib.contextmanager
def postgres_cluster():
    """Start a throwaway PostgreSQL cluster (scripts/pg_test_cluster.sh) with fsync on; yield its URL; remove it."""
    folder = Path(tempfile.mkdtemp(prefix="scim-bench-pg-"))
    script = ROOT / "scripts" / "pg_test_cluster.sh"
    try:
        # The test cluster turns fsync off for speed; a benchmark must pay what production pays.
        url = subprocess.run([str(script), "start", str(folder), str(free_port())], check=True, capture_output=True,
                             text=True, timeout=600, env={**os.environ, "PG_TEST_FSYNC": "on"}
                             ).stdout.strip().splitlines()[-1]
        log(f"PostgreSQL cluster at {url} ({run_sql(url, 'SELECT version()')[0][0].split(' on ')[0]}, fsync "
            f"{run_sql(url, 'SHOW fsync')[0][0]}, synchronous_commit {run_sql(url, 'SHOW synchronous_commit')[0][0]})")
        yield url, PostgresProcesses(folder / "data")
    finally:
        subprocess.run([str(script), "stop", str(folder)], timeout=120, capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


class PostgresProcesses:
    """The processes of a local PostgreSQL cluster (the postmaster and its children), for their CPU time."""

    def __init__(self, data: Path):
        self.data = data

    def pids(self) -> list[int]:
        try:
            master = int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return []
        found = [master]
        for entry in os.listdir("/proc"):
            try:
                if entry.isdigit() and int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1]) == master:
                    found.append(int(entry))  # field 4: parent pid
            except (OSError, IndexError, ValueError):
                continue
        return found

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pids())


def run_sql(url: str, *statements: str) -> list[tuple]:
    """Run statements on their own connection, outside a transaction; return the last one's rows."""
    import psycopg2  # the postgres extra; only --postgres needs it

    conn = psycopg2.connect(url)
    try:
        conn.autocommit = True
        with conn.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
            return cursor.fetchall() if cursor.description else []
    finally:
        conn.close()


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
        if args.postgres:
            with postgres_cluster() as (url, database):
                report = Bench(args, folder, url, database).run()
        else:
            report = Bench(args, folder, args.database_url).run()
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
