"""Helpers for replaying identity-provider traffic against the real app.

Each module in this folder sends requests exactly as one vendor documents them (method,
path, raw query string, headers, body); these fixtures only keep the modules short.
"""

from __future__ import annotations

import json

import pytest

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"


class Wire:
    """Send one vendor's requests: raw path and query, its Content-Type, its headers."""

    def __init__(self, api, content_type: str, headers: dict | None = None):
        self.api = api
        self.content_type = content_type
        self.headers = headers or {}

    def send(self, method: str, path: str, body=None, status: int | None = None):
        """Send a request; with `status`, assert it and return the parsed body (or None)."""
        data = None if body is None else json.dumps(body)
        response = self.api.request(method, path, headers=self.headers, data=data,
                                    content_type=self.content_type)
        if status is None:
            return response
        parsed = response.get_json(force=True, silent=True)
        assert response.status_code == status, parsed
        if status != 204:
            assert response.mimetype == "application/scim+json"
        return parsed

    def patch_ops(self, path: str, *operations, status: int = 200):
        """PATCH a PatchOp with these operations and return the parsed body.

        A Group PATCH answers 204 (RFC 7644 §3.5.2): pass status=204; this checks the new
        ETag and the empty body, and returns None (GET the group to see its state).
        """
        body = {"schemas": [PATCH_OP], "Operations": list(operations)}
        if status != 204:
            return self.send("PATCH", path, body, status)
        response = self.send("PATCH", path, body)
        assert response.status_code == 204, response.get_data(as_text=True)
        assert response.get_data() == b"" and "Content-Type" not in response.headers, response.headers
        assert response.headers["ETag"].startswith('W/"'), response.headers
        return None

    def listing(self, path: str) -> dict:
        """GET a list endpoint and check the ListResponse shape (RFC 7644 §3.4.2)."""
        body = self.send("GET", path, status=200)
        assert body["schemas"] == [LIST_RESPONSE]
        for key in ("totalResults", "startIndex", "itemsPerPage"):
            assert isinstance(body[key], int) and not isinstance(body[key], bool), body
        assert isinstance(body["Resources"], list)
        return body


@pytest.fixture
def okta(api) -> Wire:
    return Wire(api, "application/json", {"User-Agent": "Okta SCIM Client 1.0.0"})


@pytest.fixture
def entra(api) -> Wire:
    return Wire(api, "application/scim+json")


@pytest.fixture
def onelogin(api) -> Wire:
    return Wire(api, "application/json")


@pytest.fixture
def map_role(cli):
    """Map a pushed group to a dashboard role the way an admin does: `scim mappings add`."""

    def add(group: str, role: str) -> None:
        result = cli("mappings", "add", group, role)
        assert result.exit_code == 0, result.output

    return add


@pytest.fixture
def event_actions(cli):
    """Return the actions `scim events list --json` shows, oldest first."""

    def actions(**filters: str) -> list[str]:
        args = [f"--{k}={v}" for k, v in filters.items()]
        return [e["action"] for e in reversed(cli.json("events", "list", "--limit", "500", *args))]

    return actions



@pytest.fixture
def check_guide():
    """Check a setup guide: linked from README.md, and every `scim ...` line in it is a real command."""
    from pathlib import Path

    import typer
    import typer.main

    from skilljar_scim.cli.main import app

    root = Path(__file__).resolve().parents[2]

    def check(file_name: str) -> None:
        assert f"(docs/idp/{file_name})" in (root / "README.md").read_text()
        text = (root / "docs" / "idp" / file_name).read_text()
        lines = [line.strip() for line in text.splitlines() if line.strip().startswith("scim ")]
        assert lines, "the guide shows no scim commands"
        for line in lines:
            group, words = typer.main.get_command(app), line.split()[1:]
            while hasattr(group, "commands") and words:  # get_command loads a lazy group's commands
                found = group.get_command(typer.Context(group), words[0])
                if found is None:
                    break
                group, words = found, words[1:]
            assert not hasattr(group, "commands"), f"{line!r} names no command"

    return check
