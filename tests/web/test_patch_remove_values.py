"""PATCH remove of one, two and three values through the server: group members and user values (RFC 7644 §3.5.2.2)."""

from __future__ import annotations

import pytest

CHOICES = [(1,), (0, 2), (0, 1, 3)]


@pytest.fixture
def crew(api):
    people = [api.create_user(f"p{n}@example.com") for n in range(4)]
    group = api.create_group("Crew", [p["id"] for p in people])
    return api, [p["id"] for p in people], group["id"]


def _members(api, group_id: str) -> list[str]:
    return sorted(m["value"] for m in api.get(f"/Groups/{group_id}").get_json().get("members", []))


@pytest.mark.parametrize("removed", CHOICES)
@pytest.mark.parametrize("form", ["filter", "value list", "whole elements"])
def test_patch_remove_members_leaves_exactly_the_others(crew, removed, form) -> None:
    api, ids, group_id = crew
    named = [ids[n] for n in removed]
    operation = {
        "filter": {"op": "remove", "path": "members[" + " or ".join(f'value eq "{i}"' for i in named) + "]"},
        "value list": {"op": "remove", "path": "members", "value": [{"value": i} for i in named]},
        "whole elements": {"op": "remove", "path": "members", "value": [{"value": i, "display": "x", "type": "User"} for i in named]},
    }[form]
    api.group_ops(f"/Groups/{group_id}", operation)
    assert _members(api, group_id) == sorted(i for n, i in enumerate(ids) if n not in removed)


@pytest.mark.parametrize("removed", CHOICES)
@pytest.mark.parametrize("attribute", ["emails", "phoneNumbers", "entitlements"])
def test_patch_remove_user_values_leaves_exactly_the_others(api, attribute, removed) -> None:
    values = [f"v{n}@example.com" if attribute == "emails" else f"v{n}" for n in range(4)]
    user = api.create_user("u@example.com", **{attribute: [{"value": v} for v in values]})
    path = f"{attribute}[" + " or ".join(f'value eq "{values[n]}"' for n in removed) + "]"
    answer = api.ops(f"/Users/{user['id']}", {"op": "remove", "path": path})
    assert answer.status_code == 200, answer.get_json()
    kept = [{"value": v} for n, v in enumerate(values) if n not in removed]
    assert answer.get_json()[attribute] == kept == api.get(f"/Users/{user['id']}").get_json()[attribute]
    listed = [{"value": values[n]} for n in range(4) if n not in removed][:1]
    again = api.ops(f"/Users/{user['id']}", {"op": "remove", "path": attribute, "value": listed})
    assert again.get_json().get(attribute, []) == kept[1:]
