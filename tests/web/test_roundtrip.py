"""Every writable attribute advertised in /Schemas round-trips (RFC 7643 §2.2, §7; RFC 7644 §3.3, §3.9).

Like a conformance tool, these tests read the discovery documents, generate a valid value
for each writable attribute from its characteristics, write it and read it back.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

import pytest

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
WRITABLE = ("readWrite", "immutable", "writeOnly")
SCALARS = {
    "integer": lambda path: 7,
    "decimal": lambda path: 1.5,
    "dateTime": lambda path: "2024-02-29T12:34:56Z",
    "binary": lambda path: base64.b64encode(f"{path} bytes".encode()).decode(),
}


class Generator:
    """Make valid values for attribute documents; `variant` 1 makes a second, different set.

    Variant 0 sends one value per multi-valued attribute and true booleans; variant 1 sends
    two values (only the first primary), false booleans and the last canonical values.
    References typed User, and caseExact `value` ids, name the n-th of `targets`; `fixed`
    pins a path to a value the product requires.
    """

    def __init__(self, targets: list[dict], variant: int = 0, fixed: dict | None = None):
        self.targets = targets
        self.variant = variant
        self.fixed = fixed or {}

    def value(self, attribute: dict, path: str) -> object:
        if not attribute["multiValued"]:
            return self.one(attribute, path, 0)
        return [self.one(attribute, path, n) for n in range(1 + self.variant)]

    def one(self, attribute: dict, path: str, n: int) -> object:
        if attribute["type"] == "complex":
            return {sub["name"]: self.scalar(sub, f"{path}.{sub['name']}", n)
                    for sub in attribute["subAttributes"] if sub["mutability"] in WRITABLE}
        return self.scalar(attribute, path, n)

    def scalar(self, attribute: dict, path: str, n: int) -> object:
        target = self.targets[n % len(self.targets)]
        if path in self.fixed:
            return self.fixed[path]
        if attribute.get("canonicalValues"):
            return attribute["canonicalValues"][-self.variant]
        if attribute["type"] == "boolean":
            return n == 0 if path.endswith(".primary") else self.variant == 0
        if attribute["type"] == "reference":
            return target["meta"]["location"] if "User" in attribute["referenceTypes"] else f"https://example.com/{path}/{n}"
        if attribute["type"] in SCALARS:
            return SCALARS[attribute["type"]](f"{path} {n}")
        if path.endswith(".value") and attribute["caseExact"]:
            return target["id"]  # caseExact value ids (members.value, manager.value) name a resource
        return f"{path.replace('.', '-')} {n} v{self.variant} Zoë"


def _schemas(api, resource_type: str) -> list[dict]:
    """Return the schema documents of a resource type, core first, as discovery says."""
    rtype = api.get(f"/ResourceTypes/{resource_type}").get_json()
    urns = [rtype["schema"], *[e["schema"] for e in rtype["schemaExtensions"]]]
    return [api.get(f"/Schemas/{urn}").get_json() for urn in urns]


def _writable(schema: dict) -> list[dict]:
    return [a for a in schema["attributes"] if a["mutability"] in WRITABLE]


def _full_body(api, resource_type: str, generator: Generator) -> dict:
    """Build a body holding a value for every writable attribute of every schema."""
    core, *extensions = _schemas(api, resource_type)
    body: dict = {"schemas": [core["id"], *[e["id"] for e in extensions]], "externalId": f"ext-{resource_type}"}
    body.update({a["name"]: generator.value(a, a["name"]) for a in _writable(core)})
    for extension in extensions:
        body[extension["id"]] = {a["name"]: generator.value(a, a["name"]) for a in _writable(extension)}
    return body


def _expected(value: object, attribute: dict) -> object:
    """Return what a response must carry for a sent value: nothing for returned=never."""
    return None if attribute["returned"] == "never" else value


def _without_read_only(value: object, attribute: dict) -> object:
    """Drop server-set (readOnly) sub-attributes from a returned complex value."""
    if attribute["type"] != "complex" or value is None:
        return value
    read_only = {s["name"] for s in attribute["subAttributes"] if s["mutability"] == "readOnly"}
    strip = lambda item: {k: v for k, v in item.items() if k not in read_only}  # noqa: E731
    return [strip(v) for v in value] if attribute["multiValued"] else strip(value)


def _same(sent: object, returned: object, attribute: dict) -> bool:
    """Compare values; a multi-valued attribute's values have no order (RFC 7643 §2.4)."""
    if attribute["multiValued"] and isinstance(sent, list) and isinstance(returned, list):
        key = lambda item: json.dumps(item, sort_keys=True)  # noqa: E731
        return sorted(sent, key=key) == sorted(returned, key=key)
    return sent == returned


def _mismatches(schema: dict, sent: dict, got: dict) -> dict:
    """Return {attribute: (sent, got)} for every writable attribute that did not round-trip."""
    found = {}
    for attribute in _writable(schema):
        name = attribute["name"]
        returned = _without_read_only(got.get(name), attribute)
        if not _same(_expected(sent.get(name), attribute), returned, attribute):
            found[f"{schema['id']}:{name}"] = (sent.get(name), got.get(name))
    return found


def _check_round_trip(api, resource_type: str, sent: dict, got: dict) -> None:
    core, *extensions = _schemas(api, resource_type)
    mismatches = _mismatches(core, sent, got)
    for extension in extensions:
        mismatches.update(_mismatches(extension, sent.get(extension["id"], {}), got.get(extension["id"], {})))
    assert mismatches == {}
    assert got["externalId"] == sent["externalId"]
    assert sorted(got["schemas"]) == sorted(sent["schemas"])


@pytest.fixture
def target(api) -> dict:
    return api.create_user("target@example.com", displayName="Target Person")


@pytest.fixture
def targets(api, target) -> list[dict]:
    return [target, api.create_user("second@example.com", displayName="Second Person")]


@pytest.fixture(params=[0, 1], ids=["variant0", "variant1"])
def full_user(api, target, request) -> dict:
    body = _full_body(api, "User", Generator([target], request.param))
    response = api.post("/Users", body)
    assert response.status_code == 201, response.get_json()
    return {"sent": body, "created": response.get_json()}


# --- Discovery-driven round trips -------------------------------------------------------


def test_roundtrip_generator_covers_every_writable_attribute(api, full_user) -> None:
    sent = full_user["sent"]
    core, enterprise = _schemas(api, "User")
    assert {a["name"] for a in _writable(core)} <= set(sent)
    assert {a["name"] for a in _writable(enterprise)} == set(sent[ENTERPRISE])
    assert "password" in sent and "groups" not in sent and "roles" not in sent
    assert "displayName" not in sent[ENTERPRISE]["manager"]
    assert len(list(_user_attributes(api))) == len(_writable(core)) - 1 + len(_writable(enterprise)) >= 20


def test_roundtrip_user_post_then_get(api, full_user) -> None:
    got = api.get(f"/Users/{full_user['created']['id']}").get_json()
    _check_round_trip(api, "User", full_user["sent"], got)
    assert "password" not in got and "password" not in full_user["created"]


def test_roundtrip_user_post_response_equals_get(api, full_user) -> None:
    _check_round_trip(api, "User", full_user["sent"], full_user["created"])
    assert api.get(f"/Users/{full_user['created']['id']}").get_json() == full_user["created"]


@pytest.mark.parametrize("variant", [0, 1])
def test_roundtrip_user_put_then_get(api, target, variant) -> None:
    user = api.create_user("put@example.com")
    body = {**_full_body(api, "User", Generator([target], variant)), "userName": "put@example.com"}
    response = api.put(f"/Users/{user['id']}", body)
    assert response.status_code == 200, response.get_json()
    _check_round_trip(api, "User", body, api.get(f"/Users/{user['id']}").get_json())


def _user_attributes(api):
    """Yield (schema URN, attribute document) for every writable User attribute but userName."""
    for schema in _schemas(api, "User"):
        yield from ((schema["id"], a) for a in _writable(schema) if a["name"] != "userName")


def _post_one(api, urn: str, name: str, value: object):
    """POST a user holding userName and one attribute, under its URN when it is an extension's."""
    sent = {name: value} if urn == USER else {urn: {name: value}}
    return api.post("/Users", {"userName": f"{name}@example.com", **sent})


def _returned(got: dict, urn: str, name: str) -> object:
    return got.get(name) if urn == USER else got.get(urn, {}).get(name)


def _refused(response) -> bool:
    return response.status_code == 400 and response.get_json().get("scimType") == "invalidValue"


@pytest.mark.parametrize("variant", [0, 1])
def test_roundtrip_user_each_attribute_alone(api, target, variant) -> None:
    generator, failures = Generator([target], variant), {}
    for urn, attribute in _user_attributes(api):
        value = generator.value(attribute, attribute["name"])
        response = _post_one(api, urn, attribute["name"], value)
        got = _without_read_only(_returned(response.get_json(), urn, attribute["name"]), attribute)
        if response.status_code != 201 or got != _expected(value, attribute):
            failures[attribute["name"]] = (response.status_code, value, got)
    assert failures == {}


def test_roundtrip_group_post_then_get(api, target) -> None:
    body = _full_body(api, "Group", Generator([target]))
    assert body["members"] == [{"value": target["id"], "$ref": target["meta"]["location"], "type": "User"}]
    response = api.post("/Groups", body)
    assert response.status_code == 201, response.get_json()
    got = api.get(f"/Groups/{response.get_json()['id']}").get_json()
    _check_round_trip(api, "Group", body, got)
    assert got["members"][0]["display"] == "Target Person"


@pytest.mark.parametrize("variant", [0, 1])
def test_roundtrip_group_put_then_get(api, targets, variant) -> None:
    group = api.create_group("Before")
    # The product's groups hold only Users (members.type "Group" is in the RFC schema, not here).
    body = _full_body(api, "Group", Generator(targets, variant, fixed={"members.type": "User"}))
    assert api.put(f"/Groups/{group['id']}", body).status_code == 200
    _check_round_trip(api, "Group", body, api.get(f"/Groups/{group['id']}").get_json())


WRONG = {"string": 5, "reference": 5, "boolean": 5, "integer": "7", "decimal": "1.5",
         "dateTime": "yesterday", "binary": "not base64!", "complex": 5}


def test_roundtrip_wrong_types_are_400_invalid_value(api) -> None:
    failures = {}
    for urn, attribute in _user_attributes(api):
        value = {"not": "an array"} if attribute["multiValued"] else WRONG[attribute["type"]]
        if not _refused(_post_one(api, urn, attribute["name"], value)):
            failures[attribute["name"]] = value
    assert failures == {}
    assert api.get("/Users").get_json()["totalResults"] == 0


def test_roundtrip_wrong_sub_attribute_types_are_400_invalid_value(api, target) -> None:
    generator, failures = Generator([target]), {}
    for urn, attribute in [(u, a) for u, a in _user_attributes(api) if a["type"] == "complex"]:
        for sub in [s for s in attribute["subAttributes"] if s["mutability"] in WRITABLE]:
            item = {**generator.one(attribute, attribute["name"], 0), sub["name"]: WRONG[sub["type"]]}
            if not _refused(_post_one(api, urn, attribute["name"], [item] if attribute["multiValued"] else item)):
                failures[f"{attribute['name']}.{sub['name']}"] = item
    assert failures == {}
    assert api.get("/Users").get_json()["totalResults"] == 1  # only the target


# --- Read-only and write-only attributes --------------------------------------------------


def test_roundtrip_read_only_values_sent_are_ignored(api, target) -> None:
    group = api.create_group("Real Group", members=[target["id"]])
    body = {"userName": "ro@example.com", "groups": [{"value": group["id"], "display": "Fake"}],
            "roles": [{"value": "global-admin"}], "id": "chosen-id", "meta": {"version": 'W/"99"'},
            ENTERPRISE: {"manager": {"value": target["id"], "displayName": "Not Stored"}}}
    created = api.post("/Users", body).get_json()
    got = api.get(f"/Users/{created['id']}").get_json()
    assert (got["id"] != "chosen-id", "groups" in got, "roles" in got) == (True, False, False)
    assert got[ENTERPRISE]["manager"] == {"value": target["id"]}
    assert got["meta"]["version"] != 'W/"99"'


def test_roundtrip_password_is_never_returned(api) -> None:
    user = api.create_user("pw@example.com", password="correct horse battery staple")
    for response in (api.get(f"/Users/{user['id']}"), api.get(f"/Users/{user['id']}?attributes=password"),
                     api.get('/Users?filter=userName+eq+"pw@example.com"')):
        assert b"password" not in response.get_data() and b"correct horse" not in response.get_data()


# --- attributes / excludedAttributes on a fully populated user (RFC 7644 §3.4.2.5, §3.9) ---


PROJECTIONS = [
    ("attributes=userName", {"schemas", "id", "meta", "userName"}),
    ("attributes=name.givenName", {"schemas", "id", "meta", "name"}),
    ("attributes=emails,title", {"schemas", "id", "meta", "emails", "title"}),
    ("attributes=password", {"schemas", "id", "meta"}),
    (f"attributes={ENTERPRISE}:employeeNumber", {"schemas", "id", "meta", ENTERPRISE}),
    (f"attributes={ENTERPRISE}", {"schemas", "id", "meta", ENTERPRISE}),
    ("attributes=id", {"schemas", "id", "meta"}),
    ("attributes=nosuchthing", {"schemas", "id", "meta"}),
]


@pytest.mark.parametrize(("query", "members"), PROJECTIONS)
def test_roundtrip_attributes_narrow_the_response(api, full_user, query, members) -> None:
    got = api.get(f"/Users/{full_user['created']['id']}?{query}").get_json()
    assert set(got) == members


def test_roundtrip_attributes_sub_attribute_keeps_only_it(api, full_user) -> None:
    sent = full_user["sent"]
    got = api.get(f"/Users/{full_user['created']['id']}?attributes=name.givenName,emails.value").get_json()
    assert got["name"] == {"givenName": sent["name"]["givenName"]}
    assert got["emails"] == [{"value": email["value"]} for email in sent["emails"]]


def test_roundtrip_attributes_extension_attribute(api, full_user) -> None:
    sent = full_user["sent"][ENTERPRISE]
    path = quote(f"{ENTERPRISE}:employeeNumber,{ENTERPRISE}:manager.value")
    got = api.get(f"/Users/{full_user['created']['id']}?attributes={path}").get_json()
    assert got[ENTERPRISE] == {"employeeNumber": sent["employeeNumber"], "manager": {"value": sent["manager"]["value"]}}
    assert got["schemas"] == [USER, ENTERPRISE]


def test_roundtrip_excluded_attributes_remove_only_those(api, full_user) -> None:
    full = api.get(f"/Users/{full_user['created']['id']}").get_json()
    got = api.get(f"/Users/{full_user['created']['id']}?excludedAttributes=emails,name.familyName,id").get_json()
    expected = {k: v for k, v in full.items() if k != "emails"}
    expected["name"] = {k: v for k, v in full["name"].items() if k != "familyName"}
    assert got == expected


def test_roundtrip_excluded_extension_drops_its_urn(api, full_user) -> None:
    got = api.get(f"/Users/{full_user['created']['id']}?excludedAttributes={ENTERPRISE}").get_json()
    assert ENTERPRISE not in got and got["schemas"] == [USER]
    assert got["userName"] == full_user["sent"]["userName"]


def test_roundtrip_excluded_extension_attribute(api, full_user) -> None:
    got = api.get(f"/Users/{full_user['created']['id']}?excludedAttributes={ENTERPRISE}:manager").get_json()
    assert "manager" not in got[ENTERPRISE] and "department" in got[ENTERPRISE]


def test_roundtrip_projection_applies_to_lists_and_searches(api, full_user) -> None:
    name = quote(full_user["sent"]["userName"])
    listed = api.get(f'/Users?filter=userName+eq+"{name}"&attributes=userName,title').get_json()
    searched = api.post("/Users/.search", {"schemas": [SEARCH], "filter": 'title pr', "attributes": ["userName", "title"]})
    for page in (listed, searched.get_json()):
        assert [set(r) for r in page["Resources"]] == [{"schemas", "id", "meta", "userName", "title"}]


def test_roundtrip_projection_applies_to_write_responses(api) -> None:
    response = api.post("/Users?attributes=userName", {"userName": "proj@example.com", "title": "T"})
    assert response.status_code == 201
    assert set(response.get_json()) == {"schemas", "id", "meta", "userName"}
    patched = api.ops(f"/Users/{response.get_json()['id']}?excludedAttributes=title",
                      {"op": "replace", "path": "nickName", "value": "N"})
    assert "title" not in patched.get_json() and patched.get_json()["nickName"] == "N"
