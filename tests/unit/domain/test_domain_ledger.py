"""Ledger rules: debit splits, reversals, warnings."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supportdesk.domain import (
    AlreadyReversed,
    DebitSplit,
    EntryKind,
    InsufficientBalance,
    NotReversible,
    reversal_effect,
    split_debit,
    warning_crossings,
)


class TestSplitDebit:
    def test_within_the_balance(self) -> None:
        assert split_debit(3, 10) == DebitSplit(3, 0)

    def test_beyond_the_balance_the_rest_is_at_list_price(self) -> None:
        assert split_debit(5, 2) == DebitSplit(2, 3)

    def test_empty_balance_bills_everything_at_list_price(self) -> None:
        assert split_debit(4, 0) == DebitSplit(0, 4)

    def test_negative_input_is_refused(self) -> None:
        with pytest.raises(ValueError, match="negative"):
            split_debit(-1, 3)
        with pytest.raises(ValueError, match="negative"):
            split_debit(1, -3)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 10**6), st.integers(0, 10**6))
def test_debit_split_conserves_units_and_never_goes_below_zero(units: int, balance: int) -> None:
    split = split_debit(units, balance)
    assert split.from_prepaid + split.at_list_price == units
    assert split.from_prepaid >= 0
    assert split.at_list_price >= 0
    assert balance - split.from_prepaid >= 0
    # The balance is used up before anything goes to list price.
    assert split.at_list_price == 0 or split.from_prepaid == balance


class TestReversal:
    def test_reversing_a_debit_gives_the_units_back(self) -> None:
        assert reversal_effect(EntryKind.DEBIT, -3, balance=0) == 3

    def test_reversing_a_purchase_takes_them_away(self) -> None:
        assert reversal_effect(EntryKind.PURCHASE, 10, balance=10) == -10

    def test_used_purchased_units_cannot_be_taken_back(self) -> None:
        with pytest.raises(InsufficientBalance):
            reversal_effect(EntryKind.PURCHASE, 10, balance=4)

    def test_a_reversal_cannot_be_reversed(self) -> None:
        with pytest.raises(NotReversible):
            reversal_effect(EntryKind.REVERSAL, 3, balance=10)

    def test_an_entry_is_reversed_once(self) -> None:
        with pytest.raises(AlreadyReversed):
            reversal_effect(EntryKind.DEBIT, -3, balance=0, already_reversed=True)


class TestWarnings:
    def test_falling_to_the_level_warns(self) -> None:
        assert warning_crossings(5, 4, [4]) == (4,)

    def test_falling_below_the_level_warns(self) -> None:
        assert warning_crossings(10, 0, [4]) == (4,)

    def test_staying_at_or_below_the_level_does_not_warn_again(self) -> None:
        assert warning_crossings(4, 2, [4]) == ()
        assert warning_crossings(3, 3, [4]) == ()

    def test_rising_does_not_warn(self) -> None:
        assert warning_crossings(2, 10, [4]) == ()

    def test_several_levels_at_once_highest_first(self) -> None:
        assert warning_crossings(25, 3, [4, 20, 10, 10, 2]) == (20, 10, 4)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 40), min_size=1, max_size=30),
    st.lists(st.integers(0, 40), max_size=4),
)
def test_warning_fires_once_per_crossing(balances: list[int], levels: list[int]) -> None:
    for level in set(levels):
        fired = sum(level in warning_crossings(a, b, levels) for a, b in pairwise(balances))
        crossings = sum(a > level >= b for a, b in pairwise(balances))
        assert fired == crossings
        # Between two warnings for a level the balance went back above it.
        fired_at = [i for i, (a, b) in enumerate(pairwise(balances)) if a > level >= b]
        for first, second in pairwise(fired_at):
            assert any(balance > level for balance in balances[first + 1 : second + 1])
