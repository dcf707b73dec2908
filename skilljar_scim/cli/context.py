"""What every command shares: settings (loaded on first use), the store, the keys."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import typer

from skilljar_scim.base import config, keyfile
from skilljar_scim.base.config import Settings
from skilljar_scim.store.db import open_configured


@dataclass
class AppContext:
    """Root options, and the settings and store opened from them on demand."""

    config_flag: Path | None = None
    db_url: str | None = None
    json: bool = False
    root: typer.Context | None = field(default=None, repr=False)
    _settings: Settings | None = field(default=None, repr=False)

    @property
    def config_path(self) -> Path:
        return config.config_path(self.config_flag)

    _overrides: dict = field(default_factory=dict, repr=False)

    def override(self, flags: dict) -> None:
        """Add command flags ("section.key": value, None = not given) before settings load."""
        self._overrides.update({k: v for k, v in flags.items() if v is not None})

    def settings(self) -> Settings:
        if self._settings is None:
            flags = {"database.url": self.db_url, **self._overrides}
            self._settings = config.load(self.config_flag, overrides=flags)
        return self._settings

    def open_store(self, create: bool = False) -> None:
        """Open the database for this command and close it when the command ends."""
        db = open_configured(self.settings().database, create=create)
        self.root.call_on_close(db.close)

    def keys(self) -> list[str]:
        return keyfile.load(self.settings().key_path)

    def key_ids(self) -> set[str]:
        """Return the ids of the current keys; none (and a warning) when the key file is missing."""
        path = self.settings().key_path
        found = keyfile.key_ids(path)
        if not found:
            typer.echo(f"Warning: no secret key file at {path}: no token can be verified.", err=True)
        return found


def app_context(ctx: typer.Context) -> AppContext:
    """Return the AppContext of the running command."""
    return ctx.find_object(AppContext)
