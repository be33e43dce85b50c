"""Repositories and services against SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from supportdesk.api_keys.repository import ApiKeyRepository
from supportdesk.api_keys.schemas import ApiKeyCreate
from supportdesk.api_keys.service import ApiKeyService
from supportdesk.config import Settings, build_rules
from supportdesk.customers.repository import CustomerRepository
from supportdesk.customers.schemas import CustomerCreate
from supportdesk.customers.service import CustomerService
from supportdesk.errors import Conflict
from supportdesk.kit.auth import hash_key
from supportdesk.kit.pagination import PageParams
from supportdesk.models import Customer


async def _customer(session: AsyncSession, name: str, ref: str | None = None) -> str:
    standing = await CustomerService(session, build_rules(Settings())).register_customer(
        CustomerCreate(name=name, external_ref=ref)
    )
    return standing.customer.id


class TestCustomerScope:
    async def test_scoped_repository_hides_other_customers(self, session: AsyncSession) -> None:
        own = await _customer(session, "Own")
        other = await _customer(session, "Other")
        scoped = CustomerRepository(session, scope=own)
        assert (await scoped.get_by_id(own)) is not None
        assert (await scoped.get_by_id(other)) is None
        rows, _ = await scoped.list_page(PageParams(limit=100, after=None))
        assert [c.id for c in rows] == [own]

    async def test_unscoped_repository_sees_all(self, session: AsyncSession) -> None:
        a = await _customer(session, "A")
        b = await _customer(session, "B")
        rows, _ = await CustomerRepository(session).list_page(PageParams(limit=100, after=None))
        assert {a, b} <= {c.id for c in rows}


class TestConstraints:
    async def test_balance_cannot_go_negative(self, session: AsyncSession) -> None:
        customer_id = await _customer(session, "Broke")
        with pytest.raises(IntegrityError):
            async with session.begin_nested():
                await session.execute(
                    text("UPDATE customers SET unit_balance = -1 WHERE id = :id"),
                    {"id": customer_id},
                )

    async def test_duplicate_external_ref_is_conflict(self, session: AsyncSession) -> None:
        await _customer(session, "A", "CRM-1")
        with pytest.raises(Conflict):
            await _customer(session, "B", "CRM-1")
        # The session is still usable after the refused insert.
        assert await _customer(session, "C", "CRM-2")


class TestTimestamps:
    async def test_times_come_back_aware_utc(self, session: AsyncSession) -> None:
        customer_id = await _customer(session, "T")
        berlin = timezone(timedelta(hours=2))
        moment = datetime(2026, 3, 29, 3, 30, tzinfo=berlin)
        row = await session.get(Customer, customer_id)
        assert row is not None
        row.updated_at = moment
        await session.flush()
        session.expunge_all()
        loaded = (await session.scalars(select(Customer).where(Customer.id == customer_id))).one()
        assert loaded.updated_at.tzinfo is not None
        assert loaded.updated_at == moment
        assert loaded.updated_at.utcoffset() == UTC.utcoffset(None)


class TestApiKeys:
    async def test_revoked_key_is_not_found_by_hash(self, session: AsyncSession) -> None:
        service = ApiKeyService(session)
        issued = await service.issue_key(
            ApiKeyCreate.model_validate({"name": "k", "role": "agent"}, strict=False),
            issued_by=None,
        )
        repo = ApiKeyRepository(session)
        assert await repo.get_active_by_hash(hash_key(issued.secret)) is not None
        await service.revoke_key(issued.key.id)
        assert await repo.get_active_by_hash(hash_key(issued.secret)) is None

    async def test_database_refuses_unbound_customer_key(self, session: AsyncSession) -> None:
        with pytest.raises(IntegrityError):
            async with session.begin_nested():
                await session.execute(
                    text(
                        "INSERT INTO api_keys (id, name, role, prefix, key_hash, created_at) "
                        "VALUES ('key_x', 'x', 'customer', 'sdk_', 'h', CURRENT_TIMESTAMP)"
                    )
                )
