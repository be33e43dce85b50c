"""Statements: what a customer used and owes in a period, streamed in three formats.

Reading a period is a preview and changes nothing. Issuing is explicit (the POST, or the
monthly job) and freezes the statement: header, totals and every line are copied into
``statements`` and ``statement_lines``, so later corrections of the ledger and the
session logs never change what the customer was sent.

The totals come from the domain core over a handful of aggregated ledger rows, so they
cost the same for ten sessions or a hundred thousand; the line items are streamed from
the database while the answer is written, never held in memory all at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from supportdesk.config import BusinessRules
from supportdesk.customers.repository import CustomerRepository
from supportdesk.domain.billing import BillingDecision, BillingOutcome
from supportdesk.domain.ledger import EntryKind
from supportdesk.domain.pricing import list_price_amount
from supportdesk.domain.statements import StatementEntry, StatementTotals, statement_totals
from supportdesk.errors import Conflict, InvalidInput, NotFound
from supportdesk.events.service import EventRecorder
from supportdesk.kit.clock import utcnow
from supportdesk.kit.ids import new_id
from supportdesk.kit.pagination import PageParams
from supportdesk.models import Statement, StatementLine
from supportdesk.statements.repository import StatementRepository
from supportdesk.statements.schemas import statement_issued_read, statement_location

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
    # Set on an issued statement.
    id: str | None = None
    number: str | None = None
    issued_at: datetime | None = None


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


def issued_header(statement: Statement) -> StatementHeader:
    """The header of an issued statement, as it was issued."""
    totals = StatementTotals(
        opening_balance=statement.opening_balance,
        closing_balance=statement.closing_balance,
        units_purchased=statement.units_purchased,
        amount_purchased=statement.amount_purchased,
        units_used=statement.units_used,
        units_at_list_price=statement.units_at_list_price,
        units_covered=statement.units_covered,
        amount_due=statement.amount_due,
        currency=statement.currency,
    )
    return StatementHeader(
        statement.customer_id,
        statement.customer_name,
        statement.first,
        statement.last,
        statement.starts_at,
        statement.ends_at,
        totals,
        id=statement.id,
        number=statement.number,
        issued_at=statement.issued_at,
    )


def _line_row(statement_id: str, position: int, item: LineItem) -> dict[str, Any]:
    return {
        "statement_id": statement_id,
        "position": position,
        "kind": item.kind,
        "source_id": item.id,
        "at": item.at,
        "description": item.description,
        "units": item.units,
        "units_prepaid": item.units_prepaid,
        "units_at_list_price": item.units_at_list_price,
        "units_covered": item.units_covered,
        "amount": item.amount,
        "partner": item.partner,
        "supporter": item.supporter,
        "duration_seconds": item.duration_seconds,
        "notes": item.notes,
        "paid_by": item.paid_by,
    }


def _line_item(line: StatementLine) -> LineItem:
    return LineItem(
        kind=line.kind,
        id=line.source_id,
        at=line.at,
        description=line.description,
        units=line.units,
        units_prepaid=line.units_prepaid,
        units_at_list_price=line.units_at_list_price,
        units_covered=line.units_covered,
        amount=line.amount,
        partner=line.partner,
        supporter=line.supporter,
        duration_seconds=line.duration_seconds,
        notes=line.notes,
        paid_by=line.paid_by,
    )


def _paid_by(log: Row[Any]) -> str:
    if log.billing_outcome == BillingOutcome.COVERED:
        return "contract"
    if log.units_at_list_price and log.units_charged:
        return "prepaid_and_list_price"
    return "list_price" if log.units_at_list_price else "prepaid"


class StatementAlreadyIssued(Conflict):
    """The customer's statement for the period was issued before: here is where it is."""

    def __init__(self, statement_id: str) -> None:
        self.statement_id = statement_id
        self.location = statement_location(statement_id)
        super().__init__(
            f"The statement for this period was issued already: {statement_id}.",
            headers={"Location": self.location},
        )

    def extra(self) -> dict[str, Any]:
        return {"statement_id": self.statement_id, "location": self.location}


LINE_BATCH = 1000


class StatementService:
    def __init__(
        self,
        session: AsyncSession,
        rules: BusinessRules,
        *,
        scope: str | None = None,
        actor: str | None = None,
    ) -> None:
        self.rules = rules
        self.actor = actor
        self.customers = CustomerRepository(session, scope)
        self.statements = StatementRepository(session, scope)
        self.events = EventRecorder(session)

    async def preview_statement(
        self,
        customer_id: str,
        first: date,
        last: date,
        *,
        source: str = "query",
        lock: bool = False,
    ) -> StatementHeader:
        """The totals of the period ``first`` through ``last`` (local dates, inclusive),
        as they are now. Reading it changes nothing. ``lock`` holds the customer's row
        until the transaction ends: every ledger change takes that row first, so the
        ledger stands still while the statement is read."""
        if last < first or last - first > MAX_PERIOD:
            if await self.customers.get_by_id(customer_id) is None:
                raise NotFound.of("customer", customer_id)
            if last < first:
                raise InvalidInput("`to` cannot be before `from`.", loc=[source, "to"])
            raise InvalidInput("A statement covers at most ten years.", loc=[source, "to"])
        starts, ends = self.rules.calendar.period(first, last)
        head = await self.statements.period_head(customer_id, starts, ends, lock=lock)
        if head is None:
            raise NotFound.of("customer", customer_id)
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
        covered = head.units_covered
        totals = statement_totals(
            head.opening_balance,
            entries,
            [BillingDecision(BillingOutcome.COVERED, covered, units_covered=covered)],
            self.rules.price_list,
        )
        return StatementHeader(
            head.customer_id, head.customer_name, first, last, starts, ends, totals
        )

    async def issue_statement(self, customer_id: str, first: date, last: date) -> Statement:
        """Issue the customer's statement for the period: its totals and every line are
        frozen as they are now, it gets the next number, and ``statement.issued`` goes
        out (webhooks, and the PDF to the billing contact). A period is issued once:
        again → ``StatementAlreadyIssued``, however many issue it at the same moment."""
        # Locked: the totals and the lines frozen below read the same ledger.
        header = await self.preview_statement(customer_id, first, last, source="body", lock=True)
        existing = await self.statements.get_by_period(customer_id, first, last)
        if existing is not None:
            raise StatementAlreadyIssued(existing.id)
        t = header.totals
        issued_at = utcnow()
        statement = Statement(
            id=new_id("stm"),
            customer_id=header.customer_id,
            customer_name=header.customer_name,
            first=first,
            last=last,
            starts_at=header.starts,
            ends_at=header.ends,
            issued_at=issued_at,
            issued_by=self.actor,
            currency=t.currency,
            opening_balance=t.opening_balance,
            closing_balance=t.closing_balance,
            units_purchased=t.units_purchased,
            amount_purchased=t.amount_purchased,
            units_used=t.units_used,
            units_at_list_price=t.units_at_list_price,
            units_covered=t.units_covered,
            amount_due=t.amount_due,
        )
        year = self.rules.calendar.local_date(issued_at).year
        if not await self.statements.add_issued(statement, year):
            # Issued meanwhile by another request or worker.
            existing = await self.statements.get_by_period(customer_id, first, last)
            if existing is None:
                raise Conflict("The statement for this period is being issued right now.")
            raise StatementAlreadyIssued(existing.id)
        await self._freeze_lines(statement.id, header)
        self.events.record(
            "statement.issued",
            resource_type="statement",
            resource_id=statement.id,
            customer_id=statement.customer_id,
            data=statement_issued_read(statement).model_dump(mode="json", by_alias=True),
        )
        return statement

    async def _freeze_lines(self, statement_id: str, header: StatementHeader) -> None:
        """Copy the period's lines into the statement, in batches: a statement of many
        sessions is never held in memory whole."""
        batch: list[dict[str, Any]] = []
        position = 0
        for items in (self.entry_items(header), self.session_items(header)):
            async for item in items:
                position += 1
                batch.append(_line_row(statement_id, position, item))
                if len(batch) >= LINE_BATCH:
                    await self.statements.add_lines(batch)
                    batch = []
        await self.statements.add_lines(batch)

    async def issue_if_due(self, customer_id: str, first: date, last: date) -> Statement | None:
        """The monthly job's issue: None when the period was issued already."""
        try:
            return await self.issue_statement(customer_id, first, last)
        except StatementAlreadyIssued:
            return None

    async def customers_due(self, first: date, last: date) -> list[str]:
        """Customers with billable activity in the period and no statement for it yet."""
        starts, ends = self.rules.calendar.period(first, last)
        return await self.statements.customers_due(first, last, starts, ends)

    async def get_issued(self, statement_id: str) -> Statement:
        statement = await self.statements.get_by_id(statement_id)
        if statement is None:
            raise NotFound.of("statement", statement_id)
        return statement

    async def list_issued(
        self, customer_id: str, params: PageParams
    ) -> tuple[list[Statement], str | None]:
        if await self.customers.get_by_id(customer_id) is None:
            raise NotFound.of("customer", customer_id)
        return await self.statements.list_for_customer(customer_id, params)

    def line_items(
        self, header: StatementHeader
    ) -> tuple[AsyncIterator[LineItem], AsyncIterator[LineItem]]:
        """The ledger-entry lines and the session lines: an issued statement's frozen
        ones, or a preview's as the ledger and logs read now."""
        if header.id is not None:
            return self.issued_entry_items(header.id), self.issued_session_items(header.id)
        return self.entry_items(header), self.session_items(header)

    async def issued_entry_items(self, statement_id: str) -> AsyncIterator[LineItem]:
        async for line in self.statements.stream_lines(statement_id, sessions=False):
            yield _line_item(line)

    async def issued_session_items(self, statement_id: str) -> AsyncIterator[LineItem]:
        async for line in self.statements.stream_lines(statement_id, sessions=True):
            yield _line_item(line)

    async def entry_items(self, header: StatementHeader) -> AsyncIterator[LineItem]:
        async for entry in self.statements.stream_entries(
            header.customer_id, header.starts, header.ends
        ):
            yield self._entry_item(entry)

    def _entry_item(self, entry: Row[Any]) -> LineItem:
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
