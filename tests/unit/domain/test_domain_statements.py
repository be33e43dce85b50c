"""Statement totals."""

from __future__ import annotations

from decimal import Decimal

import pytest

from supportdesk.domain import (
    BillingDecision,
    BillingOutcome,
    EntryKind,
    StatementEntry,
    StatementTotals,
    default_price_list,
    statement_totals,
)

D = Decimal
K = EntryKind
PRICES = default_price_list()


def test_a_month_with_purchases_sessions_and_a_reversal() -> None:
    entries = [
        StatementEntry(K.PURCHASE, 10, amount=D("280.00")),
        StatementEntry(K.DEBIT, -3),  # a 40-minute session
        StatementEntry(K.DEBIT, -9, units_at_list_price=2),  # 11 units, 9 left on the balance
        StatementEntry(K.REVERSAL, 3, reverses=K.DEBIT),  # the first session was goodwill
        StatementEntry(K.DEBIT, 0, units_at_list_price=1),  # empty balance: all at list price
    ]
    sessions = [
        BillingDecision(BillingOutcome.CHARGED, 3, units_charged=3),
        BillingDecision(BillingOutcome.CHARGED, 11, units_charged=9, units_at_list_price=2),
        BillingDecision(BillingOutcome.COVERED, 4, units_covered=4),
        BillingDecision(BillingOutcome.CHARGED, 1, units_at_list_price=1),
    ]
    totals = statement_totals(2, entries, sessions, PRICES)
    assert totals == StatementTotals(
        opening_balance=2,
        closing_balance=3,
        units_purchased=10,
        amount_purchased=D("280.00"),
        units_used=9,
        units_at_list_price=3,
        units_covered=4,
        amount_due=D("90.00"),
        currency="EUR",
    )
    assert totals.closing_balance == (
        totals.opening_balance + totals.units_purchased - totals.units_used
    )


def test_an_empty_period_carries_the_balance() -> None:
    totals = statement_totals(7, [], [], PRICES)
    assert (totals.opening_balance, totals.closing_balance) == (7, 7)
    assert totals.amount_due == D("0.00")


def test_reversed_purchase_counts_against_purchases() -> None:
    entries = [
        StatementEntry(K.PURCHASE, 20, amount=D("520.00")),
        StatementEntry(K.REVERSAL, -20, amount=D("-520.00"), reverses=K.PURCHASE),
    ]
    totals = statement_totals(0, entries, [], PRICES)
    assert (totals.units_purchased, totals.amount_purchased, totals.closing_balance) == (
        0,
        D("0.00"),
        0,
    )


def test_reversal_of_list_price_work_billed_earlier_is_a_credit() -> None:
    entries = [StatementEntry(K.REVERSAL, 0, units_at_list_price=-2, reverses=K.DEBIT)]
    assert statement_totals(0, entries, [], PRICES).amount_due == D("-60.00")


def test_inconsistent_entries_are_refused() -> None:
    with pytest.raises(ValueError, match="below zero"):
        statement_totals(1, [StatementEntry(K.DEBIT, -2)], [], PRICES)
    with pytest.raises(ValueError, match="never negative"):
        statement_totals(-1, [], [], PRICES)


def test_reversal_must_name_what_it_undoes() -> None:
    with pytest.raises(ValueError, match="names the kind"):
        StatementEntry(K.REVERSAL, 3)
    with pytest.raises(ValueError, match="names the kind"):
        StatementEntry(K.DEBIT, -3, reverses=K.PURCHASE)
    with pytest.raises(ValueError, match="cannot undo a reversal"):
        StatementEntry(K.REVERSAL, 3, reverses=K.REVERSAL)
