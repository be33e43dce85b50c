"""Which outbox events become an e-mail to the customer, and to whom (DOMAIN.md,
"Notifications"). Pure: the mailer asks, the services look the people up."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any


class NotificationKind(StrEnum):
    TICKET_RECEIVED = "ticket_received"
    SUPPORTER_QUESTION = "supporter_question"
    TICKET_RESOLVED = "ticket_resolved"
    LOW_BALANCE = "low_balance"
    STATEMENT_ISSUED = "statement_issued"


class Language(StrEnum):
    DE = "de"
    EN = "en"


class Audience(StrEnum):
    """Who receives a kind: the ticket's contact, or the customer's billing contact."""

    TICKET_CONTACT = "ticket_contact"
    BILLING_CONTACT = "billing_contact"


AUDIENCE: dict[NotificationKind, Audience] = {
    NotificationKind.TICKET_RECEIVED: Audience.TICKET_CONTACT,
    NotificationKind.SUPPORTER_QUESTION: Audience.TICKET_CONTACT,
    NotificationKind.TICKET_RESOLVED: Audience.TICKET_CONTACT,
    NotificationKind.LOW_BALANCE: Audience.BILLING_CONTACT,
    NotificationKind.STATEMENT_ISSUED: Audience.BILLING_CONTACT,
}

STAFF_ROLES = frozenset({"admin", "agent"})


def kind_for_event(event_type: str, data: Mapping[str, Any]) -> NotificationKind | None:
    """The message an event gives the customer, if any.

    A comment tells the customer only when a supporter wrote it for them (not internal);
    a status change only when the ticket became ``resolved``.
    """
    if event_type == "ticket.created":
        return NotificationKind.TICKET_RECEIVED
    if event_type == "ticket.commented":
        # The event's data is the comment.
        if data.get("author_role") in STAFF_ROLES and not data.get("internal", False):
            return NotificationKind.SUPPORTER_QUESTION
        return None
    if event_type == "ticket.status_changed":
        if data.get("status") == "resolved" and data.get("previous_status") != "resolved":
            return NotificationKind.TICKET_RESOLVED
        return None
    if event_type == "ledger.low_balance":
        return NotificationKind.LOW_BALANCE
    if event_type == "statement.issued":
        return NotificationKind.STATEMENT_ISSUED
    return None
