"""The schema comes from the migrations, and the models agree with it on both backends."""

from __future__ import annotations

import asyncio

from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from supportdesk import migrate


class TestMigrations:
    async def test_models_and_migrations_agree(self, database_url: str) -> None:
        # alembic check raises when autogenerate would produce any operation.
        await asyncio.to_thread(migrate.check, database_url)

    async def test_upgrade_is_idempotent(self, database_url: str) -> None:
        await asyncio.to_thread(migrate.upgrade, database_url)

    async def test_tables_exist(self, engine: AsyncEngine) -> None:
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
        assert {"customers", "contacts", "products", "api_keys", "alembic_version"} <= names
