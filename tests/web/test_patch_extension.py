"""PATCH paths into the enterprise extension (RFC 7644 §3.5.2 lets a path name a schema extension).

Every form Entra ID and Okta send: the whole extension object as the path, `URN:attribute`,
`URN:attribute.sub`, and path-less values keyed by the URN or by `URN:attribute`.
"""

from __future__ import annotations

import pytest

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"


@pytest.fixture
def staff(api):
    boss = api.create_user("boss@example.com")["id"]
    user = api.create_user("kim@example.com", schemas=[USER, ENTERPRISE],
                           **{ENTERPRISE: {"employeeNumber": "7", "department": "Ops", "manager": {"value": boss}}})
    return api, user["id"], boss


def _patch(api, user_id: str, *operations) -> dict:
    answer = api.ops(f"/Users/{user_id}", *operations)
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json() == api.get(f"/Users/{user_id}").get_json()
    return answer.get_json()


@pytest.mark.parametrize("urn", [ENTERPRISE, ENTERPRISE.upper()])
@pytest.mark.parametrize("op", ["add", "replace", "Replace"])
def test_patch_extension_whole_object_path_merges_its_attributes(staff, urn, op) -> None:
    api, user_id, boss = staff
    body = _patch(api, user_id, {"op": op, "path": urn, "value": {"department": "R&D", "costCenter": "42"}})
    assert body[ENTERPRISE] == {"employeeNumber": "7", "department": "R&D", "costCenter": "42",
                                "manager": {"value": boss}}
    assert ENTERPRISE in body["schemas"]


@pytest.mark.parametrize("manager", ["{boss}", {"value": "{boss}"}, [{"value": "{boss}", "$ref": "../Users/{boss}"}]])
def test_patch_extension_whole_object_path_on_a_user_without_it_adds_it(api, manager) -> None:
    boss = api.create_user("boss@example.com")["id"]
    user = api.create_user("lee@example.com")
    assert ENTERPRISE not in user["schemas"]
    sent = manager.replace("{boss}", boss) if isinstance(manager, str) else \
        ({"value": boss} if isinstance(manager, dict) else [{"value": boss, "$ref": f"../Users/{boss}"}])
    body = _patch(api, user["id"], {"op": "add", "path": ENTERPRISE, "value": {"employeeNumber": "9", "manager": sent}})
    assert body[ENTERPRISE]["employeeNumber"] == "9" and body[ENTERPRISE]["manager"]["value"] == boss
    assert body["schemas"] == [USER, ENTERPRISE]


@pytest.mark.parametrize("value", [None, {}])
def test_patch_extension_remove_whole_object(staff, value) -> None:
    api, user_id, _ = staff
    operation = {"op": "remove", "path": ENTERPRISE, **({"value": value} if value is not None else {})}
    body = _patch(api, user_id, operation)
    if value is None:
        assert ENTERPRISE not in body and body["schemas"] == [USER]
    else:
        assert body[ENTERPRISE]["employeeNumber"] == "7"  # an empty list of attributes removes none


def test_patch_extension_remove_names_the_attributes_to_drop(staff) -> None:
    api, user_id, _ = staff
    body = _patch(api, user_id, {"op": "remove", "path": ENTERPRISE, "value": {"manager": None, "department": None}})
    assert body[ENTERPRISE] == {"employeeNumber": "7"}


SUB_PATHS = {  # name: (operation for a manager id, what it changes in the extension; None removes)
    "URN:attr": (lambda o: {"op": "replace", "path": f"{ENTERPRISE}:employeeNumber", "value": "8"},
                 lambda o: {"employeeNumber": "8"}),
    "URN:manager bare id": (lambda o: {"op": "Add", "path": f"{ENTERPRISE}:manager", "value": o},
                            lambda o: {"manager": {"value": o}}),
    "URN:manager.value": (lambda o: {"op": "replace", "path": f"{ENTERPRISE}:manager.value", "value": o},
                          lambda o: {"manager": {"value": o}}),
    "remove URN:manager": (lambda o: {"op": "remove", "path": f"{ENTERPRISE}:manager"}, lambda o: {"manager": None}),
    "remove URN:manager.value": (lambda o: {"op": "remove", "path": f"{ENTERPRISE}:manager.value"},
                                 lambda o: {"manager": None}),
    "path-less URN:attr": (lambda o: {"op": "replace", "value": {f"{ENTERPRISE}:department": "Sales"}},
                           lambda o: {"department": "Sales"}),
    "path-less URN object": (lambda o: {"op": "add", "value": {ENTERPRISE: {"division": "EU", "manager": {"value": o}}}},
                             lambda o: {"division": "EU", "manager": {"value": o}}),
    "bare manager": (lambda o: {"op": "replace", "path": "manager", "value": {"value": o}},
                     lambda o: {"manager": {"value": o}}),
}


@pytest.mark.parametrize("form", sorted(SUB_PATHS))
def test_patch_extension_sub_paths_idps_send(staff, form) -> None:
    api, user_id, boss = staff
    other = api.create_user("other@example.com")["id"]
    operation, change = SUB_PATHS[form]
    body = _patch(api, user_id, operation(other))
    want = {"employeeNumber": "7", "department": "Ops", "manager": {"value": boss}}
    for key, value in change(other).items():
        if value is None:
            del want[key]
        else:
            want[key] = value
    assert body[ENTERPRISE] == want


@pytest.mark.parametrize(("operation", "scim_type"), [
    ({"op": "add", "path": ENTERPRISE, "value": "R&D"}, "invalidValue"),
    ({"op": "replace", "path": ENTERPRISE}, "invalidSyntax"),
    ({"op": "remove", "path": ENTERPRISE, "value": ["manager"]}, "invalidValue"),
    ({"op": "remove", "path": ENTERPRISE, "value": {"nosuch": None}}, "invalidPath"),
    ({"op": "remove", "path": USER}, "noTarget"),
    ({"op": "add", "path": f"{ENTERPRISE}.manager", "value": "x"}, "invalidPath"),
])
def test_patch_extension_malformed_is_a_400_that_changes_nothing(staff, operation, scim_type) -> None:
    api, user_id, _ = staff
    before = api.get(f"/Users/{user_id}").get_json()
    api.assert_error(api.ops(f"/Users/{user_id}", operation), 400, scim_type)
    assert api.get(f"/Users/{user_id}").get_json() == before


def test_patch_core_schema_urn_as_path_is_a_path_less_value(staff) -> None:
    api, user_id, _ = staff
    body = _patch(api, user_id, {"op": "replace", "path": USER, "value": {"title": "Lead", "displayName": "Kim"}})
    assert (body["title"], body["displayName"]) == ("Lead", "Kim")
