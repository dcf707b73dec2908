"""The schema step that recomputes every *_key column with base/textkey.key (NFKC+casefold before)."""

from __future__ import annotations

import unicodedata

import pytest

from skilljar_scim.base import textkey
from skilljar_scim.base.errors import DatabaseError
from skilljar_scim.domain import events, groups, roles, tokens, users
from skilljar_scim.store import db, models

CATALOG = {"api-admin": "API"}
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


def _old_key(text: str) -> str:
    """The key schema versions 1-3 stored."""
    return unicodedata.normalize("NFKC", text).casefold()


def _as_before(name_pairs) -> None:
    """Put the old keys back, as a database written by an older scim has them."""
    for model, source, column in name_pairs:
        for row in model.select():
            model.update({column: _old_key(getattr(row, source.name))}).where(
                model._meta.primary_key == row._pk).execute()
    for row in models.UserEmail.select(models.UserEmail, models.User).join(models.User):
        email = users.documents.load(row.user)["emails"][0]["value"]
        models.UserEmail.update(value_key=_old_key(email)).where(models.UserEmail.id == row.id).execute()


COLUMNS = [(models.User, models.User.user_name, models.User.user_name_key),
           (models.Group, models.Group.display_name, models.Group.display_name_key),
           (models.Token, models.Token.name, models.Token.name_key),
           (models.RoleMapping, models.RoleMapping.group_name, models.RoleMapping.group_key)]


def test_migrate_keys_recomputes_every_key_column(store, keys) -> None:
    users.create(events.CLI, {"schemas": [USER], "userName": "ＭＡＸ@Example.com",
                              "emails": [{"value": "ＭＡＸ@Example.com"}]})
    groups.create(events.CLI, {"schemas": [GROUP], "displayName": "Ｈｘ Ａｄｍｉｎｓ"})
    roles.add_mapping(events.CLI, "Ｈｘ Ａｄｍｉｎｓ", "api-admin", CATALOG)
    tokens.generate(keys, "Ｏｋｔａ", None)
    _as_before(COLUMNS)
    assert models.User.get().user_name_key == "max@example.com"  # the look-alike of "max@example.com"
    with db.write_transaction():
        db.recompute_keys(store)
    for model, source, column in COLUMNS:
        for row in model.select():
            assert getattr(row, column.name) == textkey.key(getattr(row, source.name)), model
    assert models.UserEmail.get().value_key == textkey.key("ＭＡＸ@Example.com")
    # the real names are free now, and the look-alike group no longer takes their mapping
    users.create(events.CLI, {"schemas": [USER], "userName": "max@example.com"})
    groups.create(events.CLI, {"schemas": [GROUP], "displayName": "Hx Admins"})


def test_migrate_keys_merges_mappings_and_refuses_two_groups_of_one_new_key(store) -> None:
    groups.create(events.CLI, {"schemas": [GROUP], "displayName": "ΐ team"})
    roles.add_mapping(events.CLI, "ΐ team", "api-admin", CATALOG)
    # Schema 3 kept these apart (NFKC before case folding misses them); write them as it did.
    models.RoleMapping.create(group_key=_old_key("ΐ TEAM".upper()), group_name="ΐ TEAM".upper(),
                              role="api-admin", created_at=models.RoleMapping.get().created_at)
    models.Group.create(id="g2", display_name="ΐ TEAM".upper(), display_name_key=_old_key("ΐ TEAM".upper()),
                        attributes="{}", created_at=models.RoleMapping.get().created_at,
                        updated_at=models.RoleMapping.get().created_at)
    _as_before(COLUMNS)
    assert len({g.display_name_key for g in models.Group.select()}) == 2
    with pytest.raises(DatabaseError, match="now have the same displayName"):
        with db.write_transaction():
            db.recompute_keys(store)
    assert {g.display_name_key for g in models.Group.select()} == {_old_key("ΐ team"), _old_key("ΐ TEAM".upper())}
    models.Group.delete().where(models.Group.id == "g2").execute()
    with db.write_transaction():
        db.recompute_keys(store)
    assert [m.group_name for m in models.RoleMapping.select()] == ["ΐ team"]  # the older one


def test_migrate_pin_mappings_adds_the_column_and_pins_to_the_group_named_now(store) -> None:
    group = groups.create(events.CLI, {"schemas": [GROUP], "displayName": "Engineering"})
    roles.add_mapping(events.CLI, "ENGINEERING", "api-admin", CATALOG)
    roles.add_mapping(events.CLI, "Not pushed", "api-admin", CATALOG)
    # As schema 5 left it: no column at all.
    store.execute_sql('DROP INDEX IF EXISTS "role_mapping_group_id"')
    store.execute_sql('ALTER TABLE "role_mapping" DROP COLUMN "group_id"')
    with db.write_transaction():
        db.pin_mappings(store)
    pinned = {m.group_name: m.group_id for m in models.RoleMapping.select()}
    assert pinned == {"ENGINEERING": group.id, "Not pushed": None}
    recorded = models.Event.select().where(models.Event.actor == "migration")
    assert [(e.action, e.resource_type) for e in recorded] == [("mapping.bound", "Mapping")]
    with db.write_transaction():
        db.pin_mappings(store)  # again: nothing new
    assert models.Event.select().where(models.Event.actor == "migration").count() == 1
