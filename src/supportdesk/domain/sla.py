"""Service-level targets: when the first response is due, and how the ticket stands."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from itertools import product
from types import MappingProxyType

from .calendar import BusinessCalendar, Interval, require_aware
from .groups import Severity, SupportGroup

_HOUR_US = 3_600_000_000
_MICROSECOND = timedelta(microseconds=1)
DEFAULT_AT_RISK_RATIO = Fraction(3, 4)


class TargetUnit(StrEnum):
    BUSINESS_HOURS = "business_hours"
    BUSINESS_DAYS = "business_days"


class SlaState(StrEnum):
    ON_TRACK = "on_track"
    AT_RISK = "at_risk"
    BREACHED = "breached"
    PAUSED = "paused"


@dataclass(frozen=True, slots=True)
class SlaTarget:
    """A target in business hours, or in business days of the calendar it is read in."""

    amount: Decimal
    unit: TargetUnit
    _ratio: tuple[int, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        amount = Decimal(self.amount)
        if not amount.is_finite() or amount < 0:
            raise ValueError(f"an SLA target must be a finite amount >= 0: {self.amount}")
        object.__setattr__(self, "amount", amount)
        # Integers, so that due times for a whole queue need no Decimal arithmetic.
        object.__setattr__(self, "_ratio", amount.as_integer_ratio())

    @classmethod
    def hours(cls, amount: int | str | Decimal) -> SlaTarget:
        return cls(Decimal(amount), TargetUnit.BUSINESS_HOURS)

    @classmethod
    def days(cls, amount: int | str | Decimal) -> SlaTarget:
        return cls(Decimal(amount), TargetUnit.BUSINESS_DAYS)

    def duration(self, calendar: BusinessCalendar) -> timedelta:
        """The business time the target allows (a day is ``business_day_length``)."""
        if self.unit == TargetUnit.BUSINESS_HOURS:
            unit_us = _HOUR_US
        else:
            unit_us = calendar.business_day_length // _MICROSECOND
        numerator, denominator = self._ratio
        # Half-up rounding to the microsecond, in integers.
        micro = (2 * unit_us * numerator + denominator) // (2 * denominator)
        return timedelta(microseconds=micro)


@dataclass(frozen=True)
class SlaTargets:
    """A first-response target for every support group and severity."""

    targets: tuple[tuple[SupportGroup, Severity, SlaTarget], ...]
    _index: Mapping[tuple[SupportGroup, Severity], SlaTarget] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        index = {(group, severity): target for group, severity, target in self.targets}
        if len(index) != len(self.targets):
            raise ValueError("each support group and severity needs exactly one target")
        missing = set(product(SupportGroup, Severity)) - index.keys()
        if missing:
            raise ValueError(f"SLA targets missing for {sorted(missing)}")
        object.__setattr__(self, "_index", MappingProxyType(index))

    @classmethod
    def by_group(
        cls,
        groups: Mapping[SupportGroup, SlaTarget],
        overrides: Mapping[tuple[SupportGroup, Severity], SlaTarget] | None = None,
    ) -> SlaTargets:
        """One target per group, with exceptions for single severities."""
        overrides = overrides or {}
        return cls(
            tuple(
                (group, severity, overrides.get((group, severity), groups[group]))
                for group, severity in product(SupportGroup, Severity)
            )
        )

    def target(self, group: SupportGroup, severity: Severity) -> SlaTarget:
        return self._index[group, severity]

    def __hash__(self) -> int:
        return hash(self.targets)


def default_sla_targets() -> SlaTargets:
    """Contract and premium: 4 business hours (critical: 1); standard: 2 business days."""
    prompt, critical = SlaTarget.hours(4), SlaTarget.hours(1)
    return SlaTargets.by_group(
        {
            SupportGroup.CONTRACT: prompt,
            SupportGroup.PREMIUM: prompt,
            SupportGroup.STANDARD: SlaTarget.days(2),
        },
        {
            (SupportGroup.CONTRACT, Severity.CRITICAL): critical,
            (SupportGroup.PREMIUM, Severity.CRITICAL): critical,
        },
    )


def first_response_due(
    received_at: datetime,
    group: SupportGroup,
    severity: Severity,
    calendar: BusinessCalendar,
    targets: SlaTargets,
    pauses: Iterable[Interval] = (),
) -> datetime:
    """When the first response is due; ``pauses`` (clock stopped) push it out.

    A pause still running should be passed as ending at ``now``: the due time then moves
    on as long as the ticket waits.
    """
    allowed = targets.target(group, severity).duration(calendar)
    return calendar.add(received_at, allowed, pauses)


def sla_state(
    now: datetime,
    received_at: datetime,
    due: datetime,
    paused_now: bool,
    calendar: BusinessCalendar,
    pauses: Iterable[Interval] = (),
    at_risk_ratio: Fraction | Decimal | float = DEFAULT_AT_RISK_RATIO,
) -> SlaState:
    """How the ticket stands against ``due`` at ``now``.

    ``breached`` once ``now`` is past due, even while paused: waiting on the customer
    does not undo a breach that happened before. Otherwise ``paused`` while the clock
    stands, ``at_risk`` once ``at_risk_ratio`` of the business time from arrival to due
    is used, else ``on_track``.
    """
    now_utc = require_aware(now, "now")
    if now_utc > require_aware(due, "due"):
        return SlaState.BREACHED
    if paused_now:
        return SlaState.PAUSED
    ratio = _ratio(at_risk_ratio)
    spans = tuple(pauses)
    allowed_us = calendar.between(received_at, due, spans) // _MICROSECOND
    used_us = calendar.between(received_at, now_utc, spans) // _MICROSECOND
    if used_us * ratio.denominator >= allowed_us * ratio.numerator:
        return SlaState.AT_RISK
    return SlaState.ON_TRACK


def at_risk_from(
    received_at: datetime,
    due: datetime,
    calendar: BusinessCalendar,
    pauses: Iterable[Interval] = (),
    at_risk_ratio: Fraction | Decimal | float = DEFAULT_AT_RISK_RATIO,
) -> datetime:
    """The instant from which ``sla_state`` says ``at_risk`` (to schedule the webhook)."""
    ratio = _ratio(at_risk_ratio)
    spans = tuple(pauses)
    allowed_us = calendar.between(received_at, due, spans) // _MICROSECOND
    # Round up: the state turns at_risk only once the whole share has been used.
    share_us = -(-allowed_us * ratio.numerator // ratio.denominator)
    return calendar.add(received_at, timedelta(microseconds=share_us), spans)


def _ratio(value: Fraction | Decimal | float) -> Fraction:
    ratio = Fraction(value)
    if not 0 < ratio <= 1:
        raise ValueError(f"the at-risk ratio must lie in (0, 1]: {value}")
    return ratio
