"""Webhook subscriptions over HTTP: who may manage them and which URLs they take."""

from __future__ import annotations

import httpx
import pytest

SECRET = "s3cret-s3cret-s3cret"


@pytest.fixture
async def admin(headers_for) -> dict[str, str]:
    return dict(await headers_for("admin"))


class TestSubscriptions:
    @pytest.mark.parametrize(
        "url",
        [
            "ftp://example.com/hook",
            "https://user:pw@example.com/hook",
            "http://127.0.0.1:9/hook",
            "http://10.0.0.5/hook",
            "https:///nohost",
        ],
    )
    async def test_bad_or_private_urls_are_422(
        self, client: httpx.AsyncClient, admin, url: str
    ) -> None:
        response = await client.post(
            "/api/v1/webhooks",
            json={"url": url, "events": ["ticket.created"], "secret": SECRET},
            headers=admin,
        )
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")

    async def test_private_urls_when_allowed_and_the_lifecycle(
        self, client: httpx.AsyncClient, admin, headers_for, settings
    ) -> None:
        settings.webhooks_allow_private = True
        integration = await headers_for("integration")
        created = await client.post(
            "/api/v1/webhooks",
            json={
                "url": "http://127.0.0.1:9/hook",
                "events": ["ticket.created", "session.ended"],
                "secret": SECRET,
            },
            headers=integration,
        )
        assert created.status_code == 201, created.text
        hook = created.json()
        assert "secret" not in hook
        assert hook["events"] == ["session.ended", "ticket.created"]
        mine = (await client.get("/api/v1/webhooks", headers=integration)).json()["items"]
        assert [h["id"] for h in mine] == [hook["id"]]
        other = await headers_for("integration")
        assert (
            await client.get(f"/api/v1/webhooks/{hook['id']}", headers=other)
        ).status_code == 404
        assert (
            await client.get(f"/api/v1/webhooks/{hook['id']}", headers=admin)
        ).status_code == 200
        deliveries = await client.get(
            f"/api/v1/webhooks/{hook['id']}/deliveries", headers=integration
        )
        assert deliveries.json() == {"items": [], "next_cursor": None}
        assert (
            await client.delete(f"/api/v1/webhooks/{hook['id']}", headers=integration)
        ).status_code == 204
        read = (await client.get(f"/api/v1/webhooks/{hook['id']}", headers=admin)).json()
        assert read["active"] is False

    async def test_unknown_event_type_and_short_secret_are_422(
        self, client: httpx.AsyncClient, admin, settings
    ) -> None:
        settings.webhooks_allow_private = True
        for body in (
            {"url": "http://127.0.0.1/h", "events": ["ticket.eaten"], "secret": SECRET},
            {"url": "http://127.0.0.1/h", "events": ["ticket.created"], "secret": "x"},
            {"url": "http://127.0.0.1/h", "events": [], "secret": SECRET},
        ):
            assert (
                await client.post("/api/v1/webhooks", json=body, headers=admin)
            ).status_code == 422

    async def test_agents_and_customers_cannot_manage_webhooks(
        self, client: httpx.AsyncClient, headers_for
    ) -> None:
        response = await client.get("/api/v1/webhooks", headers=await headers_for("agent"))
        assert response.status_code == 403
