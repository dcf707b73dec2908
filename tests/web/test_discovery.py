"""Discovery endpoints (RFC 7644 §4; RFC 7643 §5-§7): they describe exactly what the server does."""

from __future__ import annotations

import dataclasses

import pytest

from skilljar_scim.web.app import create_app

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
SPC = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
RESOURCE_TYPE = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"
BASE = "http://127.0.0.1:8080/scim/v2"  # server.host and port: never the Host header
CHARACTERISTICS = ("name", "type", "multiValued", "description", "required", "caseExact",
                   "mutability", "returned", "uniqueness")
ENDPOINTS = ["/ServiceProviderConfig", "/ResourceTypes", "/ResourceTypes/User", "/ResourceTypes/Group",
             "/Schemas", f"/Schemas/{USER}", f"/Schemas/{ENTERPRISE}", f"/Schemas/{GROUP}"]


def _ok(response) -> dict:
    """Assert a 200 SCIM JSON response and return its body."""
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/scim+json"
    return response.get_json(force=True)


def _walk(attributes: list[dict], prefix: str = ""):
    """Yield (path, attribute document) for every attribute and sub-attribute."""
    for attribute in attributes:
        path = f"{prefix}{attribute['name']}"
        yield path, attribute
        yield from _walk(attribute.get("subAttributes", []), path + ".")


def _api_with(api, settings, section: str, **changes):
    """Return an Api on a second app built from settings with `section` changed."""
    changed = dataclasses.replace(settings, **{section: dataclasses.replace(getattr(settings, section), **changes)})
    application = create_app(changed)
    application.config["TESTING"] = False
    return type(api)(application, api.token)


# --- /ServiceProviderConfig (RFC 7643 §5) ---------------------------------------------


def test_service_provider_config_advertises_the_configured_limits(api, settings) -> None:
    doc = _ok(api.get("/ServiceProviderConfig"))
    assert doc["schemas"] == [SPC]
    assert doc["filter"] == {"supported": True, "maxResults": settings.limits.max_page_size}
    assert doc["bulk"] == {"supported": True, "maxOperations": settings.limits.max_bulk_operations,
                           "maxPayloadSize": settings.limits.max_bulk_payload_bytes}


@pytest.mark.parametrize(("feature", "supported"), [
    ("patch", True), ("sort", True), ("etag", True), ("changePassword", False), ("bulk", True), ("filter", True),
])
def test_service_provider_config_feature_support(api, feature, supported) -> None:
    assert _ok(api.get("/ServiceProviderConfig"))[feature]["supported"] is supported


def test_service_provider_config_authentication_is_bearer_token(api) -> None:
    schemes = _ok(api.get("/ServiceProviderConfig"))["authenticationSchemes"]
    assert [s["type"] for s in schemes] == ["oauthbearertoken"]
    assert schemes[0]["name"] and schemes[0]["description"]


def test_service_provider_config_meta_location_is_absolute(api) -> None:
    meta = _ok(api.get("/ServiceProviderConfig"))["meta"]
    assert meta == {"resourceType": "ServiceProviderConfig", "location": f"{BASE}/ServiceProviderConfig"}


def test_service_provider_config_filter_max_results_caps_pages(api, settings) -> None:
    changed = _api_with(api, settings, "limits", max_page_size=2)
    for i in range(3):
        changed.create_user(f"cap{i}@example.com")
    page = changed.get("/Users?count=50").get_json()
    assert (page["totalResults"], page["itemsPerPage"], len(page["Resources"])) == (3, 2, 2)


def test_service_provider_config_public_base_url_sets_locations(api, settings) -> None:
    changed = _api_with(api, settings, "server", public_base_url="https://scim.example.com/")
    doc = _ok(changed.get("/ServiceProviderConfig"))
    assert doc["meta"]["location"] == "https://scim.example.com/scim/v2/ServiceProviderConfig"


# --- /ResourceTypes (RFC 7643 §6) -----------------------------------------------------


def test_resource_types_list_is_a_list_response(api) -> None:
    doc = _ok(api.get("/ResourceTypes"))
    assert doc["schemas"] == [LIST_RESPONSE]
    assert (doc["totalResults"], doc["startIndex"], doc["itemsPerPage"]) == (2, 1, 2)
    assert sorted(r["name"] for r in doc["Resources"]) == ["Group", "User"]


@pytest.mark.parametrize(("name", "endpoint", "schema", "extensions"), [
    ("User", "/Users", USER, [{"schema": ENTERPRISE, "required": False}]),
    ("Group", "/Groups", GROUP, []),
])
def test_resource_type_document_describes_the_endpoint(api, name, endpoint, schema, extensions) -> None:
    doc = _ok(api.get(f"/ResourceTypes/{name}"))
    assert doc["schemas"] == [RESOURCE_TYPE]
    assert (doc["id"], doc["name"], doc["endpoint"], doc["schema"]) == (name, name, endpoint, schema)
    assert doc["schemaExtensions"] == extensions
    assert doc["meta"] == {"resourceType": "ResourceType", "location": f"{BASE}/ResourceTypes/{name}"}


@pytest.mark.parametrize("name", ["User", "Group"])
def test_resource_type_listed_equals_single(api, name) -> None:
    listed = next(r for r in _ok(api.get("/ResourceTypes"))["Resources"] if r["name"] == name)
    assert listed == _ok(api.get(f"/ResourceTypes/{name}"))


@pytest.mark.parametrize("name", ["Role", "users", "Users", "Nope"])
def test_resource_type_unknown_is_not_found(api, name) -> None:
    api.assert_error(api.get(f"/ResourceTypes/{name}"), 404)


@pytest.mark.parametrize("name", ["User", "Group"])
def test_resource_type_endpoint_is_served(api, name) -> None:
    endpoint = _ok(api.get(f"/ResourceTypes/{name}"))["endpoint"]
    assert _ok(api.get(endpoint))["schemas"] == [LIST_RESPONSE]


# --- /Schemas (RFC 7643 §7) -----------------------------------------------------------


def test_schemas_list_holds_the_three_schemas(api) -> None:
    doc = _ok(api.get("/Schemas"))
    assert doc["schemas"] == [LIST_RESPONSE]
    assert (doc["totalResults"], doc["startIndex"], doc["itemsPerPage"]) == (3, 1, 3)
    assert sorted(s["id"] for s in doc["Resources"]) == sorted([USER, ENTERPRISE, GROUP])


@pytest.mark.parametrize(("urn", "name"), [(USER, "User"), (ENTERPRISE, "EnterpriseUser"), (GROUP, "Group")])
def test_schema_by_urn_is_served(api, urn, name) -> None:
    doc = _ok(api.get(f"/Schemas/{urn}"))
    assert doc["schemas"] == [SCHEMA]
    assert (doc["id"], doc["name"]) == (urn, name)
    assert doc["meta"] == {"resourceType": "Schema", "location": f"{BASE}/Schemas/{urn}"}


@pytest.mark.parametrize("urn", [USER, ENTERPRISE, GROUP])
def test_schema_listed_equals_single(api, urn) -> None:
    listed = next(s for s in _ok(api.get("/Schemas"))["Resources"] if s["id"] == urn)
    assert listed == _ok(api.get(f"/Schemas/{urn}"))


@pytest.mark.parametrize("urn", [USER, ENTERPRISE, GROUP])
def test_schema_meta_location_resolves(api, urn) -> None:
    location = _ok(api.get(f"/Schemas/{urn}"))["meta"]["location"]
    assert location.startswith("http://")
    assert _ok(api.client.get(location, headers={"Authorization": f"Bearer {api.token}"}))["id"] == urn


@pytest.mark.parametrize("urn", [
    "urn:ietf:params:scim:schemas:core:2.0:Nope", "urn:ietf:params:scim:schemas:core:2.0", "User", "nope/deeper",
])
def test_schema_unknown_is_not_found(api, urn) -> None:
    api.assert_error(api.get(f"/Schemas/{urn}"), 404)


@pytest.mark.parametrize("urn", [USER, ENTERPRISE, GROUP])
def test_schema_attributes_carry_every_characteristic(api, urn) -> None:
    for path, attribute in _walk(_ok(api.get(f"/Schemas/{urn}"))["attributes"]):
        assert all(key in attribute for key in CHARACTERISTICS), path
        assert attribute["description"].strip(), path
        assert attribute["mutability"] in ("readOnly", "readWrite", "immutable", "writeOnly"), path
        assert attribute["returned"] in ("always", "never", "default", "request"), path
        assert attribute["uniqueness"] in ("none", "server", "global"), path
        assert ("subAttributes" in attribute) == (attribute["type"] == "complex"), path
        assert ("referenceTypes" in attribute) == (attribute["type"] == "reference"), path


@pytest.mark.parametrize(("urn", "path", "expected"), [
    (USER, "userName", {"required": True, "uniqueness": "server", "mutability": "readWrite"}),
    (USER, "roles", {"mutability": "readOnly", "multiValued": True}),
    (USER, "roles.value", {"mutability": "readOnly"}),
    (USER, "groups", {"mutability": "readOnly"}),
    (USER, "password", {"mutability": "writeOnly", "returned": "never"}),
    (USER, "active", {"type": "boolean"}),
    (ENTERPRISE, "manager.displayName", {"mutability": "readOnly"}),
    (ENTERPRISE, "manager.$ref", {"type": "reference", "referenceTypes": ["User"]}),
    (GROUP, "displayName", {"required": True, "uniqueness": "server"}),
    (GROUP, "members.display", {"mutability": "readOnly"}),
    (GROUP, "members.value", {"mutability": "immutable", "caseExact": True}),
])
def test_schema_attribute_characteristics(api, urn, path, expected) -> None:
    found = dict(_walk(_ok(api.get(f"/Schemas/{urn}"))["attributes"]))[path]
    assert {key: found[key] for key in expected} == expected


@pytest.mark.parametrize(("resource_type", "body"), [
    ("User", {"displayName": "No Name", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {}}),
    ("Group", {"externalId": "no-name"}),
])
def test_schema_required_attributes_are_enforced(api, resource_type, body) -> None:
    rtype = _ok(api.get(f"/ResourceTypes/{resource_type}"))
    required = [a["name"] for a in _ok(api.get(f"/Schemas/{rtype['schema']}"))["attributes"] if a["required"]]
    assert required
    for name in required:
        error = api.assert_error(api.post(rtype["endpoint"], body), 400, "invalidValue")
        assert name in error["detail"]


def test_schema_roles_sent_by_a_client_are_ignored(api) -> None:
    user = api.create_user("roles@example.com", roles=[{"value": "global-admin"}])
    assert "roles" not in user
    assert "roles" not in _ok(api.get(f"/Users/{user['id']}"))


# --- Read-only endpoints: other methods are 405 (RFC 7644 §4) -------------------------


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("path", ENDPOINTS)
def test_discovery_write_methods_are_not_allowed(api, method, path) -> None:
    response = api.request(method, path, {"schemas": [SCHEMA]})
    api.assert_error(response, 405)
    assert "GET" in response.headers["Allow"]


@pytest.mark.parametrize("path", ENDPOINTS)
def test_discovery_requires_a_token(api, path) -> None:
    response = api.client.get(api.base + path)
    api.assert_error(response, 401)


