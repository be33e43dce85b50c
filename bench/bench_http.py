"""`make bench`: the service under HTTP load at the scale of a large support desk.

1. Seeds a PostgreSQL database of its own in bulk (COPY, not requests): 10,000 customers,
   each with a unit account and half of them with a maintenance contract, 1,000,000
   tickets in all states, 200,000 ledger entries (a purchase and nineteen debits per
   customer, the balances equal to their sums), 100,000 session logs (ten per customer,
   each billed by one of those debits) and 20,000 active remote sessions to end.
2. Starts the service as production does (`supportdesk serve --workers 2`) and drives
   it with `wrk` from a separate process (installed from Debian's packages if missing),
   one scenario after the other at the same concurrency.
3. Measures two ceilings with the same `wrk` at the same concurrency: a trivial endpoint
   of the same app (`/health/live`, through every middleware: the framework's limit
   here) and a bare ASGI app doing one raw asyncpg INSERT per request in its own
   transaction (bench/raw_insert_app.py: the database's limit for a committed row).
4. Prints a table — requests/s, p50, p99, errors, and each scenario as a ratio to its
   ceiling (reads to the trivial endpoint, writes to the raw insert) — and writes it to
   bench/results/http.json.

    python bench/bench_http.py [--seconds 10] [--connections 16] [--tickets 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
from common import RESULTS, cli, free_port, postgres_database, running_server, service_env
from raw_insert_app import DDL
from seeding import (
    REMOTE_SESSION_COLUMNS,
    TICKET_COLUMNS,
    copy_rows,
    customer_rows,
    remote_session_rows,
    ticket_rows,
)

DATABASE = "supportdesk_bench"
HERE = Path(__file__).resolve().parent
WRK_THREADS = 2


async def _seed_customers(conn: asyncpg.Connection, customers: int, now: datetime) -> None:
    """Customers, contracts, ledger entries and session logs, the balances consistent."""
    for table, columns, rows in customer_rows(customers, now).tables():
        await copy_rows(conn, table, columns, rows)


async def _seed_tickets(
    conn: asyncpg.Connection,
    customers: int,
    tickets: int,
    now: datetime,
) -> None:
    # Every other customer has a maintenance contract (group 0), the rest units (group 1).
    rows = ticket_rows(tickets, customers, now, lambda owner: 0 if owner % 2 == 0 else 1)
    await copy_rows(conn, "tickets", TICKET_COLUMNS, rows)


async def _seed_remote_sessions(
    conn: asyncpg.Connection,
    customers: int,
    count: int,
    now: datetime,
) -> None:
    rows = remote_session_rows(customers, count, now)
    await copy_rows(conn, "remote_sessions", REMOTE_SESSION_COLUMNS, rows)


async def seed(dsn: str, customers: int, tickets: int, remote_sessions: int) -> dict[str, int]:
    now = datetime.now(UTC)
    conn = await asyncpg.connect(dsn)
    try:
        await _seed_customers(conn, customers, now)
        await _seed_tickets(conn, customers, tickets, now)
        await _seed_remote_sessions(conn, customers, remote_sessions, now)
        await conn.execute(DDL)
        await conn.execute("ANALYZE")
        counts = {}
        for table in (
            "customers",
            "contracts",
            "tickets",
            "ledger_entries",
            "session_logs",
            "remote_sessions",
        ):
            counts[table] = int(await conn.fetchval(f"SELECT count(*) FROM {table}"))  # noqa: S608
        bad = await conn.fetchval(
            "SELECT count(*) FROM customers c WHERE unit_balance <> "
            "(SELECT coalesce(sum(change), 0) FROM ledger_entries e WHERE e.customer_id = c.id)"
        )
        if bad:
            raise RuntimeError(f"{bad} seeded balances differ from the sum of their entries")
        return counts
    finally:
        await conn.close()


# --------------------------------------------------------------------------- wrk

LUA_COMMON = """
local counter = 0
local index = 0
function setup(thread)
  thread:set("tid", index)
  index = index + 1
end
function init(args)
  math.randomseed(1000 + tid * 7919)
end
function done(summary, latency, requests)
  local e = summary.errors
  local f = io.open(os.getenv("WRK_OUT"), "w")
  f:write(string.format(
    '{"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"status_errors":%d,"socket_errors":%d}',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
  f:close()
end
"""


@dataclass(frozen=True)
class Scenario:
    name: str
    ceiling: str  # "trivial" or "insert"
    method: str
    key: str  # which API key: admin, agent or none
    path: str  # a Lua expression for the path
    body: str = "nil"  # a Lua expression for the body, or nil
    connections: int | None = None  # None: the run's concurrency

    def lua(self, keys: dict[str, str], customers: int, tickets: int) -> str:
        headers = ['wrk.headers["Accept"] = "application/json"']
        if self.key != "none":
            headers.append(f'wrk.headers["Authorization"] = "Bearer {keys[self.key]}"')
        if self.body != "nil":
            headers.append('wrk.headers["Content-Type"] = "application/json"')
        return (
            LUA_COMMON
            + "\n".join(headers)
            + f"""
local CUSTOMERS = {customers}
local TICKETS = {tickets}
local THREADS = {WRK_THREADS}
local function customer() return string.format("cus_%026d", math.random(0, CUSTOMERS - 1)) end
local function ticket() return string.format("tkt_%026d", math.random(0, TICKETS - 1)) end
request = function()
  counter = counter + 1
  return wrk.format("{self.method}", {self.path}, nil, {self.body})
end
"""
        )


SCENARIOS = [
    Scenario("create ticket", "insert", "POST", "admin", '"/api/v1/tickets"',
             """string.format('{"customer_id":"%s","category":"how_to","severity":"normal",'
             .. '"subject":"Export to PDF fails","description":"Since the update the export '
             .. 'stops with an error.","product":"archicad-addon","addon_version":"4.2.1"}',
             customer())"""),
    Scenario("read ticket", "trivial", "GET", "admin", '"/api/v1/tickets/" .. ticket()'),
    Scenario("list tickets (filters)", "trivial", "GET", "admin",
             'string.format("/api/v1/tickets?customer_id=%s&status=closed&limit=20", customer())'),
    Scenario("queue read", "trivial", "GET", "agent", '"/api/v1/queue?limit=50"'),
    Scenario("queue read, 2 clients", "trivial", "GET", "agent", '"/api/v1/queue?limit=50"',
             connections=2),
    Scenario("claim", "insert", "POST", "agent", '"/api/v1/queue/claim"'),
    Scenario("ledger debit", "insert", "POST", "admin",
             'string.format("/api/v1/customers/%s/ledger/entries", customer())',
             """'{"kind":"debit","units":1,"reference":"bench"}'"""),
    Scenario("session end", "insert", "POST", "agent",
             'string.format("/api/v1/remote-sessions/rs_%026d/end", tid + (counter - 1) * THREADS)',
             """'{"notes":"Lizenzserver neu gestartet","billable":true}'"""),
    Scenario("statement", "trivial", "GET", "admin",
             'string.format("/api/v1/customers/%s/statement?from=2025-01-01&to=2026-12-31",'
             ' customer())'),
]  # fmt: skip
TRIVIAL = Scenario("trivial endpoint", "ceiling", "GET", "none", '"/health/live"')
RAW_INSERT = Scenario(
    "raw asyncpg insert", "ceiling", "POST", "none", '"/"', """'{"kind":"debit","units":1}'"""
)


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk is missing; installing it from Debian's packages", flush=True)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run([*sudo, "apt-get", "install", "-y", "-q", "wrk"], check=True)
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk could not be installed")
    return found


def run_wrk(
    wrk: str, base: str, scenario: Scenario, script: str, seconds: float, connections: int
) -> dict[str, float]:
    threads = min(WRK_THREADS, connections)
    with tempfile.TemporaryDirectory() as tmp:
        lua = Path(tmp) / "scenario.lua"
        out = Path(tmp) / "out.json"
        lua.write_text(script)
        done = subprocess.run(
            [
                wrk,
                f"-t{threads}",
                f"-c{connections}",
                f"-d{int(seconds)}s",
                "--timeout",
                "30s",
                "-s",
                str(lua),
                base,
            ],
            env={**os.environ, "WRK_OUT": str(out)},
            capture_output=True,
            text=True,
            timeout=seconds + 60,
        )
        if done.returncode != 0 or not out.exists():
            raise RuntimeError(f"wrk failed: {done.stderr or done.stdout}")
        raw = json.loads(out.read_text())
    seconds_run = raw["duration_us"] / 1e6
    return {
        "requests": raw["requests"],
        "requests_per_second": round(raw["requests"] / seconds_run, 1),
        "p50_ms": round(raw["p50_us"] / 1000, 2),
        "p99_ms": round(raw["p99_us"] / 1000, 2),
        "errors": raw["status_errors"] + raw["socket_errors"],
        "connections": connections,
    }


def raw_insert_server(dsn: str, env: dict[str, str], workers: int) -> subprocess.Popen[bytes]:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "raw_insert_app:app",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=HERE,
        env={**env, "SUPPORTDESK_BENCH_DSN": dsn},
    )
    process.base = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.post(process.base, content=b"{}", timeout=1).status_code == 201:  # type: ignore[attr-defined]
                return process
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("the raw insert server did not start")
        time.sleep(0.1)


def print_table(rows: list[dict[str, object]]) -> None:
    header = (
        f"{'scenario':<24}{'conns':>6}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
        f"  {'ratio to ceiling':<28}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        ratio = row.get("ratio")
        shown = "" if ratio is None else f"{ratio:.0%} of {row['ceiling']}"
        print(
            f"{row['scenario']!s:<24}{row['connections']!s:>6}{row['requests_per_second']!s:>9}{row['p50_ms']!s:>9}"
            f"{row['p99_ms']!s:>9}{row['errors']!s:>8}  {shown:<28}"
        )


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--remote-sessions", type=int, default=20_000)
    parser.add_argument("--only", help="comma-separated scenario names to run")
    args = parser.parse_args()
    wrk = ensure_wrk()
    begun = time.perf_counter()
    pool_size = max(4, args.connections // args.workers + 2)

    async with postgres_database(DATABASE) as dsn:
        env = service_env(dsn, SUPPORTDESK_DATABASE_POOL_SIZE=str(pool_size))
        cli(env, "db", "upgrade")
        t = time.perf_counter()
        counts = await seed(dsn, args.customers, args.tickets, args.remote_sessions)
        seed_seconds = time.perf_counter() - t
        print(f"seeded in {seed_seconds:.1f} s: {counts}", flush=True)
        keys = {
            "admin": cli(env, "api-key", "create", "--role", "admin", "--name", "bench admin"),
            "agent": cli(env, "api-key", "create", "--role", "agent", "--name", "bench agent"),
        }
        wanted = set(args.only.split(",")) if args.only else None
        results: dict[str, dict[str, float]] = {}

        def measure(base: str, scenario: Scenario) -> None:
            script = scenario.lua(keys, args.customers, args.tickets)
            results[scenario.name] = run_wrk(
                wrk, base, scenario, script, args.seconds, scenario.connections or args.connections
            )
            print(f"  {scenario.name}: {results[scenario.name]}", flush=True)

        with running_server(env, workers=args.workers) as (base, _):
            # Warm both workers' pools and caches before anything is measured.
            run_wrk(wrk, base, TRIVIAL, TRIVIAL.lua(keys, 1, 1), 2, args.connections)
            measure(base, TRIVIAL)
            for scenario in SCENARIOS:
                if wanted is None or scenario.name in wanted:
                    measure(base, scenario)
        raw = raw_insert_server(dsn, env, args.workers)
        try:
            measure(raw.base, RAW_INSERT)  # type: ignore[attr-defined]
        finally:
            raw.terminate()
            raw.wait(timeout=30)

    ceilings = {"trivial": results[TRIVIAL.name], "insert": results[RAW_INSERT.name]}
    rows: list[dict[str, object]] = []
    for name, ceiling_name in (
        (TRIVIAL.name, None),
        (RAW_INSERT.name, None),
        *((s.name, s.ceiling) for s in SCENARIOS if s.name in results),
    ):
        row: dict[str, object] = {"scenario": name, **results[name]}
        if ceiling_name is not None:
            ceiling = ceilings[ceiling_name]
            row["ceiling"] = "trivial endpoint" if ceiling_name == "trivial" else "raw insert"
            row["ratio"] = round(
                results[name]["requests_per_second"] / ceiling["requests_per_second"], 3
            )
        rows.append(row)
    total_seconds = time.perf_counter() - begun
    print()
    print(
        f"wrk -t{WRK_THREADS} -c{args.connections} -d{args.seconds:g}s per scenario; "
        f"supportdesk serve --workers {args.workers} (pool {pool_size} per worker); "
        f"PostgreSQL; {os.cpu_count()} CPUs shared by everything"
    )
    print_table(rows)
    print(f"\nseeding {seed_seconds:.0f} s, whole run {total_seconds:.0f} s")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "http.json").write_text(
        json.dumps(
            {
                "connections": args.connections,
                "wrk_threads": WRK_THREADS,
                "seconds_per_scenario": args.seconds,
                "workers": args.workers,
                "pool_size_per_worker": pool_size,
                "seeded": counts,
                "seed_seconds": round(seed_seconds, 1),
                "run_seconds": round(total_seconds, 1),
                "scenarios": rows,
            },
            indent=2,
        )
        + "\n"
    )
    return 1 if any(row["errors"] for row in rows) else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
