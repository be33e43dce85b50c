"""Idempotency-Key on a live engine, as in production: the claim commits on its own (on
PostgreSQL on an autocommit connection), the answer with the request's changes.

The e2e tests run in a rolled-back connection, where the claim shares the test's
transaction; these commit for real, on customers and keys of their own.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from conftest import live_admin_headers, live_client
from supportdesk.config import Settings
from supportdesk.db import build_engine
from supportdesk.errors import Conflict
from supportdesk.kit.clock import utcnow
from supportdesk.kit.repository import Repository
from supportdesk.models import Customer, IdempotencyRecord

pytestmark = pytest.mark.db


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
