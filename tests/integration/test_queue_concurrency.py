"""Claims under concurrency on PostgreSQL: every ticket once, nobody waits on a lock."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import live_admin_headers, live_client

COMPLETE = {
    "category": "operation",
    "severity": "normal",
    "subject": "s",
    "description": "d",
    "steps_to_reproduce": "1. 2. 3.",
    "environment": {"os": "Windows 11", "host_application": "ArchiCAD"},
}


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
class TestConcurrentClaimsOnPostgres:
    async def test_200_tickets_20_claimers_each_ticket_once_none_blocked(
        self, database_url: str, engine: AsyncEngine
    ) -> None:
        admin = await live_admin_headers(database_url)
        async with live_client(database_url, pool_size=30) as http:
            customer = (
                await http.post("/api/v1/customers", json={"name": "Busy"}, headers=admin)
            ).json()
            await http.post(
                f"/api/v1/customers/{customer['id']}/ledger/entries",
                json={"kind": "purchase", "units": 50},
                headers=admin,
            )
            created = []
            for _ in range(200):
                response = await http.post(
                    "/api/v1/tickets",
                    json={**COMPLETE, "customer_id": customer["id"]},
                    headers=admin,
                )
                assert response.json()["status"] == "open"
                created.append(response.json()["id"])
            first = (await http.get("/api/v1/queue", params={"limit": 1}, headers=admin)).json()
            locked_id = first["items"][0]["id"]

            claimed: list[str] = []

            async def claimer() -> None:
                while True:
                    response = await http.post("/api/v1/queue/claim", headers=admin)
                    if response.status_code == 204:
                        return
                    assert response.status_code == 200, response.text
                    claimed.append(response.json()["id"])

            # Another transaction holds the first ticket of the queue locked: claimers
            # must pass it over, not wait for it. A claimer that waited would hang here.
            async with engine.connect() as holder:
                await holder.execute(
                    text("SELECT id FROM tickets WHERE id = :id FOR UPDATE"), {"id": locked_id}
                )
                await asyncio.wait_for(asyncio.gather(*(claimer() for _ in range(20))), 120)
                await holder.rollback()

            assert locked_id not in claimed
            assert len(claimed) == len(set(claimed)) == 199
            last = await http.post("/api/v1/queue/claim", headers=admin)
            assert last.json()["id"] == locked_id
            claimed.append(locked_id)
            assert sorted(claimed) == sorted(created)
            for ticket_id in created[:5]:
                read = (await http.get(f"/api/v1/tickets/{ticket_id}", headers=admin)).json()
                assert read["status"] == "in_progress"
