"""The audit trail: who changed what, through the API, with the acting key."""

from __future__ import annotations

import httpx
import pytest

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture
async def admin(headers_for) -> dict[str, str]:
    return dict(await headers_for("admin"))


async def trail(
    client: httpx.AsyncClient, headers: dict[str, str], object_type: str, object_id: str
) -> list[dict[str, object]]:
    response = await client.get(
        "/api/v1/audit",
        params={"object_type": object_type, "object_id": object_id, "limit": 100},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


class TestAuditTrail:
    async def test_ticket_changes_with_the_acting_key(
        self, client: httpx.AsyncClient, admin, headers_for
    ) -> None:
        agent = await headers_for("agent")
        customer = (
            await client.post("/api/v1/customers", json={"name": "A"}, headers=admin)
        ).json()
        await client.post(
            f"/api/v1/customers/{customer['id']}/ledger/entries",
            json={"kind": "purchase", "units": 5},
            headers=admin,
        )
        ticket = (
            await client.post(
                "/api/v1/tickets",
                json={
                    "customer_id": customer["id"],
                    "category": "how_to",
                    "severity": "low",
                    "subject": "How?",
                    "description": "Show me",
                },
                headers=admin,
            )
        ).json()
        await client.patch(
            f"/api/v1/tickets/{ticket['id']}", json={"severity": "high"}, headers=agent
        )
        await client.post(
            f"/api/v1/tickets/{ticket['id']}/transitions", json={"to": "in_progress"}, headers=agent
        )
        entries = await trail(client, agent, "ticket", str(ticket["id"]))
        actions = [e["action"] for e in entries]
        assert actions[0] == "create"
        assert "transition" in actions
        update = next(e for e in entries if e["action"] == "update")
        assert update["changes"]["severity"] == {"before": "low", "after": "high"}
        assert update["actor_role"] == "agent"
        assert update["actor_key_id"] is not None
        moved = next(e for e in entries if e["action"] == "transition")
        assert moved["changes"]["status"] == {"before": "open", "after": "in_progress"}

    async def test_ledger_contracts_and_keys_are_audited_without_secrets(
        self, client: httpx.AsyncClient, admin
    ) -> None:
        customer = (
            await client.post("/api/v1/customers", json={"name": "B"}, headers=admin)
        ).json()
        entry = (
            await client.post(
                f"/api/v1/customers/{customer['id']}/ledger/entries",
                json={"kind": "purchase", "units": 5},
                headers=admin,
            )
        ).json()
        assert (await trail(client, admin, "ledger_entry", entry["id"]))[0]["action"] == "create"
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
        await client.patch(
            f"/api/v1/contracts/{contract['id']}", json={"ends_on": "2026-12-31"}, headers=admin
        )
        contract_trail = await trail(client, admin, "contract", contract["id"])
        assert [e["action"] for e in contract_trail] == ["create", "update"]
        assert contract_trail[1]["changes"]["ends_on"] == {"before": None, "after": "2026-12-31"}
        key = (
            await client.post(
                "/api/v1/api-keys", json={"name": "bot", "role": "agent"}, headers=admin
            )
        ).json()
        await client.delete(f"/api/v1/api-keys/{key['id']}", headers=admin)
        key_trail = await trail(client, admin, "api_key", key["id"])
        assert [e["action"] for e in key_trail] == ["create", "revoke"]
        text = str(key_trail)
        assert key["key"] not in text
        assert "key_hash" not in text

    async def test_only_staff_read_the_trail(
        self, client: httpx.AsyncClient, admin, headers_for
    ) -> None:
        customer = (
            await client.post("/api/v1/customers", json={"name": "C"}, headers=admin)
        ).json()
        for role, status in (("integration", 403), ("agent", 200)):
            response = await client.get("/api/v1/audit", headers=await headers_for(role))
            assert response.status_code == status
        own = await headers_for("customer", customer["id"])
        assert (await client.get("/api/v1/audit", headers=own)).status_code == 403
        bad = await client.get("/api/v1/audit", params={"object_type": "planet"}, headers=admin)
        assert bad.status_code == 422
