"""Run the delivery worker: drain what is due once (cron, tests), or poll until stopped (`scim serve`)."""

from __future__ import annotations

import logging
import random
import threading
import time
from datetime import datetime
from typing import Callable

import peewee

from skilljar_scim.base import clock, keyfile
from skilljar_scim.base.config import Settings
from skilljar_scim.base.errors import SkilljarError
from skilljar_scim.domain import delivery, stream
from skilljar_scim.store import db as store_db

log = logging.getLogger("skilljar_scim.webhooks")
MAX_ROUNDS = 10_000  # drain(): a bound, far above what one backlog needs
ERROR_PAUSE = 5.0  # seconds to wait after the store or the key file failed
PRUNE_EVERY = 600.0  # seconds between deletions of finished deliveries whose events are gone


def drain(settings: Settings, now: Callable[[], datetime] = clock.utcnow, rng: random.Random | None = None) -> dict:
    """Send every delivery due now, and those it unblocks, each at most once; return the counts."""
    config, name = settings.webhooks, delivery.worker_name()
    sender = delivery.Sender(config.timeout_ms, config.concurrency)
    tally = {"sent": 0, "delivered": 0, "failed": 0}
    try:
        for _ in range(MAX_ROUNDS):
            outcomes, read = deliver_once(keyfile.load(settings.key_path), config, sender, name, now, rng)
            if not outcomes and not read:
                break
            tally["sent"] += len(outcomes)
            tally["delivered"] += sum(o.ok for o in outcomes)
        tally["failed"] = tally["sent"] - tally["delivered"]
        return tally
    finally:
        sender.close()
        _release(name)


def deliver_once(keys: list[str], config, sender: delivery.Sender, name: str,
                 now: Callable[[], datetime] = clock.utcnow, rng: random.Random | None = None) -> tuple[list, int]:
    """Send what is due: retries and queued rows first, then each stream's next batch; return (outcomes, events read)."""
    outcomes = delivery.run_once(keys, config, sender, name, now, rng)
    streamed, read = stream.run_once(keys, config, sender, name, now, rng)
    return outcomes + streamed, max(read, len(outcomes))


def run_until_stopped(settings: Settings, stop: threading.Event | None = None,
                      alive: Callable[[], bool] = lambda: True) -> None:
    """Deliver until `stop` is set, `alive()` turns False, or Ctrl-C; never raise on a bad round."""
    stop = stop or threading.Event()
    config, name = settings.webhooks, delivery.worker_name()
    sender = delivery.Sender(config.timeout_ms, config.concurrency)
    log.info("webhook delivery worker %s started", name)
    pruned_at = 0.0
    try:
        while not stop.is_set() and alive():
            if time.monotonic() - pruned_at > PRUNE_EVERY:
                pruned_at = time.monotonic()
                _prune()
            stop.wait(_round(settings, sender, name))
    except KeyboardInterrupt:
        pass
    finally:
        sender.close()
        _release(name)


def _release(name: str) -> None:
    try:
        stream.release(name)
    except (SkilljarError, peewee.DatabaseError) as exc:  # its leases run out by themselves
        log.error("releasing the webhook streams failed: %s", store_db.one_line(exc))


def _prune() -> None:
    try:
        delivery.prune()
    except (SkilljarError, peewee.DatabaseError) as exc:
        log.error("pruning old webhook deliveries failed: %s", store_db.one_line(exc))


def _round(settings: Settings, sender: delivery.Sender, name: str) -> float:
    """Run one round; return how long to wait before the next (none while work keeps coming)."""
    try:
        outcomes, read = deliver_once(keyfile.load(settings.key_path), settings.webhooks, sender, name)
    except (SkilljarError, peewee.DatabaseError) as exc:
        # The store is busy or down, or the key file is unreadable: say so, try again later.
        log.error("webhook delivery round failed: %s", store_db.one_line(exc))
        return ERROR_PAUSE
    except Exception:  # noqa: BLE001 - a bug must not stop every delivery; claims expire and retry
        log.exception("webhook delivery round failed")
        return ERROR_PAUSE
    # A full batch means a backlog: go on at once. Otherwise wait, so rounds (one commit each)
    # stay few and large under a steady stream of changes instead of one per change.
    return 0.0 if max(read, len(outcomes)) >= settings.webhooks.batch_size else settings.webhooks.poll_interval_ms / 1000
