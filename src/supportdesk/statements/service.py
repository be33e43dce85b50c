"""Statements: what a customer used and owes in a period, streamed in three formats.

The totals come from the domain core over a handful of aggregated ledger rows, so they
cost the same for ten sessions or a hundred thousand; the line items are streamed from
the database while the answer is written, never held in memory all at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from supportdesk.config import BusinessRules
from supportdesk.customers.repository import CustomerRepository
from supportdesk.domain.billing import BillingDecision, BillingOutcome
from supportdesk.domain.ledger import EntryKind
from supportdesk.domain.pricing import list_price_amount
from supportdesk.domain.statements import StatementEntry, StatementTotals, statement_totals
from supportdesk.errors import InvalidInput, NotFound
from supportdesk.events.service import EventRecorder
from supportdesk.models import LedgerEntry, SessionLog
from supportdesk.statements.repository import StatementRepository

MAX_PERIOD = timedelta(days=3660)


@dataclass(frozen=True)
class StatementHeader:
    customer_id: str
    customer_name: str
    first: date
    last: date
    starts: datetime
    ends: datetime
    totals: StatementTotals


@dataclass(frozen=True)
class LineItem:
    """One line of a statement: a ledger entry of its own or a session."""

    kind: str  # purchase, debit, reversal, session
    id: str
    at: datetime
    description: str
    units: int
    units_prepaid: int = 0
    units_at_list_price: int = 0
    units_covered: int = 0
    amount: Decimal | None = None
    partner: str = ""
    supporter: str = ""
    duration_seconds: int | None = None
    notes: str = ""
    paid_by: str = ""


def _paid_by(log: SessionLog) -> str:
    if log.billing_outcome == BillingOutcome.COVERED:
        return "contract"
    if log.units_at_list_price and log.units_charged:
        return "prepaid_and_list_price"
    return "list_price" if log.units_at_list_price else "prepaid"


class StatementService:
    def __init__(
        self, session: AsyncSession, rules: BusinessRules, *, scope: str | None = None
    ) -> None:
        self.rules = rules
        self.customers = CustomerRepository(session, scope)
        self.statements = StatementRepository(session)
        self.events = EventRecorder(session)

    async def issue_statement(self, customer_id: str, first: date, last: date) -> StatementHeader:
        """The totals of the period ``first`` through ``last`` (local dates, inclusive)."""
        customer = await self.customers.get_by_id(customer_id)
        if customer is None:
            raise NotFound.of("customer", customer_id)
        if last < first:
            raise InvalidInput("`to` cannot be before `from`.", loc=["query", "to"])
        if last - first > MAX_PERIOD:
            raise InvalidInput("A statement covers at most ten years.", loc=["query", "to"])
        starts, ends = self.rules.calendar.period(first, last)
        opening = await self.statements.balance_before(customer_id, starts)
        entries = [
            StatementEntry(
                kind=EntryKind(kind),
                units=change,
                units_at_list_price=at_list_price,
                amount=amount,
                reverses=EntryKind(reversed_kind) if reversed_kind else None,
            )
            for kind, reversed_kind, change, at_list_price, amount in (
                await self.statements.entry_sums(customer_id, starts, ends)
            )
        ]
        covered = await self.statements.units_covered(customer_id, starts, ends)
        totals = statement_totals(
            opening,
            entries,
            [BillingDecision(BillingOutcome.COVERED, covered, units_covered=covered)],
            self.rules.price_list,
        )
        header = StatementHeader(customer.id, customer.name, first, last, starts, ends, totals)
        await self._announce(header)
        return header

    async def _announce(self, header: StatementHeader) -> None:
        """``statement.issued`` goes out the first time a period is issued."""
        from supportdesk.statements.render import summary

        if await self.statements.mark_issued(header.customer_id, header.first, header.last):
            self.events.record(
                "statement.issued",
                resource_type="statement",
                resource_id=f"{header.customer_id}:{header.first}:{header.last}",
                customer_id=header.customer_id,
                data=summary(header),
            )

    async def entry_items(self, header: StatementHeader) -> AsyncIterator[LineItem]:
        async for entry in self.statements.stream_entries(
            header.customer_id, header.starts, header.ends
        ):
            yield self._entry_item(entry)

    def _entry_item(self, entry: LedgerEntry) -> LineItem:
        if entry.kind == EntryKind.PURCHASE:
            description = f"purchase of {entry.units} units"
            amount = entry.amount
        elif entry.kind == EntryKind.DEBIT:
            description = f"debit: {entry.reference or 'manual'}"
            amount = list_price_amount(entry.units_billed_at_list_price, self.rules.price_list)
        else:
            description = f"reversal of {entry.reverses_id}"
            amount = entry.amount if entry.amount is not None else entry.list_price_amount
        return LineItem(
            kind=entry.kind,
            id=entry.id,
            at=entry.effective_at,
            description=description,
            units=entry.change,
            units_prepaid=entry.units_debited,
            units_at_list_price=entry.units_billed_at_list_price,
            amount=amount,
            notes=entry.reference or "",
        )

    async def session_items(self, header: StatementHeader) -> AsyncIterator[LineItem]:
        price_list = self.rules.price_list
        async for log in self.statements.stream_sessions(
            header.customer_id, header.starts, header.ends
        ):
            yield LineItem(
                kind="session",
                id=log.id,
                at=log.started_at,
                description="remote session",
                units=log.units,
                units_prepaid=log.units_charged,
                units_at_list_price=log.units_at_list_price,
                units_covered=log.units_covered,
                amount=list_price_amount(log.units_at_list_price, price_list),
                partner=log.partner,
                supporter=log.supporter,
                duration_seconds=log.duration_seconds,
                notes=log.notes,
                paid_by=_paid_by(log),
            )
