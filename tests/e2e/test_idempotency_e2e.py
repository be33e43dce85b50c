"""Idempotency-Key on every POST: one effect per key, the first answer replayed."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from supportdesk.kit.clock import utcnow
from supportdesk.kit.idempotency import IdempotencyRepository
from supportdesk.models import Customer, IdempotencyRecord


@pytest.fixture
async def admin(headers_for) -> dict[str, str]:
    return dict(await headers_for("admin"))


async def count_customers(session: AsyncSession, name: str) -> int:
    stmt = select(func.count()).select_from(Customer).where(Customer.name == name)
    return int((await session.execute(stmt)).scalar_one())


class TestReplay:
    async def test_same_key_same_body_creates_once_and_replays(
        self, client: httpx.AsyncClient, admin, session: AsyncSession
    ) -> None:
        headers = {**admin, "Idempotency-Key": "create-maier-1"}
        first = await client.post("/api/v1/customers", json={"name": "Idem GmbH"}, headers=headers)
        second = await client.post("/api/v1/customers", json={"name": "Idem GmbH"}, headers=headers)
        assert first.status_code == second.status_code == 201
        assert first.json() == second.json()
        assert second.headers["idempotent-replayed"] == "true"
        assert "idempotent-replayed" not in first.headers
        assert second.headers["content-type"] == first.headers["content-type"]
        assert await count_customers(session, "Idem GmbH") == 1

    async def test_ledger_debit_retried_debits_once(self, client: httpx.AsyncClient, admin) -> None:
        customer = (
            await client.post("/api/v1/customers", json={"name": "L"}, headers=admin)
        ).json()
        url = f"/api/v1/customers/{customer['id']}/ledger/entries"
        await client.post(url, json={"kind": "purchase", "units": 10}, headers=admin)
        headers = {**admin, "Idempotency-Key": "debit-42"}
        answers = [
            await client.post(url, json={"kind": "debit", "units": 3}, headers=headers)
            for _ in range(3)
        ]
        assert {a.json()["id"] for a in answers} == {answers[0].json()["id"]}
        ledger = await client.get(f"/api/v1/customers/{customer['id']}/ledger", headers=admin)
        assert ledger.json()["balance"] == 7

    async def test_error_answers_are_replayed_too(self, client: httpx.AsyncClient, admin) -> None:
        headers = {**admin, "Idempotency-Key": "bad-debit"}
        url = "/api/v1/customers/cus_unknown/ledger/entries"
        first = await client.post(url, json={"kind": "debit", "units": 1}, headers=headers)
        second = await client.post(url, json={"kind": "debit", "units": 1}, headers=headers)
        assert first.status_code == second.status_code == 404
        assert second.headers["idempotent-replayed"] == "true"

    async def test_keys_are_kept_at_least_a_day(
        self, client: httpx.AsyncClient, admin, session: AsyncSession
    ) -> None:
        headers = {**admin, "Idempotency-Key": "kept"}
        await client.post("/api/v1/customers", json={"name": "Kept"}, headers=headers)
        record = (
            await session.scalars(select(IdempotencyRecord).where(IdempotencyRecord.key == "kept"))
        ).one()
        assert record.expires_at - record.created_at >= timedelta(hours=24)
        assert record.state == "done"


class TestRefusals:
    async def test_same_key_other_body_is_422(
        self, client: httpx.AsyncClient, admin, session: AsyncSession
    ) -> None:
        headers = {**admin, "Idempotency-Key": "k-1"}
        await client.post("/api/v1/customers", json={"name": "First"}, headers=headers)
        other = await client.post("/api/v1/customers", json={"name": "Second"}, headers=headers)
        assert other.status_code == 422
        assert other.headers["content-type"].startswith("application/problem+json")
        assert await count_customers(session, "Second") == 0

    async def test_same_key_other_path_is_422(self, client: httpx.AsyncClient, admin) -> None:
        headers = {**admin, "Idempotency-Key": "k-2"}
        await client.post("/api/v1/customers", json={"name": "X"}, headers=headers)
        other = await client.post(
            "/api/v1/api-keys", json={"name": "X", "role": "agent"}, headers=headers
        )
        assert other.status_code == 422

    async def test_first_still_running_is_409(
        self, client: httpx.AsyncClient, admin, session: AsyncSession
    ) -> None:
        headers = {**admin, "Idempotency-Key": "slow"}
        await client.post("/api/v1/customers", json={"name": "Slow"}, headers=headers)
        # Put the record back into the state it has while the first request runs.
        await session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.key == "slow")
            .values(state="running", locked_until=utcnow() + timedelta(minutes=1))
        )
        await session.commit()
        response = await client.post("/api/v1/customers", json={"name": "Slow"}, headers=headers)
        assert response.status_code == 409
        assert response.headers["retry-after"] == "1"
        assert await count_customers(session, "Slow") == 1

    async def test_claim_of_a_dead_request_is_taken_over(
        self, client: httpx.AsyncClient, admin, session: AsyncSession
    ) -> None:
        headers = {**admin, "Idempotency-Key": "dead"}
        await client.post("/api/v1/customers", json={"name": "Dead"}, headers=headers)
        # A claim whose lease ran out, as a process that died before committing leaves it;
        # its changes were rolled back, so the retry must run.
        await session.execute(text("DELETE FROM customers WHERE name = 'Dead'"))
        await session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.key == "dead")
            .values(state="running", locked_until=utcnow() - timedelta(seconds=1))
        )
        await session.commit()
        retry = await client.post("/api/v1/customers", json={"name": "Dead"}, headers=headers)
        assert retry.status_code == 201
        assert "idempotent-replayed" not in retry.headers
        assert await count_customers(session, "Dead") == 1

    @pytest.mark.parametrize("key", [b"", b"x" * 256, b"with space", "ümlaut".encode()])
    async def test_malformed_key_is_422(self, client: httpx.AsyncClient, admin, key: bytes) -> None:
        response = await client.post(
            "/api/v1/customers",
            json={"name": "X"},
            headers=[*admin.items(), ("Idempotency-Key", key)],
        )
        assert response.status_code == 422


class TestScope:
    async def test_keys_are_scoped_to_the_api_key(
        self, client: httpx.AsyncClient, headers_for, session: AsyncSession
    ) -> None:
        one = {**await headers_for("admin"), "Idempotency-Key": "shared"}
        two = {**await headers_for("agent"), "Idempotency-Key": "shared"}
        a = await client.post("/api/v1/customers", json={"name": "Scoped"}, headers=one)
        b = await client.post("/api/v1/customers", json={"name": "Scoped"}, headers=two)
        assert a.status_code == b.status_code == 201
        assert a.json()["id"] != b.json()["id"]
        assert await count_customers(session, "Scoped") == 2

    async def test_unauthenticated_answer_is_not_stored(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        headers = {"Authorization": "Bearer sdk_wrong", "Idempotency-Key": "anon"}
        response = await client.post("/api/v1/customers", json={"name": "A"}, headers=headers)
        assert response.status_code == 401
        stored = await session.scalars(
            select(IdempotencyRecord).where(IdempotencyRecord.key == "anon")
        )
        assert stored.first() is None

    async def test_header_is_documented_on_every_post(self, client: httpx.AsyncClient) -> None:
        schema = (await client.get("/openapi.json")).json()
        posts = [item["post"] for item in schema["paths"].values() if "post" in item]
        assert posts
        for operation in posts:
            names = [p["name"] for p in operation.get("parameters", [])]
            assert "Idempotency-Key" in names


class TestRetention:
    async def test_purge_removes_only_expired_records(
        self, client: httpx.AsyncClient, admin, session: AsyncSession
    ) -> None:
        for key in ("old", "fresh"):
            headers = {**admin, "Idempotency-Key": key}
            await client.post("/api/v1/customers", json={"name": key}, headers=headers)
        await session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.key == "old")
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        purged = await IdempotencyRepository(session).purge_expired(utcnow())
        assert purged >= 1
        left = (await session.scalars(select(IdempotencyRecord.key))).all()
        assert "fresh" in left
        assert "old" not in left
