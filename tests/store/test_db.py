"""The store: SQLite pragmas, schema versioning and URL handling."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from skilljar_scim.base.errors import ConfigError, DatabaseError, NotInitialised
from skilljar_scim.store import db, models


def test_db_sqlite_uses_wal_foreign_keys_and_busy_timeout(tmp_path: Path) -> None:
    database = db.open_database(f"sqlite:///{tmp_path / 's.db'}", create=True, busy_timeout_ms=4321)
    assert database.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert database.execute_sql("PRAGMA foreign_keys").fetchone()[0] == 1
    assert database.execute_sql("PRAGMA busy_timeout").fetchone()[0] == 4321
    database.close()


def test_db_file_is_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    db.open_database(f"sqlite:///{path}", create=True).close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_db_records_schema_version_and_creates_all_tables(tmp_path: Path) -> None:
    database = db.open_database(f"sqlite:///{tmp_path / 's.db'}", create=True)
    assert db.schema_version(database) == db.SCHEMA_VERSION
    for model in models.ALL_MODELS:
        assert database.table_exists(model._meta.table_name)
    database.close()


def test_db_reopen_does_not_migrate_again(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    db.open_database(url, create=True).close()
    database = db.open_database(url)
    assert models.SchemaVersion.select().count() == db.SCHEMA_VERSION
    database.close()


def test_db_newer_schema_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    database = db.open_database(url, create=True)
    models.SchemaVersion.create(version=db.SCHEMA_VERSION + 1, applied_at=models.SchemaVersion.select().get().applied_at)
    database.close()
    with pytest.raises(DatabaseError, match="newer"):
        db.open_database(url)


def test_db_missing_file_without_create_is_not_initialised(tmp_path: Path) -> None:
    with pytest.raises(NotInitialised, match="scim init"):
        db.open_database(f"sqlite:///{tmp_path / 'none.db'}")


def test_db_unsupported_url_is_config_error() -> None:
    with pytest.raises(ConfigError, match="unsupported"):
        db.open_database("mysql://x@y/z")


def test_db_redact_hides_password() -> None:
    assert db.redact("postgresql://bob:s3cret@host/db") == "postgresql://bob:***@host/db"


def test_db_schema_6_adds_token_key_ids_to_an_older_database(settings, keys) -> None:
    """A token from before key ids (schema 6) keeps working, its key unknown until its next use records it."""
    from skilljar_scim.base import keyfile
    from skilljar_scim.domain import tokens

    made = tokens.generate(keys, "From schema 3", None)
    database = models.database.obj
    database.execute_sql('ALTER TABLE "token" DROP COLUMN "key_id"')
    step = next(v for v, migration in db.MIGRATIONS.items() if migration is db.record_token_keys)
    models.SchemaVersion.delete().where(models.SchemaVersion.version >= step).execute()
    database.close()
    reopened = db.open_database(settings.database.url)
    assert db.schema_version(reopened) == db.SCHEMA_VERSION >= step
    assert models.Token.get_by_id(made.token.id).key_id is None
    assert tokens.authenticate(keys, made.value).id == made.token.id
    assert models.Token.get_by_id(made.token.id).key_id == keyfile.key_id(keys[-1])
    reopened.close()


def test_db_server_reuses_connections_across_requests(settings, store, keys) -> None:
    """`scim serve` (reuse_connections) opens a connection once, not per request, on SQLite and PostgreSQL."""
    from skilljar_scim.domain import tokens
    from skilljar_scim.web.app import create_app

    token = tokens.generate(keys, "Test IdP", None).value
    store.close()
    application, used = create_app(settings, reuse_connections=True), []
    application.before_request(lambda: used.append(models.database.obj.connection()))  # kept: ids stay unique
    client = application.test_client()
    for _ in range(5):
        assert client.get("/scim/v2/Users", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert len(used) == 5 and len({id(conn) for conn in used}) == 1
    db.close_all(models.database.obj)


def test_db_postgres_url_query_is_libpq_connection_parameters() -> None:
    """`?sslmode=verify-full&sslrootcert=...` reaches the driver: dropped, the connection would neither
    require TLS nor check the server's certificate."""
    database = db._postgres("postgresql://bob:pw@db.internal:5433/scim?sslmode=verify-full"
                            "&sslrootcert=%2Fetc%2Fssl%2Fpg-ca.pem&connect_timeout=3&application_name=scim")
    assert database.database == "scim"
    params = {k: v for k, v in database.connect_params.items() if k != "connection_factory"}
    assert params == {"user": "bob", "password": "pw", "host": "db.internal", "port": 5433, "sslmode": "verify-full",
                      "sslrootcert": "/etc/ssl/pg-ca.pem", "connect_timeout": "3", "application_name": "scim"}


def test_db_postgres_url_query_may_name_what_the_url_leaves_out() -> None:
    """A Unix socket's folder as host (libpq's own URIs allow it), the database by dbname."""
    database = db._postgres("postgresql://scim@?host=%2Fvar%2Frun%2Fpostgresql&dbname=scim")
    assert database.database == "scim" and database.connect_params["host"] == "/var/run/postgresql"


@pytest.mark.parametrize("url, said", [
    ("postgresql://h/scim?sslmod=require", "'sslmod' is not a PostgreSQL connection parameter"),
    ("postgresql://h/scim?replication=true", "'replication' is not a PostgreSQL connection parameter"),
    ("postgresql://h/scim?sslmode=require&sslmode=disable", "'sslmode' is given twice"),
    ("postgresql://h:5432/scim?port=5433", "'port' is given twice"),
    ("postgresql://h/scim?sslmode", "its query is not key=value pairs"),
])
def test_db_postgres_url_query_refuses_what_libpq_would_not_take(url: str, said: str) -> None:
    with pytest.raises(ConfigError, match=said):
        db._postgres(url)


def test_db_redact_hides_passwords_in_the_query_too() -> None:
    assert db.redact("postgresql://bob:s3cret@h/db?sslpassword=k3y&sslmode=require&password=p4ss") == \
        "postgresql://bob:***@h/db?sslpassword=***&sslmode=require&password=***"
    # A percent-encoded key is the same parameter to the driver, so it is hidden the same way.
    assert db.redact("postgresql://bob@h/db?pass%77ord=s3cret&ssl%70assword=k3y&sslmode=require") == \
        "postgresql://bob@h/db?pass%77ord=***&ssl%70assword=***&sslmode=require"
    with pytest.raises(ConfigError) as refused:
        db._postgres("postgresql://h/db?password=p4ss&nope=1")
    assert "p4ss" not in str(refused.value)


@pytest.mark.postgres
def test_db_postgres_url_sslmode_is_honoured(database_url: str) -> None:
    """The test server has no TLS: `sslmode=require` must fail to connect, `sslmode=disable` must not."""
    joiner = "&" if "?" in database_url else "?"
    with pytest.raises(DatabaseError, match="SSL"):
        db.open_database(database_url + joiner + "sslmode=require")
    db.open_database(database_url + joiner + "sslmode=disable").close()
