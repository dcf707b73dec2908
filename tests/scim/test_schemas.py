"""Schema definitions (RFC 7643 §3.1, §4, §8.7.1), path resolution and discovery documents."""

import json

import pytest

from skilljar_scim.scim import discovery
from skilljar_scim.scim import schemas as s

BASE = "http://host:8080/scim/v2"
ENT = s.ENTERPRISE_USER


def _attr(schema: s.Schema, dotted: str) -> s.Attribute:
    name, _, sub = dotted.partition(".")
    attribute = schema.attribute(name)
    return attribute.sub(sub) if sub else attribute


def _walk(attributes):
    for attribute in attributes:
        yield attribute
        yield from _walk(attribute.sub_attributes)


@pytest.mark.parametrize(
    "schema, path, field, expected",
    [
        (s.USER_SCHEMA, "userName", "required", True),
        (s.USER_SCHEMA, "userName", "uniqueness", "server"),
        (s.USER_SCHEMA, "userName", "case_exact", False),
        (s.USER_SCHEMA, "password", "mutability", "writeOnly"),
        (s.USER_SCHEMA, "password", "returned", "never"),
        (s.USER_SCHEMA, "active", "type", "boolean"),
        (s.USER_SCHEMA, "profileUrl", "reference_types", ("external",)),
        (s.USER_SCHEMA, "emails", "multi_valued", True),
        (s.USER_SCHEMA, "emails.type", "canonical_values", ("work", "home", "other")),
        (s.USER_SCHEMA, "emails.primary", "type", "boolean"),
        (s.USER_SCHEMA, "phoneNumbers.type", "canonical_values",
         ("work", "home", "mobile", "fax", "pager", "other")),
        (s.USER_SCHEMA, "ims.type", "canonical_values",
         ("aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo")),
        (s.USER_SCHEMA, "photos.value", "type", "reference"),
        (s.USER_SCHEMA, "photos.type", "canonical_values", ("photo", "thumbnail")),
        (s.USER_SCHEMA, "addresses.type", "canonical_values", ("work", "home", "other")),
        (s.USER_SCHEMA, "addresses.primary", "type", "boolean"),
        (s.USER_SCHEMA, "groups", "mutability", "readOnly"),
        (s.USER_SCHEMA, "groups.$ref", "reference_types", ("User", "Group")),
        (s.USER_SCHEMA, "groups.type", "canonical_values", ("direct", "indirect")),
        (s.USER_SCHEMA, "roles", "mutability", "readOnly"),
        (s.USER_SCHEMA, "roles.value", "mutability", "readOnly"),
        (s.USER_SCHEMA, "x509Certificates.value", "type", "binary"),
        (s.ENTERPRISE_USER_SCHEMA, "manager.$ref", "reference_types", ("User",)),
        (s.ENTERPRISE_USER_SCHEMA, "manager.displayName", "mutability", "readOnly"),
        (s.GROUP_SCHEMA, "displayName", "required", True),
        (s.GROUP_SCHEMA, "displayName", "uniqueness", "server"),
        (s.GROUP_SCHEMA, "members.value", "mutability", "immutable"),
        (s.GROUP_SCHEMA, "members.$ref", "reference_types", ("User", "Group")),
        (s.GROUP_SCHEMA, "members.type", "canonical_values", ("User", "Group")),
        (s.GROUP_SCHEMA, "members.display", "mutability", "readOnly"),
    ],
)
def test_schemas_attribute_matches_rfc(schema, path, field, expected):
    assert getattr(_attr(schema, path), field) == expected


@pytest.mark.parametrize("name", ["id", "externalId", "meta", "schemas"])
def test_schemas_common_attributes_are_not_schema_attributes(name):
    for schema in s.SCHEMAS:
        assert schema.attribute(name) is None


def test_schemas_common_attributes_match_rfc():
    id_, external_id, meta = s.COMMON_ATTRIBUTES
    assert (id_.name, id_.mutability, id_.returned, id_.case_exact, id_.uniqueness) == (
        "id", "readOnly", "always", True, "server")
    assert (external_id.name, external_id.mutability, external_id.case_exact) == (
        "externalId", "readWrite", True)
    assert meta.mutability == "readOnly"
    assert [a.name for a in meta.sub_attributes] == [
        "resourceType", "created", "lastModified", "location", "version"]
    assert meta.sub("created").type == meta.sub("lastModified").type == "dateTime"
    assert meta.sub("location").reference_types == ("uri",)


def test_schemas_every_attribute_has_a_description():
    for schema in s.SCHEMAS:
        for attribute in _walk(schema.attributes):
            assert attribute.description, (schema.id, attribute.name)


def test_schemas_characteristics_are_valid_values():
    for attribute in _walk(a for schema in s.SCHEMAS for a in schema.attributes):
        assert attribute.type in (
            "string", "boolean", "decimal", "integer", "dateTime", "reference", "binary",
            "complex")
        assert attribute.mutability in ("readOnly", "readWrite", "immutable", "writeOnly")
        assert attribute.returned in ("always", "never", "default", "request")
        assert attribute.uniqueness in ("none", "server", "global")
        assert bool(attribute.sub_attributes) == (attribute.type == "complex")
        assert bool(attribute.reference_types) == (attribute.type == "reference")


def test_schemas_resource_types_and_urns():
    assert s.RESOURCE_TYPES == (s.USER_TYPE, s.GROUP_TYPE)
    assert s.USER_TYPE.extensions == (s.ENTERPRISE_USER_SCHEMA,)
    assert (s.USER_TYPE.endpoint, s.GROUP_TYPE.endpoint) == ("/Users", "/Groups")
    assert set(s.KNOWN_URNS) == {s.USER, s.ENTERPRISE_USER, s.GROUP}


@pytest.mark.parametrize(
    "rtype, text, schema_id, attribute, sub",
    [
        (s.USER_TYPE, "username", s.USER, "userName", None),
        (s.USER_TYPE, "NAME.GIVENNAME", s.USER, "name", "givenName"),
        (s.USER_TYPE, "emails.value", s.USER, "emails", "value"),
        (s.USER_TYPE, f"{s.USER}:userName", s.USER, "userName", None),
        (s.USER_TYPE, f"{s.USER.upper()}:USERNAME", s.USER, "userName", None),
        (s.USER_TYPE, f"{ENT}:employeeNumber", ENT, "employeeNumber", None),
        (s.USER_TYPE, f"{ENT.lower()}:manager.VALUE", ENT, "manager", "value"),
        (s.USER_TYPE, "id", s.USER, "id", None),
        (s.USER_TYPE, "EXTERNALID", s.USER, "externalId", None),
        (s.USER_TYPE, "meta.lastmodified", s.USER, "meta", "lastModified"),
        (s.USER_TYPE, f"{s.USER}:meta.created", s.USER, "meta", "created"),
        (s.GROUP_TYPE, "displayname", s.GROUP, "displayName", None),
        (s.GROUP_TYPE, "members.$ref", s.GROUP, "members", "$ref"),
        (s.GROUP_TYPE, "meta.version", s.GROUP, "meta", "version"),
    ],
)
def test_resolve_finds_attribute_case_insensitively(rtype, text, schema_id, attribute, sub):
    resolved = rtype.resolve(s.parse_attr_path(text, s.KNOWN_URNS))
    assert resolved.schema.id == schema_id
    assert resolved.attribute.name == attribute
    assert (resolved.sub.name if resolved.sub else None) == sub
    assert resolved.is_extension == (schema_id == ENT)


@pytest.mark.parametrize(
    "rtype, text",
    [
        (s.USER_TYPE, "nosuch"),
        (s.USER_TYPE, "name.nosuch"),
        (s.USER_TYPE, f"{ENT}:id"),  # common attributes are not extension attributes
        (s.USER_TYPE, "urn:example:unknown:thing"),
        (s.GROUP_TYPE, f"{ENT}:department"),
        (s.GROUP_TYPE, "userName"),
    ],
)
def test_resolve_returns_none_for_unknown_paths(rtype, text):
    assert rtype.resolve(s.parse_attr_path(text, s.KNOWN_URNS)) is None


def test_resolved_is_common_only_for_common_attributes():
    resolve = s.USER_TYPE.resolve
    assert resolve(s.AttrPath(None, "externalId")).is_common
    assert not resolve(s.AttrPath(None, "userName")).is_common


# --- discovery ---------------------------------------------------------------------------

ATTRIBUTE_KEYS = {
    "name", "type", "multiValued", "description", "required", "caseExact", "mutability",
    "returned", "uniqueness",
}


def _walk_docs(attribute_docs):
    for doc in attribute_docs:
        yield doc
        yield from _walk_docs(doc.get("subAttributes", []))


def test_discovery_documents_are_json_serialisable():
    docs = [
        discovery.service_provider_config(discovery.Limits(), BASE),
        *discovery.schemas_docs(BASE),
        *discovery.resource_types_docs(BASE),
    ]
    assert json.loads(json.dumps(docs)) == docs


@pytest.mark.parametrize("schema", s.SCHEMAS, ids=lambda schema: schema.name)
def test_schema_doc_lists_every_attribute_with_all_keys(schema):
    doc = discovery.schema_doc(schema, BASE)
    assert (doc["id"], doc["name"]) == (schema.id, schema.name)
    assert doc["meta"] == {"resourceType": "Schema", "location": f"{BASE}/Schemas/{schema.id}"}
    assert [a["name"] for a in doc["attributes"]] == [a.name for a in schema.attributes]
    for attribute in _walk_docs(doc["attributes"]):
        assert ATTRIBUTE_KEYS <= attribute.keys(), attribute["name"]
        assert ("subAttributes" in attribute) == (attribute["type"] == "complex")
        assert ("referenceTypes" in attribute) == (attribute["type"] == "reference")


def test_schema_doc_omits_common_attributes():
    names = {a["name"] for a in discovery.schema_doc(s.USER_SCHEMA, BASE)["attributes"]}
    assert not names & {"id", "externalId", "meta"}


def test_schema_doc_renders_canonical_values_and_sub_attributes():
    doc = discovery.schema_doc(s.USER_SCHEMA, BASE)
    emails = next(a for a in doc["attributes"] if a["name"] == "emails")
    kind = next(a for a in emails["subAttributes"] if a["name"] == "type")
    assert kind["canonicalValues"] == ["work", "home", "other"]
    assert emails["multiValued"] is True


def test_resource_type_doc_describes_user():
    doc = discovery.resource_type_doc(s.USER_TYPE, BASE + "/")
    assert doc == {
        "schemas": [s.RESOURCE_TYPE],
        "id": "User",
        "name": "User",
        "endpoint": "/Users",
        "description": s.USER_TYPE.description,
        "schema": s.USER,
        "schemaExtensions": [{"schema": ENT, "required": False}],
        "meta": {"resourceType": "ResourceType", "location": f"{BASE}/ResourceTypes/User"},
    }


def test_resource_types_docs_list_user_and_group():
    docs = discovery.resource_types_docs(BASE)
    assert [d["id"] for d in docs] == ["User", "Group"]
    assert docs[1]["schemaExtensions"] == []


def test_service_provider_config_advertises_limits_and_features():
    limits = discovery.Limits(max_page_size=50, max_bulk_operations=7, max_bulk_payload_bytes=99)
    doc = discovery.service_provider_config(limits, BASE, "https://docs.example/scim")
    assert doc["schemas"] == [s.SERVICE_PROVIDER_CONFIG]
    assert doc["documentationUri"] == "https://docs.example/scim"
    assert doc["patch"] == {"supported": True}
    assert doc["bulk"] == {"supported": True, "maxOperations": 7, "maxPayloadSize": 99}
    assert doc["filter"] == {"supported": True, "maxResults": 50}
    assert doc["changePassword"] == {"supported": False}
    assert doc["sort"] == doc["etag"] == {"supported": True}
    (scheme,) = doc["authenticationSchemes"]
    assert (scheme["type"], scheme["name"], scheme["primary"]) == (
        "oauthbearertoken", "OAuth Bearer Token", True)
    assert "scim token generate" in scheme["description"]
    assert doc["meta"] == {
        "resourceType": "ServiceProviderConfig",
        "location": f"{BASE}/ServiceProviderConfig",
    }


def test_service_provider_config_defaults():
    doc = discovery.service_provider_config(discovery.Limits(), BASE)
    assert "documentationUri" not in doc
    assert doc["filter"]["maxResults"] == 200
    assert doc["bulk"]["maxOperations"] == 100
    assert doc["bulk"]["maxPayloadSize"] == 1_048_576


@pytest.mark.parametrize("schema", s.SCHEMAS)
def test_schemas_attribute_lookup_finds_the_first_name_in_any_case(schema):
    for attribute in schema.attributes:
        for name in (attribute.name, attribute.name.upper(), attribute.name.swapcase()):
            assert schema.attribute(name) is attribute
    assert schema.attribute("nosuch") is None and schema.attribute("") is None
    twice = s.Schema("urn:x", "X", "x", (s.Attribute("title"), s.Attribute("Title", type="integer")))
    assert twice.attribute("TITLE") is twice.attributes[0]  # the first declared wins, as RFC 7643 §2.1 allows one


def test_schemas_urn_lookup_and_split_prefer_the_longest_known_urn():
    assert s.USER_TYPE.schema_by_urn(ENT.upper()) is s.ENTERPRISE_USER_SCHEMA
    assert s.USER_TYPE.schema_by_urn(s.GROUP) is None
    urns = ("urn:x:a", "urn:x:a:b")  # one URN extends the other: the longer names the schema
    assert s.split_urn("URN:X:A:B:name", urns) == ("URN:X:A:B", "name")
    assert s.split_urn("urn:x:a:c", urns) == ("urn:x:a", "c")
    assert s.split_urn("urn:other:thing:name", urns) == ("urn:other:thing", "name")


@pytest.mark.parametrize("text", ["a", "Z9", "a-b_c", "$ref"])
def test_schemas_attrname_accepts_rfc_names(text):
    assert s.parse_attr_path(text, s.KNOWN_URNS).name == text


@pytest.mark.parametrize("text", ["", "9a", "-a", "_a", "é", "aé", "a b", "a$", "a\nb", "ａ", "a\u0660"])
def test_schemas_attrname_refuses_what_rfc_7643_does_not_allow(text):
    with pytest.raises(ValueError):
        s.parse_attr_path(f"x.{text}", s.KNOWN_URNS)
