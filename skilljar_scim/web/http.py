"""Request parsing and response building shared by the views (RFC 7644 §3.1-§3.4, §8)."""

from __future__ import annotations

import json
import math
from typing import Any, Callable

from flask import current_app, g, request
from werkzeug.exceptions import RequestEntityTooLarge

from skilljar_scim.base import textkey
from skilljar_scim.base.errors import InvalidSyntax, InvalidValue, PayloadTooLarge
from skilljar_scim.scim import resources
from skilljar_scim.scim.schemas import GROUP_TYPE, LIST_RESPONSE, ResourceType
from skilljar_scim.domain.search.query import Query

SCIM_JSON = "application/scim+json"
# SCIM messages nest a few levels (a BulkRequest holding a PATCH: about 8); deeper JSON is
# refused before any code walks it recursively.
MAX_JSON_DEPTH = 64


def settings():
    return current_app.config["SKILLJAR_SETTINGS"]


def base_url() -> str:
    """Return the absolute SCIM base URL (RFC 7644 §3.1 Location, meta.location): never from the Host header.

    server.public_base_url when set; else this server's own address (see own_root).
    """
    found = g.get("scim_base_url")
    if found is None:  # once a request
        server = settings().server
        root = server.public_base_url.rstrip("/") or own_root(server, request.scheme, request.environ)
        found = g.scim_base_url = root + server.base_path.rstrip("/")
    return found


def own_root(server, scheme: str, environ: dict) -> str:
    """Return scheme://host[:port] from the configured server.host and port, never from the client.

    Bound to every interface (0.0.0.0, ::), the host is the local address the connection
    reached (SERVER_NAME and SERVER_PORT, which `scim serve` takes from the socket).
    """
    if is_wildcard(server.host):
        host, port = environ.get("SERVER_NAME", ""), environ.get("SERVER_PORT", "")
    else:
        host, port = server.host, str(server.port)
    host = host.strip("[]")
    host = f"[{host}]" if ":" in host else host
    default = {"http": "80", "https": "443"}.get(scheme)
    return f"{scheme}://{host}" if port in ("", default) else f"{scheme}://{host}:{port}"


def is_wildcard(host: str) -> bool:
    """Say whether server.host binds every interface, so it names no address a client can use."""
    return host.strip().strip("[]") in ("", "0.0.0.0", "::")


# What a view declares it does with the store (web/app.py opens the matching transaction):
READ = "read"  # one read snapshot
WRITE = "write"  # body parsed and checked first, then the write lock, held only while it writes
EACH_OPERATION = "each operation"  # its own transactions, one per operation (Bulk, RFC 7644 §3.7)
BODY_METHODS = ("POST", "PUT", "PATCH")


def read(view):
    """Declare that a view only reads the store: it runs in one read snapshot."""
    view.scim_transaction = READ
    return view


def write(view):
    """Declare that a view writes: it runs under the write lock, its body parsed before the lock is taken."""
    view.scim_transaction = WRITE
    return view


def before_lock(prepare: Callable[[Any], Any]):
    """Declare work on a write's parsed body done before the write lock is taken (hashing passwords).

    Its result is `prepared()` in the view: costly work never holds the lock other writers wait on.
    """
    def declare(view):
        view.scim_before_lock = prepare
        return view

    return declare


def after_lock(answer: Callable[[Any], Any]):
    """Declare that a write's answer is built after its commit, from what the view returned (RFC 7644 §3.3).

    Only for answers made from that result alone, reading nothing from the store (a User
    write's instance carries its groups and roles): other writers no longer wait on rendering.
    """
    def declare(view):
        view.scim_after_lock = answer
        return view

    return declare


def prepared() -> Any:
    """Return what the view's before_lock step made of the body."""
    return g.scim_prepared


def each_operation(view):
    """Declare that a view opens its own transaction per operation (/Bulk, RFC 7644 §3.7)."""
    view.scim_transaction = EACH_OPERATION
    return view


def body() -> Any:
    """Return the parsed JSON request body (any JSON content type, any charset JSON allows), parsed once."""
    if "scim_body" not in g:
        g.scim_body = _parse_body()
    return g.scim_body


def _parse_body() -> Any:
    raw = request.get_data(cache=False)
    if not raw.strip():
        raise InvalidSyntax("the request body is empty: a JSON object is required")
    try:
        data = json.loads(raw, object_pairs_hook=_no_duplicates, parse_constant=_no_constant,
                          parse_float=_finite)
    except (ValueError, RecursionError) as exc:
        raise InvalidSyntax(f"the request body is not valid JSON: {exc}") from None
    if not _plainly_safe(raw):
        _check_parsed(data)
    return data


def _plainly_safe(raw: bytes) -> bool:
    """Say whether a body's bytes alone show what _check_parsed checks (most IdP bodies: no walk).

    ASCII without NUL bytes (so UTF-8, not UTF-16 or -32) and no \\u escape: the strict parser
    refuses raw control characters, so no string holds a NUL or a surrogate. No more brackets
    than MAX_JSON_DEPTH: nothing can nest deeper.
    """
    return (raw.isascii() and b"\x00" not in raw and b"\\u" not in raw
            and raw.count(b"{") + raw.count(b"[") <= MAX_JSON_DEPTH)


def _no_constant(name: str) -> None:
    """Refuse NaN and Infinity, which Python accepts but JSON does not (RFC 8259 §6)."""
    raise ValueError(f"{name} is not a JSON value")


def _finite(text: str) -> float:
    """Parse a JSON number with a fraction or exponent; refuse one too large for a double (RFC 8259 §6)."""
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"number {text[:40]!r} is too large")
    return number


def _check_parsed(data: Any) -> None:
    """Refuse nesting deeper than MAX_JSON_DEPTH and strings no SCIM value can hold."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            _check_text(value)
        elif isinstance(value, (dict, list)):
            if depth > MAX_JSON_DEPTH:
                raise InvalidSyntax(f"the request body nests deeper than {MAX_JSON_DEPTH} levels")
            for key in value if isinstance(value, dict) else ():
                _check_text(key)
            stack.extend((item, depth + 1) for item in (value.values() if isinstance(value, dict) else value))


def _check_text(text: str) -> None:
    """Refuse a NUL character (no stored value may hold one) or a lone surrogate such as "\\ud800" (RFC 8259 §8.2)."""
    if "\x00" in text:
        raise InvalidValue("a string in the request body contains a NUL character")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidSyntax("the request body holds a string with an unpaired surrogate escape") from None


def bulk_body() -> Any:
    """Parse a BulkRequest body no larger than bulk.maxPayloadSize (RFC 7644 §3.7.4)."""
    limit = settings().limits.max_bulk_payload_bytes
    request.max_content_length = limit  # replaces server.max_body_bytes for this request
    try:
        return body()
    except RequestEntityTooLarge:
        raise PayloadTooLarge(f"the bulk request is larger than maxPayloadSize ({limit} bytes)") from None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    data: dict = {}
    for key, value in pairs:
        if key in data:
            raise ValueError(f"duplicate key {key!r}")
        data[key] = value
    return data


def arg(name: str, source: dict | None = None) -> Any:
    """Return a query (or search-body) parameter, matching its name case-insensitively (the first given)."""
    return _parameters(source)(name)


def _parameters(source: dict | None) -> Callable[[str], Any]:
    """Return a getter of the query's (or a search body's) parameters by name, case-insensitively."""
    if source is not None:  # a SearchRequest body: a handful of keys
        return lambda name: textkey.get(source, name)
    found = g.get("scim_args")
    if found is None:  # the query string is read once a request
        found = g.scim_args = _first_by_key(request.args.items())
    return lambda name: found.get(textkey.key(name))


def _first_by_key(items) -> dict:
    found: dict = {}
    for name, value in items:
        found.setdefault(textkey.key(name), value)
    return found


def list_query(source: dict | None = None) -> Query:
    """Build a Query from parameters, clamping paging as RFC 7644 §3.4.2.4 says."""
    limits = settings().limits
    param = _parameters(source)
    start = _integer(param("startIndex"), "startIndex", 1)
    count = _integer(param("count"), "count", limits.default_page_size)
    order = (param("sortOrder") or "ascending").strip().lower()
    if order not in ("ascending", "descending"):
        raise InvalidValue(f"sortOrder must be ascending or descending, not {order!r}")
    return Query(
        filter=param("filter"),
        start_index=max(start, 1),
        count=min(max(count, 0), limits.max_page_size),
        sort_by=param("sortBy") or None,
        descending=order == "descending",
    )


def _integer(value: Any, name: str, default: int) -> int:
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    if isinstance(value, bool):
        raise InvalidValue(f"{name} must be an integer, not {value!r}")
    try:
        return int(str(value).strip())
    except ValueError:
        raise InvalidValue(f"{name} must be an integer, not {value!r}") from None


def selection(source: dict | None = None) -> tuple[list[str] | None, list[str] | None]:
    """Return (attributes, excludedAttributes) from the query or a SearchRequest body."""
    param = _parameters(source)
    return _names(param("attributes")), _names(param("excludedAttributes"))


def _names(value: Any) -> list[str] | None:
    if isinstance(value, list):
        return [str(v) for v in value] or None
    return resources.parse_attribute_list(value)


def render(resource: dict, rtype: ResourceType, source: dict | None = None) -> dict:
    attributes, excluded = selection(source)
    return resources.project(resource, rtype, attributes, excluded)


def respond(data: Any, status: int = 200, headers: dict | None = None, mimetype: str = SCIM_JSON):
    """Return a SCIM JSON response (or another JSON type); None is no body at all (204, 304)."""
    if data is None:
        response = current_app.response_class(status=status)
        del response.headers["Content-Type"]  # no content, so no type (RFC 9110 §8.3)
    else:
        body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        response = current_app.response_class(body, status=status, mimetype=mimetype)
    response.headers.update(headers or {})
    return response


def resource_response(resource: dict, rtype: ResourceType, status: int = 200):
    """Answer with one resource, its ETag, and Location when it was created (RFC 7644 §3.3)."""
    meta = resource["meta"]
    headers = {"ETag": meta["version"]}
    if status == 201:
        headers["Location"] = meta["location"]
    return respond(render(resource, rtype), status, headers)


def list_response(page, rtype_of, source: dict | None = None):
    """Answer with a ListResponse (RFC 7644 §3.4.2); Resources is there even when empty."""
    attributes, excluded = selection(source)  # once for the page, not once a resource
    return respond({
        "schemas": [LIST_RESPONSE],
        "totalResults": page.total,
        "startIndex": page.start_index,
        "itemsPerPage": len(page.resources),
        "Resources": [resources.project(r, rtype_of(r), attributes, excluded) for r in page.resources],
    })


def wants_members(source: dict | None = None) -> bool:
    """Say whether a Group response will carry members, so they are read only then."""
    attributes, excluded = selection(source)
    return resources.is_returned(GROUP_TYPE, "members", attributes, excluded)


def list_response_of(docs: list[dict]):
    """Answer with a ListResponse of fixed documents (discovery endpoints, RFC 7644 §4)."""
    return respond({
        "schemas": [LIST_RESPONSE],
        "totalResults": len(docs),
        "startIndex": 1,
        "itemsPerPage": len(docs),
        "Resources": docs,
    })
