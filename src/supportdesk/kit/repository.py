"""The base every repository starts from."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import cache
from typing import Any, TypeVar, cast

from sqlalchemy import (
    Executable,
    Insert,
    Row,
    Table,
    Update,
    bindparam,
    func,
    insert,
    literal,
    select,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.util import greenlet_spawn

from supportdesk.db import Base, ReadConnect
from supportdesk.errors import Conflict, connection_lost_errors

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

    __slots__ = ("guard", "parts")

    def __init__(self) -> None:
        self.parts: list[tuple[Table | Update, list[dict[str, Any]]]] = []
        # An update that returns the row it changed, or none: then nothing is written
        # (``Repository.write`` answers False).
        self.guard: Update | None = None

    def insert(self, table: Table, *rows: dict[str, Any]) -> None:
        """Rows of one table (with the same keys); rows of a table already written with
        the same keys join its statement."""
        for part, values in self.parts:
            if part is table and values[0].keys() == rows[0].keys():
                values.extend(rows)
                return
        self.parts.append((table, list(rows)))

    def update(self, statement: Update, params: dict[str, Any], *, guard: bool = False) -> None:
        """A statement built once with bound parameters named uniquely (they share one
        statement with the others on PostgreSQL), and their values; the values of a
        statement already given join it (run as one ``executemany``). A ``guard`` (one
        row, ``RETURNING``) decides for all: the others are written only if it changed
        its row."""
        if guard:
            if self.guard is not None:
                raise ValueError("a batch of writes has one guard")
            self.guard = statement
            self.parts.append((statement, [params]))
            return
        for part, values in self.parts:
            if part is statement:
                values.append(params)
                return
        self.parts.append((statement, [params]))

    def extend(self, other: Writes) -> None:
        """The parts of ``other``, joined to these where they can."""
        if other.guard is not None:
            raise ValueError("a guarded batch of writes joins no other")
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


@cache
def _insert_of(table: Table) -> Insert:
    return insert(table)


def _together_statement(writes: Writes) -> tuple[Executable, dict[str, Any]]:
    """One statement with every part as a data-modifying CTE (PostgreSQL), and its
    parameters; the statement is built once per shape (tables, row counts, columns).

    With a guard, each row is inserted from the guard's returned row (``INSERT …
    SELECT … FROM guard``): none is written unless the guard changed its row, and the
    statement answers how many rows it changed (0 or 1); else it answers 1."""
    shape = writes._shape()
    statement = _together.get(shape)
    params: dict[str, Any] = {}
    ctes = []
    guard = None
    if statement is None and writes.guard is not None:
        guard = writes.guard.cte("g")
    for i, (part, values) in enumerate(writes.parts):
        if isinstance(part, Table):
            table = part
            for r, row in enumerate(values):
                for key, value in row.items():
                    params[f"w{i}_{r}_{key}"] = value
            if statement is None:
                # One single-row INSERT per row: SQLAlchemy caches no multi-row VALUES.
                for r, row in enumerate(values):
                    bound = {
                        key: bindparam(f"w{i}_{r}_{key}", type_=table.c[key].type) for key in row
                    }
                    if guard is None:
                        ctes.append(insert(table).values(bound).cte(f"w{i}_{r}"))
                    else:
                        rows = select(*bound.values()).select_from(guard)
                        ctes.append(insert(table).from_select(list(bound), rows).cte(f"w{i}_{r}"))
        else:
            params.update(values[0])
            if statement is None and part is not writes.guard:
                if guard is not None:
                    raise ValueError("a guarded batch of writes updates nothing but its guard")
                ctes.append(part.cte(f"w{i}"))
    if statement is None:
        answer = select(literal(1)) if guard is None else select(func.count()).select_from(guard)
        statement = _together[shape] = answer.add_cte(*ctes)
    return statement, params


_ASYNCPG: Any = None


def _momentary_errors() -> tuple[type[BaseException], ...]:
    """The driver's errors for a statement refused for the moment (a lock, a timeout)."""
    import asyncpg

    x = asyncpg.exceptions
    return (x.QueryCanceledError, x.LockNotAvailableError, x.DeadlockDetectedError)


_MOMENTARY = _momentary_errors()


class OnDriver:
    """A fixed statement run straight on asyncpg (PostgreSQL): compiled once, its
    parameters bound by position through SQLAlchemy's own bind processors, with no
    execution context per call. Rows come back as the driver gives them: on this
    dialect's connections (its codecs set) the same values SQLAlchemy's result types
    would make of them for the columns the hot paths read."""

    # Who wants to see each statement as it is sent (the tests that count round trips;
    # SQLAlchemy's cursor events do not see these).
    listeners: list[Callable[[str], None]] = []

    def __init__(self, statement: Any) -> None:
        global _ASYNCPG
        if _ASYNCPG is None:
            from sqlalchemy.dialects.postgresql import asyncpg

            _ASYNCPG = asyncpg.dialect()  # type: ignore[no-untyped-call]
        compiled = statement.compile(dialect=_ASYNCPG)
        self.sql = compiled.string
        self.names = tuple(compiled.positiontup or ())
        self.literals = dict(compiled.params)
        processors = compiled._bind_processors
        self.processors = tuple(processors.get(name) for name in self.names)
        # Columns whose value SQLAlchemy computes in Python per execution (``default=``,
        # ``onupdate=`` callables): computed here alike, or they would be bound as NULL.
        self.prefetch = [(c.key, c.default) for c in compiled.insert_prefetch]
        self.prefetch += [(c.key, c.onupdate) for c in compiled.update_prefetch]

    def _args(self, params: dict[str, Any]) -> list[Any]:
        for name, default in self.prefetch:
            if name not in params:
                value = default.arg(None) if default.is_callable else default.arg
                params = {**params, name: value}
        args = []
        literals = self.literals
        for name, process in zip(self.names, self.processors, strict=True):
            value = params[name] if name in params else literals[name]
            args.append(process(value) if process is not None and value is not None else value)
        return args

    async def _run(
        self, connection: Connection, method: str, params: dict[str, Any], begin: bool = True
    ) -> Any:
        """The statement sent by the driver's ``method``, in the transaction SQLAlchemy
        has begun on ``connection`` (the session's, ``held_connection``). The adapter
        sends BEGIN with its first statement; a statement sent past it must begin it the
        same way, or it would run (and its row locks end) on its own. Without ``begin``
        a statement sent before the transaction's first runs on its own: one round trip
        less, for a statement that is a whole use case, or the read before one."""
        for listener in self.listeners:
            listener(self.sql)
        try:
            # The pooled connection as SQLAlchemy's property gives it: no I/O unless it
            # was invalidated and must connect anew, which only the greenlet may do.
            if connection.invalidated:
                raw = await greenlet_spawn(getattr, connection, "connection")
            else:
                raw = connection.connection
            adapter: Any = raw.dbapi_connection
            if begin and connection.in_transaction() and adapter._transaction is None:
                await adapter._start_transaction()  # a no-op in autocommit
            driver: Any = raw.driver_connection
            return await getattr(driver, method)(self.sql, *self._args(params))
        except Exception as exc:
            raise await self._translated(connection, exc) from exc

    async def fetch(
        self, connection: Connection, params: dict[str, Any], begin: bool = True
    ) -> list[Any]:
        return list(await self._run(connection, "fetch", params, begin))

    async def execute(self, connection: Connection, params: dict[str, Any]) -> int:
        """The number of rows the statement changed."""
        status: str = await self._run(connection, "execute", params)
        return int(status.rsplit(" ", 1)[-1])

    async def _translated(self, connection: Connection, exc: Exception) -> Exception:
        """The driver's error as SQLAlchemy would have raised it, so that it is answered
        alike (``errors.py``): a lost connection is invalidated, so the pool does not
        hand it out again, and answered 503; a refused row is an ``IntegrityError``."""
        import asyncpg

        orig = exc.__cause__ if isinstance(exc.__cause__, Exception) else exc
        lost = connection_lost_errors()
        if isinstance(orig, lost) or isinstance(exc, lost):
            await greenlet_spawn(connection.invalidate, orig)  # closing it is I/O
            return OperationalError(self.sql, None, orig, connection_invalidated=True)
        if isinstance(orig, asyncpg.exceptions.IntegrityConstraintViolationError):
            return IntegrityError(self.sql, None, orig)
        if isinstance(orig, _MOMENTARY):
            return OperationalError(self.sql, None, orig)
        return DBAPIError(self.sql, None, orig)


@cache
def on_driver(statement: Any) -> OnDriver:
    """The driver form of a statement built once (statements hash by identity)."""
    return OnDriver(statement)


class Repository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @property
    def is_postgres(self) -> bool:
        """PostgreSQL has what SQLite lacks (SKIP LOCKED, full-text search)."""
        return self.session.bind is not None and self.session.bind.dialect.name == "postgresql"

    async def held_connection(self) -> Connection:
        """The connection of the request's transaction, as ``session.connection()``
        gives it. Once the transaction holds one it is taken without a hop into
        SQLAlchemy's greenlet, which costs about as much CPU as a round trip and is
        needed only for I/O: the first call goes through it, to begin the transaction
        and check a connection out of the pool."""
        sync = self.session.sync_session
        transaction = sync._transaction
        if transaction is not None and transaction._connections:
            return sync.connection()
        # An AsyncConnection of a session always proxies one.
        return cast(Connection, (await self.session.connection()).sync_connection)

    async def fetch(
        self, statement: Any, params: dict[str, Any], *, begin: bool = True
    ) -> Sequence[Any]:
        """The rows of a statement built once, in the request's transaction: on
        PostgreSQL straight from the driver (``OnDriver``), on SQLite through Core.
        Without ``begin``, on PostgreSQL, a statement before the transaction's first
        runs on its own (``OnDriver._run``)."""
        if self.is_postgres:
            return await on_driver(statement).fetch(await self.held_connection(), params, begin)
        connection = await self.session.connection()
        return (await connection.execute(statement, params)).all()

    async def execute(self, statement: Any, params: dict[str, Any]) -> int:
        """Run a statement built once, in the request's transaction, as ``fetch`` does;
        the number of rows it changed."""
        if self.is_postgres:
            return await on_driver(statement).execute(await self.held_connection(), params)
        connection = await self.session.connection()
        result = await connection.execute(statement, params)
        return int(getattr(result, "rowcount", 0) or 0)

    async def write(self, writes: Writes) -> bool:
        """Run the statements in one round trip: a data-modifying CTE on PostgreSQL.
        SQLite has none; there they run one after the other, in the same order and the
        same transaction, each a single statement however many rows it holds. So do
        they on PostgreSQL when an update runs for many rows (one ``executemany``).

        With a guard (``Writes.update(guard=True)``): False, and nothing written, when
        the guard changed no row. On PostgreSQL the one statement is then the whole
        change, sent as it is: in the request's transaction if one was begun, else on
        its own, atomic without BEGIN and COMMIT. On SQLite the guard runs first."""
        guarded = writes.guard is not None
        together = guarded or len(writes.parts) > 1
        if together and self.is_postgres and writes._fits_one_statement():
            statement, params = _together_statement(writes)
            held = await self.held_connection()
            rows = await on_driver(statement).fetch(held, params, begin=not guarded)
            return bool(rows[0][0])
        connection = await self.session.connection()
        if writes.guard is not None:
            (params,) = next(values for part, values in writes.parts if part is writes.guard)
            if (await connection.execute(writes.guard, params)).first() is None:
                return False
        for part, values in writes.parts:
            if part is writes.guard:
                continue
            if isinstance(part, Table):
                await connection.execute(_insert_of(part), values)
            else:
                await connection.execute(part, values if len(values) > 1 else values[0])
        return True

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
