"""Customers and contacts over HTTP, including what a customer-bound key may see."""

from __future__ import annotations

import httpx


async def create_customer(
    client: httpx.AsyncClient, headers: dict[str, str], **fields: object
) -> dict[str, object]:
    response = await client.post(
        "/api/v1/customers", json={"name": "Maier", **fields}, headers=headers
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


class TestCreateCustomer:
    async def test_create_and_read_back(self, client: httpx.AsyncClient, headers_for) -> None:
        admin = await headers_for("admin")
        created = await create_customer(
            client, admin, name="Fa. Walter Maier GmbH", external_ref="CRM-1"
        )
        read = (await client.get(f"/api/v1/customers/{created['id']}", headers=admin)).json()
        assert read["name"] == "Fa. Walter Maier GmbH"
        assert read["external_ref"] == "CRM-1"
        assert read["support_group"] == "standard"
        assert read["unit_balance"] == 0
        assert set(read) >= {"id", "name", "external_ref", "support_group", "unit_balance"}

    async def test_agent_and_integration_may_write(
        self, client: httpx.AsyncClient, headers_for
    ) -> None:
        for role in ("agent", "integration"):
            await create_customer(client, await headers_for(role))

    async def test_customer_key_may_not_write(self, client: httpx.AsyncClient, headers_for) -> None:
        own = await create_customer(client, await headers_for("admin"))
        headers = await headers_for("customer", own["id"])
        response = await client.post("/api/v1/customers", json={"name": "x"}, headers=headers)
        assert response.status_code == 403

    async def test_duplicate_external_ref_is_409(
        self, client: httpx.AsyncClient, headers_for
    ) -> None:
        admin = await headers_for("admin")
        await create_customer(client, admin, external_ref="CRM-7")
        response = await client.post(
            "/api/v1/customers", json={"name": "Other", "external_ref": "CRM-7"}, headers=admin
        )
        assert response.status_code == 409
        assert response.headers["content-type"].startswith("application/problem+json")
        # The refused insert did not spoil the transaction for what comes next.
        assert (await client.get("/api/v1/customers", headers=admin)).status_code == 200


class TestUpdateCustomer:
    async def test_patch_changes_only_given_fields(
        self, client: httpx.AsyncClient, headers_for
    ) -> None:
        admin = await headers_for("admin")
        created = await create_customer(client, admin, external_ref="CRM-2")
        response = await client.patch(
            f"/api/v1/customers/{created['id']}", json={"name": "Maier AG"}, headers=admin
        )
        assert response.status_code == 200
        read = (await client.get(f"/api/v1/customers/{created['id']}", headers=admin)).json()
        assert read["name"] == "Maier AG"
        assert read["external_ref"] == "CRM-2"

    async def test_patch_can_clear_external_ref(
        self, client: httpx.AsyncClient, headers_for
    ) -> None:
        admin = await headers_for("admin")
        created = await create_customer(client, admin, external_ref="CRM-3")
        await client.patch(
            f"/api/v1/customers/{created['id']}", json={"external_ref": None}, headers=admin
        )
        read = (await client.get(f"/api/v1/customers/{created['id']}", headers=admin)).json()
        assert read["external_ref"] is None

    async def test_patch_name_null_is_422(self, client: httpx.AsyncClient, headers_for) -> None:
        admin = await headers_for("admin")
        created = await create_customer(client, admin)
        response = await client.patch(
            f"/api/v1/customers/{created['id']}", json={"name": None}, headers=admin
        )
        assert response.status_code == 422

    async def test_patch_unknown_customer_is_404(
        self, client: httpx.AsyncClient, headers_for
    ) -> None:
        response = await client.patch(
            "/api/v1/customers/cus_nope", json={"name": "x"}, headers=await headers_for("admin")
        )
        assert response.status_code == 404


class TestCustomerBoundKey:
    async def test_sees_only_its_own_customer(self, client: httpx.AsyncClient, headers_for) -> None:
        admin = await headers_for("admin")
        own = await create_customer(client, admin, name="Own")
        other = await create_customer(client, admin, name="Other")
        headers = await headers_for("customer", own["id"])

        listed = (await client.get("/api/v1/customers", headers=headers)).json()
        assert [c["id"] for c in listed["items"]] == [own["id"]]
        assert (
            await client.get(f"/api/v1/customers/{own['id']}", headers=headers)
        ).status_code == 200

        foreign = await client.get(f"/api/v1/customers/{other['id']}", headers=headers)
        unknown = await client.get("/api/v1/customers/cus_does_not_exist", headers=headers)
        assert foreign.status_code == unknown.status_code == 404
        assert foreign.json()["title"] == unknown.json()["title"]

    async def test_cannot_see_other_customers_contacts(
        self, client: httpx.AsyncClient, headers_for
    ) -> None:
        admin = await headers_for("admin")
        own = await create_customer(client, admin, name="Own")
        other = await create_customer(client, admin, name="Other")
        await client.post(
            f"/api/v1/customers/{other['id']}/contacts", json={"name": "X"}, headers=admin
        )
        headers = await headers_for("customer", own["id"])
        response = await client.get(f"/api/v1/customers/{other['id']}/contacts", headers=headers)
        assert response.status_code == 404


class TestContacts:
    async def test_add_and_list_contacts(self, client: httpx.AsyncClient, headers_for) -> None:
        admin = await headers_for("admin")
        customer = await create_customer(client, admin)
        response = await client.post(
            f"/api/v1/customers/{customer['id']}/contacts",
            json={"name": "Horst Maier", "email": "horst@example.com", "phone": "+49 821 12345"},
            headers=admin,
        )
        assert response.status_code == 201, response.text
        contact = response.json()
        assert contact["customer_id"] == customer["id"]
        listed = (
            await client.get(f"/api/v1/customers/{customer['id']}/contacts", headers=admin)
        ).json()
        assert [c["id"] for c in listed["items"]] == [contact["id"]]
        one = await client.get(
            f"/api/v1/customers/{customer['id']}/contacts/{contact['id']}", headers=admin
        )
        assert one.json()["email"] == "horst@example.com"

    async def test_contact_for_unknown_customer_is_404(
        self, client: httpx.AsyncClient, headers_for
    ) -> None:
        response = await client.post(
            "/api/v1/customers/cus_nope/contacts", json={"name": "X"}, headers=await headers_for()
        )
        assert response.status_code == 404

    async def test_bad_email_is_422(self, client: httpx.AsyncClient, headers_for) -> None:
        admin = await headers_for("admin")
        customer = await create_customer(client, admin)
        response = await client.post(
            f"/api/v1/customers/{customer['id']}/contacts",
            json={"name": "X", "email": "not-an-address"},
            headers=admin,
        )
        assert response.status_code == 422


class TestPagination:
    async def test_cursor_walks_every_customer_once(
        self, client: httpx.AsyncClient, headers_for
    ) -> None:
        admin = await headers_for("admin")
        ids = [str((await create_customer(client, admin, name=f"C{i}"))["id"]) for i in range(7)]
        seen: list[str] = []
        cursor = None
        while True:
            params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
            page = (await client.get("/api/v1/customers", params=params, headers=admin)).json()
            assert len(page["items"]) <= 3
            seen += [c["id"] for c in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert [i for i in seen if i in ids] == ids
        assert len(seen) == len(set(seen))

    async def test_filter_by_external_ref(self, client: httpx.AsyncClient, headers_for) -> None:
        admin = await headers_for("admin")
        wanted = await create_customer(client, admin, external_ref="CRM-42")
        await create_customer(client, admin, external_ref="CRM-43")
        page = (
            await client.get("/api/v1/customers", params={"external_ref": "CRM-42"}, headers=admin)
        ).json()
        assert [c["id"] for c in page["items"]] == [wanted["id"]]
