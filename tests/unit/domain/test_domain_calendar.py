"""Business time on concrete dates: weekends, holidays, lunch breaks, DST in two zones."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

import pytest

from supportdesk.domain import BusinessCalendar, WorkingRange
from supportdesk.domain.calendar import (
    EARLIEST,
    LATEST,
    desk_calendar,
    in_utc,
    installation_calendar,
    vendor_calendar,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
H = timedelta(hours=1)


def at(zone: tzinfo, *parts: int) -> datetime:
    year, month, day, hour, minute, second = (*parts, 0, 0, 0)[:6]
    return datetime(year, month, day, hour, minute, second, tzinfo=zone)


def berlin(*parts: int) -> datetime:
    return at(BERLIN, *parts)


def new_york(*parts: int) -> datetime:
    return at(NEW_YORK, *parts)


def utc(*parts: int) -> datetime:
    return at(UTC, *parts)


def lunch_break_calendar() -> BusinessCalendar:
    return BusinessCalendar.weekly(
        "Europe/Berlin", WorkingRange.parse_many("08:30-12:00,13:00-17:00")
    )


def around_the_clock(zone: str, ranges: str = "00:00-24:00") -> BusinessCalendar:
    return BusinessCalendar.weekly(zone, WorkingRange.parse_many(ranges), weekdays=range(7))


class TestDefaults:
    def test_desk_calendar_is_weekdays_0830_to_1700_berlin(self) -> None:
        cal = desk_calendar()
        assert cal.time_zone == "Europe/Berlin"
        assert cal.business_day_length == timedelta(hours=8, minutes=30)
        assert cal.week[:5] == ((WorkingRange(time(8, 30), time(17)),),) * 5
        assert cal.week[5:] == ((), ())

    def test_vendor_calendar_is_new_york_nine_to_five(self) -> None:
        cal = vendor_calendar()
        assert cal.time_zone == "America/New_York"
        assert cal.business_day_length == 8 * H

    def test_installation_hours_are_seven_to_six(self) -> None:
        assert installation_calendar().business_day_length == 11 * H

    def test_lunch_break_day_length_leaves_out_the_break(self) -> None:
        assert lunch_break_calendar().business_day_length == timedelta(hours=7, minutes=30)

    def test_closed_dates_are_added(self) -> None:
        cal = desk_calendar().with_closed_dates([date(2026, 5, 25)])
        assert cal.closed_dates == frozenset({date(2026, 5, 25)})
        assert not cal.is_open(berlin(2026, 5, 25, 10))


class TestValidation:
    def test_naive_instants_are_refused(self) -> None:
        cal = desk_calendar()
        naive = datetime(2026, 3, 2, 10)
        with pytest.raises(ValueError, match="timezone-aware"):
            cal.is_open(naive)
        with pytest.raises(ValueError, match="timezone-aware"):
            cal.add(naive, H)
        with pytest.raises(ValueError, match="timezone-aware"):
            cal.between(utc(2026, 3, 2), naive)
        with pytest.raises(ValueError, match="timezone-aware"):
            cal.add(utc(2026, 3, 2), H, [(naive, utc(2026, 3, 3))])

    def test_negative_duration_is_refused(self) -> None:
        with pytest.raises(ValueError, match="negative"):
            desk_calendar().add(utc(2026, 3, 2), -H)

    def test_pause_ending_before_it_starts_is_refused(self) -> None:
        with pytest.raises(ValueError, match="pause"):
            desk_calendar().add(utc(2026, 3, 2), H, [(utc(2026, 3, 3), utc(2026, 3, 2))])

    @pytest.mark.parametrize(
        "week",
        [
            ((),) * 7,
            ((WorkingRange.parse("08:00-17:00"),),) * 6,
            ((WorkingRange.parse("13:00-17:00"), WorkingRange.parse("08:00-14:00")),) * 7,
        ],
    )
    def test_bad_weeks_are_refused(self, week: tuple[tuple[WorkingRange, ...], ...]) -> None:
        with pytest.raises(ValueError, match=r"working range|seven"):
            BusinessCalendar("Europe/Berlin", week)

    def test_closed_datetimes_are_refused(self) -> None:
        with pytest.raises(ValueError, match="closed dates"):
            desk_calendar([datetime(2026, 5, 25)])

    def test_unknown_time_zone_is_refused(self) -> None:
        with pytest.raises(ValueError, match="time zone"):
            BusinessCalendar.weekly("Mars/Olympus_Mons", [WorkingRange.parse("08:00-17:00")])

    @pytest.mark.parametrize("text", ["8-17", "17:00-08:00", "08:00", "25:00-26:00"])
    def test_bad_range_text_is_refused(self, text: str) -> None:
        with pytest.raises(ValueError, match=r"working range|hour must be"):
            WorkingRange.parse(text)

    def test_range_text_reads_24_00_as_end_of_day(self) -> None:
        assert WorkingRange.parse(" 22:00 - 24:00 ") == WorkingRange(time(22), time(0))
        assert str(WorkingRange(time(22), time(0))) == "22:00-24:00"


class TestOpening:
    def test_open_inside_hours_closed_at_the_end(self) -> None:
        cal = desk_calendar()
        assert cal.is_open(berlin(2026, 3, 2, 8, 30))
        assert cal.is_open(berlin(2026, 3, 2, 16, 59, 59))
        assert not cal.is_open(berlin(2026, 3, 2, 17))
        assert not cal.is_open(berlin(2026, 3, 2, 8, 29))
        assert not cal.is_open(berlin(2026, 3, 7, 10))  # Saturday

    def test_next_opening_is_the_instant_itself_when_open(self) -> None:
        t = berlin(2026, 3, 2, 10, 15)
        assert desk_calendar().next_opening(t) == t
        assert desk_calendar().next_opening(t).tzinfo is UTC

    def test_next_opening_after_friday_close_is_monday_morning(self) -> None:
        opens = desk_calendar().next_opening(berlin(2026, 3, 6, 17, 0))
        assert opens == berlin(2026, 3, 9, 8, 30)

    def test_next_opening_skips_holidays(self) -> None:
        # Good Friday and Easter Monday 2026.
        cal = desk_calendar([date(2026, 4, 3), date(2026, 4, 6)])
        assert cal.next_opening(berlin(2026, 4, 2, 18)) == berlin(2026, 4, 7, 8, 30)

    def test_next_opening_in_the_lunch_break_is_one_pm(self) -> None:
        cal = lunch_break_calendar()
        assert cal.next_opening(berlin(2026, 3, 2, 12, 0)) == berlin(2026, 3, 2, 13, 0)
        assert not cal.is_open(berlin(2026, 3, 2, 12, 30))

    def test_vendor_window_from_berlin_morning_opens_in_new_york(self) -> None:
        # 10:00 in Berlin is 05:00 in New York: the vendor opens at 09:00 there.
        opens = vendor_calendar().next_opening(berlin(2026, 6, 3, 10))
        assert opens == new_york(2026, 6, 3, 9) == berlin(2026, 6, 3, 15)

    def test_within_hours(self) -> None:
        cal = installation_calendar()
        assert cal.within_hours(berlin(2026, 3, 2, 7), berlin(2026, 3, 2, 18))
        assert not cal.within_hours(berlin(2026, 3, 2, 17), berlin(2026, 3, 2, 19))
        assert not cal.within_hours(berlin(2026, 3, 7, 10), berlin(2026, 3, 7, 11))
        assert not cal.within_hours(berlin(2026, 3, 2, 10), berlin(2026, 3, 2, 10))


class TestAdd:
    def test_within_one_day(self) -> None:
        assert desk_calendar().add(berlin(2026, 3, 2, 9), 4 * H) == berlin(2026, 3, 2, 13)

    def test_reaching_the_close_exactly_is_due_at_the_close(self) -> None:
        assert desk_calendar().add(berlin(2026, 3, 2, 13), 4 * H) == berlin(2026, 3, 2, 17)

    def test_filed_outside_hours_starts_counting_at_the_opening(self) -> None:
        assert desk_calendar().add(berlin(2026, 3, 7, 11), H) == berlin(2026, 3, 9, 9, 30)

    def test_zero_returns_the_instant_in_utc(self) -> None:
        t = berlin(2026, 3, 7, 11)
        assert desk_calendar().add(t, timedelta(0)) == t
        assert desk_calendar().add(t, timedelta(0)).tzinfo is UTC

    def test_lunch_break_does_not_count(self) -> None:
        assert lunch_break_calendar().add(berlin(2026, 3, 2, 11), 2 * H) == berlin(2026, 3, 2, 14)

    def test_standard_ticket_friday_1630_before_whit_monday(self) -> None:
        # 2 business days = 17 h: Fri 16:30-17:00 is 0.5 h, Mon 25 May is a holiday,
        # Tue is 8.5 h (9 h in all), the last 8 h run Wed 08:30-16:30.
        cal = desk_calendar([date(2026, 5, 25)])
        due = cal.add(berlin(2026, 5, 22, 16, 30), 2 * cal.business_day_length)
        assert due == berlin(2026, 5, 27, 16, 30) == utc(2026, 5, 27, 14, 30)

    def test_thursday_1630_before_easter(self) -> None:
        # Good Friday and Easter Monday closed: 0.5 h Thu, 8.5 h Tue, 8 h on Wed.
        cal = desk_calendar([date(2026, 4, 3), date(2026, 4, 6)])
        due = cal.add(berlin(2026, 4, 2, 16, 30), 17 * H)
        assert due == berlin(2026, 4, 8, 16, 30)

    def test_berlin_spring_forward_weekend(self) -> None:
        # Fri 16:00-17:00 CET is 1 h, then 3 h from Mon 08:30 CEST (UTC+2).
        due = desk_calendar().add(berlin(2026, 3, 27, 16), 4 * H)
        assert due == berlin(2026, 3, 30, 11, 30)
        assert due == utc(2026, 3, 30, 9, 30)

    def test_berlin_fall_back_weekend(self) -> None:
        due = desk_calendar().add(berlin(2026, 10, 23, 16), 4 * H)
        assert due == berlin(2026, 10, 26, 11, 30) == utc(2026, 10, 26, 10, 30)

    def test_new_york_spring_forward_weekend(self) -> None:
        # US clocks change on 8 March 2026, three weeks before Europe's.
        due = vendor_calendar().add(new_york(2026, 3, 6, 16), 4 * H)
        assert due == new_york(2026, 3, 9, 12) == utc(2026, 3, 9, 16)

    def test_new_york_fall_back_weekend(self) -> None:
        due = vendor_calendar().add(new_york(2026, 10, 30, 16), 4 * H)
        assert due == new_york(2026, 11, 2, 12) == utc(2026, 11, 2, 17)

    def test_pause_pushes_the_time_out(self) -> None:
        cal = desk_calendar()
        pause = (berlin(2026, 3, 2, 10), berlin(2026, 3, 2, 11, 30))
        assert cal.add(berlin(2026, 3, 2, 9), 4 * H, [pause]) == berlin(2026, 3, 2, 14, 30)

    def test_pause_overnight_only_costs_its_business_hours(self) -> None:
        cal = desk_calendar()
        # Waiting from Mon 16:00 to Tue 09:00 takes 1.5 business hours off the clock.
        pause = (berlin(2026, 3, 2, 16), berlin(2026, 3, 3, 9))
        assert cal.add(berlin(2026, 3, 2, 14), 4 * H, [pause]) == berlin(2026, 3, 3, 11)

    def test_overlapping_pauses_count_once(self) -> None:
        cal = desk_calendar()
        pauses = [
            (berlin(2026, 3, 2, 10), berlin(2026, 3, 2, 11)),
            (berlin(2026, 3, 2, 10, 30), berlin(2026, 3, 2, 11, 30)),
            (berlin(2026, 3, 2, 11, 30), berlin(2026, 3, 2, 11, 30)),
        ]
        assert cal.add(berlin(2026, 3, 2, 9), 4 * H, pauses) == berlin(2026, 3, 2, 14, 30)

    def test_starting_inside_a_pause(self) -> None:
        cal = desk_calendar()
        pause = (berlin(2026, 3, 2, 8), berlin(2026, 3, 2, 12))
        assert cal.add(berlin(2026, 3, 2, 9), H, [pause]) == berlin(2026, 3, 2, 13)


class TestBetween:
    def test_across_the_berlin_dst_weekend_is_two_full_days(self) -> None:
        cal = desk_calendar()
        assert cal.between(berlin(2026, 3, 27, 8, 30), berlin(2026, 3, 30, 17)) == 17 * H

    def test_reversed_order_is_negative(self) -> None:
        cal = desk_calendar()
        a, b = berlin(2026, 3, 2, 9), berlin(2026, 3, 2, 11)
        assert cal.between(b, a) == -cal.between(a, b) == -2 * H

    def test_closed_time_counts_nothing(self) -> None:
        cal = desk_calendar()
        assert cal.between(berlin(2026, 3, 6, 17), berlin(2026, 3, 9, 8, 30)) == timedelta(0)

    def test_lunch_break_and_pause(self) -> None:
        cal = lunch_break_calendar()
        pause = (berlin(2026, 3, 2, 14), berlin(2026, 3, 2, 15))
        assert cal.between(berlin(2026, 3, 2, 8, 30), berlin(2026, 3, 2, 17), [pause]) == 6.5 * H

    def test_a_whole_week_with_a_holiday(self) -> None:
        cal = desk_calendar([date(2026, 5, 1)])
        week = cal.between(berlin(2026, 4, 27), berlin(2026, 5, 4))
        assert week == 4 * cal.business_day_length


class TestDaylightSavingBoundaries:
    """Ranges whose wall times fall into a DST gap or fold."""

    def test_round_the_clock_day_is_23_hours_in_spring_and_25_in_autumn(self) -> None:
        cal = around_the_clock("Europe/Berlin")
        assert cal.between(berlin(2026, 3, 29), berlin(2026, 3, 30)) == 23 * H
        assert cal.between(berlin(2026, 10, 25), berlin(2026, 10, 26)) == 25 * H
        assert cal.between(berlin(2026, 3, 28), berlin(2026, 3, 29)) == 24 * H

    def test_range_starting_in_the_gap_starts_at_the_transition(self) -> None:
        # 02:00 does not exist on 29 March in Berlin: clocks jump from 02:00 to 03:00.
        cal = around_the_clock("Europe/Berlin", "02:00-04:00")
        assert cal.working_intervals(date(2026, 3, 29)) == (
            (utc(2026, 3, 29, 1), utc(2026, 3, 29, 2)),
        )
        assert cal.working_intervals(date(2026, 3, 28)) == (
            (utc(2026, 3, 28, 1), utc(2026, 3, 28, 3)),
        )

    def test_range_wholly_in_the_gap_is_closed_that_day(self) -> None:
        cal = around_the_clock("Europe/Berlin", "02:15-02:45")
        assert cal.working_intervals(date(2026, 3, 29)) == ()
        assert cal.next_opening(berlin(2026, 3, 29, 1)) == berlin(2026, 3, 30, 2, 15)

    def test_range_ending_in_the_gap_ends_at_the_transition(self) -> None:
        cal = around_the_clock("America/New_York", "01:00-02:30")
        assert cal.working_intervals(date(2026, 3, 8)) == (
            (utc(2026, 3, 8, 6), utc(2026, 3, 8, 7)),
        )

    def test_range_in_the_fold_covers_both_passes(self) -> None:
        # 02:00-03:00 happens twice on 25 October in Berlin (CEST, then CET).
        cal = around_the_clock("Europe/Berlin", "02:00-02:30")
        assert cal.working_intervals(date(2026, 10, 25)) == (
            (utc(2026, 10, 25, 0), utc(2026, 10, 25, 1, 30)),
        )
        cal = around_the_clock("Europe/Berlin", "01:00-04:00")
        assert cal.between(berlin(2026, 10, 25), berlin(2026, 10, 26)) == 4 * H

    def test_new_york_fold(self) -> None:
        cal = around_the_clock("America/New_York", "00:00-04:00")
        assert cal.between(new_york(2026, 11, 1), new_york(2026, 11, 2)) == 5 * H
        assert cal.between(new_york(2026, 3, 8), new_york(2026, 3, 9)) == 3 * H

    def test_adjacent_ranges_meeting_in_the_fold_do_not_count_twice(self) -> None:
        cal = around_the_clock("Europe/Berlin", "01:00-02:30,02:30-04:00")
        assert cal.working_intervals(date(2026, 10, 25)) == (
            (utc(2026, 10, 24, 23), utc(2026, 10, 25, 3)),
        )

    def test_midnight_transition_zone(self) -> None:
        # Havana moves its clocks at midnight/01:00, so the day itself starts in a gap.
        cal = around_the_clock("America/Havana")
        first, *_ = cal.working_intervals(date(2026, 3, 8))
        assert first[0] == cal.start_of_day(date(2026, 3, 8))
        assert (
            cal.between(cal.start_of_day(date(2026, 3, 8)), cal.start_of_day(date(2026, 3, 9)))
            == 23 * H
        )


class TestLocalDates:
    def test_local_date_follows_the_calendar_zone(self) -> None:
        cal = desk_calendar()
        assert cal.local_date(utc(2026, 3, 1, 23, 30)) == date(2026, 3, 2)
        assert cal.local(utc(2026, 7, 1, 12)).hour == 14

    def test_period_covers_both_dates(self) -> None:
        start, end = desk_calendar().period(date(2026, 3, 1), date(2026, 3, 31))
        assert start == utc(2026, 2, 28, 23)
        assert end == utc(2026, 3, 31, 22)

    def test_period_backwards_is_refused(self) -> None:
        with pytest.raises(ValueError, match="period"):
            desk_calendar().period(date(2026, 3, 2), date(2026, 3, 1))

    def test_period_at_the_ends_of_the_calendar_reaches_as_far_as_datetime(self) -> None:
        # Berlin's 0001-01-01 began before 0001-01-01T00:00Z; 9999-12-31 has no next day.
        start, _ = desk_calendar().period(date.min, date.min)
        _, end = desk_calendar().period(date.max, date.max)
        assert start == EARLIEST == datetime.min.replace(tzinfo=UTC)
        assert end == LATEST == datetime.max.replace(tzinfo=UTC)

    def test_in_utc_at_the_ends(self) -> None:
        east = datetime(1, 1, 1, tzinfo=BERLIN)
        west = datetime(9999, 12, 31, 23, tzinfo=NEW_YORK)
        assert in_utc(east) == EARLIEST
        assert in_utc(west) == LATEST
        assert in_utc(datetime(2026, 3, 1, 12, tzinfo=BERLIN)) == utc(2026, 3, 1, 11)
