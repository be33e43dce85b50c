"""API keys: shown once, stored hashed, revocable, admin-only."""

from __future__ import annotations

import hashlib

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from supportdesk.models import ApiKey


async def _customer(client: httpx.AsyncClient, headers: dict[str, str], name: str = "Maier") -> str:
    response = await client.post("/api/v1/customers", json={"name": name}, headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


class TestIssueKey:
    async def test_admin_issues_key_shown_once_and_stored_hashed(
        self, client: httpx.AsyncClient, headers_for, session: AsyncSession
    ) -> None:
        admin = await headers_for("admin")
        response = await client.post(
            "/api/v1/api-keys", json={"name": "console", "role": "agent"}, headers=admin
        )
        assert response.status_code == 201, response.text
        created = response.json()
        secret = created["key"]
        assert secret.startswith("sdk_") and len(secret) >= 40
        assert created["role"] == "agent" and created["customer_id"] is None
        assert secret.startswith(created["prefix"])

        read_back = await client.get(f"/api/v1/api-keys/{created['id']}", headers=admin)
        assert read_back.status_code == 200
        assert "key" not in read_back.json()
        listed = await client.get("/api/v1/api-keys", headers=admin)
        assert secret not in listed.text

        row = (await session.scalars(select(ApiKey).where(ApiKey.id == created["id"]))).one()
        assert row.key_hash == hashlib.sha256(secret.encode()).hexdigest()
        assert secret not in {row.key_hash, row.prefix, row.name}

        works = await client.get("/api/v1/customers", headers={"Authorization": f"Bearer {secret}"})
        assert works.status_code == 200

    async def test_keys_are_random(self, client: httpx.AsyncClient, headers_for) -> None:
        admin = await headers_for("admin")
        keys = set()
        for _ in range(3):
            response = await client.post(
                "/api/v1/api-keys", json={"name": "k", "role": "integration"}, headers=admin
            )
            keys.add(response.json()["key"])
        assert len(keys) == 3

    async def test_agent_cannot_create_keys(self, client: httpx.AsyncClient, headers_for) -> None:
        response = await client.post(
            "/api/v1/api-keys",
            json={"name": "x", "role": "admin"},
            headers=await headers_for("agent"),
        )
        assert response.status_code == 403
        assert response.headers["content-type"].startswith("application/problem+json")

    async def test_integration_and_customer_cannot_manage_keys(
        self, client: httpx.AsyncClient, headers_for
    ) -> None:
        admin = await headers_for("admin")
        customer_id = await _customer(client, admin)
        for headers in (
            await headers_for("integration"),
            await headers_for("customer", customer_id),
        ):
            assert (await client.get("/api/v1/api-keys", headers=headers)).status_code == 403

    async def test_customer_key_needs_customer_id(
        self, client: httpx.AsyncClient, headers_for
    ) -> None:
        response = await client.post(
            "/api/v1/api-keys",
            json={"name": "x", "role": "customer"},
            headers=await headers_for("admin"),
        )
        assert response.status_code == 422

    async def test_staff_key_cannot_be_bound(self, client: httpx.AsyncClient, headers_for) -> None:
        admin = await headers_for("admin")
        customer_id = await _customer(client, admin)
        response = await client.post(
            "/api/v1/api-keys",
            json={"name": "x", "role": "agent", "customer_id": customer_id},
            headers=admin,
        )
        assert response.status_code == 422

    async def test_customer_key_for_unknown_customer_is_404(
        self, client: httpx.AsyncClient, headers_for
    ) -> None:
        response = await client.post(
            "/api/v1/api-keys",
            json={"name": "x", "role": "customer", "customer_id": "cus_nope"},
            headers=await headers_for("admin"),
        )
        assert response.status_code == 404

    async def test_unknown_role_is_422(self, client: httpx.AsyncClient, headers_for) -> None:
        response = await client.post(
            "/api/v1/api-keys",
            json={"name": "x", "role": "root"},
            headers=await headers_for("admin"),
        )
        assert response.status_code == 422


class TestRevokeKey:
    async def test_revoked_key_gets_401_problem(
        self, client: httpx.AsyncClient, headers_for
    ) -> None:
        admin = await headers_for("admin")
        created = (
            await client.post(
                "/api/v1/api-keys", json={"name": "gone soon", "role": "agent"}, headers=admin
            )
        ).json()
        victim = {"Authorization": f"Bearer {created['key']}"}
        assert (await client.get("/api/v1/customers", headers=victim)).status_code == 200

        revoked = await client.delete(f"/api/v1/api-keys/{created['id']}", headers=admin)
        assert revoked.status_code == 204

        refused = await client.get("/api/v1/customers", headers=victim)
        assert refused.status_code == 401
        assert refused.headers["content-type"].startswith("application/problem+json")
        shown = (await client.get(f"/api/v1/api-keys/{created['id']}", headers=admin)).json()
        assert shown["revoked_at"] is not None

    async def test_revoking_twice_is_harmless(self, client: httpx.AsyncClient, headers_for) -> None:
        admin = await headers_for("admin")
        created = (
            await client.post(
                "/api/v1/api-keys", json={"name": "k", "role": "agent"}, headers=admin
            )
        ).json()
        for _ in range(2):
            response = await client.delete(f"/api/v1/api-keys/{created['id']}", headers=admin)
            assert response.status_code == 204

    async def test_revoking_unknown_key_is_404(
        self, client: httpx.AsyncClient, headers_for
    ) -> None:
        response = await client.delete("/api/v1/api-keys/key_nope", headers=await headers_for())
        assert response.status_code == 404
