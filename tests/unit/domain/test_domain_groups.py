"""Support groups and the queue order."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta, timezone
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supportdesk.domain import (
    ContractPeriod,
    InvalidContractPeriod,
    QueueKey,
    Severity,
    SupportGroup,
    queue_key,
    support_group,
)

TODAY = date(2026, 3, 2)


class TestContractPeriod:
    def test_both_ends_are_inclusive(self) -> None:
        period = ContractPeriod(date(2026, 1, 1), date(2026, 12, 31))
        assert period.is_valid_on(date(2026, 1, 1))
        assert period.is_valid_on(date(2026, 12, 31))
        assert not period.is_valid_on(date(2025, 12, 31))
        assert not period.is_valid_on(date(2027, 1, 1))

    def test_open_ended(self) -> None:
        period = ContractPeriod(date(2026, 1, 1))
        assert period.is_valid_on(date(2099, 1, 1))
        assert not period.is_valid_on(date(2025, 12, 31))

    def test_a_one_day_contract(self) -> None:
        assert ContractPeriod(TODAY, TODAY).is_valid_on(TODAY)

    def test_ending_before_starting_is_refused(self) -> None:
        with pytest.raises(InvalidContractPeriod):
            ContractPeriod(date(2026, 2, 1), date(2026, 1, 31))


class TestSupportGroup:
    def test_valid_contract_wins_over_balance(self) -> None:
        assert support_group([ContractPeriod(TODAY)], 10, TODAY) == SupportGroup.CONTRACT

    def test_balance_without_contract_is_premium(self) -> None:
        expired = ContractPeriod(date(2025, 1, 1), date(2026, 3, 1))
        assert support_group([expired], 1, TODAY) == SupportGroup.PREMIUM

    def test_neither_is_standard(self) -> None:
        future = ContractPeriod(date(2026, 3, 3))
        assert support_group([future], 0, TODAY) == SupportGroup.STANDARD
        assert support_group([], 0, TODAY) == SupportGroup.STANDARD

    def test_contract_ending_today_still_counts(self) -> None:
        assert support_group([ContractPeriod(date(2025, 1, 1), TODAY)], 0, TODAY) == "contract"


class TestQueueOrder:
    def test_values_are_the_documented_strings(self) -> None:
        assert [g.value for g in SupportGroup] == ["contract", "premium", "standard"]
        assert [s.value for s in Severity] == ["critical", "high", "normal", "low"]
        assert SupportGroup.CONTRACT.rank < SupportGroup.STANDARD.rank
        assert Severity.CRITICAL.rank < Severity.LOW.rank

    def test_group_before_severity_before_arrival_before_id(self) -> None:
        t = datetime(2026, 3, 2, 9, tzinfo=UTC)
        later = t + timedelta(minutes=1)
        tickets = [
            ("s-crit", SupportGroup.STANDARD, Severity.CRITICAL, t),
            ("p-low", SupportGroup.PREMIUM, Severity.LOW, t),
            ("c-low", SupportGroup.CONTRACT, Severity.LOW, t),
            ("p-crit-late", SupportGroup.PREMIUM, Severity.CRITICAL, later),
            ("p-crit-b", SupportGroup.PREMIUM, Severity.CRITICAL, t),
            ("p-crit-a", SupportGroup.PREMIUM, Severity.CRITICAL, t),
        ]
        ordered = sorted(tickets, key=lambda x: queue_key(x[1], x[2], x[3], x[0]))
        assert [x[0] for x in ordered] == [
            "c-low",
            "p-crit-a",
            "p-crit-b",
            "p-crit-late",
            "p-low",
            "s-crit",
        ]

    def test_arrival_compares_instants_whatever_the_offset(self) -> None:
        berlin_nine = datetime(2026, 3, 2, 9, tzinfo=timezone(timedelta(hours=1)))
        utc_half_past_eight = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)
        a = queue_key(SupportGroup.PREMIUM, Severity.HIGH, berlin_nine, "a")
        b = queue_key(SupportGroup.PREMIUM, Severity.HIGH, utc_half_past_eight, "b")
        assert a < b
        assert a.received_at.tzinfo is UTC

    def test_naive_arrival_is_refused(self) -> None:
        with pytest.raises(ValueError, match="timezone-aware"):
            queue_key(SupportGroup.PREMIUM, Severity.HIGH, datetime(2026, 3, 2, 9), "a")


tickets = st.builds(
    lambda g, s, minutes, n: queue_key(
        g, s, datetime(2026, 3, 2, tzinfo=UTC) + timedelta(minutes=minutes), f"t{n}"
    ),
    st.sampled_from(SupportGroup),
    st.sampled_from(Severity),
    st.integers(0, 20),
    st.integers(0, 30),
)


@settings(max_examples=200, deadline=None)
@given(tickets, tickets, tickets)
def test_queue_order_is_a_total_order(a: QueueKey, b: QueueKey, c: QueueKey) -> None:
    # Exactly one of <, ==, > holds; equal keys mean the same ticket id.
    assert (a < b) + (a == b) + (a > b) == 1
    assert (a == b) == (a.ticket_id == b.ticket_id and a[:3] == b[:3])
    assert not (a < b and b < a)
    if a <= b and b <= c:
        assert a <= c
    # Group outranks everything, then severity.
    if a.group_rank != b.group_rank:
        assert (a < b) == (a.group_rank < b.group_rank)
    elif a.severity_rank != b.severity_rank:
        assert (a < b) == (a.severity_rank < b.severity_rank)


@settings(max_examples=100, deadline=None)
@given(st.lists(tickets, max_size=40, unique_by=lambda k: k.ticket_id), st.randoms())
def test_sorting_does_not_depend_on_the_input_order(
    keys: list[QueueKey], rnd: random.Random
) -> None:
    shuffled = list(keys)
    rnd.shuffle(shuffled)
    ordered = sorted(keys)
    assert sorted(shuffled) == ordered
    assert all(x < y for x, y in pairwise(ordered))
