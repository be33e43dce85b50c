"""The largest page is a setting, enforced with 422 and stated in the OpenAPI document."""

from __future__ import annotations

from conftest import live_admin_headers, live_client


class TestPageSizeFromSettings:
    async def test_a_smaller_page_size_is_enforced_and_documented(self, database_url: str) -> None:
        admin = await live_admin_headers(database_url)
        async with live_client(database_url, max_page_size=20) as http:
            assert (await http.get("/api/v1/customers?limit=20", headers=admin)).status_code == 200
            refused = await http.get("/api/v1/tickets?limit=21", headers=admin)
            assert refused.status_code == 422
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert refused.json()["errors"][0]["loc"] == ["query", "limit"]
            document = (await http.get("/openapi.json")).json()
        limits = [
            parameter["schema"]["maximum"]
            for item in document["paths"].values()
            for operation in item.values()
            for parameter in operation.get("parameters", [])
            if parameter["name"] == "limit"
        ]
        assert limits and set(limits) == {20}

    async def test_a_larger_page_size_is_allowed(self, database_url: str) -> None:
        admin = await live_admin_headers(database_url)
        async with live_client(database_url, max_page_size=500) as http:
            assert (await http.get("/api/v1/customers?limit=500", headers=admin)).status_code == 200
            assert (await http.get("/api/v1/customers?limit=501", headers=admin)).status_code == 422
