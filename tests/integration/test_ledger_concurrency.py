"""The ledger under concurrent load, through the HTTP API, on a database that commits."""

from __future__ import annotations

import asyncio
import random

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import live_admin_headers, live_client
from supportdesk.models import LedgerEntry

PROBLEM = "application/problem+json"


async def _customer_with_units(http: httpx.AsyncClient, admin: dict[str, str], units: int) -> str:
    customer = (await http.post("/api/v1/customers", json={"name": "Load"}, headers=admin)).json()
    url = f"/api/v1/customers/{customer['id']}/ledger/entries"
    remaining = units
    while remaining:
        package = min(remaining, 100)
        bought = await http.post(url, json={"kind": "purchase", "units": package}, headers=admin)
        assert bought.status_code == 201, bought.text
        remaining -= package
    return str(customer["id"])


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
class TestConcurrentDebitsOnPostgres:
    async def test_50_clients_10000_debits_never_overdraw(
        self, database_url: str, engine: AsyncEngine
    ) -> None:
        admin = await live_admin_headers(database_url)
        rng = random.Random(20261121)
        plan = [rng.randint(1, 8) for _ in range(10_000)]
        queue: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
        for index, units in enumerate(plan):
            queue.put_nowait((index, units))
        answers: list[httpx.Response] = []

        async with live_client(database_url, pool_size=30) as http:
            customer_id = await _customer_with_units(http, admin, 1000)
            url = f"/api/v1/customers/{customer_id}/ledger/entries"

            async def client(number: int) -> None:
                while not queue.empty():
                    index, units = queue.get_nowait()
                    headers = dict(admin)
                    if index % 2:  # half of them through the idempotency path
                        headers["Idempotency-Key"] = f"debit-{index}"
                    answers.append(
                        await http.post(
                            url, json={"kind": "debit", "units": units}, headers=headers
                        )
                    )

            await asyncio.gather(*(client(n) for n in range(50)))
            ledger = (
                await http.get(f"/api/v1/customers/{customer_id}/ledger", headers=admin)
            ).json()

        assert len(answers) == 10_000
        assert not [a for a in answers if a.status_code >= 500]
        for refused in (a for a in answers if a.status_code != 201):
            assert 400 <= refused.status_code < 500
            assert refused.headers["content-type"].startswith(PROBLEM)
        accepted = [a.json() for a in answers if a.status_code == 201]

        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(LedgerEntry).where(LedgerEntry.customer_id == customer_id)
                )
            ).all()
        entries = {row.id: row for row in rows}
        debits = [row for row in rows if row.kind == "debit"]
        assert len(debits) == len(accepted)
        assert ledger["balance"] == sum(row.change for row in rows)
        assert ledger["balance"] == 0  # 10,000 debits of 1-8 units exceed 1,000 units
        assert sum(row.units_debited for row in debits) == 1000
        assert all(row.balance_after >= 0 for row in rows)
        # Every unit taken left a distinct balance behind: the changes were serialised.
        takers = [row for row in debits if row.change < 0]
        assert len({row.balance_after for row in takers}) == len(takers)
        for answer in accepted:
            row = entries[answer["id"]]
            assert answer["units_debited"] == row.units_debited == -row.change
            assert answer["units_debited"] + answer["units_billed_at_list_price"] == row.units
            assert answer["balance_after"] == row.balance_after


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
class TestConcurrentWritersOnSqlite:
    async def test_8_writers_never_see_database_is_locked(self, database_url: str) -> None:
        admin = await live_admin_headers(database_url)
        async with live_client(database_url, pool_size=8) as http:
            customer_id = await _customer_with_units(http, admin, 200)
            url = f"/api/v1/customers/{customer_id}/ledger/entries"

            async def writer(number: int) -> list[int]:
                statuses = []
                for i in range(25):
                    body = (
                        {"kind": "debit", "units": 1 + (i % 3)}
                        if i % 5
                        else {"kind": "purchase", "units": 2}
                    )
                    response = await http.post(url, json=body, headers=admin)
                    statuses.append(response.status_code)
                    if response.status_code != 201:
                        raise AssertionError(response.text)
                return statuses

            results = await asyncio.gather(*(writer(n) for n in range(8)))
            entries = []
            cursor = None
            while True:
                params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
                page = (await http.get(url, params=params, headers=admin)).json()
                entries += page["items"]
                cursor = page["next_cursor"]
                if cursor is None:
                    break
            ledger = (
                await http.get(f"/api/v1/customers/{customer_id}/ledger", headers=admin)
            ).json()
        assert all(status == 201 for statuses in results for status in statuses)
        assert len(entries) == 8 * 25 + 2  # and the two purchases of the setup
        assert ledger["balance"] == sum(e["change"] for e in entries)
