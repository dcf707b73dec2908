"""Secrets stay secret: no token, key or password in any log or CLI output; owner-only files."""

from __future__ import annotations

import logging
import os
import stat
import urllib.parse
from pathlib import Path

import pytest
from typer.testing import CliRunner

from skilljar_scim.cli.main import app as cli_app
from skilljar_scim.base.errors import ExitCode

pytestmark = [pytest.mark.e2e, pytest.mark.sqlite]

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
PASSWORDS = ("Initial-Pa55word!", "Patched-Pa55word!", "Replaced-Pa55word!", "Bulk-Pa55word!")


def _patch(*operations: dict) -> dict:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


def _tampered(value: str) -> str:
    """The same token with one character of its secret part changed."""
    prefix, secret, signature = value.split(".")
    return f"{prefix}.{secret[:-1]}{'a' if secret[-1] != 'a' else 'b'}.{signature}"


def _secrets_of(made: dict) -> list[str]:
    _, secret, signature = made["token"].split(".")
    return [made["token"], secret, signature]


@pytest.fixture
def permissive_umask():
    """Files must be owner-only because the code says so, not because of the caller's umask."""
    previous = os.umask(0)
    yield
    os.umask(previous)


def test_secrets_full_lifecycle_leaves_no_secret_in_logs_or_cli_output(make_server, permissive_umask, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    server = make_server()
    outputs: list[str] = []
    runner = CliRunner()

    def cli(*args: str) -> str:
        """The real root app in-process (a subprocess per command would take a second each)."""
        done = runner.invoke(cli_app, ["--config", str(server.config), *args])
        assert done.exit_code == 0, done.output
        outputs.append(done.stdout + done.stderr)
        return done.stdout

    idp, doomed = server.token("Okta Production"), server.token("Old connection")
    token = idp["token"]
    _provision(server, token)
    cli("token", "revoke", "Old connection", "--yes")
    for refused in (doomed["token"], _tampered(token), token + "x", token.split(".")[0]):
        status, _, body = server.request("GET", "/Users", refused)
        assert status == 401, body
    cli("mappings", "add", "Engineering", "api-admin")
    for command in (("token", "list", "--all"), ("token", "show", "Okta Production"), ("users", "list", "--deprovisioned"),
                    ("users", "show", "secret@example.com"), ("groups", "list"), ("groups", "show", "Engineering"),
                    ("events", "list"), ("mappings", "list"), ("db", "check")):
        cli(*command)
        cli("--json", *command)
    cli("db", "backup", str(server.folder / "copy.db"))
    _assert_owner_only(server)
    assert server.stop() == 0

    secrets = [*PASSWORDS, *_secrets_of(idp), *_secrets_of(doomed), *server.key_path.read_text().split()]
    texts = {"server log": server.log.read_text(), "CLI log": caplog.text,
             **{f"CLI output {i}": text for i, text in enumerate(outputs)}}
    for where, text in texts.items():
        for secret in secrets:
            assert secret not in text, f"a secret appears in the {where}"
    assert "token=Okta Production" in texts["server log"]  # the log names tokens; it was captured
    assert "secret@example.com" in "".join(outputs)  # the CLI output was captured
    stored = b"".join(p.read_bytes() for p in server.folder.glob("*.db*"))
    for secret in [*PASSWORDS, *_secrets_of(idp)[1:], *_secrets_of(doomed)[1:]]:
        assert secret.encode() not in stored, "a password or token secret is stored in clear"


def _provision(server, token: str) -> None:
    """Create with a password, patch, replace, push a group, bulk: every place a password can travel."""
    user = {"schemas": [USER_SCHEMA], "userName": "secret@example.com", "password": PASSWORDS[0],
            "emails": [{"value": "secret@example.com", "primary": True}]}
    status, _, created = server.request("POST", "/Users", token, user)
    assert status == 201 and "password" not in created
    path = f"/Users/{created['id']}"
    assert server.request("PATCH", path, token, _patch({"op": "replace", "path": "password", "value": PASSWORDS[1]}))[0] == 200
    assert server.request("PUT", path, token, {**user, "password": PASSWORDS[2], "title": "Engineer"})[0] == 200
    status, _, conflict = server.request("POST", "/Users", token, {**user, "password": PASSWORDS[2]})
    assert status == 409 and PASSWORDS[2] not in str(conflict)
    found = urllib.parse.quote(f'userName eq "{PASSWORDS[0]}"')  # a query string is never logged
    assert server.request("GET", f"/Users?filter={found}", token)[0] == 200
    group = {"schemas": [GROUP_SCHEMA], "displayName": "Engineering", "members": [{"value": created["id"]}]}
    status, _, pushed = server.request("POST", "/Groups", token, group)
    assert status == 201
    assert server.request("PATCH", f"/Groups/{pushed['id']}", token,
                          _patch({"op": "replace", "path": "displayName", "value": "Engineering"}))[0] == 204
    bulk = {"schemas": [BULK], "Operations": [{"method": "POST", "path": "/Users", "bulkId": "b1", "data": {
        "schemas": [USER_SCHEMA], "userName": "bulk@example.com", "password": PASSWORDS[3]}}]}
    status, _, answer = server.request("POST", "/Bulk", token, bulk)
    assert status == 200 and answer["Operations"][0]["status"] == "201"
    assert server.request("DELETE", path, token)[0] == 204


def _assert_owner_only(server) -> None:
    checked = [server.key_path, server.db_path] + [Path(f"{server.db_path}{s}") for s in ("-wal", "-shm")]
    checked += [server.folder / "copy.db"]
    for path in checked:
        if path.exists():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, f"{path.name} is not owner-only"
    assert Path(f"{server.db_path}-wal").exists()  # the server is running: its WAL is there, and checked


def test_secrets_serve_refuses_a_key_file_others_can_read(make_server) -> None:
    server = make_server(start=False)
    assert server.cli("init").returncode == 0
    server.key_path.chmod(0o644)
    with pytest.raises(RuntimeError, match="scim serve exited"):
        server.start()
    assert server.process.returncode == ExitCode.CONFIG
    said = server.log.read_text()
    assert f"chmod 600 {server.key_path}" in said and said.startswith("Error: ")
    server.key_path.chmod(0o600)
    server.start()  # fixed as told: it serves again
