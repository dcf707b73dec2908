"""Property tests of PATCH (RFC 7644 §3.5.2): any path or PatchOp gives a SCIM error or a correct, atomic result."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skilljar_scim.base import errors
from skilljar_scim.scim import patch
from skilljar_scim.scim.schemas import GROUP_TYPE, USER_TYPE

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
FUZZ = settings(max_examples=40,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
PATCH_ERRORS = {"invalidSyntax", "invalidPath", "invalidValue", "invalidFilter", "noTarget", "mutability", "tooMany"}

USER_PATHS = ["userName", "name.givenName", "name", "displayName", "title", "active", "emails", "emails.value",
              'emails[type eq "work"].value', 'emails[type eq "work"]', 'emails[value eq "a@example.com"]',
              'emails[type eq "work" and primary eq true].value', 'emails[type eq "work" or type eq "home"]',
              "phoneNumbers", 'addresses[type eq "work"].locality', "password", "externalId", "id", "meta",
              "groups", "roles", "x509Certificates", f"{ENTERPRISE}:manager", f"{ENTERPRISE}:manager.value",
              f"{ENTERPRISE}:employeeNumber", ENTERPRISE, "urn:ietf:params:scim:schemas:core:2.0:User:title",
              "nosuch", "name.nosuch", "emails[nosuch eq 1]", "emails[", "emails]", "emails[]", "emails[type]",
              'emails[type eq "x"].', 'emails[type eq "x"].nosuch', 'emails[type eq "x"][value pr]', "a..b", ""]
GROUP_PATHS = ["displayName", "members", 'members[value eq "nobody"]', 'members[value eq "a" or value eq "b"]',
               'members[display eq "x"]', "members.value", 'members[value eq "x"].display', "externalId", "id",
               "nosuch", "members[", ""]


def json_values(keys: list[str]) -> st.SearchStrategy:
    """Any JSON value; object keys are often the schema's own names, in any case."""
    scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                        st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=10),
                        st.sampled_from(["", "True", "false", "a@example.com", "work", "\u00e9", "x" * 300]))
    key = st.one_of(st.sampled_from(keys), st.sampled_from(keys).map(str.upper), st.text(max_size=6))
    return st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(key, inner, max_size=3)), max_leaves=8)


USER_KEYS = ["value", "type", "primary", "givenName", "familyName", "display", "active", "userName", "title",
             "emails", "name", "schemas", "id", ENTERPRISE, "employeeNumber", "manager", "groups"]
GROUP_KEYS = ["value", "display", "type", "members", "displayName", "$ref", "id", "schemas"]


def operations(paths: list[str], keys: list[str]) -> st.SearchStrategy[dict]:
    """One PATCH operation: op name in any case (or wrong), a path or none, any value or none."""
    return st.fixed_dictionaries(
        {"op": st.one_of(st.sampled_from(["add", "remove", "replace", "Add", "REPLACE", "Remove", "move"]),
                         json_values(keys))},
        optional={"path": st.one_of(st.sampled_from(paths), st.text(max_size=12), json_values(keys)),
                  "value": json_values(keys)},
    )


def messages(paths: list[str], keys: list[str]) -> st.SearchStrategy:
    """A PatchOp message (usually well-formed), or any JSON at all."""
    proper = st.builds(lambda ops: {"schemas": [PATCH_OP], "Operations": ops},
                       st.lists(operations(paths, keys), min_size=1, max_size=4))
    return st.one_of(proper, proper, proper, json_values(keys + ["Operations"]))


SAMPLE_USER = {"id": "u1", "userName": "sample", "name": {"givenName": "Sam"}, "active": True,
               "emails": [{"value": "a@example.com", "type": "work", "primary": True}],
               ENTERPRISE: {"employeeNumber": "7"}}


@settings(max_examples=400)
@given(text=st.one_of(st.sampled_from(USER_PATHS + GROUP_PATHS), st.text(max_size=40),
                      st.lists(st.sampled_from(["emails", "members", "[", "]", ".", "value", " eq ", '"x"', "type",
                                                " and ", "not (", ")", ENTERPRISE, ":", "manager"]),
                               max_size=10).map("".join)))
def test_fuzz_patch_path_parses_or_is_invalid_path_or_filter(text) -> None:
    for rtype in (USER_TYPE, GROUP_TYPE):
        try:
            parsed = patch.parse_path(text, rtype)
        except (errors.InvalidPath, errors.InvalidFilter):
            continue
        assert isinstance(parsed, patch.Path) and parsed.resolved is not None


@settings(max_examples=200)
@given(body=messages(USER_PATHS, USER_KEYS))
def test_fuzz_patch_message_parses_and_applies_or_is_a_bad_request(body) -> None:
    """parse and apply raise only SCIM 400s; a failed apply leaves the resource as it was (atomic)."""
    before = {**SAMPLE_USER, "emails": [dict(e) for e in SAMPLE_USER["emails"]]}
    try:
        ops = patch.parse(body, USER_TYPE, max_operations=3)
        changed = patch.apply(before, ops, USER_TYPE)
    except errors.BadRequest as exc:
        assert exc.scim_type in PATCH_ERRORS, exc
        return
    finally:
        assert before == SAMPLE_USER
    assert isinstance(changed, dict)


@pytest.fixture
def targets(api):
    """A user and a group (with a member) to patch."""
    alice = api.create_user("alice@example.com", emails=[{"value": "a@example.com", "type": "work"}])
    bob = api.create_user("bob@example.com")
    group = api.create_group("Engineering", [alice["id"]])
    return api, alice["id"], bob["id"], group["id"]


def _check_patch(api, path: str, body) -> None:
    """PATCH answers 200 with what a GET then shows (Users), 204 with the ETag a GET then shows
    (Groups, RFC 7644 §3.5.2), or a SCIM 4xx that changed nothing."""
    before = api.get(path).get_json()
    response = api.patch(path, body)
    after = api.get(path).get_json()
    if response.status_code == 200:
        assert path.startswith("/Users/")
        assert response.get_json() == after
        return
    if response.status_code == 204:
        assert path.startswith("/Groups/")
        assert response.get_data() == b"" and response.headers["ETag"] == after["meta"]["version"]
        return
    if response.status_code == 409:
        api.assert_error(response, 409, "uniqueness")
    else:
        error = api.assert_error(response, 400, response.get_json().get("scimType"))
        assert error.get("scimType") in PATCH_ERRORS, error
    assert after == before, "a failed PATCH must change nothing"


@FUZZ
@given(body=messages(USER_PATHS, USER_KEYS))
def test_fuzz_patch_user_through_the_app(targets, body) -> None:
    api, alice, _, _ = targets
    _check_patch(api, f"/Users/{alice}", body)


@FUZZ
@given(data=st.data())
def test_fuzz_patch_group_members_through_the_app(targets, data) -> None:
    api, alice, bob, group = targets
    ids = st.sampled_from([alice, bob, "nobody", "", alice.upper()])
    member = st.one_of(ids.map(lambda i: {"value": i}), ids.map(lambda i: {"value": i, "type": "User"}),
                       json_values(GROUP_KEYS))
    members = st.one_of(st.lists(member, max_size=3), member)
    value_paths = ids.map(lambda i: f'members[value eq "{i}"]')
    operation = st.fixed_dictionaries({
        "op": st.sampled_from(["add", "remove", "replace", "Add"]),
        "path": st.one_of(st.sampled_from(GROUP_PATHS), value_paths),
        "value": st.one_of(members, json_values(GROUP_KEYS)),
    })
    pathless = st.builds(lambda op, v: {"op": op, "value": v}, st.sampled_from(["add", "replace"]),
                         st.fixed_dictionaries({}, optional={"members": members, "displayName": st.text(max_size=8)}))
    body = {"schemas": [PATCH_OP], "Operations": data.draw(st.lists(st.one_of(operation, pathless), min_size=1, max_size=3))}
    _check_patch(api, f"/Groups/{group}", body)


@FUZZ
@given(attribute=st.sampled_from(["userName", "name", "name.givenName", "active", "emails", "emails.value",
                                  "title", "password", "x509Certificates", f"{ENTERPRISE}:manager",
                                  f"{ENTERPRISE}:employeeNumber", "externalId", "phoneNumbers.primary"]),
       value=json_values(USER_KEYS), op=st.sampled_from(["add", "replace"]))
def test_fuzz_patch_every_attribute_takes_any_json_type(targets, attribute, value, op) -> None:
    """Wrong JSON types for an attribute are invalidValue (or another 400), never a 500."""
    api, _, bob, _ = targets
    _check_patch(api, f"/Users/{bob}", {"schemas": [PATCH_OP], "Operations": [{"op": op, "path": attribute, "value": value}]})


# --- multi-valued values against a model of the exact list ------------------------------------


@st.composite
def member_operations(draw, ids: list[str]) -> dict:
    """A well-formed operation on members: add, replace or remove by value list, filter or whole."""
    kind = draw(st.sampled_from(["add", "replace", "remove", "remove-filter", "remove-all"]))
    chosen = draw(st.lists(st.sampled_from(ids), min_size=1, max_size=4, unique=True))
    if kind == "remove-all":
        return {"op": "remove", "path": "members"}
    if kind == "remove-filter":
        return {"op": "remove", "path": "members[" + " or ".join(f'value eq "{i}"' for i in chosen) + "]"}
    return {"op": kind, "path": "members", "value": [{"value": i} for i in chosen]}


def _member_model(members: set[str], operation: dict) -> set[str]:
    """The exact member set after one operation (RFC 7644 §3.5.2.1-3)."""
    if operation["op"] == "remove" and "[" in operation["path"]:
        return members - {term.split('"')[1] for term in operation["path"][8:-1].split(" or ")}
    if operation["op"] == "remove" and "value" not in operation:
        return set()
    named = {v["value"] for v in operation["value"]}
    return {"add": members | named, "replace": named, "remove": members - named}[operation["op"]]


@pytest.fixture
def crew(api):
    """Five users to move in and out of groups (made once: hypothesis reuses a test's fixtures)."""
    return api, [api.create_user(f"m{n}@example.com")["id"] for n in range(5)], iter(range(10_000))


@FUZZ
@given(data=st.data())
def test_fuzz_patch_group_members_match_a_model_of_the_exact_set(crew, data) -> None:
    api, ids, serial = crew
    group = api.create_group(f"Crew {next(serial)}", ids[:2])
    members = set(ids[:2])
    for operation in data.draw(st.lists(member_operations(ids), min_size=1, max_size=4)):
        members = _member_model(members, operation)
        after = api.group_ops(f"/Groups/{group['id']}", operation).get_json()
        assert {m["value"] for m in after.get("members", [])} == members, operation


EMAILS = ["a@x.io", "b@x.io", "c@x.io", "d@x.io"]


@st.composite
def email_operations(draw) -> dict:
    """A well-formed operation on emails; values named in any letter case (emails.value is caseExact false)."""
    kind = draw(st.sampled_from(["add", "replace", "remove", "remove-filter"]))
    chosen = draw(st.lists(st.sampled_from(EMAILS), min_size=1, max_size=3, unique=True))
    sent = [draw(st.sampled_from([v, v.upper()])) for v in chosen]
    if kind == "remove-filter":
        return {"op": "remove", "path": "emails[" + " or ".join(f'value eq "{v}"' for v in sent) + "]"}
    return {"op": kind, "path": "emails", "value": [{"value": v, "type": "work"} for v in sent]}


def _email_model(items: list[dict], operation: dict) -> list[dict] | None:
    """The exact list after one operation; None when it must be noTarget (a filter matching nothing)."""
    if "[" in operation["path"]:
        named = {t.split('"')[1].lower() for t in operation["path"][7:-1].split(" or ")}
        left = [e for e in items if e["value"].lower() not in named]
        return None if len(left) == len(items) else left
    if operation["op"] == "remove":
        named = {v["value"].lower() for v in operation["value"]}
        return [e for e in items if e["value"].lower() not in named]
    out = [] if operation["op"] == "replace" else list(items)
    for element in operation["value"]:
        if not any(e["value"].lower() == element["value"].lower() for e in out):
            out.append(element)
    return out


@FUZZ
@given(operations=st.lists(email_operations(), min_size=1, max_size=4))
def test_fuzz_patch_user_emails_match_a_model_of_the_exact_list(targets, operations) -> None:
    api, _, bob, _ = targets
    items = api.get(f"/Users/{bob}").get_json().get("emails", [])
    for operation in operations:
        expected = _email_model(items, operation)
        response = api.ops(f"/Users/{bob}", operation)
        if expected is None:
            api.assert_error(response, 400, "noTarget")
            continue
        assert response.status_code == 200, response.get_json()
        items = response.get_json().get("emails", [])
        assert items == expected, operation
