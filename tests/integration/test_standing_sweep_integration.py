"""Contracts that start or end with the date move tickets without anyone touching them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from supportdesk.config import BusinessRules
from supportdesk.contracts.schemas import ContractCreate
from supportdesk.contracts.service import ContractService
from supportdesk.customers.schemas import CustomerCreate
from supportdesk.customers.service import CustomerService
from supportdesk.db import connect_in
from supportdesk.domain.groups import SupportGroup
from supportdesk.models import Ticket
from supportdesk.tickets.schemas import TicketCreate
from supportdesk.tickets.service import TicketReader, TicketService

NOON = datetime(2026, 11, 24, 11, 0, tzinfo=UTC)  # a Tuesday in Berlin


def _at(monkeypatch: pytest.MonkeyPatch, moment: datetime) -> None:
    for module in ("tickets.service", "customers.service", "contracts.service"):
        monkeypatch.setattr(f"supportdesk.{module}.utcnow", lambda: moment)


class TestStandingSweep:
    async def test_contract_starting_tomorrow_lifts_the_ticket_then(
        self, session: AsyncSession, rules: BusinessRules, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        _at(monkeypatch, NOON)
        customer = (
            await CustomerService(session, rules).register_customer(CustomerCreate(name="Soon"))
        ).customer
        tomorrow = date(2026, 11, 25)
        await ContractService(session, rules).add_contract(
            ContractCreate(customer_id=customer.id, starts_on=tomorrow)
        )
        tickets = TicketService(session, rules)
        record, opened = await tickets.open_ticket(
            TicketCreate.model_validate(
                {
                    "customer_id": customer.id,
                    "category": "change_request",
                    "severity": "low",
                    "subject": "Export",
                    "description": "A new export",
                },
                strict=False,
            )
        )
        assert opened.support_group == SupportGroup.STANDARD
        stored = await session.get(Ticket, record.id)
        assert stored is not None
        assert stored.queue_group == 2

        _at(monkeypatch, NOON + timedelta(days=1))
        assert await TicketService(session, rules).refresh_turning_contracts() == 1
        await session.refresh(stored)
        assert stored.queue_group == 0
        _, view = await TicketReader(connect_in(session), rules, None).get_ticket(record.id)
        assert view.support_group == SupportGroup.CONTRACT
