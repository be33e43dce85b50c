"""The hot writes take as few statements as their rules allow: a debit is one
conditional balance update and one write of the entry, its audit row and its events (a
data-modifying CTE on PostgreSQL; on SQLite one statement per table); session end adds
one read of the session with its customer's standing, and nothing reads back what the
request already holds."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection

from supportdesk.kit.repository import OnDriver

WRITTEN = ("customers", "ledger_entries", "events", "audit_log", "session_logs", "remote_sessions")


@pytest.fixture
async def admin(headers_for) -> dict[str, str]:
    return dict(await headers_for("admin"))


@pytest.fixture
async def agent(headers_for) -> dict[str, str]:
    return dict(await headers_for("agent"))


@contextmanager
def statements(connection: AsyncConnection) -> Iterator[list[str]]:
    """The statements run on the test's connection that touch the written tables."""
    seen: list[str] = []

    def record(_conn: object, _cursor: object, sql: str, *_args: object) -> None:
        if any(name in sql for name in WRITTEN):
            seen.append(" ".join(sql.split()))

    def sent(sql: str) -> None:
        record(None, None, sql)

    sync = connection.sync_connection
    assert sync is not None
    event.listen(sync, "before_cursor_execute", record)
    # The hot statements that go straight to the driver on PostgreSQL.
    OnDriver.listeners.append(sent)
    try:
        yield seen
    finally:
        OnDriver.listeners.remove(sent)
        event.remove(sync, "before_cursor_execute", record)


def _kinds(seen: list[str]) -> list[str]:
    """Each statement by its first words: ``UPDATE customers SET``, ``SELECT x.id,``, ``WITH``."""
    words = {"WITH": 1, "SELECT": 2}
    return [" ".join(sql.split()[: words.get(sql.split()[0], 3)]) for sql in seen]


class TestRoundTrips:
    async def test_debit_is_one_update_and_one_write(
        self, client: httpx.AsyncClient, connection: AsyncConnection, admin, backend: str
    ) -> None:
        customer = (
            await client.post("/api/v1/customers", json={"name": "M"}, headers=admin)
        ).json()
        url = f"/api/v1/customers/{customer['id']}/ledger/entries"
        await client.post(url, json={"kind": "purchase", "units": 6}, headers=admin)
        with statements(connection) as seen:
            # 6 → 2 crosses the warning level: the entry, its audit row and two events.
            response = await client.post(url, json={"kind": "debit", "units": 4}, headers=admin)
        assert response.status_code == 201, response.text
        if backend == "postgres":
            assert _kinds(seen) == ["UPDATE customers SET", "WITH"], seen
            assert seen[1].count("INSERT INTO") == 4  # one per row: the entry, audit, 2 events
        else:
            assert _kinds(seen) == [
                "UPDATE customers SET",
                "INSERT INTO ledger_entries",
                "INSERT INTO audit_log",
                "INSERT INTO events",
            ], seen

    async def test_session_end_reads_once_and_writes_once(
        self,
        client: httpx.AsyncClient,
        connection: AsyncConnection,
        admin,
        agent,
        headers_for,
        backend: str,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        customer = (
            await client.post("/api/v1/customers", json={"name": "M"}, headers=admin)
        ).json()
        await client.post(
            f"/api/v1/customers/{customer['id']}/ledger/entries",
            json={"kind": "purchase", "units": 6},
            headers=admin,
        )
        opened = (
            await client.post(
                "/api/v1/remote-sessions", json={"customer_id": customer["id"]}, headers=agent
            )
        ).json()
        key = await headers_for("customer", customer["id"])
        joined = await client.post(
            "/api/v1/remote-sessions/join", json={"code": opened["code"]}, headers=key
        )
        assert joined.status_code == 200
        later = datetime.now(UTC) + timedelta(minutes=20)
        monkeypatch.setattr("supportdesk.sessions.service.utcnow", lambda: later)
        with statements(connection) as seen:
            response = await client.post(
                f"/api/v1/remote-sessions/{opened['id']}/end", json={}, headers=agent
            )
        assert response.status_code == 200, response.text
        assert response.json()["billing"]["outcome"] == "charged"
        if backend == "postgres":
            assert _kinds(seen) == ["SELECT remote_sessions.id,", "UPDATE customers SET", "WITH"]
            # The entry, its audit row, three events (6 → 4 reaches the warning level), the log.
            assert seen[2].count("INSERT INTO") == 6
            assert seen[2].count("UPDATE remote_sessions") == 1
        else:
            assert _kinds(seen) == [
                "SELECT remote_sessions.id,",
                "UPDATE customers SET",
                "INSERT INTO ledger_entries",
                "INSERT INTO audit_log",
                "INSERT INTO events",
                "INSERT INTO session_logs",
                "UPDATE remote_sessions SET",
            ], seen
