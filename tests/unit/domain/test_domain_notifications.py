from __future__ import annotations

import pytest

from supportdesk.domain.notifications import (
    AUDIENCE,
    Audience,
    NotificationKind,
    kind_for_event,
)


class TestKindForEvent:
    @pytest.mark.parametrize(
        ("event_type", "data", "kind"),
        [
            ("ticket.created", {}, NotificationKind.TICKET_RECEIVED),
            ("ticket.commented", {"author_role": "agent"}, NotificationKind.SUPPORTER_QUESTION),
            ("ticket.commented", {"author_role": "admin"}, NotificationKind.SUPPORTER_QUESTION),
            ("ticket.commented", {"author_role": "customer"}, None),
            ("ticket.commented", {"author_role": "agent", "internal": True}, None),
            (
                "ticket.status_changed",
                {"status": "resolved", "previous_status": "in_progress"},
                NotificationKind.TICKET_RESOLVED,
            ),
            ("ticket.status_changed", {"status": "closed", "previous_status": "resolved"}, None),
            ("ticket.status_changed", {"status": "in_progress", "previous_status": "open"}, None),
            ("ledger.low_balance", {"balance": 2}, NotificationKind.LOW_BALANCE),
            ("statement.issued", {}, NotificationKind.STATEMENT_ISSUED),
            ("ledger.entry_created", {}, None),
            ("ticket.sla_breached", {}, None),
            ("contract.changed", {}, None),
        ],
    )
    def test_which_events_tell_the_customer(
        self, event_type: str, data: dict[str, object], kind: NotificationKind | None
    ) -> None:
        assert kind_for_event(event_type, data) is kind

    def test_money_matters_go_to_the_billing_contact(self) -> None:
        assert {k for k, a in AUDIENCE.items() if a is Audience.BILLING_CONTACT} == {
            NotificationKind.LOW_BALANCE,
            NotificationKind.STATEMENT_ISSUED,
        }
        assert set(AUDIENCE) == set(NotificationKind)
