"""Two database roles on PostgreSQL: the migration owner and the service's runtime role.

A database of its own, an owner role and a runtime role of their own (roles are
cluster-wide: unique names, dropped afterwards). The migrations run as the owner with
SUPPORTDESK_DATABASE_APP_ROLE set; then the runtime role is shown to run the service and
to be unable to rewrite the ledger, even with the append-only triggers out of the way.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from conftest import _postgres_database, live_admin_headers, live_client, postgres_admin_url
from supportdesk import cli, migrate
from supportdesk.config import Settings, build_rules, get_settings
from supportdesk.db import build_engine, build_sessionmaker
from supportdesk.db_grants import TABLE_PRIVILEGES, GrantError, held_table_privileges
from supportdesk.kit.idempotency import purge_expired_records
from supportdesk.kit.ratelimit import purge_old_windows
from supportdesk.notifications.mailer import Mailer
from supportdesk.tickets.service import TicketService
from supportdesk.webhooks.dispatcher import Dispatcher

pytestmark = pytest.mark.db

INSUFFICIENT_PRIVILEGE = "42501"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@dataclass(frozen=True)
class Roles:
    database: str
    admin_url: str  # the superuser, on this database
    owner_url: str
    app_url: str
    owner: str
    app: str


def _as(url: str, user: str, password: str) -> str:
    return make_url(url).set(username=user, password=password).render_as_string(hide_password=False)


@pytest.fixture(scope="module")
async def roles() -> AsyncIterator[Roles]:
    suffix = uuid.uuid4().hex[:12]
    owner, app = f"sd_owner_{suffix}", f"sd_app_{suffix}"
    # A password as well: trust authentication or not, the roles can log in.
    password = uuid.uuid4().hex
    server = create_async_engine(postgres_admin_url(), isolation_level="AUTOCOMMIT")
    created: list[str] = []
    try:
        async for url in _postgres_database():
            name = make_url(url).database
            async with server.connect() as conn:
                for role in (owner, app):
                    await conn.execute(text(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'"))
                    created.append(role)
                await conn.execute(text(f'ALTER DATABASE "{name}" OWNER TO {owner}'))
            try:
                owner_url = _as(url, owner, password)
                await asyncio.to_thread(migrate.upgrade, owner_url, app_role=app)
                yield Roles(
                    database=str(name),
                    admin_url=url,
                    owner_url=owner_url,
                    app_url=_as(url, app, password),
                    owner=owner,
                    app=app,
                )
            finally:
                # What the roles own or were granted here goes, so that they can be dropped.
                cleanup = create_async_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
                try:
                    async with cleanup.connect() as conn:
                        await conn.execute(text(f"DROP OWNED BY {owner}, {app}"))
                        await conn.execute(text(f'ALTER DATABASE "{name}" OWNER TO CURRENT_USER'))
                finally:
                    await cleanup.dispose()
    finally:
        if created:  # not when PostgreSQL is unreachable and the tests are skipped
            async with server.connect() as conn:
                for role in reversed(created):
                    await conn.execute(text(f"DROP ROLE IF EXISTS {role}"))
        await server.dispose()


@asynccontextmanager
async def connected(url: str) -> AsyncIterator[AsyncConnection]:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            yield conn
    finally:
        await engine.dispose()


async def refused(url: str, statement: str) -> str:
    """Run ``statement`` as the URL's role; it must fail for want of privilege."""
    async with connected(url) as conn:
        with pytest.raises(DBAPIError) as caught:
            await conn.execute(text(statement))
        await conn.rollback()
    assert getattr(caught.value.orig, "sqlstate", None) == INSUFFICIENT_PRIVILEGE, caught.value
    return str(caught.value.orig)


async def ledger_row(url: str, entry_id: str) -> dict[str, Any]:
    async with connected(url) as conn:
        row = (
            await conn.execute(
                text("SELECT * FROM ledger_entries WHERE id = :id"), {"id": entry_id}
            )
        ).one()
    return dict(row._mapping)


async def privileges(roles: Roles) -> dict[str, set[str]]:
    async with connected(roles.admin_url) as conn:
        return await held_table_privileges(conn, roles.app, "public")


LISTED = {table: set(grants) for table, grants in TABLE_PRIVILEGES.items()}


@pytest.fixture(scope="module")
async def entry(roles: Roles) -> dict[str, Any]:
    """A purchase, written through the service by the runtime role."""
    admin = await live_admin_headers(roles.app_url)
    async with live_client(roles.app_url) as http:
        customer = await http.post("/api/v1/customers", json={"name": "Ledger"}, headers=admin)
        assert customer.status_code == 201, customer.text
        bought = await http.post(
            f"/api/v1/customers/{customer.json()['id']}/ledger/entries",
            json={"kind": "purchase", "units": 10},
            headers=admin,
        )
        assert bought.status_code == 201, bought.text
    return dict(bought.json())


class TestGrants:
    async def test_the_runtime_role_holds_exactly_the_listed_privileges(self, roles: Roles) -> None:
        assert await privileges(roles) == LISTED  # nothing on alembic_version either
        async with connected(roles.admin_url) as conn:
            checks = (
                await conn.execute(
                    text(
                        "SELECT has_database_privilege(:role, :db, 'CONNECT'), "
                        "has_database_privilege(:role, :db, 'CREATE'), "
                        "has_schema_privilege(:role, 'public', 'USAGE'), "
                        "has_schema_privilege(:role, 'public', 'CREATE'), "
                        "has_sequence_privilege(:role, 'webhook_jobs_id_seq', 'USAGE'), "
                        "has_sequence_privilege(:role, 'webhook_jobs_id_seq', 'UPDATE'), "
                        "(SELECT count(*) FROM pg_class WHERE relowner = "
                        "(SELECT oid FROM pg_roles WHERE rolname = :role))"
                    ),
                    {"role": roles.app, "db": roles.database},
                )
            ).one()
        assert tuple(checks) == (True, False, True, False, True, False, 0)

    async def test_upgrade_again_converges(self, roles: Roles) -> None:
        async with connected(roles.owner_url) as conn:
            await conn.execute(text(f"GRANT ALL ON ledger_entries, tickets TO {roles.app}"))
            await conn.execute(text(f"GRANT CREATE ON SCHEMA public TO {roles.app}"))
            await conn.commit()
        assert "TRUNCATE" in (await privileges(roles))["ledger_entries"]
        await asyncio.to_thread(migrate.upgrade, roles.owner_url, app_role=roles.app)
        assert await privileges(roles) == LISTED
        message = await refused(roles.app_url, "CREATE TABLE intruder (id int)")
        assert "permission denied for schema public" in message

    async def test_db_grant_reapplies_the_grants(
        self, roles: Roles, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        async with connected(roles.owner_url) as conn:
            await conn.execute(text(f"GRANT DELETE ON audit_log TO {roles.app}"))
            await conn.commit()
        monkeypatch.setenv("SUPPORTDESK_DATABASE_URL", roles.owner_url)
        monkeypatch.setenv("SUPPORTDESK_DATABASE_APP_ROLE", roles.app)
        get_settings.cache_clear()
        try:
            assert await asyncio.to_thread(cli.main, ["db", "grant"]) == 0
            assert await asyncio.to_thread(cli.main, ["db", "upgrade"]) == 0
        finally:
            get_settings.cache_clear()
        assert await privileges(roles) == LISTED

    async def test_a_missing_runtime_role_stops_the_upgrade(self, roles: Roles) -> None:
        missing = f"sd_missing_{uuid.uuid4().hex[:12]}"
        with pytest.raises(GrantError, match=f"the runtime role '{missing}' does not exist"):
            await asyncio.to_thread(migrate.upgrade, roles.owner_url, app_role=missing)

    async def test_the_owner_is_refused_as_runtime_role(self, roles: Roles) -> None:
        with pytest.raises(GrantError, match="is the role running the migrations"):
            await asyncio.to_thread(migrate.upgrade, roles.owner_url, app_role=roles.owner)

    async def test_privileges_through_public_are_refused(self, roles: Roles) -> None:
        async with connected(roles.owner_url) as conn:
            await conn.execute(text("GRANT TRUNCATE ON ledger_entries TO PUBLIC"))
            await conn.commit()
            try:
                with pytest.raises(GrantError, match="TRUNCATE on ledger_entries"):
                    await asyncio.to_thread(migrate.grant, roles.owner_url, roles.app)
            finally:
                await conn.execute(text("REVOKE TRUNCATE ON ledger_entries FROM PUBLIC"))
                await conn.commit()
        await asyncio.to_thread(migrate.grant, roles.owner_url, roles.app)


@pytest.mark.security
class TestLedgerAsRuntimeRole:
    async def test_it_reads_and_appends(self, roles: Roles, entry: dict[str, Any]) -> None:
        row = await ledger_row(roles.app_url, entry["id"])
        assert (row["kind"], row["units"], row["balance_after"]) == ("purchase", 10, 10)

    async def test_it_cannot_update_delete_or_truncate(
        self, roles: Roles, entry: dict[str, Any]
    ) -> None:
        before = await ledger_row(roles.app_url, entry["id"])
        for statement in (
            f"UPDATE ledger_entries SET units = 1000 WHERE id = '{entry['id']}'",
            f"DELETE FROM ledger_entries WHERE id = '{entry['id']}'",
            "TRUNCATE ledger_entries CASCADE",
        ):
            message = await refused(roles.app_url, statement)
            assert "permission denied for table ledger_entries" in message
        assert await ledger_row(roles.app_url, entry["id"]) == before

    async def test_it_cannot_switch_the_triggers_off(self, roles: Roles) -> None:
        for statement in (
            "ALTER TABLE ledger_entries DISABLE TRIGGER ALL",
            "ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_append_only",
            "DROP TRIGGER ledger_entries_append_only ON ledger_entries",
            "DROP TABLE ledger_entries CASCADE",
        ):
            message = await refused(roles.app_url, statement)
            assert "must be owner of" in message and "ledger_entries" in message
        message = await refused(roles.app_url, "SET session_replication_role = replica")
        assert 'permission denied to set parameter "session_replication_role"' in message

    async def test_refused_even_when_the_owner_switched_the_triggers_off(
        self, roles: Roles, entry: dict[str, Any]
    ) -> None:
        before = await ledger_row(roles.app_url, entry["id"])
        async with connected(roles.owner_url) as owner:
            await owner.execute(text("ALTER TABLE ledger_entries DISABLE TRIGGER USER"))
            await owner.commit()
            try:
                # The triggers are off: the owner could rewrite the row (rolled back here).
                rewritten = await owner.execute(
                    text("UPDATE ledger_entries SET units = 1000 WHERE id = :id"),
                    {"id": entry["id"]},
                )
                assert rewritten.rowcount == 1
                await owner.rollback()
                for statement in (
                    f"UPDATE ledger_entries SET units = 1000 WHERE id = '{entry['id']}'",
                    f"DELETE FROM ledger_entries WHERE id = '{entry['id']}'",
                ):
                    message = await refused(roles.app_url, statement)
                    assert "permission denied for table ledger_entries" in message
            finally:
                await owner.execute(text("ALTER TABLE ledger_entries ENABLE TRIGGER USER"))
                await owner.commit()
        assert await ledger_row(roles.app_url, entry["id"]) == before

    async def test_it_cannot_create_tables_or_schemas(self, roles: Roles) -> None:
        message = await refused(roles.app_url, "CREATE TABLE ledger_copy (id int)")
        assert "permission denied for schema public" in message
        message = await refused(roles.app_url, "CREATE SCHEMA mine")
        assert "permission denied for database" in message


class TestServiceAsRuntimeRole:
    async def test_requests_background_work_and_purges_succeed(
        self, roles: Roles, tmp_path: Path
    ) -> None:
        admin = await live_admin_headers(roles.app_url)
        overrides: dict[str, Any] = {"rate_limit_requests": 1000, "webhooks_allow_private": True}
        async with live_client(roles.app_url, tmp_dir=tmp_path, **overrides) as http:

            async def call(method: str, url: str, status: int, **kwargs: Any) -> Any:
                kwargs.setdefault("headers", admin)
                response = await http.request(method, url, **kwargs)
                assert response.status_code == status, (url, response.text)
                return response.json() if response.content else None

            hook = await call(
                "POST",
                "/api/v1/webhooks",
                201,
                json={
                    "url": "http://127.0.0.1:9/hook",
                    "events": ["ticket.created"],
                    "secret": "s" * 16,
                },
            )
            customer = await call("POST", "/api/v1/customers", 201, json={"name": "Maier"})
            cid = customer["id"]
            await call("PATCH", f"/api/v1/customers/{cid}", 200, json={"name": "Maier GmbH"})
            contact = await call(
                "POST",
                f"/api/v1/customers/{cid}/contacts",
                201,
                json={"name": "Horst", "email": "horst@example.com"},
            )
            await call("PUT", "/api/v1/products/addon", 201, json={"name": "Add-on"})
            await call("PUT", "/api/v1/products/addon", 200, json={"name": "The add-on"})
            ledger = f"/api/v1/customers/{cid}/ledger/entries"
            await call("POST", ledger, 201, json={"kind": "purchase", "units": 10})
            await call("POST", ledger, 201, json={"kind": "debit", "units": 3})
            assert (await call("GET", f"/api/v1/customers/{cid}/ledger", 200))["balance"] == 7
            contract = await call(
                "POST",
                "/api/v1/contracts",
                201,
                json={"customer_id": cid, "kind": "maintenance", "starts_on": "2020-01-01"},
            )
            await call(
                "PATCH", f"/api/v1/contracts/{contract['id']}", 200, json={"ends_on": "2099-12-31"}
            )
            ticket = await call(
                "POST",
                "/api/v1/tickets",
                201,
                json={
                    "customer_id": cid,
                    "contact_id": contact["id"],
                    "category": "how_to",
                    "severity": "low",
                    "subject": "How?",
                    "description": "Show me",
                },
            )
            tid = ticket["id"]
            await call("PATCH", f"/api/v1/tickets/{tid}", 200, json={"severity": "high"})
            await call("POST", f"/api/v1/tickets/{tid}/comments", 201, json={"body": "Hello"})
            await call("POST", "/api/v1/queue/claim", 200, json={})
            for status in ("awaiting_customer", "open"):  # a pause, recorded
                await call("POST", f"/api/v1/tickets/{tid}/transitions", 200, json={"to": status})
            await call(
                "POST",
                f"/api/v1/tickets/{tid}/attachments",
                201,
                files={"file": ("screen.png", PNG, "image/png")},
                data={"kind": "screenshot"},
            )
            # A remote session: a wrong code first (counted), then joined and ended (billed).
            remote = await call("POST", "/api/v1/remote-sessions", 201, json={"customer_id": cid})
            own = await call(
                "POST",
                "/api/v1/api-keys",
                201,
                json={"name": "customer", "role": "customer", "customer_id": cid},
            )
            as_customer = {"Authorization": f"Bearer {own['key']}"}
            join = "/api/v1/remote-sessions/join"
            await call("POST", join, 404, json={"code": "000-000-000"}, headers=as_customer)
            await call("POST", join, 200, json={"code": remote["code"]}, headers=as_customer)
            await call("POST", f"/api/v1/remote-sessions/{remote['id']}/end", 200, json={})
            # An idempotent POST: the second answer is the first, replayed.
            once = {**admin, "Idempotency-Key": uuid.uuid4().hex}
            first = await call("POST", "/api/v1/customers", 201, json={"name": "I"}, headers=once)
            again = await call("POST", "/api/v1/customers", 201, json={"name": "I"}, headers=once)
            assert again["id"] == first["id"]
            key = await call(
                "POST", "/api/v1/api-keys", 201, json={"name": "temp", "role": "agent"}
            )
            await call("DELETE", f"/api/v1/api-keys/{key['id']}", 204)
            await call("GET", "/api/v1/audit", 200, params={"object_id": tid})
            # A statement issued: numbered (the year's counter), frozen with its lines.
            issued = await call(
                "POST",
                f"/api/v1/customers/{cid}/statements",
                201,
                json={"from": "2026-01-01", "to": "2026-12-31"},
            )
            await call("GET", f"/api/v1/statements/{issued['id']}", 200)
            await call("GET", f"/api/v1/tickets/{tid}", 200)

            engine = build_engine(Settings(database_url=roles.app_url))
            try:
                sessionmaker = build_sessionmaker(engine)
                settings = Settings(database_url=roles.app_url, **overrides)
                # The webhook dispatcher: fans the event out, fails to deliver, records it.
                dispatcher = Dispatcher(sessionmaker, settings)
                try:
                    await dispatcher.run_once()
                finally:
                    await dispatcher.aclose()
                deliveries = await call("GET", f"/api/v1/webhooks/{hook['id']}/deliveries", 200)
                assert deliveries["items"], "the dispatcher recorded no attempt"
                await call("DELETE", f"/api/v1/webhooks/{hook['id']}", 204)
                # The mailer: plans the notifications, claims them, fails to send (no server).
                unreachable = Settings(
                    database_url=roles.app_url,
                    smtp_host="127.0.0.1",
                    smtp_port=9,
                    smtp_security="none",
                    smtp_timeout_seconds=2,
                )
                mailer = Mailer(sessionmaker, unreachable, build_rules(unreachable))
                assert await mailer.run_once() >= 1
                mails = await call("GET", f"/api/v1/tickets/{tid}/notifications", 200)
                assert mails["items"]
                assert all(m["attempts"] == 1 for m in mails["items"]), mails
                # The housekeeping loop's work.
                async with sessionmaker() as session:
                    tickets = TicketService(session, build_rules(settings))
                    await tickets.refresh_turning_contracts()
                    await tickets.sweep_sla()
                    await session.commit()
                async with sessionmaker.begin() as session:
                    await session.execute(
                        text("UPDATE idempotency_records SET expires_at = now() - interval '1 s'")
                    )
                assert await purge_expired_records(sessionmaker) >= 1
                assert await purge_old_windows(sessionmaker, keep=timedelta(0)) >= 1
            finally:
                await engine.dispose()
