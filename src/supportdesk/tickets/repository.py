from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    ColumnElement,
    Integer,
    Row,
    Select,
    Table,
    Update,
    and_,
    bindparam,
    exists,
    func,
    literal_column,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by, array
from sqlalchemy.ext.asyncio import AsyncSession

from supportdesk.db import ReadConnect
from supportdesk.kit.pagination import PageParams, encode_cursor, fetch_page
from supportdesk.kit.repository import ReadRepository, Repository
from supportdesk.models import (
    Attachment,
    Comment,
    Contact,
    Contract,
    Customer,
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


class TicketRecord(NamedTuple):
    """A ticket's stored values as the hot reads select them: the fields of the answer in
    its order, then what only the derivation reads. Plain values, no ORM object."""

    id: str
    customer_id: str
    contact_id: str | None
    category: str
    severity: str
    status: str
    subject: str
    description: str
    steps_to_reproduce: str | None
    product: str | None
    addon_version: str | None
    env_os: str | None
    env_host_application: str | None
    env_host_version: str | None
    env_database_server: str | None
    env_extra: dict[str, Any] | None
    received_at: datetime
    first_response_at: datetime | None
    next_business_window: datetime | None
    concept: str | None
    concept_en: str | None
    proposed_appointments: list[dict[str, str]] | None
    dongle_received_at: datetime | None
    assignee_key_id: str | None
    updated_at: datetime
    has_image_screenshot: bool
    has_database_backup: bool
    paused_since: datetime | None


class Surroundings(NamedTuple):
    """What a ticket's view depends on beyond the ticket: the customer's standing today,
    the product's latest version and the ticket's ended pauses."""

    unit_balance: int
    contract_valid: bool
    latest_version: str | None
    pauses: list[tuple[datetime, datetime]]


class NewTicketSurroundings(NamedTuple):
    """What opening a ticket reads: the customer's standing today, the product's latest
    version, and whether the named contact is the customer's."""

    unit_balance: int
    contract_valid: bool
    latest_version: str | None
    contact_found: bool


class ReadRow(NamedTuple):
    record: TicketRecord
    around: Surroundings
    queue_key: QueueKey


class Placement(NamedTuple):
    """The stored copies of what is derived, and of the severity's rank, as a change
    finds them."""

    held: bool
    first_response_due: datetime
    queue_group: int
    severity_rank: int
    # Counted up by every write of the row: a change read without a lock is written
    # only if the row is still at this version (``write`` with a guarded update).
    version: int


class ChangeRow(NamedTuple):
    """A ticket read to be changed: what its view needs and where it is placed."""

    record: TicketRecord
    around: Surroundings
    placement: Placement


class WatchedRow(NamedTuple):
    """A ticket the SLA sweep reads: what its view needs, and whether it was announced
    as at risk already."""

    record: TicketRecord
    around: Surroundings
    at_risk_announced: bool


_TICKETS = cast(Table, Ticket.__table__)
_N = len(TicketRecord._fields)
# Built once per dialect and shape: a Core statement built per call costs more than
# its round trip.
_STATEMENTS: dict[tuple[object, ...], Select[Any]] = {}


def _pauses_postgres() -> ColumnElement[Any]:
    pauses = cast(Table, TicketPause.__table__)
    pair = array([pauses.c.started_at, pauses.c.ended_at])
    agg = func.array_agg(aggregate_order_by(pair, pauses.c.id))
    return select(agg).where(pauses.c.ticket_id == _TICKETS.c.id).scalar_subquery().label("pauses")


def _pauses_sqlite() -> ColumnElement[Any]:
    pauses = cast(Table, TicketPause.__table__)
    # The derived table refers to the outer ticket: said explicitly, since SQLAlchemy
    # does not correlate a subquery in FROM by itself (it would read every pause).
    ordered = (
        select(pauses.c.started_at, pauses.c.ended_at)
        .where(pauses.c.ticket_id == _TICKETS.c.id)
        .correlate(_TICKETS)
        .order_by(pauses.c.id)
        .subquery()
    )
    pair = func.json_array(ordered.c.started_at, ordered.c.ended_at)
    return select(func.json_group_array(pair)).scalar_subquery().label("pauses")


def _decode_pauses(value: Any) -> list[tuple[datetime, datetime]]:
    if not value:
        return []
    if isinstance(value, str):
        # SQLite: JSON text of the stored naive UTC texts.
        return [
            (
                datetime.fromisoformat(a).replace(tzinfo=UTC),
                datetime.fromisoformat(b).replace(tzinfo=UTC),
            )
            for a, b in json.loads(value)
        ]
    return [(a.astimezone(UTC), b.astimezone(UTC)) for a, b in value]


def _contract_valid(customer_id: ColumnElement[str]) -> ColumnElement[bool]:
    """Whether the customer has a contract valid on the bound ``today``."""
    contracts = cast(Table, Contract.__table__)
    today = bindparam("today", type_=contracts.c.starts_on.type)
    return (
        exists()
        .where(
            contracts.c.customer_id == customer_id,
            contracts.c.starts_on <= today,
            or_(contracts.c.ends_on.is_(None), contracts.c.ends_on >= today),
        )
        .label("contract_valid")
    )


def _latest_version(code: ColumnElement[str | None]) -> ColumnElement[str | None]:
    products = cast(Table, Product.__table__)
    return (
        select(products.c.latest_version)
        .where(products.c.code == code)
        .scalar_subquery()
        .label("latest_version")
    )


def _read_select(postgres: bool) -> Select[Any]:
    """Tickets with their customer's standing today, their product's latest version and
    their pauses: everything a view needs, in one statement."""
    t = _TICKETS
    customers = cast(Table, Customer.__table__)
    return select(
        *(t.c[name] for name in TicketRecord._fields),
        customers.c.unit_balance,
        _contract_valid(t.c.customer_id),
        _latest_version(t.c.product),
        _pauses_postgres() if postgres else _pauses_sqlite(),
        t.c.queue_group,
        t.c.severity_rank,
    ).select_from(t.join(customers, customers.c.id == t.c.customer_id))


def _read_rows(rows: Sequence[Sequence[Any]]) -> list[ReadRow]:
    found = []
    make = TicketRecord._make
    for row in rows:
        values = tuple(row)
        record = make(values[:_N])
        balance, contract_valid, latest, pauses, group_rank, severity_rank = values[_N:]
        found.append(
            ReadRow(
                record,
                Surroundings(balance, bool(contract_valid), latest, _decode_pauses(pauses)),
                (group_rank, severity_rank, record.received_at, record.id),
            )
        )
    return found


def _change_rows(rows: Sequence[Row[Any]]) -> list[ChangeRow]:
    found = []
    for row in rows:
        values: list[Any] = list(row)
        (read,) = _read_rows([values[:-3]])
        group_rank, severity_rank = read.queue_key[:2]
        held, due, version = values[-3:]
        placement = Placement(bool(held), due, group_rank, severity_rank, version)
        found.append(ChangeRow(read.record, read.around, placement))
    return found


def _watched_rows(rows: Sequence[Row[Any]]) -> list[WatchedRow]:
    found = []
    for row in rows:
        values: list[Any] = list(row)
        (read,) = _read_rows([values[:-1]])
        found.append(WatchedRow(read.record, read.around, values[-1] is not None))
    return found


def _shape(stmt: Select[Any], shape: tuple[object, ...], postgres: bool) -> Select[Any]:
    t = _TICKETS
    kind = shape[0]
    if kind in ("change", "look", "claim", "waiting"):
        # The ticket locked for this transaction with its placement and version (on
        # PostgreSQL; SQLite runs one write transaction at a time); "look" reads the same
        # without a lock, for a change guarded by the version. A claim passes over a
        # ticket another claimer holds rather than wait for it.
        stmt = stmt.add_columns(t.c.held, t.c.first_response_due, t.c.version)
        if kind in ("change", "look"):
            stmt = stmt.where(t.c.id == bindparam("ticket_id"))
            return stmt.with_for_update(of=t) if kind == "change" else stmt
        if kind == "waiting":
            # The customers' tickets whose place depends on blockers: held or queued.
            waiting: tuple[ColumnElement[str], ...] = (
                literal_column("'awaiting_customer'"),
                literal_column("'open'"),
            )
            stmt = stmt.where(
                t.c.customer_id.in_(bindparam("customer_ids", expanding=True)),
                t.c.status.in_(waiting),
            )
            return stmt.order_by(t.c.id).with_for_update(of=t)
        # The tickets passed over: one array on PostgreSQL (a statement of one shape,
        # however many), an expanding list on SQLite.
        passed = (
            t.c.id != func.all(bindparam("skip", type_=ARRAY(t.c.id.type)))
            if postgres
            else t.c.id.not_in(bindparam("skip", expanding=True))
        )
        stmt = _shape(stmt, ("queue", False), postgres).where(passed)
        return stmt.with_for_update(of=t, skip_locked=True)
    if kind == "one":
        return stmt.where(t.c.id == bindparam("ticket_id"))
    if kind == "sla":
        # A range scan of the partial index ix_tickets_sla_watch: the statuses are
        # literals, so that both databases can match the query to the index's predicate
        # (SQLite never can with bound values).
        closed: tuple[ColumnElement[str], ...] = (
            literal_column("'resolved'"),
            literal_column("'closed'"),
        )
        due_before = bindparam("due_before", type_=t.c.first_response_due.type)
        return (
            stmt.add_columns(t.c.sla_at_risk_notified_at)
            .where(
                t.c.first_response_at.is_(None),
                t.c.sla_breached_notified_at.is_(None),
                t.c.status.not_in(closed),
                t.c.first_response_due < due_before,
            )
            .order_by(t.c.first_response_due, t.c.id)
            .limit(bindparam("limit", type_=Integer))
        )
    if kind == "page":
        names, after = cast(tuple[str, ...], shape[1]), shape[2]
        for name in names:
            stmt = stmt.where(t.c[name] == bindparam(name))
        if after:
            stmt = stmt.where(t.c.id > bindparam("after"))
        return stmt.order_by(t.c.id).limit(bindparam("limit"))
    # The queue: one range scan of the partial index ix_tickets_queue, in working order
    # (the status a literal, so that the planner matches the index's predicate).
    stmt = stmt.where(t.c.status == literal_column("'open'"))
    if shape[1]:
        key = tuple_(t.c.queue_group, t.c.severity_rank, t.c.received_at, t.c.id)
        bound = tuple_(
            bindparam("k0", type_=t.c.queue_group.type),
            bindparam("k1", type_=t.c.severity_rank.type),
            bindparam("k2", type_=t.c.received_at.type),
            bindparam("k3", type_=t.c.id.type),
        )
        stmt = stmt.where(key > bound)
    order = (t.c.queue_group, t.c.severity_rank, t.c.received_at, t.c.id)
    return stmt.order_by(*order).limit(bindparam("limit"))


def sla_watch_query(postgres: bool) -> Select[Any]:
    """The SLA sweep's read, bound by ``due_before``, ``limit`` and ``today``: unanswered
    tickets not yet announced as breached, due before ``due_before``, by due time, each
    with what its view needs and whether it was announced as at risk."""
    return _shape(_read_select(postgres), ("sla",), postgres)


_UPDATES: dict[tuple[tuple[str, ...], bool], Update] = {}


def ticket_update(names: tuple[str, ...], *, guarded: bool = False) -> Update:
    """``UPDATE tickets`` of the columns ``names`` (bound as ``u_<name>``) of the ticket
    ``u_id``, its version counted up; ``guarded``, only while the ticket is at version
    ``g_version``, returning its id when it was. Built once per set of columns."""
    key = (names, guarded)
    statement = _UPDATES.get(key)
    if statement is None:
        t = _TICKETS
        values: dict[str, Any] = {
            name: bindparam(f"u_{name}", type_=t.c[name].type) for name in names
        }
        values["version"] = t.c.version + 1
        statement = update(t).where(t.c.id == bindparam("u_id", type_=t.c.id.type)).values(values)
        if guarded:
            statement = statement.where(
                t.c.version == bindparam("g_version", type_=t.c.version.type)
            ).returning(t.c.id)
        _UPDATES[key] = statement
    return statement


def _statement(postgres: bool, scoped: bool, *shape: object) -> Select[Any]:
    """The read of ``shape`` (``_shape``), for a customer-bound caller when ``scoped``:
    built once per database and shape."""
    key = (postgres, scoped, *shape)
    stmt = _STATEMENTS.get(key)
    if stmt is None:
        stmt = _read_select(postgres)
        if scoped:
            stmt = stmt.where(_TICKETS.c.customer_id == bindparam("scope"))
        stmt = _shape(stmt, shape, postgres)
        _STATEMENTS[key] = stmt
    return stmt


def _params(today: date, scope: str | None, **params: object) -> dict[str, object]:
    params["today"] = today
    if scope is not None:
        params["scope"] = scope
    return params


def _matches(q: str, *, include_internal: bool, postgres: bool) -> ColumnElement[bool]:
    """Words in subject, description, steps, environment or comments.

    PostgreSQL: full-text search over the same expressions the GIN indexes
    ix_tickets_search and ix_ticket_comments_search hold. SQLite: every word
    somewhere, case-insensitively.
    """
    comments = select(Comment.id).where(Comment.ticket_id == Ticket.id)
    if not include_internal:
        comments = comments.where(Comment.internal.is_(False))
    if postgres:
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


class TicketReadRepository(ReadRepository):
    """The hot reads: one Core statement each, returning rows, no ORM objects, on a
    bare connection. ``scope`` is a customer-bound caller's customer: every read starts
    from it, so no route can forget it."""

    def __init__(self, connect: ReadConnect, scope: str | None = None) -> None:
        super().__init__(connect)
        self.scope = scope

    def _params(self, today: date, **params: object) -> dict[str, object]:
        return _params(today, self.scope, **params)

    async def read_by_id(self, ticket_id: str, today: date) -> ReadRow | None:
        """The ticket with what its view needs, in one statement; None when it does not
        exist or the caller's customer may not see it."""
        scoped = self.scope is not None
        rows = await self.fetch_all(
            lambda postgres: _statement(postgres, scoped, "one"),
            self._params(today, ticket_id=ticket_id),
        )
        return _read_rows(rows)[0] if rows else None

    async def read_page(
        self,
        params: PageParams,
        today: date,
        *,
        q: str | None = None,
        include_internal: bool = True,
        **filters: str | None,
    ) -> tuple[list[ReadRow], str | None]:
        """A page of tickets by id, each with what its view needs, in one statement."""
        given = {name: value for name, value in filters.items() if value is not None}
        shape = ("page", tuple(sorted(given)), params.after is not None)
        scoped = self.scope is not None

        def statement(postgres: bool) -> Select[Any]:
            stmt = _statement(postgres, scoped, *shape)
            if q:
                stmt = stmt.where(_matches(q, include_internal=include_internal, postgres=postgres))
            return stmt

        values = self._params(today, limit=params.limit + 1, after=params.after, **given)
        rows = _read_rows(await self.fetch_all(statement, values))
        if len(rows) <= params.limit:
            return rows, None
        rows = rows[: params.limit]
        return rows, encode_cursor(rows[-1].record.id)

    async def read_queue_page(
        self, limit: int, after: QueueKey | None, today: date
    ) -> list[ReadRow]:
        """Open tickets in working order, each with what its view needs, in one statement."""
        values = self._params(today, limit=limit)
        if after is not None:
            values.update(zip(("k0", "k1", "k2", "k3"), after, strict=True))
        scoped, more = self.scope is not None, after is not None
        rows = await self.fetch_all(
            lambda postgres: _statement(postgres, scoped, "queue", more), values
        )
        return _read_rows(rows)

    async def customer_visible(self, customer_id: str) -> bool:
        """Whether the customer exists and the caller may see it."""
        customers = cast(Table, Customer.__table__)
        stmt = select(customers.c.id).where(customers.c.id == customer_id)
        if self.scope is not None:
            stmt = stmt.where(customers.c.id == self.scope)
        return bool(await self.fetch_all(lambda _: stmt, {}))


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

    # A change's reads: Core statements returning rows, no ORM objects ---------------

    def _statement(self, *shape: object) -> Select[Any]:
        return _statement(self.is_postgres, self.scope is not None, *shape)

    def _params(self, today: date, **params: object) -> dict[str, object]:
        return _params(today, self.scope, **params)

    async def read_for_new(
        self, customer_id: str, contact_id: str | None, product: str | None, today: date
    ) -> NewTicketSurroundings | None:
        """What a new ticket of the customer depends on, in one statement; None when the
        customer does not exist or the caller may not see it."""
        key = (self.is_postgres, self.scope is not None, "new")
        stmt = _STATEMENTS.get(key)
        if stmt is None:
            customers = cast(Table, Customer.__table__)
            contacts = cast(Table, Contact.__table__)
            contact_found = (
                exists()
                .where(
                    contacts.c.id == bindparam("contact_id", type_=contacts.c.id.type),
                    contacts.c.customer_id == customers.c.id,
                )
                .label("contact_found")
            )
            product_code = bindparam("product", type_=_TICKETS.c.product.type)
            stmt = select(
                customers.c.unit_balance,
                _contract_valid(customers.c.id),
                _latest_version(product_code),
                contact_found,
            ).where(customers.c.id == bindparam("customer_id"))
            if self.scope is not None:
                stmt = stmt.where(customers.c.id == bindparam("scope"))
            _STATEMENTS[key] = stmt
        params = self._params(
            today, customer_id=customer_id, contact_id=contact_id, product=product
        )
        connection = await self.session.connection()
        row = (await connection.execute(stmt, params)).first()
        if row is None:
            return None
        balance, contract_valid, latest, contact = row
        return NewTicketSurroundings(balance, bool(contract_valid), latest, bool(contact))

    async def read_for_change(self, ticket_id: str, today: date) -> ChangeRow | None:
        """The ticket, locked, with what its view needs and its placement, in one
        statement; None when it does not exist or the caller may not see it."""
        return await self._first_change("change", self._params(today, ticket_id=ticket_id))

    async def read_unlocked(self, ticket_id: str, today: date) -> ChangeRow | None:
        """The ticket as ``read_for_change`` reads it, without a lock and on PostgreSQL
        outside any transaction (no BEGIN): for a change written guarded by the version
        read (``TicketChange.writes(guarded=True)``)."""
        params = self._params(today, ticket_id=ticket_id)
        return await self._first_change("look", params, begin=False)

    async def read_queue_head(self, skip: list[str], today: date) -> ChangeRow | None:
        """The first open ticket but ``skip``, locked, as ``read_for_change`` reads it."""
        return await self._first_change("claim", self._params(today, skip=skip, limit=1))

    async def _first_change(
        self, kind: str, params: dict[str, object], *, begin: bool = True
    ) -> ChangeRow | None:
        rows = _change_rows(await self.fetch(self._statement(kind), params, begin=begin))
        return rows[0] if rows else None

    async def read_waiting(self, customer_ids: Sequence[str], today: date) -> list[ChangeRow]:
        """The customers' held and queued tickets, locked, by id, each as
        ``read_for_change`` reads it: one statement."""
        stmt = self._statement("waiting")
        connection = await self.session.connection()
        params = self._params(today, customer_ids=list(customer_ids))
        return _change_rows((await connection.execute(stmt, params)).all())

    async def latest_version_of(self, code: str | None) -> str | None:
        """The product's latest version in the catalogue; None for no product."""
        if code is None:
            return None
        products = cast(Table, Product.__table__)
        stmt = select(products.c.latest_version).where(products.c.code == code)
        connection = await self.session.connection()
        return (await connection.execute(stmt)).scalar_one_or_none()

    async def customer_of(self, ticket_id: str) -> str | None:
        """The ticket's customer; None when the ticket does not exist or the caller may
        not see it."""
        t = _TICKETS
        stmt = select(t.c.customer_id).where(t.c.id == ticket_id)
        if self.scope is not None:
            stmt = stmt.where(t.c.customer_id == self.scope)
        connection = await self.session.connection()
        return (await connection.execute(stmt)).scalar_one_or_none()

    # Housekeeping ----------------------------------------------------------------

    async def awaiting_first_response(
        self, due_before: datetime, limit: int, today: date
    ) -> list[WatchedRow]:
        """Unanswered tickets, not yet announced as breached, due before ``due_before``,
        by due time, each with what its view needs: one statement."""
        stmt = self._statement("sla")
        connection = await self.session.connection()
        params = self._params(today, due_before=due_before, limit=limit)
        return _watched_rows((await connection.execute(stmt, params)).all())

    async def claim_sla_notices(
        self, ticket_ids: list[str], breached: bool, now: datetime
    ) -> set[str]:
        """Mark the tickets as announced (breached, else at risk), each only if no one has
        yet; the ones this transaction marked, to announce. On PostgreSQL a concurrent
        sweep's UPDATE waits for this one to commit and then finds the mark set; on
        SQLite the write lock runs sweeps one after the other."""
        if not ticket_ids:
            return set()
        t = _TICKETS
        column = t.c.sla_breached_notified_at if breached else t.c.sla_at_risk_notified_at
        stmt = (
            update(t)
            .where(t.c.id.in_(ticket_ids), column.is_(None))
            .values({column: now, t.c.version: t.c.version + 1})
            .returning(t.c.id)
        )
        connection = await self.session.connection()
        return set((await connection.execute(stmt)).scalars().all())

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
