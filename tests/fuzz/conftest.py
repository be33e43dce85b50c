"""The fuzzer gets a fresh database of its own, per backend.

The shared test database holds what the live-app tests commit (customers, tickets,
attachments whose files lie elsewhere); a fuzzer that lists and follows those would
explore differently depending on which tests ran before it. On a fresh, migrated
database the seeded run is the same in the whole suite as on its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import _postgres_database
from supportdesk import migrate
from supportdesk.config import Settings
from supportdesk.db import build_engine


@pytest.fixture
async def engine(database_url: str, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    if database_url.startswith("sqlite"):
        url = f"sqlite+aiosqlite:///{tmp_path / 'fuzz.db'}"
        await asyncio.to_thread(migrate.upgrade, url)
        fresh = build_engine(Settings(database_url=url))
        yield fresh
        await fresh.dispose()
        return
    async for url in _postgres_database():
        await asyncio.to_thread(migrate.upgrade, url)
        fresh = build_engine(Settings(database_url=url))
        yield fresh
        await fresh.dispose()
