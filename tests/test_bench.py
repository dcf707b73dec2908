"""scripts/bench.py's pure helpers: memory as PSS, merging wrk runs, writer fairness, the target table.

Nothing here times anything; the benchmark itself runs on demand (README "Performance").
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_script"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("bench_script", None)


ROLLUP = """55d4c0a4e000-7ffc1a3f2000 ---p 00000000 00:00 0                          [rollup]
Rss:               98304 kB
Pss:               61440 kB
Pss_Anon:          40000 kB
Shared_Clean:      30000 kB
Private_Dirty:     40000 kB
Swap:                  0 kB
"""


def wrk_summary(requests: int, seconds: float, p99_ms: float, per_thread: list[int], errors: int = 0) -> dict:
    return {"requests": requests, "duration_us": int(seconds * 1e6), "bytes": requests * 100, "connect_errors": 0,
            "read_errors": 0, "write_errors": 0, "status_errors": errors, "timeouts": 0, "p50_us": 1000,
            "p90_us": 2000, "p99_us": int(p99_ms * 1000), "mean_us": 1500.0, "max_us": int(p99_ms * 2000),
            "window_us": 0, "per_thread": per_thread, "client_cpu_s": 0.5, "server_cpu_s": None}


def test_bench_read_rollup_reads_pss_and_rss_in_kb(bench):
    fields = bench.read_rollup(ROLLUP)
    assert fields["Pss"] == 61440 and fields["Rss"] == 98304 and fields["Pss_Anon"] == 40000
    assert "[rollup]" not in str(fields)


def test_bench_memory_kb_sums_processes_and_skips_gone_ones(bench):
    mine = bench.memory_kb([os.getpid()])
    both = bench.memory_kb([os.getpid(), os.getpid()])
    gone = bench.memory_kb([os.getpid(), 2 ** 22 + 12345])  # above the kernel's pid_max: never a process
    assert 0 < mine["pss_kb"] <= mine["rss_kb"]
    assert both["rss_kb"] >= 2 * mine["rss_kb"] * 0.9  # the same process twice counts twice
    assert gone["rss_kb"] < both["rss_kb"] and gone["processes"] == 2


def test_bench_merge_summaries_adds_throughput_and_keeps_worst_latency(bench):
    merged = bench.merge_summaries([wrk_summary(1000, 10, 40, [500, 500]),
                                    wrk_summary(600, 12, 90, [300, 300], errors=2)])
    assert merged["requests"] == 1600 and merged["status_errors"] == 2
    rate = merged["requests"] / (merged["duration_us"] / 1e6)
    assert rate == pytest.approx(100 + 50)  # each process's own rate, added
    assert merged["p99_us"] == 90_000
    assert merged["per_thread"] == [500, 500, 300, 300]
    assert merged["client_cpu_s"] == pytest.approx(1.0) and merged["server_cpu_s"] is None


def test_bench_merge_summaries_of_one_run_is_that_run(bench):
    one = wrk_summary(1000, 10, 40, [1000])
    assert bench.merge_summaries([one]) is one


def test_bench_fairness_is_the_largest_deviation_from_the_mean(bench):
    report = bench.fairness([90, 100, 110, 100])
    assert report["max_deviation_pct"] == 10.0 and (report["min"], report["max"]) == (90, 110)
    assert bench.fairness([0, 0])["max_deviation_pct"] is None


@pytest.mark.parametrize(("value", "op", "limit", "met"), [
    (2.4, ">=", 2, True), (1.9, ">=", 2, False), (150, "<=", 150, True), (151, "<=", 150, False), (None, "<=", 1, None),
])
def test_bench_target_row_says_whether_the_limit_is_met(bench, value, op, limit, met):
    row = bench.target_row("a target", value, None, op, limit)
    assert row["met"] is met and row["met_cpu"] is None and row["limit"] == f"{op} {limit}"


def test_bench_peer_document_is_a_create_body(bench):
    stored = {"userName": "ada@example.com", "id": "x", "meta": {}, "groups": [], "emails": [{"value": "ada@example.com"}]}
    assert bench.peer_document(stored) == {"userName": "ada@example.com", "emails": [{"value": "ada@example.com"}]}


def test_bench_only_parses_known_workloads_and_refuses_others(bench):
    assert bench.parse_args(["--only", "create, peer_create"]).only == {"create", "peer_create"}
    assert bench.parse_args([]).only is None
    with pytest.raises(SystemExit):
        bench.parse_args(["--only", "create,nope"])


def test_bench_only_report_leaves_unmeasured_targets_open(bench):
    """A run of create and peer_create alone still gives its one-run ratio; the others are -."""
    report = bench.Report(settings={"group": 5000, "small_group": 10, "big": 50000, "create": 5000,
                                    "peer_users": 20000, "writers": 8, "ceiling_rps": None, "database": "sqlite",
                                    "workers": 2, "threads": 2, "wrk_threads": 2, "connections": 8,
                                    "duration_s": 10.0, "cpus": 2})
    for name, rps, cpu in (("create", 500.0, 2.0), ("peer_create", 800.0, 1.2)):
        report.results[name] = bench.Result(name, int(rps * 10), 10.0, rps, 1.0, 2.0, 0, cpu)
    rows = {row["target"]: row for row in bench.targets(report)}
    assert rows["create >= 1 x scim2-server"]["measured"] == 0.62
    assert rows["create >= 1 x scim2-server"]["measured_cpu"] == 0.6
    assert {rows[t]["met"] for t in rows if not t.startswith("create >= 1")} == {None}
    text = bench.markdown(report)
    assert "No ceiling run (--only)" in text and "| create | 500 |" in text and "bare import" not in text.split(
        "| target |")[0]


def test_bench_merge_turns_adds_requests_and_time_and_keeps_worst_latency(bench):
    merged = bench.merge_turns([wrk_summary(1000, 10, 40, [500, 500]), wrk_summary(600, 2, 90, [300, 200], errors=2)])
    assert merged["requests"] == 1600 and merged["status_errors"] == 2
    assert merged["requests"] / (merged["duration_us"] / 1e6) == pytest.approx(1600 / 12)  # not 100 + 300
    assert merged["p99_us"] == 90_000 and merged["per_thread"] == [800, 700]
    assert merged["client_cpu_s"] == pytest.approx(1.0) and merged["server_cpu_s"] is None


def test_bench_versus_runs_ours_and_the_peers_in_turns_a_b_b_a_a_b_b_a(bench, monkeypatch):
    """Each side is measured in TURNS turns, the order flipping every round, and recorded once."""
    assert bench.TURNS == 4  # the order below
    runner = bench.Bench.__new__(bench.Bench)
    runner.args, runner.report, runner.target = SimpleNamespace(only=None), bench.Report(), None
    order = []
    side = lambda name, rps: (name, name + "-target", lambda turn: order.append((name, turn, runner.target))  # noqa: E731
                              or wrk_summary(rps * 5, 5, 10, [rps * 5]), name + " note")
    runner.versus([side("create", 100), side("peer_create", 50)])
    assert [(name, turn) for name, turn, _ in order] == [
        ("create", 0), ("peer_create", 0), ("peer_create", 1), ("create", 1),
        ("create", 2), ("peer_create", 2), ("peer_create", 3), ("create", 3)]  # A B B A A B B A
    assert all(target == name + "-target" for name, _, target in order)
    assert runner.report.results["create"].rps == 100 and runner.report.results["peer_create"].requests == 1000
    assert runner.report.results["create"].note == "create note"


def test_bench_store_copy_is_a_store_of_its_own_with_the_same_rows_and_token(bench, tmp_path):
    """lookup_small runs on a copy of the store as the creates left it (SQLite: the backup API)."""
    store = bench.Store(tmp_path, workers=1, threads=1)
    small = store.copy("small")
    assert small.token == store.token and small.url != store.url and small.port != store.port
    assert small.sql("SELECT COUNT(*) FROM token") == [(1,)]
    assert os.stat(small.db_path).st_mode & 0o777 == 0o600
    assert str(small.db_path) in small.config.read_text() and str(store.db_path) not in small.config.read_text()
    store.sql("DELETE FROM token")
    assert small.sql("SELECT COUNT(*) FROM token") == [(1,)]  # a copy, not the same file
    small.drop()  # nothing to drop on SQLite: the copy goes with the folder
    assert small.db_path.exists()


def test_bench_flat_lookups_run_the_copy_and_the_full_store_in_turns(bench, monkeypatch, tmp_path):
    """lookup_small (the copy's server) and lookup_big (ours) alternate, each with its own names."""
    runner = bench.Bench.__new__(bench.Bench)
    runner.args, runner.report, runner.target = SimpleNamespace(only=None), bench.Report(), None
    runner.instances, runner.store = 1, SimpleNamespace(token="t")
    small_names, big_names = tmp_path / "small.txt", tmp_path / "big.txt"
    small_names.write_text("a\nb\n")
    big_names.write_text("a\nb\nc\n")
    stopped = []
    small_server, our_server = (SimpleNamespace(stop=lambda n=n: stopped.append(n)) for n in ("small", "ours"))
    runner.small, runner.small_names = SimpleNamespace(serve=lambda i: small_server), small_names
    runner.memory = SimpleNamespace(watch=lambda *a: None, servers={}, forget=lambda *a: None)
    monkeypatch.setattr(runner, "names_file", lambda name="names.txt": big_names)
    turns = []
    monkeypatch.setattr(runner, "timed_turn", lambda turn, script, path, args: turns.append(
        (turn, runner.target.servers, args[1])) or wrk_summary(100, 5, 10, [100]))
    runner.flat_lookups(bench.Target([our_server], "t"))
    small_turn, big_turn = ([small_server], str(small_names)), ([our_server], str(big_names))
    assert turns == [(turn, *side) for turn, pair in enumerate([(small_turn, big_turn), (big_turn, small_turn)] * 2)
                     for side in pair]  # A B B A A B B A
    assert stopped == ["small"]  # the copy's server is stopped after its turns; ours goes on
    assert "at 2 users" in runner.report.results["lookup_small"].note
    assert "at 3 users" in runner.report.results["lookup_big"].note
