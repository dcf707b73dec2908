"""The events feed: pages of feed items by cursor, oldest first, and retention.

A cursor is the id of the last event a consumer has (events.event_id). Ids grow in commit
order: every write runs under the store's single write lock (store/db.write_transaction),
so an event id is allocated and committed before the next writer allocates one; a reader
therefore never sees id N+1 before id N. Retention deletes a prefix of the log (in id
order, never the newest row, so SQLite never reuses an id) and remembers how far it went,
so a cursor that lost events to it gets 410 instead of a silent gap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Iterator

import peewee

from skilljar_scim.base import clock
from skilljar_scim.base.errors import Gone, InvalidValue
from skilljar_scim.domain import events
from skilljar_scim.store.db import write_transaction
from skilljar_scim.store.models import Event, EventsPruned

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
PRUNE_BATCH = 5000  # events one prune pass deletes at most, so one write stays short
_CURSOR = re.compile(re.escape(events.ID_PREFIX) + r"[0-9a-f]{16}")
RESYNC = "read the current state through SCIM (GET /Users, GET /Groups), then poll again without `after`"


@dataclass(frozen=True)
class FeedPage:
    """One answer of the events API."""

    data: list[dict[str, Any]]
    next: str
    has_more: bool

    def as_dict(self) -> dict[str, Any]:
        return {"data": self.data, "next": self.next, "has_more": self.has_more}


def check_limit(limit: int | str | None) -> int:
    """Return the page size: 1..MAX_LIMIT, DEFAULT_LIMIT when absent."""
    if limit is None or limit == "":
        return DEFAULT_LIMIT
    text = str(limit).strip()
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise InvalidValue(f"limit must be a whole number from 1 to {MAX_LIMIT}, got {str(limit)[:40]!r}")
    return int(text)


def parse_types(text: str | None) -> tuple[str, ...]:
    """Return the event types asked for (comma-separated), or the default feed types (no token.*)."""
    if text is None or not text.strip():
        return events.DEFAULT_FEED_TYPES
    asked = tuple(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
    unknown = [t for t in asked if t not in events.ACTIONS]
    if unknown:
        raise InvalidValue(f"unknown event type {', '.join(map(repr, unknown))[:200]}; "
                           f"valid types: {', '.join(events.ACTIONS)}")
    return asked


def decode_cursor(cursor: str | None) -> int | None:
    """Return the event row id a cursor stands for (None: from the oldest kept event)."""
    if cursor is None or cursor == "":
        return None
    if not _CURSOR.fullmatch(cursor.strip()):
        raise InvalidValue("`after` is not a cursor this server issued: pass back `next` or an event id")
    return int(cursor.strip()[len(events.ID_PREFIX):], 16)


def page(after: str | None, limit: int, types: tuple[str, ...], retention_days: int,
         now: datetime | None = None) -> FeedPage:
    """Return the events after a cursor, oldest first; 410 when retention deleted some the cursor never saw."""
    cutoff = _cutoff(retention_days, now)
    start = decode_cursor(after)
    if start is None:
        start = _before_first_kept(cutoff)
    else:
        _check_not_gone(start, cutoff)
    # Read the newest id first and nothing past it: every id up to it is committed (module doc), so
    # `next` can move to it without a snapshot, and an event committed meanwhile waits for the next call.
    newest = _newest_id()
    rows = _after(start, newest, types, limit + 1)
    has_more = len(rows) > limit
    rows = rows[:limit]
    # With nothing more to give, the cursor moves past events of other types too, so a consumer of
    # rare types does not sit on a cursor that retention will overtake.
    last = rows[-1].id if has_more else max(start, newest)
    return FeedPage([events.feed_item(e) for e in rows], events.event_id(last), has_more)


def latest(count: int, types: tuple[str, ...]) -> FeedPage:
    """Return the newest `count` events of `types`, oldest first, with the cursor to follow from."""
    newest = _newest_id()
    rows = list(Event.select().where(Event.id <= newest, Event.action.in_(types))
                .order_by(Event.id.desc()).limit(max(count, 0)))
    return FeedPage([events.feed_item(e) for e in reversed(rows)], events.event_id(newest), False)


def follow(after: str, types: tuple[str, ...], pause: Callable[[], None], batch: int = MAX_LIMIT) -> Iterator[dict]:
    """Yield the feed items recorded after `after` as they commit, for ever; `pause` runs when caught up."""
    cursor = after
    while True:
        answer = page(cursor, batch, types, retention_days=0)
        yield from answer.data
        cursor = answer.next
        if not answer.has_more:
            pause()


def _after(start: int, newest: int, types: tuple[str, ...], count: int) -> list[Event]:
    query = Event.select().where(Event.id > start, Event.id <= newest, Event.action.in_(types))
    return list(query.order_by(Event.id).limit(count))


def _cutoff(retention_days: int, now: datetime | None) -> datetime | None:
    """Return the time before which events are no longer kept (None: kept for ever)."""
    if retention_days <= 0:
        return None
    return (now or clock.utcnow()) - timedelta(days=retention_days)


def _newest_id() -> int:
    return Event.select(peewee.fn.MAX(Event.id)).scalar() or 0


def _pruned_through() -> int:
    mark = EventsPruned.get_or_none(EventsPruned.id == 1)
    return mark.through_id if mark else 0


def _before_first_kept(cutoff: datetime | None) -> int:
    """Return the cursor just before the oldest event still kept."""
    kept = Event.select(peewee.fn.MIN(Event.id))
    if cutoff is not None:
        kept = kept.where(Event.at >= cutoff)
    first = kept.scalar()
    return first - 1 if first is not None else max(_newest_id(), _pruned_through())


def _check_not_gone(start: int, cutoff: datetime | None) -> None:
    """Raise Gone when events after `start` were deleted or are past retention (or `start` was never issued)."""
    if start < _pruned_through():
        raise Gone(f"events after this cursor are past retention and were deleted: {RESYNC}")
    following = Event.select(Event.id, Event.at).where(Event.id > start).order_by(Event.id).first()
    if following is not None and cutoff is not None and following.at < cutoff:
        raise Gone(f"events after this cursor are past retention: {RESYNC}")
    if following is None and start > max(_newest_id(), _pruned_through()):
        raise Gone(f"this cursor is ahead of every recorded event (was the store restored from a backup?): {RESYNC}")


def prune(retention_days: int, now: datetime | None = None, batch: int = PRUNE_BATCH) -> int:
    """Delete up to `batch` events older than retention, oldest first, never the newest; return how many."""
    cutoff = _cutoff(retention_days, now)
    if cutoff is None or not _has_expired(cutoff):  # the usual answer, without taking the write lock
        return 0
    with write_transaction():
        done = _pruned_through()
        newest = _newest_id()
        ages = Event.select(Event.id, Event.at).where(Event.id > done, Event.id < newest).order_by(Event.id)
        through = done
        for row in ages.limit(batch).tuples():  # a prefix in id order: stop at the first event still kept
            if row[1] >= cutoff:
                break
            through = row[0]
        if through == done:
            return 0
        deleted = Event.delete().where(Event.id > done, Event.id <= through).execute()
        _mark(through, now or clock.utcnow())
        return deleted


def _has_expired(cutoff: datetime) -> bool:
    """Say whether the oldest event not yet pruned is past retention."""
    oldest = Event.select(Event.at).where(Event.id > _pruned_through()).order_by(Event.id).first()
    return oldest is not None and oldest.at < cutoff


def _mark(through: int, now: datetime) -> None:
    """Remember how far retention deleted, for the 410 check."""
    if not EventsPruned.update(through_id=through, pruned_at=now).where(EventsPruned.id == 1).execute():
        EventsPruned.create(id=1, through_id=through, pruned_at=now)


@dataclass
class Pruner:
    """Runs prune() at most once per `interval` in a process (the server calls due() after requests)."""

    retention_days: int
    interval: timedelta = timedelta(minutes=10)
    batch: int = PRUNE_BATCH
    next_at: datetime | None = None

    def due(self, now: datetime | None = None) -> bool:
        """Say whether a pass is due, and if so book the next one."""
        now = now or clock.utcnow()
        if self.retention_days <= 0 or (self.next_at is not None and now < self.next_at):
            return False
        self.next_at = now + self.interval
        return True

    def run(self, now: datetime | None = None) -> int:
        """Prune now; a full batch books the next pass for the next request (a backlog drains quickly)."""
        deleted = prune(self.retention_days, now, self.batch)
        if deleted >= self.batch:
            self.next_at = None
        return deleted
