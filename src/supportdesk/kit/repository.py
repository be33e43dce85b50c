"""The base every repository starts from."""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from supportdesk.db import Base
from supportdesk.errors import Conflict

M = TypeVar("M", bound=Base)


class Repository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @property
    def is_postgres(self) -> bool:
        """PostgreSQL has what SQLite lacks (SKIP LOCKED, full-text search)."""
        return self.session.bind is not None and self.session.bind.dialect.name == "postgresql"

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
