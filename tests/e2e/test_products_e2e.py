"""Products: PUT by code creates or replaces; everyone with a key may read."""

from __future__ import annotations

import httpx


class TestPutProduct:
    async def test_put_creates_then_replaces(self, client: httpx.AsyncClient, headers_for) -> None:
        admin = await headers_for("admin")
        created = await client.put(
            "/api/v1/products/backup-addon",
            json={"name": "Backup add-on", "latest_version": "2.9.0"},
            headers=admin,
        )
        assert created.status_code == 201, created.text
        replaced = await client.put(
            "/api/v1/products/backup-addon",
            json={"name": "Backup add-on", "latest_version": "2.10.0"},
            headers=admin,
        )
        assert replaced.status_code == 200
        read = (await client.get("/api/v1/products/backup-addon", headers=admin)).json()
        assert read["latest_version"] == "2.10.0"
        listed = (await client.get("/api/v1/products", headers=admin)).json()
        assert [p["code"] for p in listed["items"]] == ["backup-addon"]

    async def test_agent_may_not_write_products(
        self, client: httpx.AsyncClient, headers_for
    ) -> None:
        response = await client.put(
            "/api/v1/products/x", json={"name": "X"}, headers=await headers_for("agent")
        )
        assert response.status_code == 403

    async def test_integration_may_write_and_customer_may_read(
        self, client: httpx.AsyncClient, headers_for
    ) -> None:
        response = await client.put(
            "/api/v1/products/crm-sync",
            json={"name": "CRM sync"},
            headers=await headers_for("integration"),
        )
        assert response.status_code == 201
        admin = await headers_for("admin")
        customer = (
            await client.post("/api/v1/customers", json={"name": "C"}, headers=admin)
        ).json()
        reader = await headers_for("customer", customer["id"])
        assert (await client.get("/api/v1/products/crm-sync", headers=reader)).status_code == 200

    async def test_bad_version_and_code_are_422(
        self, client: httpx.AsyncClient, headers_for
    ) -> None:
        admin = await headers_for("admin")
        bad_version = await client.put(
            "/api/v1/products/x", json={"name": "X", "latest_version": "latest"}, headers=admin
        )
        assert bad_version.status_code == 422
        bad_code = await client.put("/api/v1/products/-x", json={"name": "X"}, headers=admin)
        assert bad_code.status_code == 422

    async def test_unknown_product_is_404(self, client: httpx.AsyncClient, headers_for) -> None:
        response = await client.get("/api/v1/products/none", headers=await headers_for())
        assert response.status_code == 404
