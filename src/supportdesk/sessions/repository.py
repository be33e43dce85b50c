from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from supportdesk.kit.pagination import PageParams, fetch_page
from supportdesk.kit.repository import Repository
from supportdesk.models import JoinAttempts, RemoteSession, SessionLog


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
