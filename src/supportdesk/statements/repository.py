from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, and_, exists, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from supportdesk.kit.pagination import PageParams, fetch_page
from supportdesk.kit.repository import Repository
from supportdesk.models import (
    Customer,
    LedgerEntry,
    SessionLog,
    Statement,
    StatementCounter,
    StatementLine,
)

# Rows fetched at a time while a statement's lines are streamed.
STREAM_BATCH = 500


class StatementRepository(Repository):
    """Aggregates and streams over one customer's ledger and session logs in a period,
    and the issued statements.

    ``scope`` is the customer a customer-bound key is tied to: issued statements are
    read from a statement restricted to it, so another customer's behaves as unknown.
    """

    def __init__(self, session: AsyncSession, scope: str | None = None) -> None:
        super().__init__(session)
        self.scope = scope

    # Issued statements ----------------------------------------------------------------

    def _issued(self) -> Select[Statement]:
        stmt = select(Statement)
        if self.scope is not None:
            stmt = stmt.where(Statement.customer_id == self.scope)
        return stmt

    async def get_by_id(self, statement_id: str) -> Statement | None:
        stmt = self._issued().where(Statement.id == statement_id)
        return (await self.session.scalars(stmt)).one_or_none()

    async def get_by_period(self, customer_id: str, first: date, last: date) -> Statement | None:
        stmt = self._issued().where(
            Statement.customer_id == customer_id, Statement.first == first, Statement.last == last
        )
        return (await self.session.scalars(stmt)).one_or_none()

    async def list_for_customer(
        self, customer_id: str, params: PageParams
    ) -> tuple[list[Statement], str | None]:
        """Newest first."""
        stmt = self._issued().where(Statement.customer_id == customer_id)
        return await fetch_page(self.session, stmt, Statement.id, params, descending=True)

    async def _next_number(self, year: int) -> int:
        """The next statement number of ``year``: one atomic ``UPDATE … RETURNING`` on the
        year's counter row (made first if missing), whose row lock orders concurrent
        issuers; it is undone with the transaction or savepoint it ran in."""
        dialect_insert = postgres_insert if self.is_postgres else sqlite_insert
        await self.session.execute(
            dialect_insert(StatementCounter)
            .values(year=year, last_number=0)
            .on_conflict_do_nothing(index_elements=[StatementCounter.year])
        )
        stmt = (
            update(StatementCounter)
            .where(StatementCounter.year == year)
            .values(last_number=StatementCounter.last_number + 1)
            .returning(StatementCounter.last_number)
            .execution_options(synchronize_session=False)
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def add_issued(self, statement: Statement, year: int) -> bool:
        """Number and insert ``statement``; False, with nothing written (nor a number
        used up), when its customer and period were issued already."""
        try:
            async with self.session.begin_nested():
                statement.number = f"ST-{year}-{await self._next_number(year):06d}"
                self.session.add(statement)
                await self.session.flush()
        except IntegrityError:
            return False
        return True

    async def add_lines(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            await self.session.execute(insert(StatementLine), list(rows))

    async def stream_lines(
        self, statement_id: str, *, sessions: bool
    ) -> AsyncIterator[StatementLine]:
        """The frozen lines of an issued statement, in order: the ledger entries, or the
        sessions."""
        kind = StatementLine.kind == "session" if sessions else StatementLine.kind != "session"
        stmt = (
            select(StatementLine)
            .where(StatementLine.statement_id == statement_id, kind)
            .order_by(StatementLine.position)
            .execution_options(yield_per=STREAM_BATCH)
        )
        async for line in await self.session.stream_scalars(stmt):
            yield line

    async def customers_due(
        self, first: date, last: date, starts: datetime, ends: datetime
    ) -> list[str]:
        """Customers with billable activity in the period (a ledger entry, a billable or
        covered session) and no statement for it yet: index probes per customer."""
        entries = exists().where(
            LedgerEntry.customer_id == Customer.id,
            LedgerEntry.effective_at >= starts,
            LedgerEntry.effective_at < ends,
        )
        sessions = exists().where(
            SessionLog.customer_id == Customer.id,
            SessionLog.started_at >= starts,
            SessionLog.started_at < ends,
            SessionLog.billing_outcome != "not_billable",
        )
        issued = exists().where(
            and_(
                Statement.customer_id == Customer.id,
                Statement.first == first,
                Statement.last == last,
            )
        )
        stmt = select(Customer.id).where(~issued, or_(entries, sessions)).order_by(Customer.id)
        return list((await self.session.scalars(stmt)).all())

    # The ledger and session logs of a period --------------------------------------------

    async def balance_before(self, customer_id: str, instant: datetime) -> int:
        stmt = select(func.coalesce(func.sum(LedgerEntry.change), 0)).where(
            LedgerEntry.customer_id == customer_id, LedgerEntry.effective_at < instant
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def entry_sums(
        self, customer_id: str, starts: datetime, ends: datetime
    ) -> list[tuple[str, str | None, int, int, Decimal]]:
        """Per (kind, kind reversed): summed change, list-price units and amount."""
        target = aliased(LedgerEntry)
        stmt = (
            select(
                LedgerEntry.kind,
                target.kind,
                func.coalesce(func.sum(LedgerEntry.change), 0),
                func.coalesce(func.sum(LedgerEntry.units_billed_at_list_price), 0),
                func.coalesce(func.sum(LedgerEntry.amount), 0),
            )
            .outerjoin(target, target.id == LedgerEntry.reverses_id)
            .where(
                LedgerEntry.customer_id == customer_id,
                LedgerEntry.effective_at >= starts,
                LedgerEntry.effective_at < ends,
            )
            .group_by(LedgerEntry.kind, target.kind)
        )
        rows = (await self.session.execute(stmt)).all()
        return [(r[0], r[1], int(r[2]), int(r[3]), Decimal(r[4] or 0)) for r in rows]

    async def units_covered(self, customer_id: str, starts: datetime, ends: datetime) -> int:
        stmt = select(func.coalesce(func.sum(SessionLog.units_covered), 0)).where(
            SessionLog.customer_id == customer_id,
            SessionLog.started_at >= starts,
            SessionLog.started_at < ends,
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def stream_entries(
        self, customer_id: str, starts: datetime, ends: datetime
    ) -> AsyncIterator[LedgerEntry]:
        """Entries of the period that are not a session's own debit, oldest first."""
        stmt = (
            select(LedgerEntry)
            .where(
                LedgerEntry.customer_id == customer_id,
                LedgerEntry.effective_at >= starts,
                LedgerEntry.effective_at < ends,
                LedgerEntry.cause_type != "session",
            )
            .order_by(LedgerEntry.effective_at, LedgerEntry.id)
            .execution_options(yield_per=STREAM_BATCH)
        )
        async for entry in await self.session.stream_scalars(stmt):
            yield entry

    async def stream_sessions(
        self, customer_id: str, starts: datetime, ends: datetime
    ) -> AsyncIterator[SessionLog]:
        """Billable or covered sessions started in the period, oldest first."""
        stmt = (
            select(SessionLog)
            .where(
                SessionLog.customer_id == customer_id,
                SessionLog.started_at >= starts,
                SessionLog.started_at < ends,
                SessionLog.billing_outcome != "not_billable",
            )
            .order_by(SessionLog.started_at, SessionLog.id)
            .execution_options(yield_per=STREAM_BATCH)
        )
        async for log in await self.session.stream_scalars(stmt):
            yield log
