"""The ticket status machine."""

from __future__ import annotations

from itertools import product

import pytest

from supportdesk.domain import (
    Blocker,
    HeldByBlockers,
    IllegalTransition,
    TicketCategory,
    TicketStatus,
    allowed_transitions,
    can_transition,
    check_transition,
    initial_status,
    refused_by_blockers,
    status_after_blockers_change,
    status_after_customer_answer,
)

S = TicketStatus

# The table of DOMAIN.md, written out once more by hand.
EXPECTED = {
    S.AWAITING_CUSTOMER: {S.OPEN, S.CLOSED},
    S.OPEN: {S.IN_PROGRESS, S.AWAITING_CUSTOMER, S.CLOSED},
    S.IN_PROGRESS: {S.AWAITING_CUSTOMER, S.ESCALATED, S.RESOLVED, S.OPEN},
    S.ESCALATED: {S.IN_PROGRESS, S.RESOLVED},
    S.RESOLVED: {S.CLOSED, S.OPEN},
    S.CLOSED: set(),
}


def test_values_are_the_documented_strings() -> None:
    assert [s.value for s in TicketStatus] == [
        "awaiting_customer",
        "open",
        "in_progress",
        "escalated",
        "resolved",
        "closed",
    ]
    assert {c.value for c in TicketCategory} == {
        "bug_report",
        "operation",
        "how_to",
        "database_defect",
        "installation",
        "change_request",
        "hardware_exchange",
    }


@pytest.mark.parametrize(("current", "target"), list(product(TicketStatus, TicketStatus)))
def test_every_move_follows_the_table(current: TicketStatus, target: TicketStatus) -> None:
    allowed = target in EXPECTED[current]
    assert can_transition(current, target) is allowed
    assert (target in allowed_transitions(current)) is allowed
    if allowed:
        check_transition(current, target)
    else:
        with pytest.raises(IllegalTransition) as refused:
            check_transition(current, target)
        assert refused.value.current == current
        assert refused.value.target == target
        assert set(refused.value.allowed) == EXPECTED[current]


def test_illegal_transition_names_the_allowed_moves() -> None:
    with pytest.raises(IllegalTransition, match="allowed: in_progress, resolved"):
        check_transition(S.ESCALATED, S.CLOSED)
    with pytest.raises(IllegalTransition, match="allowed: none"):
        check_transition(S.CLOSED, S.OPEN)


def test_nothing_moves_to_its_own_status() -> None:
    assert not any(can_transition(s, s) for s in TicketStatus)


@pytest.mark.parametrize("target", list(TicketStatus))
def test_blockers_refuse_only_moves_into_the_queue_or_work(target: TicketStatus) -> None:
    assert refused_by_blockers(target, held=True) is (target in {S.OPEN, S.IN_PROGRESS})
    assert refused_by_blockers(target, held=False) is False


def test_held_ticket_cannot_be_opened_by_hand_but_can_be_closed() -> None:
    with pytest.raises(HeldByBlockers, match="missing_steps"):
        check_transition(S.AWAITING_CUSTOMER, S.OPEN, held=True, blockers=[Blocker.MISSING_STEPS])
    check_transition(S.AWAITING_CUSTOMER, S.CLOSED, held=True)
    check_transition(S.AWAITING_CUSTOMER, S.OPEN, held=False)


def test_illegal_move_is_reported_before_blockers() -> None:
    with pytest.raises(IllegalTransition):
        check_transition(S.CLOSED, S.OPEN, held=True)


def test_new_ticket_status() -> None:
    assert initial_status(held=True) == S.AWAITING_CUSTOMER
    assert initial_status(held=False) == S.OPEN


class TestBlockersChange:
    def test_last_blocker_clearing_opens_the_ticket(self) -> None:
        assert status_after_blockers_change(S.AWAITING_CUSTOMER, True, False) == S.OPEN

    def test_waiting_on_an_answer_stays_when_nothing_held_it(self) -> None:
        assert (
            status_after_blockers_change(S.AWAITING_CUSTOMER, False, False) == S.AWAITING_CUSTOMER
        )

    def test_still_held_stays(self) -> None:
        assert status_after_blockers_change(S.AWAITING_CUSTOMER, True, True) == S.AWAITING_CUSTOMER

    def test_queued_ticket_newly_held_leaves_the_queue(self) -> None:
        assert status_after_blockers_change(S.OPEN, False, True) == S.AWAITING_CUSTOMER

    @pytest.mark.parametrize("status", [S.IN_PROGRESS, S.ESCALATED, S.RESOLVED, S.CLOSED])
    def test_taken_or_finished_tickets_are_left_alone(self, status: TicketStatus) -> None:
        for before, after in product([False, True], repeat=2):
            assert status_after_blockers_change(status, before, after) == status

    def test_every_automatic_move_is_a_legal_one(self) -> None:
        for status, before, after in product(TicketStatus, [False, True], [False, True]):
            new = status_after_blockers_change(status, before, after)
            assert new == status or can_transition(status, new)


class TestCustomerAnswer:
    def test_answer_reopens_a_ticket_held_without_blockers(self) -> None:
        assert status_after_customer_answer(S.AWAITING_CUSTOMER, held=False) == S.OPEN

    def test_answer_does_not_open_a_held_ticket(self) -> None:
        assert status_after_customer_answer(S.AWAITING_CUSTOMER, held=True) == S.AWAITING_CUSTOMER

    @pytest.mark.parametrize("status", [S.OPEN, S.IN_PROGRESS, S.ESCALATED, S.RESOLVED, S.CLOSED])
    def test_answer_elsewhere_changes_nothing(self, status: TicketStatus) -> None:
        assert status_after_customer_answer(status, held=False) == status
