from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Select, String, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from supportdesk.kit.pagination import PageParams, fetch_page
from supportdesk.kit.repository import Repository, Writes, table_of
from supportdesk.models import Contract, Customer, JoinAttempts, RemoteSession, SessionLog

REMOTE_SESSIONS = table_of(RemoteSession)
SESSION_LOGS = table_of(SessionLog)
LOG_COLUMNS = tuple(column.key for column in SESSION_LOGS.columns)
_CUSTOMERS = table_of(Customer)
_CONTRACTS = table_of(Contract)

# The session to end, locked, with what billing it needs of its customer: one row per
# contract of that customer (or one with none), in one round trip, built once.
_ENDING = (
    select(
        REMOTE_SESSIONS.c.id,
        REMOTE_SESSIONS.c.status,
        REMOTE_SESSIONS.c.customer_id,
        REMOTE_SESSIONS.c.ticket_id,
        REMOTE_SESSIONS.c.contact_id,
        REMOTE_SESSIONS.c.computer,
        REMOTE_SESSIONS.c.bill_at_list_price,
        REMOTE_SESSIONS.c.supporter,
        REMOTE_SESSIONS.c.started_at,
        _CUSTOMERS.c.name,
        _CUSTOMERS.c.unit_balance,
        _CONTRACTS.c.starts_on,
        _CONTRACTS.c.ends_on,
    )
    .join(_CUSTOMERS, _CUSTOMERS.c.id == REMOTE_SESSIONS.c.customer_id)
    .outerjoin(_CONTRACTS, _CONTRACTS.c.customer_id == REMOTE_SESSIONS.c.customer_id)
    .where(
        REMOTE_SESSIONS.c.id == bindparam("session_id"),
        REMOTE_SESSIONS.c.customer_id
        == func.coalesce(bindparam("scope", type_=String), REMOTE_SESSIONS.c.customer_id),
    )
    .with_for_update(of=REMOTE_SESSIONS)
)

_END = (
    update(REMOTE_SESSIONS)
    .where(REMOTE_SESSIONS.c.id == bindparam("end_id"))
    .values(
        status="ended",
        ended_at=bindparam("end_ended_at", type_=REMOTE_SESSIONS.c.ended_at.type),
        ended_by=bindparam("end_ended_by"),
        session_log_id=bindparam("end_session_log_id"),
    )
)


@dataclass(frozen=True, slots=True)
class Ending:
    """A remote session about to end, with its customer's name, balance and contracts."""

    id: str
    status: str
    customer_id: str
    ticket_id: str | None
    contact_id: str | None
    computer: str | None
    bill_at_list_price: bool
    supporter: str
    started_at: datetime | None
    customer_name: str
    unit_balance: int
    contracts: list[tuple[date, date | None]]


@dataclass(frozen=True, slots=True)
class SessionLogRow:
    """A session log as written by Core: the table's columns, in their order."""

    id: str
    customer_id: str
    ticket_id: str | None
    contact_id: str | None
    computer: str | None
    partner: str
    started_at: datetime
    duration_seconds: int
    supporter: str
    notes: str
    billable: bool
    non_billable_reason: str | None
    bill_at_list_price: bool
    origin: str
    remote_session_id: str | None
    ended_by: str | None
    import_fingerprint: str | None
    billing_outcome: str
    units: int
    units_charged: int
    units_at_list_price: int
    units_covered: int
    ledger_entry_id: str | None
    created_by: str | None
    created_at: datetime

    def values(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in LOG_COLUMNS}


class SessionRepository(Repository):
    def __init__(self, session: AsyncSession, scope: str | None = None) -> None:
        super().__init__(session)
        self.scope = scope

    def _sessions(self) -> Select[RemoteSession]:
        stmt = select(RemoteSession)
        if self.scope is not None:
            stmt = stmt.where(RemoteSession.customer_id == self.scope)
        return stmt

    def _logs(self) -> Select[SessionLog]:
        stmt = select(SessionLog)
        if self.scope is not None:
            stmt = stmt.where(SessionLog.customer_id == self.scope)
        return stmt

    async def get_session(
        self, session_id: str, *, for_update: bool = False
    ) -> RemoteSession | None:
        stmt = self._sessions().where(RemoteSession.id == session_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.scalars(stmt)).one_or_none()

    async def get_for_end(self, session_id: str) -> Ending | None:
        """The session, locked until the transaction ends, and its customer's standing."""
        params = {"session_id": session_id, "scope": self.scope}
        rows = await self.fetch(_ENDING, params)
        if not rows:
            return None
        first = rows[0]
        return Ending(
            id=first[0],
            status=first[1],
            customer_id=first[2],
            ticket_id=first[3],
            contact_id=first[4],
            computer=first[5],
            bill_at_list_price=first[6],
            supporter=first[7],
            started_at=first[8],
            customer_name=first[9],
            unit_balance=int(first[10]),
            contracts=[(row[11], row[12]) for row in rows if row[11] is not None],
        )

    @staticmethod
    def end_session(
        writes: Writes, session_id: str, ended_at: datetime, ended_by: str, session_log_id: str
    ) -> None:
        """The session's end, written with its log: no access from now on."""
        writes.update(
            _END,
            {
                "end_id": session_id,
                "end_ended_at": ended_at,
                "end_ended_by": ended_by,
                "end_session_log_id": session_log_id,
            },
        )

    async def get_by_code_hash(self, code_hash: str) -> RemoteSession | None:
        stmt = self._sessions().where(RemoteSession.code_hash == code_hash).with_for_update()
        return (await self.session.scalars(stmt)).one_or_none()

    async def get_log(self, log_id: str) -> SessionLog | None:
        stmt = self._logs().where(SessionLog.id == log_id)
        return (await self.session.scalars(stmt)).one_or_none()

    async def import_fingerprint_exists(self, fingerprint: str) -> bool:
        stmt = select(SessionLog.id).where(SessionLog.import_fingerprint == fingerprint)
        return (await self.session.scalars(stmt)).first() is not None

    async def recent_logs_on_ticket(
        self, customer_id: str, ticket_id: str, since: datetime
    ) -> list[SessionLog]:
        """The ticket's logs started since ``since``, latest first (for merging sessions)."""
        stmt = (
            select(SessionLog)
            .where(
                SessionLog.customer_id == customer_id,
                SessionLog.ticket_id == ticket_id,
                SessionLog.started_at >= since,
            )
            .order_by(SessionLog.started_at.desc())
        )
        return list((await self.session.scalars(stmt)).all())

    async def list_logs(
        self,
        params: PageParams,
        *,
        customer_id: str | None,
        starts: datetime | None,
        ends: datetime | None,
    ) -> tuple[list[SessionLog], str | None]:
        stmt = self._logs()
        if customer_id is not None:
            stmt = stmt.where(SessionLog.customer_id == customer_id)
        if starts is not None:
            stmt = stmt.where(SessionLog.started_at >= starts)
        if ends is not None:
            stmt = stmt.where(SessionLog.started_at < ends)
        return await fetch_page(self.session, stmt, SessionLog.id, params)

    async def join_attempts(self, api_key_id: str) -> JoinAttempts | None:
        return await self.session.get(JoinAttempts, api_key_id, with_for_update=True)

    def add_join_attempts(self, attempts: JoinAttempts) -> None:
        self.session.add(attempts)
