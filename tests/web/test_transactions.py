"""Views declare their transaction; a write's body is parsed before the write lock is taken (issue 11 rule 2)."""

from __future__ import annotations

import contextlib

import pytest
from flask import Flask, g

from skilljar_scim.store import db as store_db
from skilljar_scim.web import app as web_app
from skilljar_scim.web import http

USER = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "lock@example.com"}


@pytest.fixture
def locks(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Record, each time a write transaction begins, whether the request body was parsed already."""
    seen: list[bool] = []
    real = store_db.write_transaction

    @contextlib.contextmanager
    def recording():
        seen.append("scim_body" in g)
        with real():
            yield

    monkeypatch.setattr(store_db, "write_transaction", recording)
    return seen


def test_write_body_parsed_before_write_lock(api, locks: list[bool]) -> None:
    created = api.post("/Users", USER)
    assert created.status_code == 201
    patched = api.ops(f"/Users/{created.get_json()['id']}", {"op": "replace", "path": "displayName", "value": "L"})
    assert patched.status_code == 200
    assert locks and all(locks)


@pytest.mark.parametrize("data", ['{"userName": ', "[1, 2", '{"a": 1, "a": 2}'])
def test_write_malformed_body_refused_without_taking_lock(api, locks: list[bool], data: str) -> None:
    api.assert_error(api.request("POST", "/Users", data=data), 400, "invalidSyntax")
    assert locks == []


def test_read_views_take_no_write_lock(api, locks: list[bool]) -> None:
    api.create_user()
    locks.clear()
    for path in ("/Users", "/Groups", "/ServiceProviderConfig", "/Schemas", "/ResourceTypes"):
        assert api.get(path).status_code == 200
    assert api.post("/Users/.search", {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]}).status_code == 200
    assert locks == []


def test_app_every_view_declares_its_transaction(app) -> None:
    kinds = {name: view.scim_transaction for name, view in app.view_functions.items() if name != "static"}
    assert kinds["scim.create_user"] == kinds["scim.patch_group"] == http.WRITE
    assert kinds["scim.search_users"] == kinds["healthz"] == http.READ
    assert kinds["scim.bulk"] == http.EACH_OPERATION


def test_app_refuses_view_without_declaration() -> None:
    flask = Flask("undeclared")
    flask.add_url_rule("/x", "x", lambda: "x")
    with pytest.raises(RuntimeError, match="x"):
        web_app._check_declared(flask)
