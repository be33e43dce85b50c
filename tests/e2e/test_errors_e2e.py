"""Every non-2xx answer is application/problem+json (RFC 9457)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter

PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status
    assert isinstance(body["type"], str) and body["type"]
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    return dict(body)


class TestProblemDetails:
    async def test_unknown_route_is_404_problem(self, client: httpx.AsyncClient) -> None:
        assert_problem(await client.get("/api/v1/nope"), 404)

    async def test_wrong_method_is_405_problem_with_allow(self, client: httpx.AsyncClient) -> None:
        response = await client.delete("/health/live")
        assert_problem(response, 405)
        assert "GET" in response.headers["allow"]

    async def test_missing_key_is_401_problem(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/api/v1/customers")
        assert_problem(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer")

    async def test_malformed_key_is_401(self, client: httpx.AsyncClient) -> None:
        for value in ("Bearer nonsense", "Bearer sdk_" + "x" * 43, "Basic abc", "Bearer"):
            response = await client.get("/api/v1/customers", headers={"Authorization": value})
            assert_problem(response, 401)

    async def test_role_without_permission_is_403(
        self, client: httpx.AsyncClient, headers_for
    ) -> None:
        response = await client.get("/api/v1/api-keys", headers=await headers_for("agent"))
        assert_problem(response, 403)

    async def test_body_not_json_is_422_with_errors(
        self, client: httpx.AsyncClient, headers_for
    ) -> None:
        response = await client.post(
            "/api/v1/customers",
            content=b"{not json",
            headers={**await headers_for("admin"), "content-type": "application/json"},
        )
        body = assert_problem(response, 422)
        assert isinstance(body["errors"], list) and body["errors"]

    async def test_unknown_field_is_422_naming_it(
        self, client: httpx.AsyncClient, headers_for
    ) -> None:
        response = await client.post(
            "/api/v1/customers",
            json={"name": "Maier", "colour": "blue"},
            headers=await headers_for("admin"),
        )
        body = assert_problem(response, 422)
        locs = [e["loc"] for e in body["errors"]]
        assert ["body", "colour"] in locs

    async def test_broken_field_rule_is_422(self, client: httpx.AsyncClient, headers_for) -> None:
        response = await client.post(
            "/api/v1/customers", json={"name": ""}, headers=await headers_for("admin")
        )
        body = assert_problem(response, 422)
        assert body["errors"][0]["loc"] == ["body", "name"]

    @pytest.mark.parametrize("limit", ["0", "101", "abc"])
    async def test_limit_out_of_range_is_422(
        self, client: httpx.AsyncClient, headers_for, limit: str
    ) -> None:
        response = await client.get(
            "/api/v1/customers", params={"limit": limit}, headers=await headers_for("admin")
        )
        assert_problem(response, 422)

    async def test_tampered_cursor_is_422(self, client: httpx.AsyncClient, headers_for) -> None:
        response = await client.get(
            "/api/v1/customers", params={"cursor": "!!!"}, headers=await headers_for("admin")
        )
        body = assert_problem(response, 422)
        assert body["errors"][0]["loc"] == ["query", "cursor"]

    async def test_unexpected_exception_is_500_problem_without_internals(
        self, client: httpx.AsyncClient
    ) -> None:
        app = client._transport.app
        router = APIRouter()

        @router.get("/boom")
        async def boom() -> None:
            raise RuntimeError("secret internals: password=hunter2")

        app.include_router(router)
        response = await client.get("/boom")
        body = assert_problem(response, 500)
        assert "hunter2" not in response.text
        assert "RuntimeError" not in response.text
        assert body["title"] == "Internal Server Error"


class TestDatabaseUnavailable:
    """A lost connection (PostgreSQL restarted, backend terminated) or a lock not granted
    in time is 503 with Retry-After, not 500; the retry with the same key then succeeds
    once, because a 5xx answer is never stored for replay."""

    @staticmethod
    def _dropped_by_asyncpg() -> Exception:
        # What SQLAlchemy's asyncpg adapter raises when pg_terminate_backend cut the
        # connection: a plain DBAPIError whose driver error is caused by asyncpg's own.
        import asyncpg
        from sqlalchemy.exc import DBAPIError

        driver = Exception("connection was closed in the middle of operation")
        driver.__cause__ = asyncpg.exceptions.ConnectionDoesNotExistError("closed")
        return DBAPIError("INSERT", {}, driver)

    @pytest.mark.parametrize("kind", ["operational", "asyncpg_dropped"])
    async def test_lost_connection_is_503_and_the_retry_succeeds_once(
        self, client: httpx.AsyncClient, headers_for, monkeypatch: pytest.MonkeyPatch, kind: str
    ) -> None:
        from sqlalchemy.exc import OperationalError

        from supportdesk.kit.repository import Repository

        real_add = Repository.add
        failures = [
            OperationalError("INSERT", {}, ConnectionError("connection was closed"))
            if kind == "operational"
            else self._dropped_by_asyncpg()
        ]

        async def add_failing_once(self: Repository, obj: object, **kw: str) -> object:
            if failures:
                raise failures.pop()
            return await real_add(self, obj, **kw)

        admin = await headers_for("admin")
        monkeypatch.setattr(Repository, "add", add_failing_once)
        headers = {**admin, "Idempotency-Key": f"db-blip-{kind}"}
        body = {"name": "Ingenieurbüro Blip", "external_ref": f"BLIP-{kind}"}

        first = await client.post("/api/v1/customers", json=body, headers=headers)
        problem = assert_problem(first, 503)
        assert first.headers["retry-after"] == "1"
        assert "connection was closed" not in first.text
        assert "nothing was changed" in str(problem["detail"])

        second = await client.post("/api/v1/customers", json=body, headers=headers)
        assert second.status_code == 201, second.text
        found = await client.get(
            "/api/v1/customers", params={"external_ref": f"BLIP-{kind}"}, headers=admin
        )
        assert [c["id"] for c in found.json()["items"]] == [second.json()["id"]]
