"""PATCH `remove` of several values of every multi-valued attribute (RFC 7644 §3.5.2.2): the exact list left.

Each writable multi-valued attribute of a User starts with four values; a remove names one,
two or three of them by a value filter (`attr[value eq "a" or value eq "b"]`) or by a
`value` list (as Entra ID and Okta send), and exactly the others must remain, in order.
"""

from __future__ import annotations

import copy
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skilljar_scim.base import errors
from skilljar_scim.scim import patch
from skilljar_scim.scim import schemas as s

CERTS = ["MIIBAQ==", "MIIBAg==", "MIIBAw==", "MIIBBA=="]
# attribute: (its four elements, the sub-attribute that identifies one in a filter)
START = {
    "emails": ([{"value": f"u{n}@example.com", "type": t} for n, t in enumerate(["work", "home", "other", "work"])],
               "value"),
    "phoneNumbers": ([{"value": f"+1 555 010{n}", "type": "work"} for n in range(4)], "value"),
    "ims": ([{"value": f"im{n}", "type": "xmpp"} for n in range(4)], "value"),
    "photos": ([{"value": f"https://example.com/p{n}.jpg", "type": "photo"} for n in range(4)], "value"),
    "entitlements": ([{"value": f"ent-{n}"} for n in range(4)], "value"),
    "x509Certificates": ([{"value": c} for c in CERTS], "value"),
    "addresses": ([{"locality": f"Town {n}", "type": "work" if n % 2 else "home"} for n in range(4)], "locality"),
}
CHOICES = [(1,), (0, 2), (0, 1, 3), (3,), (1, 2), (0, 1, 2)]


def _user() -> dict:
    return {"schemas": [s.USER], "id": "u1", "userName": "u@example.com",
            **{name: copy.deepcopy(elements) for name, (elements, _) in START.items()}}


def _run(resource: dict, *ops) -> dict:
    body = {"schemas": [s.PATCH_OP], "Operations": list(ops)}
    return patch.apply(resource, patch.parse(body, s.USER_TYPE), s.USER_TYPE)


def _left(attribute: str, removed: tuple[int, ...]) -> list[dict]:
    elements, _ = START[attribute]
    return [e for n, e in enumerate(elements) if n not in removed]


def _filter(attribute: str, removed: tuple[int, ...], case=str) -> str:
    elements, key = START[attribute]
    terms = " or ".join(f'{key} eq "{case(elements[n][key])}"' for n in removed)
    return f"{attribute}[{terms}]"


@pytest.mark.parametrize("removed", CHOICES)
@pytest.mark.parametrize("attribute", sorted(START))
def test_patch_remove_by_value_filter_leaves_exactly_the_others(attribute, removed) -> None:
    user = _user()
    changed = _run(user, {"op": "remove", "path": _filter(attribute, removed)})
    assert changed[attribute] == _left(attribute, removed)
    assert all(changed[other] == user[other] for other in START if other != attribute)


@pytest.mark.parametrize("removed", CHOICES)
@pytest.mark.parametrize("attribute", sorted(START))
def test_patch_remove_by_value_list_leaves_exactly_the_others(attribute, removed) -> None:
    elements, key = START[attribute]
    named = [{key: elements[n][key]} for n in removed]
    changed = _run(_user(), {"op": "remove", "path": attribute, "value": named})
    assert changed[attribute] == _left(attribute, removed)


@pytest.mark.parametrize("removed", CHOICES)
@pytest.mark.parametrize("attribute", sorted(START))
def test_patch_remove_by_whole_elements_leaves_exactly_the_others(attribute, removed) -> None:
    """Okta names the elements to remove whole (value, type and all)."""
    elements, _ = START[attribute]
    changed = _run(_user(), {"op": "remove", "path": attribute, "value": [elements[n] for n in removed]})
    assert changed[attribute] == _left(attribute, removed)


@pytest.mark.parametrize("removed", CHOICES)
def test_patch_remove_compares_values_as_the_attribute_says(removed) -> None:
    """emails.value is caseExact false (another case names it), x509Certificates.value is binary: exact."""
    upper = {"op": "remove", "path": "emails", "value": [{"value": START["emails"][0][n]["value"].upper()}
                                                         for n in removed]}
    assert _run(_user(), upper)["emails"] == _left("emails", removed)
    by_filter = {"op": "remove", "path": _filter("emails", removed, str.upper)}
    assert _run(_user(), by_filter)["emails"] == _left("emails", removed)
    lowered = {"op": "remove", "path": "x509Certificates", "value": [{"value": CERTS[n].lower()} for n in removed]}
    assert _run(_user(), lowered)["x509Certificates"] == START["x509Certificates"][0]


def test_patch_remove_all_values_of_each_attribute_leaves_none() -> None:
    for attribute in START:
        changed = _run(_user(), {"op": "remove", "path": _filter(attribute, (0, 1, 2, 3))})
        assert attribute not in changed
        assert attribute not in _run(_user(), {"op": "remove", "path": attribute})


def test_patch_remove_of_values_none_of_which_is_there_changes_nothing_or_is_no_target() -> None:
    user = _user()
    assert _run(user, {"op": "remove", "path": "emails", "value": [{"value": "x@y"}, {"value": "z@y"}]}) == user
    with pytest.raises(errors.NoTarget):
        _run(user, {"op": "remove", "path": 'emails[value eq "x@y" or value eq "z@y"]'})


@pytest.mark.parametrize("attribute", ["roles", "groups"])
def test_patch_remove_of_read_only_multi_valued_values_is_mutability(attribute) -> None:
    user = {**_user(), attribute: [{"value": "a"}, {"value": "b"}, {"value": "c"}]}
    for op in ({"op": "remove", "path": f'{attribute}[value eq "a" or value eq "b"]'},
               {"op": "remove", "path": attribute, "value": [{"value": "a"}, {"value": "b"}]}):
        with pytest.raises(errors.Mutability):
            _run(user, op)


# --- a model of the exact list, against random sequences of operations -----------------------

POOL = ["a@x.io", "B@x.io", "c@x.io", "d@x.io"]
TYPES = ["work", "home"]


def _same_email(a: dict, b: dict) -> bool:
    return a.get("type") == b.get("type") and a["value"].casefold() == b["value"].casefold()


def _model(items: list[dict], operation: dict) -> list[dict] | None:
    """What the list must be after one operation (None: the operation must be noTarget)."""
    op, path, value = operation["op"], operation["path"], operation.get("value")
    if op == "remove" and "[" in path:
        named = {v.casefold() for v in operation["named"]}
        left = [e for e in items if e["value"].casefold() not in named]
        return None if len(left) == len(items) else left
    if op == "remove":
        named = {v["value"].casefold() for v in value}
        return [e for e in items if e["value"].casefold() not in named]
    out = [] if op == "replace" else [dict(e) for e in items]
    for element in value:
        if not any(_same_email(e, element) for e in out):
            out.append(dict(element))
    return out


@st.composite
def _operations(draw) -> dict:
    kind = draw(st.sampled_from(["add", "replace", "remove-values", "remove-filter"]))
    values = draw(st.lists(st.sampled_from(POOL).map(lambda v: v if v.islower() else v.swapcase()),
                           min_size=1, max_size=3, unique=True))
    if kind == "remove-filter":
        terms = " or ".join(f'value eq "{v}"' for v in values)
        return {"op": "remove", "path": f"emails[{terms}]", "named": values}
    if kind == "remove-values":
        return {"op": "remove", "path": "emails", "value": [{"value": v} for v in values]}
    types = draw(st.lists(st.sampled_from(TYPES), min_size=len(values), max_size=len(values)))
    return {"op": kind, "path": "emails", "value": [{"value": v, "type": t} for v, t in zip(values, types)]}


@settings(max_examples=300, derandomize=True, deadline=None)
@given(start=st.lists(st.tuples(st.sampled_from(POOL), st.sampled_from(TYPES)), max_size=4, unique_by=lambda p: p[0]),
       operations=st.lists(_operations(), min_size=1, max_size=5))
def test_patch_multi_valued_matches_a_model_of_the_exact_list(start, operations) -> None:
    items = [{"value": v, "type": t} for v, t in start]
    for operation in operations:
        expected = _model(items, operation)
        sent = {k: v for k, v in operation.items() if k != "named"}
        resource = {"schemas": [s.USER], "id": "u1", "userName": "u", **({"emails": items} if items else {})}
        if expected is None:
            with pytest.raises(errors.NoTarget):
                _run(resource, sent)
            continue
        items = _run(resource, sent).get("emails", [])
        assert items == expected, (operation, items, expected)


def test_patch_remove_choices_cover_one_two_and_three_values() -> None:
    assert {len(c) for c in CHOICES} == {1, 2, 3} and all(len(set(c)) == len(c) for c in CHOICES)
    assert set(itertools.chain(*CHOICES)) == {0, 1, 2, 3}
