"""The base every repository starts from."""

from __future__ import annotations

from typing import Any, TypeVar, cast

from sqlalchemy import Insert, Table, Update, insert, literal, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from supportdesk.db import Base
from supportdesk.errors import Conflict

M = TypeVar("M", bound=Base)


def table_of(model: type[Base]) -> Table:
    """A model's table, for Core statements."""
    return cast(Table, model.__table__)


class Writes:
    """Statements of one change (a row, its event, its audit entry…) that run together:
    nothing in them depends on another's result, so they can share one round trip."""

    __slots__ = ("statements",)

    def __init__(self) -> None:
        self.statements: list[Insert | Update] = []

    def insert(self, table: Table, *rows: dict[str, Any]) -> None:
        self.statements.append(insert(table).values(rows[0] if len(rows) == 1 else list(rows)))

    def update(self, statement: Update) -> None:
        self.statements.append(statement)


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
        same transaction, each a single statement however many rows it holds."""
        connection = await self.session.connection()
        statements = writes.statements
        if len(statements) > 1 and self.is_postgres:
            ctes = [s.cte(f"w{i}") for i, s in enumerate(statements)]
            await connection.execute(select(literal(1)).add_cte(*ctes))
            return
        for statement in statements:
            await connection.execute(statement)

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
