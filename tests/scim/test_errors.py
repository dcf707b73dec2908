"""The one translation of a domain error into a SCIM error response (RFC 7644 §3.12)."""

from __future__ import annotations

import pytest

from skilljar_scim.base import errors
from skilljar_scim.scim.errors import INTERNAL, error_response
from skilljar_scim.scim.schemas import ERROR


@pytest.mark.parametrize("exc, status, scim_type, headers", [
    (errors.InvalidFilter("bad filter"), 400, "invalidFilter", {}),
    (errors.TooMany("too many"), 400, "tooMany", {}),
    (errors.NotFound("no such user"), 404, None, {}),
    (errors.Conflict("taken"), 409, "uniqueness", {}),
    (errors.PreconditionFailed("stale"), 412, None, {}),
    (errors.PayloadTooLarge("too big"), 413, None, {}),
    (errors.RateLimited("slow down", retry_after=7), 429, None, {"Retry-After": "7"}),
    (errors.StoreBusy("busy"), 503, None, {"Retry-After": "1"}),
    (errors.Unauthorized("no token"), 401, None, {"WWW-Authenticate": 'Bearer realm="x"'}),
])
def test_error_response_status_scim_type_and_headers(exc, status, scim_type, headers) -> None:
    answer = error_response(exc, challenge='Bearer realm="x"')
    assert answer.status == status and answer.headers == headers
    assert answer.body["schemas"] == [ERROR] and answer.body["status"] == str(status)
    assert answer.body.get("scimType") == scim_type and answer.body["detail"] == exc.detail


@pytest.mark.parametrize("exc", [errors.DatabaseError("cannot use /srv/secret.db"), errors.SkilljarError("boom")])
def test_error_response_internal_error_is_generic(exc) -> None:
    answer = error_response(exc)
    assert answer.status == 500 and answer.headers == {}
    assert answer.body["detail"] == INTERNAL and "scimType" not in answer.body
