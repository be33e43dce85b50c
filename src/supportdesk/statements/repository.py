from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from supportdesk.kit.clock import utcnow
from supportdesk.kit.repository import Repository
from supportdesk.models import IssuedStatement, LedgerEntry, SessionLog


class StatementRepository(Repository):
    """Aggregates and streams over one customer's ledger and session logs in a period."""

    async def mark_issued(self, customer_id: str, first: date, last: date) -> bool:
        """Note the statement as issued; False if it was before."""
        if await self.session.get(IssuedStatement, (customer_id, first, last)) is not None:
            return False
        try:
            async with self.session.begin_nested():
                self.session.add(
                    IssuedStatement(
                        customer_id=customer_id, first=first, last=last, issued_at=utcnow()
                    )
                )
                await self.session.flush()
        except IntegrityError:
            return False
        return True

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
            .execution_options(yield_per=500)
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
            .execution_options(yield_per=500)
        )
        async for log in await self.session.stream_scalars(stmt):
            yield log
