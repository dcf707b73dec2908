"""A real `scim serve` with several workers and threads, that a test may SIGKILL and restart."""

from __future__ import annotations

import pytest


@pytest.fixture
def server(make_server, database_url: str):
    """A running `scim serve` with 2 workers x 4 threads on a fresh database (the suite's: SQLite or PostgreSQL)."""
    return make_server(database_url=database_url)
