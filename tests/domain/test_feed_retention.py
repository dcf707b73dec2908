"""Retention of the event log (domain/feed.py) with a controlled clock."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from skilljar_scim.base.errors import Gone
from skilljar_scim.domain import events, feed
from skilljar_scim.store import models

T0 = datetime(2026, 1, 1)


def _events(count: int, at: datetime) -> list[int]:
    for _ in range(count):
        events.record(events.CLI, "mapping.added", "Mapping", None, {"group": "G", "role": "r"}, at)
    return [e.id for e in models.Event.select().order_by(models.Event.id)]


def test_feed_prune_never_deletes_the_newest_event_so_ids_keep_growing(store) -> None:
    ids = _events(4, T0)
    assert feed.prune(30, T0 + timedelta(days=31)) == 3
    assert [e.id for e in models.Event.select()] == ids[-1:]
    events.record(events.CLI, "mapping.removed", "Mapping", None, {"group": "G", "role": "r"}, T0)
    assert models.Event.select().order_by(models.Event.id.desc()).first().id == ids[-1] + 1  # no id reused


def test_feed_prune_stops_at_the_first_event_still_kept(store) -> None:
    _events(2, T0)
    kept = _events(1, T0 + timedelta(days=20))[-1]
    _events(2, T0)  # recorded later with an older time (another host's clock): kept, after a kept one
    assert feed.prune(30, T0 + timedelta(days=31)) == 2
    assert models.EventsPruned.get().through_id == kept - 1
    assert feed.prune(30, T0 + timedelta(days=31)) == 0


def test_feed_prune_with_zero_retention_keeps_everything(store) -> None:
    _events(3, T0)
    assert feed.prune(0, T0 + timedelta(days=10_000)) == 0
    assert models.Event.select().count() == 3


def test_feed_pruner_runs_once_per_interval_and_drains_a_backlog(store) -> None:
    _events(8, T0)
    pruner = feed.Pruner(30, interval=timedelta(minutes=10), batch=3)
    later = T0 + timedelta(days=40)
    assert pruner.due(later) and pruner.run(later) == 3
    assert pruner.due(later)  # a full batch: the next request prunes again
    assert pruner.run(later) == 3 and pruner.due(later) and pruner.run(later) == 1  # the newest stays
    assert not pruner.due(later + timedelta(minutes=9))
    assert pruner.due(later + timedelta(minutes=10))


def test_feed_page_after_pruned_cursor_is_gone(store) -> None:
    ids = _events(5, T0)
    feed.prune(30, T0 + timedelta(days=31))
    with pytest.raises(Gone):
        feed.page(events.event_id(ids[0]), 10, ("mapping.added",), 30, T0 + timedelta(days=31))
    answer = feed.page(events.event_id(ids[-2]), 10, ("mapping.added",), 0, T0 + timedelta(days=31))
    assert [i["id"] for i in answer.data] == [events.event_id(ids[-1])]
