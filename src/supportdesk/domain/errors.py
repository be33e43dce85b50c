"""Domain errors: what a business rule refuses, with no knowledge of HTTP.

``supportdesk.errors`` maps each class to a status code in one place. Mistakes of the
calling code (a naive datetime, a negative duration) raise plain ``ValueError`` instead:
they are bugs, not requests a client can make.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .blockers import Blocker
    from .tickets import TicketStatus


class DomainError(Exception):
    """Base of every rule the domain core refuses."""


class ConflictError(DomainError):
    """The request clashes with the object's current state (HTTP: 409)."""


class RuleViolation(DomainError):
    """The request is well-formed but breaks a business rule (HTTP: 422)."""


class IllegalTransition(ConflictError):
    """A status move the ticket's status machine does not allow."""

    def __init__(
        self, current: TicketStatus, target: TicketStatus, allowed: Iterable[TicketStatus]
    ) -> None:
        self.current = current
        self.target = target
        self.allowed = tuple(sorted(allowed))
        names = ", ".join(self.allowed) or "none"
        super().__init__(f"cannot move a ticket from {current} to {target}; allowed: {names}")


class HeldByBlockers(ConflictError):
    """A manual move to ``open`` or ``in_progress`` while blockers hold the ticket."""

    def __init__(self, target: TicketStatus, blockers: Iterable[Blocker] = ()) -> None:
        self.target = target
        self.blockers = tuple(blockers)
        missing = ", ".join(self.blockers) or "blockers"
        super().__init__(f"cannot move the ticket to {target} while it is held by {missing}")


class InvalidContractPeriod(RuleViolation):
    """A contract cannot end before it starts."""


class ListPriceRequired(RuleViolation):
    """Remote work for a ``standard`` customer needs explicit billing at list price."""

    def __init__(self) -> None:
        super().__init__(
            "remote support is not part of free support: "
            "a standard customer's session must be billed at list price"
        )


class NonBillableReasonMismatch(RuleViolation):
    """Work not billed needs a reason; billed work must not carry one."""


class InvalidVersion(RuleViolation, ValueError):
    """A string that cannot be read as a version number."""

    def __init__(self, text: str) -> None:
        self.text = text
        super().__init__(f"not a version: {text!r}")


class AlreadyReversed(ConflictError):
    """A ledger entry may be reversed once."""


class NotReversible(ConflictError):
    """A reversal cannot itself be reversed."""


class InsufficientBalance(ConflictError):
    """The change would take the unit balance below zero."""


class DongleNotReturned(ConflictError):
    """A dongle exchange cannot be closed before the defective dongle is back."""


class ConceptMissing(RuleViolation):
    """A change request goes to the vendor only with its concept and its English version."""


class AppointmentsMissing(RuleViolation):
    """An installation outside installation hours needs at least two proposed dates."""


class NotApplicable(RuleViolation):
    """The request does not apply to a ticket of this category."""
