"""Errors are SCIM error bodies (RFC 7644 §3.12); authentication failures are 401 (RFC 6750, RFC 7644 §2)."""

from __future__ import annotations

import base64
import logging
from datetime import datetime, timedelta

import pytest

from skilljar_scim.base import clock
from skilljar_scim.domain import tokens, users
from skilljar_scim.base.errors import DatabaseError
from skilljar_scim.store.models import Token

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
MISSING = "00000000-0000-0000-0000-000000000000"
SECRET = "s3cr3t-internal-detail"


def _raw(api, method: str, path: str, data, content_type: str = "application/scim+json"):
    return api.request(method, path, data=data, content_type=content_type)


def _tampered(value: str, index: int) -> str:
    """Change the character at `index` to another one of the same alphabet."""
    swapped = "A" if value[index] != "A" else "B"
    return value[:index] + swapped + value[index + 1:]


# --- 404 and 405 ------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/Nope", "/Users/a/b", "/Groups/a/b/c", "/ResourceTypes/User/x"])
def test_errors_unknown_route_is_404(api, path) -> None:
    body = api.assert_error(api.get(path), 404)
    assert "scimType" not in body


def test_errors_unknown_route_outside_base_path_is_404(api) -> None:
    api.assert_error(api.client.get("/nope"), 404)


WRITES = {
    "GET": None, "DELETE": None, "PUT": {"userName": "x", "displayName": "x"},
    "PATCH": {"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "displayName", "value": "x"}]},
}


@pytest.mark.parametrize("method", WRITES)
@pytest.mark.parametrize("endpoint", ["/Users", "/Groups"])
def test_errors_unknown_id_is_404(api, method, endpoint) -> None:
    body = api.assert_error(api.request(method, f"{endpoint}/{MISSING}", WRITES[method]), 404)
    assert MISSING in body["detail"]


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("DELETE", "/Users", "POST"), ("PUT", "/Groups", "POST"), ("PATCH", "/Users", "GET"),
    ("POST", "/Users/abc", "PATCH"), ("GET", "/Bulk", "POST"), ("GET", "/.search", "POST"),
])
def test_errors_wrong_method_is_405_with_allow(api, method, path, allowed) -> None:
    response = api.request(method, path)
    api.assert_error(response, 405)
    assert allowed in response.headers["Allow"]


# --- 409, 412 (413: tests/hardening/test_limits.py) ----------------------------------------------------------------------


def test_errors_duplicate_user_name_is_409_uniqueness(api) -> None:
    api.create_user("dup@example.com")
    api.assert_error(api.post("/Users", {"userName": "DUP@example.com"}), 409, "uniqueness")


def test_errors_duplicate_group_name_is_409_uniqueness(api) -> None:
    api.create_group("Admins")
    api.assert_error(api.post("/Groups", {"displayName": "admins"}), 409, "uniqueness")


def test_errors_if_match_mismatch_is_412(api) -> None:
    user = api.create_user()
    response = api.put(f"/Users/{user['id']}", {"userName": "x@example.com"}, headers={"If-Match": 'W/"999"'})
    api.assert_error(response, 412)


# --- 400 invalidSyntax ------------------------------------------------------------------


BAD_BODIES = {
    "malformed": '{"userName": ',
    "trailing garbage": '{"userName": "a"} x',
    "empty": "",
    "whitespace": "  \n ",
    "array": '[{"userName": "a"}]',
    "string": '"userName"',
    "number": "42",
    "null": "null",
    "duplicate keys": '{"userName": "a", "userName": "b"}',
    "nested duplicate keys": '{"userName": "a", "name": {"givenName": "a", "givenName": "b"}}',
    "NaN": '{"userName": "a", "count": NaN}',
    "Infinity": '{"userName": "a", "count": -Infinity}',
    "not utf-8": b'{"userName": "\xff\xfe"}',
    "too deep": "[" * 100_000,
}


@pytest.mark.parametrize("data", BAD_BODIES.values(), ids=BAD_BODIES.keys())
@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/Users"), ("PUT", "/Users/{user}"), ("PATCH", "/Users/{user}"), ("POST", "/Groups"),
    ("POST", "/Users/.search"), ("POST", "/.search"), ("POST", "/Bulk"),
])
def test_errors_bad_json_body_is_400_invalid_syntax(api, method, path, data) -> None:
    user = api.create_user()
    response = _raw(api, method, path.format(user=user["id"]), data)
    api.assert_error(response, 400, "invalidSyntax")
    assert api.get(f"/Users/{user['id']}").get_json()["meta"]["version"] == user["meta"]["version"]


def test_errors_duplicate_keys_detail_names_the_key(api) -> None:
    body = api.assert_error(_raw(api, "POST", "/Users", '{"userName": "a", "userName": "b"}'), 400, "invalidSyntax")
    assert "userName" in body["detail"]


# --- 500: generic body, traceback in the log only ---------------------------------------


@pytest.fixture
def logs(caplog, monkeypatch):
    """Capture the service's log records even when its handler stops propagation."""
    monkeypatch.setattr(logging.getLogger("skilljar_scim"), "propagate", True)
    caplog.set_level(logging.ERROR, logger="skilljar_scim")
    return caplog


def _explode(*_args, **_kwargs):
    raise RuntimeError(SECRET)


def test_errors_unexpected_exception_is_generic_500(api, logs, monkeypatch) -> None:
    user = api.create_user()
    monkeypatch.setattr(users, "get", _explode)
    response = api.get(f"/Users/{user['id']}")
    body = api.assert_error(response, 500)
    text = response.get_data(as_text=True)
    assert SECRET not in text and "Traceback" not in text and "RuntimeError" not in text
    assert body["detail"] == "internal server error"
    assert any(r.exc_info and SECRET in str(r.exc_info[1]) for r in logs.records)
    assert "Traceback" in logs.text and SECRET in logs.text


def test_errors_internal_domain_error_is_generic_500(api, logs, monkeypatch) -> None:
    def broken(*_args, **_kwargs):
        raise DatabaseError(f"cannot use database /srv/{SECRET}.db")

    monkeypatch.setattr(users, "get", broken)
    response = api.get(f"/Users/{MISSING}")
    api.assert_error(response, 500)
    assert SECRET not in response.get_data(as_text=True)
    assert SECRET in logs.text


# --- 401: authentication (RFC 6750 §3, RFC 7644 §2) -------------------------------------


def _assert_unauthorized(api, response) -> dict:
    body = api.assert_error(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    assert 'realm="' in response.headers["WWW-Authenticate"]
    return body


@pytest.mark.parametrize("header", [
    None, "", "Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Bearer    ", "Token abc", "Bearer abc def",
    "Bearer not-a-token", "Bearer sjscim_", "Bearer sjscim_garbage.garbage", "Bearer sjscim_a.b.c",
])
def test_auth_bad_header_is_401(api, header) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = api.client.get(api.base + "/Users", headers=headers)
    _assert_unauthorized(api, response)


@pytest.mark.parametrize("index", [len(tokens.PREFIX), len(tokens.PREFIX) + 3, -1, -10])
def test_auth_tampered_token_is_401(api, index) -> None:
    _assert_unauthorized(api, api.get("/Users", token=_tampered(api.token, index)))


def test_auth_presented_bad_token_says_invalid_token(api) -> None:
    response = api.get("/Users", token=_tampered(api.token, -1))
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_auth_missing_token_has_no_error_code(api) -> None:
    response = api.client.get(api.base + "/Users")
    assert "error=" not in _assert_unauthorized(api, response) and "error=" not in response.headers["WWW-Authenticate"]


def test_auth_unknown_token_is_401(api, keys) -> None:
    made = tokens.generate(keys, "Gone", None)
    Token.delete().where(Token.id == made.token.id).execute()
    _assert_unauthorized(api, api.get("/Users", token=made.value))


def test_auth_signed_value_with_a_wrong_secret_is_401(api, keys) -> None:
    """A value the server's key signed, naming a real token id with another secret, is no token."""
    token_id = api.token[len(tokens.PREFIX):].partition(".")[0]
    forged = tokens.PREFIX + tokens._signer(keys).sign(f"{token_id}.{'0' * 64}").decode("ascii")
    body = _assert_unauthorized(api, api.get("/Users", token=forged))
    assert "not valid" in body["detail"]
    _assert_unauthorized(api, api.post("/Users", {"userName": "forged@example.com"}, token=forged))
    assert api.get("/Users").get_json()["totalResults"] == 0


def test_auth_token_signed_with_another_key_is_401(api, keys) -> None:
    made = tokens.generate(["another-secret-key-entirely"], "Other key", None)
    _assert_unauthorized(api, api.get("/Users", token=made.value))


def test_auth_expired_token_is_401(api, keys) -> None:
    then = clock.utcnow() - timedelta(days=10)
    made = tokens.generate(keys, "Expired", then + timedelta(days=1), now=then)
    body = _assert_unauthorized(api, api.get("/Users", token=made.value))
    assert "expired" in body["detail"]


def test_auth_revocation_applies_to_the_next_request(api, keys) -> None:
    made = tokens.generate(keys, "Soon revoked", None)
    assert api.get("/Users", token=made.value).status_code == 200
    tokens.revoke(made.token)
    body = _assert_unauthorized(api, api.get("/Users", token=made.value))
    assert "revoked" in body["detail"]
    assert api.get("/Users").status_code == 200


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_auth_scheme_is_case_insensitive(api, scheme) -> None:
    response = api.client.get(api.base + "/Users", headers={"Authorization": f"{scheme} {api.token}"})
    assert response.status_code == 200, response.get_json()


def test_auth_extra_whitespace_is_tolerated(api) -> None:
    response = api.client.get(api.base + "/Users", headers={"Authorization": f"  Bearer   {api.token}  "})
    assert response.status_code == 200, response.get_json()


@pytest.mark.parametrize("header", [
    "Token {t}", "Basic {t}", "Basic {basic}", "{t}", "Bearer:{t}", "Bearer: {t}", "Bearer\t{t}", "Bearer{t}",
    "Bearer {t} {t}", "Bearer {t},", "Bearer {t}, Basic x", "Bearer \"{t}\"", "Bearer {t}\u00a0", "Bearer  \t{t}",
    "MAC {t}", "Bearer-{t}", "Bearers {t}", "OAuth {t}",
])
def test_auth_valid_token_outside_the_bearer_grammar_is_401(api, header) -> None:
    """Only `Bearer 1*SP b64token` carries a token (RFC 6750 §2.1); a valid token in any other form is refused."""
    basic = base64.b64encode(f"{api.token}:".encode()).decode()
    response = api.client.get(api.base + "/Users", headers={"Authorization": header.format(t=api.token, basic=basic)})
    _assert_unauthorized(api, response)
    assert api.get("/Users").status_code == 200  # the token itself is fine


def test_auth_two_authorization_headers_are_401(api) -> None:
    """RFC 9110 §5.3: Authorization is not a list; two headers (joined by a comma) are ambiguous, even if one is right."""
    for second in (f"Bearer {api.token}", "Basic dXNlcjpwYXNz"):
        headers = [("Authorization", f"Bearer {api.token}"), ("Authorization", second)]
        _assert_unauthorized(api, api.client.get(api.base + "/Users", headers=headers))


def test_auth_bearer_token_may_follow_several_spaces_and_end_in_padding(api, keys) -> None:
    """RFC 6750 §2.1 / RFC 7235 §2.1: 1*SP after the scheme; b64token allows trailing '='."""
    response = api.client.get(api.base + "/Users", headers={"Authorization": f"bearer     {api.token}"})
    assert response.status_code == 200, response.get_json()
    _assert_unauthorized(api, api.client.get(api.base + "/Users", headers={"Authorization": f"Bearer {api.token}="}))


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/Users"), ("POST", "/Users"), ("GET", "/Groups"), ("POST", "/Bulk"), ("POST", "/.search"),
    ("GET", f"/Users/{MISSING}"), ("DELETE", f"/Groups/{MISSING}"),
])
def test_auth_every_endpoint_requires_a_token(api, method, path) -> None:
    response = api.client.open(api.base + path, method=method, json={"userName": "x"})
    _assert_unauthorized(api, response)


def test_auth_refused_write_changes_nothing(api) -> None:
    api.client.post(api.base + "/Users", json={"userName": "sneaky@example.com"})
    assert api.get("/Users").get_json()["totalResults"] == 0


def test_auth_healthz_needs_no_token(api) -> None:
    response = api.client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json(force=True) == {"status": "ok"}


def test_auth_token_last_used_is_recorded(api, keys) -> None:
    made = tokens.generate(keys, "Used", None)
    assert Token.get_by_id(made.token.id).last_used_at is None
    api.get("/Users", token=made.value)
    assert isinstance(Token.get_by_id(made.token.id).last_used_at, datetime)
