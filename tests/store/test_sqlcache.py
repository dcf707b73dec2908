"""Statements compiled once (store/sqlcache.py) give what peewee gives, for every value bound."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest

from skilljar_scim.base import clock
from skilljar_scim.domain import users
from skilljar_scim.domain.events import CLI
from skilljar_scim.domain.search.query import Query
from skilljar_scim.store import models, sqlcache
from skilljar_scim.store.models import Group, Membership, Token, User


def _user(name: str, **attributes) -> dict:
    return {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name, **attributes}


@pytest.fixture
def people(store):
    made = {}
    for name, external, active in (("ann@example.com", "e-1", True), ("bob@example.com", "e-2", False),
                                   ("cat@example.com", None, True), ("dan@example.com", "e-4", True)):
        body = _user(name, active=active, **({"externalId": external} if external else {}),
                     emails=[{"value": name.replace("@", ".work@"), "type": "work"}])
        made[name] = users.create(CLI, body).user
    return made


def test_sqlcache_compiles_once_per_key_and_binds_each_value(people):
    built = []

    def build():
        built.append(1)
        return User.select().where(User.user_name_key == sqlcache.param(0))

    for name, user in people.items():
        assert sqlcache.first(("test.by_name", id(build)), build, [name]).id == user.id
    assert sqlcache.first(("test.by_name", id(build)), build, ["nobody@example.com"]) is None
    assert len(built) == 1


def test_sqlcache_models_equal_what_peewee_loads(people):
    ann = people["ann@example.com"]
    User.update(deprovisioned_at=datetime(2026, 1, 2, 3, 4, 5)).where(User.id == ann.id).execute()
    loaded = sqlcache.first("test.user", lambda: User.select().where(User.id == sqlcache.param(0)), [ann.id])
    expected = User.get_by_id(ann.id)
    assert {f: getattr(loaded, f) for f in User._meta.fields} == {f: getattr(expected, f) for f in User._meta.fields}
    assert isinstance(loaded.created_at, datetime) and loaded.active is True


def test_sqlcache_tuples_are_converted_like_peewee(people):
    query = lambda: User.select(User.id, User.active, User.created_at).where(  # noqa: E731
        User.id.in_(sqlcache.params(0, 2))).order_by(User.id).tuples()
    ids = sorted(u.id for u in list(people.values())[:2])
    got = sqlcache.tuples("test.tuples", query, ids)
    assert got == list(User.select(User.id, User.active, User.created_at).where(User.id.in_(ids))
                       .order_by(User.id).tuples())


def test_sqlcache_cache_is_bounded_least_recently_used_first(store):
    cache = sqlcache._Cache(size=2)
    built = []
    build = lambda key: lambda: built.append(key) or Token.select().where(Token.id == sqlcache.param(0))  # noqa: E731
    db = models.database.obj
    for key in ("a", "b", "a", "c", "a", "b"):
        cache.get(key, build(key), db)
    assert built == ["a", "b", "c", "b"]  # "b" was the least recently used when "c" came


def test_sqlcache_save_inserts_then_updates_every_field(store):
    now = clock.utcnow()
    group = Group(id="g-1", display_name="Ops", display_name_key="ops", attributes="{}", version=1,
                  created_at=now, updated_at=now)
    fields = lambda g: {f: getattr(g, f) for f in Group._meta.fields}  # noqa: E731
    sqlcache.save(group, is_new=True)
    assert fields(Group.get_by_id("g-1")) == fields(group)
    group.display_name, group.display_name_key, group.version, group.external_id = "Ops Team", "ops team", 2, "x-9"
    sqlcache.save(group, is_new=False)
    assert fields(Group.get_by_id("g-1")) == fields(group)


def test_sqlcache_insert_ignoring_conflicts_skips_existing_rows(people, store):
    now = clock.utcnow()
    sqlcache.save(Group(id="g-1", display_name="Ops", display_name_key="ops", created_at=now, updated_at=now), True)
    ann, bob = people["ann@example.com"].id, people["bob@example.com"].id
    sqlcache.insert(Membership, [{"group": "g-1", "user": ann, "created_at": now}])
    sqlcache.insert(Membership, [{"group": "g-1", "user": ann, "created_at": now},
                                 {"group": "g-1", "user": bob, "created_at": now}], ignore_conflicts=True)
    assert sorted(m.user_id for m in Membership.select()) == sorted([ann, bob])


@pytest.mark.parametrize("limit", [1, 2, 500])
def test_sqlcache_listed_gives_the_same_rows_above_and_below_the_limit(people, monkeypatch, limit):
    monkeypatch.setattr(sqlcache, "MAX_LISTED", limit)
    ids = [u.id for u in people.values()]
    build = lambda fixed, listed: User.select(User.user_name).where(  # noqa: E731
        User.active == fixed[0], User.id.in_(listed)).order_by(User.user_name).tuples()
    rows = sqlcache.listed("test.listed", build, ids, [True])
    assert [name for (name,) in rows] == ["ann@example.com", "cat@example.com", "dan@example.com"]


@pytest.mark.parametrize("text, expected", [
    ('userName eq "ann@example.com"', ["ann@example.com"]),
    ('userName eq "BOB@example.com"', ["bob@example.com"]),
    ('externalId eq "e-4" or userName eq "cat@example.com"', ["cat@example.com", "dan@example.com"]),
    ('(userName eq "ann@example.com" or externalId eq "e-2") and active eq true', ["ann@example.com"]),
    ('emails[value eq "dan.work@example.com"]', ["dan@example.com"]),
    ('emails.value eq "bob.work@example.com" and active eq false', ["bob@example.com"]),
    # SQL for one side only (`co` is left to Python): the bound values must still line up.
    ('displayName co "x" or userName eq "ann@example.com"', ["ann@example.com"]),
    ('userName co "a" and externalId eq "e-1"', ["ann@example.com"]),
    ('externalId eq "e-1" and userName co "a" and active eq true', ["ann@example.com"]),
])
def test_sqlcache_filters_of_one_shape_bind_their_own_values(people, text, expected):
    for _ in range(2):  # compiled on the first pass, reused on the second
        page = users.search(Query(filter=text), "http://x")
        assert sorted(r["userName"] for r in page.resources) == expected


def test_sqlcache_same_shape_other_values_other_answers(people):
    for name in people:
        page = users.search(Query(filter=f'userName eq "{name}"'), "http://x")
        assert [r["userName"] for r in page.resources] == [name]


def test_sqlcache_instances_refuse_columns_of_another_model(people):
    ann = people["ann@example.com"]
    [partial] = sqlcache.instances("test.partial", lambda: User.select(User.id).where(User.id == sqlcache.param(0)),
                                   [ann.id])
    assert partial.id == ann.id  # a partial select gives partial instances, as peewee's own
    with pytest.raises(TypeError):
        sqlcache.instances("test.joined", lambda: Membership.select(Membership.user, Group.display_name).join(Group)
                           .where(Membership.user == sqlcache.param(0)), ["x"])


def test_sqlcache_reads_no_private_attribute_of_peewee():
    """The cache uses peewee's public API only (Query.sql, selected_columns, Field.python_value)."""
    source = Path(sqlcache.__file__).read_text()
    private = {m.group(1) for m in re.finditer(r"\.(_[a-z]\w*)", source)} - {"_meta"}  # Model._meta is documented
    assert private == set()
