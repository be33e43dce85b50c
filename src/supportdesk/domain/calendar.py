"""Business time: working hours in a time zone, minus closed dates.

All arithmetic runs on UTC instants. A working range is given as local wall-clock times
and turned into UTC per date, so weekends, holidays and daylight-saving changes need no
special cases downstream. How a range maps on a daylight-saving day:

- a boundary in a gap (a wall time that does not exist) moves to the transition instant,
  the first instant that exists after it: 02:00-04:00 on the spring-forward night in
  Berlin is one real hour, and a range lying wholly in the gap is closed that day;
- in a fold (a wall time that happens twice) a range starts at the first occurrence of
  its start and ends at the last occurrence of its end, so it covers every instant whose
  wall time lies inside it: 00:00-04:00 on the fall-back night is five real hours.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from itertools import pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Interval = tuple[datetime, datetime]
"""A half-open span of instants ``[start, end)``, both aware."""

MIDNIGHT = time(0)
MONDAY_TO_FRIDAY: tuple[int, ...] = (0, 1, 2, 3, 4)
"""Weekday numbers as ``date.weekday()`` counts them (Monday is 0)."""

EARLIEST = datetime.min.replace(tzinfo=UTC)
LATEST = datetime.max.replace(tzinfo=UTC)
"""The first and last instants a ``datetime`` holds in UTC."""

_ZERO = timedelta(0)
_ONE_DAY = timedelta(days=1)
_MICROSECOND = timedelta(microseconds=1)
_RANGE_TEXT = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def require_aware(t: datetime, name: str = "instant") -> datetime:
    """Return ``t`` in UTC; refuse a naive datetime, whose instant is unknown."""
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {t!r}")
    return t if t.tzinfo is UTC else t.astimezone(UTC)


def in_utc(t: datetime) -> datetime:
    """``t`` in UTC, as a bound of a search: an instant of year 1 before
    ``0001-01-01T00:00Z`` (or of year 9999 after its end) is the earliest (latest) there is."""
    try:
        return require_aware(t)
    except OverflowError:
        return EARLIEST if t.year == 1 else LATEST


@dataclass(frozen=True, slots=True)
class WorkingRange:
    """Working hours within one day, ``[start, end)`` in local wall time.

    An ``end`` of 00:00 means midnight at the end of the day.
    """

    start: time
    end: time

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("working ranges are local wall times; give naive times")
        if self.end != MIDNIGHT and self.end <= self.start:
            raise ValueError(f"a working range must end after it starts: {self}")

    def __str__(self) -> str:
        end = "24:00" if self.end == MIDNIGHT else f"{self.end:%H:%M}"
        return f"{self.start:%H:%M}-{end}"

    @property
    def length(self) -> timedelta:
        """Wall-clock length; a daylight-saving day may make the real span differ."""
        end = 24 * 60 if self.end == MIDNIGHT else self.end.hour * 60 + self.end.minute
        start = self.start.hour * 60 + self.start.minute
        seconds = (end - start) * 60 + self.end.second - self.start.second
        return timedelta(
            seconds=seconds, microseconds=self.end.microsecond - self.start.microsecond
        )

    @classmethod
    def parse(cls, text: str) -> WorkingRange:
        """Read ``"08:30-17:00"``; ``24:00`` is accepted as the end of the day."""
        match = _RANGE_TEXT.match(text)
        if match is None:
            raise ValueError(f"not a working range (HH:MM-HH:MM): {text!r}")
        h1, m1, h2, m2 = (int(part) for part in match.groups())
        if (h2, m2) == (24, 0):
            h2 = 0
        return cls(time(h1, m1), time(h2, m2))

    @classmethod
    def parse_many(cls, text: str) -> tuple[WorkingRange, ...]:
        """Read a comma-separated list such as ``"08:30-12:00,13:00-17:00"``."""
        return tuple(cls.parse(part) for part in text.split(",") if part.strip())


@dataclass(frozen=True)
class BusinessCalendar:
    """Working hours per weekday in an IANA time zone, minus closed dates.

    ``week`` holds seven tuples of ranges, Monday first. ``closed_dates`` are local
    dates with no working time at all (public holidays, company closures).
    Every instant taken must be aware; every instant returned is in UTC.
    """

    time_zone: str
    week: tuple[tuple[WorkingRange, ...], ...]
    closed_dates: frozenset[date] = frozenset()
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)
    _hash: int = field(init=False, repr=False, compare=False)
    _day_length: timedelta = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            zone = ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone: {self.time_zone!r}") from exc
        week = tuple(tuple(day) for day in self.week)
        if len(week) != 7:
            raise ValueError("a calendar needs working ranges for seven weekdays")
        for ranges in week:
            for earlier, later in pairwise(ranges):
                if earlier.end == MIDNIGHT or later.start < earlier.end:
                    raise ValueError(f"working ranges must be sorted and apart: {ranges}")
        day_length = max(sum((r.length for r in ranges), _ZERO) for ranges in week)
        if day_length <= _ZERO:
            raise ValueError("a calendar needs at least one working range")
        closed = frozenset(self.closed_dates)
        # A datetime is a date too, but never equals one: it would silently close nothing.
        if any(not isinstance(d, date) or isinstance(d, datetime) for d in closed):
            raise ValueError("closed dates must be dates, not datetimes")
        object.__setattr__(self, "week", week)
        object.__setattr__(self, "closed_dates", closed)
        object.__setattr__(self, "_zone", zone)
        object.__setattr__(self, "_day_length", day_length)
        # Computed once: the per-day cache hashes the calendar on every lookup.
        object.__setattr__(self, "_hash", hash((self.time_zone, week, closed)))

    def __hash__(self) -> int:
        return self._hash

    @classmethod
    def weekly(
        cls,
        time_zone: str,
        ranges: Iterable[WorkingRange],
        *,
        weekdays: Iterable[int] = MONDAY_TO_FRIDAY,
        closed_dates: Iterable[date] = (),
    ) -> BusinessCalendar:
        """The same ranges on each of ``weekdays`` (0 = Monday), no work on the others."""
        same = tuple(ranges)
        days = set(weekdays)
        if not days <= set(range(7)):
            raise ValueError(f"weekdays are 0 (Monday) to 6 (Sunday): {sorted(days)}")
        week = tuple(same if day in days else () for day in range(7))
        return cls(time_zone, week, frozenset(closed_dates))

    def with_closed_dates(self, dates: Iterable[date]) -> BusinessCalendar:
        """This calendar with more closed dates (holidays of further years, closures)."""
        return replace(self, closed_dates=self.closed_dates | frozenset(dates))

    @property
    def zone(self) -> ZoneInfo:
        return self._zone

    @property
    def business_day_length(self) -> timedelta:
        """The working time of one full day: the longest weekday's ranges, by the clock."""
        return self._day_length

    def local(self, t: datetime) -> datetime:
        """``t`` as wall time in the calendar's zone."""
        return require_aware(t, "t").astimezone(self._zone)

    def local_date(self, t: datetime) -> date:
        """The calendar's date at ``t`` ("today" for contracts and statements)."""
        return self.local(t).date()

    def start_of_day(self, day: date) -> datetime:
        """The first instant of the local date ``day``, in UTC."""
        return _wall_to_utc(datetime.combine(day, MIDNIGHT), self._zone, last=False)

    def period(self, first: date, last: date) -> Interval:
        """The instants of the local dates ``first`` through ``last``, both inclusive. At the
        ends of the calendar (1-01-01 east of UTC, 9999-12-31) it reaches as far as a
        ``datetime`` does: there is nothing before or after."""
        if last < first:
            raise ValueError(f"a period cannot end ({last}) before it starts ({first})")
        try:
            starts = self.start_of_day(first)
        except OverflowError:
            starts = EARLIEST
        try:
            ends = self.start_of_day(last + _ONE_DAY)
        except OverflowError:
            ends = LATEST
        return starts, ends

    def working_intervals(self, day: date) -> tuple[Interval, ...]:
        """The working time of the local date ``day`` as UTC intervals, in order."""
        return _day_intervals(self, day)

    def is_open(self, t: datetime) -> bool:
        """Whether ``t`` falls in working time."""
        u = require_aware(t, "t")
        day = u.astimezone(self._zone).date()
        return any(start <= u < end for start, end in _day_intervals(self, day))

    def next_opening(self, t: datetime) -> datetime:
        """``t`` itself when open, else the start of the next working interval."""
        start, _ = next(self._open_from(require_aware(t, "t")))
        return start

    def within_hours(self, start: datetime, end: datetime) -> bool:
        """Whether all of ``[start, end)`` is working time (an appointment, a visit)."""
        a, b = require_aware(start, "start"), require_aware(end, "end")
        return b > a and self.between(a, b) == b - a

    def add(self, t: datetime, duration: timedelta, pauses: Iterable[Interval] = ()) -> datetime:
        """The instant ``duration`` of working time after ``t``, not counting ``pauses``.

        A positive duration ends inside working time or exactly at the end of a range
        (work due "by close of business" is due at 17:00, not at the next opening).
        """
        start = require_aware(t, "t")
        if duration < _ZERO:
            raise ValueError(f"business time to add must not be negative: {duration}")
        if duration == _ZERO:
            return start
        remaining = duration
        for s, e in _without(self._open_from(start), normalize_pauses(pauses)):
            span = e - s
            if remaining <= span:
                return s + remaining
            remaining -= span
        raise AssertionError("unreachable: working intervals never run out")

    def between(self, a: datetime, b: datetime, pauses: Iterable[Interval] = ()) -> timedelta:
        """Working time from ``a`` to ``b`` not counting ``pauses``; negative if ``b < a``."""
        start, end = require_aware(a, "a"), require_aware(b, "b")
        if end < start:
            return -self.between(end, start, pauses)
        total = _ZERO
        for s, e in _without(self._open_from(start), normalize_pauses(pauses)):
            if s >= end:
                break
            total += (e if e < end else end) - s
        return total

    def _open_from(self, start: datetime) -> Iterator[Interval]:
        """Working intervals from ``start`` (UTC) on, the first clipped to it; endless.

        It ends because the week has a working range and closed dates are finite.
        """
        day = start.astimezone(self._zone).date()
        while True:
            for s, e in _day_intervals(self, day):
                if e > start:
                    yield (s if s > start else start), e
            day += _ONE_DAY


def normalize_pauses(pauses: Iterable[Interval]) -> tuple[Interval, ...]:
    """Pauses in UTC, sorted, overlaps merged, empty ones dropped."""
    spans: list[Interval] = []
    for start, end in pauses:
        s, e = require_aware(start, "pause start"), require_aware(end, "pause end")
        if e < s:
            raise ValueError(f"a pause cannot end ({end}) before it starts ({start})")
        if e > s:
            spans.append((s, e))
    if len(spans) < 2:
        return tuple(spans)
    spans.sort()
    merged = [spans[0]]
    for s, e in spans[1:]:
        last_s, last_e = merged[-1]
        if s <= last_e:
            if e > last_e:
                merged[-1] = (last_s, e)
        else:
            merged.append((s, e))
    return tuple(merged)


def _without(intervals: Iterator[Interval], pauses: Sequence[Interval]) -> Iterator[Interval]:
    """The ``intervals`` (ascending) minus the sorted, disjoint ``pauses``."""
    if not pauses:
        yield from intervals
        return
    i, n = 0, len(pauses)
    for s, e in intervals:
        while i < n and pauses[i][1] <= s:
            i += 1
        cursor = s
        j = i
        while j < n and pauses[j][0] < e:
            pause_start, pause_end = pauses[j]
            if pause_start > cursor:
                yield cursor, pause_start
            if pause_end > cursor:
                cursor = pause_end
            if cursor >= e:
                break
            j += 1
        if cursor < e:
            yield cursor, e


@lru_cache(maxsize=8192)
def _day_intervals(calendar: BusinessCalendar, day: date) -> tuple[Interval, ...]:
    """One local date's working time as UTC intervals, merged and in order.

    Cached: due dates for a whole queue touch the same few dozen dates again and again.
    """
    if day in calendar.closed_dates:
        return ()
    ranges = calendar.week[day.weekday()]
    if not ranges:
        return ()
    zone = calendar.zone
    # Clipping to the day keeps consecutive dates disjoint even where a fold straddles
    # midnight, so no instant is ever counted twice.
    day_end = _wall_to_utc(datetime.combine(day + _ONE_DAY, MIDNIGHT), zone, last=False)
    intervals: list[Interval] = []
    for r in ranges:
        start = _wall_to_utc(datetime.combine(day, r.start), zone, last=False)
        if r.end == MIDNIGHT:
            end = day_end
        else:
            end = min(_wall_to_utc(datetime.combine(day, r.end), zone, last=True), day_end)
        if start >= end:
            continue
        if intervals and start <= intervals[-1][1]:
            intervals[-1] = (intervals[-1][0], max(intervals[-1][1], end))
        else:
            intervals.append((start, end))
    return tuple(intervals)


def _wall_to_utc(wall: datetime, zone: ZoneInfo, *, last: bool) -> datetime:
    """The UTC instant of a naive local wall time (see the module docstring for DST)."""
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if first == second:
        return first
    if first < second:  # a fold: the wall time happens twice
        return second if last else first
    # A gap: fold=1 reads the wall time with the offset after the change and lands before
    # the transition, fold=0 with the offset before it and lands after; search between.
    return _transition_between(second, first, zone)


def _transition_between(before: datetime, after: datetime, zone: ZoneInfo) -> datetime:
    """The first instant in ``(before, after]`` carrying ``after``'s UTC offset."""
    target = after.astimezone(zone).utcoffset()
    lo, hi = before, after
    while hi - lo > _MICROSECOND:
        mid = lo + (hi - lo) // 2
        if mid.astimezone(zone).utcoffset() == target:
            hi = mid
        else:
            lo = mid
    return hi


DESK_TIME_ZONE = "Europe/Berlin"
DESK_HOURS = "08:30-17:00"
VENDOR_TIME_ZONE = "America/New_York"
VENDOR_HOURS = "09:00-17:00"
INSTALLATION_HOURS = "07:00-18:00"
"""Defaults from DOMAIN.md, as settings would spell them; all calendars run Mon-Fri."""


def desk_calendar(closed_dates: Iterable[date] = ()) -> BusinessCalendar:
    """The support desk's hours: Mon-Fri 08:30-17:00 Europe/Berlin."""
    return BusinessCalendar.weekly(
        DESK_TIME_ZONE, WorkingRange.parse_many(DESK_HOURS), closed_dates=closed_dates
    )


def vendor_calendar(closed_dates: Iterable[date] = ()) -> BusinessCalendar:
    """The software maker's hours for escalations: Mon-Fri 09:00-17:00 New York."""
    return BusinessCalendar.weekly(
        VENDOR_TIME_ZONE, WorkingRange.parse_many(VENDOR_HOURS), closed_dates=closed_dates
    )


def installation_calendar(closed_dates: Iterable[date] = ()) -> BusinessCalendar:
    """Hours in which installations are done: Mon-Fri 07:00-18:00 Europe/Berlin."""
    return BusinessCalendar.weekly(
        DESK_TIME_ZONE, WorkingRange.parse_many(INSTALLATION_HOURS), closed_dates=closed_dates
    )
