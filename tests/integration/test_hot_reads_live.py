"""The hot reads (a ticket, a page of tickets, the queue) on the live app, as in
production: a bare connection from the pool, autocommit on PostgreSQL, no session. The
e2e tests run the app on one test connection, where the reads take a session instead."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

import supportdesk.db
from conftest import live_admin_headers, live_client
from supportdesk.config import Settings
from supportdesk.db import build_engine, build_read_engine

pytestmark = pytest.mark.db

Terminate = Callable[[], Awaitable[None]]

TICKET = {
    "category": "how_to",
    "severity": "normal",
    "subject": "Export to PDF fails",
    "description": "Since the update the export stops with an error.",
}


async def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def _customer_with_ticket(
    http: httpx.AsyncClient, admin: dict[str, str], name: str
) -> tuple[str, str, dict[str, str]]:
    """A customer, one ticket of it and a key bound to it."""
    customer = await _ok(
        await http.post("/api/v1/customers", json={"name": name}, headers=admin), 201
    )
    customer_id = str(customer["id"])
    ticket = await _ok(
        await http.post(
            "/api/v1/tickets", json={**TICKET, "customer_id": customer_id}, headers=admin
        ),
        201,
    )
    key = await _ok(
        await http.post(
            "/api/v1/api-keys",
            json={"name": name, "role": "customer", "customer_id": customer_id},
            headers=admin,
        ),
        201,
    )
    return customer_id, str(ticket["id"]), {"Authorization": f"Bearer {key['key']}"}


_OTHER_BACKENDS = text(
    "SELECT pid FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
)


@asynccontextmanager
async def connections_opened_since(database_url: str) -> AsyncIterator[Terminate]:
    """A call that terminates, on the server, every connection to the database opened
    since this was entered (the app's pool): the next statement on one finds it lost."""
    admin_engine = create_async_engine(database_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin_engine.connect() as conn:
            before = set((await conn.execute(_OTHER_BACKENDS)).scalars())

        async def terminate() -> None:
            async with admin_engine.connect() as conn:
                mine = set((await conn.execute(_OTHER_BACKENDS)).scalars()) - before
                assert mine
                for pid in mine:
                    await conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
            await asyncio.sleep(0.1)

        yield terminate
    finally:
        await admin_engine.dispose()


class TestHotReadsOnTheLiveApp:
    async def test_reads_answer_what_was_written_within_the_callers_reach(
        self, database_url: str
    ) -> None:
        admin = await live_admin_headers(database_url)
        async with live_client(database_url) as http:
            mine, my_ticket, me = await _customer_with_ticket(http, admin, "Büro Eins")
            other, other_ticket, _ = await _customer_with_ticket(http, admin, "Büro Zwei")

            read = await http.get(f"/api/v1/tickets/{my_ticket}", headers=me)
            assert (await _ok(read))["id"] == my_ticket
            assert read.headers["etag"]
            # Another customer's ticket, or its id in a filter, is as unknown as no ticket.
            for url in (
                f"/api/v1/tickets/{other_ticket}",
                f"/api/v1/tickets?customer_id={other}",
            ):
                refused = await http.get(url, headers=me)
                assert refused.status_code == 404, url
                assert refused.headers["content-type"].startswith("application/problem+json")
            page = await _ok(await http.get("/api/v1/tickets", headers=me))
            assert [t["id"] for t in page["items"]] == [my_ticket]
            listed = await _ok(await http.get(f"/api/v1/tickets?customer_id={mine}", headers=admin))
            assert [t["id"] for t in listed["items"]] == [my_ticket]
            queue = await _ok(await http.get("/api/v1/queue?limit=100", headers=admin))
            assert all(t["status"] == "open" for t in queue["items"])
            # Written after the reads: the next read sees it (nothing held a snapshot).
            await _ok(
                await http.patch(
                    f"/api/v1/tickets/{my_ticket}", json={"subject": "Neu"}, headers=admin
                )
            )
            again = await _ok(await http.get(f"/api/v1/tickets/{my_ticket}", headers=me))
            assert again["subject"] == "Neu"


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
class TestReadConnectionOnPostgres:
    async def test_a_read_is_its_own_transaction(self, database_url: str) -> None:
        # In autocommit no BEGIN goes before the statement, and nothing is left to end;
        # the pooled connection then serves transactions again.
        engine = build_engine(Settings(database_url=database_url, database_pool_size=1))
        try:
            async with build_read_engine(engine).connect() as connection:
                await connection.execute(text("SELECT 1"))
                raw = await connection.get_raw_connection()
                assert not raw.driver_connection.is_in_transaction()  # type: ignore[union-attr]
                read_by = raw.driver_connection
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
                raw = await connection.get_raw_connection()
                assert raw.driver_connection is read_by
                assert raw.driver_connection.is_in_transaction()  # type: ignore[union-attr]
        finally:
            await engine.dispose()

    async def test_a_read_connection_idle_and_dropped_is_replaced_before_use(
        self, database_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(supportdesk.db, "PING_AFTER_IDLE_SECONDS", 0.05)
        engine = build_engine(Settings(database_url=database_url, database_pool_size=1))
        admin = create_async_engine(database_url, isolation_level="AUTOCOMMIT")
        pid = text("SELECT pg_backend_pid()")
        try:
            reads = build_read_engine(engine)
            async with reads.connect() as connection:
                first = await connection.scalar(pid)
            async with admin.connect() as connection:
                await connection.execute(text("SELECT pg_terminate_backend(:p)"), {"p": first})
            await asyncio.sleep(0.1)
            async with reads.connect() as connection:
                assert await connection.scalar(pid) != first
        finally:
            await engine.dispose()
            await admin.dispose()

    async def test_a_read_on_a_lost_connection_is_503_and_the_next_succeeds(
        self, database_url: str
    ) -> None:
        async with connections_opened_since(database_url) as terminate:
            admin = await live_admin_headers(database_url)
            async with live_client(database_url, pool_size=1) as http:
                customer = await _ok(
                    await http.post("/api/v1/customers", json={"name": "Blip"}, headers=admin),
                    201,
                )
                body = {**TICKET, "customer_id": customer["id"]}
                ticket = await _ok(
                    await http.post("/api/v1/tickets", json=body, headers=admin), 201
                )
                url = f"/api/v1/tickets/{ticket['id']}"
                await _ok(await http.get(url, headers=admin))
                await terminate()
                lost = await http.get(url, headers=admin)
                assert lost.status_code == 503, lost.text
                assert lost.headers["retry-after"] == "1"
                assert lost.headers["content-type"].startswith("application/problem+json")
                await _ok(await http.get(url, headers=admin))


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
class TestHotWritesOnTheLiveApp:
    async def test_a_write_on_a_lost_connection_is_503_changes_nothing_and_the_next_succeeds(
        self, database_url: str
    ) -> None:
        # On PostgreSQL the hot writes go straight to the driver (kit.repository.OnDriver):
        # a connection lost under them is answered as SQLAlchemy's would be.
        async with connections_opened_since(database_url) as terminate:
            admin = await live_admin_headers(database_url)
            async with live_client(database_url, pool_size=1) as http:
                _, ticket_id, _ = await _customer_with_ticket(http, admin, "Blip")
                url = f"/api/v1/tickets/{ticket_id}/comments"
                await terminate()
                lost = await http.post(url, json={"body": "first"}, headers=admin)
                assert lost.status_code == 503, lost.text
                assert lost.headers["retry-after"] == "1"
                await _ok(await http.post(url, json={"body": "second"}, headers=admin), 201)
                comments = await _ok(await http.get(url, headers=admin))
                assert [c["body"] for c in comments["items"]] == ["second"]
