"""Support groups, severities and the order in which the queue is worked."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import NamedTuple

from .calendar import require_aware
from .errors import InvalidContractPeriod


class SupportGroup(StrEnum):
    """A customer's standing, highest first."""

    CONTRACT = "contract"
    PREMIUM = "premium"
    STANDARD = "standard"

    @property
    def rank(self) -> int:
        """0 for the group worked first."""
        return _GROUP_RANK[self]


class Severity(StrEnum):
    """How urgent a ticket is, highest first."""

    CRITICAL = "critical"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"

    @property
    def rank(self) -> int:
        """0 for the severity worked first."""
        return _SEVERITY_RANK[self]


_GROUP_RANK = {group: rank for rank, group in enumerate(SupportGroup)}
_SEVERITY_RANK = {severity: rank for rank, severity in enumerate(Severity)}


@dataclass(frozen=True, slots=True)
class ContractPeriod:
    """When a service and maintenance contract is valid: both dates inclusive."""

    starts_on: date
    ends_on: date | None = None

    def __post_init__(self) -> None:
        if self.ends_on is not None and self.ends_on < self.starts_on:
            raise InvalidContractPeriod(
                f"a contract cannot end ({self.ends_on}) before it starts ({self.starts_on})"
            )

    def is_valid_on(self, day: date) -> bool:
        """Whether the contract covers the calendar date ``day``."""
        return self.starts_on <= day and (self.ends_on is None or day <= self.ends_on)


def support_group(contracts: Iterable[ContractPeriod], balance: int, today: date) -> SupportGroup:
    """The customer's group now; ``today`` is the date in the business calendar's zone."""
    return group_of(any(contract.is_valid_on(today) for contract in contracts), balance)


def group_of(contract_valid: bool, balance: int) -> SupportGroup:
    """The group of a customer with (or without) a contract valid today and ``balance``
    units: what ``support_group`` decides once the contracts are judged (a query can
    judge them where they are stored)."""
    if contract_valid:
        return SupportGroup.CONTRACT
    if balance > 0:
        return SupportGroup.PREMIUM
    return SupportGroup.STANDARD


class QueueKey(NamedTuple):
    """Sorts ascending into working order."""

    group_rank: int
    severity_rank: int
    received_at: datetime
    ticket_id: str


def queue_key(
    group: SupportGroup, severity: Severity, received_at: datetime, ticket_id: str
) -> QueueKey:
    """Group (contract first), severity (critical first), arrival (oldest first), then id."""
    return QueueKey(
        _GROUP_RANK[group],
        _SEVERITY_RANK[severity],
        require_aware(received_at, "received_at"),
        ticket_id,
    )
