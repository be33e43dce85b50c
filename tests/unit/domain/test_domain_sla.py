"""Service-level targets and states."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supportdesk.domain import (
    BusinessCalendar,
    Severity,
    SlaState,
    SlaTarget,
    SlaTargets,
    SupportGroup,
    WorkingRange,
    at_risk_from,
    default_sla_targets,
    desk_calendar,
    first_response_due,
    sla_state,
)

BERLIN = ZoneInfo("Europe/Berlin")
H = timedelta(hours=1)
G, S = SupportGroup, Severity
CAL = desk_calendar()
TARGETS = default_sla_targets()


def berlin(day: int, hour: int, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=BERLIN)


class TestTargets:
    @pytest.mark.parametrize("group", [G.CONTRACT, G.PREMIUM])
    def test_paying_customers_get_four_hours_and_one_when_critical(
        self, group: SupportGroup
    ) -> None:
        assert TARGETS.target(group, S.CRITICAL).duration(CAL) == H
        for severity in (S.HIGH, S.NORMAL, S.LOW):
            assert TARGETS.target(group, severity).duration(CAL) == 4 * H

    @pytest.mark.parametrize("severity", list(Severity))
    def test_standard_gets_two_business_days(self, severity: Severity) -> None:
        assert TARGETS.target(G.STANDARD, severity).duration(CAL) == 17 * H

    def test_business_days_follow_the_calendar(self) -> None:
        lunch = BusinessCalendar.weekly(
            "Europe/Berlin", WorkingRange.parse_many("08:30-12:00,13:00-17:00")
        )
        assert SlaTarget.days(2).duration(lunch) == 15 * H
        assert SlaTarget.days("0.5").duration(CAL) == timedelta(hours=4, minutes=15)
        assert SlaTarget.hours("1.5").duration(CAL) == 1.5 * H

    def test_incomplete_targets_are_refused(self) -> None:
        with pytest.raises(ValueError, match="missing"):
            SlaTargets(((G.CONTRACT, S.CRITICAL, SlaTarget.hours(1)),))

    def test_duplicate_targets_are_refused(self) -> None:
        twice = (*TARGETS.targets, (G.CONTRACT, S.LOW, SlaTarget.hours(8)))
        with pytest.raises(ValueError, match="exactly one"):
            SlaTargets(twice)

    def test_negative_target_is_refused(self) -> None:
        with pytest.raises(ValueError, match=">= 0"):
            SlaTarget.hours(-1)

    def test_targets_are_values(self) -> None:
        assert default_sla_targets() == TARGETS
        assert hash(default_sla_targets()) == hash(TARGETS)


class TestFirstResponseDue:
    def test_premium_normal_is_due_four_business_hours_later(self) -> None:
        due = first_response_due(berlin(2, 9), G.PREMIUM, S.NORMAL, CAL, TARGETS)
        assert due == berlin(2, 13)

    def test_contract_critical_is_due_in_one_hour(self) -> None:
        due = first_response_due(berlin(2, 16, 30), G.CONTRACT, S.CRITICAL, CAL, TARGETS)
        assert due == berlin(3, 9)

    def test_four_hours_across_the_berlin_dst_weekend(self) -> None:
        due = first_response_due(berlin(27, 16), G.PREMIUM, S.HIGH, CAL, TARGETS)
        assert due == berlin(30, 11, 30) == datetime(2026, 3, 30, 9, 30, tzinfo=UTC)

    def test_standard_friday_1630_before_whit_monday(self) -> None:
        cal = desk_calendar([date(2026, 5, 25)])
        due = first_response_due(berlin(22, 16, 30, month=5), G.STANDARD, S.LOW, cal, TARGETS)
        assert due == berlin(27, 16, 30, month=5)

    def test_filed_on_sunday_counts_from_monday_morning(self) -> None:
        due = first_response_due(berlin(1, 23), G.PREMIUM, S.NORMAL, CAL, TARGETS)
        assert due == berlin(2, 12, 30)

    def test_waiting_for_the_customer_pushes_the_due_time_out(self) -> None:
        # Awaiting the customer Mon 10:00-14:00: those four hours do not count.
        pause = (berlin(2, 10), berlin(2, 14))
        due = first_response_due(berlin(2, 9), G.PREMIUM, S.NORMAL, CAL, TARGETS, [pause])
        assert due == berlin(2, 17)

    def test_pause_after_the_due_time_changes_nothing(self) -> None:
        pause = (berlin(2, 14), berlin(3, 10))
        due = first_response_due(berlin(2, 9), G.PREMIUM, S.NORMAL, CAL, TARGETS, [pause])
        assert due == berlin(2, 13)


class TestState:
    received = berlin(2, 9)
    due = berlin(2, 13)

    def state(self, now: datetime, paused: bool = False, **kw: object) -> SlaState:
        return sla_state(now, self.received, self.due, paused, CAL, **kw)  # type: ignore[arg-type]

    def test_on_track_before_three_quarters(self) -> None:
        assert self.state(berlin(2, 11, 59)) == SlaState.ON_TRACK

    def test_at_risk_from_three_quarters(self) -> None:
        assert self.state(berlin(2, 12)) == SlaState.AT_RISK
        assert self.state(berlin(2, 13)) == SlaState.AT_RISK

    def test_breached_past_due(self) -> None:
        assert self.state(berlin(2, 13, 1)) == SlaState.BREACHED

    def test_paused_while_the_clock_stands(self) -> None:
        assert self.state(berlin(2, 12, 30), paused=True) == SlaState.PAUSED

    def test_a_breach_stays_a_breach_while_paused(self) -> None:
        assert self.state(berlin(3, 9), paused=True) == SlaState.BREACHED

    def test_threshold_is_configurable(self) -> None:
        assert self.state(berlin(2, 11), at_risk_ratio=Decimal("0.5")) == SlaState.AT_RISK
        assert self.state(berlin(2, 11), at_risk_ratio=0.9) == SlaState.ON_TRACK

    def test_threshold_must_be_a_share(self) -> None:
        with pytest.raises(ValueError, match="ratio"):
            self.state(berlin(2, 11), at_risk_ratio=Fraction(3, 2))

    def test_business_time_counts_not_wall_time(self) -> None:
        # Filed Fri 16:00, due Mon 11:30: at Mon 10:00 only 2.5 h of 4 are used.
        received, due = berlin(6, 16), berlin(9, 11, 30)
        assert sla_state(berlin(9, 8, 30), received, due, False, CAL) == SlaState.ON_TRACK
        assert sla_state(berlin(9, 10), received, due, False, CAL) == SlaState.ON_TRACK
        assert sla_state(berlin(9, 10, 30), received, due, False, CAL) == SlaState.AT_RISK

    def test_pauses_are_left_out_of_the_share_used(self) -> None:
        pause = (berlin(2, 9, 30), berlin(2, 11, 30))
        due = first_response_due(self.received, G.PREMIUM, S.NORMAL, CAL, TARGETS, [pause])
        assert due == berlin(2, 15)
        now = berlin(2, 13, 30)  # 2.5 of 4 h used
        assert sla_state(now, self.received, due, False, CAL, [pause]) == SlaState.ON_TRACK
        assert at_risk_from(self.received, due, CAL, [pause]) == berlin(2, 14)


@settings(max_examples=100, deadline=None)
@given(
    st.integers(0, 60 * 24 * 60),
    st.sampled_from(list(SupportGroup)),
    st.sampled_from(list(Severity)),
    st.fractions(min_value=Fraction(1, 100), max_value=1),
)
def test_state_turns_at_risk_exactly_at_the_computed_instant(
    minutes: int, group: SupportGroup, severity: Severity, ratio: Fraction
) -> None:
    received = datetime(2026, 3, 20, tzinfo=UTC) + timedelta(minutes=minutes)
    due = first_response_due(received, group, severity, CAL, TARGETS)
    turn = at_risk_from(received, due, CAL, at_risk_ratio=ratio)
    assert sla_state(turn, received, due, False, CAL, at_risk_ratio=ratio) == SlaState.AT_RISK
    before = CAL.add(received, CAL.between(received, turn) - timedelta(microseconds=1))
    assert sla_state(before, received, due, False, CAL, at_risk_ratio=ratio) == SlaState.ON_TRACK
