"""The server's secret key file: owner-only, one key per line, the last line signs.

Older keys stay on earlier lines so tokens signed with them keep working while you
rotate (append a new key, reissue tokens, then delete the old line).
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from skilljar_scim.base.errors import ConfigError, NotInitialised


def create(path: Path) -> None:
    """Write a fresh random key to `path` with mode 0600 (replacing any existing file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(secrets.token_urlsafe(48) + "\n")
    os.replace(tmp, path)


def load(path: Path) -> list[str]:
    """Return the keys in `path`, oldest first; refuse a missing, empty or shared file."""
    if not path.exists():
        raise NotInitialised(f"no secret key file at {path}: run `scim init` first")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ConfigError(
            f"secret key file {path} is accessible by other users (mode {mode:o}): "
            f"run `chmod 600 {path}`"
        )
    keys = [line.strip() for line in path.read_text(encoding="ascii").splitlines() if line.strip()]
    if not keys:
        raise ConfigError(f"secret key file {path} is empty: run `scim init --force` to create a key")
    return keys
