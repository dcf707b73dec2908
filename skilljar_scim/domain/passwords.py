"""SCIM `password` values (RFC 7643 §4.1.1): hashed with Argon2id, before any write lock is taken.

Argon2id with OWASP's Password Storage Cheat Sheet parameters (19 MiB, 2 passes, 1 lane),
via argon2-cffi. OWASP ranks Argon2id first and scrypt (N=2^17, r=8, p=1) second; at those
settings scrypt needs 128 MiB per hash in flight, Argon2id 19 MiB, for comparable cost to an
attacker. The hash is a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`), so the
parameters travel with it and can be raised later without breaking stored hashes.

Hashing costs tens of milliseconds of CPU, so it never runs under the write lock: a request's
passwords are found in its body and hashed first (`prehash`), and the write only looks the
hash up (`Hashed.of`). The server never verifies a password (it only stores them for the
dashboard), so an old hash (scrypt N=2^14 from earlier versions, or Argon2id with other
parameters) can be upgraded only when the plaintext arrives again: every write that carries
a password stores a fresh hash with the current parameters; a write without one keeps the
stored hash as it is.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError

from skilljar_scim.base import textkey
from skilljar_scim.base.errors import TooMany

log = logging.getLogger("skilljar_scim.passwords")

# OWASP Password Storage Cheat Sheet: "Argon2id with a minimum configuration of 19 MiB of
# memory, an iteration count of 2, and 1 degree of parallelism".
HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# One user has one password; a body naming more is hostile (each hash costs 19 MiB and CPU).
MAX_PASSWORDS = 10


def hash_password(plain: str) -> str:
    """Hash a password with Argon2id and a random salt; the clear text is never stored."""
    return HASHER.hash(plain)


def is_current(stored: str | None) -> bool:
    """Return whether a stored hash uses the current algorithm and parameters."""
    if not stored or not stored.startswith("$argon2id$"):
        return False
    try:
        return not HASHER.check_needs_rehash(stored)
    except InvalidHashError:
        return False


@dataclass(frozen=True)
class Hashed:
    """The hashes of the passwords one request carries, made before its write transaction."""

    by_text: dict[str, str] = field(default_factory=dict)

    def of(self, plain: str) -> str:
        """Return the hash made for `plain`; hash it now (and say so) if the body scan missed it."""
        found = self.by_text.get(plain)
        if found is None:
            log.warning("a password was hashed while holding the write lock: its form escaped passwords.prehash")
            found = hash_password(plain)
        return found


def prehash(body: object) -> Hashed:
    """Hash every password a User body or PatchOp message can set (before any lock is taken)."""
    texts = set(_candidates(body))
    if len(texts) > MAX_PASSWORDS:
        raise TooMany(f"a request may carry at most {MAX_PASSWORDS} passwords")
    return Hashed({text: hash_password(text) for text in texts})


def prehash_document(data: dict) -> Hashed:
    """Hash the password of a User in canonical form: its one place, `password` (RFC 7643 §4.1.1).

    resources.normalise puts every form a body can carry (any case, URN-qualified) there and
    ignores the rest, so this is exactly the password the write stores, found without a scan.
    """
    plain = data.get("password")
    return Hashed({plain: hash_password(plain)} if isinstance(plain, str) and plain else {})


def _candidates(body: object) -> list[str]:
    """Return strings under a `password` key (any case, URN-qualified too) or in the value of an op on it.

    Walks iteratively: the body may nest as deep as the JSON parser allows.
    """
    found: list[str] = []
    stack: list[Any] = [body]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            on_password = _names_password(_path_of(node))
            for key, value in node.items():
                if _names_password(key) or (on_password and isinstance(key, str) and key.lower() == "value"):
                    found.extend(_strings(value))
                stack.append(value)
    return found


def _path_of(node: dict) -> object:
    return textkey.get(node, "path")


def _names_password(name: object) -> bool:
    """`password`, in any case, alone or after a schema URN (RFC 7644 §3.10)."""
    return isinstance(name, str) and name.rpartition(":")[2].strip().lower() == "password"


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []
