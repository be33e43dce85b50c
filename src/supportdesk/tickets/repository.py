from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    exists,
    func,
    literal_column,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from supportdesk.kit.pagination import PageParams, fetch_page
from supportdesk.kit.repository import Repository
from supportdesk.models import (
    Attachment,
    Comment,
    Contract,
    Escalation,
    Product,
    Ticket,
    TicketPause,
)

QueueKey = tuple[int, int, datetime, str]
_SEARCHED = (
    Ticket.subject,
    Ticket.description,
    Ticket.steps_to_reproduce,
    Ticket.env_os,
    Ticket.env_host_application,
    Ticket.env_host_version,
    Ticket.env_database_server,
)


def _ticket_text() -> ColumnElement[str]:
    """The ticket's searchable text; the same expression as the index ix_tickets_search."""
    # Literals, not bound parameters: the planner matches the index by its expression.
    empty: ColumnElement[str] = literal_column("''")
    space: ColumnElement[str] = literal_column("' '")
    parts: list[ColumnElement[str]] = [func.coalesce(column, empty) for column in _SEARCHED]
    text_expr = parts[0]
    for part in parts[1:]:
        text_expr = text_expr.concat(space).concat(part)
    return text_expr


def _escape_like(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class TicketRepository(Repository):
    def __init__(self, session: AsyncSession, scope: str | None = None) -> None:
        super().__init__(session)
        self.scope = scope

    def _base(self) -> Select[Ticket]:
        stmt = select(Ticket)
        if self.scope is not None:
            stmt = stmt.where(Ticket.customer_id == self.scope)
        return stmt

    async def get_by_id(self, ticket_id: str, *, for_update: bool = False) -> Ticket | None:
        stmt = self._base().where(Ticket.id == ticket_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.scalars(stmt)).one_or_none()

    async def list_page(
        self,
        params: PageParams,
        *,
        q: str | None = None,
        include_internal: bool = True,
        **filters: Any,
    ) -> tuple[list[Ticket], str | None]:
        stmt = self._base()
        for name, value in filters.items():
            if value is not None:
                stmt = stmt.where(getattr(Ticket, name) == value)
        if q:
            stmt = stmt.where(self._matches(q, include_internal=include_internal))
        return await fetch_page(self.session, stmt, Ticket.id, params)

    def _matches(self, q: str, *, include_internal: bool) -> ColumnElement[bool]:
        """Words in subject, description, steps, environment or comments.

        PostgreSQL: full-text search over the same expressions the GIN indexes
        ix_tickets_search and ix_ticket_comments_search hold. SQLite: every word
        somewhere, case-insensitively.
        """
        comments = select(Comment.id).where(Comment.ticket_id == Ticket.id)
        if not include_internal:
            comments = comments.where(Comment.internal.is_(False))
        if self.is_postgres:
            query = func.plainto_tsquery(literal_column("'simple'"), q)
            ticket_text = func.to_tsvector(literal_column("'simple'"), _ticket_text())
            comment_text = func.to_tsvector(literal_column("'simple'"), Comment.body)
            return or_(
                ticket_text.op("@@")(query),
                exists(comments.where(comment_text.op("@@")(query))),
            )
        conditions = []
        for word in q.split()[:10]:
            pattern = f"%{_escape_like(word.lower())}%"
            fields = [func.lower(column).like(pattern, escape="\\") for column in _SEARCHED]
            in_comment = func.lower(Comment.body).like(pattern, escape="\\")
            conditions.append(or_(*fields, exists(comments.where(in_comment))))
        return and_(*conditions)

    async def list_waiting_for_customer(self, customer_id: str) -> list[Ticket]:
        """The customer's tickets whose place depends on blockers: held or queued."""
        stmt = (
            select(Ticket)
            .where(
                Ticket.customer_id == customer_id,
                Ticket.status.in_(("awaiting_customer", "open")),
            )
            .order_by(Ticket.id)
        )
        return list((await self.session.scalars(stmt)).all())

    async def pauses_for(self, ticket_ids: Iterable[str]) -> dict[str, list[TicketPause]]:
        ids = list(set(ticket_ids))
        found: dict[str, list[TicketPause]] = defaultdict(list)
        if not ids:
            return found
        if any(isinstance(obj, TicketPause) for obj in self.session.new):
            # The session does not autoflush: a pause that ended in this transaction
            # must be written before it can be read, or the due time would miss it.
            await self.session.flush()
        stmt = select(TicketPause).where(TicketPause.ticket_id.in_(ids)).order_by(TicketPause.id)
        for pause in (await self.session.scalars(stmt)).all():
            found[pause.ticket_id].append(pause)
        return found

    def add_pause(self, pause: TicketPause) -> None:
        self.session.add(pause)

    async def latest_versions(self, codes: Iterable[str | None]) -> dict[str, str | None]:
        wanted = {c for c in codes if c}
        if not wanted:
            return {}
        stmt = select(Product.code, Product.latest_version).where(Product.code.in_(wanted))
        return {row[0]: row[1] for row in (await self.session.execute(stmt)).all()}

    # The queue ------------------------------------------------------------------

    def _queue(self) -> Select[Ticket]:
        # One range scan of the partial index ix_tickets_queue, in working order.
        return (
            select(Ticket)
            .where(Ticket.status == "open")
            .order_by(Ticket.queue_group, Ticket.severity_rank, Ticket.received_at, Ticket.id)
        )

    async def queue_page(self, limit: int, after: QueueKey | None) -> list[Ticket]:
        stmt = self._queue()
        if after is not None:
            key = tuple_(Ticket.queue_group, Ticket.severity_rank, Ticket.received_at, Ticket.id)
            stmt = stmt.where(key > tuple_(*after))
        return list((await self.session.scalars(stmt.limit(limit))).all())

    async def next_in_queue(self, *, skip: Iterable[str] = ()) -> Ticket | None:
        """The first open ticket, locked for this transaction.

        On PostgreSQL ``FOR UPDATE SKIP LOCKED``: a ticket another claimer has locked
        is passed over, not waited for. SQLite runs one write transaction at a time.
        """
        stmt = self._queue().limit(1)
        skipped = list(skip)
        if skipped:
            stmt = stmt.where(Ticket.id.not_in(skipped))
        if self.is_postgres:
            stmt = stmt.with_for_update(skip_locked=True)
        return (await self.session.scalars(stmt)).first()

    async def awaiting_first_response(self, due_before: datetime, limit: int) -> list[Ticket]:
        """Unanswered tickets, not yet announced as breached, due before ``due_before``."""
        stmt = sla_watch_query(due_before, limit)
        return list((await self.session.scalars(stmt)).all())

    async def claim_sla_notices(
        self, tickets: list[Ticket], breached: bool, now: datetime
    ) -> list[Ticket]:
        """Mark ``tickets`` as announced (breached, else at risk), each only if no one has
        yet; the ones this transaction marked, to announce. On PostgreSQL a concurrent
        sweep's UPDATE waits for this one to commit and then finds the mark set; on
        SQLite the write lock runs sweeps one after the other."""
        if not tickets:
            return []
        column = Ticket.sla_breached_notified_at if breached else Ticket.sla_at_risk_notified_at
        stmt = (
            update(Ticket)
            .where(Ticket.id.in_([t.id for t in tickets]), column.is_(None))
            .values({column: now})
            .returning(Ticket.id)
            .execution_options(synchronize_session=False)
        )
        claimed = set((await self.session.scalars(stmt)).all())
        mine = [t for t in tickets if t.id in claimed]
        for ticket in mine:
            set_committed_value(ticket, column.key, now)
        return mine

    async def customers_whose_contracts_turn(self, today: date) -> list[str]:
        """Customers with a contract starting today or having ended yesterday: their
        standing changed with the date."""
        yesterday = date.fromordinal(today.toordinal() - 1)
        stmt = (
            select(Contract.customer_id)
            .where(or_(Contract.starts_on == today, Contract.ends_on == yesterday))
            .distinct()
        )
        return list((await self.session.scalars(stmt)).all())

    # Comments, attachments, escalations ---------------------------------------------

    async def list_comments(
        self, ticket_id: str, params: PageParams, *, include_internal: bool
    ) -> tuple[list[Comment], str | None]:
        stmt = select(Comment).where(Comment.ticket_id == ticket_id)
        if not include_internal:
            stmt = stmt.where(Comment.internal.is_(False))
        return await fetch_page(self.session, stmt, Comment.id, params)

    async def list_attachments(
        self, ticket_id: str, params: PageParams
    ) -> tuple[list[Attachment], str | None]:
        stmt = select(Attachment).where(Attachment.ticket_id == ticket_id)
        return await fetch_page(self.session, stmt, Attachment.id, params)

    async def attachment_bytes_of_customer(self, customer_id: str) -> int:
        """The bytes of every attachment on the customer's tickets."""
        stmt = (
            select(func.coalesce(func.sum(Attachment.size), 0))
            .join(Ticket, Ticket.id == Attachment.ticket_id)
            .where(Ticket.customer_id == customer_id)
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def get_attachment(self, ticket_id: str, attachment_id: str) -> Attachment | None:
        stmt = select(Attachment).where(
            Attachment.ticket_id == ticket_id, Attachment.id == attachment_id
        )
        return (await self.session.scalars(stmt)).one_or_none()

    async def list_escalations(
        self, ticket_id: str, params: PageParams
    ) -> tuple[list[Escalation], str | None]:
        stmt = select(Escalation).where(Escalation.ticket_id == ticket_id)
        return await fetch_page(self.session, stmt, Escalation.id, params)


def sla_watch_query(due_before: datetime, limit: int) -> Select[Ticket]:
    """The SLA sweep's query: a range scan of the partial index ix_tickets_sla_watch.

    The statuses are literals, not parameters, so that both databases can match the
    query to the index's predicate (SQLite never can with bound values).
    """
    return (
        select(Ticket)
        .where(
            Ticket.first_response_at.is_(None),
            Ticket.sla_breached_notified_at.is_(None),
            Ticket.status.not_in([literal_column("'resolved'"), literal_column("'closed'")]),
            Ticket.first_response_due < due_before,
        )
        .order_by(Ticket.first_response_due)
        .limit(limit)
    )
