"""What support work costs in prepaid units, and who pays for it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from .calendar import require_aware
from .errors import ListPriceRequired, NonBillableReasonMismatch
from .groups import SupportGroup
from .ledger import split_debit

DEFAULT_UNIT_LENGTH = timedelta(minutes=15)
_ZERO = timedelta(0)


@dataclass(frozen=True, slots=True)
class BillingSettings:
    """How raw session time turns into units.

    ``minimum_billable``: connections (or merged groups) shorter than this are not billed.
    ``merge_gap``: sessions of one customer on one ticket at most this far apart are
    billed as one. Both off (None) by default, as in the remote-support tools.
    """

    unit_length: timedelta = DEFAULT_UNIT_LENGTH
    minimum_billable: timedelta | None = None
    merge_gap: timedelta | None = None

    def __post_init__(self) -> None:
        if self.unit_length <= _ZERO:
            raise ValueError(f"a unit must be longer than zero: {self.unit_length}")
        for name in ("minimum_billable", "merge_gap"):
            value: timedelta | None = getattr(self, name)
            if value is not None and value < _ZERO:
                raise ValueError(f"{name} must not be negative: {value}")


def units_for(duration: timedelta, unit_length: timedelta = DEFAULT_UNIT_LENGTH) -> int:
    """``ceil(duration / unit_length)``: any work longer than zero costs a unit."""
    if duration < _ZERO:
        raise ValueError(f"a duration cannot be negative: {duration}")
    if unit_length <= _ZERO:
        raise ValueError(f"a unit must be longer than zero: {unit_length}")
    # Integer arithmetic on microseconds: no float can round 15:00 up to two units.
    return -(-duration // unit_length)


@dataclass(frozen=True, slots=True)
class SessionSpan:
    """One remote connection as far as billing cares."""

    customer_id: str
    ticket_id: str | None
    started_at: datetime
    duration: timedelta

    def __post_init__(self) -> None:
        require_aware(self.started_at, "started_at")
        if self.duration < _ZERO:
            raise ValueError(f"a session cannot last less than zero: {self.duration}")

    @property
    def ended_at(self) -> datetime:
        return self.started_at + self.duration


def merge_sessions(
    sessions: Iterable[SessionSpan], merge_gap: timedelta | None
) -> tuple[tuple[SessionSpan, ...], ...]:
    """Group sessions billed as one: same customer, same ticket, breaks of ``merge_gap``
    at most. Sessions without a ticket are never merged. Groups come in order of start.
    """
    ordered = sorted(sessions, key=lambda s: (s.started_at, s.customer_id, s.ticket_id or ""))
    groups: list[list[SessionSpan]] = []
    open_group: dict[tuple[str, str], list[SessionSpan]] = {}
    for session in ordered:
        key = None if session.ticket_id is None else (session.customer_id, session.ticket_id)
        group = open_group.get(key) if key is not None else None
        if (
            group is not None
            and merge_gap is not None
            and session.started_at - max(s.ended_at for s in group) <= merge_gap
        ):
            group.append(session)
            continue
        group = [session]
        groups.append(group)
        if key is not None:
            open_group[key] = group
    return tuple(tuple(group) for group in groups)


def billed_units(durations: Iterable[timedelta], settings: BillingSettings) -> int:
    """Units for connections billed as one: their total time, nothing below the minimum.

    The breaks between merged connections are not billed.
    """
    total = sum(durations, _ZERO)
    if settings.minimum_billable is not None and total < settings.minimum_billable:
        return 0
    return units_for(total, settings.unit_length)


def units_added(
    earlier: Iterable[timedelta], duration: timedelta, settings: BillingSettings
) -> int:
    """What a session adds to the bill of the merged group it joins.

    ``earlier`` are the durations already billed in that group; a 4-minute reconnect
    after a 10-minute session costs nothing more with 15-minute units.
    """
    before = tuple(earlier)
    return billed_units((*before, duration), settings) - billed_units(before, settings)


class NonBillableReason(StrEnum):
    WARRANTY = "warranty"
    GOODWILL = "goodwill"
    COVERED_BY_CONTRACT = "covered_by_contract"
    INTERNAL = "internal"


class BillingOutcome(StrEnum):
    NOT_BILLABLE = "not_billable"
    COVERED = "covered"
    CHARGED = "charged"


@dataclass(frozen=True, slots=True)
class BillingDecision:
    """How a session's units are paid. ``units`` is what the work is worth."""

    outcome: BillingOutcome
    units: int
    units_charged: int = 0
    units_at_list_price: int = 0
    units_covered: int = 0
    non_billable_reason: NonBillableReason | None = None


def require_remote_allowed(group: SupportGroup, bill_at_list_price: bool) -> None:
    """Refuse a remote session for a ``standard`` customer not billed at list price."""
    if group == SupportGroup.STANDARD and not bill_at_list_price:
        raise ListPriceRequired


def decide_billing(
    units: int,
    *,
    billable: bool,
    group: SupportGroup,
    balance: int,
    covered_by_contract: bool,
    non_billable_reason: NonBillableReason | None = None,
    bill_at_list_price: bool = False,
) -> BillingDecision:
    """Who pays for ``units`` of work when a session ends or is logged.

    Not billable: nothing, with the reason. Covered by a valid contract (at the time
    of the session): nothing charged, shown as covered. Otherwise prepaid units are
    debited and the rest billed at list price; a ``standard`` customer's work must be
    billed at list price explicitly. A not-billable session with the reason
    ``covered_by_contract`` is shown as covered too.
    """
    if units < 0:
        raise ValueError(f"units cannot be negative: {units}")
    if not billable:
        if non_billable_reason is None:
            raise NonBillableReasonMismatch("work that is not billed needs a reason")
        if non_billable_reason == NonBillableReason.COVERED_BY_CONTRACT:
            return _covered(units)
        return BillingDecision(
            BillingOutcome.NOT_BILLABLE, units, non_billable_reason=non_billable_reason
        )
    if non_billable_reason is not None:
        raise NonBillableReasonMismatch("billable work cannot carry a non-billable reason")
    if covered_by_contract:
        return _covered(units)
    if group == SupportGroup.STANDARD:
        require_remote_allowed(group, bill_at_list_price)
        return BillingDecision(BillingOutcome.CHARGED, units, units_at_list_price=units)
    split = split_debit(units, balance)
    return BillingDecision(
        BillingOutcome.CHARGED,
        units,
        units_charged=split.from_prepaid,
        units_at_list_price=split.at_list_price,
    )


def _covered(units: int) -> BillingDecision:
    return BillingDecision(
        BillingOutcome.COVERED,
        units,
        units_covered=units,
        non_billable_reason=NonBillableReason.COVERED_BY_CONTRACT,
    )
