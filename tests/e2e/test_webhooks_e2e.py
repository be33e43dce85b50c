"""Webhook subscriptions over HTTP: who may manage them and which URLs they take."""

from __future__ import annotations

import socket
from typing import Any

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


def resolving(monkeypatch: pytest.MonkeyPatch, name: str, *addresses: str) -> list[str]:
    """``name`` resolves to ``addresses`` (every other name as usual); returns the names
    looked up, in order."""
    real = socket.getaddrinfo
    looked_up: list[str] = []

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != name:
            return real(host, port, *args, **kwargs)
        looked_up.append(host)
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (a, int(port or 0), 0, 0))
            if ":" in a
            else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, int(port or 0)))
            for a in addresses
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return looked_up


@pytest.mark.security
class TestServerSideRequestForgery:
    """Issue 14 item 5: a webhook URL must lead to globally routable addresses only."""

    @pytest.mark.parametrize(
        "url",
        [
            "http://100.100.100.200/",
            "http://100.64.0.1/hook",
            "http://169.254.169.254/latest/meta-data/",
            "http://[2002:7f00:1::]/",
            "http://[2002:a9fe:a9fe::]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[64:ff9b::7f00:1]/",
            "http://[64:ff9b:1::1]/",
            "http://[fd00::1]/",
            "http://[fe80::1]/",
            "http://[::1]:8080/",
            "http://0.0.0.0/",
            "http://2130706433/",
            "http://0177.0.0.1/",
            "http://0x7f000001/",
            "http://127.1/",
            "https://example.com:0/",
            "https://example.com:65536/",
        ],
    )
    async def test_refused_with_the_field_named_and_nothing_stored(
        self, client: httpx.AsyncClient, admin, url: str
    ) -> None:
        response = await client.post(
            "/api/v1/webhooks",
            json={"url": url, "events": ["ticket.created"], "secret": SECRET},
            headers=admin,
        )
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert [e["loc"] for e in response.json()["errors"]] == [["body", "url"]]
        listed = await client.get("/api/v1/webhooks", headers=admin)
        assert listed.json() == {"items": [], "next_cursor": None}

    @pytest.mark.parametrize(
        "url", ["http://2130706433/", "http://0x7f.0.0.1/", "http://127.1/", "http://a.b:0/"]
    )
    async def test_odd_numbers_are_refused_even_with_private_addresses_allowed(
        self, client: httpx.AsyncClient, admin, settings, url: str
    ) -> None:
        settings.webhooks_allow_private = True
        response = await client.post(
            "/api/v1/webhooks",
            json={"url": url, "events": ["ticket.created"], "secret": SECRET},
            headers=admin,
        )
        assert response.status_code == 422, response.text

    @pytest.mark.parametrize(
        "addresses",
        [
            ("93.184.216.34", "10.0.0.1"),
            ("2606:4700:4700::1111", "::1"),
            ("100.100.100.200",),
            ("::ffff:a9fe:a9fe",),
        ],
    )
    async def test_a_name_with_any_internal_address_is_refused(
        self, client: httpx.AsyncClient, admin, monkeypatch: pytest.MonkeyPatch, addresses
    ) -> None:
        resolving(monkeypatch, "hooks.example.test", *addresses)
        response = await client.post(
            "/api/v1/webhooks",
            json={
                "url": "https://hooks.example.test/hook",
                "events": ["ticket.created"],
                "secret": SECRET,
            },
            headers=admin,
        )
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["loc"] == ["body", "url"]
        assert addresses[-1] in response.json()["errors"][0]["msg"]
        listed = await client.get("/api/v1/webhooks", headers=admin)
        assert listed.json()["items"] == []

    async def test_a_name_with_only_public_addresses_is_taken(
        self, client: httpx.AsyncClient, admin, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        resolving(monkeypatch, "hooks.example.test", "93.184.216.34", "2606:4700:4700::1111")
        response = await client.post(
            "/api/v1/webhooks",
            json={
                "url": "https://hooks.example.test/hook",
                "events": ["ticket.created"],
                "secret": SECRET,
            },
            headers=admin,
        )
        assert response.status_code == 201, response.text
        listed = (await client.get("/api/v1/webhooks", headers=admin)).json()["items"]
        assert [h["url"] for h in listed] == ["https://hooks.example.test/hook"]
