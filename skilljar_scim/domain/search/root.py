"""Searching every resource type at once: POST /.search at the root (RFC 7644 §3.4.3)."""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

from skilljar_scim.base.errors import InvalidFilter
from skilljar_scim.domain import groups, users
from skilljar_scim.domain.search.query import Page, Query


def search_all(query: Query, base_url: str, with_members: bool, limits) -> Page:
    """Search Users then Groups as one list (RFC 7644 §3.4.3); a type the filter cannot apply to is skipped."""
    searches: list[Callable[[Query], Page]] = [
        lambda q: users.search(q, base_url, limits.max_filter_length, limits.max_filter_depth),
        lambda q: groups.search(q, base_url, with_members, limits.max_filter_length, limits.max_filter_depth),
    ]
    total, found, skip, refusals = 0, [], query.start_index - 1, []
    for search in searches:
        try:
            page = search(replace(query, start_index=skip + 1, count=query.count - len(found)))
        except InvalidFilter as exc:
            refusals.append(exc)
            continue
        total, found, skip = total + page.total, found + page.resources, max(skip - page.total, 0)
    if len(refusals) == len(searches):
        raise refusals[0]
    return Page(total, query.start_index, found)
