"""Fixtures shared by every tier.

Database tests run once per backend: SQLite (a temporary file) and PostgreSQL (a database
of its own, created for this run and dropped after). The schema is built by the Alembic
migrations, never by ``create_all``. Each test runs inside a connection-level transaction
that is rolled back at the end; the code under test commits into savepoints.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from supportdesk import migrate
from supportdesk.api_keys.schemas import ApiKeyCreate
from supportdesk.api_keys.service import ApiKeyService
from supportdesk.config import BusinessRules, Settings, build_rules
from supportdesk.db import build_engine
from supportdesk.main import create_app

DEFAULT_TEST_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
BACKENDS = ["sqlite", "postgres"]
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def postgres_admin_url() -> str:
    return os.environ.get("SUPPORTDESK_TEST_POSTGRES_URL", DEFAULT_TEST_POSTGRES_URL)


async def _postgres_reachable(admin_url: str) -> str | None:
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with asyncio.timeout(10), engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except (OSError, TimeoutError, OperationalError, DBAPIError) as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        await engine.dispose()
    return None


async def _postgres_database() -> AsyncIterator[str]:
    admin_url = postgres_admin_url()
    problem = await _postgres_reachable(admin_url)
    if problem is not None:
        message = (
            f"PostgreSQL at {admin_url} is unreachable ({problem}); "
            "every PostgreSQL database test is SKIPPED. Start it with "
            "`pg_ctlcluster --skip-systemctl-redirect 15 main start` "
            "or set SUPPORTDESK_TEST_POSTGRES_URL."
        )
        if IN_CI:
            pytest.fail("CI=true: " + message, pytrace=False)
        pytest.skip("!!! " + message)
    name = f"supportdesk_test_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
async def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """A migrated database per backend, shared by the whole run."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("sqlite") / "supportdesk.db"
        url = f"sqlite+aiosqlite:///{path}"
        await asyncio.to_thread(migrate.upgrade, url)
        yield url
        return
    async for url in _postgres_database():
        await asyncio.to_thread(migrate.upgrade, url)
        yield url


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = build_engine(Settings(database_url=database_url))
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def rules() -> BusinessRules:
    return build_rules(Settings())


@pytest.fixture
def backend(database_url: str) -> str:
    return "sqlite" if database_url.startswith("sqlite") else "postgres"


@pytest.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with engine.connect() as conn:
        outer = await conn.begin()
        try:
            yield conn
        finally:
            if outer.is_active:
                await outer.rollback()


def _sessionmaker(conn: AsyncConnection) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(
        bind=conn,
        join_transaction_mode="create_savepoint",
        expire_on_commit=False,
        autoflush=False,
    )


@pytest.fixture
async def session(connection: AsyncConnection) -> AsyncIterator[AsyncSession]:
    async with _sessionmaker(connection)() as session:
        yield session


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    # The per-key rate limit is off here: its own tests switch it on; the rest would
    # otherwise depend on how many requests one test makes with one key.
    return Settings(
        database_url=database_url,
        attachments_dir=tmp_path / "attachments",
        rate_limit_requests=0,
    )


@pytest.fixture
def app(settings: Settings, connection: AsyncConnection) -> FastAPI:
    """The app on the test's connection. Its lifespan is not run, so it builds no engine."""
    app = create_app(settings)
    app.state.sessionmaker = _sessionmaker(connection)
    return app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


MakeKey = Callable[..., Awaitable[str]]


@pytest.fixture
def make_key(session: AsyncSession) -> MakeKey:
    """Issue an API key straight through the service and return the secret."""

    async def make(role: str = "admin", customer_id: str | None = None, name: str = "test") -> str:
        data = ApiKeyCreate.model_validate(
            {"name": name, "role": role, "customer_id": customer_id}, strict=False
        )
        issued = await ApiKeyService(session).issue_key(data, issued_by=None)
        await session.commit()
        return issued.secret

    return make


Headers = Callable[..., Awaitable[dict[str, str]]]


@pytest.fixture
def headers_for(make_key: MakeKey) -> Headers:
    """``await headers_for("agent")`` → an Authorization header for a new key."""

    async def headers(role: str = "admin", customer_id: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {await make_key(role, customer_id)}"}

    return headers


@asynccontextmanager
async def live_client(
    database_url: str, *, pool_size: int = 10, tmp_dir: Path | None = None, **overrides: object
) -> AsyncIterator[httpx.AsyncClient]:
    """The app on a real engine that commits, as in production (no rollback isolation).

    Tests using it work on customers of their own, so what they commit stays apart.
    """
    settings = Settings(
        database_url=database_url,
        database_pool_size=pool_size,
        database_max_overflow=pool_size,
        attachments_dir=(tmp_dir or Path(tempfile.gettempdir())) / "attachments",
        **{
            "webhook_dispatcher_enabled": False,
            "rate_limit_requests": 0,
            # The monthly statement job stays off: on the 1st it would issue statements
            # for every other test's customers.
            "statement_day": 0,
            **overrides,
        },  # type: ignore[arg-type]
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


async def live_admin_headers(database_url: str) -> dict[str, str]:
    """An admin key committed to the database, for tests on the live app."""
    engine = build_engine(Settings(database_url=database_url))
    try:
        async with async_sessionmaker(engine, expire_on_commit=False).begin() as session:
            data = ApiKeyCreate.model_validate({"name": "live", "role": "admin"}, strict=False)
            issued = await ApiKeyService(session).issue_key(data, issued_by=None)
    finally:
        await engine.dispose()
    return {"Authorization": f"Bearer {issued.secret}"}
