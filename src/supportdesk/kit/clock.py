"""The one place the service reads the wall clock, always timezone-aware UTC, and the
range of instants the API accepts."""

from __future__ import annotations

from datetime import UTC, datetime

FIRST_INSTANT = datetime(1900, 1, 1, tzinfo=UTC)
END_OF_INSTANTS = datetime(3000, 1, 1, tzinfo=UTC)
"""Instants taken from clients lie in ``[FIRST_INSTANT, END_OF_INSTANTS)``: the years
1900 to 2999 in UTC. Far enough for any real session, ticket or balance; and far enough
from the ends of ``datetime`` (years 1 and 9999) that converting to a time zone, adding
a session's duration or searching business hours some weeks ahead never overflows."""

OUT_OF_RANGE = "the instant must lie in the years 1900 to 2999 (UTC)"


def utcnow() -> datetime:
    return datetime.now(UTC)


def in_accepted_range(t: datetime) -> datetime:
    """``t`` (aware) in UTC if it lies in the accepted range; else ``ValueError``."""
    try:
        utc = t.astimezone(UTC)
    except OverflowError as exc:  # e.g. 9999-12-31T23:00-05:00 is past year 9999 in UTC
        raise ValueError(OUT_OF_RANGE) from exc
    if not FIRST_INSTANT <= utc < END_OF_INSTANTS:
        raise ValueError(OUT_OF_RANGE)
    return utc
