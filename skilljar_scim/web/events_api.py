"""The events API: GET /api/v1/events, the feed a dashboard polls with a read token."""

from __future__ import annotations

from flask import Blueprint, request

from skilljar_scim.domain import feed
from skilljar_scim.web import http
from skilljar_scim.web.auth import authenticate_events

PATH = "/api/v1/events"


def blueprint() -> Blueprint:
    """Return the events API blueprint, behind a read-scoped bearer token."""
    bp = Blueprint("events", __name__)
    bp.before_request(authenticate_events)
    bp.add_url_rule(PATH, "list_events", list_events, methods=["GET"])
    return bp


@http.read
def list_events():
    """Answer {"data": [...], "next": cursor, "has_more": bool}, oldest first."""
    args = request.args
    answer = feed.page(args.get("after"), feed.check_limit(args.get("limit")), feed.parse_types(args.get("types")),
                       http.settings().events.retention_days)
    return http.respond(answer.as_dict(), mimetype="application/json")
