"""Property tests of request bodies and query parameters through the real app: a SCIM 4xx or a correct result."""

from __future__ import annotations

import dataclasses
import json
import secrets
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skilljar_scim.scim.schemas import USER_TYPE
from skilljar_scim.web.app import create_app
from skilljar_scim.web.http import MAX_JSON_DEPTH

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
FUZZ = settings(max_examples=50,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
BODY_ERRORS = {"invalidSyntax", "invalidValue", "invalidPath", "invalidFilter", "noTarget", "mutability", "tooMany"}
KEYS = ["userName", "USERNAME", "name", "givenName", "emails", "value", "type", "primary", "active", "title",
        "displayName", "members", "schemas", "id", "externalId", "password", "meta", ENTERPRISE, "manager",
        "employeeNumber", "Operations", "op", "path", "filter", "startIndex", "count", "sortBy", "sortOrder",
        "attributes", "excludedAttributes", "method", "bulkId", "data", "version", "failOnErrors"]


def json_values(max_leaves: int = 10) -> st.SearchStrategy:
    """Any JSON value, with the names SCIM messages use as keys; NUL and odd unicode in strings."""
    text = st.one_of(st.text(max_size=8), st.sampled_from(["", "a@example.com", "\x00", "ǅ", "ﬁ", "e\u0301",
                                                            "x" * 200, "True", "W/\"1\""]))
    scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**80), 2**80),
                        st.floats(allow_nan=False, allow_infinity=False), text)
    key = st.one_of(st.sampled_from(KEYS), st.text(max_size=5))
    return st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(key, inner, max_size=4)),
                        max_leaves=max_leaves)


# Each endpoint's success status, and the errors a body or query it cannot use may get (RFC 7644 §3.12).
ANSWERS = {
    ("POST", "/Users"): (201, {400, 409}),
    ("PUT", "/Users/{id}"): (200, {400, 409}),
    ("PATCH", "/Users/{id}"): (200, {400, 409}),
    ("POST", "/Groups"): (201, {400, 409}),
    ("POST", "/Users/.search"): (200, {400}),
    ("POST", "/Groups/.search"): (200, {400}),
    ("POST", "/.search"): (200, {400}),
    ("POST", "/Bulk"): (200, {400, 413}),
    ("GET", "/Users"): (200, {400}),
    ("GET", "/Groups"): (200, {400}),
}
RESOURCE_TYPES = {"/Users": "User", "/Groups": "Group"}


def _assert_scim_answer(api, response, method: str, endpoint: str, resource_id: str | None = None) -> None:
    """Assert the endpoint's success with a well-formed answer, or an error it may give, as a SCIM error body."""
    success, errors = ANSWERS[(method, endpoint)]
    if response.status_code == success:
        assert response.mimetype == "application/scim+json", response.headers
        _assert_success_body(api, response.get_json(), method, endpoint, resource_id)
        return
    assert response.status_code in errors, (response.status_code, response.get_data(as_text=True)[:500])
    scim_type = {409: "uniqueness", 413: None}.get(response.status_code, response.get_json(force=True).get("scimType"))
    body = api.assert_error(response, response.status_code, scim_type)
    if response.status_code == 400:
        assert body.get("scimType") in BODY_ERRORS, body


def _assert_success_body(api, body: dict, method: str, endpoint: str, resource_id: str | None) -> None:
    """A resource is what GET returns for it; a list or Bulk response has its message shape (RFC 7644 §3.4.2, §3.7)."""
    schemas = body["schemas"]
    if endpoint.endswith(".search") or method == "GET":
        assert schemas == ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], body
        assert body["totalResults"] >= len(body.get("Resources", [])) and body["startIndex"] >= 1
        wanted = RESOURCE_TYPES.get(endpoint.removesuffix("/.search"))
        assert all(r["meta"]["resourceType"] == wanted for r in body.get("Resources", []) if wanted), body
        return
    if endpoint == "/Bulk":
        assert schemas == ["urn:ietf:params:scim:api:messages:2.0:BulkResponse"], body
        assert all(str(op["status"]).isdigit() for op in body["Operations"]), body
        return
    kind = RESOURCE_TYPES["/" + endpoint.split("/")[1]]
    assert body["meta"]["resourceType"] == kind and body["meta"]["location"].endswith(f"/{body['id']}"), body
    assert resource_id in (None, body["id"]) and "password" not in body, body
    assert api.get(f"/{endpoint.split('/')[1]}/{body['id']}").get_json() == body  # the answer is what was stored


@pytest.fixture
def alice(api) -> str:
    return api.create_user("alice@example.com")["id"]


# --- any JSON, any bytes -------------------------------------------------------------------------


@settings(FUZZ, max_examples=25)  # seven requests per example
@given(body=st.one_of(json_values(), st.builds(lambda rest, name: {**rest, "userName": name},
                                               st.dictionaries(st.sampled_from(KEYS), json_values(4), max_size=4),
                                               json_values(2))))
def test_fuzz_bodies_any_json_to_every_write_endpoint(api, alice, body) -> None:
    for method, endpoint in [("POST", "/Users"), ("PUT", "/Users/{id}"), ("PATCH", "/Users/{id}"), ("POST", "/Groups"),
                             ("POST", "/Users/.search"), ("POST", "/.search"), ("POST", "/Bulk")]:
        response = api.request(method, endpoint.format(id=alice), body)
        _assert_scim_answer(api, response, method, endpoint, alice if "{id}" in endpoint else None)


@settings(FUZZ, max_examples=30)  # four requests per example
@given(raw=st.one_of(st.binary(max_size=60),
                     st.text(st.characters(exclude_categories=()), max_size=30).map(
                         lambda t: t.encode("utf-8", "surrogatepass")),
                     json_values().map(lambda v: json.dumps(v).encode("utf-16")),
                     st.sampled_from([b"{", b"[]", b"null", b"1e400", b"-Infinity", b'{"a":NaN}', b"\xef\xbb\xbf{}",
                                      b'{"userName":"a"}x', b'{"userName":"\\ud800"}', b'"\\udc00"', b"\x00"])))
def test_fuzz_bodies_any_bytes_are_a_scim_answer(api, alice, raw) -> None:
    for method, endpoint in [("POST", "/Users"), ("PATCH", "/Users/{id}"), ("POST", "/Bulk"), ("POST", "/.search")]:
        response = api.request(method, endpoint.format(id=alice), data=raw)
        _assert_scim_answer(api, response, method, endpoint, alice if "{id}" in endpoint else None)


# --- wrong JSON types for every attribute ---------------------------------------------------------


def _attribute_paths() -> list[tuple[str, ...]]:
    """Every attribute and sub-attribute of the User resource type, as key paths into a body."""
    paths: list[tuple[str, ...]] = []
    for schema in USER_TYPE.schemas:
        prefix = () if schema is USER_TYPE.schema else (schema.id,)
        for attribute in schema.attributes:
            paths.append(prefix + (attribute.name,))
            paths += [prefix + (attribute.name, sub.name) for sub in attribute.sub_attributes]
    return paths + [("externalId",), ("id",), ("meta",), ("schemas",)]


def _body_with(path: tuple[str, ...], value, multi: bool, user_name: str) -> dict:
    """Build a User body holding `value` at `path` (inside an element when the parent is multi-valued)."""
    body: dict = {"schemas": [USER, ENTERPRISE], "userName": user_name}
    holder = body
    for key in path[:-1]:
        holder[key] = {} if key != path[-2] or not multi else [{}]
        holder = holder[key][0] if isinstance(holder[key], list) else holder[key]
    holder[path[-1]] = value
    return body


@FUZZ
@given(path=st.sampled_from(_attribute_paths()), value=json_values(6), n=st.integers(0, 10**9))
def test_fuzz_bodies_wrong_json_types_for_every_attribute(api, path, value, n) -> None:
    multi = len(path) > 1 and any(a.multi_valued and a.name == path[-2] for a in USER_TYPE.schema.attributes)
    response = api.post("/Users", _body_with(path, value, multi, f"user{n}@example.com"))
    _assert_scim_answer(api, response, "POST", "/Users")


# --- duplicate keys, NUL, surrogates, nesting, numbers -----------------------------------------------


@pytest.mark.parametrize(
    ("raw", "status", "scim_type"),
    [
        ('{"userName": "a", "userName": "b"}', 400, "invalidSyntax"),
        ('{"userName": "a", "name": {"givenName": "x", "givenName": "y"}}', 400, "invalidSyntax"),
        ('{"userName": "a", "emails": [{"value": "x", "value": "y"}]}', 400, "invalidSyntax"),
        ('{"userName": "a", "USERNAME": "b"}', 400, "invalidValue"),  # the same attribute in another case
        ('{"userName": "a", "name": {"givenName": "x", "GIVENNAME": "y"}}', 400, "invalidValue"),
        ('{"userName": "a\\u0000b"}', 400, "invalidValue"),
        ('{"userName": "a", "nosuch": "\\u0000"}', 400, "invalidValue"),  # even in an ignored attribute
        ('{"userName": "a\\ud800"}', 400, "invalidSyntax"),
        ('{"userName": "a", "x\\udfff": 1}', 400, "invalidSyntax"),
        ('{"userName": "a", "title": 1e400}', 400, "invalidSyntax"),
        ('{"userName": "a", "x": ' + "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH + "}", 400, "invalidSyntax"),
        ('{"userName": "a", "x": ' + "[" * 900 + "]" * 900 + "}", 400, "invalidSyntax"),
        ('{"userName": "a", "x": ' + "[" * 100_000 + "]" * 100_000 + "}", 400, "invalidSyntax"),
        ('{"userName": "a", "x": ' + "[" * (MAX_JSON_DEPTH - 1) + "]" * (MAX_JSON_DEPTH - 1) + "}", 201, None),
        ('{"userName": "\\ud83d\\ude00"}', 201, None),  # a proper surrogate pair is one character
        # The same refusals in bodies whose bytes hold no "\\u" (json.loads takes UTF-16 and a
        # UTF-8-encoded surrogate too): the bytes are not plain ASCII, so the parsed body is walked.
        ('{"userName": "a", "nosuch": "\\u0000"}'.encode("utf-16-le"), 400, "invalidValue"),
        ('{"userName": "a", "nosuch": "\ud800"}'.encode("utf-8", "surrogatepass"), 400, "invalidSyntax"),
    ],
)
def test_fuzz_bodies_bad_json_is_refused_with_the_right_scim_type(api, raw, status, scim_type) -> None:
    response = api.request("POST", "/Users", data=raw)
    if status == 201:
        assert response.status_code == 201, response.get_json()
    else:
        api.assert_error(response, status, scim_type)


def test_fuzz_bodies_deep_nesting_inside_bulk_data_is_invalid_syntax(api) -> None:
    """Regression: bulkId resolution walked a 900-deep value recursively and answered 500."""
    nested = "[" * 900 + "]" * 900
    raw = ('{"schemas": ["%s"], "Operations": [{"method": "POST", "path": "/Users", "bulkId": "a", '
           '"data": {"userName": "x", "x": %s}}]}' % (BULK, nested))
    api.assert_error(api.request("POST", "/Bulk", data=raw), 400, "invalidSyntax")


@pytest.mark.parametrize("version", [5, ["W/\"1\""], {"v": 1}, True])
def test_fuzz_bodies_bulk_version_of_the_wrong_type_is_invalid_value(api, alice, version) -> None:
    """Regression: a non-string bulk `version` reached the If-Match check and answered 500."""
    body = {"schemas": [BULK], "Operations": [
        {"method": "PUT", "path": f"/Users/{alice}", "version": version, "data": {"userName": "alice@example.com"}},
        {"method": "DELETE", "path": f"/Users/{alice}", "version": version}]}
    response = api.post("/Bulk", body)
    assert response.status_code == 200
    results = response.get_json()["Operations"]
    assert [(r["status"], r["response"]["scimType"]) for r in results] == [("400", "invalidValue")] * 2


def test_fuzz_bodies_nul_in_a_url_path_is_404(api) -> None:
    """Regression: a NUL in an id reached SQL (PostgreSQL refuses it as a parameter)."""
    for path in ("/Users/a%00b", "/Groups/%00", "/Users/x%00/", "/ResourceTypes/User%00"):
        api.assert_error(api.get(path), 404)


# --- body size limits ------------------------------------------------------------------------------


def _sized(size: int, n: int) -> bytes:
    """A valid User body of exactly `size` bytes."""
    head = json.dumps({"userName": f"u{n}@example.com", "title": ""})[:-2]
    raw = (head + "x" * (size - len(head) - 2) + '"}').encode("ascii")
    assert len(raw) == size
    return raw


@pytest.fixture
def small(api, settings):
    """An Api whose app accepts bodies up to 400 bytes, and bulk requests up to 700."""
    server = dataclasses.replace(settings.server, max_body_bytes=400)
    limits = dataclasses.replace(settings.limits, max_bulk_payload_bytes=700)
    app = create_app(dataclasses.replace(settings, server=server, limits=limits))
    app.config["TESTING"] = False
    return type(api)(app, api.token)


@FUZZ
@given(size=st.integers(380, 420), n=st.integers(0, 10**9))
def test_fuzz_bodies_at_and_over_the_size_limit(small, size, n) -> None:
    response = small.request("POST", "/Users", data=_sized(size, n))
    if size > 400:
        small.assert_error(response, 413)
    else:
        assert response.status_code in (201, 409), response.get_json()


@FUZZ
@given(size=st.integers(680, 720))
def test_fuzz_bodies_bulk_at_and_over_its_payload_limit(small, size) -> None:
    body = {"schemas": [BULK], "Operations": [{"method": "DELETE", "path": "/Users/none", "bulkId": ""}]}
    raw = json.dumps(body)
    raw = raw[:-2] + " " * (size - len(raw)) + raw[-2:]
    response = small.request("POST", "/Bulk", data=raw.encode())
    if size > 700:
        small.assert_error(response, 413)
    else:
        assert response.status_code == 200, response.get_json()


# --- query parameters and SearchRequest members -------------------------------------------------------


NUMBERS = st.one_of(st.integers(-(10**30), 10**30).map(str), st.text(max_size=6),
                    st.sampled_from(["", " 2 ", "1.5", "1e3", "0x10", "١٢", "--1", "9" * 5000, "%00", "+3"]))


@pytest.fixture
def people(api) -> list[str]:
    return [api.create_user(f"p{n}@example.com")["id"] for n in range(5)]


def _expected_page(total: int, start_text, count_text, max_page: int) -> tuple[int, int] | None:
    """Return (startIndex, itemsPerPage) RFC 7644 §3.4.2.4 gives, or None when a value is not an integer."""
    try:
        start = 1 if start_text in (None, "") or not str(start_text).strip() else int(str(start_text).strip())
        count = 100 if count_text in (None, "") or not str(count_text).strip() else int(str(count_text).strip())
    except ValueError:
        return None
    start, count = max(start, 1), min(max(count, 0), max_page)
    return start, max(0, min(count, total - start + 1))


@FUZZ
@given(start=NUMBERS, count=NUMBERS)
def test_fuzz_bodies_paging_parameters(api, people, settings, start, count) -> None:
    response = api.get(f"/Users?startIndex={quote(start)}&count={quote(count)}")
    expected = _expected_page(len(people), start, count, settings.limits.max_page_size)
    if expected is None:
        api.assert_error(response, 400, "invalidValue")
        return
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["startIndex"], body["itemsPerPage"], body["totalResults"]) == (*expected, len(people))


@FUZZ
@given(members=st.dictionaries(st.sampled_from(["startIndex", "count", "sortBy", "sortOrder", "attributes",
                                                "excludedAttributes", "filter", "StartIndex", "COUNT", "SortBy",
                                                "SORTORDER", "Attributes", "Filter"]),
                               st.one_of(json_values(4), st.sampled_from(["userName", "descending", "ASCENDING",
                                                                          "emails", "name.givenName", 3])),
                               max_size=4))
def test_fuzz_bodies_search_request_members_of_any_type(api, people, members) -> None:
    for path in ("/Users/.search", "/Groups/.search", "/.search"):
        _assert_scim_answer(api, api.post(path, {"schemas": [SEARCH], **members}), "POST", path)


@FUZZ
@given(params=st.dictionaries(st.sampled_from(["sortBy", "sortOrder", "attributes", "excludedAttributes", "filter",
                                               "SORTBY", "count"]),
                              st.one_of(st.text(max_size=20), st.sampled_from(["userName", "emails.value",
                                        "meta.created", f"{ENTERPRISE}:manager.value", "members", "name", "x.y.z"])),
                              max_size=3))
def test_fuzz_bodies_list_query_parameters(api, people, params) -> None:
    query = "&".join(f"{quote(k)}={quote(v.encode('utf-8', 'surrogatepass'))}" for k, v in params.items())
    for endpoint in ("/Users", "/Groups"):
        _assert_scim_answer(api, api.get(f"{endpoint}?{query}"), "GET", endpoint)


@pytest.mark.parametrize(
    "members",
    [{"sortOrder": 5}, {"sortBy": 5}, {"sortBy": ["userName"]}, {"SortOrder": {}}, {"Filter": 5},
     {"Attributes": "userName"}, {"EXCLUDEDATTRIBUTES": 7}, {"sortBy": None, "filter": None}],
)
def test_fuzz_bodies_search_request_member_types_are_checked(api, members) -> None:
    """Regression: a non-string sortBy/sortOrder (or a member in another case) answered 500."""
    for path in ("/Users/.search", "/Groups/.search", "/.search"):
        response = api.post(path, {"schemas": [SEARCH], **members})
        if all(v is None for v in members.values()):
            assert response.status_code == 200
        else:
            api.assert_error(response, 400, "invalidValue")


# --- unicode userNames ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("alice@example.com", "ALICE@EXAMPLE.COM"),
        ("zoë", "zoe\u0308"),  # NFC and NFD
        ("ﬁona", "FIONA"),  # full case folding maps the ligature ﬁ to fi
        ("straße", "STRASSE"),  # full case folding
        ("Ǆemal", "ǆemal"),
        ("ｗｉｄｅ", "ＷＩＤＥ"),  # full-width forms, in another case
    ],
)
def test_fuzz_bodies_user_names_equal_by_case_or_normalisation_are_one_name(api, first, second) -> None:
    created = api.create_user(first)
    api.assert_error(api.post("/Users", {"userName": second}), 409, "uniqueness")
    found = api.get(f"/Users?filter={quote('userName eq ' + json.dumps(second))}").get_json()
    assert [r["id"] for r in found["Resources"]] == [created["id"]]
    other = api.create_user("someone@example.com")
    response = api.patch(f"/Users/{other['id']}", {"schemas": [PATCH_OP], "Operations": [
        {"op": "replace", "path": "userName", "value": second}]})
    api.assert_error(response, 409, "uniqueness")


@pytest.mark.parametrize(("first", "second"), [("ｗｉｄｅ", "wide"), ("x²", "x2"), ("①", "1"), ("a\u00a0b", "a b")])
def test_fuzz_bodies_user_names_that_only_look_alike_are_two_names(api, first, second) -> None:
    """Compatibility look-alikes are different names (base/textkey.py): each is its own user."""
    created = api.create_user(first)
    other = api.create_user(second)
    found = api.get(f"/Users?filter={quote('userName eq ' + json.dumps(second))}").get_json()
    assert [r["id"] for r in found["Resources"]] == [other["id"]] != [created["id"]]


# --- very long strings ---------------------------------------------------------------------------------




def _long(size: int) -> str:
    """Return `size` random hex characters: they do not compress, as PostgreSQL would try."""
    return secrets.token_hex(size)[:size]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/Users", lambda v: {"userName": v}),
        ("/Users", lambda v: {"userName": "a@example.com", "externalId": v}),
        ("/Users", lambda v: {"userName": "b@example.com", "emails": [{"value": v}]}),
        ("/Groups", lambda v: {"displayName": v}),
        ("/Groups", lambda v: {"displayName": "G", "externalId": v}),
    ],
)
def test_fuzz_bodies_indexed_values_over_1024_bytes_are_invalid_value(api, path, body) -> None:
    """Regression: on PostgreSQL a userName (or other indexed value) over ~2.7 kB failed the index write: 500."""
    api.assert_error(api.post(path, body(_long(1025))), 400, "invalidValue")
    api.assert_error(api.post(path, body("ŉ" * 400)), 400, "invalidValue")  # 800 bytes; case folding: 1,200
    assert api.post(path, body(_long(1024))).status_code == 201


def test_fuzz_bodies_long_values_elsewhere_are_stored_whole(api) -> None:
    # Up to limits.max_resource_bytes (64 KiB of JSON) a value is kept whole; past it the
    # whole resource is refused, never truncated.
    user = api.create_user("long@example.com", title=_long(40_000), name={"formatted": "é" * 10_000})
    fetched = api.get(f"/Users/{user['id']}").get_json()
    assert len(fetched["title"]) == 40_000 and fetched["name"]["formatted"] == "é" * 10_000
    over = api.post("/Users", {"userName": "longer@example.com", "title": _long(70_000)})
    api.assert_error(over, 400, "invalidValue")
