"""Start a real `scim serve` on a free port and talk HTTP to it (see tests/servers.py)."""

from __future__ import annotations

import pytest


@pytest.fixture
def server(make_server, database_url: str):
    """A running `scim serve` with one worker, as a small installation runs it."""
    return make_server(database_url=database_url, workers=1, threads=4)
