"""Rate limits: per API key and for failed authentication, shared by every worker.

Two apps on one database stand in for two workers (or two replicas): the counts are
kept in the database, so what one admits the other counts.
"""

from __future__ import annotations

import asyncio
import time

import httpx

from conftest import live_admin_headers, live_client

WINDOW = 2  # seconds


async def _start_of_a_window() -> None:
    """Wait until a fresh window has just begun, so a test's requests share one."""
    now = time.time()
    await asyncio.sleep(WINDOW - now % WINDOW + 0.05)


def _assert_429(response: httpx.Response) -> int:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == 429 and body["detail"]
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= WINDOW
    return retry_after


class TestPerKeyLimit:
    async def test_the_limit_answers_429_with_retry_after_and_recovers(
        self, database_url: str
    ) -> None:
        admin = await live_admin_headers(database_url)
        limits = {"rate_limit_requests": 3, "rate_limit_window_seconds": WINDOW}
        async with live_client(database_url, **limits) as http:
            await _start_of_a_window()
            for _ in range(3):
                assert (await http.get("/api/v1/customers", headers=admin)).status_code == 200
            retry_after = _assert_429(await http.get("/api/v1/customers", headers=admin))
            # Health and metrics need no key and are never limited.
            assert (await http.get("/health/live")).status_code == 200

            await asyncio.sleep(retry_after + 0.05)
            assert (await http.get("/api/v1/customers", headers=admin)).status_code == 200

    async def test_workers_share_one_count(self, database_url: str) -> None:
        admin = await live_admin_headers(database_url)
        limits = {"rate_limit_requests": 4, "rate_limit_window_seconds": WINDOW}
        async with (
            live_client(database_url, **limits) as first,
            live_client(database_url, **limits) as second,
        ):
            await _start_of_a_window()
            answers = [
                (await worker.get("/api/v1/customers", headers=admin)).status_code
                for worker in (first, second, first, second, first, second)
            ]
        assert answers == [200, 200, 200, 200, 429, 429]

    async def test_each_key_has_its_own_count(self, database_url: str) -> None:
        one = await live_admin_headers(database_url)
        other = await live_admin_headers(database_url)
        limits = {"rate_limit_requests": 2, "rate_limit_window_seconds": WINDOW}
        async with live_client(database_url, **limits) as http:
            await _start_of_a_window()
            for _ in range(2):
                assert (await http.get("/api/v1/customers", headers=one)).status_code == 200
            _assert_429(await http.get("/api/v1/customers", headers=one))
            assert (await http.get("/api/v1/customers", headers=other)).status_code == 200


class TestFailedAuthentication:
    async def test_guessing_keys_is_stopped_before_any_lookup_and_recovers(
        self, database_url: str
    ) -> None:
        admin = await live_admin_headers(database_url)
        limits = {"rate_limit_auth_failures": 2, "rate_limit_window_seconds": WINDOW}
        wrong = {"Authorization": "Bearer sdk_this-key-does-not-exist"}
        async with (
            live_client(database_url, auth_cache_seconds=0, **limits) as first,
            live_client(database_url, auth_cache_seconds=0, **limits) as second,
        ):
            await _start_of_a_window()
            assert (await first.get("/api/v1/customers", headers=wrong)).status_code == 401
            assert (await second.get("/api/v1/customers", headers=wrong)).status_code == 401
            # The address has used its failures on both workers: even a valid key from
            # it waits now, so a guess that happens to be right teaches nothing.
            _assert_429(await first.get("/api/v1/customers", headers=wrong))
            retry_after = _assert_429(await second.get("/api/v1/customers", headers=admin))

            await asyncio.sleep(retry_after + 0.05)
            assert (await first.get("/api/v1/customers", headers=admin)).status_code == 200


class TestBatches:
    async def test_a_worker_takes_tokens_in_batches_not_per_request(
        self, database_url: str
    ) -> None:
        from sqlalchemy import select

        from supportdesk.config import Settings
        from supportdesk.db import build_engine, build_sessionmaker
        from supportdesk.models import RateLimitWindow

        admin = await live_admin_headers(database_url)
        limits = {"rate_limit_requests": 2000, "rate_limit_window_seconds": 60}
        async with live_client(database_url, **limits) as http:
            await asyncio.sleep(60 - time.time() % 60 + 0.05 if time.time() % 60 > 55 else 0)
            for _ in range(150):
                assert (await http.get("/health/live")).status_code == 200
                assert (await http.get("/api/v1/products", headers=admin)).status_code == 200
        engine = build_engine(Settings(database_url=database_url))
        try:
            async with build_sessionmaker(engine)() as session:
                counted = (
                    await session.scalars(
                        select(RateLimitWindow.hits).where(RateLimitWindow.bucket.like("key:%"))
                    )
                ).all()
        finally:
            await engine.dispose()
        # 150 requests of one key took two batches of 100 (a twentieth of 2000, at most
        # 100): two writes to the shared count instead of 150.
        assert 200 in counted


class TestRefusalsAreNotKeptUnderAKey:
    async def test_a_post_refused_by_the_limit_succeeds_with_its_key_later(
        self, database_url: str
    ) -> None:
        """A 429 is about the moment, not the request: the client that honours
        Retry-After and keeps its Idempotency-Key gets its request done."""
        admin = await live_admin_headers(database_url)
        limits = {"rate_limit_requests": 2, "rate_limit_window_seconds": WINDOW}
        async with live_client(database_url, **limits) as http:
            await _start_of_a_window()
            for _ in range(2):
                assert (await http.get("/api/v1/customers", headers=admin)).status_code == 200
            keyed = {**admin, "Idempotency-Key": "retry-after-429"}
            body = {"name": "Waited for its turn"}
            retry_after = _assert_429(
                await http.post("/api/v1/customers", json=body, headers=keyed)
            )

            await asyncio.sleep(retry_after + 0.05)
            done = await http.post("/api/v1/customers", json=body, headers=keyed)
            assert done.status_code == 201, done.text
            assert "idempotent-replayed" not in done.headers
            again = await http.post("/api/v1/customers", json=body, headers=keyed)
            assert again.status_code == 201
            assert again.headers["idempotent-replayed"] == "true"
            assert again.json()["id"] == done.json()["id"]
