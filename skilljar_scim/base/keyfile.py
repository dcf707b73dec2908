"""The server's secret key file: owner-only, one key per line, the last line signs.

Older keys stay on earlier lines so tokens signed with them keep working while you
rotate (append a new key, reissue tokens, then delete the old line). Each key must hold
at least 32 random bytes: MIN_KEY_CHARS characters of base64 (`openssl rand -base64 32`),
and is known by its key id (`key_id`), which each token records without revealing the key.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import stat
from pathlib import Path

from skilljar_scim.base.errors import ConfigError, NotInitialised

# 32 bytes of entropy in base64 (RFC 4648 §4) is 43 characters: HMAC-SHA256's full key strength.
MIN_KEY_CHARS = 43
# A line of that length but few distinct characters ("aaaa...") is not random.
MIN_DISTINCT_CHARS = 8
KEY_RULE = (f"at least {MIN_KEY_CHARS} characters of random text (32 random bytes, "
            "e.g. `openssl rand -base64 32`)")


def create(path: Path) -> None:
    """Write a fresh random key to `path` with mode 0600 (replacing any existing file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(secrets.token_urlsafe(48) + "\n")
    os.replace(tmp, path)


def load(path: Path) -> list[str]:
    """Return the keys in `path`, oldest first; refuse a missing, empty, shared or weak file."""
    if not path.exists():
        raise NotInitialised(f"no secret key file at {path}: run `scim init` first (or restore it from a backup)")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ConfigError(
            f"secret key file {path} is accessible by other users (mode {mode:o}): "
            f"run `chmod 600 {path}`"
        )
    try:
        keys = [line.strip() for line in path.read_text(encoding="ascii").splitlines() if line.strip()]
    except UnicodeDecodeError:
        raise ConfigError(f"secret key file {path} is not ASCII text: a key must be {KEY_RULE}") from None
    if not keys:
        raise ConfigError(f"secret key file {path} is empty: run `scim init --force` to create a key")
    for number, key in enumerate(keys, 1):
        _check_strength(path, number, key)
    return keys


def _check_strength(path: Path, number: int, key: str) -> None:
    """Refuse a key too short or too uniform to resist guessing its HMAC (RFC 2104 §3)."""
    if len(key) < MIN_KEY_CHARS or len(set(key)) < MIN_DISTINCT_CHARS:
        raise ConfigError(
            f"secret key file {path}: key {number} is too weak ({len(key)} characters): a key must be "
            f"{KEY_RULE}; replace it, or run `scim init --force` to create a new key file"
        )


def key_id(key: str) -> str:
    """Return the public id of `key`: the first 8 hex digits of its SHA-256."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:8]


def key_ids(path: Path) -> set[str]:
    """Return the ids of the keys in `path`; none when the file is missing (nothing verifies)."""
    if not path.exists():
        return set()
    return {key_id(key) for key in load(path)}
