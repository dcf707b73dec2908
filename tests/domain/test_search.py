"""Search: filters, paging and sorting over users and groups, and across both (RFC 7644 §3.4.2, §3.4.3)."""

from __future__ import annotations

import logging
import re
from datetime import datetime

import peewee
import pytest

from skilljar_scim.base.errors import InvalidFilter, InvalidValue
from skilljar_scim.domain import users
from skilljar_scim.domain.search.query import Query
from skilljar_scim.domain.search.root import search_all
from skilljar_scim.store import models

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


@pytest.mark.parametrize("start, backwards, skipped", [(2, False, 1), (4, True, 0)])
def test_search_users_default_page_reads_its_ids_from_the_listing_index(people, caplog, start, backwards, skipped) -> None:
    """A page past the first finds its ids through the listing index in order (never sorting every
    user, never reading the rows it skips), from the nearer end, then reads only those rows."""
    caplog.set_level(logging.DEBUG, logger="peewee")
    page = users.search(Query(start_index=start, count=2), BASE)
    sql, params, name = next(s for s in _statements(caplog) if "OFFSET" in s[0])
    assert name is None  # never prepared: a generic plan cannot know its OFFSET (store/postgres.py)
    assert _window_plan(sql, params) == {"index": "user_listing", "sorted": False, "rows": False}
    inner = sql[sql.rindex("(SELECT"):]  # the ids' subquery comes last
    assert ('"id" DESC LIMIT' in inner) is backwards and list(params)[-1] == skipped, (sql, params)
    assert _names(page) == _names(users.search(Query(count=100), BASE))[start - 1:start + 1]


@pytest.mark.sqlite
def test_search_users_deep_page_reads_its_rows_by_id(people, caplog) -> None:
    """The page's rows are read by primary key, not by walking the listing index past every user
    to find them (SQLite's plan for `id IN (ids) ORDER BY` the listing's order did that)."""
    caplog.set_level(logging.DEBUG, logger="peewee")
    users.search(Query(start_index=3, count=2), BASE)
    sql, params = next(r.msg for r in caplog.records if isinstance(r.msg, tuple) and "OFFSET" in r.msg[0])
    rows = models.database.obj.execute_sql("EXPLAIN QUERY PLAN " + sql, params).fetchall()
    assert [r[-1] for r in rows if r[1] == 0 and " t1 " in r[-1]] == ["SEARCH t1 USING INDEX sqlite_autoindex_user_1 (id=?)"]


def _statements(caplog):
    """Yield (SQL, values, prepared name or None) of each statement peewee logged; an EXECUTE as the statement it runs."""
    for record in caplog.records:
        if not isinstance(record.msg, tuple):
            continue
        sql, params = record.msg
        name = re.search(r"EXECUTE (\w+)", sql)
        if name:  # PostgreSQL: a statement run by the name it is prepared under (store/postgres.py)
            sql = models.database.obj.execute_sql("SELECT statement FROM pg_prepared_statements WHERE name = %s",
                                                  (name[1],)).fetchone()[0]
        yield sql, params, name and name[1]


def _window_plan(sql: str, params) -> dict:
    """Describe the plan under the OFFSET of a page: which index, whether it sorts, whether it reads rows."""
    database = models.database.obj
    if isinstance(database, peewee.PostgresqlDatabase):
        with database.atomic():  # with sorting priced out, a Sort node means no index gives the order
            database.execute_sql("SET LOCAL enable_sort = off")
            database.execute_sql("SET LOCAL enable_seqscan = off")  # a few rows: a table scan would win
            plan = database.execute_sql("EXPLAIN (FORMAT JSON) " + sql, params).fetchone()[0]
        window = next(n for n in _nodes(plan[0]["Plan"]) if n["Node Type"] == "Limit")
        below = list(_nodes(window))[1:]
        return {"index": next(n.get("Index Name") for n in below if n.get("Index Name")),
                "sorted": any(n["Node Type"] == "Sort" for n in below),
                "rows": any(n["Node Type"] != "Index Only Scan" and "Scan" in n["Node Type"] for n in below)}
    rows = database.execute_sql("EXPLAIN QUERY PLAN " + sql, params).fetchall()
    subquery = next(r[0] for r in rows if r[-1].startswith(("MATERIALIZE", "CO-ROUTINE", "LIST SUBQUERY")))
    below = [r[-1] for r in rows if r[1] == subquery]
    return {"index": "user_listing" if any("user_listing" in d for d in below) else None,
            "sorted": any("TEMP B-TREE" in d for d in below),
            "rows": not all("COVERING INDEX" in d for d in below)}


def _nodes(node: dict):
    yield node
    for child in node.get("Plans", []):
        yield from _nodes(child)


@pytest.mark.parametrize("sort_by, descending", [(None, False), ("userName", True), ("externalId", False),
                                                 ("externalId", True), ("meta.created", True)])
def test_search_users_pages_list_exactly_what_one_long_page_lists(make_user, sort_by, descending) -> None:
    """Pages read by id (every page past the first) keep the order of one long page, ties and nulls included."""
    made = [make_user(f"u{i:02d}@example.com", **({"externalId": f"x{i * 7 % 13:02d}"} if i % 3 else {})) for i in range(14)]
    with models.database.atomic():  # ties in the default order: only the id breaks them
        for i, user in enumerate(made):
            models.User.update(created_at=datetime(2026, 1, 1, 0, 0, i % 3)).where(models.User.id == user.id).execute()
    whole = users.search(Query(count=1000, sort_by=sort_by, descending=descending), BASE)
    paged = [r["id"] for start in range(1, 15, 3)
             for r in users.search(Query(start_index=start, count=3, sort_by=sort_by, descending=descending), BASE).resources]
    assert paged == [r["id"] for r in whole.resources] and len(paged) == 14


@pytest.mark.parametrize("filters", [
    ['userName eq "ann@example.com"', 'userName eq "cat@example.com"'],  # the IdP lookup: one statement
    ['displayName co "nn"', 'displayName co "ob"'],  # filtered in Python over SQL pages
])
def test_search_users_builds_a_query_only_for_a_shape_not_yet_compiled(people, monkeypatch, filters) -> None:
    """Building a peewee query (its joins) costs more than running its compiled SQL: only a new shape builds one."""
    built: list[int] = []
    original = users.memberships.column

    def counted(field):
        built.append(1)
        return original(field)

    monkeypatch.setattr(users.memberships, "column", counted)
    first = users.search(Query(filter=filters[0]), BASE)
    after_first = len(built)
    second = users.search(Query(filter=filters[1]), BASE)
    assert len(built) == after_first
    assert _names(first) != _names(second) and first.total == second.total == 1


@pytest.mark.parametrize("text, start, count, expected, total", [
    ("active eq true", 2, 1, ["cat@example.com"], 3),  # a page past the first: its total from a COUNT
    ("active eq true", 1, 2, ["ann@example.com", "cat@example.com"], 3),  # a full first page: COUNT too
    ('userName sw "d"', 1, 1, ["dan@example.com"], 1),
    ('userName eq "ANN@example.com"', 1, 1, ["ann@example.com"], 1),  # unique: the page is every match
    ('externalId eq "ext-2" and active eq true', 1, 1, ["cat@example.com"], 1),
    ('userName eq "ann@example.com" or userName eq "cat@example.com"', 1, 1, ["ann@example.com"], 2),
    ('userName eq "ann@example.com" or active eq true', 1, 1, ["ann@example.com"], 3),
])
def test_search_users_filtered_page_counts_every_match(people, text, start, count, expected, total) -> None:
    """The COUNT of a filtered listing binds the filter's values as the page does, on either store."""
    page = users.search(Query(filter=text, start_index=start, count=count, sort_by="userName"), BASE)
    assert _names(page) == expected and page.total == total
