"""Idempotency-Key on every POST: one effect per key, the first answer replayed."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from conftest import live_admin_headers, live_client
from supportdesk.config import Settings
from supportdesk.db import build_engine
from supportdesk.errors import Conflict
from supportdesk.kit.clock import utcnow
from supportdesk.kit.idempotency import IdempotencyRepository
from supportdesk.kit.repository import Repository
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


class TestOnARealEngine:
    """The claim and the answer as in production: on an engine, not in the tests'
    rolled-back connection (on PostgreSQL the claim runs on an autocommit connection)."""

    @staticmethod
    async def _count(database_url: str, name: str) -> int:
        engine = build_engine(Settings(database_url=database_url))
        try:
            async with engine.connect() as conn:
                stmt = select(func.count()).select_from(Customer).where(Customer.name == name)
                return int((await conn.execute(stmt)).scalar_one())
        finally:
            await engine.dispose()

    @staticmethod
    async def _set_record(database_url: str, key: str, **values: object) -> None:
        engine = build_engine(Settings(database_url=database_url))
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    update(IdempotencyRecord).where(IdempotencyRecord.key == key).values(**values)
                )
        finally:
            await engine.dispose()

    async def test_creates_once_replays_and_refuses_another_body(self, database_url: str) -> None:
        admin = await live_admin_headers(database_url)
        name = f"Real {uuid.uuid4().hex[:8]}"
        headers = {**admin, "Idempotency-Key": f"real-{uuid.uuid4().hex}"}
        async with live_client(database_url) as http:
            first = await http.post("/api/v1/customers", json={"name": name}, headers=headers)
            second = await http.post("/api/v1/customers", json={"name": name}, headers=headers)
            other = await http.post("/api/v1/customers", json={"name": "x"}, headers=headers)
        assert first.status_code == second.status_code == 201
        assert second.content == first.content
        assert second.headers["idempotent-replayed"] == "true"
        assert other.status_code == 422
        assert await self._count(database_url, name) == 1

    async def test_running_claim_is_409_and_dead_one_is_taken_over_for_the_same_body_only(
        self, database_url: str
    ) -> None:
        admin = await live_admin_headers(database_url)
        name = f"Lease {uuid.uuid4().hex[:8]}"
        key = f"lease-{uuid.uuid4().hex}"
        headers = {**admin, "Idempotency-Key": key}
        async with live_client(database_url) as http:
            await http.post("/api/v1/customers", json={"name": name}, headers=headers)
            await self._set_record(
                database_url, key, state="running", locked_until=utcnow() + timedelta(minutes=1)
            )
            running = await http.post("/api/v1/customers", json={"name": name}, headers=headers)
            await self._set_record(database_url, key, locked_until=utcnow() - timedelta(seconds=1))
            other = await http.post("/api/v1/customers", json={"name": "x"}, headers=headers)
            taken_over = await http.post("/api/v1/customers", json={"name": name}, headers=headers)
            replayed = await http.post("/api/v1/customers", json={"name": name}, headers=headers)
        assert running.status_code == 409
        assert other.status_code == 422
        assert taken_over.status_code == 201
        assert "idempotent-replayed" not in taken_over.headers
        assert replayed.content == taken_over.content
        assert replayed.headers["idempotent-replayed"] == "true"

    async def test_record_past_its_retention_is_taken_over_for_any_request(
        self, database_url: str
    ) -> None:
        admin = await live_admin_headers(database_url)
        name = f"Expired {uuid.uuid4().hex[:8]}"
        key = f"expired-{uuid.uuid4().hex}"
        headers = {**admin, "Idempotency-Key": key}
        async with live_client(database_url) as http:
            await http.post("/api/v1/customers", json={"name": "before"}, headers=headers)
            await self._set_record(database_url, key, expires_at=utcnow() - timedelta(seconds=1))
            again = await http.post("/api/v1/customers", json={"name": name}, headers=headers)
        assert again.status_code == 201
        assert "idempotent-replayed" not in again.headers
        assert await self._count(database_url, name) == 1

    async def test_request_that_raised_after_writing_left_no_change_and_its_answer_is_kept(
        self, database_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        real_add = Repository.add

        async def add_then_refuse(self: Repository, obj: object, **kw: str) -> object:
            await real_add(self, obj, **kw)  # type: ignore[type-var]
            raise Conflict("refused after the insert")

        admin = await live_admin_headers(database_url)
        name = f"Raised {uuid.uuid4().hex[:8]}"
        headers = {**admin, "Idempotency-Key": f"raised-{uuid.uuid4().hex}"}
        async with live_client(database_url) as http:
            monkeypatch.setattr(Repository, "add", add_then_refuse)
            first = await http.post("/api/v1/customers", json={"name": name}, headers=headers)
            monkeypatch.setattr(Repository, "add", real_add)
            second = await http.post("/api/v1/customers", json={"name": name}, headers=headers)
        assert first.status_code == second.status_code == 409
        assert second.headers["idempotent-replayed"] == "true"
        assert await self._count(database_url, name) == 0
