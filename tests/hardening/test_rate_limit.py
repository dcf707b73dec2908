"""Rate limiting of failed authentication (RFC 6585 §4): only failures, per address and per token, bounded."""

from __future__ import annotations

import dataclasses
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime

import pytest

from skilljar_scim.base import config
from skilljar_scim.base.errors import RateLimited, Unauthorized
from skilljar_scim.domain import ratelimit, tokens
from skilljar_scim.store import models
from skilljar_scim.store.models import Token
from skilljar_scim.web.app import create_app
from skilljar_scim.web.auth import TOKEN_NAME_KEY


class Clock:
    """A controlled monotonic clock: tests move it by hand, never wait."""

    def __init__(self, value: float = 1000.0):
        self.value = value

    def __call__(self) -> float:
        return self.value


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _limited(api, settings, clock: Clock, address_limit: int = 3, token_limit: int = 2, trusted_proxies: int = 0,
             table_size: int = 10_000):
    """Return an Api on an app with small failure limits and a controlled clock."""
    security = dataclasses.replace(settings.security, auth_failures_per_minute=address_limit,
                                   token_failures_per_minute=token_limit, trusted_proxies=trusted_proxies,
                                   auth_failure_table_size=table_size)
    application = create_app(dataclasses.replace(settings, security=security), clock=clock)
    application.config["TESTING"] = False
    return type(api)(application, api.token)


def _from(api, address: str):
    """Return an Api on the same app whose requests come from `address`."""
    clone = type(api)(api.app, api.token)
    clone.client.environ_base["REMOTE_ADDR"] = address
    return clone


def _limiter(api) -> ratelimit.Limiter:
    return api.app.config["SKILLJAR_LIMITER"]


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


# --- per client address ---------------------------------------------------------------------


def test_rate_limit_address_over_limit_is_429_with_retry_after_and_scim_body(api, settings, clock) -> None:
    limited = _limited(api, settings, clock, address_limit=3)
    for _ in range(3):
        api.assert_error(limited.get("/Users", token="sjscim_bad"), 401)
    response = limited.get("/Users", token="sjscim_bad")
    body = api.assert_error(response, 429)
    assert response.headers["Retry-After"] == "20"  # one more failure fits every 60/3 seconds
    assert "WWW-Authenticate" not in response.headers
    assert "too many failed authentication" in body["detail"]


@pytest.mark.parametrize("kind", ["garbage", "forged", "unknown id", "wrong secret", "no header", "basic"])
def test_rate_limit_every_failure_counts_against_the_address(api, settings, keys, clock, kind) -> None:
    limited = _limited(api, settings, clock, address_limit=2)
    values = _bad_values(keys, api.token)
    for _ in range(2):
        if kind == "no header":
            response = limited.client.get("/scim/v2/Users")
        elif kind == "basic":
            response = limited.client.get("/scim/v2/Users", headers={"Authorization": "Basic dTpw"})
        else:
            response = limited.get("/Users", token=values[kind])
        api.assert_error(response, 401)
    api.assert_error(limited.get("/Users", token="sjscim_bad"), 429)
    assert list(_limiter(limited)._due) == [("address", "127.0.0.1")]


def test_rate_limit_valid_token_is_never_refused_after_a_burst_from_its_address(api, settings, clock) -> None:
    limited = _limited(api, settings, clock, address_limit=3)
    statuses = [limited.get("/Users", token="sjscim_bad").status_code for _ in range(300)]
    assert statuses.count(401) == 3 and statuses.count(429) == 297
    for _ in range(5):
        assert limited.get("/Users").status_code == 200
    api.assert_error(limited.get("/Users", token="sjscim_bad"), 429)  # the address is still blocked for failures


def test_rate_limit_valid_token_is_never_counted_and_costs_no_query(api, settings, clock, monkeypatch) -> None:
    limited = _limited(api, settings, clock, address_limit=1)
    limited.get("/Users", token="sjscim_bad")

    def must_not_run(*_args, **_kwargs):
        raise AssertionError("a genuine, active token was counted as a failure")

    monkeypatch.setattr(ratelimit.Limiter, "fail", must_not_run)
    with _queries() as seen:
        assert limited.get("/Users").status_code == 200
    assert not any("auth_failure" in sql for sql in seen)


def test_rate_limit_valid_token_never_reads_the_client_address(api, settings, clock, monkeypatch) -> None:
    """The address (X-Forwarded-For parsing) is worked out only when a failure counts against it."""
    limited = _limited(api, settings, clock, address_limit=1, trusted_proxies=1)
    asked: list[str] = []
    original = ratelimit.client_address

    def recording(*args):
        asked.append(original(*args))
        return asked[-1]

    monkeypatch.setattr(ratelimit, "client_address", recording)
    assert limited.get("/Users", headers={"X-Forwarded-For": "192.0.2.7"}).status_code == 200
    assert asked == []
    api.assert_error(limited.get("/Users", token="sjscim_bad", headers={"X-Forwarded-For": "192.0.2.7"}), 401)
    assert asked == ["192.0.2.7"]


def test_rate_limit_refused_requests_do_not_extend_the_block(api, settings, clock) -> None:
    limited = _limited(api, settings, clock, address_limit=3)  # one failure per 20 s once the 3 are spent
    for _ in range(3):
        api.assert_error(limited.get("/Users", token="sjscim_bad"), 401)
    for second in range(20):  # hammering while blocked
        clock.value = 1000.0 + second + 0.5
        for _ in range(10):
            api.assert_error(limited.get("/Users", token="sjscim_bad"), 429)
    clock.value = 1020.0
    api.assert_error(limited.get("/Users", token="sjscim_bad"), 401)  # the block ended on time
    api.assert_error(limited.get("/Users", token="sjscim_bad"), 429)
    clock.value = 1020.0 + 60
    for _ in range(3):  # a minute without failures refills the bucket
        api.assert_error(limited.get("/Users", token="sjscim_bad"), 401)


@pytest.mark.parametrize(("per_minute", "minutes"), [(31, 10), (60, 10), (600, 2)])
def test_rate_limit_a_trickle_cannot_keep_a_block_going(api, settings, clock, per_minute, minutes) -> None:
    """The issue's case: a steady trickle over the limit; a real IdP is never refused, and no block outlasts 60/limit s."""
    limited = _limited(api, settings, clock, address_limit=30)
    last_401, longest_block = clock.value, 0.0
    for n in range(per_minute * minutes):
        clock.value = 1000.0 + n * 60 / per_minute
        status = limited.get("/Users", token="sjscim_bad").status_code
        assert status in (401, 429)
        if status == 401:
            longest_block, last_401 = max(longest_block, clock.value - last_401), clock.value
        if n % 7 == 0:
            assert limited.get("/Users").status_code == 200
    assert longest_block <= 2.0 + 60 / per_minute + 1e-6  # 60/30 s between failures let through, at worst
    clock.value += 60
    assert limited.get("/Users", token="sjscim_bad").status_code == 401  # stopped: forgotten within a minute


def test_rate_limit_trickle_at_the_limit_is_never_refused(api, settings, clock) -> None:
    limited = _limited(api, settings, clock, address_limit=30)
    for n in range(300):
        clock.value = 1000.0 + n * 2.0
        api.assert_error(limited.get("/Users", token="sjscim_bad"), 401)


def test_rate_limit_other_address_is_unaffected(api, settings, clock) -> None:
    limited = _limited(api, settings, clock, address_limit=2)
    attacker, idp = _from(limited, "203.0.113.7"), _from(limited, "198.51.100.20")
    for _ in range(3):
        attacker.get("/Users", token="sjscim_bad")
    api.assert_error(attacker.get("/Users", token="sjscim_bad"), 429)
    assert attacker.get("/Users").status_code == 200
    assert idp.get("/Users").status_code == 200
    api.assert_error(idp.get("/Users", token="sjscim_bad"), 401)


def test_rate_limit_successful_requests_are_not_tracked(api, settings, clock) -> None:
    limited = _limited(api, settings, clock, address_limit=1)
    for _ in range(5):
        assert limited.get("/Users").status_code == 200
    assert len(_limiter(limited)) == 0


def test_rate_limit_zero_disables_both_limits(api, settings, keys, clock) -> None:
    limited = _limited(api, settings, clock, address_limit=0, token_limit=0)
    revoked = tokens.generate(keys, "Old", None)
    tokens.revoke(revoked.token)
    for _ in range(50):
        api.assert_error(limited.get("/Users", token="sjscim_bad"), 401)
        api.assert_error(limited.get("/Users", token=revoked.value), 401)
    assert len(_limiter(limited)) == 0


# --- bounded memory -----------------------------------------------------------------------------


def test_rate_limit_table_is_bounded_under_a_flood_of_addresses(api, settings, clock) -> None:
    limited = _limited(api, settings, clock, address_limit=2, table_size=50)
    statuses = [_from(limited, f"10.0.{n // 250}.{n % 250}").get("/Users", token="sjscim_bad").status_code
                for n in range(500)]
    assert len(_limiter(limited)) == 50
    assert statuses[:50] == [401] * 50 and set(statuses[50:]) == {429}  # untracked newcomers: 429, not counted
    assert _from(limited, "192.0.2.99").get("/Users").status_code == 200  # a genuine token: never refused
    clock.value += 60  # every bucket refilled: they make room as new failures arrive
    api.assert_error(_from(limited, "192.0.2.1").get("/Users", token="sjscim_bad"), 401)
    assert list(_limiter(limited)._due) == [("address", "192.0.2.1")]


def test_rate_limit_limiter_refills_and_bounds_without_an_app() -> None:
    clock = Clock(0.0)
    limiter = ratelimit.Limiter(ratelimit.Policy(address_limit=60, token_limit=0, max_clients=3), clock)
    for n in range(60):
        with pytest.raises(Unauthorized):
            limiter.fail("address", "a", Unauthorized("no"))
    with pytest.raises(RateLimited) as refused:
        limiter.fail("address", "a", Unauthorized("no"))
    assert refused.value.retry_after == 1
    clock.value = 1.0
    with pytest.raises(Unauthorized):
        limiter.fail("address", "a", Unauthorized("no"))
    for subject in ("b", "c"):
        with pytest.raises(Unauthorized):
            limiter.fail("address", subject, Unauthorized("no"))
    with pytest.raises(RateLimited):
        limiter.fail("address", "d", Unauthorized("no"))  # full: three subjects failed within a minute
    assert len(limiter) == 3
    with pytest.raises(Unauthorized):
        limiter.fail("token", "t", Unauthorized("no"))  # token_limit 0: not limited, not tracked
    assert len(limiter) == 3


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
def test_rate_limit_dead_token_counts_against_the_token_from_any_address(api, settings, keys, clock, state) -> None:
    limited = _limited(api, settings, clock, address_limit=3, token_limit=2)
    dead = _dead_token(keys, state)
    first, second = _from(limited, "192.0.2.1"), _from(limited, "192.0.2.2")
    body = api.assert_error(first.get("/Users", token=dead.value), 401)
    assert state in body["detail"]
    api.assert_error(second.get("/Users", token=dead.value), 401)
    response = first.get("/Users", token=dead.value)
    api.assert_error(response, 429)
    assert response.headers["Retry-After"] == "30"
    api.assert_error(_from(limited, "192.0.2.3").get("/Users", token=dead.value), 429)
    assert first.get("/Users").status_code == 200  # the address itself is not blocked
    assert list(_limiter(limited)._due) == [("token", dead.token.id)]


def test_rate_limit_blocked_token_is_refused_before_lookup(api, settings, keys, clock) -> None:
    limited = _limited(api, settings, clock, token_limit=1)
    dead = _dead_token(keys, "revoked")
    for _ in range(2):
        limited.get("/Users", token=dead.value)
    refused = Token.get_by_id(dead.token.id).refused_count
    with _queries() as seen:
        api.assert_error(limited.get("/Users", token=dead.value), 429)
    assert seen == []  # no token lookup, no write
    assert Token.get_by_id(dead.token.id).refused_count == refused


def test_rate_limit_a_forged_token_cannot_borrow_a_blocked_token_id(api, settings, keys, clock) -> None:
    limited = _limited(api, settings, clock, address_limit=5, token_limit=1)
    dead = _dead_token(keys, "revoked")
    for _ in range(2):
        limited.get("/Users", token=dead.value)
    forged = tokens.PREFIX + f"{dead.token.id}.{'3' * 64}.badsignature"
    api.assert_error(limited.get("/Users", token=forged), 401)  # not 429: its id is unverified


# --- the access log names a refused genuine token (issue 13) --------------------------------------


def _logged_name(api, token: str | None) -> str | None:
    """Send one request through the WSGI app; return the token name it left for the access log."""
    seen: list[dict] = []
    inner = api.app.wsgi_app

    def recording(environ, start_response):
        seen.append(environ)
        return inner(environ, start_response)

    api.app.wsgi_app = recording
    try:
        api.get("/Users", token=token) if token else api.client.get("/scim/v2/Users")
    finally:
        api.app.wsgi_app = inner
    return seen[0].get(TOKEN_NAME_KEY)


@pytest.mark.parametrize("state", ["revoked", "expired"])
def test_rate_limit_access_log_names_a_refused_genuine_token(api, settings, keys, clock, state) -> None:
    limited = _limited(api, settings, clock, token_limit=1)
    dead = _dead_token(keys, state)
    assert _logged_name(limited, dead.value) == dead.token.name  # 401
    assert _logged_name(limited, dead.value) == dead.token.name  # 429, refused before lookup
    assert _logged_name(limited, api.token) == "Test IdP"
    assert _logged_name(limited, "sjscim_bad") is None  # unknown: nothing to name
    assert _logged_name(limited, _bad_values(keys, api.token)["wrong secret"]) is None


# --- threads of one process ---------------------------------------------------------------------


def test_rate_limit_counting_is_atomic_across_threads(api, settings, clock) -> None:
    limited = _limited(api, settings, clock, address_limit=5)
    barrier = threading.Barrier(8)

    def attack(_n: int) -> list[int]:
        client = type(limited)(limited.app, limited.token)
        barrier.wait()
        return [client.get("/Users", token="sjscim_bad").status_code for _ in range(5)]

    with ThreadPoolExecutor(8) as pool:
        statuses = [s for batch in pool.map(attack, range(8)) for s in batch]
    assert statuses.count(401) == 5  # never more 401s than the limit, however requests race
    assert statuses.count(429) == 35


def test_rate_limit_each_app_counts_for_itself(api, settings, clock) -> None:
    first, second = _limited(api, settings, clock, address_limit=2), _limited(api, settings, clock, address_limit=2)
    for _ in range(2):
        api.assert_error(first.get("/Users", token="sjscim_bad"), 401)
    api.assert_error(first.get("/Users", token="sjscim_bad"), 429)
    api.assert_error(second.get("/Users", token="sjscim_bad"), 401)  # another process: its own buckets


@pytest.mark.e2e
def test_rate_limit_burst_of_bad_tokens_then_the_real_token_works_on_scim_serve(make_server, monkeypatch) -> None:
    monkeypatch.setenv("SKILLJAR_SCIM_SECURITY_AUTH_FAILURES_PER_MINUTE", "1")
    monkeypatch.setenv("SKILLJAR_SCIM_SECURITY_TOKEN_FAILURES_PER_MINUTE", "1")
    server = make_server(workers=2, threads=4)
    good = server.token("okta")["token"]
    revoked = server.token("okta-retired")
    assert server.cli("token", "revoke", revoked["id"], "--yes").returncode == 0
    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(lambda _: server.request("GET", "/Users", "sjscim_bad"), range(60)))
    statuses = [status for status, _, _ in results]
    assert set(statuses) == {401, 429} and statuses.count(429) >= 40, statuses
    refused = next(body for status, _, body in results if status == 429)
    assert refused["status"] == "429" and refused["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    for _ in range(10):  # every worker: a genuine token is never refused
        status, _, body = server.request("GET", "/Users", good)
        assert status == 200, body
    for _ in range(4):
        status, _, _ = server.request("GET", "/Users", revoked["token"])
        assert status in (401, 429)
    server.stop()
    assert "okta-retired" in server.log.read_text()  # the access log names the refused genuine token


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
        ("10.0.0.2", ["198.51.100.9:5678"], 1, "198.51.100.9"),  # a port is dropped
        ("10.0.0.2", ["[2001:db8::1]:443"], 1, "2001:db8::/64"),
        ("10.0.0.2", ["[::1]:80"], 1, "::/64"),
        ("10.0.0.2", ['"198.51.100.9:80"'], 1, "198.51.100.9"),
        ("10.0.0.2", ["198.51.100.9:http"], 1, "10.0.0.2"),  # not a port: not an address
        ("2001:db8:1:2:3:4:5:6", [], 0, "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", [], 0, "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.1", [], 0, "192.0.2.1"),
        ("10.0.0.2", ["[2001:db8::1]"], 1, "2001:db8::/64"),
        (None, [], 0, "unknown"),
    ],
)
def test_rate_limit_client_address(remote, forwarded, trusted, expected) -> None:
    assert ratelimit.client_address(remote, forwarded, trusted) == expected


def test_rate_limit_trusted_proxy_header_separates_clients(api, settings, clock) -> None:
    limited = _limited(api, settings, clock, address_limit=1, trusted_proxies=1)
    for _ in range(2):
        limited.get("/Users", token="sjscim_bad", headers={"X-Forwarded-For": "198.51.100.1:40000"})
    api.assert_error(limited.get("/Users", token="sjscim_bad", headers={"X-Forwarded-For": "198.51.100.1:40001"}), 429)
    api.assert_error(limited.get("/Users", token="sjscim_bad", headers={"X-Forwarded-For": "198.51.100.2"}), 401)


def test_rate_limit_forwarded_for_is_ignored_by_default(api, settings, clock) -> None:
    limited = _limited(api, settings, clock, address_limit=2)
    for n in range(3):
        limited.get("/Users", token="sjscim_bad", headers={"X-Forwarded-For": f"198.51.100.{n}"})
    api.assert_error(limited.get("/Users", token="sjscim_bad", headers={"X-Forwarded-For": "198.51.100.99"}), 429)


# --- settings ----------------------------------------------------------------


def test_rate_limit_settings_load_from_file_and_environment(tmp_path) -> None:
    path = tmp_path / "scim.toml"
    path.write_text("[security]\nauth_failures_per_minute = 7\ntrusted_proxies = 1\nauth_failure_table_size = 99\n")
    env = {"SKILLJAR_SCIM_SECURITY_TOKEN_FAILURES_PER_MINUTE": "0"}
    security = config.load(path, env=env).security
    assert (security.auth_failures_per_minute, security.token_failures_per_minute, security.trusted_proxies) == (7, 0, 1)
    assert ratelimit.Policy.from_settings(security) == ratelimit.Policy(address_limit=7, token_limit=0, max_clients=99)
    defaults = config.Settings().security
    assert (defaults.auth_failures_per_minute, defaults.token_failures_per_minute, defaults.trusted_proxies,
            defaults.auth_failure_table_size) == (30, 30, 0, 10_000)
