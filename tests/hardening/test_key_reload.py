"""Key rotation while running (issue 11 rule 9): a replaced key file is read again without a restart."""

from __future__ import annotations

import logging
import os
import secrets

import pytest

from skilljar_scim.base import keyfile
from skilljar_scim.domain import tokens


def _write_key_file(path, keys: list[str], mode: int = 0o600) -> None:
    """Replace the key file the way an operator should: a new file moved over the old one."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_text("".join(key + "\n" for key in keys))
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _new_key() -> str:
    return secrets.token_urlsafe(48)


def test_key_reload_replaced_key_signs_without_restart_and_old_tokens_die(api, settings) -> None:
    assert api.get("/Users").status_code == 200
    keyfile.create(settings.key_path)  # what `scim init --force` does
    api.assert_error(api.get("/Users"), 401)  # the old key is gone: at once
    fresh = tokens.generate(keyfile.load(settings.key_path), "After rotation", None)
    assert api.get("/Users", token=fresh.value).status_code == 200


def test_key_reload_appended_key_keeps_old_tokens_working(api, settings) -> None:
    old = keyfile.load(settings.key_path)
    _write_key_file(settings.key_path, old + [_new_key()])
    fresh = tokens.generate(keyfile.load(settings.key_path), "Signed by the new key", None)
    assert api.get("/Users", token=fresh.value).status_code == 200
    assert api.get("/Users").status_code == 200  # signed with the older line: still verifies


def test_key_reload_removed_key_refuses_its_tokens_though_they_verified_before(api, settings) -> None:
    """Signers are built once per key (domain/tokens._key_signer): a key taken out of the file still stops verifying."""
    old, new = keyfile.load(settings.key_path)[-1], _new_key()
    _write_key_file(settings.key_path, [old, new])
    fresh = tokens.generate(keyfile.load(settings.key_path), "Signed by the new key", None)
    assert api.get("/Users").status_code == 200  # signed with `old`: its signer is now built
    _write_key_file(settings.key_path, [new])
    api.assert_error(api.get("/Users"), 401)
    assert api.get("/Users", token=fresh.value).status_code == 200


def test_key_reload_in_place_edit_is_noticed(api, settings) -> None:
    with open(settings.key_path, "a", encoding="ascii") as handle:  # same inode: size and mtime change
        handle.write(_new_key() + "\n")
    fresh = tokens.generate(keyfile.load(settings.key_path), "Appended in place", None)
    assert api.get("/Users", token=fresh.value).status_code == 200


@pytest.mark.parametrize("bad", ["shared", "empty", "weak", "missing"])
def test_key_reload_unusable_file_keeps_the_keys_in_use(api, settings, caplog, bad) -> None:
    old = keyfile.load(settings.key_path)
    replacement = _new_key()
    if bad == "missing":
        settings.key_path.unlink()
    else:
        keys = {"shared": [replacement], "empty": [], "weak": ["short"]}[bad]
        _write_key_file(settings.key_path, keys, 0o644 if bad == "shared" else 0o600)
    with caplog.at_level(logging.ERROR, logger="skilljar_scim.keys"):
        for _ in range(3):
            assert api.get("/Users").status_code == 200  # provisioning goes on with the keys in use
    assert len([r for r in caplog.records if "cannot be used" in r.getMessage()]) == 1  # said once per change
    if bad == "shared":
        signed_by_refused = tokens.generate(old + [replacement], "Refused key", None)
        api.assert_error(api.get("/Users", token=signed_by_refused.value), 401)
        os.chmod(settings.key_path, 0o600)  # fixed: the mode is part of what is watched
        assert api.get("/Users", token=signed_by_refused.value).status_code == 200
        api.assert_error(api.get("/Users"), 401)


def test_key_reload_costs_a_stat_not_a_read_when_unchanged(api, settings, monkeypatch) -> None:
    reads = []
    original = keyfile.load
    monkeypatch.setattr(keyfile, "load", lambda path: reads.append(path) or original(path))
    for _ in range(5):
        assert api.get("/Users").status_code == 200
    assert reads == []
    _write_key_file(settings.key_path, original(settings.key_path) + [_new_key()])
    for _ in range(5):
        assert api.get("/Users").status_code == 200
    assert len(reads) == 1


def test_key_reload_init_force_says_what_happens_to_a_running_server(initialised) -> None:
    result = initialised("init", "--force", "--yes")
    assert result.exit_code == 0, result.output
    said = " ".join(result.stderr.split())
    assert "running `scim serve` reads the new key on its next request" in said
    assert "refuses every token signed with the old key" in said
    help_text = " ".join(initialised("init", "--help").stdout.split())
    assert "running `scim serve` too" in help_text


def test_key_reload_init_force_prompt_warns_about_a_running_server(initialised) -> None:
    result = initialised("init", "--force", input="n\n")
    assert "running `scim serve` too" in " ".join(result.output.split())


@pytest.mark.e2e
def test_key_reload_replaced_key_file_under_a_running_scim_serve(make_server) -> None:
    server = make_server(workers=2, threads=2)
    old = server.token("before")["token"]
    assert server.request("GET", "/Users", old)[0] == 200
    result = server.cli("init", "--force", "--yes")
    assert result.returncode == 0, result.stderr
    assert "reads the new key on its next request" in " ".join(result.stderr.split())
    fresh = server.token("after")["token"]  # signed with the new key by the CLI
    for _ in range(6):  # every worker, without a restart or a signal
        assert server.request("GET", "/Users", fresh)[0] == 200
        assert server.request("GET", "/Users", old)[0] == 401
    assert server.process.poll() is None
