"""Optimistic concurrency: ETag on read, If-Match on change, 412 when stale."""

from __future__ import annotations

import httpx
import pytest


@pytest.fixture
async def admin(headers_for) -> dict[str, str]:
    return dict(await headers_for("admin"))


async def stale_write_is_refused(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    url: str,
    first: dict[str, object],
    second: dict[str, object],
    field: str,
) -> None:
    read = await client.get(url, headers=headers)
    etag = read.headers["etag"]
    assert etag.startswith('"')
    mine = await client.patch(url, json=first, headers={**headers, "If-Match": etag})
    assert mine.status_code == 200, mine.text
    assert mine.headers["etag"] != etag
    theirs = await client.patch(url, json=second, headers={**headers, "If-Match": etag})
    assert theirs.status_code == 412
    assert theirs.headers["content-type"].startswith("application/problem+json")
    after = (await client.get(url, headers=headers)).json()
    assert after[field] == first[field]
    fresh = await client.patch(
        url, json=second, headers={**headers, "If-Match": mine.headers["etag"]}
    )
    assert fresh.status_code == 200
    unconditional = await client.patch(url, json=first, headers=headers)
    assert unconditional.status_code == 200


class TestIfMatch:
    async def test_tickets(self, client: httpx.AsyncClient, admin) -> None:
        customer = (
            await client.post("/api/v1/customers", json={"name": "E"}, headers=admin)
        ).json()
        ticket = (
            await client.post(
                "/api/v1/tickets",
                json={
                    "customer_id": customer["id"],
                    "category": "how_to",
                    "severity": "low",
                    "subject": "Original",
                    "description": "d",
                },
                headers=admin,
            )
        ).json()
        await stale_write_is_refused(
            client,
            admin,
            f"/api/v1/tickets/{ticket['id']}",
            {"subject": "Mine"},
            {"subject": "Theirs"},
            "subject",
        )

    async def test_customers(self, client: httpx.AsyncClient, admin) -> None:
        customer = (
            await client.post("/api/v1/customers", json={"name": "E"}, headers=admin)
        ).json()
        await stale_write_is_refused(
            client,
            admin,
            f"/api/v1/customers/{customer['id']}",
            {"name": "Mine"},
            {"name": "Theirs"},
            "name",
        )

    async def test_contracts(self, client: httpx.AsyncClient, admin) -> None:
        customer = (
            await client.post("/api/v1/customers", json={"name": "E"}, headers=admin)
        ).json()
        contract = (
            await client.post(
                "/api/v1/contracts",
                json={
                    "customer_id": customer["id"],
                    "kind": "maintenance",
                    "starts_on": "2026-01-01",
                },
                headers=admin,
            )
        ).json()
        await stale_write_is_refused(
            client,
            admin,
            f"/api/v1/contracts/{contract['id']}",
            {"ends_on": "2026-12-31"},
            {"ends_on": "2027-06-30"},
            "ends_on",
        )

    async def test_star_matches_any_version(self, client: httpx.AsyncClient, admin) -> None:
        customer = (
            await client.post("/api/v1/customers", json={"name": "E"}, headers=admin)
        ).json()
        response = await client.patch(
            f"/api/v1/customers/{customer['id']}",
            json={"name": "F"},
            headers={**admin, "If-Match": "*"},
        )
        assert response.status_code == 200
