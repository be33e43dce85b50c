"""Database plumbing: the declarative base, column types, the engine and the session.

One ``AsyncSession`` and one transaction per request: the dependency commits before the
response is sent (``scope="function"``) and rolls back on any error. Services and
repositories never commit. The hot reads (a ticket, a page of tickets, the queue) write
nothing and need no session: each of their statements takes a bare connection from the
pool, in autocommit on PostgreSQL (``get_read_connect``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from fastapi import Request
from sqlalchemy import BigInteger, DateTime, Integer, MetaData, event
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection
from sqlalchemy.types import TypeDecorator

from supportdesk.config import Settings

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# Unit counts: 64-bit on PostgreSQL, where INTEGER is 32-bit; SQLite's INTEGER is 64-bit.
Units = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime stored in UTC on every backend.

    SQLite keeps no offset, so values are normalised to UTC on the way in and marked UTC
    on the way out; a naive value is a programming error and refused.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _configure_sqlite(engine: AsyncEngine) -> None:
    """WAL, a busy timeout, foreign keys, and ``BEGIN IMMEDIATE`` for every transaction.

    The driver's own implicit BEGIN is switched off so that SQLAlchemy controls the
    transaction: taking the write lock at the start means two writers queue on the busy
    timeout instead of failing with "database is locked" half-way through.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


# A pooled connection idle for longer than this is pinged before it is handed out.
PING_AFTER_IDLE_SECONDS = 5.0
_CHECKED_IN_AT = "supportdesk_checked_in_at"


def _ping_idle_connections(engine: AsyncEngine, idle: float) -> None:
    """Ping a pooled connection on checkout only if it sat idle for ``idle`` seconds.

    ``pool_pre_ping`` pings on every checkout (BEGIN, ping, ROLLBACK on asyncpg: three
    round trips per request). A connection in steady use needs none: if the server drops
    it, the statement that finds out fails with a disconnect, that request gets 503 with
    Retry-After, and SQLAlchemy invalidates the whole pool so that every other connection
    is replaced on its next checkout. A connection that sat idle (a restart of the server,
    a firewall's idle timeout) is pinged first, and a failed ping raises
    ``DisconnectionError``, on which the pool retries the checkout with a fresh connection.
    """
    dialect = engine.dialect

    @event.listens_for(engine.sync_engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[_CHECKED_IN_AT] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(
        dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: PoolProxiedConnection
    ) -> None:
        checked_in_at = record.info.get(_CHECKED_IN_AT)
        if checked_in_at is None or time.monotonic() - checked_in_at < idle:
            return  # a fresh connection, or one in steady use
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as error:
            raise DisconnectionError("a pooled connection failed its ping") from error


def build_engine(settings: Settings) -> AsyncEngine:
    # Imported here: the audit hook needs the models, which need this module.
    from supportdesk.kit.audit import install_audit

    install_audit()
    if settings.is_sqlite:
        engine = create_async_engine(
            settings.database_url,
            echo=settings.database_echo,
            connect_args={"timeout": 30},
        )
        _configure_sqlite(engine)
        return engine
    engine = create_async_engine(
        settings.database_url,
        echo=settings.database_echo,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
    )
    _ping_idle_connections(engine, PING_AFTER_IDLE_SECONDS)
    return engine


def build_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def build_read_engine(engine: AsyncEngine) -> AsyncEngine:
    """The engine's pool, for the hot reads that run on a bare connection.

    On PostgreSQL in autocommit: a read of one statement is its own transaction, one
    round trip instead of three (BEGIN, the statement, COMMIT). SQLite keeps its
    transactions (``BEGIN IMMEDIATE``, see ``_configure_sqlite``), which the driver's
    autocommit mode would undo on the connection's return to the pool.
    """
    if engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level="AUTOCOMMIT")
    return engine


# Where the idempotency middleware leaves the transaction it owns for a request.
OWNED_SESSION_STATE = "idempotent_session"


@dataclass
class OwnedTransaction:
    """A request's transaction owned by middleware, which commits or rolls it back.

    ``failed`` is set when the request raised: its changes must be rolled back, whatever
    answer the error handlers made of the error.
    """

    session: AsyncSession
    failed: bool = False


# Where a hot read takes its connection from: ``async with connect() as connection``.
ReadConnect = Callable[[], AbstractAsyncContextManager[AsyncConnection]]


@asynccontextmanager
async def _connection_of_a_session(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncConnection]:
    async with sessionmaker() as session:
        yield await session.connection()


def connect_in(session: AsyncSession) -> ReadConnect:
    """Reads on ``session``'s own connection, in its transaction: they see what it has
    written (a use case reading back its change, a test)."""

    @asynccontextmanager
    async def connect() -> AsyncIterator[AsyncConnection]:
        yield await session.connection()

    return connect


async def get_read_connect(request: Request) -> ReadConnect:
    """Where the hot reads take their connections: the read engine's pool, one
    connection per statement, given back as soon as its rows are in. (A plain
    dependency: one that yields costs each request FastAPI's exit stack and cancel
    scopes, more than the checkout.)

    Without the lifespan there is no read engine (the tests' app runs on one connection
    in a transaction of its own): a read then runs in a session of the app's
    sessionmaker, as every other query does there.
    """
    state = request.app.state
    engine: AsyncEngine | None = getattr(state, "read_engine", None)
    if engine is None:
        return partial(_connection_of_a_session, state.sessionmaker)
    return engine.connect


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's session and transaction: commit on success, roll back on error.

    When the idempotency middleware owns the transaction (a POST with an
    ``Idempotency-Key``), the request works in it and an error marks it failed: the
    middleware then rolls the request's changes back, and otherwise commits them
    together with the stored answer.
    """
    owned = request.scope.get("state", {}).get(OWNED_SESSION_STATE)
    if isinstance(owned, OwnedTransaction):
        try:
            yield owned.session
        except BaseException:
            owned.failed = True
            raise
        return
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    session = sessionmaker()
    # Each of commit, rollback and close costs a hop into SQLAlchemy's greenlet (close
    # also a task): only what a transaction was begun for is ended. A commit or rollback
    # gives the connection back; what is left for close to do is to forget the objects.
    try:
        yield session
        if session.in_transaction():
            await session.commit()
    except BaseException:
        if session.in_transaction():
            await session.rollback()
        raise
    finally:
        if session.in_transaction():
            await session.close()
