"""The hot reads (one Core statement, the view derived once, bytes serialized once) answer
byte for byte what was captured from them while the ORM path still answered alongside
and agreed (the ticket loaded through the unit of work, its view derived by
``TicketService`` and serialized through ``TicketRead``): on both databases, over a
varied data set built through the API. ``SUPPORTDESK_WRITE_GOLDEN=1`` captures them again.

Every clock the data set and the reads depend on stands still, moved by hand between
steps, so instants are kept as they are (only ids are normalised)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from golden_normaliser import Normaliser, freeze_clocks

from supportdesk.kit.etag import etag_of
from supportdesk.kit.pagination import decode_cursor, encode_cursor
from supportdesk.tickets.views import render

GOLDEN = Path(__file__).parent / "golden" / "ticket_reads.json"
# A Monday, 09:00 in Berlin.
BUILT = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
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
    client: httpx.AsyncClient,
    admin: dict[str, str],
    agent: dict[str, str],
    customer_key,
    at: Callable[[datetime], None],
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
    at(BUILT + timedelta(minutes=20))
    await _move(client, agent, ids["answered"], "in_progress")
    at(BUILT + timedelta(minutes=40))
    await _move(client, agent, ids["answered"], "awaiting_customer")
    key = await customer_key(premium)
    comment = {"body": "Here is more."}
    at(BUILT + timedelta(hours=2, seconds=1, microseconds=500))
    await _ok(
        await client.post(f"/api/v1/tickets/{ids['answered']}/comments", json=comment, headers=key)
    )
    ids["asked"] = await _ticket(client, admin, contract, **COMPLETE)
    at(BUILT + timedelta(hours=2, minutes=30))
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
    at(BUILT + timedelta(hours=3))
    url = f"/api/v1/tickets/{ids['dongle']}/dongle-return"
    await _ok(await client.post(url, json={}, headers=agent))
    return ids


class TestReadAnswersMatchTheCapturedOnes:
    async def test_read_list_and_queue_answer_the_same_bytes(
        self,
        client: httpx.AsyncClient,
        headers_for,
        backend: str,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        at = freeze_clocks(monkeypatch, BUILT)

        admin = await headers_for("admin")
        agent = await headers_for("agent")

        async def customer_key(customer_id: str) -> dict[str, str]:
            return dict(await headers_for("customer", customer_id))

        ids = await _data_set(client, admin, agent, customer_key, at)
        tickets = [v for k, v in ids.items() if k not in ("standard", "premium", "contract")]
        # Time stands once the data set is built; 30 hours on, some are late.
        at(BUILT + timedelta(hours=30))
        answers: list[str] = []

        def record(label: str, response: httpx.Response) -> None:
            assert response.status_code == 200, response.text
            body = response.json()
            if "next_cursor" in body and body["next_cursor"] is not None:
                # The cursor is the last id, encoded: compared as that id.
                cursor = body["next_cursor"]
                text = response.content.decode().replace(cursor, f"after {decode_cursor(cursor)}")
            else:
                text = response.content.decode()
            etag = response.headers.get("etag")
            tag = "no-etag"
            if etag is not None:
                assert etag == etag_of(body["id"], datetime.fromisoformat(body["updated_at"]))
                tag = "etag"
            media = response.headers["content-type"]
            answers.append(f"{label} {response.status_code} {media} {tag} {text}")

        # Read: every ticket, admin's key.
        seen: dict[str, set[object]] = {}
        for name, ticket_id in ids.items():
            if ticket_id not in tickets:
                continue
            response = await client.get(f"/api/v1/tickets/{ticket_id}", headers=admin)
            record(f"read {name}", response)
            for field, value in response.json().items():
                seen.setdefault(field, set()).add(json.dumps(value))

        # The data set is varied enough to mean something.
        assert len(seen["status"]) == 6
        assert len(seen["support_group"]) == 3
        assert len(seen["sla_state"]) >= 3
        assert len(seen["blockers"]) >= 4
        assert len(seen["proposed_appointments"]) == 2

        # List: pages of 3 with and without filters, following the cursors. Other tests
        # commit tickets to the shared database: lists not bound to this test's customers
        # start after the ticket before its first.
        before_first = encode_cursor(f"tkt_{min(tickets)[4:14]}{'0' * 16}")
        filters: list[dict[str, str]] = [
            {"customer_id": ids["contract"]},
            {"customer_id": ids["premium"], "status": "open"},
            {"customer_id": ids["standard"], "q": "import"},
            {"cursor": before_first},
            {"severity": "normal", "category": "bug_report", "cursor": before_first},
            {"q": "import", "cursor": before_first},
        ]
        for query in filters:
            label = " ".join(f"{k}={v}" for k, v in query.items() if k != "cursor")
            cursor = query.get("cursor")
            while True:
                params = {**query, "limit": "3", **({"cursor": cursor} if cursor else {})}
                response = await client.get("/api/v1/tickets", params=params, headers=admin)
                record(f"list {label or 'all'}", response)
                cursor = response.json()["next_cursor"]
                if cursor is None:
                    break

        # The queue: pages of 2, following the cursors. It holds other tests' open tickets
        # too: only this test's are compared, in the order the queue gives them, after
        # checking that each page is the items' bytes as serialized.
        cursor = None
        queued: list[str] = []
        for _ in range(10_000):
            params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
            response = await client.get("/api/v1/queue", params=params, headers=agent)
            assert response.status_code == 200, response.text
            page = response.json()
            assert render(page) == response.content
            queued += [render(item).decode() for item in page["items"] if item["id"] in tickets]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        answers += [f"queue {item}" for item in queued]

        normalise = Normaliser(instants=False)
        captured = {"answers": [normalise(a) for a in answers]}
        if os.environ.get("SUPPORTDESK_WRITE_GOLDEN"):
            GOLDEN.write_text(json.dumps(captured, ensure_ascii=False, indent=1) + "\n")
        expected = json.loads(GOLDEN.read_text())
        assert list(captured) == list(expected)
        for part, lines in expected.items():
            assert captured[part] == lines, f"{backend}: {part}"


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
