"""Laws of business time, checked with hypothesis across zones, breaks, holidays and DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from supportdesk.domain import BusinessCalendar, Interval, WorkingRange
from supportdesk.domain.calendar import desk_calendar, vendor_calendar

US = timedelta(microseconds=1)
ZERO = timedelta(0)
EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
SPAN_US = 3 * 365 * 24 * 3600 * 10**6

CALENDARS = [
    desk_calendar([date(2026, 4, 3), date(2026, 4, 6), date(2026, 5, 25), date(2026, 12, 25)]),
    BusinessCalendar.weekly(
        "Europe/Berlin",
        WorkingRange.parse_many("08:30-12:00,13:00-17:00"),
        closed_dates=[date(2026, 3, 30), date(2026, 10, 26)],
    ),
    vendor_calendar([date(2026, 7, 3), date(2026, 11, 26)]),
    # Night ranges on every day run straight through the DST gaps and folds.
    BusinessCalendar.weekly(
        "Europe/Berlin",
        WorkingRange.parse_many("00:00-02:30,02:45-03:15,22:00-24:00"),
        weekdays=range(7),
    ),
    BusinessCalendar.weekly(
        "America/New_York",
        WorkingRange.parse_many("01:00-02:30,02:30-05:00,09:00-17:00"),
        weekdays=range(7),
    ),
    # Half-hour DST shift.
    BusinessCalendar.weekly(
        "Australia/Lord_Howe", WorkingRange.parse_many("01:45-02:15,08:00-17:00"), weekdays=range(7)
    ),
]

# Each calendar zone's DST changes in 2025-2027, to draw instants close to them.
TRANSITIONS = [
    datetime(2025, 3, 30, 1, tzinfo=UTC),
    datetime(2025, 10, 26, 1, tzinfo=UTC),
    datetime(2026, 3, 8, 7, tzinfo=UTC),
    datetime(2026, 3, 29, 1, tzinfo=UTC),
    datetime(2026, 4, 4, 15, tzinfo=UTC),
    datetime(2026, 10, 3, 15, 30, tzinfo=UTC),
    datetime(2026, 10, 25, 1, tzinfo=UTC),
    datetime(2026, 11, 1, 6, tzinfo=UTC),
    datetime(2027, 3, 14, 7, tzinfo=UTC),
]

calendars = st.sampled_from(CALENDARS)
anywhere = st.integers(0, SPAN_US).map(lambda us: EPOCH + timedelta(microseconds=us))
near_dst = st.builds(
    lambda t, us: t + timedelta(microseconds=us),
    st.sampled_from(TRANSITIONS),
    st.integers(-4 * 86_400 * 10**6, 4 * 86_400 * 10**6),
)
instants = st.one_of(anywhere, near_dst)
# Up to 60 business hours, to the microsecond; seconds-aligned values hit range ends.
durations = st.one_of(
    st.integers(0, 60 * 3600 * 10**6).map(lambda us: timedelta(microseconds=us)),
    st.integers(0, 60 * 4).map(lambda q: timedelta(minutes=15 * q)),
)


@st.composite
def pauses_near(draw: st.DrawFn, t: datetime) -> list[Interval]:
    spans = []
    for _ in range(draw(st.integers(0, 3))):
        start = t + timedelta(minutes=draw(st.integers(-2 * 24 * 60, 6 * 24 * 60)))
        spans.append((start, start + timedelta(minutes=draw(st.integers(0, 2 * 24 * 60)))))
    return spans


@st.composite
def scenario(draw: st.DrawFn) -> tuple[BusinessCalendar, datetime, list[Interval]]:
    t = draw(instants)
    return draw(calendars), t, draw(pauses_near(t))


def paused(t: datetime, pauses: list[Interval]) -> bool:
    return any(s <= t < e for s, e in pauses)


laws = settings(max_examples=150, deadline=None)


@laws
@given(scenario(), durations)
def test_measuring_what_was_added_gives_it_back(
    case: tuple[BusinessCalendar, datetime, list[Interval]], d: timedelta
) -> None:
    cal, t, pauses = case
    assert cal.between(t, cal.add(t, d, pauses), pauses) == d
    assert cal.between(t, cal.add(t, d)) == d


@laws
@given(scenario(), durations.filter(lambda d: d > ZERO))
def test_added_time_ends_in_working_time_or_at_a_range_end(
    case: tuple[BusinessCalendar, datetime, list[Interval]], d: timedelta
) -> None:
    cal, t, pauses = case
    end = cal.add(t, d, pauses)
    assert end > t
    assert end.tzinfo is UTC
    # The last counted microsecond is working time, outside every pause.
    assert cal.is_open(end - US)
    assert not paused(end - US, pauses)


@laws
@given(scenario(), durations, durations)
def test_adding_more_never_ends_earlier(
    case: tuple[BusinessCalendar, datetime, list[Interval]], d1: timedelta, d2: timedelta
) -> None:
    cal, t, pauses = case
    short, long = sorted((d1, d2))
    assert cal.add(t, short, pauses) <= cal.add(t, long, pauses)


@laws
@given(scenario(), durations, durations)
def test_adding_in_two_steps_is_adding_once(
    case: tuple[BusinessCalendar, datetime, list[Interval]], d1: timedelta, d2: timedelta
) -> None:
    cal, t, pauses = case
    assert cal.add(cal.add(t, d1, pauses), d2, pauses) == cal.add(t, d1 + d2, pauses)


@laws
@given(scenario(), instants, instants)
def test_between_is_additive(
    case: tuple[BusinessCalendar, datetime, list[Interval]], b: datetime, c: datetime
) -> None:
    cal, a, pauses = case
    b, c = a + (b - a) / 300, a + (c - a) / 300  # within ~3.5 days of a: keep it fast
    assert cal.between(a, b, pauses) + cal.between(b, c, pauses) == cal.between(a, c, pauses)


@laws
@given(scenario(), instants, instants)
def test_between_is_monotone_and_bounded(
    case: tuple[BusinessCalendar, datetime, list[Interval]], b: datetime, c: datetime
) -> None:
    cal, a, pauses = case
    b, c = sorted((a + abs(b - a) / 300, a + abs(c - a) / 300))
    assert ZERO <= cal.between(a, b, pauses) <= cal.between(a, c, pauses)
    assert cal.between(a, c, pauses) <= cal.between(a, c) <= c - a


@laws
@given(calendars, instants)
def test_next_opening_is_the_first_working_instant(cal: BusinessCalendar, t: datetime) -> None:
    opens = cal.next_opening(t)
    assert opens >= t
    assert cal.is_open(opens)
    assert cal.between(t, opens) == ZERO
    assert (opens == t) == cal.is_open(t)


@laws
@given(scenario(), instants)
def test_adding_the_measured_time_reaches_the_last_working_instant(
    case: tuple[BusinessCalendar, datetime, list[Interval]], b: datetime
) -> None:
    cal, a, pauses = case
    b = a + abs(b - a) / 300
    reached = cal.add(a, cal.between(a, b, pauses), pauses)
    assert reached <= b
    assert cal.between(reached, b, pauses) == ZERO
