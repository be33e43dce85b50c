"""The answers of the tickets' writes (create, comment, claim, transitions, escalation),
byte for byte, against answers captured from the ORM implementation, so that a rewrite
to Core statements can be shown to answer the same: the response bodies (status, media
type, whether an ETag is set), the ``ticket.*`` events, the tickets' audit rows, and the
rows of ``ticket_pauses``, ``ticket_comments``, ``ticket_escalations`` and ``tickets``
this test wrote, on both databases. ``SUPPORTDESK_WRITE_GOLDEN=1`` captures them again.
The stored ``version`` of two tickets placed anew without a touch was captured again
once the version came to count every write of the row (guarded changes), nothing else.

Every clock the ticket writes read stands still on a day in 1999, moved by hand between
steps: due times, SLA states and pauses are the same on every run, so instants are kept
as they are (only ids are normalised), and the test's critical ticket of a contract
customer is the oldest in the queue, whatever other tests left there.

One deliberate difference from the ORM capture: a change that ends a pause left two audit
rows there (the ORM flushed halfway, to read the pause back: a ``transition`` row, then an
``update`` row with the new due time alone). The Core path writes one change as one audit
row, with every field it changed; the golden file was captured again for those rows only.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from golden_normaliser import Normaliser, freeze_clocks, stored_row
from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from supportdesk.models import AuditEntry, Comment, Escalation, Event, Ticket, TicketPause

GOLDEN = Path(__file__).parent / "golden" / "ticket_writes.json"
# A Monday, 11:00 in Berlin: within business hours.
START = datetime(1999, 3, 1, 10, 0, tzinfo=UTC)
PRODUCT = "GOLDEN-TICKET-ADDON"
COMPLETE: dict[str, object] = {
    "steps_to_reproduce": "1. Add-on öffnen 2. Import klicken",
    "environment": {"os": "Windows 10", "host_application": "ArchiCAD", "host_version": "22"},
}
# Outside installation hours (Mon-Fri 07:00-18:00 Berlin): an evening and a Saturday.
EVENING = {"starts_at": "1999-03-03T19:00:00+01:00", "ends_at": "1999-03-03T21:00:00+01:00"}
SATURDAY = {"starts_at": "1999-03-06T10:00:00+01:00", "ends_at": "1999-03-06T12:30:00.5+01:00"}
WITHIN = {"starts_at": "1999-03-04T09:00:00+01:00", "ends_at": "1999-03-04T11:00:00+01:00"}


@pytest.fixture
async def admin(headers_for) -> dict[str, str]:
    return dict(await headers_for("admin"))


@pytest.fixture
async def agent(headers_for) -> dict[str, str]:
    return dict(await headers_for("agent"))


class TestTicketWriteAnswersMatchTheCapturedOnes:
    async def test_create_comment_claim_move_and_escalate_answer_the_same_bytes(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        admin,
        agent,
        headers_for,
        backend: str,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        at = freeze_clocks(monkeypatch, START)

        # Other tests commit to the shared test database: only what this test writes counts.
        earlier_events = set((await session.scalars(select(Event.id))).all())
        earlier_audit = set((await session.scalars(select(AuditEntry.id))).all())
        answers: list[str] = []
        mine: list[str] = []

        async def send(
            label: str,
            url: str,
            headers: dict[str, str] | None,
            body: object = None,
            *,
            method: str = "POST",
            content: bytes | None = None,
        ) -> dict[str, Any]:
            if content is not None:
                headers = {**(headers or {}), "Content-Type": "application/json"}
                response = await client.request(method, url, content=content, headers=headers)
            else:
                response = await client.request(method, url, json=body, headers=headers)
            etag = "etag" if "etag" in response.headers else "no-etag"
            media = response.headers.get("content-type", "-")
            answers.append(
                f"{label} {response.status_code} {media} {etag} {response.content.decode()}"
            )
            return dict(response.json()) if response.content else {}

        async def create(label: str, headers: dict[str, str] | None, body: object) -> str:
            answer = await send(label, "/api/v1/tickets", headers, body)
            if answer.get("id", "").startswith("tkt_"):
                mine.append(answer["id"])
            return str(answer.get("id", ""))

        async def move(label: str, ticket_id: str, to: str, note: str | None = None) -> None:
            body = {"to": to, **({"note": note} if note is not None else {})}
            await send(label, f"/api/v1/tickets/{ticket_id}/transitions", agent, body)

        async def comment(
            label: str, ticket_id: str, headers: dict[str, str], body: str, **more: object
        ) -> None:
            url = f"/api/v1/tickets/{ticket_id}/comments"
            await send(label, url, headers, {"body": body, **more})

        async def setup(url: str, body: object, *, method: str = "POST") -> str:
            response = await client.request(method, url, json=body, headers=admin)
            assert response.status_code in (200, 201), response.text
            return str(response.json().get("id", ""))

        def ticket(category: str, severity: str = "normal", **fields: object) -> dict[str, object]:
            return {
                "category": category,
                "severity": severity,
                "subject": "Import schlägt fehl – Umlaute",
                "description": "Der Import bricht mit „Fehler 17“ ab.",
                **fields,
            }

        # The customers: one per support group, a contract starting before the clock.
        contract = await setup("/api/v1/customers", {"name": "Vertrag AG"})
        await setup(
            "/api/v1/contracts",
            {"customer_id": contract, "kind": "maintenance", "starts_on": "1998-01-01"},
        )
        premium = await setup("/api/v1/customers", {"name": "Einheiten GmbH"})
        await setup(
            f"/api/v1/customers/{premium}/ledger/entries", {"kind": "purchase", "units": 10}
        )
        standard = await setup("/api/v1/customers", {"name": "Standard KG"})
        contact = await setup(
            f"/api/v1/customers/{contract}/contacts",
            {"name": "Horst Maier", "email": "horst.maier@example.com"},
        )
        strangers_contact = await setup(
            f"/api/v1/customers/{premium}/contacts", {"name": "Eva Fremd"}
        )
        await setup(
            f"/api/v1/products/{PRODUCT}",
            {"name": "Golden Add-on", "latest_version": "2.10.0"},
            method="PUT",
        )
        contract_key = dict(await headers_for("customer", contract))
        premium_key = dict(await headers_for("customer", premium))
        standard_key = dict(await headers_for("customer", standard))
        integration = dict(await headers_for("integration"))

        # Create, Monday 11:00 Berlin. The critical ticket of the contract customer first:
        # the oldest of the most urgent, the one the claim below must take.
        urgent = await create(
            "contract critical",
            agent,
            {"customer_id": contract, **ticket("operation", "critical", **COMPLETE)},
        )
        queued = await create(
            "contract by agent", agent, {"customer_id": contract, **ticket("bug_report")}
        )
        await create("customer key for itself", premium_key, ticket("how_to", "low"))
        premium_ticket = await create(
            "premium with units, outdated version",
            agent,
            {
                "customer_id": premium,
                **ticket("bug_report", "high", **COMPLETE),
                "product": PRODUCT,
                "addon_version": "2.9.0",
            },
        )
        outdated_only = await create(
            "premium how_to, outdated version only",
            admin,
            {
                "customer_id": premium,
                **ticket("how_to"),
                "product": PRODUCT,
                "addon_version": "2.9.1",
            },
        )
        held = await create(
            "standard held by blockers", agent, {"customer_id": standard, **ticket("bug_report")}
        )
        await create("standard how_to by its key", standard_key, ticket("how_to"))
        no_version = await create(
            "standard product without version",
            agent,
            {
                "customer_id": standard,
                **ticket("operation", "high", **COMPLETE),
                "product": PRODUCT,
            },
        )
        with_contact = await create(
            "contract with contact",
            contract_key,
            {"customer_id": contract, "contact_id": contact, **ticket("operation")},
        )
        await create(
            "unknown contact",
            agent,
            {
                "customer_id": contract,
                "contact_id": "con_00000000000000000000000000",
                **ticket("operation"),
            },
        )
        await create(
            "another customer's contact",
            agent,
            {"customer_id": contract, "contact_id": strangers_contact, **ticket("operation")},
        )
        await create(
            "unknown customer",
            agent,
            {"customer_id": "cus_00000000000000000000000000", **ticket("operation")},
        )
        await create(
            "customer key for another customer",
            premium_key,
            {"customer_id": contract, **ticket("operation")},
        )
        installation = await create(
            "installation outside hours, two appointments",
            agent,
            {
                "customer_id": standard,
                **ticket("installation"),
                "proposed_appointments": [EVENING, SATURDAY],
            },
        )
        await create(
            "installation within hours, one appointment",
            integration,
            {"customer_id": premium, **ticket("installation"), "proposed_appointments": [WITHIN]},
        )
        await create(
            "installation outside hours, one appointment",
            agent,
            {
                "customer_id": standard,
                **ticket("installation"),
                "proposed_appointments": [SATURDAY],
            },
        )
        await create(
            "environment and extra fields",
            premium_key,
            ticket(
                "database_defect",
                "critical",
                steps_to_reproduce="  ",
                addon_version=" 3.0 ",
                environment={
                    "os": "Windows Server 2019",
                    "host_application": "AutoCAD",
                    "host_version": "2020",
                    "database_server": "SQL Server 2017",
                    "extra": {
                        "Lizenz": "Netzwerk",
                        "flag": True,
                        "ratio": 0.25,
                        "count": 3,
                        "big": 9007199254740993,
                        "none": None,
                        "text": "ä\u2028<&>",
                    },
                },
            ),
        )
        concept = await create(
            "change request with its concept",
            agent,
            {
                "customer_id": contract,
                **ticket("change_request"),
                "concept": "Export nach IFC 4",
                "concept_en": "Export to IFC 4",
            },
        )
        no_concept_en = await create(
            "change request without concept_en",
            agent,
            {"customer_id": contract, **ticket("change_request"), "concept": "Nur Deutsch"},
        )
        dongle = await create(
            "hardware exchange", agent, {"customer_id": contract, **ticket("hardware_exchange")}
        )
        # Refusals.
        await create("no key", None, {"customer_id": contract, **ticket("how_to")})
        await create("empty body", agent, {})
        await create(
            "unknown field", agent, {"customer_id": contract, **ticket("how_to"), "priority": 1}
        )
        await create("unknown category", agent, {"customer_id": contract, **ticket("feature")})
        await create(
            "unknown severity", agent, {"customer_id": contract, **ticket("how_to", "urgent")}
        )
        await create(
            "severity not a string", agent, {"customer_id": contract, **ticket("how_to", 1)}
        )
        await create(
            "blank subject", agent, {"customer_id": contract, **ticket("how_to"), "subject": "  "}
        )
        await create("staff without customer_id", agent, ticket("how_to"))
        await create("customer_id too long", agent, {"customer_id": "c" * 41, **ticket("how_to")})
        await create(
            "bad product code",
            agent,
            {"customer_id": contract, **ticket("how_to"), "product": "a b"},
        )
        await create(
            "appointment ending before it starts",
            agent,
            {
                "customer_id": standard,
                **ticket("installation"),
                "proposed_appointments": [
                    {"starts_at": EVENING["ends_at"], "ends_at": EVENING["starts_at"]}
                ],
            },
        )
        await create(
            "appointment without offset",
            agent,
            {
                "customer_id": standard,
                **ticket("installation"),
                "proposed_appointments": [
                    {"starts_at": "1999-03-03T19:00:00", "ends_at": "1999-03-03T21:00:00"}
                ],
            },
        )
        await send("not JSON", "/api/v1/tickets", agent, content=b"{not json")

        # The claim takes the critical ticket of the contract customer.
        at(START + timedelta(minutes=5))
        claimed = await send("claim", "/api/v1/queue/claim", agent, None)
        assert claimed.get("id") == urgent, f"{backend}: the claim took {claimed.get('id')}"
        await send("claim by integration", "/api/v1/queue/claim", integration, None)

        # An hour on: questions, answers, notes.
        at(START + timedelta(hours=1, microseconds=250_000))
        await move("open to in_progress", queued, "in_progress")
        await move("in_progress to awaiting_customer", queued, "awaiting_customer")
        await move("awaiting_customer to in_progress (illegal)", queued, "in_progress")
        await comment(
            "agent's visible answer", premium_ticket, agent, "Bitte Version 2.10 installieren."
        )
        await comment(
            "agent's internal note", with_contact, agent, "Kunde ruft zurück.", internal=True
        )
        await move("question to the customer", with_contact, "awaiting_customer")
        await comment("customer's internal comment", with_contact, contract_key, "x", internal=True)
        await comment("customer on another customer's ticket", with_contact, standard_key, "Hallo?")
        await comment("comment on an unknown ticket", "tkt_00000000000000000000000000", agent, "x")
        await comment("integration may not comment", with_contact, integration, "x")
        await send("empty comment", f"/api/v1/tickets/{with_contact}/comments", agent, {"body": ""})
        await send(
            "internal not a boolean",
            f"/api/v1/tickets/{with_contact}/comments",
            agent,
            {"body": "x", "internal": "yes"},
        )

        # 13:17:12.345678 UTC: the customer answers, pauses end, work goes on.
        at(START + timedelta(hours=3, minutes=17, seconds=12, microseconds=345_678))
        await comment("customer's answer", with_contact, contract_key, "Hier die Logdatei.")
        await comment("customer's answer on a held ticket", held, standard_key, "Windows 10.")
        await move("awaiting_customer to open", queued, "open")
        await move("open to in_progress again", queued, "in_progress")
        await move(
            "in_progress to resolved with a note",
            queued,
            "resolved",
            "Workaround: Import in zwei Teilen.",
        )
        await move("change request taken (at risk)", concept, "in_progress")
        await move("change request without concept_en taken", no_concept_en, "in_progress")
        await move("dongle exchange taken", dongle, "in_progress")
        await send(
            "customer edits the held ticket",
            f"/api/v1/tickets/{no_version}",
            standard_key,
            {"addon_version": "2.10.0", "steps_to_reproduce": None},
            method="PATCH",
        )
        await send(
            "agent updates the version",
            f"/api/v1/tickets/{outdated_only}",
            agent,
            {"addon_version": "2.10.0"},
            method="PATCH",
        )

        # 16:45 Berlin: closing, escalating, refusing.
        at(START + timedelta(hours=5, minutes=45))
        await move("resolved to closed", queued, "closed")
        await move("closed to open (illegal)", queued, "open")
        escalations = f"/api/v1/tickets/{urgent}/escalations"
        await send(
            "escalation",
            escalations,
            agent,
            {"vendor": " Graphisoft Inc. ", "summary_en": "Import stops with error 17."},
        )
        await send(
            "escalation again (illegal)", escalations, agent, {"vendor": "V", "summary_en": "s"}
        )
        await send(
            "escalation without concept_en",
            f"/api/v1/tickets/{no_concept_en}/escalations",
            agent,
            {"vendor": "V", "summary_en": "s"},
        )
        await send(
            "escalation of a queued ticket",
            f"/api/v1/tickets/{installation}/escalations",
            agent,
            {"vendor": "V", "summary_en": "s"},
        )
        await send(
            "escalation of an unknown ticket",
            "/api/v1/tickets/tkt_00000000000000000000000000/escalations",
            agent,
            {"vendor": "V", "summary_en": "s"},
        )
        await send(
            "escalation, blank vendor", escalations, agent, {"vendor": " ", "summary_en": "s"}
        )
        await send(
            "escalation by a customer",
            escalations,
            contract_key,
            {"vendor": "V", "summary_en": "s"},
        )
        await move("change request escalated", concept, "escalated")
        await move("escalated without concept_en", no_concept_en, "escalated")
        await move("dongle exchange resolved", dongle, "resolved")
        await move("dongle exchange closed before the dongle is back", dongle, "closed")
        await move("held ticket opened by hand", held, "open")
        await move("held ticket withdrawn", held, "closed")
        await move("unknown target", queued, "done")
        await send(
            "transition of an unknown ticket",
            "/api/v1/tickets/tkt_00000000000000000000000000/transitions",
            agent,
            {"to": "open"},
        )
        await send(
            "transition by a customer",
            f"/api/v1/tickets/{with_contact}/transitions",
            contract_key,
            {"to": "closed"},
        )

        # Tuesday 10:00 Berlin: the vendor answered.
        at(datetime(1999, 3, 2, 9, 0, tzinfo=UTC))
        await move("escalated to in_progress", urgent, "in_progress")
        await move("escalated to resolved", concept, "resolved")
        await move("in_progress to open (handed back)", urgent, "open")

        # Saturday: outside business hours.
        at(datetime(1999, 3, 6, 12, 0, tzinfo=UTC))
        await create(
            "contract, on a Saturday", agent, {"customer_id": contract, **ticket("how_to")}
        )
        await create(
            "standard, on a Saturday", agent, {"customer_id": standard, **ticket("installation")}
        )
        # The standard customer buys units: its held how_to is placed anew (premium now).
        await setup(
            f"/api/v1/customers/{standard}/ledger/entries", {"kind": "purchase", "units": 5}
        )

        normalise = Normaliser(instants=False)
        captured: dict[str, list[str]] = {"answers": [normalise(a) for a in answers]}
        events = (await session.scalars(select(Event).order_by(Event.id))).all()
        captured["events"] = [
            normalise(
                f"{e.type} {e.resource_type} {e.resource_id} {e.customer_id} "
                f"{json.dumps(e.data, ensure_ascii=False)}"
            )
            for e in events
            if e.type.startswith("ticket.") and e.resource_id in mine and e.id not in earlier_events
        ]
        audit = (
            await session.scalars(
                select(AuditEntry)
                .where(AuditEntry.object_type == "ticket", AuditEntry.object_id.in_(mine))
                # The rows of one flush share ``at`` and come in no set order (the
                # session's dirty set is ordered by memory address): by ticket within it.
                .order_by(AuditEntry.at, AuditEntry.object_id, AuditEntry.id)
            )
        ).all()
        captured["audit"] = [
            normalise(
                f"{a.actor_key_id} {a.actor_role} {a.action} {a.object_type} "
                f"{a.object_id} {json.dumps(a.changes, ensure_ascii=False)}"
            )
            for a in audit
            if a.id not in earlier_audit
        ]
        for part, model, order in (
            ("ticket_pauses", TicketPause, TicketPause.id),
            ("ticket_comments", Comment, Comment.id),
            ("ticket_escalations", Escalation, Escalation.id),
            ("tickets", Ticket, Ticket.id),
        ):
            table = cast(Table, model.__table__)
            key = table.c.id if model is Ticket else table.c.ticket_id
            rows = (await session.execute(select(table).where(key.in_(mine)).order_by(order))).all()
            if model is TicketPause:
                # Its serial id counts every other test's pauses too.
                captured[part] = [
                    normalise(f"{r.ticket_id} {r.started_at.isoformat()} {r.ended_at.isoformat()}")
                    for r in rows
                ]
            else:
                captured[part] = [normalise(stored_row(table, r)) for r in rows]

        if os.environ.get("SUPPORTDESK_WRITE_GOLDEN"):
            GOLDEN.write_text(json.dumps(captured, ensure_ascii=False, indent=1) + "\n")
        expected = json.loads(GOLDEN.read_text())
        assert list(captured) == list(expected)
        for part, lines in expected.items():
            assert captured[part] == lines, f"{backend}: {part}"
