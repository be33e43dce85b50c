"""Ticket categories, statuses and the status machine."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .calendar import BusinessCalendar, Interval
from .errors import (
    AppointmentsMissing,
    ConceptMissing,
    DongleNotReturned,
    HeldByBlockers,
    IllegalTransition,
)

if TYPE_CHECKING:
    from .blockers import Blocker


class TicketCategory(StrEnum):
    BUG_REPORT = "bug_report"
    OPERATION = "operation"
    HOW_TO = "how_to"
    DATABASE_DEFECT = "database_defect"
    INSTALLATION = "installation"
    CHANGE_REQUEST = "change_request"
    HARDWARE_EXCHANGE = "hardware_exchange"


class TicketStatus(StrEnum):
    AWAITING_CUSTOMER = "awaiting_customer"
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    ESCALATED = "escalated"
    RESOLVED = "resolved"
    CLOSED = "closed"


_S = TicketStatus

TRANSITIONS: Mapping[TicketStatus, frozenset[TicketStatus]] = MappingProxyType(
    {
        _S.AWAITING_CUSTOMER: frozenset({_S.OPEN, _S.CLOSED}),
        _S.OPEN: frozenset({_S.IN_PROGRESS, _S.AWAITING_CUSTOMER, _S.CLOSED}),
        _S.IN_PROGRESS: frozenset({_S.AWAITING_CUSTOMER, _S.ESCALATED, _S.RESOLVED, _S.OPEN}),
        _S.ESCALATED: frozenset({_S.IN_PROGRESS, _S.RESOLVED}),
        _S.RESOLVED: frozenset({_S.CLOSED, _S.OPEN}),
        _S.CLOSED: frozenset(),
    }
)
"""Every allowed move, from DOMAIN.md; anything else is refused."""

CLOCK_STOPPED: frozenset[TicketStatus] = frozenset({_S.AWAITING_CUSTOMER, _S.ESCALATED})
"""Statuses in which the service-level clock does not run."""

_HELD_TARGETS = frozenset({_S.OPEN, _S.IN_PROGRESS})


def allowed_transitions(status: TicketStatus) -> frozenset[TicketStatus]:
    """The statuses a ticket in ``status`` may move to."""
    return TRANSITIONS[status]


def can_transition(current: TicketStatus, target: TicketStatus) -> bool:
    return target in TRANSITIONS[current]


def refused_by_blockers(target: TicketStatus, held: bool) -> bool:
    """Whether a manual move to ``target`` is refused because blockers hold the ticket."""
    return held and target in _HELD_TARGETS


def check_transition(
    current: TicketStatus,
    target: TicketStatus,
    *,
    held: bool = False,
    blockers: Iterable[Blocker] = (),
) -> None:
    """Raise unless a supporter may move the ticket from ``current`` to ``target``.

    ``held`` says whether blockers hold the ticket (see ``blockers.holds``).
    """
    if not can_transition(current, target):
        raise IllegalTransition(current, target, TRANSITIONS[current])
    if refused_by_blockers(target, held):
        raise HeldByBlockers(target, blockers)


def initial_status(held: bool) -> TicketStatus:
    """A new ticket waits for the customer while blockers hold it, else joins the queue."""
    return _S.AWAITING_CUSTOMER if held else _S.OPEN


def status_after_blockers_change(
    status: TicketStatus, held_before: bool, held_after: bool
) -> TicketStatus:
    """The status once the blockers are recomputed (an upload, an edit, a purchase).

    The last blocker clearing opens a held ticket; a queued ticket that becomes held
    leaves the queue, since the queue holds only tickets ready to be worked. Tickets
    already taken are left to their supporter.
    """
    if status == _S.AWAITING_CUSTOMER and held_before and not held_after:
        return _S.OPEN
    if status == _S.OPEN and held_after and not held_before:
        return _S.AWAITING_CUSTOMER
    return status


def status_after_customer_answer(status: TicketStatus, held: bool) -> TicketStatus:
    """A customer's answer sends a ticket waiting on them, and not held, back to the queue."""
    if status == _S.AWAITING_CUSTOMER and not held:
        return _S.OPEN
    return status


MIN_APPOINTMENTS_OUTSIDE_HOURS = 2


@dataclass(frozen=True, slots=True)
class StatusMove:
    """What a change of status writes: the ticket's new stored values, and the pause that
    ended with it (the clock runs again), if one did."""

    changes: dict[str, Any]
    ended_pause: Interval | None


def move_status(
    current: TicketStatus, paused_since: datetime | None, to: TicketStatus, now: datetime
) -> StatusMove | None:
    """The move from ``current`` to ``to`` at ``now``; None when it stays. Entering a
    status that stops the clock starts a pause, leaving one ends it; back in the queue,
    the ticket has no assignee."""
    if to == current:
        return None
    changes: dict[str, Any] = {"status": to.value}
    ended: Interval | None = None
    stopped_before, stopped_after = current in CLOCK_STOPPED, to in CLOCK_STOPPED
    if stopped_before and not stopped_after and paused_since is not None:
        ended = (paused_since, now)
        changes["paused_since"] = None
    elif stopped_after and not stopped_before:
        changes["paused_since"] = now
    if to == _S.OPEN:
        changes["assignee_key_id"] = None
    return StatusMove(changes, ended)


def check_closable(category: TicketCategory, dongle_received: bool) -> None:
    """A ``hardware_exchange`` ticket stays open until the defective dongle is back."""
    if category == TicketCategory.HARDWARE_EXCHANGE and not dongle_received:
        raise DongleNotReturned(
            "a dongle exchange cannot be closed before the defective dongle is received back"
        )


def check_escalation(category: TicketCategory, concept: str | None, concept_en: str | None) -> None:
    """Change requests are forwarded with their concept and its English translation."""
    if category != TicketCategory.CHANGE_REQUEST:
        return
    if not (concept and concept.strip()) or not (concept_en and concept_en.strip()):
        raise ConceptMissing("a change request needs its concept and concept_en to be escalated")


def check_appointments(
    category: TicketCategory,
    appointments: Sequence[Interval],
    installation_hours: BusinessCalendar,
) -> None:
    """An installation wanted outside installation hours proposes two dates or more."""
    if category != TicketCategory.INSTALLATION:
        return
    outside = [a for a in appointments if not installation_hours.within_hours(*a)]
    if outside and len(appointments) < MIN_APPOINTMENTS_OUTSIDE_HOURS:
        raise AppointmentsMissing(
            "an installation outside installation hours needs at least "
            f"{MIN_APPOINTMENTS_OUTSIDE_HOURS} proposed appointments"
        )
