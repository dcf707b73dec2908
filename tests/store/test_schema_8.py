"""Schema 8: token scopes (existing tokens provision), event feed snapshots, the prune mark."""

from __future__ import annotations

from datetime import datetime

from skilljar_scim.store import db, models


def _as_version_3(database) -> None:
    """Undo schema 8 by hand: the shape a store had before this release."""
    database.execute_sql('ALTER TABLE "token" DROP COLUMN "scope"')
    database.execute_sql('ALTER TABLE "event" DROP COLUMN "data"')
    database.execute_sql('DROP TABLE "events_pruned"')
    models.SchemaVersion.delete().where(models.SchemaVersion.version >= 8).execute()
    database.execute_sql('INSERT INTO "token" ("id", "name", "name_key", "secret_hash", "created_at", "refused_count") '
                         "VALUES ('abc123', 'Okta', 'okta', 'x', '2026-01-01 00:00:00', 0)")


def test_schema_8_existing_tokens_become_provision_and_events_gain_data(database_url: str, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    database = db.open_database(database_url, create=True)
    _as_version_3(database)
    database.close()
    database = db.open_database(database_url)
    assert db.schema_version(database) == db.SCHEMA_VERSION
    assert models.Token.get_by_id("abc123").scope == "provision"
    models.Event.create(at=datetime(2026, 1, 1), actor="cli", action="user.created", data='{"id": "u"}')
    models.EventsPruned.create(id=1, through_id=0, pruned_at=datetime(2026, 1, 1))
    assert models.Event.get().data == '{"id": "u"}'
    database.close()
