"""Request ids, JSON access lines and CORS for browser clients."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import httpx
import pytest

from supportdesk.config import Settings
from supportdesk.kit.observability import JsonFormatter
from supportdesk.main import create_app


@pytest.fixture
def access_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("supportdesk.access")
    logger.addHandler(handler)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)


class TestRequestId:
    async def test_given_id_is_echoed_and_logged_as_json(
        self, client: httpx.AsyncClient, headers_for, access_lines: io.StringIO
    ) -> None:
        admin = await headers_for("admin")
        customer = (
            await client.post("/api/v1/customers", json={"name": "L"}, headers=admin)
        ).json()
        response = await client.get(
            f"/api/v1/customers/{customer['id']}", headers={**admin, "X-Request-ID": "req-4711"}
        )
        assert response.headers["x-request-id"] == "req-4711"
        lines = [json.loads(line) for line in access_lines.getvalue().splitlines()]
        line = next(item for item in lines if item.get("request_id") == "req-4711")
        assert line["path"] == "/api/v1/customers/{customer_id}"
        assert line["status"] == 200
        assert line["method"] == "GET"
        assert line["key_id"]
        assert customer["id"] not in json.dumps(line)
        assert "Bearer" not in access_lines.getvalue()

    async def test_missing_or_bad_id_is_generated(self, client: httpx.AsyncClient) -> None:
        plain = await client.get("/health/live")
        odd = await client.get("/health/live", headers={"X-Request-ID": "bad id\twith space"})
        assert len(plain.headers["x-request-id"]) == 32
        assert odd.headers["x-request-id"] != "bad id\twith space"
        refused = await client.get("/api/v1/customers")
        assert refused.status_code == 401
        assert refused.headers["x-request-id"]


class TestCors:
    @pytest.fixture
    async def browser(self) -> httpx.AsyncClient:
        app = create_app(Settings(cors_origins=["https://desk.example"]))
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        )

    async def test_preflight_from_an_allowed_origin(self, browser: httpx.AsyncClient) -> None:
        response = await browser.options(
            "/api/v1/tickets",
            headers={
                "Origin": "https://desk.example",
                "Access-Control-Request-Method": "PATCH",
                "Access-Control-Request-Headers": "Authorization, If-Match, Content-Type",
            },
        )
        assert response.status_code == 204
        assert response.headers["access-control-allow-origin"] == "https://desk.example"
        assert "PATCH" in response.headers["access-control-allow-methods"]
        assert "if-match" in response.headers["access-control-allow-headers"]

    async def test_preflight_from_a_refused_origin(self, browser: httpx.AsyncClient) -> None:
        response = await browser.options(
            "/api/v1/tickets",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        )
        assert response.status_code == 403
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "access-control-allow-origin" not in response.headers

    async def test_answers_expose_the_headers_clients_need(
        self, browser: httpx.AsyncClient
    ) -> None:
        response = await browser.get("/health/live", headers={"Origin": "https://desk.example"})
        assert response.headers["access-control-allow-origin"] == "https://desk.example"
        exposed = response.headers["access-control-expose-headers"]
        for name in ("Location", "X-Request-ID", "ETag", "Retry-After"):
            assert name in exposed
        other = await browser.get("/health/live", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers

    async def test_no_origins_by_default(self) -> None:
        app = create_app(Settings())
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as http:
            response = await http.get("/health/live", headers={"Origin": "https://desk.example"})
        assert "access-control-allow-origin" not in response.headers
