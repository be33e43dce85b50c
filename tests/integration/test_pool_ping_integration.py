"""A pooled PostgreSQL connection is pinged only after sitting idle (issue 16): one the
server dropped while idle is replaced before use, and one dropped while in steady use
fails its one statement as a disconnect, after which the pool hands out fresh ones."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

import supportdesk.db
from supportdesk.config import Settings
from supportdesk.db import build_engine

pytestmark = pytest.mark.db


@pytest.fixture
def postgres_url(database_url: str) -> str:
    return database_url


@pytest.fixture
async def admin(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(postgres_url, isolation_level="AUTOCOMMIT")
    yield engine
    await engine.dispose()


async def _backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def _terminate(admin: AsyncEngine, pid: int) -> None:
    async with admin.connect() as conn:
        await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    await asyncio.sleep(0.1)


# The idle ping is set up for PostgreSQL's pool only (SQLite has no server to lose).
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
class TestIdlePing:
    async def test_connection_dropped_while_idle_is_replaced_before_use(
        self, postgres_url: str, admin: AsyncEngine, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(supportdesk.db, "PING_AFTER_IDLE_SECONDS", 0.05)
        engine = build_engine(Settings(database_url=postgres_url, database_pool_size=1))
        try:
            first = await _backend_pid(engine)
            await _terminate(admin, first)
            second = await _backend_pid(engine)
            assert second != first
        finally:
            await engine.dispose()

    async def test_connection_in_steady_use_is_not_pinged(
        self, postgres_url: str, admin: AsyncEngine
    ) -> None:
        engine = build_engine(Settings(database_url=postgres_url, database_pool_size=1))
        try:
            first = await _backend_pid(engine)
            await _terminate(admin, first)
            # No ping within the idle threshold: the statement finds out, as a disconnect.
            with pytest.raises(DBAPIError) as lost:
                await _backend_pid(engine)
            assert lost.value.connection_invalidated
            # The pool was invalidated: the next checkout is a fresh connection.
            assert await _backend_pid(engine) != first
        finally:
            await engine.dispose()
