"""Domain tests call the domain functions directly on a fresh store: the rules, without HTTP."""

from __future__ import annotations

import pytest

from skilljar_scim.base.config import LimitsSettings
from skilljar_scim.domain import groups, users
from skilljar_scim.domain.events import CLI

from domain.support import group_body, user_body


@pytest.fixture
def limits() -> LimitsSettings:
    return LimitsSettings()


@pytest.fixture
def make_user(store):
    """Create a user through the domain; return the stored row."""
    return lambda name="alice@example.com", **attributes: users.create(CLI, user_body(name, **attributes)).user


@pytest.fixture
def make_group(store):
    return lambda name="Engineering", members=(), **attributes: groups.create(CLI, group_body(name, members, **attributes))
