"""`scim status` through the real root app: the report, `--check` for cron and monitoring, `--json`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest

from skilljar_scim.base import clock
from skilljar_scim.base.errors import ExitCode
from skilljar_scim.domain import events, groups, roles
from skilljar_scim.store import db as store_db
from skilljar_scim.store import models

from cli.test_rendering import _in_terminal
from domain.support import group_body

ANSI = re.compile(r"\x1b\[[0-9;]*m")
CHECK_SCIM = Path(__file__).resolve().parents[2] / "docs" / "deploy" / "check_scim"


@contextmanager
def _opened(settings):
    """Open the store the CLI uses, to set up a state no command makes (an expired token, a disabled endpoint)."""
    database = store_db.open_database(settings.database.url)
    try:
        yield database
    finally:
        database.close()


def _check(cli, *args):
    result = cli("status", "--check", *args)
    assert result.exit_code in (0, ExitCode.CHECK_FAILED), result.output
    return result


def _problem_lines(result) -> list[str]:
    lines = result.stdout.splitlines()
    assert lines and all(line.startswith("problem: ") for line in lines), result.stdout
    return lines


def test_status_check_healthy_store_is_silent_and_exits_0(initialised):
    assert initialised("token", "generate", "--name", "Okta", "--expires", "90d").exit_code == 0
    result = _check(initialised)
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")


def test_status_check_token_expiring_within_days_exits_10(initialised):
    assert initialised("token", "generate", "--name", "Okta Production", "--expires", "5d").exit_code == 0
    result = _check(initialised)
    assert result.exit_code == ExitCode.CHECK_FAILED == 10
    [line] = _problem_lines(result)
    assert line.startswith("problem: token 'Okta Production' (") and "expires in" in line
    assert result.stderr == ""
    assert _check(initialised, "--expiring-within", "3").exit_code == 0
    assert _check(initialised, "--expiring-within", "30").exit_code == 10


def test_status_check_expired_token_exits_10(initialised, settings):
    assert initialised("token", "generate", "--name", "Old", "--expires", "30d").exit_code == 0
    with _opened(settings):
        models.Token.update(expires_at=clock.utcnow() - timedelta(days=1)).execute()
    [line] = _problem_lines(_check(initialised))
    assert "'Old'" in line and "expired at" in line and "revoke it if nothing uses it" in line


def test_status_check_token_the_keys_cannot_verify_exits_10(initialised):
    assert initialised("token", "generate", "--name", "Okta", "--expires", "90d").exit_code == 0
    assert initialised("init", "--force", "--yes").exit_code == 0  # a new key: the old token verifies no more
    result = _check(initialised)
    assert result.exit_code == 10
    [line] = _problem_lines(result)
    assert "'Okta'" in line and "signed by a key no longer in the secret key file" in line


def test_status_check_mapping_to_role_missing_from_catalog_exits_10(initialised):
    assert initialised("mappings", "add", "Engineering", "api-admin").exit_code == 0
    config = initialised.config_file
    config.write_text(config.read_text() + '\n[roles.catalog]\n"global-admin" = "Everything."\n')
    result = _check(initialised)
    assert result.exit_code == 10
    [line] = _problem_lines(result)
    assert line.startswith("problem: mapping 'Engineering' -> 'api-admin': the role is not in [roles.catalog]")


def test_status_check_mapping_whose_group_name_moved_exits_10(initialised, settings):
    with _opened(settings):
        first = groups.create(events.CLI, group_body("Admins"))
        roles.add_mapping(events.CLI, "Admins", "api-admin", settings.roles.catalog)
        groups.delete(events.CLI, first.id)
        second = groups.create(events.CLI, group_body("Admins"))
    [line] = _problem_lines(_check(initialised))
    assert second.id in line and "scim mappings rebind 'Admins'" in line
    assert initialised("mappings", "rebind", "Admins").exit_code == 0
    assert _check(initialised).exit_code == 0


def test_status_check_mapping_waiting_for_its_group_is_no_problem(initialised):
    assert initialised("mappings", "add", "Not Pushed Yet", "api-admin").exit_code == 0
    assert _check(initialised).exit_code == 0
    assert "Not Pushed Yet\tapi-admin\twaiting" in initialised("status").stdout


def test_status_check_disabled_webhook_endpoint_exits_10(initialised, settings):
    endpoint = initialised.json("webhooks", "add", "https://hooks.example.com/scim?key=s3cret")["id"]
    with _opened(settings):
        models.WebhookEndpoint.update(disabled_at=clock.utcnow(), disabled_reason="answered 410 Gone").execute()
    result = _check(initialised)
    [line] = _problem_lines(result)
    assert endpoint in line and "410 Gone" in line and f"scim webhooks enable {endpoint}" in line
    assert "s3cret" not in result.stdout + initialised("status").stdout + initialised("status", "--json").stdout


@pytest.mark.sqlite
def test_status_check_store_failing_its_quick_check_exits_10(initialised, settings):
    with _opened(settings) as database:
        models.Event.insert_many([{"at": clock.utcnow(), "actor": "cli", "action": "x", "summary": "y" * 500}] * 200).execute()
        page = database.execute_sql("PRAGMA page_size").fetchone()[0]
        database.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    path = settings.sqlite_path
    with open(path, "r+b") as db_file:  # the last page holds event rows
        db_file.seek(path.stat().st_size - page)
        db_file.write(b"\xff" * 64)
    [line] = _problem_lines(_check(initialised))
    assert "fails its quick integrity check" in line


def test_status_check_unreachable_store_exits_10_without_its_password(initialised):
    result = initialised("--db", "postgresql://scim:s3cret@127.0.0.1:1/scim", "status", "--check")
    assert result.exit_code == 10, result.output
    [line] = _problem_lines(result)
    assert "cannot be read" in line and "127.0.0.1:1" in line
    assert "s3cret" not in result.output


@pytest.mark.sqlite  # a PostgreSQL database with no tables is a problem instead: "no skilljar-scim schema"
def test_status_without_a_store_file_is_an_error_not_a_problem(cli):
    """The check cannot run at all (settings point at no store): exit 7 and `Error:`, not a problem line."""
    result = cli("status", "--check")
    assert result.exit_code == ExitCode.NOT_INITIALISED
    assert result.stdout == "" and result.stderr.startswith("Error: ") and len(result.stderr.splitlines()) == 1


def test_status_expiring_within_refuses_negative_days(initialised):
    result = initialised("status", "--expiring-within", "-1")
    assert result.exit_code == 2 and result.stderr.startswith("Error: ")


def test_status_json_is_one_object_with_the_whole_report(initialised):
    assert initialised("token", "generate", "--name", "Okta", "--expires", "5d").exit_code == 0
    data = initialised.json("status")
    assert set(data) == {"store", "expiring_within_days", "tokens", "users", "groups", "mappings_waiting_for_group",
                         "mappings_in_conflict", "mappings_to_missing_roles", "last_provisioning", "webhooks",
                         "problems"}
    assert set(data["store"]) == {"kind", "location", "schema_version", "expected_schema_version", "size_bytes",
                                  "integrity"}
    [token] = data["tokens"]
    assert token["expiring_soon"] is True and 4.9 < token["days_left"] <= 5
    assert token["expires_at"].endswith("Z") and data["expiring_within_days"] == 14
    assert data["users"] == {"active": 0, "inactive": 0, "deprovisioned": 0} and data["groups"] == 0
    [problem] = data["problems"]
    assert "expires in" in problem


def test_status_check_json_prints_the_report_and_exits_10(initialised):
    assert initialised("token", "generate", "--name", "Okta", "--expires", "5d").exit_code == 0
    result = initialised("status", "--check", "--json")
    assert result.exit_code == 10
    assert len(json.loads(result.stdout)["problems"]) == 1  # stdout is one JSON document, nothing else


def test_status_pipe_output_is_plain_with_the_days_left(initialised):
    assert initialised("token", "generate", "--name", "Okta", "--expires", "5d").exit_code == 0
    result = initialised("status")
    assert result.exit_code == 0  # a report: only --check turns problems into an exit status
    assert not ANSI.search(result.stdout) and "!" not in result.stdout
    [header] = [line for line in result.stdout.splitlines() if line.startswith("name\t")]
    [row] = [line for line in result.stdout.splitlines() if line.startswith("Okta\t")]
    cells = dict(zip(header.split("\t"), row.split("\t")))
    assert cells["status"] == "active" and 4.9 < float(cells["days left"]) <= 5 and cells["refused"] == "0"
    assert re.search(r"^1\ttoken 'Okta' \(", result.stdout, re.M)  # the problems table, numbered


@pytest.mark.parametrize("name", ["okta [/x]", "[bold]Eng[/bold] :smile:"])
def test_status_names_with_markup_render_as_data(initialised, settings, tmp_path, name):
    assert initialised("token", "generate", "--name", name, "--expires", "5d").exit_code == 0
    assert initialised("mappings", "add", name, "api-admin").exit_code == 0
    piped = initialised("status")
    assert piped.exit_code == 0 and f"{name}\tapi-admin\twaiting" in piped.stdout
    assert f"token {name!r}" in initialised("status", "--check").stdout
    code, out = _in_terminal(["--config", str(initialised.config_file), "status"], tmp_path)
    assert code == 0 and "Traceback" not in out and "MarkupError" not in out, out
    assert name in ANSI.sub("", out) and "│" in out


def test_status_terminal_highlights_a_token_expiring_soon_only(initialised, tmp_path):
    assert initialised("token", "generate", "--name", "Soon", "--expires", "5d").exit_code == 0
    assert initialised("token", "generate", "--name", "Later", "--expires", "90d").exit_code == 0
    code, out = _in_terminal(["--config", str(initialised.config_file), "status"], tmp_path)
    assert code == 0, out
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") > 5}
    assert "\x1b[1" in rows["Soon"] and "\x1b[" not in rows["Later"], out  # bold (red unless NO_COLOR)


def _check_scim(config_file: Path) -> subprocess.CompletedProcess:
    """Run docs/deploy/check_scim (the Nagios wrapper) against this checkout's `scim`."""
    env = {**os.environ, "SCIM": str(Path(sys.executable).with_name("scim")), "SCIM_CONFIG": str(config_file)}
    return subprocess.run(["/bin/sh", str(CHECK_SCIM)], capture_output=True, text=True, env=env,
                          cwd=config_file.parent, timeout=60)


def test_status_nagios_wrapper_maps_exit_codes_to_plugin_statuses(initialised):
    healthy = _check_scim(initialised.config_file)
    assert (healthy.returncode, healthy.stdout) == (0, "SCIM OK: no problems\n")
    assert initialised("token", "generate", "--name", "Okta", "--expires", "5d").exit_code == 0
    critical = _check_scim(initialised.config_file)
    assert critical.returncode == 2 and critical.stdout.startswith("SCIM CRITICAL: problem: token 'Okta' (")
    unknown = _check_scim(initialised.config_file.with_name("missing.toml"))
    assert unknown.returncode == 3 and unknown.stdout.startswith("SCIM UNKNOWN: Error: ")
