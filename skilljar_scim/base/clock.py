"""Time in one place: naive UTC datetimes inside, ISO 8601 with `Z` at the edges."""

from __future__ import annotations

import re
import time
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import UTC, datetime, timedelta
from typing import Callable, Iterator

from skilljar_scim.base.errors import DeadlineExceeded

# Seconds on a clock that never goes back; the rate limiter and request deadlines take one
# of these, so tests drive them with a controlled clock instead of waiting.
Monotonic = Callable[[], float]
monotonic: Monotonic = time.monotonic

_AGO = re.compile(r"\s*(\d+)\s*([mhdw])\s*", re.IGNORECASE)
_UNIT = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


def utcnow() -> datetime:
    """Return the current time as a naive UTC datetime (how the store keeps times)."""
    # Whole seconds: what meta.created/lastModified show, so filters on them agree with SQL.
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def iso(moment: datetime | None) -> str | None:
    """Format a naive UTC datetime as RFC 3339 with a `Z` (RFC 7643 §2.3.5)."""
    if moment is None:
        return None
    return moment.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def iso_stored(value: datetime | str | None) -> str | None:
    """Format a time as the driver returned it (SQLite: "YYYY-MM-DD HH:MM:SS" text) like iso()."""
    if isinstance(value, str):
        if len(value) == 19 and value[10] == " ":  # how utcnow() times are stored: no parsing needed
            return value[:10] + "T" + value[11:] + "Z"
        return iso(parse_iso(value))
    return iso(value)


def parse_iso(text: str) -> datetime:
    """Parse an ISO 8601 date or datetime into naive UTC; raise ValueError if it is not one."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """Parse a moment: a duration ago (`30m`, `1h`, `7d`, `2w`) or an ISO date or time (UTC).

    Raise ValueError if it is neither.
    """
    match = _AGO.fullmatch(text)
    if match:
        return (now or utcnow()) - int(match.group(1)) * _UNIT[match.group(2).lower()]
    return parse_iso(text)


# The running request's deadline: (clock, moment). A context variable, so the long loops of
# the protocol and domain layers can check it without every signature carrying it.
_deadline: ContextVar[tuple[Monotonic, float] | None] = ContextVar("skilljar_scim_deadline", default=None)


def start_deadline(seconds: float, now: Monotonic = monotonic) -> Token:
    """Give the running request `seconds` from now (0: no deadline); return what end_deadline() takes."""
    return _deadline.set((now, now() + seconds) if seconds > 0 else None)


def end_deadline(token: Token) -> None:
    """Forget the deadline start_deadline() set."""
    _deadline.reset(token)


@contextmanager
def deadline(seconds: float, now: Monotonic = monotonic) -> Iterator[None]:
    """Give the code run inside `seconds` to finish (0: no deadline); check_deadline() enforces it."""
    token = start_deadline(seconds, now)
    try:
        yield
    finally:
        end_deadline(token)


def past_deadline() -> bool:
    """Say whether the running request is past its deadline (never, without one)."""
    found = _deadline.get()
    return found is not None and found[0]() >= found[1]


def check_deadline() -> None:
    """Raise DeadlineExceeded (503) when the running request is past its deadline; long loops call it."""
    if past_deadline():
        raise DeadlineExceeded("the request took longer than this server allows: nothing was changed; "
                               "split it into smaller requests")
