"""Token verification costs the same whether the token id exists or not (tested by code path, not wall time)."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections import Counter
from contextlib import contextmanager

import pytest

from skilljar_scim.domain import tokens
from skilljar_scim.base.errors import Unauthorized
from skilljar_scim.store import models

UNKNOWN_ID = "0123456789ab"


def _signed(keys: list[str], payload: str) -> str:
    """Build a correctly signed token value, as only the server (holding the key) can."""
    return tokens.PREFIX + tokens._signer(keys).sign(payload).decode("ascii")


@pytest.fixture
def pair(keys) -> dict[str, str]:
    """A signed value whose id is unknown, and one whose id exists but whose secret is wrong."""
    real = tokens.generate(keys, "Real", None)
    return {
        "unknown id": _signed(keys, f"{UNKNOWN_ID}.{'a' * 64}"),
        "wrong secret": _signed(keys, f"{real.token.id}.{'a' * 64}"),
    }


@contextmanager
def _trace(monkeypatch):
    """Count hashes, constant-time comparisons (with what they compared) and SQL statements."""
    calls: Counter = Counter()
    compared: list[tuple] = []
    statements: list[str] = []
    real_sha256, real_compare = hashlib.sha256, hmac.compare_digest
    database = models.database.obj
    real_execute = database.execute_sql

    def sha256(*args, **kwargs):
        calls["sha256"] += 1
        return real_sha256(*args, **kwargs)

    def compare_digest(a, b):
        calls["compare_digest"] += 1
        compared.append((a, b))
        return real_compare(a, b)

    def execute_sql(sql, params=None, *args, **kwargs):
        # The statement's shape: ids differ, and a literal in SQL would show here.
        statements.append(re.sub(r"\s+", " ", _run_by(sql)))
        return real_execute(sql, params, *args, **kwargs)

    monkeypatch.setattr(hashlib, "sha256", sha256)
    monkeypatch.setattr(hmac, "compare_digest", compare_digest)
    # A signer built once per key (tokens._key_signer) keeps the hash function it was built
    # with: build it afresh, so this trace counts the hashes of its own signature too.
    tokens._key_signer.cache_clear()
    database.execute_sql = execute_sql
    try:
        yield calls, compared, statements
    finally:
        del database.execute_sql


def _refusal(keys, value, monkeypatch) -> tuple:
    """Authenticate `value`, which must be refused; return what that cost."""
    with _trace(monkeypatch) as (calls, compared, statements):
        with pytest.raises(Unauthorized) as refused:
            tokens.authenticate(keys, value)
    return refused.value, dict(calls), compared, statements


def test_timing_unknown_id_costs_the_same_as_a_wrong_secret(keys, pair, monkeypatch) -> None:
    unknown = _refusal(keys, pair["unknown id"], monkeypatch)
    wrong = _refusal(keys, pair["wrong secret"], monkeypatch)
    assert (type(unknown[0]), unknown[0].detail) == (type(wrong[0]), wrong[0].detail)
    assert unknown[1] == wrong[1]  # the same number of hashes and comparisons
    assert unknown[3] == wrong[3]  # the same SQL statements: one lookup by primary key, no write
    assert len(unknown[3]) == 1 and unknown[3][0].upper().startswith("SELECT")


def _run_by(statement: str) -> str:
    """Return the SQL a statement runs: on PostgreSQL an EXECUTE runs the one prepared under its name
    on the connection (store/postgres.py), whose name differs from connection to connection."""
    if "EXECUTE " not in statement:
        return statement
    named = {name: sql for sql, name in models.database.obj.connection().prepared.items()}
    return re.sub(r"EXECUTE (\w+)(\([^)]*\))?", lambda m: named[m[1]], statement)


def test_timing_unknown_id_is_compared_against_the_dummy_hash(keys, pair, monkeypatch) -> None:
    _, _, compared, _ = _refusal(keys, pair["unknown id"], monkeypatch)
    secret_hash = hashlib.sha256(b"a" * 64).hexdigest()
    assert (tokens._DUMMY_HASH, secret_hash) in compared  # the full comparison ran, against the dummy
    _, _, compared, _ = _refusal(keys, pair["wrong secret"], monkeypatch)
    stored = models.Token.get(models.Token.name == "Real").secret_hash
    assert (stored, secret_hash) in compared
    assert len(tokens._DUMMY_HASH) == len(stored)  # same length: compare_digest does the same work


def test_timing_request_path_is_the_same_through_the_app(api, pair, monkeypatch) -> None:
    costs = {}
    for kind, value in pair.items():
        with _trace(monkeypatch) as (calls, _, statements):
            response = api.get("/Users", token=value)
        api.assert_error(response, 401)
        costs[kind] = (dict(calls), statements, response.get_json()["detail"])
    assert costs["unknown id"] == costs["wrong secret"]  # counter read, lookup, counter write: alike
