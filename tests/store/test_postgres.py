"""PostgreSQL: what a request sends over the wire (store/postgres.py), counted at psycopg2's cursor.

Every round trip is one `cursor.execute`: peewee's own statements, its BEGIN and COMMIT, and the
pool's liveness check all go through one. The counts are those of `scim serve`'s pooled store.
"""

from __future__ import annotations

import json

import peewee
import psycopg2.extensions
import pytest

from skilljar_scim.domain import tokens
from skilljar_scim.store import db as store_db
from skilljar_scim.store import models, postgres, sqlcache

pytestmark = pytest.mark.postgres

USER = "urn:ietf:params:scim:schemas:core:2.0:User"


@pytest.fixture
def wire(settings, store, keys):
    """A pooled app (as `scim serve` runs it), a token, one user in a group, and the statements sent from now on."""
    from skilljar_scim.web.app import create_app

    store.close()
    app = create_app(settings, reuse_connections=True)
    headers = {"Authorization": f"Bearer {tokens.generate(keys, 'IdP', None).value}",
               "Content-Type": "application/scim+json"}
    client = app.test_client()
    made = client.post("/scim/v2/Users", headers=headers, data=json.dumps({"schemas": [USER], "userName": "ann@example.com"}))
    client.post("/scim/v2/Groups", headers=headers, data=json.dumps({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Eng",
        "members": [{"value": made.get_json()["id"]}]}))
    sent: list[str] = []

    class Counted(psycopg2.extensions.cursor):
        def execute(self, query, vars=None):
            sent.append(query if isinstance(query, str) else query.decode())
            return super().execute(query, vars)

    database = models.database.obj
    store_db.close_all(database)  # the next connections count what they send
    database.connect_params["cursor_factory"] = Counted
    now = [1000.0]
    database.clock = lambda: now[0]
    client.get('/scim/v2/Users?filter=userName eq "ann@example.com"', headers=headers)  # warm: connect, last_used
    sent.clear()
    return client, headers, sent, now


def _lookup(client, headers) -> None:
    answer = client.get('/scim/v2/Users?filter=userName eq "ann@example.com"', headers=headers)
    assert answer.status_code == 200 and answer.get_json()["Resources"][0]["groups"][0]["display"] == "Eng"


def test_postgres_lookup_is_three_round_trips(wire) -> None:
    """The token; BEGIN with the user, its groups and roles; COMMIT. No pool check, no BEGIN alone."""
    client, headers, sent, _ = wire
    _lookup(client, headers)
    assert [s[:52] for s in sent] == [
        'SELECT "t1"."id", "t1"."name", "t1"."name_key", "t1"',  # the token
        'BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT "t1"."',  # the snapshot opens with the user's row
        "COMMIT",
    ], sent
    assert '"user_name_key" = %s' in sent[1] and 'AS "scim_memberships"' in sent[1]  # groups and roles with it


def test_postgres_pool_checks_a_connection_only_after_it_sat_idle(wire) -> None:
    client, headers, sent, now = wire
    now[0] += postgres.CHECK_AFTER - 1
    _lookup(client, headers)
    assert "SELECT 1" not in sent
    now[0] += postgres.CHECK_AFTER + 1
    _lookup(client, headers)
    assert sent.count("SELECT 1") == 1 and sent[3] == "SELECT 1", sent


def test_postgres_write_takes_its_lock_with_its_first_statement(wire) -> None:
    client, headers, sent, _ = wire
    answer = client.post("/scim/v2/Users", headers=headers, data=json.dumps({"schemas": [USER], "userName": "bob@example.com"}))
    assert answer.status_code == 201, answer.get_json()
    assert sent[1].startswith(f"BEGIN; SELECT pg_advisory_xact_lock({store_db._PG_WRITE_LOCK}); "), sent[1]
    alone = [s for s in sent if s.startswith(("BEGIN", "SAVEPOINT", "RELEASE", "SELECT pg_advisory", 'INSERT INTO "event"'))
             and ";" not in s.rstrip(";")]
    assert alone == [] and sent[-1].endswith("COMMIT"), sent
    assert any('INSERT INTO "event"' in s.split("; ")[0] for s in sent[2:]), sent  # the event rides with the next one


def test_postgres_deactivate_is_four_round_trips(wire) -> None:
    """The token; BEGIN with the user and its groups; the UPDATE (its unique keys answer now); the
    email index, the event and COMMIT together."""
    client, headers, sent, _ = wire
    user_id = client.get('/scim/v2/Users?filter=userName eq "ann@example.com"', headers=headers).get_json()["Resources"][0]["id"]
    sent.clear()
    answer = client.patch(f"/scim/v2/Users/{user_id}", headers=headers, data=json.dumps({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"active": False}}]}))
    assert answer.status_code == 200 and answer.get_json()["groups"][0]["display"] == "Eng", answer.get_json()
    assert len(sent) == 4 and sent[2].startswith('UPDATE "user"'), sent
    assert sent[3].startswith('DELETE FROM "user_email"') and sent[3].endswith("; COMMIT"), sent[3]


def test_postgres_transaction_that_reads_nothing_sends_nothing(store) -> None:
    sent = _counted(store)
    with store_db.read_transaction():
        pass
    with store_db.write_transaction():
        with store.atomic():  # a savepoint nothing ran in
            pass
    assert sent == []


def test_postgres_savepoint_rolled_back_keeps_the_outer_writes(store) -> None:
    """A failed statement inside a savepoint undoes only the savepoint, as with peewee's own statements."""
    sent = _counted(store)
    with store_db.write_transaction():
        models.SchemaVersion.create(version=100, applied_at=models.SchemaVersion.select().first().applied_at)
        with pytest.raises(Exception), store.atomic():
            models.SchemaVersion.create(version=100, applied_at=None)  # refused: NOT NULL
        models.SchemaVersion.create(version=101, applied_at=models.SchemaVersion.select().first().applied_at)
    versions = {v for (v,) in models.SchemaVersion.select(models.SchemaVersion.version).tuples()}
    assert {100, 101} <= versions and any(s.startswith("ROLLBACK TO SAVEPOINT") for s in sent), sent


def _counted(database) -> list[str]:
    sent: list[str] = []

    class Counted(psycopg2.extensions.cursor):
        def execute(self, query, vars=None):
            sent.append(query if isinstance(query, str) else query.decode())
            return super().execute(query, vars)

    database.close()
    database.connect_params["cursor_factory"] = Counted
    database.connect()
    return sent


def test_postgres_request_on_a_connection_the_server_dropped_still_answers(wire, settings) -> None:
    """A restart drops pooled connections; a request on one used a moment ago reads again on a new one."""
    client, headers, sent, _ = wire
    _lookup(client, headers)  # the pool now holds a connection used a moment ago
    killer = store_db._postgres(settings.database.url)
    killer.execute_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    killer.close()
    sent.clear()
    _lookup(client, headers)
    assert sent[0].startswith('SELECT "t1"."id", "t1"."name"') and sent[1] == sent[0], sent  # the token, read again


def test_postgres_queued_write_that_fails_rolls_the_whole_transaction_back(store) -> None:
    """A write sent with COMMIT (an event row) that fails takes the transaction's other writes with it."""
    applied = models.SchemaVersion.select().first().applied_at
    with pytest.raises(peewee.IntegrityError), store_db.write_transaction():
        models.SchemaVersion.create(version=200, applied_at=applied)
        sqlcache.insert(models.Event, [{"at": applied, "actor": "cli", "action": None}], later=True)  # NOT NULL
    assert not models.SchemaVersion.select().where(models.SchemaVersion.version == 200).exists()


def test_postgres_queued_write_keeps_percent_signs_and_is_read_by_the_next_statement(store) -> None:
    """The queued row is bound by psycopg2 and runs before the statement it rides with."""
    applied = models.SchemaVersion.select().first().applied_at
    sent = _counted(store)
    with store_db.write_transaction():
        sqlcache.insert(models.Event, [{"at": applied, "actor": "cli", "action": "100% %s %(x)s"}], later=True)
        found = models.Event.select(models.Event.action).where(models.Event.actor == "cli").scalar()
    assert found == "100% %s %(x)s" and len(sent) == 2, sent  # BEGIN, lock, INSERT and SELECT in one; COMMIT


def test_postgres_write_for_later_outside_a_transaction_is_sent_at_once(store) -> None:
    """With no transaction there is no COMMIT to carry it: the row is written then and there."""
    applied = models.SchemaVersion.select().first().applied_at
    sent = _counted(store)
    sqlcache.insert(models.Event, [{"at": applied, "actor": "cli", "action": "alone"}], later=True)
    store.close()
    assert len(sent) == 1 and sent[0].startswith('INSERT INTO "event"'), sent
    store.connect()
    assert models.Event.select().where(models.Event.action == "alone").exists()
