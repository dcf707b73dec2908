"""Schema 9: the unused auth_failure table (schema 2's shared failure counters) is dropped."""

from __future__ import annotations

from skilljar_scim.store import db, models


def test_schema_9_drops_the_auth_failure_table(database_url: str, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    database = db.open_database(database_url, create=True)
    database.execute_sql('CREATE TABLE "auth_failure" ("kind" VARCHAR(16), "subject" VARCHAR(64), '
                         '"window_start" INTEGER, "failures" INTEGER)')
    models.SchemaVersion.delete().where(models.SchemaVersion.version >= 9).execute()
    database.close()
    database = db.open_database(database_url)
    assert db.schema_version(database) == db.SCHEMA_VERSION
    assert not database.table_exists("auth_failure")
    database.close()


def test_schema_9_new_store_has_no_auth_failure_table(database_url: str, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    database = db.open_database(database_url, create=True)
    assert not database.table_exists("auth_failure")
    database.close()
