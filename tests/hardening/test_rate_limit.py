"""Rate limiting of failed authentication (RFC 6585 §4): per client address and per token, in the database."""

from __future__ import annotations

import dataclasses
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime

import pytest

from skilljar_scim.base import config
from skilljar_scim.domain import ratelimit, tokens
from skilljar_scim.store import db as store_db
from skilljar_scim.store import models
from skilljar_scim.store.models import AuthFailure, Token
from skilljar_scim.web.app import create_app

WINDOW = 1_800_000_000  # a window start: divisible by 60
NOW = WINDOW + 15.0  # so Retry-After is 45


@pytest.fixture
def now(monkeypatch):
    """Pin the rate limiter's clock; tests move it with `now.value`."""

    class Clock:
        value = NOW

    monkeypatch.setattr(ratelimit, "_now", lambda: Clock.value)
    return Clock


def _limited(api, settings, address_limit: int = 3, token_limit: int = 2, trusted_proxies: int = 0):
    """Return an Api on an app with small failure limits."""
    security = dataclasses.replace(settings.security, auth_failures_per_minute=address_limit,
                                   token_failures_per_minute=token_limit, trusted_proxies=trusted_proxies)
    application = create_app(dataclasses.replace(settings, security=security))
    application.config["TESTING"] = False
    return type(api)(application, api.token)


def _from(api, address: str):
    """Return an Api on the same app whose requests come from `address`."""
    clone = type(api)(api.app, api.token)
    clone.client.environ_base["REMOTE_ADDR"] = address
    return clone


def _signed(keys: list[str], payload: str) -> str:
    return tokens.PREFIX + tokens._signer(keys).sign(payload).decode("ascii")


def _bad_values(keys: list[str], real: str) -> dict[str, str]:
    """Every kind of token that fails and counts against the client address."""
    return {
        "garbage": "not-a-token",
        "forged": tokens.PREFIX + "abcdef012345.secret.signature",
        "unknown id": _signed(keys, "0123456789ab." + "1" * 64),
        "wrong secret": _signed(keys, f"{tokens.claimed_id(real)}." + "2" * 64),
    }


@contextmanager
def _queries():
    """Record every SQL statement the store runs."""
    database = models.database.obj
    seen: list[str] = []
    original = database.execute_sql

    def recording(sql, *args, **kwargs):
        seen.append(sql)
        return original(sql, *args, **kwargs)

    database.execute_sql = recording
    try:
        yield seen
    finally:
        del database.execute_sql


def _rows() -> list[tuple]:
    return list(AuthFailure.select(AuthFailure.kind, AuthFailure.subject, AuthFailure.window_start,
                                   AuthFailure.failures).tuples())


# --- per client address ---------------------------------------------------------------------


def test_rate_limit_address_over_limit_is_429_with_retry_after_and_scim_body(api, settings, now) -> None:
    limited = _limited(api, settings, address_limit=3)
    for _ in range(3):
        api.assert_error(limited.get("/Users", token="sjscim_bad"), 401)
    response = limited.get("/Users", token="sjscim_bad")
    body = api.assert_error(response, 429)
    assert response.headers["Retry-After"] == "45"
    assert "WWW-Authenticate" not in response.headers
    assert "too many failed authentication" in body["detail"]


@pytest.mark.parametrize("kind", ["garbage", "forged", "unknown id", "wrong secret", "no header", "basic"])
def test_rate_limit_every_failure_counts_against_the_address(api, settings, keys, now, kind) -> None:
    limited = _limited(api, settings, address_limit=2)
    values = _bad_values(keys, api.token)
    for _ in range(2):
        if kind == "no header":
            response = limited.client.get("/scim/v2/Users")
        elif kind == "basic":
            response = limited.client.get("/scim/v2/Users", headers={"Authorization": "Basic dTpw"})
        else:
            response = limited.get("/Users", token=values[kind])
        api.assert_error(response, 401)
    api.assert_error(limited.get("/Users", token="sjscim_bad"), 429)  # refused, so not counted
    assert [(row[0], row[3]) for row in _rows()] == [("address", 2)]


def test_rate_limit_blocked_address_is_refused_even_with_a_valid_token(api, settings, now) -> None:
    limited = _limited(api, settings, address_limit=2)
    for _ in range(3):
        limited.get("/Users", token="sjscim_bad")
    response = limited.get("/Users")
    api.assert_error(response, 429)
    assert response.headers["Retry-After"] == "45"


def test_rate_limit_blocked_address_is_refused_before_token_verification(api, settings, now, monkeypatch) -> None:
    limited = _limited(api, settings, address_limit=1)
    limited.get("/Users", token="sjscim_bad")

    def must_not_run(*_args, **_kwargs):
        raise AssertionError("a blocked client reached token verification")

    monkeypatch.setattr(tokens, "_unsign", must_not_run)
    monkeypatch.setattr(tokens, "authenticate", must_not_run)
    with _queries() as seen:
        api.assert_error(limited.get("/Users"), 429)
    assert len(seen) == 1 and seen[0].lstrip().upper().startswith("SELECT")  # the counter read: no write


def test_rate_limit_other_address_is_unaffected(api, settings, now) -> None:
    limited = _limited(api, settings, address_limit=2)
    attacker, idp = _from(limited, "203.0.113.7"), _from(limited, "198.51.100.20")
    for _ in range(3):
        attacker.get("/Users", token="sjscim_bad")
    api.assert_error(attacker.get("/Users"), 429)
    assert idp.get("/Users").status_code == 200
    api.assert_error(idp.get("/Users", token="sjscim_bad"), 401)


def test_rate_limit_window_end_unblocks_and_prunes_old_rows(api, settings, now) -> None:
    limited = _limited(api, settings, address_limit=1)
    for _ in range(2):
        limited.get("/Users", token="sjscim_bad")
    now.value = NOW + 44.5
    assert limited.get("/Users").headers["Retry-After"] == "1"
    now.value = WINDOW + 60  # the next window
    assert limited.get("/Users").status_code == 200
    api.assert_error(limited.get("/Users", token="sjscim_bad"), 401)
    assert _rows() == [("address", "127.0.0.1", WINDOW + 60, 1)]  # the old window's row is gone


def test_rate_limit_successful_requests_are_not_counted(api, settings, now) -> None:
    limited = _limited(api, settings, address_limit=1)
    for _ in range(5):
        assert limited.get("/Users").status_code == 200
    assert _rows() == []


def test_rate_limit_zero_disables_both_limits_and_their_queries(api, settings, keys, now) -> None:
    limited = _limited(api, settings, address_limit=0, token_limit=0)
    revoked = tokens.generate(keys, "Old", None)
    tokens.revoke(revoked.token)
    for _ in range(10):
        api.assert_error(limited.get("/Users", token="sjscim_bad"), 401)
        api.assert_error(limited.get("/Users", token=revoked.value), 401)
    assert _rows() == []
    with _queries() as seen:
        assert limited.get("/Users").status_code == 200
    assert not any("auth_failure" in sql for sql in seen)


# --- per token ------------------------------------------------------------------------------


def _dead_token(keys: list[str], state: str) -> tokens.Generated:
    if state == "expired":
        made = tokens.generate(keys, "Expired", datetime(2030, 1, 1), now=datetime(2029, 1, 1))
        Token.update(expires_at=datetime(2020, 1, 1)).where(Token.id == made.token.id).execute()
        return made
    made = tokens.generate(keys, "Revoked", None)
    tokens.revoke(made.token)
    return made


@pytest.mark.parametrize("state", ["revoked", "expired"])
def test_rate_limit_dead_token_counts_against_the_token_from_any_address(api, settings, keys, now, state) -> None:
    limited = _limited(api, settings, address_limit=3, token_limit=2)
    dead = _dead_token(keys, state)
    first, second = _from(limited, "192.0.2.1"), _from(limited, "192.0.2.2")
    body = api.assert_error(first.get("/Users", token=dead.value), 401)
    assert state in body["detail"]
    api.assert_error(second.get("/Users", token=dead.value), 401)
    response = first.get("/Users", token=dead.value)
    api.assert_error(response, 429)
    assert response.headers["Retry-After"] == "45"
    api.assert_error(_from(limited, "192.0.2.3").get("/Users", token=dead.value), 429)
    assert first.get("/Users").status_code == 200  # the address itself is not blocked
    assert [(kind, subject) for kind, subject, _, _ in _rows()] == [("token", dead.token.id)]


def test_rate_limit_blocked_token_is_refused_before_lookup(api, settings, keys, now) -> None:
    limited = _limited(api, settings, token_limit=1)
    dead = _dead_token(keys, "revoked")
    for _ in range(2):
        limited.get("/Users", token=dead.value)
    refused = Token.get_by_id(dead.token.id).refused_count
    with _queries() as seen:
        api.assert_error(limited.get("/Users", token=dead.value), 429)
    assert len(seen) == 1  # the counter read: no token lookup, no write
    assert Token.get_by_id(dead.token.id).refused_count == refused


def test_rate_limit_a_forged_token_cannot_borrow_a_blocked_token_id(api, settings, keys, now) -> None:
    limited = _limited(api, settings, address_limit=5, token_limit=1)
    dead = _dead_token(keys, "revoked")
    for _ in range(2):
        limited.get("/Users", token=dead.value)
    forged = tokens.PREFIX + f"{dead.token.id}.{'3' * 64}.badsignature"
    api.assert_error(limited.get("/Users", token=forged), 401)  # not 429: its id is unverified


# --- shared state ---------------------------------------------------------------------------


def test_rate_limit_counters_are_shared_across_threads(api, settings, now) -> None:
    limited = _limited(api, settings, address_limit=5)
    barrier = threading.Barrier(8)

    def attack(_n: int) -> list[int]:
        client = type(limited)(limited.app, limited.token)
        barrier.wait()
        return [client.get("/Users", token="sjscim_bad").status_code for _ in range(5)]

    with ThreadPoolExecutor(8) as pool:
        statuses = [s for batch in pool.map(attack, range(8)) for s in batch]
    assert statuses.count(401) == 5  # counting is atomic: never more 401s than the limit
    assert statuses.count(429) == 35
    assert _rows()[0][3] >= 5


def test_rate_limit_counters_are_shared_across_app_instances(api, settings, now) -> None:
    first, second = _limited(api, settings, address_limit=2), _limited(api, settings, address_limit=2)
    for _ in range(2):
        api.assert_error(first.get("/Users", token="sjscim_bad"), 401)
    api.assert_error(second.get("/Users", token="sjscim_bad"), 429)
    api.assert_error(first.get("/Users"), 429)


@pytest.mark.e2e
def test_rate_limit_is_shared_by_the_worker_processes_of_scim_serve(make_server, monkeypatch) -> None:
    monkeypatch.setenv("SKILLJAR_SCIM_SECURITY_AUTH_FAILURES_PER_MINUTE", "5")
    server = make_server(workers=2, threads=4)
    good = server.token()["token"]
    if time.time() % 60 > 45:  # keep the burst inside one window
        time.sleep(61 - time.time() % 60)
    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(lambda _: server.request("GET", "/Users", "sjscim_bad"), range(24)))
    statuses = [status for status, _, _ in results]
    assert statuses.count(401) == 5 and statuses.count(429) == 19, statuses
    status, headers, body = server.request("GET", "/Users", good)
    assert status == 429 and 1 <= int(headers["Retry-After"]) <= 60
    assert body["status"] == "429"


# --- client address ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("remote", "forwarded", "trusted", "expected"),
    [
        ("192.0.2.1", [], 0, "192.0.2.1"),
        ("192.0.2.1", ["198.51.100.9"], 0, "192.0.2.1"),  # the header is ignored by default
        ("10.0.0.2", ["198.51.100.9"], 1, "198.51.100.9"),
        ("10.0.0.2", ["203.0.113.5, 198.51.100.9"], 1, "198.51.100.9"),  # the client may forge the left part
        ("10.0.0.2", ["203.0.113.5, 198.51.100.9, 10.0.0.1"], 2, "198.51.100.9"),
        ("10.0.0.2", ["198.51.100.9", "10.0.0.1"], 2, "198.51.100.9"),  # several header lines
        ("10.0.0.2", ["198.51.100.9"], 2, "10.0.0.2"),  # fewer entries than proxies
        ("10.0.0.2", ["not an address"], 1, "10.0.0.2"),
        ("2001:db8:1:2:3:4:5:6", [], 0, "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", [], 0, "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.1", [], 0, "192.0.2.1"),
        ("10.0.0.2", ["[2001:db8::1]"], 1, "2001:db8::/64"),
        (None, [], 0, "unknown"),
    ],
)
def test_rate_limit_client_address(remote, forwarded, trusted, expected) -> None:
    assert ratelimit.client_address(remote, forwarded, trusted) == expected


def test_rate_limit_trusted_proxy_header_separates_clients(api, settings, now) -> None:
    limited = _limited(api, settings, address_limit=1, trusted_proxies=1)
    for _ in range(2):
        limited.get("/Users", token="sjscim_bad", headers={"X-Forwarded-For": "198.51.100.1"})
    api.assert_error(limited.get("/Users", headers={"X-Forwarded-For": "198.51.100.1"}), 429)
    assert limited.get("/Users", headers={"X-Forwarded-For": "198.51.100.2"}).status_code == 200


def test_rate_limit_forwarded_for_is_ignored_by_default(api, settings, now) -> None:
    limited = _limited(api, settings, address_limit=2)
    for n in range(3):
        limited.get("/Users", token="sjscim_bad", headers={"X-Forwarded-For": f"198.51.100.{n}"})
    api.assert_error(limited.get("/Users", headers={"X-Forwarded-For": "198.51.100.99"}), 429)


# --- domain, settings and schema ----------------------------------------------------------------


def test_rate_limit_record_counts_and_prunes(store) -> None:
    assert [ratelimit.record("address", "192.0.2.1", WINDOW) for _ in range(3)] == [1, 2, 3]
    ratelimit.record("token", "abc", WINDOW)
    assert ratelimit.record("address", "192.0.2.1", WINDOW + 60) == 1
    assert _rows() == [("address", "192.0.2.1", WINDOW + 60, 1)]


def test_rate_limit_record_truncates_long_subjects(store) -> None:
    assert ratelimit.record("address", "x" * 500, WINDOW) == 1
    assert ratelimit.record("address", "x" * 400, WINDOW) == 2  # the same first 64 characters
    assert len(_rows()[0][1]) == ratelimit.MAX_SUBJECT


@pytest.mark.parametrize(("now_", "expected"), [(WINDOW, 60), (WINDOW + 0.2, 60), (WINDOW + 59.5, 1), (WINDOW + 59.99, 1)])
def test_rate_limit_retry_after_is_seconds_to_window_end(now_, expected) -> None:
    assert ratelimit.retry_after(ratelimit.window_start(now_), now_) == expected


def test_rate_limit_settings_load_from_file_and_environment(tmp_path) -> None:
    path = tmp_path / "scim.toml"
    path.write_text("[security]\nauth_failures_per_minute = 7\ntrusted_proxies = 1\n")
    env = {"SKILLJAR_SCIM_SECURITY_TOKEN_FAILURES_PER_MINUTE": "0"}
    security = config.load(path, env=env).security
    assert (security.auth_failures_per_minute, security.token_failures_per_minute, security.trusted_proxies) == (7, 0, 1)
    assert ratelimit.Policy.from_settings(security) == ratelimit.Policy(address_limit=7, token_limit=0)
    defaults = config.Settings().security
    assert (defaults.auth_failures_per_minute, defaults.token_failures_per_minute, defaults.trusted_proxies) == (30, 30, 0)


def test_rate_limit_migrates_a_version_1_database(settings, monkeypatch) -> None:
    from skilljar_scim.base import keyfile

    keyfile.create(settings.key_path)
    keys = keyfile.load(settings.key_path)
    current = store_db.SCHEMA_VERSION
    monkeypatch.setattr(store_db, "SCHEMA_VERSION", 1)
    database = store_db.open_database(settings.database.url, create=True)
    made = tokens.generate(keys, "From v1", None)
    assert not database.table_exists("auth_failure") and store_db.schema_version(database) == 1
    database.close()
    monkeypatch.setattr(store_db, "SCHEMA_VERSION", current)
    database = store_db.open_database(settings.database.url)
    assert store_db.schema_version(database) == current >= 2 and database.table_exists("auth_failure")
    assert tokens.authenticate(keys, made.value).id == made.token.id  # data kept
    assert ratelimit.record("address", "192.0.2.1", WINDOW) == 1
    database.close()
