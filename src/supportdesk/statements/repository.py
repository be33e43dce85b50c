from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import Row, Select, and_, bindparam, exists, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from supportdesk.kit.pagination import PageParams, fetch_page
from supportdesk.kit.repository import Repository, table_of
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

    # The ledger and session logs of a period: Core statements built once -------------

    async def period_head(
        self, customer_id: str, starts: datetime, ends: datetime, *, lock: bool = False
    ) -> PeriodHead | None:
        """The customer's name, its balance before the period and the units its contract
        covered in it, in one statement; None when the customer does not exist or the
        caller may not see it. ``lock`` holds the customer's row for the transaction."""
        stmt = _HEAD[(self.scope is not None, lock)]
        params: dict[str, Any] = {"customer_id": customer_id, "starts": starts, "ends": ends}
        if self.scope is not None:
            params["scope"] = self.scope
        connection = await self.session.connection()
        row = (await connection.execute(stmt, params)).first()
        if row is None:
            return None
        return PeriodHead(row[0], row[1], int(row[2]), int(row[3]))

    async def entry_sums(
        self, customer_id: str, starts: datetime, ends: datetime
    ) -> list[tuple[str, str | None, int, int, Decimal]]:
        """Per (kind, kind reversed): summed change, list-price units and amount."""
        connection = await self.session.connection()
        params = {"customer_id": customer_id, "starts": starts, "ends": ends}
        rows = (await connection.execute(_ENTRY_SUMS, params)).all()
        return [(r[0], r[1], int(r[2]), int(r[3]), Decimal(r[4] or 0)) for r in rows]

    async def _stream(self, stmt: Select[Any], params: dict[str, Any]) -> AsyncIterator[Row[Any]]:
        connection = await self.session.connection()
        result = await connection.stream(stmt, params)
        async for row in result:
            yield row

    def stream_entries(
        self, customer_id: str, starts: datetime, ends: datetime
    ) -> AsyncIterator[Row[Any]]:
        """Entries of the period that are not a session's own debit, oldest first."""
        return self._stream(
            _ENTRY_LINES, {"customer_id": customer_id, "starts": starts, "ends": ends}
        )

    def stream_sessions(
        self, customer_id: str, starts: datetime, ends: datetime
    ) -> AsyncIterator[Row[Any]]:
        """Billable or covered sessions started in the period, oldest first."""
        return self._stream(
            _SESSION_LINES, {"customer_id": customer_id, "starts": starts, "ends": ends}
        )


class PeriodHead(NamedTuple):
    customer_id: str
    customer_name: str
    opening_balance: int
    units_covered: int


_CUSTOMERS = table_of(Customer)
_ENTRIES = table_of(LedgerEntry)
_LOGS = table_of(SessionLog)
_CUSTOMER_ID = bindparam("customer_id", type_=_CUSTOMERS.c.id.type)
_STARTS = bindparam("starts", type_=_ENTRIES.c.effective_at.type)
_ENDS = bindparam("ends", type_=_ENTRIES.c.effective_at.type)


def _head(scoped: bool, lock: bool) -> Select[Any]:
    e, logs, c = _ENTRIES, _LOGS, _CUSTOMERS
    opening = (
        select(func.coalesce(func.sum(e.c.change), 0))
        .where(e.c.customer_id == c.c.id, e.c.effective_at < _STARTS)
        .scalar_subquery()
    )
    covered = (
        select(func.coalesce(func.sum(logs.c.units_covered), 0))
        .where(
            logs.c.customer_id == c.c.id, logs.c.started_at >= _STARTS, logs.c.started_at < _ENDS
        )
        .scalar_subquery()
    )
    stmt = select(c.c.id, c.c.name, opening, covered).where(c.c.id == _CUSTOMER_ID)
    if scoped:
        stmt = stmt.where(c.c.id == bindparam("scope"))
    if lock:
        stmt = stmt.with_for_update(of=c)
    return stmt


_HEAD = {(scoped, lock): _head(scoped, lock) for scoped in (False, True) for lock in (False, True)}
_PERIOD = (
    _ENTRIES.c.customer_id == _CUSTOMER_ID,
    _ENTRIES.c.effective_at >= _STARTS,
    _ENTRIES.c.effective_at < _ENDS,
)
_TARGET = _ENTRIES.alias("target")
_ENTRY_SUMS = (
    select(
        _ENTRIES.c.kind,
        _TARGET.c.kind,
        func.coalesce(func.sum(_ENTRIES.c.change), 0),
        func.coalesce(func.sum(_ENTRIES.c.units_billed_at_list_price), 0),
        func.coalesce(func.sum(_ENTRIES.c.amount), 0),
    )
    .select_from(_ENTRIES.outerjoin(_TARGET, _TARGET.c.id == _ENTRIES.c.reverses_id))
    .where(*_PERIOD)
    .group_by(_ENTRIES.c.kind, _TARGET.c.kind)
)
# The lines, streamed: only the columns a line shows.
_ENTRY_LINES = (
    select(
        *(
            _ENTRIES.c[name]
            for name in (
                "id",
                "kind",
                "units",
                "change",
                "units_debited",
                "units_billed_at_list_price",
                "amount",
                "list_price_amount",
                "reverses_id",
                "reference",
                "effective_at",
            )
        )
    )
    .where(*_PERIOD, _ENTRIES.c.cause_type != "session")
    .order_by(_ENTRIES.c.effective_at, _ENTRIES.c.id)
    .execution_options(yield_per=STREAM_BATCH)
)
_SESSION_LINES = (
    select(
        *(
            _LOGS.c[name]
            for name in (
                "id",
                "started_at",
                "units",
                "units_charged",
                "units_at_list_price",
                "units_covered",
                "partner",
                "supporter",
                "duration_seconds",
                "notes",
                "billing_outcome",
            )
        )
    )
    .where(
        _LOGS.c.customer_id == _CUSTOMER_ID,
        _LOGS.c.started_at >= _STARTS,
        _LOGS.c.started_at < _ENDS,
        _LOGS.c.billing_outcome != "not_billable",
    )
    .order_by(_LOGS.c.started_at, _LOGS.c.id)
    .execution_options(yield_per=STREAM_BATCH)
)
