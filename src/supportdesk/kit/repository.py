"""The base every repository starts from."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar, cast

from sqlalchemy import (
    Executable,
    Insert,
    Row,
    Table,
    Update,
    bindparam,
    insert,
    literal,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from supportdesk.db import Base, ReadConnect
from supportdesk.errors import Conflict

M = TypeVar("M", bound=Base)


def table_of(model: type[Base]) -> Table:
    """A model's table, for Core statements."""
    return cast(Table, model.__table__)


class Writes:
    """Statements of one change (a row, its event, its audit entry…) that run together:
    nothing in them depends on another's result, so they can share one round trip.

    Rows are kept as values and updates as statements built once with bound parameters,
    so the statement of a given shape is built and compiled once per process. Rows of one
    table, and updates by one statement, join: a change of many rows (many tickets placed
    anew) is one statement per table and per kind of update."""

    __slots__ = ("parts",)

    def __init__(self) -> None:
        self.parts: list[tuple[Table | Update, list[dict[str, Any]]]] = []

    def insert(self, table: Table, *rows: dict[str, Any]) -> None:
        """Rows of one table (with the same keys); rows of a table already written with
        the same keys join its statement."""
        for part, values in self.parts:
            if part is table and values[0].keys() == rows[0].keys():
                values.extend(rows)
                return
        self.parts.append((table, list(rows)))

    def update(self, statement: Update, params: dict[str, Any]) -> None:
        """A statement built once with bound parameters named uniquely (they share one
        statement with the others on PostgreSQL), and their values; the values of a
        statement already given join it (run as one ``executemany``)."""
        for part, values in self.parts:
            if part is statement:
                values.append(params)
                return
        self.parts.append((statement, [params]))

    def extend(self, other: Writes) -> None:
        """The parts of ``other``, joined to these where they can."""
        for part, values in other.parts:
            if isinstance(part, Table):
                self.insert(part, *values)
            else:
                for params in values:
                    self.update(part, params)

    def _shape(self) -> tuple[object, ...]:
        return tuple(
            (part, len(values), *values[0]) if isinstance(part, Table) else part
            for part, values in self.parts
        )

    def _fits_one_statement(self) -> bool:
        """Whether the parts can be one statement: each update runs once, and no two
        updates bind a parameter of the same name."""
        names: set[str] = set()
        for part, values in self.parts:
            if isinstance(part, Table):
                continue
            if len(values) > 1 or not names.isdisjoint(values[0]):
                return False
            names.update(values[0])
        return True


_together: dict[tuple[object, ...], Executable] = {}
_inserts: dict[Table, Insert] = {}


def _insert_of(table: Table) -> Insert:
    statement = _inserts.get(table)
    if statement is None:
        statement = _inserts[table] = insert(table)
    return statement


def _together_statement(writes: Writes) -> tuple[Executable, dict[str, Any]]:
    """One statement with every part as a data-modifying CTE (PostgreSQL), and its
    parameters; the statement is built once per shape (tables, row counts, columns)."""
    shape = writes._shape()
    statement = _together.get(shape)
    params: dict[str, Any] = {}
    ctes = []
    for i, (part, values) in enumerate(writes.parts):
        if isinstance(part, Table):
            table = part
            for r, row in enumerate(values):
                for key, value in row.items():
                    params[f"w{i}_{r}_{key}"] = value
            if statement is None:
                # One single-row INSERT per row: SQLAlchemy caches no multi-row VALUES.
                ctes += [
                    insert(table)
                    .values(
                        {key: bindparam(f"w{i}_{r}_{key}", type_=table.c[key].type) for key in row}
                    )
                    .cte(f"w{i}_{r}")
                    for r, row in enumerate(values)
                ]
        else:
            params.update(values[0])
            if statement is None:
                ctes.append(part.cte(f"w{i}"))
    if statement is None:
        statement = _together[shape] = select(literal(1)).add_cte(*ctes)
    return statement, params


class Repository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @property
    def is_postgres(self) -> bool:
        """PostgreSQL has what SQLite lacks (SKIP LOCKED, full-text search)."""
        return self.session.bind is not None and self.session.bind.dialect.name == "postgresql"

    async def write(self, writes: Writes) -> None:
        """Run the statements in one round trip: a data-modifying CTE on PostgreSQL.
        SQLite has none; there they run one after the other, in the same order and the
        same transaction, each a single statement however many rows it holds. So do
        they on PostgreSQL when an update runs for many rows (one ``executemany``)."""
        connection = await self.session.connection()
        if len(writes.parts) > 1 and self.is_postgres and writes._fits_one_statement():
            await connection.execute(*_together_statement(writes))
            return
        for part, values in writes.parts:
            if isinstance(part, Table):
                await connection.execute(_insert_of(part), values)
            else:
                await connection.execute(part, values if len(values) > 1 else values[0])

    async def add(self, obj: M, *, conflict: str = "It conflicts with an existing record.") -> M:
        """Insert and flush, so ids and unique constraints are checked right away.

        The insert runs in a savepoint: a refused row is rolled back (and dropped from
        the session) alone, and the request's transaction stays usable.
        """
        try:
            async with self.session.begin_nested():
                self.session.add(obj)
                await self.session.flush()
        except IntegrityError as exc:
            raise Conflict(conflict) from exc
        return obj

    async def flush(self, conflict: str = "It conflicts with an existing record.") -> None:
        """Write pending changes; a constraint they break becomes a Conflict."""
        try:
            async with self.session.begin_nested():
                await self.session.flush()
        except IntegrityError as exc:
            raise Conflict(conflict) from exc


class ReadRepository:
    """The base of the hot reads' repositories: Core statements, each on a connection
    of its own from the pool (``db.get_read_connect``), no session, no transaction to
    end."""

    def __init__(self, connect: ReadConnect) -> None:
        self.connect = connect

    async def fetch_all(
        self, statement: Callable[[bool], Executable], params: Mapping[str, Any]
    ) -> Sequence[Row[Any]]:
        """The rows of ``statement(postgres)``, the statement for the connection's
        database; the connection goes back to the pool once they are in."""
        async with self.connect() as connection:
            built = statement(connection.dialect.name == "postgresql")
            return (await connection.execute(built, params)).all()
