"""Prometheus metrics at /metrics: parseable, counting the requests just made."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def requests_to(text: str, route: str, status: str) -> float:
    key = (
        "supportdesk_http_requests_total",
        (("method", "GET"), ("route", route), ("status", status)),
    )
    return samples(text).get(key, 0.0)


class TestMetrics:
    async def test_counts_a_request_just_made(self, client: httpx.AsyncClient, headers_for) -> None:
        admin = await headers_for("admin")
        before = requests_to((await client.get("/metrics")).text, "/api/v1/customers", "200")
        await client.get("/api/v1/customers", headers=admin)
        response = await client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        assert requests_to(response.text, "/api/v1/customers", "200") == before + 1
        names = {name for name, _ in samples(response.text)}
        assert "supportdesk_queue_length" in names
        assert "supportdesk_webhook_backlog" in names
        assert "supportdesk_http_request_duration_seconds_bucket" in names

    async def test_queue_length_by_group(self, client: httpx.AsyncClient, headers_for) -> None:
        admin = await headers_for("admin")
        customer = (
            await client.post("/api/v1/customers", json={"name": "M"}, headers=admin)
        ).json()
        await client.post(
            f"/api/v1/customers/{customer['id']}/ledger/entries",
            json={"kind": "purchase", "units": 5},
            headers=admin,
        )
        before = samples((await client.get("/metrics")).text)
        key = ("supportdesk_queue_length", (("group", "premium"),))
        await client.post(
            "/api/v1/tickets",
            json={
                "customer_id": customer["id"],
                "category": "how_to",
                "severity": "low",
                "subject": "s",
                "description": "d",
            },
            headers=admin,
        )
        after = samples((await client.get("/metrics")).text)
        assert after[key] == before.get(key, 0) + 1

    async def test_metrics_can_be_switched_off(self, client: httpx.AsyncClient, settings) -> None:
        settings.metrics_enabled = False
        response = await client.get("/metrics")
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("application/problem+json")
