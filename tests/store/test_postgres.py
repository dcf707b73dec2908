"""PostgreSQL: what a request sends over the wire (store/postgres.py), counted at psycopg2's cursor.

Every round trip is one `cursor.execute`: peewee's own statements, its BEGIN and COMMIT, and the
pool's liveness check all go through one. The counts are those of `scim serve`'s pooled store.
"""

from __future__ import annotations

import json
import re

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
    database = models.database.obj
    store_db.close_all(database)  # the next connections count what they send
    sent = _counting(database)
    now = [1000.0]
    database.clock = lambda: now[0]
    client.get('/scim/v2/Users?filter=userName eq "ann@example.com"', headers=headers)  # warm: connect, last_used
    sent.clear()
    return client, headers, sent, now


def _lookup(client, headers) -> None:
    answer = client.get('/scim/v2/Users?filter=userName eq "ann@example.com"', headers=headers)
    assert answer.status_code == 200 and answer.get_json()["Resources"][0]["groups"][0]["display"] == "Eng"


def test_postgres_lookup_is_two_round_trips(wire) -> None:
    """The token; the user with its groups and roles, one statement and so one snapshot: no BEGIN, no COMMIT."""
    client, headers, sent, _ = wire
    _lookup(client, headers)
    assert [s[:52] for s in sent] == [
        'SELECT "t1"."id", "t1"."name", "t1"."name_key", "t1"',  # the token
        'SELECT "t1"."id", "t1"."user_name", "t1"."user_name_',  # the user's row, alone
    ], sent
    assert '"user_name_key" = $1' in sent[1] and 'AS "scim_memberships"' in sent[1]  # groups and roles with it


def test_postgres_pool_checks_a_connection_only_after_it_sat_idle(wire) -> None:
    client, headers, sent, now = wire
    now[0] += postgres.CHECK_AFTER - 1
    _lookup(client, headers)
    assert "SELECT 1" not in sent
    now[0] += postgres.CHECK_AFTER + 1
    _lookup(client, headers)
    assert sent.count("SELECT 1") == 1 and sent[2] == "SELECT 1", sent


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
    database.close()
    sent = _counting(database)
    database.connect()
    return sent


class Sent(list):
    """The statements sent, one per round trip, each EXECUTE shown as the statement it runs.

    A round trip that only prepares statements (once per statement and connection,
    store/postgres.py) goes to `preparations`, not to the list: the counts are a warm connection's.
    """

    def __init__(self):
        super().__init__()
        self.prepared: dict[str, str] = {}  # name -> statement, kept when the list is cleared
        self.preparations: list[str] = []

    def record(self, query: str) -> None:
        for name, statement in re.findall(r"PREPARE (\w+) AS (.*?)(?:; RELEASE SAVEPOINT \w+)?$", query):
            self.prepared[name] = statement
        if re.match(r"(DEALLOCATE \w+; )?(SAVEPOINT \w+; )?PREPARE ", query):
            self.preparations.append(query)
            return
        self.append(re.sub(r"EXECUTE (\w+)", lambda m: f"{self.prepared[m[1]]} WITH VALUES ", query))

    def clear(self) -> None:
        super().clear()
        self.preparations.clear()


def _counting(database) -> Sent:
    """Count every round trip the database's next connections make (each is one cursor.execute)."""
    sent = Sent()

    class Counted(psycopg2.extensions.cursor):
        def execute(self, query, vars=None):
            sent.record(query if isinstance(query, str) else query.decode())
            return super().execute(query, vars)

    database.connect_params["cursor_factory"] = Counted
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
    assert any('FROM "token"' in s for s in sent.preparations), sent.preparations  # prepared anew there


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


def test_postgres_lookup_runs_statements_prepared_once_per_connection(wire) -> None:
    """The token and the user's row run by name (PREPAREd on the connection's first lookup); nothing is prepared again."""
    client, headers, sent, _ = wire
    _lookup(client, headers)
    _lookup(client, headers)
    assert sent.preparations == [] and len(sent) == 4, (sent.preparations, sent)
    assert all(" WITH VALUES " in s for s in sent if s != "COMMIT"), sent


def _unpreparable(store, tag: int):
    """A statement PostgreSQL cannot PREPARE ($1's type is unknown) but runs with the value written in."""
    return sqlcache.scalar(("test.unpreparable", tag), lambda: models.SchemaVersion.select(
        sqlcache.param(0).is_null(), peewee.SQL(str(tag))), ["x"])


def test_postgres_statement_that_cannot_be_prepared_runs_as_it_is_and_keeps_the_transaction(store, monkeypatch) -> None:
    monkeypatch.setattr(postgres, "_unpreparable", set())
    applied = models.SchemaVersion.select().first().applied_at
    assert _unpreparable(store, -1) is False  # outside a transaction
    with store_db.write_transaction():
        models.SchemaVersion.create(version=300, applied_at=applied)
        assert _unpreparable(store, -2) is False  # inside: the failed PREPARE is rolled back to its savepoint
        models.SchemaVersion.create(version=301, applied_at=applied)
    assert {300, 301} <= {v for (v,) in models.SchemaVersion.select(models.SchemaVersion.version).tuples()}
    assert len(postgres._unpreparable) == 2  # and never tried again in this process


def test_postgres_prepared_statements_setting_off_sends_every_statement_as_it_is(settings, store) -> None:
    store.close()
    database = store_db.open_database(settings.database.url, prepared_statements=False)
    sent = _counted(database)
    for _ in range(2):
        sqlcache.first("test.version", lambda: models.SchemaVersion.select().where(models.SchemaVersion.version > sqlcache.param(0)), [0])
    database.close()
    assert len(sent) == 2 and sent[0].startswith('SELECT "t1"."version"') and sent.preparations == [], sent


def test_postgres_connection_keeps_at_most_max_prepared_statements(store, monkeypatch) -> None:
    """Past MAX_PREPARED, the least recently used statement is deallocated in the next PREPARE's round trip."""
    monkeypatch.setattr(postgres, "MAX_PREPARED", 2)
    sent = _counted(store)
    for bound in (1, 2, 1, 3):  # statement 2 is then the least recently used
        sqlcache.scalar(("test.bound", bound), lambda b=bound: models.SchemaVersion.select(
            models.SchemaVersion.version + peewee.SQL(str(b))).where(models.SchemaVersion.version > sqlcache.param(0)), [0])
    names = {n for (n,) in store.execute_sql("SELECT name FROM pg_prepared_statements").fetchall()}
    assert len(sent.preparations) == 3 and sent.preparations[2].startswith("DEALLOCATE "), sent.preparations
    assert names == set(store.connection().prepared.values()) and len(names) == 2
    assert sent.preparations[2].split()[1].rstrip(";") not in names


def test_postgres_lookup_of_one_per_page_is_two_round_trips(wire) -> None:
    """userName is unique: a page of one holding it is every match, so no COUNT, and the read is one statement."""
    client, headers, sent, _ = wire
    answer = client.get('/scim/v2/Users?filter=userName eq "ann@example.com"&count=1', headers=headers)
    assert answer.status_code == 200 and answer.get_json()["totalResults"] == 1, answer.get_json()
    assert len(sent) == 2 and "COUNT" not in sent[1], sent


def test_postgres_get_user_is_two_round_trips(wire) -> None:
    client, headers, sent, _ = wire
    user_id = client.get('/scim/v2/Users?filter=userName eq "ann@example.com"', headers=headers).get_json()["Resources"][0]["id"]
    sent.clear()
    answer = client.get(f"/scim/v2/Users/{user_id}", headers=headers)
    assert answer.status_code == 200 and answer.get_json()["groups"][0]["display"] == "Eng"
    assert len(sent) == 2 and sent[1].startswith('SELECT "t1"."id", "t1"."user_name"'), sent


@pytest.mark.parametrize("path", [
    "/scim/v2/Users?count=1",  # a full first page: its COUNT must see the page's snapshot
    '/scim/v2/Users?filter=active eq true',  # several may match
])
def test_postgres_read_of_several_statements_keeps_one_snapshot(wire, path) -> None:
    client, headers, sent, _ = wire
    client.post("/scim/v2/Users", headers=headers, data=json.dumps({"schemas": [USER], "userName": "bob@example.com"}))
    sent.clear()
    answer = client.get(path, headers=headers)
    assert answer.status_code == 200, answer.get_json()
    assert sent[1].startswith("BEGIN ISOLATION LEVEL REPEATABLE READ; ") and sent[-1] == "COMMIT", sent


def test_postgres_root_search_for_one_user_still_reads_in_one_snapshot(wire) -> None:
    """/.search reads users then groups: a userName lookup there is not the whole read."""
    client, headers, sent, _ = wire
    answer = client.post("/scim/v2/.search", headers=headers, data=json.dumps({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": 'userName eq "ann@example.com"'}))
    assert answer.status_code == 200 and answer.get_json()["totalResults"] == 1, answer.get_json()
    assert sent[1].startswith("BEGIN ISOLATION LEVEL REPEATABLE READ; ") and sent[-1] == "COMMIT", sent


def test_postgres_statement_after_a_sole_read_is_refused(store) -> None:
    """A read declared to be one statement cannot quietly run a second outside that statement's snapshot."""
    version = lambda: models.SchemaVersion.select().where(models.SchemaVersion.version > sqlcache.param(0))  # noqa: E731
    with store_db.read_transaction():
        sqlcache.first("test.version", version, [0], sole=True)
        with pytest.raises(RuntimeError, match="one statement"):
            sqlcache.first("test.version", version, [0])
    with store_db.read_transaction():  # the next transaction is a fresh one
        assert sqlcache.first("test.version", version, [0]) is not None
