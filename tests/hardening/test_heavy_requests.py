"""Heavy requests are cheap or refused at once (issue 11 rule 4): linear multi-valued PATCH, caps, a deadline."""

from __future__ import annotations

import dataclasses
import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from skilljar_scim.base import clock as base_clock
from skilljar_scim.base import config
from skilljar_scim.base.errors import DeadlineExceeded, InvalidValue
from skilljar_scim.scim import patch
from skilljar_scim.scim import resources
from skilljar_scim.scim import schemas as s
from skilljar_scim.web.app import create_app

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"


class Ticking:
    """A controlled clock that moves one second each time it is read: each deadline check costs a 'second'."""

    def __init__(self):
        self.value = 0.0

    def __call__(self) -> float:
        self.value += 1.0
        return self.value


def _app(api, settings, clock=base_clock.monotonic, **limits):
    changed = dataclasses.replace(settings, limits=dataclasses.replace(settings.limits, **limits))
    application = create_app(changed, clock=clock)
    application.config["TESTING"] = False
    return type(api)(application, api.token)


def _emails(count: int, start: int = 0) -> list[dict]:
    return [{"value": f"u{n}@example.com", "type": "work"} for n in range(start, start + count)]


def _add_emails(count: int, start: int = 0) -> dict:
    return {"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "emails", "value": _emails(count, start)}]}


# --- the 5,000-value PATCH ---------------------------------------------------------------------------


def test_heavy_patch_of_5000_values_is_refused_at_once_and_changes_nothing(api, monkeypatch) -> None:
    user = api.create_user("alice@example.com", emails=[{"value": "alice@example.com", "type": "work"}])
    body = _add_emails(5000)
    assert len(json.dumps(body)) > 150_000

    def must_not_run(*_args, **_kwargs):
        raise AssertionError("the operations were applied before the values were counted")

    monkeypatch.setattr(patch, "apply", must_not_run)  # refused while parsing: no value is merged
    response = api.patch(f"/Users/{user['id']}", body)
    detail = api.assert_error(response, 400, "invalidValue")["detail"]
    assert "emails" in detail and "100" in detail
    after = api.get(f"/Users/{user['id']}").get_json()
    assert after["emails"] == user["emails"] and after["meta"]["version"] == user["meta"]["version"]


@pytest.mark.sqlite  # counts statements with a sqlite3 trace callback
def test_heavy_patch_of_5000_values_writes_nothing(api, sql) -> None:
    user = api.create_user("alice@example.com")
    sql.clear()
    api.assert_error(api.patch(f"/Users/{user['id']}", _add_emails(5000)), 400, "invalidValue")
    assert sql and not any(statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")) for statement in sql)


@pytest.mark.parametrize("shape", ["path", "pathless", "replace"])
def test_heavy_patch_value_cap_applies_to_every_operation_shape(api, settings, shape) -> None:
    limited = _app(api, settings, max_values_per_attribute=3)
    user = api.create_user("alice@example.com")
    values = _emails(4)
    operation = {"path": {"op": "add", "path": "emails", "value": values},
                 "pathless": {"op": "add", "value": {"emails": values}},
                 "replace": {"op": "replace", "path": "phoneNumbers", "value": [{"value": f"+1555{n}"} for n in range(4)]},
                 }[shape]
    response = limited.ops(f"/Users/{user['id']}", operation)
    limited.assert_error(response, 400, "invalidValue")
    assert limited.ops(f"/Users/{user['id']}", {"op": "add", "path": "emails", "value": values[:3]}).status_code == 200


def test_heavy_patch_cap_counts_the_values_after_the_patch(api, settings) -> None:
    limited = _app(api, settings, max_values_per_attribute=5)
    user = limited.create_user("alice@example.com", emails=_emails(4))
    response = limited.patch(f"/Users/{user['id']}", _add_emails(2, start=100))
    body = limited.assert_error(response, 400, "invalidValue")
    assert "at most 5 values, not 6" in body["detail"]
    after = limited.get(f"/Users/{user['id']}").get_json()
    assert after["emails"] == user["emails"] and after["meta"]["version"] == user["meta"]["version"]
    assert limited.patch(f"/Users/{user['id']}", _add_emails(1, start=100)).status_code == 200  # 5: at the cap


def test_heavy_post_and_put_are_capped(api, settings) -> None:
    limited = _app(api, settings, max_values_per_attribute=2)
    post = limited.post("/Users", {"schemas": [s.USER], "userName": "a@example.com", "emails": _emails(3)})
    limited.assert_error(post, 400, "invalidValue")
    user = limited.create_user("b@example.com", emails=_emails(2))
    put = limited.put(f"/Users/{user['id']}", {"schemas": [s.USER], "userName": "b@example.com", "emails": _emails(3)})
    limited.assert_error(put, 400, "invalidValue")


def test_heavy_group_members_are_not_counted_as_values(api, settings) -> None:
    limited = _app(api, settings, max_values_per_attribute=1)
    ids = [limited.create_user(f"m{n}@example.com")["id"] for n in range(3)]
    limited.create_group("Engineering", ids)  # members have max_members_per_patch, not this cap
    group = limited.create_group("Ops")
    response = limited.ops(f"/Groups/{group['id']}", {"op": "add", "path": "members", "value": [{"value": i} for i in ids]})
    assert response.status_code == 204


def test_heavy_resource_size_is_capped(api, settings) -> None:
    limited = _app(api, settings, max_resource_bytes=2000)
    limited.create_user("a@example.com", title="x" * 1500)
    post = limited.post("/Users", {"schemas": [s.USER], "userName": "b@example.com", "title": "x" * 2000})
    detail = limited.assert_error(post, 400, "invalidValue")["detail"]
    assert "at most 2000" in detail
    user = limited.create_user("c@example.com")
    grown = limited.ops(f"/Users/{user['id']}", {"op": "replace", "path": "nickName", "value": "y" * 2000})
    limited.assert_error(grown, 400, "invalidValue")
    group = limited.post("/Groups", {"schemas": [s.GROUP], "displayName": "G", "externalId": "z" * 2000})
    limited.assert_error(group, 400, "invalidValue")


def test_heavy_zero_disables_the_caps(api, settings) -> None:
    limited = _app(api, settings, max_values_per_attribute=0, max_resource_bytes=0)
    user = limited.create_user("alice@example.com")
    assert limited.patch(f"/Users/{user['id']}", _add_emails(150)).status_code == 200


def test_heavy_check_bounds_in_the_protocol_layer() -> None:
    bounds = resources.Bounds(max_values=2, max_bytes=0)
    resources.check_bounds(s.USER_TYPE, {"userName": "a", "emails": _emails(2)}, bounds)
    with pytest.raises(InvalidValue):
        resources.check_bounds(s.USER_TYPE, {"userName": "a", "emails": _emails(3)}, bounds)
    resources.check_bounds(s.GROUP_TYPE, {"displayName": "G", "members": [{"value": "x"}] * 5}, bounds)


def test_heavy_limits_settings_defaults_and_file(tmp_path) -> None:
    defaults = config.Settings().limits
    assert (defaults.max_values_per_attribute, defaults.max_resource_bytes, defaults.request_deadline_seconds) == (
        100, 65_536, 10)
    assert resources.Bounds.from_limits(defaults) == resources.Bounds()
    path = tmp_path / "scim.toml"
    path.write_text("[limits]\nmax_values_per_attribute = 7\nmax_resource_bytes = 999\nrequest_deadline_seconds = 3\n")
    loaded = config.load(path, env={}).limits
    assert (loaded.max_values_per_attribute, loaded.max_resource_bytes, loaded.request_deadline_seconds) == (7, 999, 3)


# --- linear work, counted -------------------------------------------------------------------------


def _counting_norm(monkeypatch) -> list[int]:
    calls = [0]
    original = patch._norm

    def counted(attribute, value):
        calls[0] += 1
        return original(attribute, value)

    monkeypatch.setattr(patch, "_norm", counted)
    return calls


def _norm_calls(monkeypatch, size: int, op: dict) -> int:
    """Count the value comparisons of one op on a user holding `size` emails, the op naming `size` more."""
    calls = _counting_norm(monkeypatch)
    resource = {"schemas": [s.USER], "id": "u1", "userName": "a@example.com", "emails": _emails(size)}
    operation = {**op, "value": _emails(size, start=size // 2)}
    ops = patch.parse({"schemas": [PATCH_OP], "Operations": [operation]}, s.USER_TYPE)
    patch.apply(resource, ops, s.USER_TYPE)
    return calls[0]


@pytest.mark.parametrize("op", ["add", "remove", "replace"])
def test_heavy_multi_valued_work_is_linear(monkeypatch, op) -> None:
    small = _norm_calls(monkeypatch, 200, {"op": op, "path": "emails"})
    large = _norm_calls(monkeypatch, 1600, {"op": op, "path": "emails"})
    assert large <= 8 * small * 1.1, (small, large)  # 8x the values: 8x the comparisons, not 64x


def test_heavy_values_without_a_value_sub_attribute_are_matched_linearly(monkeypatch) -> None:
    def addresses(count: int) -> list[dict]:
        return [{"type": "work", "locality": f"Town {n}", "country": "NZ"} for n in range(count)]

    def calls_for(size: int) -> int:
        calls = _counting_norm(monkeypatch)
        resource = {"schemas": [s.USER], "id": "u1", "userName": "a@example.com", "addresses": addresses(size)}
        ops = patch.parse({"schemas": [PATCH_OP], "Operations": [
            {"op": "add", "path": "addresses", "value": addresses(size)},
            {"op": "remove", "path": "addresses", "value": addresses(size // 2)}]}, s.USER_TYPE)
        result = patch.apply(resource, ops, s.USER_TYPE)
        assert len(result["addresses"]) == size - size // 2  # duplicates merged, half removed
        return calls[0]

    small, large = calls_for(200), calls_for(1600)
    assert large <= 8 * small * 1.1, (small, large)


def test_heavy_add_still_merges_duplicates_case_insensitively() -> None:
    resource = {"schemas": [s.USER], "id": "u1", "userName": "a@example.com",
                "emails": [{"value": "A@Example.com", "type": "work"}]}
    ops = patch.parse({"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "emails", "value": [
        {"value": "a@example.COM", "type": "WORK", "primary": True}, {"value": "b@example.com", "type": "work"},
        {"value": "B@example.com", "type": "work"}]}]}, s.USER_TYPE)
    result = patch.apply(resource, ops, s.USER_TYPE)
    assert result["emails"] == [{"value": "A@Example.com", "type": "work", "primary": True},
                                {"value": "b@example.com", "type": "work"}]


# --- the per-request deadline ------------------------------------------------------------------------


def test_heavy_deadline_abandons_a_patch_with_503_and_rolls_it_back(api, settings) -> None:
    limited = _app(api, settings, clock=Ticking(), request_deadline_seconds=5)
    user = limited.create_user("alice@example.com")
    ops = [{"op": "add", "path": "emails", "value": [{"value": f"e{n}@example.com"}]} for n in range(10)]
    response = limited.ops(f"/Users/{user['id']}", *ops)
    body = limited.assert_error(response, 503)
    assert "nothing was changed" in body["detail"]
    after = limited.get(f"/Users/{user['id']}").get_json()
    assert "emails" not in after and after["meta"]["version"] == user["meta"]["version"]
    assert limited.ops(f"/Users/{user['id']}", *ops[:2]).status_code == 200  # inside the deadline


def test_heavy_deadline_stops_a_bulk_request_at_the_operation_it_reached(api, settings) -> None:
    limited = _app(api, settings, clock=Ticking(), request_deadline_seconds=4)
    operations = [{"method": "POST", "path": "/Users", "bulkId": f"b{n}",
                   "data": {"schemas": [s.USER], "userName": f"bulk{n}@example.com"}} for n in range(10)]
    response = limited.post("/Bulk", {"schemas": [BULK], "Operations": operations})
    assert response.status_code == 200
    statuses = [result["status"] for result in response.get_json()["Operations"]]
    assert statuses == ["201", "201", "201", "503"]
    listed = limited.get('/Users?filter=userName sw "bulk"').get_json()
    assert sorted(u["userName"] for u in listed["Resources"]) == [f"bulk{n}@example.com" for n in range(3)]


def test_heavy_deadline_abandons_a_filter_evaluated_in_python(api, settings) -> None:
    for n in range(8):
        api.create_user(f"u{n}@example.com", title="Engineer")
    limited = _app(api, settings, clock=Ticking(), request_deadline_seconds=5)
    limited.assert_error(limited.get('/Users?filter=title eq "Engineer"'), 503)
    roomy = _app(api, settings, clock=Ticking(), request_deadline_seconds=50)
    assert roomy.get('/Users?filter=title eq "Engineer"').get_json()["totalResults"] == 8


def test_heavy_deadline_zero_disables_it(api, settings) -> None:
    limited = _app(api, settings, clock=Ticking(), request_deadline_seconds=0)
    user = limited.create_user("alice@example.com")
    ops = [{"op": "replace", "path": "title", "value": f"t{n}"} for n in range(50)]
    assert limited.ops(f"/Users/{user['id']}", *ops).status_code == 200


def test_heavy_deadline_outside_a_request_never_fires() -> None:
    base_clock.check_deadline()  # the CLI and tests run without one
    ticking = Ticking()
    with base_clock.deadline(2, ticking):
        base_clock.check_deadline()
        with pytest.raises(DeadlineExceeded):
            base_clock.check_deadline()
    base_clock.check_deadline()


# --- against a real server: other writers are never stalled ----------------------------------------


@pytest.mark.e2e
def test_heavy_patches_never_stall_other_writers_on_scim_serve(make_server) -> None:
    server = make_server(workers=1, threads=4)
    token = server.token()["token"]
    status, _, user = server.request("POST", "/Users", token, {"schemas": [s.USER], "userName": "heavy@example.com"})
    assert status == 201

    def heavy(_n: int) -> tuple[int, object]:
        status, _, body = server.request("PATCH", f"/Users/{user['id']}", token, _add_emails(5000))
        return status, body

    def light(n: int) -> int:
        return server.request("POST", "/Users", token, {"schemas": [s.USER], "userName": f"light{n}@example.com"})[0]

    with ThreadPoolExecutor(8) as pool:
        heavies = [pool.submit(heavy, n) for n in range(6)]
        lights = list(pool.map(light, range(20)))
        refused = [future.result() for future in heavies]
    assert lights == [201] * 20
    assert all(status == 400 and body["scimType"] == "invalidValue" for status, body in refused), refused
    status, _, after = server.request("GET", f"/Users/{user['id']}", token)
    assert status == 200 and "emails" not in after
