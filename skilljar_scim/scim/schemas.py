"""SCIM schemas (RFC 7643 §2-4, §7) as data, and lookup of attribute paths.

This module is the single description of what the server stores and accepts: the
discovery documents (/Schemas, /ResourceTypes) are rendered from it, and the filter,
PATCH and resource code consult it for types, mutability and case-exactness.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_USER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SEARCH_REQUEST = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
BULK_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
SERVICE_PROVIDER_CONFIG = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
RESOURCE_TYPE = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"


@dataclass(frozen=True)
class Attribute:
    """One attribute definition (RFC 7643 §2.2, §7)."""

    name: str
    type: str = "string"  # string boolean decimal integer dateTime reference binary complex
    multi_valued: bool = False
    description: str = ""
    required: bool = False
    case_exact: bool = False
    mutability: str = "readWrite"  # readOnly readWrite immutable writeOnly
    returned: str = "default"  # always never default request
    uniqueness: str = "none"  # none server global
    canonical_values: tuple[str, ...] = ()
    reference_types: tuple[str, ...] = ()
    sub_attributes: tuple["Attribute", ...] = ()

    def sub(self, name: str) -> "Attribute | None":
        """Return the sub-attribute called `name` (case-insensitive, RFC 7643 §2.1)."""
        return self._subs_by_name.get(name.lower())

    @cached_property
    def _subs_by_name(self) -> dict[str, "Attribute"]:
        # Rendering a group asks this for every key of every member: keep it a dict lookup.
        return _first_by_lower_name(self.sub_attributes)


@dataclass(frozen=True)
class Schema:
    """One schema (RFC 7643 §7): an id URN, a name and its top-level attributes."""

    id: str
    name: str
    description: str
    attributes: tuple[Attribute, ...] = field(default_factory=tuple)

    def attribute(self, name: str) -> Attribute | None:
        """Return the top-level attribute called `name` (case-insensitive)."""
        return self._by_name.get(name.lower())

    @cached_property
    def required(self) -> tuple[Attribute, ...]:
        """Return the attributes every resource must carry (RFC 7643 §2.2 `required`)."""
        return tuple(a for a in self.attributes if a.required)

    @cached_property
    def _by_name(self) -> dict[str, Attribute]:
        # Every body key, filter path and projected key asks this: keep it a dict lookup.
        return _first_by_lower_name(self.attributes)


@dataclass(frozen=True)
class AttrPath:
    """An attribute path `[URN:]attr[.sub]` (RFC 7644 §3.10), not yet resolved."""

    urn: str | None
    name: str
    sub: str | None = None

    def __str__(self) -> str:
        head = f"{self.urn}:{self.name}" if self.urn else self.name
        return f"{head}.{self.sub}" if self.sub else head


@dataclass(frozen=True)
class Resolved:
    """An attribute path resolved against a resource type: canonical names and definitions."""

    schema: Schema
    attribute: Attribute
    sub: Attribute | None = None

    @property
    def target(self) -> Attribute:
        """Return the innermost attribute the path designates."""
        return self.sub or self.attribute

    @property
    def is_extension(self) -> bool:
        return self.schema.id not in (USER, GROUP)

    @property
    def is_common(self) -> bool:
        """Say whether the path names id, externalId or meta (RFC 7643 §3.1)."""
        return self.attribute in COMMON_ATTRIBUTES


@dataclass(frozen=True)
class ResourceType:
    """A resource type (RFC 7643 §6): its core schema and schema extensions."""

    name: str
    endpoint: str
    description: str
    schema: Schema
    extensions: tuple[Schema, ...] = ()

    @cached_property
    def schemas(self) -> tuple[Schema, ...]:
        return (self.schema, *self.extensions)

    def schema_by_urn(self, urn: str) -> Schema | None:
        """Return the core or extension schema with this URN (case-insensitive)."""
        return self._by_urn.get(urn.lower())

    @cached_property
    def _by_urn(self) -> dict[str, Schema]:
        found: dict[str, Schema] = {}
        for schema in self.schemas:
            found.setdefault(schema.id.lower(), schema)
        return found

    @cached_property
    def counted(self) -> tuple[tuple[Schema, Attribute], ...]:
        """Return (schema, attribute) of every multi-valued attribute, in schema order (for value bounds)."""
        return tuple((s, a) for s in self.schemas for a in s.attributes if a.multi_valued)

    def resolve(self, path: AttrPath) -> Resolved | None:
        """Resolve `path` to its definitions, or None when no such attribute exists.

        Common attributes (id, externalId, meta; RFC 7643 §3.1) belong to no schema but
        resolve as if they were core attributes, plain or qualified by the core URN.
        """
        schema = self.schema_by_urn(path.urn) if path.urn else self.schema
        if schema is None:
            return None
        attribute = schema.attribute(path.name)
        if attribute is None and schema is self.schema:
            attribute = common_attribute(path.name)
        if attribute is None:
            return None
        if path.sub is None:
            return Resolved(schema, attribute)
        sub = attribute.sub(path.sub)
        return Resolved(schema, attribute, sub) if sub else None


def declares(declared: object, urn: str) -> bool:
    """Say whether a message's `schemas` value is a list holding `urn`, in any letter case (RFC 7643 §3)."""
    wanted = urn.lower()
    return isinstance(declared, list) and any(isinstance(s, str) and s.lower() == wanted for s in declared)


def split_urn(text: str, known_urns: tuple[str, ...]) -> tuple[str | None, str]:
    """Split `URN:rest` into (urn, rest); plain `rest` gives (None, rest).

    A known URN is matched case-insensitively as a prefix followed by ':'; for an
    unknown `urn:` prefix the split is at the last ':' (RFC 7644 §3.10).
    """
    lowered = text.lower()
    for prefix, length in _longest_first(known_urns):
        if lowered.startswith(prefix):
            return text[:length], text[length + 1 :]
    if lowered.startswith("urn:") and ":" in text[4:]:
        head, _, rest = text.rpartition(":")
        return head, rest
    return None, text


@lru_cache(maxsize=8)
def _longest_first(known_urns: tuple[str, ...]) -> tuple[tuple[str, int], ...]:
    """Return each known URN lowered with its ':', and its length, longest first (a URN extending another wins)."""
    return tuple((urn.lower() + ":", len(urn)) for urn in sorted(known_urns, key=len, reverse=True))


def parse_attr_path(text: str, known_urns: tuple[str, ...]) -> AttrPath:
    """Parse `[URN:]attr[.sub]`; raise ValueError when it is not a valid attribute path."""
    urn, rest = split_urn(text.strip(), known_urns)
    name, dot, sub = rest.partition(".")
    if not _is_attrname(name) or (dot and not _is_attrname(sub)):
        raise ValueError(f"not a valid attribute path: {text!r}")
    return AttrPath(urn, name, sub if dot else None)


def _is_attrname(text: str) -> bool:
    """ATTRNAME = ALPHA *(nameChar), nameChar = "-" / "_" / DIGIT / ALPHA (RFC 7643 §2.1).

    `$ref` is allowed too: it is how reference sub-attributes are named.
    """
    return text == "$ref" or _ATTRNAME.fullmatch(text) is not None


_ATTRNAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


def coerce_boolean(value: object) -> object:
    """Return True/False for a boolean or the strings "true"/"false" in any case.

    Entra ID and others send booleans as "True"/"False"; anything else is returned
    unchanged so the caller can reject it with invalidValue.
    """
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return value


# --- Attribute definitions (RFC 7643 §3.1, §4, §8.7.1) ---------------------------------
#
# Helpers keep the tables readable; every characteristic not given is the RFC 7643 §2.2
# default (string, single-valued, not required, caseExact false, readWrite, returned
# default, uniqueness none).


def _sub(name: str, description: str, **kwargs) -> Attribute:
    """Build a sub-attribute; defaults are those of RFC 7643 §2.2."""
    return Attribute(name, description=description, **kwargs)


def _multi(
    name: str,
    description: str,
    *,
    value: Attribute | None = None,
    types: tuple[str, ...] = (),
    mutability: str = "readWrite",
) -> Attribute:
    """Build a multi-valued complex attribute with value/display/type/primary (RFC 7643 §2.4)."""
    subs = (
        value or _sub("value", f"The value of a {name} entry.", mutability=mutability),
        _sub("display", "A human-readable name, primarily used for display purposes.",
             mutability=mutability),
        _sub("type", f"A label indicating the {name} entry's function.",
             canonical_values=types, mutability=mutability),
        _sub("primary", "A Boolean value indicating the 'primary' or preferred value; "
             "the primary attribute value 'true' MUST appear no more than once.",
             type="boolean", mutability=mutability),
    )
    return Attribute(name, type="complex", multi_valued=True, description=description,
                     mutability=mutability, sub_attributes=subs)


_NAME = Attribute(
    "name",
    type="complex",
    description="The components of the user's real name.",
    sub_attributes=(
        _sub("formatted", "The full name, including all middle names, titles, and suffixes "
             "as appropriate, formatted for display."),
        _sub("familyName", "The family name of the User, or last name in most Western languages."),
        _sub("givenName", "The given name of the User, or first name in most Western languages."),
        _sub("middleName", "The middle name(s) of the User."),
        _sub("honorificPrefix", "The honorific prefix(es) of the User, or title in most "
             "Western languages (e.g., 'Ms.' given the full name 'Ms. Barbara J Jensen, III')."),
        _sub("honorificSuffix", "The honorific suffix(es) of the User, or suffix in most "
             "Western languages (e.g., 'III' given the full name 'Ms. Barbara J Jensen, III')."),
    ),
)

_ADDRESSES = Attribute(
    "addresses",
    type="complex",
    multi_valued=True,
    description="A physical mailing address for this User.",
    sub_attributes=(
        _sub("formatted", "The full mailing address, formatted for display or use with a "
             "mailing label."),
        _sub("streetAddress", "The full street address component, which may include house "
             "number, street name, P.O. box, and multi-line extended street address information."),
        _sub("locality", "The city or locality component."),
        _sub("region", "The state or region component."),
        _sub("postalCode", "The zip code or postal code component."),
        _sub("country", "The country name component (ISO 3166-1 alpha-2 code)."),
        _sub("type", "A label indicating the address's function, e.g., 'work' or 'home'.",
             canonical_values=("work", "home", "other")),
        _sub("primary", "A Boolean value indicating the 'primary' or preferred address; "
             "'true' MUST appear no more than once.", type="boolean"),
    ),
)

_GROUPS = Attribute(
    "groups",
    type="complex",
    multi_valued=True,
    mutability="readOnly",
    description="A list of groups to which the user belongs, either through direct "
    "membership or through nested groups. Read-only: change membership through the "
    "Group resource.",
    sub_attributes=(
        _sub("value", "The identifier of the User's group.", mutability="readOnly", case_exact=True),
        _sub("$ref", "The URI of the corresponding 'Group' resource to which the user "
             "belongs.", type="reference", reference_types=("User", "Group"),
             mutability="readOnly"),
        _sub("display", "A human-readable name, primarily used for display purposes.",
             mutability="readOnly"),
        _sub("type", "A label indicating the attribute's function, e.g., 'direct' or "
             "'indirect'.", canonical_values=("direct", "indirect"), mutability="readOnly"),
    ),
)

_ROLES = _multi(
    "roles",
    "A list of roles for the User. Read-only in this service: roles are computed by the "
    "server from the mappings of the User's groups to dashboard roles, so clients "
    "change them by changing group membership.",
    mutability="readOnly",
)

USER_SCHEMA = Schema(
    USER,
    "User",
    "User Account",
    (
        Attribute("userName", required=True, uniqueness="server",
                  description="Unique identifier for the User, typically used by the user to "
                  "directly authenticate to the service provider. Each User MUST include a "
                  "non-empty userName value. This identifier MUST be unique across the "
                  "service provider's entire set of Users. REQUIRED."),
        _NAME,
        Attribute("displayName", description="The name of the User, suitable for display "
                  "to end-users."),
        Attribute("nickName", description="The casual way to address the user in real life."),
        Attribute("profileUrl", type="reference", reference_types=("external",),
                  description="A fully qualified URL pointing to a page representing the "
                  "User's online profile."),
        Attribute("title", description="The user's title, such as \"Vice President\"."),
        Attribute("userType", description="Used to identify the relationship between the "
                  "organization and the user, e.g., 'Contractor', 'Employee'."),
        Attribute("preferredLanguage", description="Indicates the User's preferred written "
                  "or spoken language (RFC 7231 Accept-Language format), e.g., 'en-US'."),
        Attribute("locale", description="Used to indicate the User's default location for "
                  "purposes of localizing items such as currency, date time format, or "
                  "numerical representations."),
        Attribute("timezone", description="The User's time zone in the 'Olson' time zone "
                  "database format, e.g., 'America/Los_Angeles'."),
        Attribute("active", type="boolean", description="A Boolean value indicating the "
                  "User's administrative status; false deactivates the account."),
        Attribute("password", mutability="writeOnly", returned="never",
                  description="The User's cleartext password. Write-only: stored only as a "
                  "hash and never returned."),
        _multi("emails", "Email addresses for the user. The value SHOULD be canonicalized "
               "by the service provider, e.g., 'bjensen@example.com' instead of "
               "'bjensen@EXAMPLE.COM'.",
               value=_sub("value", "Email addresses for the user."),
               types=("work", "home", "other")),
        _multi("phoneNumbers", "Phone numbers for the User.",
               value=_sub("value", "Phone number of the User."),
               types=("work", "home", "mobile", "fax", "pager", "other")),
        _multi("ims", "Instant messaging addresses for the User.",
               value=_sub("value", "Instant messaging address for the User."),
               types=("aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo")),
        _multi("photos", "URLs of photos of the User.",
               value=_sub("value", "URL of a photo of the User.", type="reference",
                          reference_types=("external",)),
               types=("photo", "thumbnail")),
        _ADDRESSES,
        _GROUPS,
        _multi("entitlements", "A list of entitlements for the User that represent a thing "
               "the User has."),
        _ROLES,
        _multi("x509Certificates", "A list of certificates issued to the User.",
               # RFC 7643 §2.3.6: "A binary is case exact" (base64 tells A from a).
               value=_sub("value", "The value of an X.509 certificate (DER, base64).",
                          type="binary", case_exact=True)),
    ),
)

_MANAGER = Attribute(
    "manager",
    type="complex",
    description="The User's manager. A complex type that optionally allows service "
    "providers to represent organizational hierarchy by referencing the 'id' attribute "
    "of another User.",
    sub_attributes=(
        _sub("value", "The id of the SCIM resource representing the User's manager.", case_exact=True),
        _sub("$ref", "The URI of the SCIM resource representing the User's manager.",
             type="reference", reference_types=("User",)),
        _sub("displayName", "The displayName of the User's manager.", mutability="readOnly"),
    ),
)

ENTERPRISE_USER_SCHEMA = Schema(
    ENTERPRISE_USER,
    "EnterpriseUser",
    "Enterprise User",
    (
        Attribute("employeeNumber", description="Numeric or alphanumeric identifier "
                  "assigned to a person, typically based on order of hire or association "
                  "with an organization."),
        Attribute("costCenter", description="Identifies the name of a cost center."),
        Attribute("organization", description="Identifies the name of an organization."),
        Attribute("division", description="Identifies the name of a division."),
        Attribute("department", description="Identifies the name of a department."),
        _MANAGER,
    ),
)

_MEMBERS = Attribute(
    "members",
    type="complex",
    multi_valued=True,
    description="A list of members of the Group. Values may be added or removed; their "
    "sub-attributes are immutable. This service accepts only User members.",
    sub_attributes=(
        _sub("value", "Identifier of the member of this Group.", mutability="immutable", case_exact=True),
        _sub("$ref", "The URI corresponding to a SCIM resource that is a member of this "
             "Group.", type="reference", reference_types=("User", "Group"),
             mutability="immutable"),
        # RFC 7643 §8.7.1 does not define display; the server fills it from the member.
        _sub("display", "A human-readable name for the member, set by the server.",
             mutability="readOnly"),
        _sub("type", "A label indicating the type of resource, e.g., 'User' or 'Group'. "
             "This service accepts only 'User'.", canonical_values=("User", "Group"),
             mutability="immutable"),
    ),
)

GROUP_SCHEMA = Schema(
    GROUP,
    "Group",
    "Group",
    (
        # RFC 7643 §4.2 makes displayName REQUIRED; this product also keeps it unique
        # because role mappings name groups by displayName.
        Attribute("displayName", required=True, uniqueness="server",
                  description="A human-readable name for the Group. REQUIRED. Unique "
                  "(case-insensitively) in this service."),
        _MEMBERS,
    ),
)

_META = Attribute(
    "meta",
    type="complex",
    mutability="readOnly",
    description="A complex attribute containing resource metadata, assigned by the "
    "service provider.",
    sub_attributes=(
        _sub("resourceType", "The name of the resource type of the resource.",
             case_exact=True, mutability="readOnly"),
        _sub("created", "The DateTime that the resource was added to the service provider.",
             type="dateTime", mutability="readOnly"),
        _sub("lastModified", "The most recent DateTime that the details of this resource "
             "were updated at the service provider.", type="dateTime", mutability="readOnly"),
        _sub("location", "The URI of the resource being returned.", type="reference",
             reference_types=("uri",), mutability="readOnly"),
        _sub("version", "The version (weak ETag) of the resource being returned.",
             case_exact=True, mutability="readOnly"),
    ),
)

COMMON_ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute("id", case_exact=True, mutability="readOnly", returned="always",
              uniqueness="server", description="A unique identifier for a SCIM resource "
              "as defined by the service provider."),
    Attribute("externalId", case_exact=True, description="A String that is an identifier "
              "for the resource as defined by the provisioning client."),
    _META,
)

USER_TYPE = ResourceType("User", "/Users", "User Account", USER_SCHEMA,
                         (ENTERPRISE_USER_SCHEMA,))
GROUP_TYPE = ResourceType("Group", "/Groups", "Group", GROUP_SCHEMA)
RESOURCE_TYPES: tuple[ResourceType, ...] = (USER_TYPE, GROUP_TYPE)
SCHEMAS: tuple[Schema, ...] = (USER_SCHEMA, ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA)
KNOWN_URNS: tuple[str, ...] = tuple(s.id for s in SCHEMAS)


def common_attribute(name: str) -> Attribute | None:
    """Return the common attribute (id, externalId, meta) called `name` (RFC 7643 §3.1)."""
    return _COMMON_BY_NAME.get(name.lower())


def _first_by_lower_name(attributes: tuple[Attribute, ...]) -> dict[str, Attribute]:
    """Map each lowered name to the first attribute of that name (case-insensitive, RFC 7643 §2.1)."""
    found: dict[str, Attribute] = {}
    for attribute in attributes:
        found.setdefault(attribute.name.lower(), attribute)
    return found


_COMMON_BY_NAME = _first_by_lower_name(COMMON_ATTRIBUTES)
