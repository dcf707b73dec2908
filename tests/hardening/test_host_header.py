"""Resource URLs never come from the client's Host header (issue 11 rule 7; RFC 7644 §3.1 Location)."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from skilljar_scim.scim import schemas as s
from skilljar_scim.web import http
from skilljar_scim.web.app import create_app

FORGED = {"Host": "evil.example:666", "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"}


def _app(api, settings, **server):
    changed = dataclasses.replace(settings, server=dataclasses.replace(settings.server, **server))
    application = create_app(changed)
    application.config["TESTING"] = False
    return type(api)(application, api.token)


def _urls(api, response) -> list[str]:
    """Every URL a create answer carries: Location, meta.location, and the $refs of a group's members."""
    body = response.get_json()
    found = [response.headers.get("Location"), body["meta"]["location"]]
    return found + [member["$ref"] for member in body.get("members", [])]


def test_host_forged_host_header_never_reaches_a_url(api) -> None:
    user = api.post("/Users", {"schemas": [s.USER], "userName": "a@example.com"}, headers=FORGED)
    group = api.post("/Groups", {"schemas": [s.GROUP], "displayName": "G", "members": [{"value": user.get_json()["id"]}]},
                     headers=FORGED)
    config = api.get("/ServiceProviderConfig", headers=FORGED).get_json()
    for url in _urls(api, user) + _urls(api, group) + [config["meta"]["location"]]:
        assert url.startswith("http://127.0.0.1:8080/scim/v2/"), url  # server.host and server.port
        assert "evil" not in url


def test_host_public_base_url_wins(api, settings) -> None:
    public = _app(api, settings, public_base_url="https://scim.example.com/")
    user = public.post("/Users", {"schemas": [s.USER], "userName": "a@example.com"}, headers=FORGED)
    assert all(url.startswith("https://scim.example.com/scim/v2/Users/") for url in _urls(public, user))


@pytest.mark.parametrize(("host", "port", "expected"), [
    ("scim.internal", 443, "http://scim.internal:443"),
    ("2001:db8::5", 8080, "http://[2001:db8::5]:8080"),
    ("127.0.0.1", 80, "http://127.0.0.1"),
])
def test_host_configured_address_names_the_server(api, settings, host, port, expected) -> None:
    named = _app(api, settings, host=host, port=port)
    user = named.post("/Users", {"schemas": [s.USER], "userName": "a@example.com"}, headers=FORGED)
    assert user.headers["Location"].startswith(expected + "/scim/v2/Users/")


@pytest.mark.parametrize("wildcard", ["0.0.0.0", "::", ""])
def test_host_wildcard_bind_uses_the_local_address_the_connection_reached(api, settings, wildcard, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="skilljar_scim.web"):
        everywhere = _app(api, settings, host=wildcard)
    assert "public_base_url is not set" in caplog.text
    response = everywhere.client.post(
        "/scim/v2/Users", json={"schemas": [s.USER], "userName": "a@example.com"},
        headers={"Authorization": f"Bearer {api.token}", **FORGED},
        environ_overrides={"SERVER_NAME": "10.1.2.3", "SERVER_PORT": "8080"},  # what `scim serve` takes from the socket
    )
    assert response.headers["Location"].startswith("http://10.1.2.3:8080/scim/v2/Users/")


def test_host_behind_a_proxy_without_public_base_url_warns(api, settings, caplog) -> None:
    security = dataclasses.replace(settings.security, trusted_proxies=1)
    with caplog.at_level(logging.WARNING, logger="skilljar_scim.web"):
        create_app(dataclasses.replace(settings, security=security))
    assert "public_base_url is not set but trusted_proxies is" in caplog.text


@pytest.mark.parametrize(("host", "wildcard"), [("0.0.0.0", True), ("[::]", True), ("::", True), ("", True),
                                                ("127.0.0.1", False), ("::1", False), ("scim.internal", False)])
def test_host_wildcard_detection(host, wildcard) -> None:
    assert http.is_wildcard(host) is wildcard


@pytest.mark.e2e
def test_host_forged_host_header_on_scim_serve(make_server) -> None:
    server = make_server(workers=1, threads=2)
    token = server.token()["token"]
    status, headers, body = server.request("POST", "/Users", token, {"schemas": [s.USER], "userName": "a@example.com"},
                                           headers=FORGED)
    assert status == 201, body
    expected = f"http://127.0.0.1:{server.port}/scim/v2/Users/{body['id']}"
    assert headers["Location"] == body["meta"]["location"] == expected
