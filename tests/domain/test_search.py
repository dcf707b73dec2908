"""Search: filters, paging and sorting over users and groups, and across both (RFC 7644 §3.4.2, §3.4.3)."""

from __future__ import annotations

import logging

import peewee
import pytest

from skilljar_scim.base.errors import InvalidFilter, InvalidValue
from skilljar_scim.domain import users
from skilljar_scim.domain.search.query import Query
from skilljar_scim.domain.search.root import search_all

from domain.support import BASE


@pytest.fixture
def people(make_user):
    return [make_user(name, externalId=f"ext-{i}", displayName=display, active=active)
            for i, (name, display, active) in enumerate([("ann@example.com", "Ann", True), ("bob@example.com", "Bob", False),
                                                         ("cat@example.com", "Cat", True), ("dan@example.com", "Dan", True)])]


def _names(page) -> list[str]:
    return [r["userName"] for r in page.resources]


@pytest.mark.parametrize("text, expected", [
    ('userName eq "ANN@example.com"', ["ann@example.com"]),  # userName is case-insensitive (RFC 7643 §4.1.1)
    ('externalId eq "ext-2"', ["cat@example.com"]),
    ('active eq false', ["bob@example.com"]),
    ('displayName co "A" and active eq true', ["ann@example.com", "cat@example.com", "dan@example.com"]),  # caseExact false
    ('not (userName sw "a") and not (userName sw "b")', ["cat@example.com", "dan@example.com"]),
])
def test_search_users_filter_selects_the_matching_users(people, text, expected) -> None:
    page = users.search(Query(filter=text), BASE)
    assert sorted(_names(page)) == expected and page.total == len(expected)


@pytest.mark.parametrize("start, count, expected", [(1, 2, ["ann", "bob"]), (3, 2, ["cat", "dan"]), (4, 10, ["dan"]),
                                                    (9, 10, []), (1, 0, [])])
def test_search_users_pages_are_one_based(people, start, count, expected) -> None:
    page = users.search(Query(start_index=start, count=count, sort_by="userName"), BASE)
    assert [n.split("@")[0] for n in _names(page)] == expected and page.total == 4 and page.start_index == start


def test_search_users_sorts_descending_by_any_attribute(people) -> None:
    page = users.search(Query(sort_by="displayName", descending=True), BASE)
    assert _names(page) == ["dan@example.com", "cat@example.com", "bob@example.com", "ann@example.com"]


@pytest.mark.parametrize("text, error", [('userName eq', InvalidFilter), ('nosuch eq "x"', InvalidFilter)])
def test_search_users_bad_filter_is_invalid_filter(people, text, error) -> None:
    with pytest.raises(error):
        users.search(Query(filter=text), BASE)


def test_search_users_unknown_sort_attribute_is_invalid_value(people) -> None:
    with pytest.raises(InvalidValue):
        users.search(Query(sort_by="nosuch"), BASE)


def test_search_all_lists_users_then_groups_and_pages_across_both(people, make_group, limits) -> None:
    make_group("Engineering", [people[0].id])
    page = search_all(Query(start_index=4, count=2), BASE, True, limits)
    assert page.total == 5
    assert [r["meta"]["resourceType"] for r in page.resources] == ["User", "Group"]


def test_search_all_skips_a_type_the_filter_cannot_apply_to(people, make_group, limits) -> None:
    make_group("Engineering")
    page = search_all(Query(filter='userName eq "ann@example.com"'), BASE, True, limits)
    assert [r["meta"]["resourceType"] for r in page.resources] == ["User"]
    with pytest.raises(InvalidFilter):
        search_all(Query(filter='nosuch eq "x"'), BASE, True, limits)


def test_search_users_default_page_walks_the_listing_index(people, caplog) -> None:
    """A page of /Users in its default order reads the listing index in order, never sorting every user."""
    from skilljar_scim.store import models

    caplog.set_level(logging.DEBUG, logger="peewee")
    users.search(Query(start_index=2, count=2), BASE)
    sql, params = next(r.msg for r in caplog.records if isinstance(r.msg, tuple) and "ORDER BY" in r.msg[0])
    database = models.database.obj
    if isinstance(database, peewee.PostgresqlDatabase):
        with database.atomic():  # with sorting priced out, a Sort node means no index gives the order
            database.execute_sql("SET LOCAL enable_sort = off")
            plan = " ".join(row[0] for row in database.execute_sql("EXPLAIN " + sql, params).fetchall())
        assert "user_listing" in plan and "Sort" not in plan, plan
    else:
        plan = " ".join(str(row[-1]) for row in database.execute_sql("EXPLAIN QUERY PLAN " + sql, params).fetchall())
        assert "user_listing" in plan and "TEMP B-TREE" not in plan, plan
