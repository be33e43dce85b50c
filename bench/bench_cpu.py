"""`make bench-cpu`: the CPU time one request costs, in-process, per hot path.

1. Builds a database of its own — PostgreSQL by default (127.0.0.1:5432), a temporary
   SQLite file with `--sqlite` — migrated with `supportdesk.migrate.upgrade` and seeded
   in bulk (COPY on PostgreSQL, executemany on SQLite): 1,000 customers with unit
   accounts (half with a maintenance contract), 20,000 ledger entries, 10,000 session
   logs, 100,000 tickets in all states and one active remote session per `session end`.
2. Runs the app as the tests' `live_client` does: `create_app`, its lifespan (a real
   engine and pool), `httpx.ASGITransport`. Rate limit, webhook dispatcher, mailer and
   the monthly statements are off; housekeeping runs its startup round and is waited
   for, and its next round is put out of the run's reach. The access log is formatted
   at the production level (info) and discarded.
3. For each scenario, one request at a time: a warm-up, then N requests timed with
   `time.process_time()` (CPU of this process: app, driver and test client, not the
   database server), so that other load on the machine barely moves the figures. On
   SQLite the database runs in this process (aiosqlite's thread), so its work counts
   too. Every answer's status is checked, and the first answer's shape (full pages, a
   statement with lines); a wrong one stops the run.
   The requests are timed in five blocks and the quietest block counts: other load only
   ever adds CPU time (shared caches and cores), as timeit takes the best repeat.
4. Prints ms of CPU per request and the ratio to the trivial endpoint (`/health/live`)
   and writes bench/results/cpu.json (on PostgreSQL; `cpu-sqlite.json` with `--sqlite`).
   The trivial endpoint is measured in blocks of its own before the first block of each
   scenario and after each: a block's ratio is to the mean of the two trivial blocks
   around it, and a scenario's ratio is the median of its blocks' ratios. The machine's
   speed drifts by more than the margins of the targets within a run (other tenants on
   the host), and so did a ratio of two figures taken minutes apart. The trivial
   endpoint alone, measured first and last, gives its own row.

    python bench/bench_cpu.py [--quick] [--sqlite] [--iterations N] [--tickets N]
                              [--database-name NAME]
    python bench/bench_cpu.py --profile "create ticket"   # pyinstrument, nothing written
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import io
import json
import logging
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from common import RESULTS, postgres_database
from fastapi import FastAPI
from seeding import (
    REMOTE_SESSION_COLUMNS,
    TICKET_COLUMNS,
    copy_rows,
    customer_id,
    customer_rows,
    remote_session_rows,
    ticket_rows,
)
from sqlalchemy import JSON, create_engine, text

import supportdesk.main
import supportdesk.models  # the tables, for seeding SQLite through Core
from supportdesk import migrate
from supportdesk.api_keys.schemas import ApiKeyCreate
from supportdesk.api_keys.service import ApiKeyService
from supportdesk.config import Settings
from supportdesk.db import Base
from supportdesk.main import create_app

DATABASE = "supportdesk_bench_cpu"
TRIVIAL = "trivial endpoint"
ITERATIONS = 300
QUICK_ITERATIONS = 100
WARMUP = 30
# The denominator of every ratio gets more requests: it is cheap, and its noise would
# move every ratio at once.
TRIVIAL_FACTOR = 5
BLOCKS = 5
SQLITE_BATCH = 10_000
PAGE = 50

# Every scenario's name, in the order they run; the trivial endpoint opens and closes
# the run.
SCENARIOS = [
    TRIVIAL,
    "read ticket",
    "list tickets",
    "queue page",
    "create ticket",
    "create ticket with Idempotency-Key",
    "comment",
    "claim",
    "ledger debit",
    "session end",
    "statement",
]


@dataclass(frozen=True)
class Call:
    method: str
    url: str
    headers: dict[str, str]
    content: bytes | None = None


@dataclass
class Fixture:
    """What the scenarios draw on: keys, ids, the seeded counts."""

    admin: dict[str, str]
    agent: dict[str, str]
    customers: int
    tickets: int
    open_tickets: list[str]
    today: datetime
    rng: random.Random = field(default_factory=lambda: random.Random(2026))


def _json(headers: dict[str, str], body: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    return {**headers, "Content-Type": "application/json"}, json.dumps(body).encode()


TICKET_BODY = {
    "category": "how_to",
    "severity": "normal",
    "subject": "Export to PDF fails",
    "description": "Since the update the export stops with an error.",
    "product": "archicad-addon",
    "addon_version": "4.2.1",
}


def build_calls(name: str, count: int, offset: int, fx: Fixture) -> tuple[list[Call], int]:
    """``count`` requests of scenario ``name`` and the status each must get; ``offset``
    numbers the timed ones apart from the warm-up's (session ids, idempotency keys)."""
    rng = fx.rng
    calls: list[Call] = []
    for n in range(offset, offset + count):
        if name == TRIVIAL:
            calls.append(Call("GET", "/health/live", {}))
        elif name == "read ticket":
            ticket = f"tkt_{rng.randrange(fx.tickets):026d}"
            calls.append(Call("GET", f"/api/v1/tickets/{ticket}", fx.admin))
        elif name == "list tickets":
            customer = customer_id(rng.randrange(fx.customers))
            url = f"/api/v1/tickets?customer_id={customer}&status=closed&limit={PAGE}"
            calls.append(Call("GET", url, fx.admin))
        elif name == "queue page":
            calls.append(Call("GET", f"/api/v1/queue?limit={PAGE}", fx.agent))
        elif name == "statement":
            customer = customer_id(rng.randrange(fx.customers))
            start = (fx.today - timedelta(days=365)).date().isoformat()
            end = fx.today.date().isoformat()
            url = f"/api/v1/customers/{customer}/statement?from={start}&to={end}"
            headers = {**fx.admin, "Accept": "application/json"}
            calls.append(Call("GET", url, headers))
        elif name in ("create ticket", "create ticket with Idempotency-Key"):
            body = {"customer_id": customer_id(rng.randrange(fx.customers)), **TICKET_BODY}
            headers, content = _json(fx.admin, body)
            if name != "create ticket":
                headers["Idempotency-Key"] = f"bench-cpu-{n}"
            calls.append(Call("POST", "/api/v1/tickets", headers, content))
        elif name == "comment":
            ticket = fx.open_tickets[n % len(fx.open_tickets)]
            headers, content = _json(fx.admin, {"body": "Bitte senden Sie uns die Logdatei."})
            calls.append(Call("POST", f"/api/v1/tickets/{ticket}/comments", headers, content))
        elif name == "claim":
            calls.append(Call("POST", "/api/v1/queue/claim", fx.agent))
        elif name == "ledger debit":
            url = f"/api/v1/customers/{customer_id(rng.randrange(fx.customers))}/ledger/entries"
            headers, content = _json(fx.admin, {"kind": "debit", "units": 1, "reference": "bench"})
            calls.append(Call("POST", url, headers, content))
        elif name == "session end":
            url = f"/api/v1/remote-sessions/rs_{n:026d}/end"
            body = {"notes": "Lizenzserver neu gestartet", "billable": True}
            headers, content = _json(fx.agent, body)
            calls.append(Call("POST", url, headers, content))
        else:
            raise ValueError(f"unknown scenario {name!r}")
    expected = 201 if name.startswith("create") or name in ("comment", "ledger debit") else 200
    return calls, expected


def _full_page(body: Any) -> bool:
    return len(body["items"]) == PAGE


# What the first answer of a scenario must hold besides its status: a benchmark of empty
# pages or statements would measure nothing.
SHAPES: dict[str, Callable[[Any], bool]] = {
    "list tickets": _full_page,
    "queue page": _full_page,
    "statement": lambda body: bool(body["entries"]) and bool(body["sessions"]),
    "claim": lambda body: body["status"] == "in_progress",
    # Every other session is a contract customer's (covered), the rest are charged.
    "session end": lambda body: body["duration_seconds"] > 0 and body["billable"],
}


# --------------------------------------------------------------------------- seeding


def _seed_tables(
    customers: int, tickets: int, sessions: int, now: datetime
) -> list[tuple[str, list[str], Iterable[tuple[object, ...]]]]:
    # Every other customer has a maintenance contract (group 0), the rest units (group 1).
    return [
        *customer_rows(customers, now).tables(),
        (
            "tickets",
            TICKET_COLUMNS,
            ticket_rows(tickets, customers, now, lambda owner: 0 if owner % 2 == 0 else 1),
        ),
        ("remote_sessions", REMOTE_SESSION_COLUMNS, remote_session_rows(customers, sessions, now)),
    ]


async def seed_postgres(dsn: str, customers: int, tickets: int, sessions: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for table, columns, rows in _seed_tables(customers, tickets, sessions, datetime.now(UTC)):
            await copy_rows(conn, table, columns, rows)
        # VACUUM too: else autovacuum comes for the freshly loaded tables during the
        # first scenarios, and its CPU on the other core slows this process down.
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


def seed_sqlite(path: Path, customers: int, tickets: int, sessions: int) -> None:
    """The same rows through Core's executemany, so that the column types (UTC times,
    JSON) store them as the service would."""
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as conn:
            for name, columns, rows in _seed_tables(
                customers, tickets, sessions, datetime.now(UTC)
            ):
                table = Base.metadata.tables[name]
                as_json = {c for c in columns if isinstance(table.c[c].type, JSON)}
                batch: list[dict[str, object]] = []
                for row in rows:
                    values = dict(zip(columns, row, strict=True))
                    for column in as_json:
                        if isinstance(values[column], str):
                            values[column] = json.loads(str(values[column]))
                    batch.append(values)
                    if len(batch) == SQLITE_BATCH:
                        conn.execute(table.insert(), batch)
                        batch.clear()
                if batch:
                    conn.execute(table.insert(), batch)
            conn.execute(text("ANALYZE"))
    finally:
        engine.dispose()


@asynccontextmanager
async def bench_database(sqlite: bool, name: str = DATABASE) -> AsyncIterator[str]:
    """A fresh database for the run (PostgreSQL: ``name``, dropped afterwards); yields its
    SQLAlchemy URL."""
    if sqlite:
        with tempfile.TemporaryDirectory(prefix="supportdesk-bench-cpu-") as tmp:
            yield f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        return
    async with postgres_database(name) as dsn:
        yield dsn.replace("postgresql://", "postgresql+asyncpg://", 1)


# --------------------------------------------------------------------------- the app


def _housekeeping_task() -> asyncio.Task[Any] | None:
    for task in asyncio.all_tasks():
        if getattr(task.get_coro(), "__qualname__", "") == "_housekeeping":
            return task
    return None


async def wait_for_housekeeping(limit_seconds: float = 120.0) -> None:
    """Until housekeeping sleeps between rounds: its startup round (contracts, SLA sweep,
    purges) is no part of any request."""
    deadline = time.monotonic() + limit_seconds
    while True:
        task = _housekeeping_task()
        awaited = getattr(task.get_coro(), "cr_await", None) if task is not None else None
        if task is None or getattr(awaited, "__qualname__", "") == "sleep":
            return
        if time.monotonic() > deadline:
            raise RuntimeError("housekeeping's startup round did not finish")
        await asyncio.sleep(0.05)


class _Discard(io.TextIOBase):
    def write(self, text: str) -> int:
        return len(text)


@asynccontextmanager
async def running_app(url: str, tmp: Path) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    settings = Settings(
        database_url=url,
        attachments_dir=tmp / "attachments",
        rate_limit_requests=0,
        webhook_dispatcher_enabled=False,
        smtp_host=None,
        statement_day=0,
        log_level="info",
    )
    # One housekeeping round at startup, the next one after the run: a round (an SLA
    # sweep) inside a timed loop would be charged to that scenario's requests.
    supportdesk.main.HOUSEKEEPING_EVERY = timedelta(hours=1)
    app = create_app(settings)
    # The access log is formatted as in production, and thrown away.
    for handler in logging.getLogger("supportdesk").handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(_Discard())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            await wait_for_housekeeping()
            yield app, client


async def issue_key(app: FastAPI, role: str) -> dict[str, str]:
    async with app.state.sessionmaker.begin() as session:
        data = ApiKeyCreate.model_validate({"name": f"bench {role}", "role": role}, strict=False)
        issued = await ApiKeyService(session).issue_key(data, issued_by=None)
    return {"Authorization": f"Bearer {issued.secret}"}


async def open_ticket_ids(app: FastAPI, count: int) -> list[str]:
    async with app.state.sessionmaker() as session:
        rows = await session.execute(
            text("SELECT id FROM tickets WHERE status = 'open' ORDER BY id LIMIT :n"),
            {"n": count},
        )
        ids = [str(row[0]) for row in rows]
    if not ids:
        raise RuntimeError("no open ticket was seeded")
    return ids


# --------------------------------------------------------------------------- measuring


async def send_all(
    client: httpx.AsyncClient,
    calls: Sequence[Call],
    expected: int,
    shape: Callable[[Any], bool] | None = None,
) -> None:
    for call in calls:
        response = await client.request(
            call.method, call.url, headers=call.headers, content=call.content
        )
        if response.status_code != expected:
            raise RuntimeError(
                f"{call.method} {call.url} answered {response.status_code}, "
                f"not {expected}: {response.text[:500]}"
            )
        if shape is not None:
            if not shape(response.json()):
                raise RuntimeError(f"{call.method} {call.url}: unexpected {response.text[:500]}")
            shape = None


@dataclass(frozen=True)
class Timing:
    """Per request, in ms: CPU in each block of requests, and wall time over all; and
    each block's CPU as a ratio to the trivial endpoint's blocks run just before and
    just after it (``paired``)."""

    cpu_blocks: tuple[float, ...]
    wall: float
    paired: tuple[float, ...] = ()

    @property
    def cpu(self) -> float:
        # Other load on the machine only ever adds CPU time (caches, a shared core): the
        # quietest block is the truest figure, as timeit takes the best of its repeats.
        return min(self.cpu_blocks)

    @property
    def cpu_mean(self) -> float:
        return sum(self.cpu_blocks) / len(self.cpu_blocks)

    @property
    def ratio(self) -> float:
        """The median of the paired ratios: the machine's speed drifts over a run (other
        tenants, caches), and a block measured beside its own trivial blocks shares
        their conditions; the median leaves out a block that met a burst on either
        side."""
        ordered = sorted(self.paired)
        middle = len(ordered) // 2
        if len(ordered) % 2:
            return ordered[middle]
        return (ordered[middle - 1] + ordered[middle]) / 2


async def cpu_per_request(client: httpx.AsyncClient, calls: Sequence[Call], expected: int) -> float:
    cpu = time.process_time()
    await send_all(client, calls, expected)
    return (time.process_time() - cpu) * 1000 / len(calls)


async def measure(
    client: httpx.AsyncClient,
    name: str,
    fx: Fixture,
    iterations: int,
    paired_with: Sequence[Call] = (),
) -> Timing:
    """Warm up, then ``iterations`` requests in ``BLOCKS`` timed blocks; with
    ``paired_with`` (trivial requests) a block of those before the first block and
    after each."""
    warmup, expected = build_calls(name, WARMUP, 0, fx)
    calls, _ = build_calls(name, iterations, WARMUP, fx)
    await send_all(client, warmup, expected, SHAPES.get(name))
    await wait_for_housekeeping()
    size = max(1, len(calls) // BLOCKS)
    blocks: list[float] = []
    trivial: list[float] = []
    gc.collect()
    wall = 0.0
    if paired_with:
        trivial.append(await cpu_per_request(client, paired_with, 200))
    for first in range(0, len(calls), size):
        started = time.perf_counter()
        blocks.append(await cpu_per_request(client, calls[first : first + size], expected))
        wall += time.perf_counter() - started
        if paired_with:
            trivial.append(await cpu_per_request(client, paired_with, 200))
    paired = tuple(
        block / ((before + after) / 2)
        for block, before, after in zip(blocks, trivial, trivial[1:], strict=False)
    )
    return Timing(tuple(blocks), wall * 1000 / len(calls), paired)


async def profile(
    client: httpx.AsyncClient, name: str, fx: Fixture, iterations: int, top: int = 30
) -> None:
    """Runs one scenario under pyinstrument and prints its call tree and the frames with
    the most time of their own.

    pyinstrument samples wall-clock time: ``epoll.poll`` is the wait for the database,
    not CPU. SQLAlchemy's async layer runs the ORM in greenlets, whose frames show as
    separate roots of the tree; the flat list adds them up wherever they ran.
    """
    from pyinstrument import Profiler

    warmup, expected = build_calls(name, WARMUP, 0, fx)
    calls, _ = build_calls(name, iterations, WARMUP, fx)
    await send_all(client, warmup, expected, SHAPES.get(name))
    await wait_for_housekeeping()
    profiler = Profiler(interval=0.0002, async_mode="disabled")
    profiler.start()
    await send_all(client, calls, expected)
    profiler.stop()
    print(profiler.output_text(unicode=True, time="percent_of_total"))
    flat = profiler.output_text(unicode=True, flat=True, time="percent_of_total")
    lines = [line for line in flat.splitlines() if "%" in line and "Recorded" not in line]
    print(f"top {top} frames of {name!r} by own time, {len(calls)} requests:")
    print("\n".join(lines[:top]))


def git_commit() -> str | None:
    try:
        done = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout.strip()


def print_table(rows: list[dict[str, Any]]) -> None:
    header = f"{'scenario':<38}{'ms CPU':>9}{'ratio':>8}{'CPU mean':>10}{'ms wall':>10}"
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['scenario']:<38}{row['ms_cpu']:>9.3f}{row['ratio_to_trivial']:>8.2f}"
            f"{row['ms_cpu_mean']:>10.3f}{row['ms_wall']:>10.3f}"
        )


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_ITERATIONS} requests each")
    parser.add_argument("--sqlite", action="store_true", help="a temporary SQLite file")
    parser.add_argument("--iterations", type=int, help=f"requests per scenario ({ITERATIONS})")
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=1_000)
    # Two runs on one machine must not share (and drop) each other's database.
    parser.add_argument(
        "--database-name",
        default=os.environ.get("SUPPORTDESK_BENCH_CPU_DATABASE", DATABASE),
        help=f"the PostgreSQL database to create and drop ({DATABASE}, or "
        "$SUPPORTDESK_BENCH_CPU_DATABASE)",
    )
    parser.add_argument(
        "--profile", metavar="SCENARIO", choices=SCENARIOS, help="profile one scenario"
    )
    parser.add_argument(
        "--only",
        metavar="SCENARIO",
        choices=SCENARIOS,
        action="append",
        help="measure only these scenarios (and the trivial endpoint); writes no results",
    )
    args = parser.parse_args()
    iterations = args.iterations or (QUICK_ITERATIONS if args.quick else ITERATIONS)
    backend = "sqlite" if args.sqlite else "postgresql"
    # Session end needs a fresh active session per request, warm-ups included.
    sessions = WARMUP + iterations
    begun = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="supportdesk-bench-cpu-") as tmp:
        async with bench_database(args.sqlite, args.database_name) as url:
            await asyncio.to_thread(migrate.upgrade, url)
            t = time.perf_counter()
            if args.sqlite:
                path = Path(url.split("///", 1)[1])
                await asyncio.to_thread(seed_sqlite, path, args.customers, args.tickets, sessions)
            else:
                dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
                await seed_postgres(dsn, args.customers, args.tickets, sessions)
            seed_seconds = time.perf_counter() - t
            print(
                f"{backend}: seeded {args.tickets:,} tickets, {args.customers:,} customers "
                f"in {seed_seconds:.1f} s",
                flush=True,
            )
            async with running_app(url, Path(tmp)) as (app, client):
                fx = Fixture(
                    admin=await issue_key(app, "admin"),
                    agent=await issue_key(app, "agent"),
                    customers=args.customers,
                    tickets=args.tickets,
                    open_tickets=await open_ticket_ids(app, WARMUP + iterations),
                    today=datetime.now(UTC),
                )
                if args.profile:
                    await profile(client, args.profile, fx, iterations)
                    return 0
                figures: dict[str, Timing] = {}
                trivial: list[Timing] = []
                beside, _ = build_calls(TRIVIAL, max(1, iterations // BLOCKS), 0, fx)
                for name in [*(args.only or SCENARIOS), TRIVIAL]:
                    count = iterations * (TRIVIAL_FACTOR if name == TRIVIAL else 1)
                    pair = () if name == TRIVIAL else beside
                    timing = await measure(client, name, fx, count, pair)
                    print(
                        f"  {name}: {timing.cpu:.3f} ms CPU (blocks "
                        f"{', '.join(f'{b:.3f}' for b in timing.cpu_blocks)}"
                        + (
                            f"; paired ratios {', '.join(f'{r:.2f}' for r in timing.paired)}"
                            if timing.paired
                            else ""
                        )
                        + f"), {timing.wall:.3f} ms wall",
                        flush=True,
                    )
                    if name == TRIVIAL:
                        trivial.append(timing)
                    else:
                        figures[name] = timing

    # Both trivial runs' blocks together: the quietest of them is the denominator.
    figures[TRIVIAL] = Timing(
        tuple(b for t in trivial for b in t.cpu_blocks),
        sum(t.wall for t in trivial) / len(trivial),
    )
    base = figures[TRIVIAL].cpu
    rows = [
        {
            "scenario": name,
            "ms_cpu": round(figures[name].cpu, 3),
            "ratio_to_trivial": round(
                figures[name].ratio if figures[name].paired else figures[name].cpu / base, 2
            ),
            "ms_cpu_mean": round(figures[name].cpu_mean, 3),
            "ms_wall": round(figures[name].wall, 3),
        }
        for name in ([TRIVIAL, *args.only] if args.only else SCENARIOS)
    ]
    run_seconds = time.perf_counter() - begun
    print()
    print(
        f"CPU per request (time.process_time), in-process through the ASGI app, {backend}, "
        f"{args.tickets:,} tickets; per scenario {WARMUP} requests of warm-up, then "
        f"{iterations} in {BLOCKS} blocks (trivial endpoint: {iterations * TRIVIAL_FACTOR}, "
        f"first and last, and a block before and after each block of a scenario); ms CPU "
        f"is the quietest block's mean, a ratio the median of the blocks' ratios to the "
        f"trivial blocks around them"
    )
    print_table(rows)
    print(f"\nseeding {seed_seconds:.0f} s, whole run {run_seconds:.0f} s")
    if args.only:
        return 0
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / ("cpu-sqlite.json" if args.sqlite else "cpu.json")
    out.write_text(
        json.dumps(
            {
                "backend": backend,
                "tickets_seeded": args.tickets,
                "customers_seeded": args.customers,
                "iterations": iterations,
                "trivial_iterations": iterations * TRIVIAL_FACTOR,
                "warmup": WARMUP,
                "blocks": BLOCKS,
                "ms_cpu": "per request, the mean of the quietest block of requests",
                "ratio_to_trivial": (
                    "the median over the blocks of a block's CPU per request to that of the "
                    "trivial blocks run just before and after it"
                ),
                "trivial_first_ms_cpu_mean": round(trivial[0].cpu_mean, 3),
                "trivial_last_ms_cpu_mean": round(trivial[-1].cpu_mean, 3),
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "git_commit": git_commit(),
                "python": sys.version.split()[0],
                "cpus": os.cpu_count(),
                "seed_seconds": round(seed_seconds, 1),
                "run_seconds": round(run_seconds, 1),
                "scenarios": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
