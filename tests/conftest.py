"""Shared fixtures: a fresh settings file, database and key per test, and the real CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from typer.testing import CliRunner

from skilljar_scim.base import config, keyfile
from skilljar_scim.cli.main import app as cli_app
from skilljar_scim.store import db as store_db


# Real `scim serve` processes (tests/e2e, tests/hardening): the Server class and make_server.
pytest_plugins = ["servers", "receivers"]

# Hypothesis: no verdict may depend on wall time, so no test has a deadline and the
# "too slow" health check is off everywhere. Under CI (CI set, as .ci/run runs) examples are
# derandomized: each test draws the same examples on every run, derived from the test itself,
# so a CI verdict never depends on a random seed; locally they vary, to keep finding new
# cases (a failure prints the example and a blob to replay it). Load another profile with
# `pytest --hypothesis-profile=ci`. Tests that set settings() inherit these values: this
# module is imported before any test module builds its settings.
hypothesis_settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True,
                                     suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.register_profile("dev", deadline=None, print_blob=True,
                                     suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.load_profile("ci" if os.environ.get("CI") else "dev")

# Set to a postgresql:// URL to run the whole suite on PostgreSQL (see .ci/run).
TEST_DATABASE_URL = os.environ.get("SKILLJAR_SCIM_TEST_DATABASE_URL")


def pytest_collection_modifyitems(config, items) -> None:
    """Tests marked `sqlite` (or `postgres`) check one store's specifics; the other store's run leaves them out."""
    other = "sqlite" if TEST_DATABASE_URL else "postgres"
    dropped = [item for item in items if item.get_closest_marker(other)]
    if dropped:
        items[:] = [item for item in items if not item.get_closest_marker(other)]
        config.hook.pytest_deselected(items=dropped)


def reset_postgres(url: str) -> None:
    """Drop every table so each test starts from an empty, freshly migrated database."""
    database = store_db._postgres(url)
    tables = database.get_tables()
    if tables:
        database.execute_sql("DROP TABLE " + ", ".join(f'"{t}"' for t in tables) + " CASCADE")
    database.close()


@pytest.fixture
def database_url() -> str:
    """The URL every test's settings use: SQLite in the test folder, or the PostgreSQL under test."""
    if TEST_DATABASE_URL:
        reset_postgres(TEST_DATABASE_URL)
        return TEST_DATABASE_URL
    return "sqlite:///scim.db"


@pytest.fixture
def config_file(tmp_path: Path, database_url: str) -> Path:
    """A settings file pointing at a database and key in the test's own folder."""
    path = tmp_path / "scim.toml"
    path.write_text(f'[database]\nurl = "{database_url}"\n\n[security]\nsecret_key_file = "scim.key"\n')
    return path


@pytest.fixture
def settings(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> config.Settings:
    for name in list(os.environ):
        if name.startswith(config.ENV_PREFIX):
            monkeypatch.delenv(name)
    return config.load(config_file)


@pytest.fixture
def store(settings: config.Settings):
    """An initialised, open database (with its key file), closed after the test."""
    keyfile.create(settings.key_path)
    database = store_db.open_database(settings.database.url, create=True)
    yield database
    database.close()


@pytest.fixture
def keys(settings: config.Settings, store) -> list[str]:
    return keyfile.load(settings.key_path)


class Cli:
    """Run the real root app with --config, like an admin in a terminal."""

    def __init__(self, config_file: Path):
        self.config_file = config_file
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None):
        return self.runner.invoke(cli_app, ["--config", str(self.config_file), *args], input=input)

    def json(self, *args: str):
        result = self(*args, "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)


@pytest.fixture
def cli(config_file: Path, settings) -> Cli:
    return Cli(config_file)


@pytest.fixture
def initialised(cli: Cli) -> Cli:
    result = cli("init")
    assert result.exit_code == 0, result.output
    return cli


def assert_no_content(response) -> None:
    """Assert a successful Group PATCH answer (RFC 7644 §3.5.2): 204, the new weak ETag, no body, no type."""
    assert response.status_code == 204, response.get_data(as_text=True)
    assert response.get_data() == b"" and "Content-Type" not in response.headers, response.headers
    assert response.headers["ETag"].startswith('W/"'), response.headers


class Api:
    """Flask test client for the real app, with a live bearer token and SCIM helpers."""

    def __init__(self, app, token: str, base: str = "/scim/v2"):
        self.app = app
        self.client = app.test_client()
        self.token = token
        self.base = base

    def request(self, method: str, path: str, json_body=None, *, token: str | None = None,
                headers: dict | None = None, data=None, content_type: str = "application/scim+json"):
        sent = {"Authorization": f"Bearer {token or self.token}", **(headers or {})}
        if json_body is not None:
            data = json.dumps(json_body)
        if data is not None:
            sent["Content-Type"] = content_type
        url = path if path.startswith("/healthz") else self.base + path
        return self.client.open(url, method=method, headers=sent, data=data)

    def get(self, path: str, **kw):
        return self.request("GET", path, **kw)

    def post(self, path: str, body=None, **kw):
        return self.request("POST", path, body, **kw)

    def put(self, path: str, body=None, **kw):
        return self.request("PUT", path, body, **kw)

    def patch(self, path: str, body=None, **kw):
        return self.request("PATCH", path, body, **kw)

    def delete(self, path: str, **kw):
        return self.request("DELETE", path, **kw)

    def ops(self, path: str, *operations, **kw):
        """PATCH with a PatchOp message made of `operations`."""
        body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": list(operations)}
        return self.patch(path, body, **kw)

    def group_ops(self, path: str, *operations, **kw):
        """PATCH a Group; assert 204 + ETag and no body (RFC 7644 §3.5.2); return a GET of the group after it.

        The GET's ETag and meta.version must equal the PATCH's ETag header.
        """
        response = self.ops(path, *operations, **kw)
        assert_no_content(response)
        after = self.get(path.split("?", 1)[0])
        assert after.status_code == 200, after.get_json()
        assert after.headers["ETag"] == after.get_json()["meta"]["version"] == response.headers["ETag"]
        return after

    def create_user(self, user_name: str = "alice@example.com", **attributes) -> dict:
        body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": user_name, **attributes}
        response = self.post("/Users", body)
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    def create_group(self, display_name: str = "Engineering", members: list[str] = (), **attributes) -> dict:
        body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": display_name,
                "members": [{"value": m} for m in members], **attributes}
        response = self.post("/Groups", body)
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    @staticmethod
    def assert_error(response, status: int, scim_type: str | None = None) -> dict:
        """Assert a SCIM error body (RFC 7644 §3.12) with this status and scimType."""
        body = response.get_json(force=True)
        assert response.status_code == status, body
        assert response.mimetype == "application/scim+json"
        assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
        assert body["status"] == str(status)
        assert body.get("scimType") == scim_type, body
        assert body.get("detail")
        return body


@pytest.fixture
def app(settings: config.Settings, store):
    from skilljar_scim.web.app import create_app

    store.close()
    application = create_app(settings)
    application.config["TESTING"] = False  # exercise the real error handlers
    return application


@pytest.fixture
def api(app, keys) -> Api:
    from skilljar_scim.domain import tokens

    made = tokens.generate(keys, "Test IdP", None)
    return Api(app, made.value)


@pytest.fixture
def sql(api, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every SQL statement (SQLite trace) run on the connections the app opens from now on."""
    from skilljar_scim.store import models

    seen: list[str] = []
    database = models.database.obj
    original = database._add_conn_hooks

    def traced(conn) -> None:
        original(conn)
        conn.set_trace_callback(seen.append)

    database.close()  # the next request opens a new, traced connection
    monkeypatch.setattr(database, "_add_conn_hooks", traced)
    return seen
