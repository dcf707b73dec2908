"""Discovery documents (RFC 7643 §5-§7, RFC 7644 §4) rendered from the schema data.

Pure functions returning JSON-ready dicts; the views only serialise them. What they
advertise must match what the server does, so the limits come from one `Limits` value.
"""

from __future__ import annotations

from dataclasses import dataclass

from skilljar_scim.base.errors import NotFound
from skilljar_scim.scim import schemas as s


@dataclass(frozen=True)
class Limits:
    """What /ServiceProviderConfig advertises (RFC 7643 §5)."""

    max_page_size: int = 200  # filter.maxResults: the most resources one list returns
    max_bulk_operations: int = 100  # bulk.maxOperations
    max_bulk_payload_bytes: int = 1_048_576  # bulk.maxPayloadSize


def service_provider_config(
    limits: Limits, base_url: str, documentation_uri: str | None = None
) -> dict:
    """Return the /ServiceProviderConfig document (RFC 7643 §5)."""
    doc: dict = {"schemas": [s.SERVICE_PROVIDER_CONFIG]}
    if documentation_uri:
        doc["documentationUri"] = documentation_uri
    doc.update(
        patch={"supported": True},
        bulk={
            "supported": True,
            "maxOperations": limits.max_bulk_operations,
            "maxPayloadSize": limits.max_bulk_payload_bytes,
        },
        filter={"supported": True, "maxResults": limits.max_page_size},
        # Passwords are write-only and stored only hashed; no change-password flow.
        changePassword={"supported": False},
        sort={"supported": True},
        etag={"supported": True},
        authenticationSchemes=[_bearer_scheme(documentation_uri)],
        meta=_meta("ServiceProviderConfig", f"{_base(base_url)}/ServiceProviderConfig"),
    )
    return doc


def _bearer_scheme(documentation_uri: str | None) -> dict:
    """Describe OAuth bearer token authentication (RFC 7643 §5, RFC 6750)."""
    scheme = {
        "type": "oauthbearertoken",
        "name": "OAuth Bearer Token",
        "description": "Authentication with a bearer token in the Authorization header; "
        "tokens are issued with `scim token generate`.",
        "specUri": "https://www.rfc-editor.org/info/rfc6750",
        "primary": True,
    }
    if documentation_uri:
        scheme["documentationUri"] = documentation_uri
    return scheme


def resource_type_doc(rtype: s.ResourceType, base_url: str) -> dict:
    """Return one /ResourceTypes document (RFC 7643 §6)."""
    return {
        "schemas": [s.RESOURCE_TYPE],
        "id": rtype.name,
        "name": rtype.name,
        "endpoint": rtype.endpoint,
        "description": rtype.description,
        "schema": rtype.schema.id,
        "schemaExtensions": [{"schema": ext.id, "required": False} for ext in rtype.extensions],
        "meta": _meta("ResourceType", f"{_base(base_url)}/ResourceTypes/{rtype.name}"),
    }


def schema_doc(schema: s.Schema, base_url: str) -> dict:
    """Return one /Schemas document (RFC 7643 §7).

    Common attributes (id, externalId, meta) are not listed: RFC 7643 §3.1 says they
    are not part of any schema.
    """
    return {
        "schemas": [s.SCHEMA],
        "id": schema.id,
        "name": schema.name,
        "description": schema.description,
        "attributes": [attribute_doc(a) for a in schema.attributes],
        "meta": _meta("Schema", f"{_base(base_url)}/Schemas/{schema.id}"),
    }


def attribute_doc(attribute: s.Attribute) -> dict:
    """Render one attribute definition with its characteristics (RFC 7643 §7)."""
    doc = {
        "name": attribute.name,
        "type": attribute.type,
        "multiValued": attribute.multi_valued,
        "description": attribute.description,
        "required": attribute.required,
        "caseExact": attribute.case_exact,
        "mutability": attribute.mutability,
        "returned": attribute.returned,
        "uniqueness": attribute.uniqueness,
    }
    if attribute.canonical_values:
        doc["canonicalValues"] = list(attribute.canonical_values)
    if attribute.type == "reference":
        doc["referenceTypes"] = list(attribute.reference_types)
    if attribute.type == "complex":
        doc["subAttributes"] = [attribute_doc(a) for a in attribute.sub_attributes]
    return doc


def schemas_docs(base_url: str) -> list[dict]:
    """Return every schema document the server serves at /Schemas (RFC 7644 §4)."""
    return [schema_doc(schema, base_url) for schema in s.SCHEMAS]


def resource_types_docs(base_url: str) -> list[dict]:
    """Return every resource type document served at /ResourceTypes (RFC 7644 §4)."""
    return [resource_type_doc(rtype, base_url) for rtype in s.RESOURCE_TYPES]


def resource_type_named(name: str, base_url: str) -> dict:
    """Return the /ResourceTypes/{name} document, or raise NotFound (RFC 7644 §4)."""
    found = next((r for r in s.RESOURCE_TYPES if r.name == name), None)
    if found is None:
        raise NotFound(f"no resource type {name!r}")
    return resource_type_doc(found, base_url)


def schema_with_id(urn: str, base_url: str) -> dict:
    """Return the /Schemas/{id} document, or raise NotFound (RFC 7644 §4)."""
    found = next((schema for schema in s.SCHEMAS if schema.id == urn), None)
    if found is None:
        raise NotFound(f"no schema {urn!r}")
    return schema_doc(found, base_url)


def _meta(resource_type: str, location: str) -> dict:
    """Build the meta object of a discovery document (RFC 7643 §3.1)."""
    return {"resourceType": resource_type, "location": location}


def _base(base_url: str) -> str:
    """Drop a trailing slash so locations never contain '//'."""
    return base_url.rstrip("/")
