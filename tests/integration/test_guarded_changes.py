"""A comment and a move through the status machine are one statement each, guarded by
the ticket's version: read without a lock (on PostgreSQL outside any transaction),
written only while the ticket is still at the version read, else read and stated again,
and after ``GUARDED_ATTEMPTS`` misses made on the ticket's lock as other changes are. A
change that lost the race writes nothing; on PostgreSQL neither BEGIN nor COMMIT is sent
for them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from test_hot_reads_live import TICKET, _ok

from conftest import live_admin_headers, live_client
from supportdesk.config import BusinessRules
from supportdesk.events.service import event_row
from supportdesk.kit.repository import Writes
from supportdesk.tickets.changes import TicketChange
from supportdesk.tickets.repository import TicketRepository
from supportdesk.tickets.service import COMMENTS, GUARDED_ATTEMPTS

pytestmark = pytest.mark.db


async def _ticket(http: httpx.AsyncClient, admin: dict[str, str], name: str) -> str:
    customer = await _ok(
        await http.post("/api/v1/customers", json={"name": name}, headers=admin), 201
    )
    body = {**TICKET, "customer_id": customer["id"]}
    ticket = await _ok(await http.post("/api/v1/tickets", json=body, headers=admin), 201)
    return str(ticket["id"])


async def _stored(session: AsyncSession, ticket_id: str) -> dict[str, Any]:
    """What the ticket's change could have written: the ticket, its comments, events
    and audit rows."""
    params = {"t": ticket_id}
    ticket = (
        await session.execute(
            text("SELECT subject, status, version, updated_at FROM tickets WHERE id = :t"),
            params,
        )
    ).one()
    counts = {}
    for name, sql in {
        "comments": "SELECT count(*) FROM ticket_comments WHERE ticket_id = :t",
        "events": "SELECT count(*) FROM events WHERE resource_id = :t",
        "audit": "SELECT count(*) FROM audit_log WHERE object_id = :t",
    }.items():
        counts[name] = (await session.execute(text(sql), params)).scalar_one()
    return {"ticket": tuple(ticket), **counts}


class TestTheGuard:
    async def test_a_change_read_at_another_version_writes_nothing(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        headers_for: Any,
        rules: BusinessRules,
    ) -> None:
        admin = dict(await headers_for("admin"))
        ticket_id = await _ticket(client, admin, "Wache")
        tickets = TicketRepository(session)
        now = datetime.now(UTC)
        before = await _stored(session, ticket_id)

        def stated(version_read: int) -> Writes:
            row = tickets_row
            assert row is not None
            placement = row.placement._replace(version=version_read)
            change = TicketChange(row._replace(placement=placement))
            change.rows.insert(
                COMMENTS,
                {
                    "id": f"cmt_guard_{version_read}",
                    "ticket_id": ticket_id,
                    "body": "Bitte die Logdatei senden.",
                    "internal": False,
                    "author_key_id": None,
                    "author_role": "system",
                    "created_at": now,
                },
            )
            change.set(subject="Geändert")
            change.touch(now)
            change.events.append(
                event_row(
                    "ticket.commented",
                    resource_type="ticket",
                    resource_id=ticket_id,
                    customer_id=None,
                    data={},
                )
            )
            return change.writes(guarded=True)

        tickets_row = await tickets.read_unlocked(ticket_id, now.date())
        assert tickets_row is not None
        version = tickets_row.placement.version

        # Read at a version the ticket has left: refused, and nothing of it is stored.
        assert await tickets.write(stated(version - 1)) is False
        assert await _stored(session, ticket_id) == before

        assert await tickets.write(stated(version)) is True
        after = await _stored(session, ticket_id)
        assert after["ticket"][0] == "Geändert"
        assert after["ticket"][2] == version + 1
        assert after["comments"] == before["comments"] + 1
        assert after["events"] == before["events"] + 1
        assert after["audit"] == before["audit"] + 1
        # The same change again, from the same read: the ticket moved on, it is refused.
        again = stated(version)
        assert await tickets.write(again) is False
        assert await _stored(session, ticket_id) == after

    def test_a_batch_has_one_guard_and_a_guarded_batch_joins_no_other(self) -> None:
        statement: Any = text("UPDATE tickets SET version = version")
        guarded = Writes()
        guarded.update(statement, {}, guard=True)
        with pytest.raises(ValueError, match="one guard"):
            guarded.update(statement, {}, guard=True)
        with pytest.raises(ValueError, match="joins no other"):
            Writes().extend(guarded)


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
class TestOnPostgres:
    async def test_a_comment_and_a_move_send_two_statements_and_no_transaction(
        self, database_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        admin = await live_admin_headers(database_url)
        sent: list[str] = []
        mine = asyncio.current_task()

        def recording(method: Any) -> Any:
            async def record(self: asyncpg.Connection, query: str, *args: Any, **kw: Any) -> Any:
                if asyncio.current_task() is mine:
                    sent.append(" ".join(query.split()[:2]))
                return await method(self, query, *args, **kw)

            return record

        async with live_client(database_url) as http:
            ticket_id = await _ticket(http, admin, "Zwei Statements")
            for name in ("execute", "fetch"):
                method = getattr(asyncpg.Connection, name)
                monkeypatch.setattr(asyncpg.Connection, name, recording(method))
            await _ok(
                await http.post(
                    f"/api/v1/tickets/{ticket_id}/comments",
                    json={"body": "Bitte die Logdatei senden."},
                    headers=admin,
                ),
                201,
            )
            comment = list(sent)
            sent.clear()
            moved = await http.post(
                f"/api/v1/tickets/{ticket_id}/transitions",
                json={"to": "closed"},
                headers=admin,
            )
            await _ok(moved)
            move = list(sent)
            monkeypatch.undo()
        # The read, then the write with every row of the change; no BEGIN, no COMMIT.
        assert [s.split()[0] for s in comment] == ["SELECT", "WITH"], comment
        assert [s.split()[0] for s in move] == ["SELECT", "WITH"], move

    @pytest.mark.parametrize(
        ("interfered", "reads", "version"),
        [
            # Missed once, stated again on what was written in between, written guarded.
            (1, 2, 3),
            # Missed every time: after GUARDED_ATTEMPTS it waits for the ticket's lock.
            (GUARDED_ATTEMPTS + 5, GUARDED_ATTEMPTS, 2 + GUARDED_ATTEMPTS),
        ],
        ids=["stated-again", "then-locked"],
    )
    async def test_changes_written_in_between_are_kept_and_the_comment_gets_through(
        self,
        database_url: str,
        monkeypatch: pytest.MonkeyPatch,
        interfered: int,
        reads: int,
        version: int,
    ) -> None:
        admin = await live_admin_headers(database_url)
        other = create_async_engine(database_url, isolation_level="AUTOCOMMIT")
        done = 0
        original = TicketRepository.read_unlocked

        async def read_then_interfere(self: TicketRepository, ticket_id: str, today: Any) -> Any:
            nonlocal done
            row = await original(self, ticket_id, today)
            done += 1
            if done <= interfered:
                # Another request's change lands between this read and its write.
                async with other.connect() as conn:
                    await conn.execute(
                        text(
                            "UPDATE tickets SET subject = 'Zwischendurch', "
                            "version = version + 1 WHERE id = :t"
                        ),
                        {"t": ticket_id},
                    )
            return row

        try:
            async with live_client(database_url) as http:
                ticket_id = await _ticket(http, admin, "Dazwischen")
                monkeypatch.setattr(TicketRepository, "read_unlocked", read_then_interfere)
                url = f"/api/v1/tickets/{ticket_id}/comments"
                comment = await _ok(
                    await http.post(url, json={"body": "Zweiter Anlauf"}, headers=admin), 201
                )
                monkeypatch.undo()
                ticket = await _ok(await http.get(f"/api/v1/tickets/{ticket_id}", headers=admin))
                comments = await _ok(await http.get(url, headers=admin))
            async with other.connect() as conn:
                events = (
                    await conn.execute(
                        text(
                            "SELECT count(*) FROM events WHERE resource_id = :t "
                            "AND type = 'ticket.commented'"
                        ),
                        {"t": ticket_id},
                    )
                ).scalar_one()
                stored_version = (
                    await conn.execute(
                        text("SELECT version FROM tickets WHERE id = :t"), {"t": ticket_id}
                    )
                ).scalar_one()
        finally:
            await other.dispose()
        assert done == reads
        assert ticket["subject"] == "Zwischendurch"  # the changes in between are kept
        assert [c["id"] for c in comments["items"]] == [comment["id"]]
        assert events == 1
        # Created at 1, each change in between, the comment.
        assert stored_version == version
