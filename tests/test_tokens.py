"""Token lifecycle in the domain: generate, authenticate, expire, revoke, rotate keys."""

from __future__ import annotations

import secrets
import string
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from skilljar_scim.base import clock, keyfile
from skilljar_scim.domain import tokens
from skilljar_scim.base.errors import Conflict, InvalidValue, NotFound, Unauthorized
from skilljar_scim.store import models

NOW = datetime(2026, 11, 28, 12, 0, 0)


def test_tokens_value_has_prefix_and_authenticates(keys) -> None:
    made = tokens.generate(keys, "Okta Production", None, now=NOW)
    assert made.value.startswith("sjscim_")
    assert tokens.authenticate(keys, made.value, now=NOW).id == made.token.id


@pytest.mark.sqlite
def test_tokens_store_only_a_hash(keys, settings) -> None:
    made = tokens.generate(keys, "Okta", None)
    secret = made.value.split(".")[1]
    models.database.obj.execute_sql("PRAGMA wal_checkpoint(FULL)")
    raw = b"".join(p.read_bytes() for p in Path(settings.sqlite_path).parent.glob("scim.db*"))
    assert made.value.encode() not in raw
    assert secret.encode() not in raw
    assert models.Token.get().secret_hash != secret


def _mutations(value: str):
    """Yield the value with one character changed, at positions across every part."""
    for index in range(len("sjscim_"), len(value), 7):
        replacement = "A" if value[index] != "A" else "B"
        yield value[:index] + replacement + value[index + 1 :]


def test_tokens_one_changed_character_is_refused(keys) -> None:
    made = tokens.generate(keys, "Okta", None)
    for tampered in _mutations(made.value):
        with pytest.raises(Unauthorized):
            tokens.authenticate(keys, tampered)


BASE64URL = string.ascii_letters + string.digits + "-_"


def test_tokens_only_the_exact_issued_string_authenticates(keys) -> None:
    """Every one-character substitution, anywhere, and every extension of a real token is refused.

    itsdangerous' base64 has spare bits in the signature's last character: without the exact
    comparison, some substitutions there (and trailing '=') still authenticated.
    """
    made = tokens.generate(keys, "Okta", None)
    value = made.value
    variants = {value[:i] + c + value[i + 1:] for i in range(len(value)) for c in BASE64URL + ".=+/"}
    variants |= {value + c for c in BASE64URL + ".=+/ "} | {value[:-1], value.upper(), value.lower(), " " + value}
    variants.discard(value)
    accepted = []
    for variant in sorted(variants):
        try:
            tokens.authenticate(keys, variant)
            accepted.append(variant)
        except Unauthorized:
            pass
    assert accepted == []
    assert len(variants) > 64 * len(value)
    assert tokens.authenticate(keys, value).id == made.token.id


def _signed(keys: list[str], payload: str) -> str:
    """Build a correctly signed value, as only the server (holding the key) can."""
    return tokens.PREFIX + tokens._signer(keys).sign(payload).decode("ascii")


def test_tokens_signed_value_with_the_wrong_secret_is_refused(keys) -> None:
    """The signature proves the server made the value, not that this secret is the token's: the hash must match."""
    made = tokens.generate(keys, "Okta", None)
    token_id, _, secret = made.value[len(tokens.PREFIX):].rpartition(".")[0].partition(".")
    for wrong in ("a" * 64, secret[:-1] + ("0" if secret[-1] != "0" else "1"), "", secret.upper()):
        with pytest.raises(Unauthorized, match="not valid"):
            tokens.authenticate(keys, _signed(keys, f"{token_id}.{wrong}"))
    assert models.Token.get_by_id(made.token.id).last_used_at is None  # a refused value leaves no trace of use
    assert tokens.authenticate(keys, made.value).id == made.token.id


def test_tokens_record_the_key_that_signed_them(keys) -> None:
    made = tokens.generate(keys, "Okta", None)
    assert made.token.key_id == models.Token.get_by_id(made.token.id).key_id == keyfile.key_id(keys[-1])
    assert len(made.token.key_id) == 8 and made.token.key_id not in "".join(keys)


def test_tokens_of_unknown_key_learn_it_on_first_use(keys) -> None:
    """Tokens issued before schema 6 have no key id; the key that verifies one is recorded."""
    made = tokens.generate(keys, "Legacy", None)
    models.Token.update(key_id=None).execute()
    assert tokens.status(models.Token.get_by_id(made.token.id), key_ids={keyfile.key_id(keys[0])}) == "active"
    tokens.authenticate(keys, made.value)
    assert models.Token.get_by_id(made.token.id).key_id == keyfile.key_id(keys[0])


def test_tokens_status_unverifiable_when_the_key_is_gone(keys) -> None:
    made = tokens.generate(keys, "Okta", None, now=NOW)
    current = {keyfile.key_id(keys[0])}
    assert tokens.status(made.token, NOW, current) == "active"
    assert tokens.status(made.token, NOW, {"0badc0de"}) == "unverifiable"
    assert tokens.status(made.token, NOW, set()) == "unverifiable"
    assert tokens.status(made.token, NOW) == "active"  # without keys to compare: no verdict on them
    tokens.revoke(made.token)
    assert tokens.status(models.Token.get_by_id(made.token.id), NOW, set()) == "revoked"


@pytest.mark.parametrize("value", ["", "Bearer", "sjscim_", "sjscim_abc", "xx_" + "a" * 100, "sjscim_a.b.c"])
def test_tokens_malformed_value_is_refused(keys, value: str) -> None:
    with pytest.raises(Unauthorized):
        tokens.authenticate(keys, value)


def test_tokens_table_never_holds_the_value(keys) -> None:
    made = tokens.generate(keys, "Okta", None)
    secret = made.value.split(".")[1]
    rows = models.database.obj.execute_sql("SELECT * FROM token").fetchall()
    dumped = repr(rows)
    assert made.token.id in dumped and secret not in dumped and made.value not in dumped


def test_tokens_bad_signature_does_no_database_work(keys, monkeypatch) -> None:
    made = tokens.generate(keys, "Okta", None)
    statements: list[str] = []
    database = models.database.obj
    real = database.execute_sql
    monkeypatch.setattr(database, "execute_sql", lambda sql, *a, **k: statements.append(sql) or real(sql, *a, **k))
    with pytest.raises(Unauthorized):
        tokens.authenticate(keys, made.value[:-2] + "xx")
    assert statements == []
    tokens.authenticate(keys, made.value)
    assert statements  # the same probe sees the work a valid token does


def test_tokens_signed_by_unknown_key_is_refused(keys) -> None:
    made = tokens.generate(["another-servers-key"], "Okta", None)
    with pytest.raises(Unauthorized):
        tokens.authenticate(keys, made.value)


def test_tokens_unknown_id_with_valid_signature_is_refused(keys) -> None:
    made = tokens.generate(keys, "Okta", None)
    models.Token.delete().execute()
    with pytest.raises(Unauthorized, match="not valid"):
        tokens.authenticate(keys, made.value)


def test_tokens_expired_is_refused_and_counted(keys) -> None:
    made = tokens.generate(keys, "Okta", NOW + timedelta(days=30), now=NOW)
    assert tokens.authenticate(keys, made.value, now=NOW + timedelta(days=29)).id == made.token.id
    with pytest.raises(Unauthorized, match="expired"):
        tokens.authenticate(keys, made.value, now=NOW + timedelta(days=30))
    assert models.Token.get_by_id(made.token.id).refused_count == 1


def test_tokens_revoked_is_refused_on_next_call(keys) -> None:
    made = tokens.generate(keys, "Okta", None)
    tokens.authenticate(keys, made.value)
    tokens.revoke(made.token)
    with pytest.raises(Unauthorized, match="revoked"):
        tokens.authenticate(keys, made.value)


def test_tokens_revoke_twice_is_conflict(keys) -> None:
    made = tokens.generate(keys, "Okta", None)
    tokens.revoke(made.token)
    with pytest.raises(Conflict):
        tokens.revoke(made.token)


def test_tokens_last_used_written_at_most_once_a_minute(keys) -> None:
    made = tokens.generate(keys, "Okta", None, now=NOW)
    tokens.authenticate(keys, made.value, now=NOW)
    tokens.authenticate(keys, made.value, now=NOW + timedelta(seconds=30))
    assert models.Token.get_by_id(made.token.id).last_used_at == NOW
    tokens.authenticate(keys, made.value, now=NOW + timedelta(seconds=61))
    assert models.Token.get_by_id(made.token.id).last_used_at == NOW + timedelta(seconds=61)


def test_tokens_key_rotation_keeps_old_tokens_working(keys, settings) -> None:
    old = tokens.generate(keys, "Old", None)
    fresh = secrets.token_urlsafe(32)
    settings.key_path.write_text(keys[0] + f"\n{fresh}\n")
    rotated = keyfile.load(settings.key_path)
    new = tokens.generate(rotated, "New", None)
    assert tokens.authenticate(rotated, old.value).name == "Old"
    assert tokens.authenticate(rotated, new.value).name == "New"
    assert (old.token.key_id, new.token.key_id) == (keyfile.key_id(keys[0]), keyfile.key_id(fresh))
    with pytest.raises(Unauthorized):
        tokens.authenticate([fresh], old.value)


def test_tokens_several_live_at_once(keys) -> None:
    first = tokens.generate(keys, "Okta", None)
    second = tokens.generate(keys, "Okta 2", None)
    assert {tokens.authenticate(keys, v.value).id for v in (first, second)} == {first.token.id, second.token.id}


def test_tokens_live_name_is_unique_case_insensitively(keys) -> None:
    tokens.generate(keys, "Okta", None)
    with pytest.raises(Conflict):
        tokens.generate(keys, "OKTA", None)


def test_tokens_name_reusable_after_revoke(keys) -> None:
    first = tokens.generate(keys, "Okta", None)
    tokens.revoke(first.token)
    second = tokens.generate(keys, "Okta", None)
    assert tokens.find("okta").id == second.token.id


def test_tokens_find_unknown_is_not_found(store) -> None:
    with pytest.raises(NotFound):
        tokens.find("nope")


@pytest.mark.parametrize(
    ("text", "days"),
    [("30d", 30), ("90d", 90), ("180D", 180), ("1y", 365), ("2w", 14), (" 7d ", 7)],
)
def test_tokens_parse_expiry_durations(text: str, days: int) -> None:
    assert tokens.parse_expiry(text, now=NOW) == NOW + timedelta(days=days)


def test_tokens_parse_expiry_never_and_dates() -> None:
    assert tokens.parse_expiry("never", now=NOW) is None
    assert tokens.parse_expiry("2027-01-31", now=NOW) == datetime(2027, 1, 31)
    assert tokens.parse_expiry("2027-01-31T10:00:00+02:00", now=NOW) == datetime(2027, 1, 31, 8)


@pytest.mark.parametrize("text", ["", "0d", "5q", "d", "tomorrow", "2020-01-01", "1000y", "-3d"])
def test_tokens_parse_expiry_rejects(text: str) -> None:
    with pytest.raises(InvalidValue):
        tokens.parse_expiry(text, now=NOW)


def test_tokens_status_values(keys) -> None:
    made = tokens.generate(keys, "Okta", NOW + timedelta(days=1), now=NOW)
    assert tokens.status(made.token, NOW) == "active"
    assert tokens.status(made.token, NOW + timedelta(days=2)) == "expired"
    assert tokens.status(tokens.revoke(made.token, NOW), NOW) == "revoked"


def test_tokens_events_recorded(keys) -> None:
    made = tokens.generate(keys, "Okta", None)
    tokens.revoke(made.token)
    actions = [e.action for e in models.Event.select().order_by(models.Event.id)]
    assert actions == ["token.created", "token.revoked"]
    assert all(made.value not in e.summary for e in models.Event.select())


def test_clock_iso_round_trip() -> None:
    assert clock.parse_iso(clock.iso(NOW)) == NOW
