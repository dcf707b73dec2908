"""Passwords (domain/passwords.py): Argon2id at OWASP's parameters, hashed before the write lock, upgraded on write."""

from __future__ import annotations

import hashlib
import logging

import argon2
import pytest

from skilljar_scim.base.errors import InvalidValue, TooMany
from skilljar_scim.domain import bulk, passwords, users
from skilljar_scim.domain.events import CLI
from skilljar_scim.store import models
from skilljar_scim.store.models import User

from domain.support import BASE, patch_body, user_body

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CORE = "urn:ietf:params:scim:schemas:core:2.0:User"


def _legacy_scrypt(password: str) -> str:
    """A hash as versions before Argon2id stored it (scrypt N=2^14)."""
    digest = hashlib.scrypt(password.encode(), salt=b"s" * 16, n=2**14, r=8, p=1)
    return f"scrypt$16384$8$1${(b's' * 16).hex()}${digest.hex()}"


def _verifies(stored: str, password: str) -> bool:
    try:
        return argon2.PasswordHasher().verify(stored, password)
    except argon2.exceptions.VerifyMismatchError:
        return False


def test_passwords_hash_is_argon2id_at_owasp_parameters() -> None:
    stored = passwords.hash_password("Tr0ub4dor&3")
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")  # OWASP: 19 MiB, t=2, p=1
    assert _verifies(stored, "Tr0ub4dor&3") and not _verifies(stored, "tr0ub4dor&3")
    assert passwords.is_current(stored) and stored != passwords.hash_password("Tr0ub4dor&3")  # salted
    weaker = argon2.PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash("x")
    assert not passwords.is_current(weaker) and not passwords.is_current(_legacy_scrypt("x"))
    assert not passwords.is_current(None) and not passwords.is_current("$argon2id$garbage")


@pytest.fixture
def hash_calls(monkeypatch) -> list[int]:
    """Record, for each password hashed, how deep in a transaction the store was (0: no lock held)."""
    depths: list[int] = []
    real = passwords.hash_password

    def hash_password(plain: str) -> str:
        depths.append(models.database.obj.transaction_depth())
        return real(plain)

    monkeypatch.setattr(passwords, "hash_password", hash_password)
    return depths


def test_passwords_are_hashed_before_the_write_transaction(store, limits, hash_calls) -> None:
    user = users.create(CLI, user_body("alice@example.com", password="one-1")).user
    users.replace(CLI, user.id, user_body("alice@example.com", password="two-2"))
    users.patch(CLI, user.id, patch_body({"op": "replace", "path": "password", "value": "three-3"}))
    bulk.execute(CLI, {"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": [
        {"method": "POST", "path": "/Users", "bulkId": "b", "data": user_body("bob@example.com", password="four-4")}]},
        BASE, limits)
    assert hash_calls == [0, 0, 0, 0]
    assert _verifies(User.get_by_id(user.id).password_hash, "three-3")


@pytest.mark.parametrize("operation", [
    {"op": "replace", "path": "password", "value": "S3cret!"},
    {"op": "Replace", "Path": "PASSWORD", "Value": "S3cret!"},
    {"op": "add", "path": f"{CORE}:password", "value": "S3cret!"},
    {"op": "replace", "value": {"password": "S3cret!"}},
    {"op": "replace", "value": {"Password": "S3cret!", "title": "x"}},
    {"op": "replace", "value": {f"{CORE}:password": "S3cret!"}},
])
def test_passwords_every_patch_form_is_found_before_the_lock(store, hash_calls, caplog, operation) -> None:
    user = users.create(CLI, user_body("alice@example.com")).user
    with caplog.at_level(logging.WARNING, logger="skilljar_scim.passwords"):
        users.patch(CLI, user.id, patch_body(operation))
    assert _verifies(User.get_by_id(user.id).password_hash, "S3cret!")
    assert hash_calls == [0] and "write lock" not in caplog.text


def test_passwords_a_user_body_hashes_only_the_password_it_stores(store, hash_calls) -> None:
    """create and replace hash the canonical document's password: any form normalise takes, nothing it ignores."""
    body = {**user_body("alice@example.com"), f"{CORE}:PASSWORD": "S3cret!",
            "urn:example:other:1.0": {"password": "not-ours"}}  # an unknown extension: ignored, so never hashed
    user = users.create(CLI, body).user
    assert hash_calls == [0] and _verifies(User.get_by_id(user.id).password_hash, "S3cret!")
    users.replace(CLI, user.id, {**user_body("alice@example.com"), "Password": "N3w-one", "name": {"password": "x"}})
    assert hash_calls == [0, 0] and _verifies(User.get_by_id(user.id).password_hash, "N3w-one")


def test_passwords_a_user_body_naming_its_password_twice_is_refused_before_hashing(store, hash_calls) -> None:
    with pytest.raises(InvalidValue):
        users.create(CLI, {**user_body("alice@example.com", password="one-1"), "PASSWORD": "two-2"})
    assert hash_calls == []


def test_passwords_a_form_the_scan_misses_is_still_hashed_and_logged(store, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="skilljar_scim.passwords"):
        body = user_body("alice@example.com", password="Zq9-unseen")
        user = users.create(CLI, body, checked=users.Checked(users.check(body).data, passwords.Hashed())).user
    assert _verifies(User.get_by_id(user.id).password_hash, "Zq9-unseen")
    assert "hashed while holding the write lock" in caplog.text and "Zq9-unseen" not in caplog.text


def test_passwords_a_legacy_hash_is_kept_until_a_write_brings_the_password(store) -> None:
    """Only a write with the plaintext can upgrade a hash: the server never verifies passwords."""
    user = users.create(CLI, user_body("alice@example.com")).user
    legacy = _legacy_scrypt("old-pass")
    User.update(password_hash=legacy).where(User.id == user.id).execute()
    users.replace(CLI, user.id, user_body("alice@example.com", title="Engineer"))
    users.patch(CLI, user.id, patch_body({"op": "replace", "path": "title", "value": "Lead"}))
    assert User.get_by_id(user.id).password_hash == legacy  # nothing to rehash it from
    users.replace(CLI, user.id, user_body("alice@example.com", title="Lead", password="old-pass"))
    upgraded = User.get_by_id(user.id).password_hash
    assert passwords.is_current(upgraded) and _verifies(upgraded, "old-pass")


def test_passwords_a_hash_of_older_argon2_parameters_is_upgraded_by_a_patch(store) -> None:
    user = users.create(CLI, user_body("alice@example.com")).user
    weaker = argon2.PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash("same-pass")
    User.update(password_hash=weaker).where(User.id == user.id).execute()
    users.patch(CLI, user.id, patch_body({"op": "replace", "path": "password", "value": "same-pass"}))
    assert passwords.is_current(User.get_by_id(user.id).password_hash)


def test_passwords_more_than_the_cap_in_one_body_is_too_many(store, hash_calls) -> None:
    user = users.create(CLI, user_body("alice@example.com")).user
    ops = [{"op": "replace", "path": "password", "value": f"p{n}"} for n in range(passwords.MAX_PASSWORDS + 1)]
    with pytest.raises(TooMany):
        users.patch(CLI, user.id, patch_body(*ops))
    assert hash_calls == []  # refused before any hashing
