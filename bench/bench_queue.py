"""Queue reads and claims at scale on PostgreSQL.

Seeds a database of its own with 10,000 customers (a fifth with a maintenance
contract, a third with prepaid units) and 1,000,000 tickets in all states (bulk COPY,
not requests), starts `supportdesk serve --workers 2`, and measures p50/p99 of
`GET /api/v1/queue?limit=50` (8 concurrent readers) and of `POST /api/v1/queue/claim`
(8 concurrent claimers). Writes bench/results/queue.json.

    python bench/bench_queue.py [--tickets 1000000] [--reads 400] [--claims 400]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from datetime import UTC, date, datetime

import asyncpg
import httpx
from common import RESULTS, cli, postgres_database, running_server, service_env
from seeding import CONTRACT_COLUMNS, CUSTOMER_COLUMNS, TICKET_COLUMNS, copy_rows, ticket_rows

DATABASE = "supportdesk_bench_queue"


async def _seed(dsn: str, customers: int, tickets: int) -> None:
    rng = random.Random(7)
    now = datetime.now(UTC)
    conn = await asyncpg.connect(dsn)
    try:
        balances = [rng.choice([0, 0, 5, 40]) for _ in range(customers)]
        customer_rows = [
            (f"cus_{i:026d}", f"Customer {i}", None, balances[i], 0, None, now, now)
            for i in range(customers)
        ]
        # The group each customer stands in: a contract for every fifth, else the balance.
        groups = [0 if i % 5 == 0 else (1 if balances[i] > 0 else 2) for i in range(customers)]
        await copy_rows(conn, "customers", CUSTOMER_COLUMNS, customer_rows)
        contracts = [
            (
                f"ctr_{i:026d}",
                f"cus_{i:026d}",
                "maintenance",
                date(2020, 1, 1),
                None if i % 2 else date(2030, 12, 31),
                now,
                now,
            )
            for i in range(0, customers, 5)
        ]
        await copy_rows(conn, "contracts", CONTRACT_COLUMNS, contracts)
        rows = ticket_rows(tickets, customers, now, lambda owner: groups[owner])
        await copy_rows(conn, "tickets", TICKET_COLUMNS, rows)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def _timed(
    http: httpx.AsyncClient,
    count: int,
    concurrency: int,
    method: str,
    url: str,
    headers: dict[str, str],
) -> tuple[list[float], dict[int, int]]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    remaining = count

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            response = await http.request(method, url, headers=headers)
            latencies.append(time.perf_counter() - started)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, statuses


def _summary(latencies: list[float], statuses: dict[int, int], seconds: float) -> dict[str, object]:
    q = statistics.quantiles(latencies, n=100)
    return {
        "requests": len(latencies),
        "requests_per_second": round(len(latencies) / seconds, 1),
        "p50_ms": round(q[49] * 1000, 2),
        "p99_ms": round(q[98] * 1000, 2),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--reads", type=int, default=400)
    parser.add_argument("--claims", type=int, default=400)
    args = parser.parse_args()

    async with postgres_database(DATABASE) as dsn:
        env = service_env(dsn)
        cli(env, "db", "upgrade")
        started = time.perf_counter()
        await _seed(dsn, args.customers, args.tickets)
        seed_seconds = time.perf_counter() - started
        headers = {"Authorization": f"Bearer {cli(env, 'api-key', 'create', '--role', 'agent')}"}
        with running_server(env, workers=2) as (base, _):
            async with httpx.AsyncClient(base_url=base, timeout=60) as http:
                await _timed(http, 20, 4, "GET", "/api/v1/queue?limit=50", headers)  # warm-up
                t = time.perf_counter()
                reads = await _timed(http, args.reads, 8, "GET", "/api/v1/queue?limit=50", headers)
                read_summary = _summary(*reads, time.perf_counter() - t)
                t = time.perf_counter()
                claims = await _timed(http, args.claims, 8, "POST", "/api/v1/queue/claim", headers)
                claim_summary = _summary(*claims, time.perf_counter() - t)
    result = {
        "tickets": args.tickets,
        "customers": args.customers,
        "seed_seconds": round(seed_seconds, 1),
        "queue_read_limit_50": read_summary,
        "claim": claim_summary,
    }
    print(json.dumps(result, indent=2))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "queue.json").write_text(json.dumps(result, indent=2) + "\n")
    failed = [
        status
        for summary in (read_summary, claim_summary)
        for status in summary["statuses"]  # type: ignore[attr-defined]
        if not status.startswith("2")
    ]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
