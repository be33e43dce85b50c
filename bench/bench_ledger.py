"""Ledger debits per second on PostgreSQL, through the HTTP API, with concurrent clients.

Starts the service the way production would (`supportdesk serve --workers 2`) on a
database of its own, buys units for one account and lets N clients (default 32) send
debits of 1-8 units at it for a fixed time. Prints debits/s, p50, p99 and errors, checks
afterwards that the balance equals the sum of the entries, and writes
bench/results/ledger.json.

    python bench/bench_ledger.py [--clients 32] [--seconds 20] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time

import httpx
from common import RESULTS, cli, postgres_database, running_server, service_env

DATABASE = "supportdesk_bench_ledger"


async def _load(
    base: str, admin: dict[str, str], clients: int, seconds: float
) -> dict[str, object]:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as http:
        customer = (
            await http.post("/api/v1/customers", json={"name": "Bench"}, headers=admin)
        ).json()
        url = f"/api/v1/customers/{customer['id']}/ledger/entries"
        bought = await http.post(url, json={"kind": "purchase", "units": 100_000}, headers=admin)
        assert bought.status_code == 201, bought.text
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        deadline = time.perf_counter() + seconds

        async def client(number: int) -> None:
            rng = random.Random(number)
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                response = await http.post(
                    url, json={"kind": "debit", "units": rng.randint(1, 8)}, headers=admin
                )
                latencies.append(time.perf_counter() - started)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(client(n) for n in range(clients)))
        elapsed = time.perf_counter() - started
        ledger = (
            await http.get(f"/api/v1/customers/{customer['id']}/ledger", headers=admin)
        ).json()
        total = 0
        cursor = None
        while True:
            params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
            page = (await http.get(url, params=params, headers=admin)).json()
            total += sum(item["change"] for item in page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                break
    quantiles = statistics.quantiles(latencies, n=100)
    return {
        "clients": clients,
        "seconds": round(elapsed, 2),
        "debits": len(latencies),
        "debits_per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(quantiles[49] * 1000, 2),
        "p99_ms": round(quantiles[98] * 1000, 2),
        "errors": sum(n for status, n in statuses.items() if status != 201),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "balance": ledger["balance"],
        "balance_equals_sum_of_entries": ledger["balance"] == total,
    }


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    async with postgres_database(DATABASE) as dsn:
        env = service_env(
            dsn, SUPPORTDESK_DATABASE_POOL_SIZE=str(max(4, args.clients // args.workers + 2))
        )
        cli(env, "db", "upgrade")
        admin = {"Authorization": f"Bearer {cli(env, 'api-key', 'create', '--role', 'admin')}"}
        with running_server(env, workers=args.workers) as (base, _):
            result = await _load(base, admin, args.clients, args.seconds)
    result["workers"] = args.workers
    header = ("clients", "debits", "debits/s", "p50 ms", "p99 ms", "errors")
    print(f"{'scenario':<14}" + "".join(f"{h:>10}" for h in header))
    keys = ("clients", "debits", "debits_per_second", "p50_ms", "p99_ms", "errors")
    print(f"{'ledger debit':<14}" + "".join(f"{result[k]!s:>10}" for k in keys))
    print(f"balance equals the sum of entries: {result['balance_equals_sum_of_entries']}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ledger.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["errors"] == 0 and result["balance_equals_sum_of_entries"] else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
