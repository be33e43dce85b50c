"""A statement for a customer with 100,000 sessions: time and server memory.

Seeds a PostgreSQL database of its own (bulk COPY) with one customer, 100,000 billed
session logs and their ledger debits, starts `supportdesk serve` (one worker, so the
measured process is the one answering) and fetches the statement as JSON, CSV and
PDF. Reports seconds, body size and the server's peak resident memory (VmHWM) above
its level before the first statement. Writes bench/results/statement.json.

    python bench/bench_statement.py [--sessions 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
from common import RESULTS, cli, memory_kib, postgres_database, running_server, service_env
from seeding import LEDGER_COLUMNS, SESSION_LOG_COLUMNS, copy_rows, ledger_row, session_log_row

DATABASE = "supportdesk_bench_statement"


async def _seed(dsn: str, sessions: int) -> None:
    now = datetime.now(UTC)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO customers (id, name, unit_balance, last_balance_change, created_at, "
            "updated_at) VALUES ('cus_bench', 'Fa. Walter Maier GmbH', 0, 0, $1, $1)",
            now,
        )
        logs, entries = [], []
        for i in range(sessions):
            started = now - timedelta(days=20) + timedelta(seconds=10 * i)
            seconds = 300 + (i * 37) % 3300
            units = -(-seconds // 900)
            log_id, entry_id = f"sl_{i:026d}", f"led_{i:026d}"
            partner = f"Fa. Walter Maier GmbH – PC {i % 40}"
            # The account is empty: every session is billed at list price.
            logs.append(
                session_log_row(
                    log_id,
                    "cus_bench",
                    partner,
                    started,
                    seconds,
                    units,
                    entry_id,
                    at_list_price=True,
                )
            )
            entries.append(
                ledger_row(
                    entry_id,
                    "cus_bench",
                    "debit",
                    units,
                    0,
                    started,
                    cause=("session", log_id),
                    at_list_price=True,
                )
            )
        await copy_rows(conn, "session_logs", SESSION_LOG_COLUMNS, logs)
        await copy_rows(conn, "ledger_entries", LEDGER_COLUMNS, entries)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=100_000)
    args = parser.parse_args()
    today = datetime.now(UTC).date()
    params = {"from": (today - timedelta(days=40)).isoformat(), "to": today.isoformat()}
    results: dict[str, object] = {"sessions": args.sessions}
    async with postgres_database(DATABASE) as dsn:
        env = service_env(dsn)
        cli(env, "db", "upgrade")
        await _seed(dsn, args.sessions)
        key = cli(env, "api-key", "create", "--role", "agent")
        with running_server(env) as (base, server):
            async with httpx.AsyncClient(base_url=base, timeout=600) as http:
                baseline = memory_kib(server.pid, "VmRSS")
                results["server_rss_before_mib"] = round(baseline / 1024, 1)
                for fmt in ("json", "csv", "pdf"):
                    started = time.perf_counter()
                    size = 0
                    async with http.stream(
                        "GET",
                        "/api/v1/customers/cus_bench/statement",
                        params={**params, "format": fmt},
                        headers={"Authorization": f"Bearer {key}"},
                    ) as response:
                        assert response.status_code == 200, await response.aread()
                        async for chunk in response.aiter_bytes():
                            size += len(chunk)
                    results[fmt] = {
                        "seconds": round(time.perf_counter() - started, 2),
                        "bytes": size,
                        "server_peak_rss_growth_mib": round(
                            (memory_kib(server.pid, "VmHWM") - baseline) / 1024, 1
                        ),
                    }
    print(json.dumps(results, indent=2))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "statement.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
