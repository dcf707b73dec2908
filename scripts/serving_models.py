#!/usr/bin/env python3
"""Compare serving models for `scim serve`: slow-client resistance, lookup throughput, fair writes.

Candidates, each serving the same app on the same seeded SQLite store with the same
workers x threads (README "Serving model"):
  scim     `scim serve` itself: gunicorn + web/worker.ScimWorker (asyncio + h11, whole requests, thread pool)
  gthread  gunicorn's threaded worker (what `scim serve` ran before issue 11)
  gevent   gunicorn's gevent worker (needs `pip install gevent`; skipped with a note otherwise)

For each: (1) lookups: wrk -t2 -c8 on GET /Users?filter=userName eq "..." for --seconds;
(2) slow clients: 500 idle connections, 30 trickling headers, 30 trickling a create's body,
then one valid GET and one valid POST: time to answer, or "no answer in 10 s";
(3) writes: 8 clients creating users for --seconds: p50/p99, and per-client counts (fairness).
Only ever talks to 127.0.0.1; every loop is bounded. Run:  flock /tmp/bench.lock .venv/bin/python
scripts/serving_models.py [--seconds 10] [--workers 2] [--threads 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

HOST = "127.0.0.1"
CANDIDATES = ("scim", "gthread", "gevent")
SLOW_ANSWER_S = 10.0


def main() -> None:
    args = _arguments()
    if args.serve:
        _serve_candidate(args.serve, args.config)
        return
    folder = Path(tempfile.mkdtemp(prefix="serving-models-"))
    try:
        rows = [measure(name, folder, args) for name in args.candidates]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="Length of the lookup and write runs.")
    parser.add_argument("--workers", type=int, default=2, help="Worker processes for every candidate.")
    parser.add_argument("--threads", type=int, default=2, help="Threads per worker for every candidate.")
    parser.add_argument("--users", type=int, default=2000, help="Users seeded before measuring.")
    parser.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=CANDIDATES)
    parser.add_argument("--json", help="Also write the rows as JSON to this file.")
    parser.add_argument("--serve", choices=CANDIDATES[1:], help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    return parser.parse_args()


def _serve_candidate(worker: str, config_path: str) -> None:
    """Run the SCIM app under a gunicorn worker class other than scim's own (internal mode)."""
    from skilljar_scim.base import config
    from skilljar_scim.web import server

    settings = config.load(config_path)
    server.configure_logging()
    overrides = {"worker_class": worker, "threads": settings.server.threads, "worker_connections": 1000}
    server.run_gunicorn(server.build_app(settings), settings, None, overrides)


# --- one candidate -------------------------------------------------------------------------


def measure(name: str, folder: Path, args: argparse.Namespace) -> dict:
    if name == "gevent" and not _has("gevent"):
        return {"candidate": name, "note": "gevent not installed"}
    home = folder / name
    home.mkdir()
    port = _free_port()
    config = home / "scim.toml"
    config.write_text(f'[database]\nurl = "sqlite:///scim.db"\n[server]\nport = {port}\n'
                      f"workers = {args.workers}\nthreads = {args.threads}\n")
    _cli(config, "init")
    token = json.loads(_cli(config, "token", "generate", "--name", "bench", "--expires", "1d", "--json"))["token"]
    process = _start(name, config, port, home / "serve.log")
    try:
        _seed(port, token, args.users)
        row = {"candidate": name, "workers": args.workers, "threads": args.threads}
        row.update(lookups(port, token, args.seconds))
        row.update(slow_clients(port, token))
        row.update(writes(port, token, args.seconds))
        return row
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)


def _has(module: str) -> bool:
    try:
        __import__(module)
        return True
    except ImportError:
        return False


def _cli(config: Path, *words: str) -> str:
    command = [sys.executable, "-m", "skilljar_scim", "--config", str(config), *words]
    return subprocess.run(command, capture_output=True, text=True, check=True, cwd=config.parent).stdout


def _start(name: str, config: Path, port: int, log_path: Path) -> subprocess.Popen:
    if name == "scim":
        command = [sys.executable, "-m", "skilljar_scim", "--config", str(config), "serve"]
    else:
        command = [sys.executable, __file__, "--serve", name, "--config", str(config)]
    with open(log_path, "ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=config.parent,
                                   start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST, port), timeout=1):
                return process
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{name} did not start: {log_path.read_text()}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _request(conn: http.client.HTTPConnection, method: str, path: str, token: str, body=None) -> int:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}
    conn.request(method, "/scim/v2" + path, body=json.dumps(body) if body is not None else None, headers=headers)
    response = conn.getresponse()
    response.read()
    return response.status


def _user(name: str) -> dict:
    return {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name,
            "name": {"givenName": "Bench", "familyName": name.split("@")[0]}}


def _seed(port: int, token: str, count: int) -> None:
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    for number in range(count):
        assert _request(conn, "POST", "/Users", token, _user(f"seed{number}@example.com")) == 201
    conn.close()


# --- the three measurements ----------------------------------------------------------------


def lookups(port: int, token: str, seconds: float) -> dict:
    """wrk on an indexed userName lookup: requests per second and latency."""
    url = f'http://{HOST}:{port}/scim/v2/Users?filter=userName%20eq%20%22seed7%40example.com%22'
    out = subprocess.run(["wrk", "-t2", "-c8", f"-d{seconds:.0f}s", "--latency", "-H", f"Authorization: Bearer {token}",
                          url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"lookup_rps": round(rps), "lookup_p50_ms": _wrk_ms(out, "50%"), "lookup_p99_ms": _wrk_ms(out, "99%"),
            "lookup_errors": int(non2xx.group(1)) if non2xx else 0}


def _wrk_ms(out: str, label: str) -> float:
    value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out).groups()
    return round(float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit], 2)


def slow_clients(port: int, token: str) -> dict:
    """Hold 500 idle + 30 header-trickling + 30 body-trickling connections; time a valid GET and POST."""
    with ExitStack() as stack:
        opened = _open_slow(stack, port, token)
        get_ms = _timed(port, token, "GET", "/Users?filter=userName%20eq%20%22seed3%40example.com%22", None)
        post_ms = _timed(port, token, "POST", "/Users", _user(f"fast{time.monotonic_ns()}@example.com"))
    return {"slow_connections": opened, "slow_get_ms": get_ms, "slow_post_ms": post_ms}


def _open_slow(stack: ExitStack, port: int, token: str) -> int:
    socks = []
    try:
        for _ in range(500):
            socks.append(stack.enter_context(socket.create_connection((HOST, port), timeout=5)))
        for number in range(60):
            sock = stack.enter_context(socket.create_connection((HOST, port), timeout=5))
            if number < 30:
                sock.sendall(b"GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\nX-Slow: a")
            else:
                sock.sendall(f"POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                             "Content-Type: application/scim+json\r\nContent-Length: 500\r\n\r\n{".encode())
            socks.append(sock)
    except OSError:
        pass  # a server that refuses more connections: measured with those it took
    return len(socks)


def _timed(port: int, token: str, method: str, path: str, body) -> float | str:
    started = time.perf_counter()
    try:
        conn = http.client.HTTPConnection(HOST, port, timeout=SLOW_ANSWER_S)
        status = _request(conn, method, path, token, body)
        conn.close()
    except OSError:
        return f"no answer in {SLOW_ANSWER_S:.0f} s"
    elapsed = round((time.perf_counter() - started) * 1000, 1)
    return elapsed if status < 300 else f"{status} after {elapsed} ms"


def writes(port: int, token: str, seconds: float) -> dict:
    """8 clients create users for `seconds`: latency percentiles and each client's count (fairness)."""
    latencies: list[list[float]] = [[] for _ in range(8)]
    errors = [0] * 8
    stop = time.monotonic() + seconds

    def writer(index: int) -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=30)
        number = 0
        while time.monotonic() < stop:
            started = time.perf_counter()
            status = _request(conn, "POST", "/Users", token, _user(f"w{index}-{number}-{os.getpid()}@example.com"))
            latencies[index].append((time.perf_counter() - started) * 1000)
            errors[index] += status != 201
            number += 1
        conn.close()

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = sorted(x for row in latencies for x in row)
    counts = [len(row) for row in latencies]
    return {"write_rps": round(len(every) / seconds), "write_p50_ms": round(statistics.median(every), 1),
            "write_p99_ms": round(every[int(len(every) * 0.99) - 1], 1), "write_errors": sum(errors),
            "writes_per_client_min_max": [min(counts), max(counts)]}


def table(rows: list[dict]) -> str:
    lines = ["| candidate | lookups/s | lookup p99 ms | GET with 560 slow clients | POST with 560 slow clients "
             "| writes/s (8 clients) | write p99 ms | per-client writes min-max |", "|---" * 8 + "|"]
    for row in rows:
        if "note" in row:
            lines.append(f"| {row['candidate']} | {row['note']} |" + " |" * 6)
            continue
        lines.append(f"| {row['candidate']} {row['workers']}x{row['threads']} | {row['lookup_rps']:,} | "
                     f"{row['lookup_p99_ms']} | {_ms(row['slow_get_ms'])} | {_ms(row['slow_post_ms'])} | "
                     f"{row['write_rps']} | {row['write_p99_ms']} | {row['writes_per_client_min_max'][0]}-"
                     f"{row['writes_per_client_min_max'][1]} |")
    return "\n".join(lines)


def _ms(value) -> str:
    return f"{value} ms" if isinstance(value, (int, float)) else str(value)


if __name__ == "__main__":
    main()
