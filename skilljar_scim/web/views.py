"""SCIM endpoints (RFC 7644 §3, §4): parse the request, call one domain function, render."""

from __future__ import annotations

from flask import Blueprint, request

from skilljar_scim.domain import bulk, groups, passwords, users
from skilljar_scim.domain.search import root
from skilljar_scim.scim import discovery, resources
from skilljar_scim.scim.resources import Bounds
from skilljar_scim.scim.schemas import GROUP_TYPE, USER_TYPE
from skilljar_scim.store import models
from skilljar_scim.scim.etags import etag, matches
from skilljar_scim.web import http
from skilljar_scim.web.auth import actor, authenticate


def blueprint() -> Blueprint:
    """Return the SCIM API blueprint; every route behind bearer authentication."""
    bp = Blueprint("scim", __name__)
    bp.before_request(authenticate)
    _users(bp)
    _groups(bp)
    _discovery(bp)
    bp.add_url_rule("/.search", "search_all", search_all, methods=["POST"])
    bp.add_url_rule("/Bulk", "bulk", run_bulk, methods=["POST"])
    return bp


@http.read
def healthz():
    """Answer 200 when the store answers (unauthenticated, for load balancers)."""
    models.database.execute_sql("SELECT 1")
    return http.respond({"status": "ok"})


def _limits():
    return http.settings().limits


def _bounds() -> Bounds:
    return Bounds.from_limits(_limits())


# --- Users -------------------------------------------------------------------------


def _users(bp: Blueprint) -> None:
    bp.add_url_rule("/Users", "list_users", list_users, methods=["GET"])
    bp.add_url_rule("/Users", "create_user", create_user, methods=["POST"])
    bp.add_url_rule("/Users/.search", "search_users", search_users, methods=["POST"])
    bp.add_url_rule("/Users/<user_id>", "get_user", get_user, methods=["GET"])
    bp.add_url_rule("/Users/<user_id>", "replace_user", replace_user, methods=["PUT"])
    bp.add_url_rule("/Users/<user_id>", "patch_user", patch_user, methods=["PATCH"])
    bp.add_url_rule("/Users/<user_id>", "delete_user", delete_user, methods=["DELETE"])


@http.read
def list_users(source: dict | None = None):
    limits = _limits()
    page = users.search(http.list_query(source), http.base_url(), limits.max_filter_length, limits.max_filter_depth,
                        sole=True)  # the view's only read
    return http.list_response(page, lambda _: USER_TYPE, source)


@http.read
def search_users():
    return list_users(_search_body())


def _checked_user(body: object) -> users.Checked:
    return users.check(body, _bounds())


def _checked_new_user(body: object) -> users.Checked:
    return users.check(body, _bounds(), new=True)


def _user_answer(user):
    """Answer a User write with the instance it returned: it carries its groups and roles (no read)."""
    return http.resource_response(users.render(user, http.base_url()), USER_TYPE)


def _created_answer(created: users.Created):
    """Answer a create with 201 and Location (RFC 7644 §3.3), after the commit like _user_answer."""
    return http.resource_response(users.render(created.user, http.base_url()), USER_TYPE, 201)


@http.write
@http.before_lock(_checked_new_user)
@http.after_lock(_created_answer)
def create_user():
    return users.create(actor(), http.body(), _bounds(), checked=http.prepared())


@http.read
def get_user(user_id: str):
    user = users.get(user_id, sole=True)  # the view's only read
    if matches(request.headers.get("If-None-Match"), user):
        return http.respond(None, 304, {"ETag": etag(user)})  # RFC 7232 §4.1
    return http.resource_response(users.render(user, http.base_url()), USER_TYPE)


@http.write
@http.before_lock(_checked_user)
@http.after_lock(_user_answer)
def replace_user(user_id: str):
    return users.replace(actor(), user_id, http.body(), request.headers.get("If-Match"), _bounds(),
                         checked=http.prepared())


@http.write
@http.before_lock(passwords.prehash)
@http.after_lock(_user_answer)
def patch_user(user_id: str):
    return users.patch(actor(), user_id, http.body(), request.headers.get("If-Match"), _limits().max_patch_operations,
                       _bounds(), http.prepared())


@http.write
def delete_user(user_id: str):
    users.delete(actor(), user_id, request.headers.get("If-Match"))
    return http.respond(None, 204)


# --- Groups ------------------------------------------------------------------------


def _groups(bp: Blueprint) -> None:
    bp.add_url_rule("/Groups", "list_groups", list_groups, methods=["GET"])
    bp.add_url_rule("/Groups", "create_group", create_group, methods=["POST"])
    bp.add_url_rule("/Groups/.search", "search_groups", search_groups, methods=["POST"])
    bp.add_url_rule("/Groups/<group_id>", "get_group", get_group, methods=["GET"])
    bp.add_url_rule("/Groups/<group_id>", "replace_group", replace_group, methods=["PUT"])
    bp.add_url_rule("/Groups/<group_id>", "patch_group", patch_group, methods=["PATCH"])
    bp.add_url_rule("/Groups/<group_id>", "delete_group", delete_group, methods=["DELETE"])


@http.read
def list_groups(source: dict | None = None):
    limits = _limits()
    page = groups.search(http.list_query(source), http.base_url(), http.wants_members(source),
                         limits.max_filter_length, limits.max_filter_depth)
    return http.list_response(page, lambda _: GROUP_TYPE, source)


@http.read
def search_groups():
    return list_groups(_search_body())


def _group_response(group, status: int = 200):
    return http.resource_response(groups.render(group, http.base_url(), http.wants_members()), GROUP_TYPE, status)


@http.write
def create_group():
    return _group_response(groups.create(actor(), http.body(), _limits().max_members_per_patch, _bounds()), 201)


@http.read
def get_group(group_id: str):
    group = groups.get(group_id)
    if matches(request.headers.get("If-None-Match"), group):
        return http.respond(None, 304)
    return _group_response(group)


@http.write
def replace_group(group_id: str):
    limits = _limits()
    return _group_response(groups.replace(actor(), group_id, http.body(), request.headers.get("If-Match"),
                                          limits.max_members_per_patch, _bounds()))


@http.write
def patch_group(group_id: str):
    limits = _limits()
    group = groups.patch(actor(), group_id, http.body(), request.headers.get("If-Match"),
                         limits.max_patch_operations, limits.max_members_per_patch, _bounds())
    if _patch_answers_no_content():
        return http.respond(None, 204, {"ETag": etag(group)})
    return _group_response(group)


def _patch_answers_no_content() -> bool:
    """Say whether a Group PATCH answers 204 (RFC 7644 §3.5.2: never when attributes are selected)."""
    attributes, excluded = http.selection()
    return http.settings().server.group_patch_response == "no-content" and attributes is None and excluded is None


@http.write
def delete_group(group_id: str):
    groups.delete(actor(), group_id, request.headers.get("If-Match"))
    return http.respond(None, 204)


# --- Search across types, Bulk -----------------------------------------------------


def _search_body() -> dict:
    """Return a SearchRequest body (RFC 7644 §3.4.3) as a parameter source."""
    return resources.check_search_request(http.body())


@http.read
def search_all():
    source = _search_body()
    page = root.search_all(http.list_query(source), http.base_url(), http.wants_members(source), _limits())
    return http.list_response(page, lambda r: USER_TYPE if r["meta"]["resourceType"] == "User" else GROUP_TYPE, source)


@http.each_operation
def run_bulk():
    return http.respond(bulk.execute(actor(), http.bulk_body(), http.base_url(), _limits()))


# --- Discovery (RFC 7644 §4) -----------------------------------------------------------


def _discovery(bp: Blueprint) -> None:
    bp.add_url_rule("/ServiceProviderConfig", "service_provider_config", service_provider_config)
    bp.add_url_rule("/ResourceTypes", "resource_types", resource_types)
    bp.add_url_rule("/ResourceTypes/<name>", "resource_type", resource_type)
    bp.add_url_rule("/Schemas", "schemas", schemas)
    bp.add_url_rule("/Schemas/<schema_id>", "schema", schema)  # a URN holds colons, never "/"


@http.read
def service_provider_config():
    return http.respond(discovery.service_provider_config(_limits(), http.base_url()))


@http.read
def resource_types():
    return http.list_response_of(discovery.resource_types_docs(http.base_url()))


@http.read
def resource_type(name: str):
    return http.respond(discovery.resource_type_named(name, http.base_url()))


@http.read
def schemas():
    return http.list_response_of(discovery.schemas_docs(http.base_url()))


@http.read
def schema(schema_id: str):
    return http.respond(discovery.schema_with_id(schema_id, http.base_url()))
