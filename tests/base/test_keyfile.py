"""The secret key file: owner-only, strong keys, public key ids (base/keyfile.py)."""

from __future__ import annotations

import secrets

import pytest

from skilljar_scim.base import keyfile
from skilljar_scim.base.errors import ConfigError, ExitCode


def _write(path, *lines: str):
    path.write_text("".join(line + "\n" for line in lines))
    path.chmod(0o600)
    return path


@pytest.mark.parametrize("weak", ["x", "a" * 64, "ab" * 32, secrets.token_urlsafe(32)[:42], "correct horse battery"])
def test_keyfile_refuses_a_weak_key_and_says_the_rule(tmp_path, weak) -> None:
    path = _write(tmp_path / "scim.key", secrets.token_urlsafe(32), weak)
    with pytest.raises(ConfigError) as refused:
        keyfile.load(path)
    assert "key 2 is too weak" in refused.value.detail
    assert f"at least {keyfile.MIN_KEY_CHARS} characters" in refused.value.detail
    assert "scim init --force" in refused.value.detail
    assert len(weak) < 5 or weak not in refused.value.detail  # the key itself is never shown


@pytest.mark.parametrize("strong", [secrets.token_urlsafe(32), secrets.token_hex(32),
                                    "q8Zt0m+3kYV2cLx9/4HfRw1sJpN7bUaE6dGiTnOyKvA="])
def test_keyfile_accepts_32_random_bytes_however_written(tmp_path, strong) -> None:
    assert keyfile.load(_write(tmp_path / "scim.key", strong)) == [strong]


def test_keyfile_created_key_passes_its_own_rule(tmp_path) -> None:
    keyfile.create(tmp_path / "scim.key")
    (key,) = keyfile.load(tmp_path / "scim.key")
    assert len(key) >= keyfile.MIN_KEY_CHARS


def test_keyfile_key_ids_are_short_public_and_distinct(tmp_path) -> None:
    first, second = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    path = _write(tmp_path / "scim.key", first, second)
    assert keyfile.key_ids(path) == {keyfile.key_id(first), keyfile.key_id(second)}
    assert all(len(k) == 8 and int(k, 16) >= 0 for k in keyfile.key_ids(path))
    assert keyfile.key_ids(tmp_path / "missing.key") == set()


def test_keyfile_non_ascii_is_a_config_error(tmp_path) -> None:
    path = tmp_path / "scim.key"
    path.write_bytes("é".encode() * 50)
    path.chmod(0o600)
    with pytest.raises(ConfigError, match="not ASCII"):
        keyfile.load(path)


def test_keyfile_weak_key_is_a_one_line_cli_error(initialised, settings) -> None:
    _write(settings.key_path, "x")
    result = initialised("token", "generate", "--name", "x", "--expires", "1d")
    assert result.exit_code == ExitCode.CONFIG
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: ") and "too weak" in result.stderr
