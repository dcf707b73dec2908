#!/usr/bin/env python3
"""Time CLI start-up against the bare import line, as README "Performance" reports it.

Runs `python -c "import typer, rich, peewee"` and each CLI command in interleaved pairs
(so load on the box hits both alike) on a fresh store, with Python's bytecode cache on as
installs have it, and prints the median wall and CPU (user + sys) time of each and their
ratio to the bare line. The first pair only warms the caches. Stdout goes to a pipe, as in
a script; `--terminal` gives the commands a pseudo-terminal instead (rich tables).

    flock /tmp/bench.lock python scripts/cli_startup.py --pairs 10
"""

from __future__ import annotations

import argparse
import json
import os
import pty
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BARE = [sys.executable, "-c", "import typer, rich, peewee"]
COMMANDS = {"token_list": ["token", "list"], "users_list": ["users", "list"], "help": ["--help"]}


def run_once(command: list[str], cwd: Path, env: dict, terminal: bool) -> tuple[float, float]:
    """Run `command` to completion; return (wall seconds, child CPU seconds)."""
    main = child = None
    if terminal:
        main, child = pty.openpty()
    began = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=child if terminal else subprocess.PIPE,
                               stderr=subprocess.DEVNULL)
    if terminal:
        os.close(child)
        while True:
            try:
                if not os.read(main, 65536):
                    break
            except OSError:
                break
        os.close(main)
    else:
        process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - began
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed")
    return wall, usage.ru_utime + usage.ru_stime


def prepare(folder: Path, env: dict) -> list[str]:
    """Initialise a store with three tokens in `folder`; return the `scim --config ...` prefix."""
    scim = [sys.executable, "-m", "skilljar_scim", "--config", str(folder / "scim.toml")]
    subprocess.run([*scim, "init"], cwd=folder, env=env, check=True, capture_output=True)
    for name in ("Okta", "Entra", "OneLogin"):
        subprocess.run([*scim, "token", "generate", "--name", name, "--expires", "90d"], cwd=folder, env=env,
                       check=True, capture_output=True)
    return scim


def measure(pairs: int, terminal: bool) -> dict:
    """Return {name: {wall_ms, cpu_ms, wall_ratio, cpu_ratio}} over `pairs` interleaved runs."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE" and not k.startswith("SKILLJAR_SCIM_")}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        scim = prepare(folder, env)
        runs = {"bare_import": BARE, **{name: [*scim, *args] for name, args in COMMANDS.items()}}
        times = {name: [] for name in runs}
        for index in range(pairs + 1):
            for name, command in runs.items():
                result = run_once(command, folder, env, terminal and name != "bare_import")
                if index:  # the first round warms the OS and bytecode caches
                    times[name].append(result)
    bare_wall = statistics.median(w for w, _ in times["bare_import"])
    bare_cpu = statistics.median(c for _, c in times["bare_import"])
    report = {}
    for name, samples in times.items():
        wall, cpu = statistics.median(w for w, _ in samples), statistics.median(c for _, c in samples)
        report[name] = {"wall_ms": round(wall * 1000, 1), "cpu_ms": round(cpu * 1000, 1),
                        "wall_ratio": round(wall / bare_wall, 2), "cpu_ratio": round(cpu / bare_cpu, 2)}
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=10, help="Timed rounds after one warm-up (default 10).")
    parser.add_argument("--terminal", action="store_true", help="Give the commands a pseudo-terminal (rich tables).")
    parser.add_argument("--json", action="store_true", help="Print the results as JSON.")
    args = parser.parse_args()
    report = measure(args.pairs, args.terminal)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    for name, row in report.items():
        print(f"{name:12} wall {row['wall_ms']:7.1f} ms (x{row['wall_ratio']:.2f})   "
              f"cpu {row['cpu_ms']:7.1f} ms (x{row['cpu_ratio']:.2f})")


if __name__ == "__main__":
    main()
