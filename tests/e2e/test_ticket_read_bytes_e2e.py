"""The hot reads (one Core statement, the view derived once, bytes serialized once) answer
byte for byte what the ORM path answers: the ticket loaded through the unit of work, its
view derived by ``TicketService`` and serialized through ``TicketRead`` — on both
databases, over a varied data set built through the API."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

from supportdesk.domain.groups import Severity
from supportdesk.domain.tickets import TicketCategory, TicketStatus
from supportdesk.kit.etag import etag_of
from supportdesk.kit.pagination import Page, PageParams, decode_cursor, encode_cursor
from supportdesk.tickets.repository import TicketRepository
from supportdesk.tickets.schemas import TicketRead, ticket_read
from supportdesk.tickets.service import TicketService

COMPLETE = {
    "steps_to_reproduce": "1. open the add-on 2. click import",
    "environment": {
        "os": "Windows 11",
        "host_application": "ArchiCAD",
        "host_version": "27",
        "extra": {"flag": True, "ratio": 0.25, "count": 3, "none": None, "text": "ä\u2028<"},
    },
}
EVENING = {"starts_at": "2026-12-01T19:00:00+01:00", "ends_at": "2026-12-01T21:00:00+01:00"}
SATURDAY = {"starts_at": "2026-12-05T10:00:00+01:00", "ends_at": "2026-12-05T12:00:30.5+01:00"}


async def _ok(response: httpx.Response) -> dict[str, object]:
    assert response.status_code < 300, response.text
    return dict(response.json()) if response.content else {}


async def _customer(
    client: httpx.AsyncClient, admin: dict[str, str], *, units: int = 0, contract: bool = False
) -> str:
    created = await _ok(await client.post("/api/v1/customers", json={"name": "M"}, headers=admin))
    customer_id = str(created["id"])
    if units:
        await _ok(
            await client.post(
                f"/api/v1/customers/{customer_id}/ledger/entries",
                json={"kind": "purchase", "units": units},
                headers=admin,
            )
        )
    if contract:
        await _ok(
            await client.post(
                "/api/v1/contracts",
                json={"customer_id": customer_id, "kind": "maintenance", "starts_on": "2020-01-01"},
                headers=admin,
            )
        )
    return customer_id


async def _ticket(
    client: httpx.AsyncClient, headers: dict[str, str], customer_id: str, **fields: object
) -> str:
    body: dict[str, object] = {
        "customer_id": customer_id,
        "category": "bug_report",
        "severity": "normal",
        "subject": "Import fails",
        "description": "The import stops with an error.",
        **fields,
    }
    return str((await _ok(await client.post("/api/v1/tickets", json=body, headers=headers)))["id"])


async def _move(
    client: httpx.AsyncClient, headers: dict[str, str], ticket_id: str, to: str
) -> None:
    url = f"/api/v1/tickets/{ticket_id}/transitions"
    await _ok(await client.post(url, json={"to": to}, headers=headers))


async def _data_set(
    client: httpx.AsyncClient, admin: dict[str, str], agent: dict[str, str], customer_key
) -> dict[str, str]:
    """Customers in each group; tickets in every status, with and without blockers,
    pauses ended and running, an escalation, appointments, a returned dongle."""
    await _ok(
        await client.put(
            "/api/v1/products/db-addon",
            json={"name": "DB", "latest_version": "2.10.0"},
            headers=admin,
        )
    )
    standard = await _customer(client, admin)
    premium = await _customer(client, admin, units=10)
    contract = await _customer(client, admin, contract=True)
    ids: dict[str, str] = {"standard": standard, "premium": premium, "contract": contract}
    ids["held"] = await _ticket(client, admin, standard)
    ids["how_to"] = await _ticket(client, admin, standard, category="how_to", **COMPLETE)
    ids["outdated"] = await _ticket(
        client,
        admin,
        premium,
        category="database_defect",
        severity="critical",
        product="db-addon",
        addon_version="2.9.0",
        **COMPLETE,
    )
    ids["current"] = await _ticket(
        client, admin, contract, product="db-addon", addon_version="2.10.0", severity="high"
    )
    ids["unversioned"] = await _ticket(client, admin, premium, product="db-addon", severity="low")
    ids["installation"] = await _ticket(
        client,
        admin,
        premium,
        category="installation",
        proposed_appointments=[EVENING, SATURDAY],
    )
    ids["concept"] = await _ticket(
        client,
        admin,
        contract,
        category="change_request",
        concept="Neue Exportfunktion",
        concept_en="A new export function",
    )
    # Claimed, asked (a pause running), answered by the customer (the pause ended).
    ids["answered"] = await _ticket(client, admin, premium, **COMPLETE)
    await _move(client, agent, ids["answered"], "in_progress")
    await _move(client, agent, ids["answered"], "awaiting_customer")
    key = await customer_key(premium)
    comment = {"body": "Here is more."}
    await _ok(
        await client.post(f"/api/v1/tickets/{ids['answered']}/comments", json=comment, headers=key)
    )
    ids["asked"] = await _ticket(client, admin, contract, **COMPLETE)
    await _move(client, agent, ids["asked"], "in_progress")
    await _move(client, agent, ids["asked"], "awaiting_customer")
    # A supporter's answer is the first response; then resolved and closed.
    ids["closed"] = await _ticket(client, admin, contract, **COMPLETE)
    url = f"/api/v1/tickets/{ids['closed']}/comments"
    await _ok(await client.post(url, json={"body": "Try this."}, headers=agent))
    await _move(client, agent, ids["closed"], "in_progress")
    await _move(client, agent, ids["closed"], "resolved")
    await _move(client, agent, ids["closed"], "closed")
    await _move(client, agent, ids["concept"], "in_progress")
    escalation = {"vendor": "Graphisoft US", "summary_en": "Customer asks for a new export."}
    url = f"/api/v1/tickets/{ids['concept']}/escalations"
    await _ok(await client.post(url, json=escalation, headers=agent))
    ids["working"] = await _ticket(client, admin, premium, severity="high", **COMPLETE)
    await _move(client, agent, ids["working"], "in_progress")
    ids["resolved"] = await _ticket(client, admin, contract, severity="critical", **COMPLETE)
    await _move(client, agent, ids["resolved"], "in_progress")
    await _move(client, agent, ids["resolved"], "resolved")
    ids["dongle"] = await _ticket(client, admin, contract, category="hardware_exchange")
    url = f"/api/v1/tickets/{ids['dongle']}/dongle-return"
    await _ok(await client.post(url, json={}, headers=agent))
    return ids


class TestReadAnswersAreTheOrmPathsBytes:
    async def test_read_list_and_queue_answer_the_same_bytes(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        headers_for,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        admin = await headers_for("admin")
        agent = await headers_for("agent")

        async def customer_key(customer_id: str) -> dict[str, str]:
            return dict(await headers_for("customer", customer_id))

        ids = await _data_set(client, admin, agent, customer_key)
        tickets = [v for k, v in ids.items() if k not in ("standard", "premium", "contract")]
        # Time stands once the data set is built, so both paths derive at one instant (a
        # running pause moves the due time with the clock); 30 hours on, some are late.
        now = datetime.now(UTC) + timedelta(hours=30)
        monkeypatch.setattr("supportdesk.tickets.service.utcnow", lambda: now)
        monkeypatch.setattr("supportdesk.customers.service.utcnow", lambda: now)
        rules = app.state.rules

        async with app.state.sessionmaker() as session:
            service = TicketService(session, rules)
            # Read: every ticket, admin's key.
            seen: dict[str, set[object]] = {}
            for ticket_id in tickets:
                response = await client.get(f"/api/v1/tickets/{ticket_id}", headers=admin)
                assert response.status_code == 200
                for name, value in response.json().items():
                    seen.setdefault(name, set()).add(json.dumps(value))
                view = await service.get_ticket(ticket_id)
                expected = ticket_read(view).model_dump_json().encode()
                assert response.content == expected, ticket_id
                assert response.headers["content-type"] == "application/json"
                assert response.headers["etag"] == etag_of(ticket_id, view.ticket.updated_at)

            # The data set is varied enough to mean something.
            assert len(seen["status"]) == 6
            assert len(seen["support_group"]) == 3
            assert len(seen["sla_state"]) >= 3
            assert len(seen["blockers"]) >= 4
            assert len(seen["proposed_appointments"]) == 2

            # List: pages of 3 with and without filters, following the cursors.
            filters: list[dict[str, str]] = [
                {},
                {"customer_id": ids["contract"]},
                {"customer_id": ids["premium"], "status": "open"},
                {"severity": "normal", "category": "bug_report"},
                {"q": "import"},
            ]
            for query in filters:
                cursor: str | None = None
                pages = 0
                while True:
                    params = {**query, "limit": "3", **({"cursor": cursor} if cursor else {})}
                    response = await client.get("/api/v1/tickets", params=params, headers=admin)
                    assert response.status_code == 200, response.text
                    status = query.get("status")
                    page = PageParams(3, decode_cursor(cursor) if cursor else None)
                    views, next_cursor = await service.list_tickets(
                        page,
                        status=TicketStatus(status) if status else None,
                        customer_id=query.get("customer_id"),
                        category=TicketCategory(query["category"]) if "category" in query else None,
                        severity=Severity(query["severity"]) if "severity" in query else None,
                        q=query.get("q"),
                    )
                    expected = Page[TicketRead](
                        items=[ticket_read(v) for v in views], next_cursor=next_cursor
                    )
                    assert response.content == expected.model_dump_json().encode(), query
                    pages += 1
                    cursor = next_cursor
                    if cursor is None:
                        break
                assert pages >= 1

            # The queue: pages of 2, following the cursors.
            repository = TicketRepository(session)
            cursor = None
            after = None
            while True:
                params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
                response = await client.get("/api/v1/queue", params=params, headers=agent)
                assert response.status_code == 200, response.text
                rows = await repository.queue_page(3, after)
                more = len(rows) > 2
                rows = rows[:2]
                views = await service.views(rows)
                next_cursor = None
                if more:
                    last = rows[-1]
                    key = [last.queue_group, last.severity_rank, last.received_at.isoformat()]
                    next_cursor = encode_cursor(json.dumps([*key, last.id]))
                    after = (last.queue_group, last.severity_rank, last.received_at, last.id)
                expected = Page[TicketRead](
                    items=[ticket_read(v) for v in views], next_cursor=next_cursor
                )
                assert response.content == expected.model_dump_json().encode()
                cursor = next_cursor
                if cursor is None:
                    break


class TestCustomerKeysReadOnlyTheirOwn:
    async def test_a_customer_reads_its_ticket_as_staff_do_and_no_other(
        self, client: httpx.AsyncClient, headers_for
    ) -> None:
        admin = await headers_for("admin")
        own = await _customer(client, admin, units=3)
        other = await _customer(client, admin)
        mine = await _ticket(client, admin, own, **COMPLETE)
        theirs = await _ticket(client, admin, other)
        key = dict(await headers_for("customer", own))
        as_staff = await client.get(f"/api/v1/tickets/{mine}", headers=admin)
        as_customer = await client.get(f"/api/v1/tickets/{mine}", headers=key)
        assert as_customer.content == as_staff.content
        assert as_customer.headers["etag"] == as_staff.headers["etag"]
        hidden = await client.get(f"/api/v1/tickets/{theirs}", headers=key)
        unknown = await client.get("/api/v1/tickets/tkt_unknown", headers=key)
        assert hidden.status_code == unknown.status_code == 404
        assert hidden.json()["title"] == unknown.json()["title"]
        listed = await client.get("/api/v1/tickets", headers=key)
        assert [t["id"] for t in listed.json()["items"]] == [mine]
        filtered = await client.get("/api/v1/tickets", params={"customer_id": other}, headers=key)
        assert filtered.status_code == 404
        assert filtered.headers["content-type"] == "application/problem+json"
        empty = await client.get(
            "/api/v1/tickets", params={"customer_id": own, "status": "closed"}, headers=key
        )
        assert empty.status_code == 200
        assert empty.json() == {"items": [], "next_cursor": None}
