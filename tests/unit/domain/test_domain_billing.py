"""Units for support work, merged sessions and who pays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supportdesk.domain import (
    BillingDecision,
    BillingOutcome,
    BillingSettings,
    ListPriceRequired,
    NonBillableReason,
    NonBillableReasonMismatch,
    SessionSpan,
    SupportGroup,
    billed_units,
    decide_billing,
    merge_sessions,
    require_remote_allowed,
    units_added,
    units_for,
)

MIN = timedelta(minutes=1)
UNIT = timedelta(minutes=15)
T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)


class TestUnits:
    @pytest.mark.parametrize(
        ("duration", "units"),
        [
            (
                timedelta(minutes=10),
                1,
            ),  # "Wenn Ihre Anfrage 10 Minuten dauert ... 1 Supporteinheit"
            (timedelta(minutes=15), 1),
            (timedelta(minutes=15, seconds=1), 2),
            (timedelta(minutes=12, seconds=22), 1),  # the log example 00:12:22
            (timedelta(microseconds=1), 1),
            (timedelta(0), 0),
            (timedelta(hours=3), 12),
            (timedelta(hours=3, microseconds=1), 13),
        ],
    )
    def test_units_are_started_quarter_hours(self, duration: timedelta, units: int) -> None:
        assert units_for(duration) == units

    def test_other_unit_lengths(self) -> None:
        assert units_for(timedelta(minutes=10), timedelta(minutes=5)) == 2
        assert units_for(timedelta(minutes=10), timedelta(minutes=6)) == 2

    def test_negative_duration_is_refused(self) -> None:
        with pytest.raises(ValueError, match="negative"):
            units_for(-MIN)

    def test_zero_unit_is_refused(self) -> None:
        with pytest.raises(ValueError, match="unit"):
            units_for(MIN, timedelta(0))
        with pytest.raises(ValueError, match="unit"):
            BillingSettings(unit_length=timedelta(0))

    def test_settings_default_to_quarter_hours_without_minimum_or_merging(self) -> None:
        settings = BillingSettings()
        assert settings.unit_length == UNIT
        assert settings.minimum_billable is None
        assert settings.merge_gap is None


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10**11), st.integers(0, 10**11), st.integers(1, 3600))
def test_units_never_decrease_and_cover_the_time(a: int, b: int, unit_s: int) -> None:
    unit = timedelta(seconds=unit_s)
    short, long = sorted((timedelta(microseconds=a), timedelta(microseconds=b)))
    assert units_for(short, unit) <= units_for(long, unit)
    n = units_for(long, unit)
    assert n * unit >= long > (n - 1) * unit or n == 0 == long.total_seconds()


class TestMinimumAndMerging:
    def test_connections_below_the_minimum_are_not_billed(self) -> None:
        settings = BillingSettings(minimum_billable=MIN)
        assert billed_units([timedelta(seconds=59)], settings) == 0
        assert billed_units([MIN], settings) == 1

    def test_merged_sessions_bill_their_total_not_the_break(self) -> None:
        settings = BillingSettings(merge_gap=5 * MIN)
        assert billed_units([10 * MIN, 4 * MIN], settings) == 1
        assert billed_units([10 * MIN, 6 * MIN], settings) == 2

    def test_a_short_reconnect_adds_nothing(self) -> None:
        settings = BillingSettings(merge_gap=5 * MIN)
        assert units_added([10 * MIN], 4 * MIN, settings) == 0
        assert units_added([10 * MIN], 6 * MIN, settings) == 1
        assert units_added([], 4 * MIN, settings) == 1

    def test_minimum_applies_to_the_merged_group(self) -> None:
        settings = BillingSettings(minimum_billable=2 * MIN, merge_gap=5 * MIN)
        assert units_added([], MIN, settings) == 0
        assert units_added([MIN], 90 * timedelta(seconds=1), settings) == 1

    def span(
        self, minute: int, length: int, ticket: str | None = "t1", customer: str = "c1"
    ) -> SessionSpan:
        return SessionSpan(customer, ticket, T0 + minute * MIN, length * MIN)

    def test_merge_joins_same_customer_same_ticket_within_the_gap(self) -> None:
        a, b, c = self.span(0, 10), self.span(13, 4), self.span(30, 5)
        assert merge_sessions([c, a, b], 5 * MIN) == ((a, b), (c,))

    def test_merge_is_off_without_a_gap(self) -> None:
        a, b = self.span(0, 10), self.span(11, 4)
        assert merge_sessions([a, b], None) == ((a,), (b,))

    def test_merge_keeps_tickets_and_customers_apart(self) -> None:
        a = self.span(0, 10)
        other_ticket = self.span(11, 4, ticket="t2")
        other_customer = self.span(12, 4, customer="c2")
        no_ticket, no_ticket_again = self.span(20, 1, ticket=None), self.span(21, 1, ticket=None)
        groups = merge_sessions(
            [a, other_ticket, other_customer, no_ticket, no_ticket_again], 5 * MIN
        )
        assert groups == (
            (a,),
            (other_ticket,),
            (other_customer,),
            (no_ticket,),
            (no_ticket_again,),
        )

    def test_merge_chains_and_measures_from_the_latest_end(self) -> None:
        a, b, c = self.span(0, 30), self.span(5, 5), self.span(33, 1)
        assert merge_sessions([a, b, c], 5 * MIN) == ((a, b, c),)

    def test_naive_start_is_refused(self) -> None:
        with pytest.raises(ValueError, match="timezone-aware"):
            SessionSpan("c1", None, datetime(2026, 3, 2, 9), MIN)


class TestDecision:
    def decide(self, units: int = 3, **kw: object) -> BillingDecision:
        args: dict[str, object] = {
            "billable": True,
            "group": SupportGroup.PREMIUM,
            "balance": 10,
            "covered_by_contract": False,
        }
        args.update(kw)
        return decide_billing(units, **args)  # type: ignore[arg-type]

    def test_not_billable_charges_nothing(self) -> None:
        decision = self.decide(billable=False, non_billable_reason=NonBillableReason.WARRANTY)
        assert decision == BillingDecision(
            BillingOutcome.NOT_BILLABLE, 3, non_billable_reason=NonBillableReason.WARRANTY
        )

    def test_not_billable_needs_a_reason(self) -> None:
        with pytest.raises(NonBillableReasonMismatch):
            self.decide(billable=False)

    def test_billable_work_cannot_carry_a_reason(self) -> None:
        with pytest.raises(NonBillableReasonMismatch):
            self.decide(non_billable_reason=NonBillableReason.GOODWILL)

    def test_valid_contract_covers_the_work(self) -> None:
        decision = self.decide(group=SupportGroup.CONTRACT, covered_by_contract=True)
        assert decision.outcome == BillingOutcome.COVERED
        assert (decision.units_charged, decision.units_at_list_price, decision.units_covered) == (
            0,
            0,
            3,
        )
        assert decision.non_billable_reason == NonBillableReason.COVERED_BY_CONTRACT

    def test_marked_covered_by_contract_shows_as_covered(self) -> None:
        decision = self.decide(
            billable=False, non_billable_reason=NonBillableReason.COVERED_BY_CONTRACT
        )
        assert decision.outcome == BillingOutcome.COVERED
        assert decision.units_covered == 3

    def test_premium_pays_from_prepaid_units(self) -> None:
        decision = self.decide()
        assert (decision.outcome, decision.units_charged, decision.units_at_list_price) == (
            BillingOutcome.CHARGED,
            3,
            0,
        )

    def test_rest_beyond_the_balance_is_billed_at_list_price(self) -> None:
        decision = self.decide(5, balance=2)
        assert (decision.units_charged, decision.units_at_list_price) == (2, 3)

    def test_balance_run_out_since_the_session_opened_goes_to_list_price(self) -> None:
        decision = self.decide(5, balance=0)
        assert (decision.units_charged, decision.units_at_list_price) == (0, 5)

    def test_standard_needs_explicit_list_price_billing(self) -> None:
        with pytest.raises(ListPriceRequired):
            self.decide(group=SupportGroup.STANDARD, balance=0)
        decision = self.decide(group=SupportGroup.STANDARD, balance=0, bill_at_list_price=True)
        assert (decision.units_charged, decision.units_at_list_price) == (0, 3)

    def test_standard_remote_session_refused_at_opening(self) -> None:
        with pytest.raises(ListPriceRequired):
            require_remote_allowed(SupportGroup.STANDARD, bill_at_list_price=False)
        require_remote_allowed(SupportGroup.STANDARD, bill_at_list_price=True)
        require_remote_allowed(SupportGroup.PREMIUM, bill_at_list_price=False)

    def test_negative_units_are_refused(self) -> None:
        with pytest.raises(ValueError, match="negative"):
            self.decide(-1)

    def test_reasons_are_the_documented_strings(self) -> None:
        assert [r.value for r in NonBillableReason] == [
            "warranty",
            "goodwill",
            "covered_by_contract",
            "internal",
        ]
