"""`scim events tail`: the latest events, then (with --follow) new ones as they are recorded."""

from __future__ import annotations

import json
import time

import pytest

from skilljar_scim.base.errors import ExitCode
from skilljar_scim.domain import events


def _record(n: int, role: str = "api-admin") -> None:
    for i in range(n):
        events.record(events.CLI, "mapping.added", "Mapping", None, {"group": f"G{i}", "role": role})


@pytest.fixture
def people(api, initialised):
    """Three users created through SCIM, and the CLI."""
    for name in ("ann", "bob", "cy"):
        api.create_user(f"{name}@example.com")
    return initialised


def _lines(result) -> list[dict]:
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_events_tail_prints_latest_n_oldest_first_then_exits(people) -> None:
    shown = _lines(people("events", "tail", "-n", "2", "--json"))
    assert [i["data"]["userName"] for i in shown] == ["bob@example.com", "cy@example.com"]
    assert all(set(i) == {"id", "type", "created_at", "data"} for i in shown)


def test_events_tail_excludes_token_events_unless_asked(people) -> None:
    assert {i["type"] for i in _lines(people("events", "tail", "--json"))} == {"user.created"}
    assert [i["type"] for i in _lines(people("events", "tail", "--types", "token.created", "--json"))] == [
        "token.created"]


def test_events_tail_text_line_names_the_subject_and_escapes_control_characters(api, initialised) -> None:
    api.create_user("evil\x1b[2Jname@example.com")
    result = initialised("events", "tail", "-n", "1")
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.stdout and "evil\\x1b[2Jname@example.com" in result.stdout
    assert "user.created" in result.stdout and result.stdout.count("\n") == 1


def test_events_tail_follow_streams_new_events_and_stops_at_max_events(people, monkeypatch) -> None:
    pauses = []

    def new_event_while_waiting(seconds: float) -> None:  # each pause, another process records an event
        pauses.append(seconds)
        _record(1, role=f"role-{len(pauses)}")

    monkeypatch.setattr(time, "sleep", new_event_while_waiting)
    shown = _lines(people("events", "tail", "-f", "-n", "1", "--max-events", "3", "--interval", "0.2", "--json"))
    assert [i["type"] for i in shown] == ["user.created", "mapping.added", "mapping.added"]
    assert [i["data"]["role"] for i in shown[1:]] == ["role-1", "role-2"]
    assert pauses == [0.2, 0.2]
    assert [i["id"] for i in shown] == sorted(i["id"] for i in shown)


def test_events_tail_follow_ends_quietly_on_ctrl_c(people, monkeypatch) -> None:
    def interrupted(_seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(time, "sleep", interrupted)
    result = people("events", "tail", "--follow", "-n", "1")
    assert result.exit_code == 0 and result.stderr == ""
    assert "cy@example.com" in result.stdout and "Abort" not in result.output


def test_events_tail_follow_skips_types_not_asked_for(people, monkeypatch) -> None:
    recorded = iter([lambda: _record(2), lambda: events.record(events.CLI, "token.revoked", "Token", "t1", {})])

    def next_change(_seconds: float) -> None:
        next(recorded, lambda: (_ for _ in ()).throw(KeyboardInterrupt))()

    monkeypatch.setattr(time, "sleep", next_change)
    shown = _lines(people("events", "tail", "-f", "-n", "0", "--types", "mapping.added,token.revoked", "--json"))
    assert [i["type"] for i in shown] == ["mapping.added", "mapping.added", "token.revoked"]


def test_events_tail_unknown_type_is_a_usage_error(people) -> None:
    result = people("events", "tail", "--types", "user.exploded")
    assert result.exit_code == ExitCode.USAGE
    assert result.stderr.startswith("Error: unknown event type 'user.exploded'") and result.stderr.count("\n") == 1


def test_events_list_json_names_each_event_by_its_feed_id_too(people) -> None:
    """A script joins the audit log to the events API and webhooks on `event_id` (`evt_…`)."""
    listed = json.loads(people("events", "list", "--json").stdout)
    tailed = _lines(people("events", "tail", "--json"))
    by_user = {row["summary"]["userName"]: row["event_id"] for row in listed if row["action"] == "user.created"}
    assert by_user == {item["data"]["userName"]: item["id"] for item in tailed}
    assert all(events.row_id(row["event_id"]) == row["id"] for row in listed)
