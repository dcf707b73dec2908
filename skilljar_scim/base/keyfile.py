"""The server's secret key file: owner-only, one key per line, the last line signs.

Older keys stay on earlier lines so tokens signed with them keep working while you
rotate (append a new key, reissue tokens, then delete the old line). Each key must hold
at least 32 random bytes: MIN_KEY_CHARS characters of base64 (`openssl rand -base64 32`),
and is known by its key id (`key_id`), which each token records without revealing the key.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import stat
import threading
from pathlib import Path

from skilljar_scim.base.errors import ConfigError, NotInitialised, SkilljarError

log = logging.getLogger("skilljar_scim.keys")

# 32 bytes of entropy in base64 (RFC 4648 §4) is 43 characters: HMAC-SHA256's full key strength.
MIN_KEY_CHARS = 43
# A line of that length but few distinct characters ("aaaa...") is not random.
MIN_DISTINCT_CHARS = 8
KEY_RULE = (f"at least {MIN_KEY_CHARS} characters of random text (32 random bytes, "
            "e.g. `openssl rand -base64 32`)")


def new_key() -> str:
    """Return a fresh random key (48 random bytes, URL-safe base64)."""
    return secrets.token_urlsafe(48)


def create(path: Path, key: str | None = None) -> None:
    """Write `key` (default: a fresh one) to `path` with mode 0600, replacing any existing file at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write((key or new_key()) + "\n")
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


class KeyRing:
    """The keys of a key file, read again when the file changes: a running server picks up a new key at once.

    Each use costs one os.stat(); the file is read again when its inode, size, mtime or mode
    differ from the last reading (`scim init --force` and an editor's save both change one).
    A changed file that cannot be used (missing, shared, empty, weak) is refused as at start,
    said once in the log, and the keys in use are kept, so a half-written file never stops
    provisioning; the next change is tried again.
    """

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._seen = _signature(path)  # before reading: a change in between is seen next time
        self._keys = load(path)

    def current(self) -> list[str]:
        """Return the keys, oldest first, after reading the file again if it changed."""
        seen = _signature(self.path)
        if seen != self._seen:
            self._reload(seen)
        return self._keys

    def _reload(self, seen: tuple | None) -> None:
        with self._lock:
            if seen == self._seen:
                return  # another thread read this version
            self._seen = seen
            try:
                self._keys = load(self.path)
            except SkilljarError as exc:
                log.error("the secret key file changed but cannot be used; keeping the keys in use: %s", exc.detail)
                return
            log.info("secret key file %s read again: %d key(s), signing with key %s",
                     self.path, len(self._keys), key_id(self._keys[-1]))


def _signature(path: Path) -> tuple | None:
    """Return what changes when a file is replaced, written or chmod-ed; None when it is missing."""
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns, found.st_mode
