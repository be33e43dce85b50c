"""Announcements of the housekeeping sweeps go out once, however many workers or
replicas sweep at the same moment (issue 15), on both databases.

Two sweeps run at once on two connections, the first held between reading its
candidates and marking them, so the second reads the same candidates: only what a sweep
claimed in the database is published.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from conftest import live_admin_headers, live_client
from supportdesk.config import Settings, build_rules
from supportdesk.db import build_engine, build_sessionmaker
from supportdesk.domain.sla import at_risk_from
from supportdesk.models import Event, Ticket
from supportdesk.tickets.repository import TicketRepository
from supportdesk.tickets.service import TicketService

pytestmark = pytest.mark.db

TICKETS = 6


async def _tickets(database_url: str) -> list[str]:
    admin = await live_admin_headers(database_url)
    async with live_client(database_url) as http:
        created = await http.post("/api/v1/customers", json={"name": "Sweep"}, headers=admin)
        customer_id = created.json()["id"]
        contract = await http.post(
            "/api/v1/contracts",
            json={"customer_id": customer_id, "kind": "maintenance", "starts_on": "2020-01-01"},
            headers=admin,
        )
        assert contract.status_code == 201, contract.text
        ids = []
        for n in range(TICKETS):
            response = await http.post(
                "/api/v1/tickets",
                json={
                    "customer_id": customer_id,
                    "category": "bug_report",
                    "severity": "normal",
                    "subject": f"Question {n}",
                    "description": "The export stops.",
                    "steps_to_reproduce": "1. open 2. export",
                    "environment": {"os": "Windows 11", "host_application": "ArchiCAD"},
                },
                headers=admin,
            )
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
    return ids


@pytest.mark.parametrize("moment", ["breached", "at_risk"])
async def test_two_sweeps_at_once_announce_each_ticket_once(
    database_url: str, monkeypatch: pytest.MonkeyPatch, moment: str
) -> None:
    ids = await _tickets(database_url)
    engine = build_engine(Settings(database_url=database_url))
    sessionmaker = build_sessionmaker(engine)
    rules = build_rules(Settings())
    try:
        async with sessionmaker() as session:
            rows = (await session.scalars(select(Ticket).where(Ticket.id.in_(ids)))).all()
        # Past every due time, or just past the point where each is at risk.
        if moment == "breached":
            later = max(row.first_response_due for row in rows) + timedelta(days=30)
        else:
            later = max(
                at_risk_from(
                    row.received_at, row.first_response_due, rules.calendar, (), rules.at_risk_ratio
                )
                for row in rows
            ) + timedelta(minutes=1)
            assert later < min(row.first_response_due for row in rows)
        monkeypatch.setattr("supportdesk.tickets.service.utcnow", lambda: later)

        first_has_read = asyncio.Event()
        second_done = asyncio.Event()
        read = TicketRepository.awaiting_first_response

        async def held_read(self: TicketRepository, *args: Any, **kwargs: Any) -> list[Any]:
            candidates = await read(self, *args, **kwargs)
            if not first_has_read.is_set():
                first_has_read.set()
                # Wait for the other sweep to finish (PostgreSQL) - or for as long as it
                # queues behind this transaction's write lock (SQLite).
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(second_done.wait(), 1.0)
            return candidates

        monkeypatch.setattr(TicketRepository, "awaiting_first_response", held_read)

        async def sweep(wait_for_first: bool) -> int:
            if wait_for_first:
                await first_has_read.wait()
            async with sessionmaker() as session:
                announced = await TicketService(session, rules).sweep_sla()
                await session.commit()
            if wait_for_first:
                second_done.set()
            return announced

        await asyncio.gather(sweep(False), sweep(True))

        event_type = f"ticket.sla_{moment}"
        async with sessionmaker() as session:
            events = (
                await session.scalars(
                    select(Event).where(Event.type == event_type, Event.resource_id.in_(ids))
                )
            ).all()
            marked = (await session.scalars(select(Ticket).where(Ticket.id.in_(ids)))).all()
        per_ticket = Counter(e.resource_id for e in events)
        assert per_ticket == dict.fromkeys(ids, 1), per_ticket
        column = f"sla_{moment}_notified_at"
        assert all(getattr(t, column) is not None for t in marked)
    finally:
        await engine.dispose()
