"""Property tests of filters (RFC 7644 §3.4.2.2): any input gives invalidFilter or the right answer.

The right answer is what the Python evaluator says over every resource: the server narrows
with SQL where it can, so this also checks that SQL and Python agree.
"""

from __future__ import annotations

import json
import unicodedata
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skilljar_scim.base import textkey
from skilljar_scim.base.errors import InvalidFilter
from skilljar_scim.scim import filter as scim_filter
from skilljar_scim.scim.schemas import GROUP_TYPE, USER_TYPE

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
FUZZ = settings(max_examples=60,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

PEOPLE = [
    {"userName": "alice@example.com", "name": {"givenName": "Alice", "familyName": "Liddell"},
     "emails": [{"value": "alice@example.com", "type": "work", "primary": True}], "title": "Engineer",
     ENTERPRISE: {"employeeNumber": "701", "manager": {"value": "boss"}}},
    {"userName": "BOB@Example.COM", "active": False, "externalId": "ext-bob", "title": "engineer",
     "emails": [{"value": "bob@work.example", "type": "work"}, {"value": "Bob@Home.example", "type": "home"}]},
    {"userName": "ﬁona", "displayName": "Zoë", "nickName": "Straße", "locale": "de-DE"},  # ligature fi
    {"userName": "zoe\u0308@example.com", "title": "ß", "emails": [{"value": "ZOË@example.com"}]},  # NFD
    {"userName": "x"},
    {"userName": "日本語", "name": {"formatted": "名前"}, "preferredLanguage": "ja", "profileUrl": "https://例え.jp"},
]
TEXTS = ["alice@example.com", "ALICE@EXAMPLE.COM", "bob", "example", "Engineer", "ENGINEER", "ß", "SS", "ss",
         "ﬁona", "FIONA", "fiona", "Zoë", "zoe\u0308", "ZOË@EXAMPLE.COM", "ext-bob", "work", "home", "701", "boss",
         "日本", "x", "", " ", "2011-05-13T04:42:34Z", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00",
         "2030-01-01", "true", "\x00", "\\", '"', "\u0130", "\u0131"]
USER_ATTRIBUTES = ["userName", "USERNAME", "name.givenName", "name.familyName", "name.formatted", "name",
                   "displayName", "nickName", "title", "locale", "preferredLanguage", "profileUrl", "active",
                   "emails", "emails.value", "EMAILS.VALUE", "emails.type", "emails.primary", "id", "externalId",
                   "meta.created", "meta.lastModified", "meta.resourceType", "schemas", "groups.display",
                   "groups.value", "roles.value", "password", "x509Certificates.value", "phoneNumbers",
                   f"{ENTERPRISE}:employeeNumber", f"{ENTERPRISE}:manager.value", f"{CORE_USER}:userName",
                   "nosuch", "name.nosuch", "emails.nosuch", "userName.x", "members.value"]
GROUP_ATTRIBUTES = ["displayName", "DisplayName", "members", "members.value", "members.display", "members.type",
                    "id", "externalId", "meta.created", "meta.lastModified", "schemas", "userName"]
OPERATORS = ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "EQ", "Co", "pr", "PR", "xx"]


def literals() -> st.SearchStrategy[str]:
    """compValue as written in a filter: JSON strings, numbers, keywords, and some broken ones."""
    return st.one_of(
        st.sampled_from(TEXTS).map(json.dumps),
        st.text(max_size=12).map(json.dumps),
        st.integers(-(10**30), 10**30).map(str),
        st.sampled_from(["true", "false", "null", "TRUE", "Null", "1e999", "-0", "1.5", "00", "1e5", "9" * 400,
                         '"\\ud800"', '"\\u0000"', '"unterminated', "'single'", '"\\x"']),
    )


def filters(attributes: list[str]) -> st.SearchStrategy[str]:
    """Filters built from the grammar's pieces: mostly valid, often mistyped, sometimes broken."""
    attribute = st.sampled_from(attributes)
    comparison = st.builds(lambda a, o, v: f"{a} {o} {v}" if o.lower() != "pr" else f"{a} {o}",
                           attribute, st.sampled_from(OPERATORS), literals())
    valued = st.builds(lambda a, inner: f"{a}[{inner}]", st.sampled_from(["emails", "members", "name", "title"]),
                       st.builds(lambda s, o, v: f"{s} {o} {v}", st.sampled_from(["value", "type", "primary", "x"]),
                                 st.sampled_from(OPERATORS[:9]), literals()))
    return st.recursive(
        st.one_of(comparison, valued),
        lambda inner: st.one_of(
            st.builds(lambda a, op, b: f"{a} {op} {b}", inner, st.sampled_from(["and", "or", "AND", "Or"]), inner),
            inner.map(lambda f: f"({f})"),
            inner.map(lambda f: f"not ({f})"),
            inner.map(lambda f: f"not {f}"),  # parentheses are required after not
        ),
        max_leaves=6,
    )


def mangled(strategy: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Filters with a character dropped, doubled or replaced, to reach the error paths."""
    def mangle(text: str, index: int, kind: str, char: str) -> str:
        i = index % (len(text) + 1)
        return {"drop": text[:i] + text[i + 1:], "double": text[:i] + text[i:i + 1] * 2 + text[i + 1:],
                "insert": text[:i] + char + text[i:]}[kind]
    return st.builds(mangle, strategy, st.integers(0, 10_000), st.sampled_from(["drop", "double", "insert"]),
                     st.sampled_from(list('()[]" .\\\x00') + ["\u00e9", "\ud800", "\u200b"]))


def _parses_or_invalid(text: str, rtype) -> scim_filter.Node | None:
    try:
        return scim_filter.parse(text, rtype)
    except InvalidFilter:
        return None


@pytest.fixture
def population(api):
    """Users and groups with case, ligature and normalisation variants; the canonical JSON of each."""
    users = [api.create_user(body.pop("userName"), **body) for body in json.loads(json.dumps(PEOPLE))]
    api.create_group("Engineering", [users[0]["id"], users[1]["id"]], externalId="eng")
    api.create_group("ENGINEERING ß", [users[2]["id"]])
    api.create_group("Empty")
    return api


def _everything(api, endpoint: str) -> list[dict]:
    body = api.get(f"/{endpoint}?count=1000").get_json()
    assert body["totalResults"] == len(body["Resources"])
    return body["Resources"]


def _check_answer(api, endpoint: str, rtype, text: str, everything: list[dict]) -> None:
    """The server's answer is invalidFilter exactly when parsing fails, else the evaluator's matches."""
    raw = text.encode("utf-8", "surrogatepass")  # a URL carries bytes: a lone surrogate arrives as U+FFFD
    response = api.get(f"/{endpoint}?count=1000&filter={quote(raw, safe='')}")
    text = raw.decode("utf-8", "replace")
    node = _parses_or_invalid(text, rtype)
    if node is None:
        api.assert_error(response, 400, "invalidFilter")
        return
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    expected = sorted(r["id"] for r in everything if scim_filter.matches(node, r))
    assert sorted(r["id"] for r in body["Resources"]) == expected, text
    assert body["totalResults"] == len(expected)


@FUZZ
@given(text=st.one_of(filters(USER_ATTRIBUTES), mangled(filters(USER_ATTRIBUTES))))
def test_fuzz_filter_users_answer_matches_the_evaluator(population, text) -> None:
    everything = population.__dict__.setdefault("users", _everything(population, "Users"))
    _check_answer(population, "Users", USER_TYPE, text, everything)


@FUZZ
@given(text=st.one_of(filters(GROUP_ATTRIBUTES), mangled(filters(GROUP_ATTRIBUTES))))
def test_fuzz_filter_groups_answer_matches_the_evaluator(population, text) -> None:
    everything = population.__dict__.setdefault("groups", _everything(population, "Groups"))
    _check_answer(population, "Groups", GROUP_TYPE, text, everything)


@FUZZ
@given(text=filters(USER_ATTRIBUTES), endpoint=st.sampled_from(["/Users/.search", "/.search"]))
def test_fuzz_filter_search_request_is_a_result_or_invalid_filter(population, text, endpoint) -> None:
    """POSTed searches answer what the evaluator says: /.search is the Users matches then the Groups ones
    (a type the filter does not parse for is skipped; neither parsing is invalidFilter, RFC 7644 §3.4.3)."""
    types = [("Users", USER_TYPE)] + ([("Groups", GROUP_TYPE)] if endpoint == "/.search" else [])
    expected, parsed = [], 0
    for name, rtype in types:
        node = _parses_or_invalid(text, rtype)
        if node is not None:
            parsed += 1
            everything = population.__dict__.setdefault(name.lower(), _everything(population, name))
            expected += sorted(r["id"] for r in everything if scim_filter.matches(node, r))
    body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": text, "count": 1000}
    response = population.post(endpoint, body)
    if not parsed:
        population.assert_error(response, 400, "invalidFilter")
        return
    assert response.status_code == 200, response.get_json()
    answer = response.get_json()
    assert answer["totalResults"] == len(expected) == len(answer["Resources"]), text
    assert sorted(r["id"] for r in answer["Resources"]) == sorted(expected), text


@settings(max_examples=300)
@given(text=st.one_of(st.text(st.characters(exclude_categories=()), max_size=80),
                      mangled(filters(USER_ATTRIBUTES))))
def test_fuzz_filter_parser_is_total_on_any_text(text) -> None:
    """Any text, lone surrogates and NUL included, parses or raises invalidFilter; a tree evaluates."""
    for rtype in (USER_TYPE, GROUP_TYPE):
        node = _parses_or_invalid(text, rtype)
        if node is not None:
            for resource in ({}, {"userName": None, "emails": "odd", "members": [1, None, {"value": 2}]}, PEOPLE[0]):
                assert scim_filter.matches(node, resource) in (True, False)


@pytest.mark.parametrize(
    "text",
    [
        "(" * 2000 + 'userName eq "x"' + ")" * 2000,
        "not (" * 800 + "title pr" + ")" * 800,
        "(" * 4000,
        "emails[" * 1000 + 'value eq "x"' + "]" * 1000,
        'emails[value eq "x" and ' + "(" * 1000 + "type pr" + ")" * 1000 + "]",
        'userName eq "' + "a" * 5000 + '"',
    ],
)
def test_fuzz_filter_deep_or_long_filters_are_invalid_filter_fast(api, settings, parser_steps, text) -> None:
    """Fast by construction, counted not timed: refused at the depth limit, the rest never read."""
    api.assert_error(api.get(f"/Users?filter={quote(text)}"), 400, "invalidFilter")
    assert len(parser_steps) <= 2 * (settings.limits.max_filter_depth + 1), len(parser_steps)


@pytest.fixture
def parser_steps(monkeypatch) -> list[int]:
    """Count the tokens the filter parser consumes (scim/filter.py _Parser.advance)."""
    steps: list[int] = []
    real = scim_filter._Parser.advance
    monkeypatch.setattr(scim_filter._Parser, "advance", lambda self: steps.append(1) or real(self))
    return steps


def _depth(node) -> int:
    """Return the height of a parsed filter tree."""
    children = [getattr(node, name, None) for name in ("left", "right", "inner", "filter")]
    return 1 + max((_depth(child) for child in children if child is not None), default=0)


def test_fuzz_filter_a_flat_chain_at_the_length_limit_answers_correctly_and_fast(api, settings, parser_steps) -> None:
    alice = api.create_user("alice@example.com")
    terms = [f'userName eq "u{n}@example.com"' for n in range(200)] + ['userName eq "ALICE@example.com"']
    text = " or ".join(terms[-1:] + terms)
    while len(text) > settings.limits.max_filter_length:
        terms.pop(0)
        text = " or ".join(terms[-1:] + terms)
    response = api.get(f"/Users?filter={quote(text)}")
    assert response.status_code == 200
    assert [r["id"] for r in response.get_json()["Resources"]] == [alice["id"]]
    # Fast by construction, checked structurally (never timed): each token is read once, and the
    # chain becomes a balanced tree, so neither parsing, SQL building nor evaluation recurses n deep.
    tokens = len(scim_filter._tokenize(text))
    assert len(parser_steps) <= tokens, (len(parser_steps), tokens)
    terms_used = len(terms) + 1
    assert _depth(scim_filter.parse(text, USER_TYPE)) <= terms_used.bit_length() + 1
    api.assert_error(api.get(f"/Users?filter={quote(text + ' or title pr' * 200)}"), 400, "invalidFilter")


@FUZZ
@given(name=st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=12),
       variant=st.sampled_from(["lower", "casefold", "NFC", "NFD", "NFKC", "NFKD", "upper"]))
def test_fuzz_filter_user_name_eq_finds_case_and_normalisation_variants(api, name, variant) -> None:
    """userName is caseExact false: a filter finds, and uniqueness refuses, exactly the names of the
    same base/textkey.key (RFC 7643 §4.1.1); a variant of another key is another user."""
    name = name.strip() or "x"
    other = getattr(str, variant)(name) if variant in ("lower", "casefold", "upper") else \
        unicodedata.normalize(variant, name)
    created = api.post("/Users", {"userName": name})
    if created.status_code == 409:  # an earlier example made a name of the same key
        api.assert_error(created, 409, "uniqueness")
        created = api.get(f"/Users?filter={quote('userName eq ' + json.dumps(name))}")
        assert created.get_json()["totalResults"] == 1
        user_id = created.get_json()["Resources"][0]["id"]
    else:
        assert created.status_code == 201, created.get_json()
        user_id = created.get_json()["id"]
    found = api.get(f"/Users?filter={quote('userName eq ' + json.dumps(other))}").get_json()
    if textkey.key(other) == textkey.key(name):
        assert [r["id"] for r in found["Resources"]] == [user_id], (name, other)
        api.assert_error(api.post("/Users", {"userName": other}), 409, "uniqueness")
    else:
        assert user_id not in [r["id"] for r in found["Resources"]], (name, other)


@pytest.mark.parametrize("variant", ["lower", "casefold", "upper", "NFC", "NFD"])
@pytest.mark.parametrize("name", ["Hx Admins", "Straße", "zoe\u0308", "Ǆemal", "ΐ", "İstanbul", "Ωmega"])
def test_fuzz_filter_case_and_canonical_variants_share_a_key(name, variant) -> None:
    """The variants an IdP may send for one name have one key (dotless ı is the one lossy upper case)."""
    other = getattr(str, variant)(name) if variant in ("lower", "casefold", "upper") else \
        unicodedata.normalize(variant, name)
    assert textkey.key(other) == textkey.key(name)


def test_fuzz_filter_on_schemas_finds_groups(api) -> None:
    """Regression: a Group's canonical form lacked `schemas`, so `schemas eq ...` found no group."""
    group = api.create_group("Engineering")
    for text in ('schemas eq "urn:ietf:params:scim:schemas:core:2.0:Group"', "schemas pr", 'schemas co "group"'):
        found = api.get(f"/Groups?filter={quote(text)}").get_json()
        assert [r["id"] for r in found["Resources"]] == [group["id"]], text
    assert api.get(f"/Groups?filter={quote('not (schemas pr)')}").get_json()["totalResults"] == 0


@pytest.mark.parametrize(
    "text",
    [
        'meta.created gt "0001-01-01T00:00:00+01:00"',  # no UTC form: year 0
        'meta.lastModified lt "9999-12-31T23:59:59-01:00"',  # no UTC form: year 10000
        'userName eq "a\\u0000b"',  # NUL: no stored string holds one; PostgreSQL refuses it
    ],
)
def test_fuzz_filter_literals_that_cannot_be_compared_are_invalid_filter(api, text) -> None:
    """Regression: a dateTime at the calendar's edge overflowed converting to UTC and answered 500."""
    api.assert_error(api.get(f"/Users?filter={quote(text)}"), 400, "invalidFilter")
    api.assert_error(api.get(f"/Groups?filter={quote(text.replace('userName', 'displayName'))}"), 400, "invalidFilter")
