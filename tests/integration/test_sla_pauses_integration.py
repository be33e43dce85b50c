"""The SLA clock stands while a ticket waits for the customer, and the answer shows it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from supportdesk.config import BusinessRules
from supportdesk.customers.schemas import CustomerCreate
from supportdesk.customers.service import CustomerService
from supportdesk.db import connect_in
from supportdesk.ledger.service import LedgerService
from supportdesk.models import Ticket
from supportdesk.tickets.schemas import TicketCreate, TicketUpdate
from supportdesk.tickets.service import TicketReader, TicketService

MONDAY_0900 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # 09:00 in Berlin


class TestPausedClock:
    async def test_a_held_ticket_opened_later_is_due_from_when_it_opened(
        self, session: AsyncSession, rules: BusinessRules, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr("supportdesk.tickets.service.utcnow", lambda: MONDAY_0900)
        customer = (
            await CustomerService(session, rules).register_customer(CustomerCreate(name="P"))
        ).customer
        service = TicketService(session, rules)
        held, _ = await service.open_ticket(
            TicketCreate.model_validate(
                {
                    "customer_id": customer.id,
                    "category": "bug_report",
                    "severity": "normal",
                    "subject": "s",
                    "description": "d",
                },
                strict=False,
            )
        )
        assert held.status == "awaiting_customer"
        noon = MONDAY_0900 + timedelta(hours=3)
        monkeypatch.setattr("supportdesk.tickets.service.utcnow", lambda: noon)
        record, opened = await service.update_ticket(
            held.id,
            TicketUpdate.model_validate(
                {"steps_to_reproduce": "1.", "environment": {"os": "W", "host_application": "A"}},
                strict=False,
            ),
        )
        # Still held by the missing screenshot: the clock stands, due keeps moving.
        assert record.status == "awaiting_customer"
        expected = rules.calendar.add(noon, timedelta(hours=17))  # 2 business days from now
        assert opened.first_response_due == expected

    async def test_the_pause_counts_once_the_ticket_opens(
        self, session: AsyncSession, rules: BusinessRules, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr("supportdesk.tickets.service.utcnow", lambda: MONDAY_0900)
        customer = (
            await CustomerService(session, rules).register_customer(CustomerCreate(name="Q"))
        ).customer
        service = TicketService(session, rules)
        held, _ = await service.open_ticket(
            TicketCreate.model_validate(
                {
                    "customer_id": customer.id,
                    "category": "how_to",
                    "severity": "normal",
                    "subject": "s",
                    "description": "d",
                },
                strict=False,
            )
        )
        assert held.status == "awaiting_customer"  # requires_premium
        noon = MONDAY_0900 + timedelta(hours=3)
        monkeypatch.setattr("supportdesk.tickets.service.utcnow", lambda: noon)
        # The customer clears requires_premium by buying units.
        monkeypatch.setattr("supportdesk.ledger.service.utcnow", lambda: noon)
        await LedgerService(session, rules).buy_units(customer.id, 5)
        record, view = await TicketReader(connect_in(session), rules, None).get_ticket(held.id)
        assert record.status == "open"
        expected = rules.calendar.add(noon, timedelta(hours=4))  # premium: 4 business hours
        assert view.first_response_due == expected
        stored = await session.get(Ticket, held.id)
        assert stored is not None
        assert stored.first_response_due == expected
