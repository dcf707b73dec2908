"""`scim init`: create what a fresh installation needs, idempotently."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from skilljar_scim.base import keyfile
from skilljar_scim.base.errors import ConfigError, NotInitialised
from skilljar_scim.base.config import Settings
from skilljar_scim.domain import roles, tokens, webhooks
from skilljar_scim.store import db

SETTINGS_TEMPLATE = """\
# skilljar-scim settings. Every key, with its meaning, is in sample_config.toml.
# Precedence: defaults < this file < SKILLJAR_SCIM_<SECTION>_<KEY> env < flags.
# Relative paths are resolved against this file's folder.

[database]
url = "sqlite:///scim.db"

[security]
secret_key_file = "scim.key"

[server]
host = "127.0.0.1"
port = 8080
"""


@dataclass
class Report:
    """What initialise() did, line by line."""

    lines: list[str] = field(default_factory=list)
    changed: bool = False

    def did(self, line: str) -> None:
        self.lines.append(line)
        self.changed = True

    def kept(self, line: str) -> None:
        self.lines.append(line)

    def warn(self, line: str) -> None:
        """A line every caller shows (`scim serve` too), though nothing changed."""
        self.lines.append(f"Warning: {line}")

    def lines_changed(self) -> list[str]:
        """Return only the lines that say something was created or replaced."""
        return [line for line in self.lines if not line.endswith(("unchanged.", "kept.")) and "is ready" not in line]


def initialise(
    config_path: Path,
    load_settings: Callable[[], Settings],
    force_key: bool = False,
    confirm_replace: Callable[[], None] = lambda: None,
) -> Report:
    """Create the settings file, database and secret key where missing; report each step.

    A missing key file is not silently replaced while the database holds live tokens: they
    were signed with the lost key, and a new one would leave them all refused. A file that
    cannot be written (a read-only folder, a path through a file) is a ConfigError naming
    it; the steps before it stay done, so running it again where it can write finishes.
    """
    report = Report()
    try:
        _settings_file(config_path, report)
        settings = load_settings()
        database = _database(settings, report)
        try:
            _key(settings.key_path, force_key, confirm_replace, report)
        finally:
            database.close()
    except OSError as exc:
        raise ConfigError(f"{_cannot_write(exc, config_path)}; run `scim init` in a folder you can write, "
                          "or point --config and the settings' paths at one") from None
    return report


def _cannot_write(exc: OSError, config_path: Path) -> str:
    """Say which file could not be written and why, with absolute paths."""
    where = Path(exc.filename or config_path).absolute()
    if isinstance(exc, (FileExistsError, NotADirectoryError)):  # a file stands where a folder must be
        blocker = next((p for p in where.parents if p.is_file()), where)
        target = config_path.absolute() if config_path.absolute().is_relative_to(blocker) else where
        return f"cannot write {target}: {blocker} is not a folder"
    return f"cannot write {where}: {exc.strerror or exc}"


def _settings_file(path: Path, report: Report) -> None:
    """Write the template owner-only: the file may come to hold a database password."""
    if path.exists():
        report.kept(f"Settings file {path} exists: unchanged.")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(SETTINGS_TEMPLATE)
    report.did(f"Created settings file {path} (mode 600).")


# What a replaced key means for a `scim serve` that is running (web/app.py: base/keyfile.KeyRing).
RUNNING_SERVER = ("A running `scim serve` reads the new key on its next request, without a restart: "
                  "from then on it refuses every token signed with the old key (401).")


def _key(path: Path, force: bool, confirm_replace: Callable[[], None], report: Report) -> None:
    if path.exists() and not force:
        keys = keyfile.load(path)  # refuses an unsafe, empty or weak file now rather than at first use
        report.kept(f"Secret key file {path} exists: kept.")
        _orphans(path, keys, report)
        return
    live = tokens.live_count()
    if not path.exists() and live and not force:
        raise ConfigError(
            f"secret key file {path} is missing, but the database holds {live} live token(s) signed with it: "
            f"restore {path} from a backup (mode 600), or run `scim init --force` to create a new key, "
            "after which every existing token is refused"
        )
    existed = path.exists()
    if existed or live:
        confirm_replace()
    _replace_key(path, existed, report)
    report.did(f"{'Replaced' if existed else 'Created'} secret key file {path} (mode 600).")
    if live:
        report.did(f"The {live} live token(s) signed with the old key no longer work: "
                   "generate new ones with `scim token generate`.")
    if existed:
        report.did(RUNNING_SERVER)


def _replace_key(path: Path, existed: bool, report: Report) -> None:
    """Write a new key file; webhook secrets sealed under the old key are re-sealed first.

    The database goes first: if it is busy the old key stays and nothing changed. A secret
    the old file cannot open (the file lost) stays sealed and is reported.
    """
    old_keys = _old_keys(path) if existed else None
    key = keyfile.new_key()
    lost = webhooks.reseal(old_keys, [key])
    keyfile.create(path, key)
    if lost:
        report.warn(f"{len(lost)} webhook endpoint(s) ({', '.join(lost)}) had signing secrets sealed with a key "
                    "that is gone and cannot sign deliveries: run `scim webhooks rotate-secret ID --overlap 0` "
                    "for each and give the receiver its new secret.")


def _old_keys(path: Path) -> list[str] | None:
    """Return the keys of the file about to be replaced, or None when it cannot be read."""
    try:
        return keyfile.load(path)
    except (ConfigError, NotInitialised):
        return None


def _orphans(path: Path, keys: list[str], report: Report) -> None:
    """Say when live tokens were signed with a key no longer in the file (replaced by hand)."""
    lost = tokens.unverifiable({keyfile.key_id(key) for key in keys})
    if lost:
        report.warn(f"{len(lost)} live token(s) were signed with a key that is not in {path}, so every request "
                    "with them is refused: restore that key, or generate new tokens (`scim token list` marks "
                    "them unverifiable).")


def _database(settings: Settings, report: Report):
    """Open (creating and migrating) the database; the caller closes it."""
    existed = settings.sqlite_path is None or settings.sqlite_path.exists()
    database = db.open_configured(settings.database, create=True)
    where = db.redact(settings.database.url)
    if existed:
        report.kept(f"Database {where} is ready (schema version {db.SCHEMA_VERSION}).")
    else:
        report.did(f"Created database {where} (schema version {db.SCHEMA_VERSION}).")
    return database


def uncatalogued_mappings(settings: Settings) -> list[tuple[str, str]]:
    """Return the (group, role) mappings whose role is missing from [roles.catalog] (still granted).

    Opens and closes the store, so a server can ask before it starts its workers.
    """
    database = db.open_configured(settings.database)
    try:
        return roles.uncatalogued(settings.roles.catalog)
    finally:
        database.close()
