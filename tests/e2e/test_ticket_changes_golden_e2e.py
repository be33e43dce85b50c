"""The answers of the tickets' colder writes, byte for byte, against answers captured from
the ORM implementation, so that a rewrite to Core statements can be shown to answer the
same: edits (PATCH, with and without ``If-Match``), uploads, dongle returns, tickets
placed anew as their customer's standing changes (a purchase, a debit to zero, a
reversal, a contract added, ended, or starting with the date) and the SLA sweep. As
``test_ticket_writes_golden_e2e.py`` does: the response bodies (status, media type,
whether an ETag naming the answer's version is set), the ``ticket.*`` events, the
tickets' audit rows, and the rows of ``ticket_pauses``, ``ticket_attachments`` and
``tickets`` this test wrote, on both databases. ``SUPPORTDESK_WRITE_GOLDEN=1`` captures
them again.

Every clock these writes read stands still on a day in June 1999, moved by hand between
steps, so instants are kept as they are (only ids are normalised); the test's tickets
are the only ones due in 1999, so the sweeps announce only them. What a sweep
announced is listed with its answer, by type and by ticket in the order they were opened
(the sweep reads tickets by due time, and many of them are due at the same instant).

One deliberate difference from the ORM capture: a change that ends a pause left two audit
rows there (the ORM flushed halfway, to read the pause back: a ``transition`` row, then an
``update`` row with the new due time alone), for an edit, an upload or a customer's
answer that opened a ticket. The Core path writes one change as one audit row, with
every field it changed; the golden file was captured again for those rows only. And
the stored ``version``, which no answer shows, now counts every write of a ticket's row
(a placing anew, an SLA announcement), not only the touches: a change read without a
lock is written only while the ticket is at the version read. The stored tickets'
``version`` values were captured again, nothing else.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI
from golden_normaliser import Normaliser, freeze_clocks, stored_row
from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from supportdesk.kit.etag import etag_of
from supportdesk.models import Attachment, AuditEntry, Event, Ticket, TicketPause
from supportdesk.tickets.service import TicketService

GOLDEN = Path(__file__).parent / "golden" / "ticket_changes.json"
# A Monday, 11:00 in Berlin (summer time): within business hours.
START = datetime(1999, 6, 7, 9, 0, tzinfo=UTC)
PRODUCT = "GOLDEN-CHANGE-ADDON"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
COMPLETE: dict[str, object] = {
    "steps_to_reproduce": "1. Add-on öffnen 2. Export klicken",
    "environment": {"os": "Windows 2000", "host_application": "ArchiCAD", "host_version": "6.5"},
}
# Installation hours are Mon-Fri 07:00-18:00 Berlin: one within, two outside.
WITHIN = {"starts_at": "1999-06-10T09:00:00+02:00", "ends_at": "1999-06-10T11:00:00+02:00"}
EVENING = {"starts_at": "1999-06-09T19:00:00+02:00", "ends_at": "1999-06-09T21:00:00+02:00"}
SATURDAY = {"starts_at": "1999-06-12T10:00:00+02:00", "ends_at": "1999-06-12T12:30:00.5+02:00"}
UNKNOWN = "tkt_00000000000000000000000000"
SWEPT = ("ticket.sla_at_risk", "ticket.sla_breached")


@pytest.fixture
async def admin(headers_for) -> dict[str, str]:
    return dict(await headers_for("admin"))


@pytest.fixture
async def agent(headers_for) -> dict[str, str]:
    return dict(await headers_for("agent"))


class TestTicketChangeAnswersMatchTheCapturedOnes:
    async def test_edits_uploads_dongles_standing_and_sweeps_answer_the_same_bytes(
        self,
        app: FastAPI,
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
        announcements: set[str] = set()
        normalise = Normaliser(instants=False)
        rules = app.state.rules

        def record(label: str, response: httpx.Response) -> dict[str, Any]:
            body = response.json() if response.content else {}
            etag = response.headers.get("etag")
            if etag is None:
                tag = "no-etag"
            elif isinstance(body, dict) and etag == etag_of(
                str(body.get("id")), datetime.fromisoformat(str(body.get("updated_at")))
            ):
                tag = "etag"
            else:
                tag = f"other-etag {etag}"
            media = response.headers.get("content-type", "-")
            answers.append(
                f"{label} {response.status_code} {media} {tag} {response.content.decode()}"
            )
            return dict(body) if isinstance(body, dict) else {}

        async def send(
            label: str,
            url: str,
            headers: dict[str, str] | None,
            body: object = None,
            *,
            method: str = "POST",
            if_match: str | None = None,
        ) -> dict[str, Any]:
            headers = dict(headers or {})
            if if_match is not None:
                headers["If-Match"] = if_match
            if body is None and method != "PATCH":
                response = await client.request(method, url, headers=headers)
            else:
                response = await client.request(method, url, json=body, headers=headers)
            return record(label, response)

        async def patch(
            label: str,
            ticket_id: str,
            headers: dict[str, str] | None,
            body: object,
            if_match: str | None = None,
        ) -> dict[str, Any]:
            url = f"/api/v1/tickets/{ticket_id}"
            return await send(label, url, headers, body, method="PATCH", if_match=if_match)

        async def read(label: str, ticket_id: str) -> str:
            response = await client.get(f"/api/v1/tickets/{ticket_id}", headers=agent)
            record(label, response)
            return response.headers["etag"]

        async def upload(
            label: str,
            ticket_id: str,
            headers: dict[str, str],
            kind: str,
            content: bytes,
            filename: str,
            content_type: str,
            *,
            kind_in_query: bool = False,
        ) -> None:
            url = f"/api/v1/tickets/{ticket_id}/attachments"
            response = await client.post(
                url + (f"?kind={kind}" if kind_in_query else ""),
                files={"file": (filename, content, content_type)},
                data={} if kind_in_query else {"kind": kind},
                headers=headers,
            )
            record(label, response)

        async def move(ticket_id: str, to: str) -> None:
            url = f"/api/v1/tickets/{ticket_id}/transitions"
            response = await client.post(url, json={"to": to}, headers=agent)
            assert response.status_code == 200, response.text

        async def setup(url: str, body: object, *, method: str = "POST") -> str:
            response = await client.request(method, url, json=body, headers=admin)
            assert response.status_code in (200, 201), response.text
            return str(response.json().get("id", ""))

        async def create(
            customer_id: str,
            category: str,
            severity: str = "normal",
            headers: dict[str, str] | None = None,
            **fields: object,
        ) -> str:
            body = {
                "customer_id": customer_id,
                "category": category,
                "severity": severity,
                "subject": "Export schlägt fehl – Umlaute",
                "description": "Der Export bricht mit „Fehler 42“ ab.",
                **fields,
            }
            response = await client.post("/api/v1/tickets", json=body, headers=headers or agent)
            assert response.status_code == 201, response.text
            ticket_id = str(response.json()["id"])
            mine.append(ticket_id)
            return ticket_id

        async def sweep(label: str) -> None:
            async with app.state.sessionmaker() as swept:
                announced = await TicketService(swept, rules).sweep_sla()
                await swept.commit()
            answers.append(f"{label} announced {announced}")
            found = (
                await session.scalars(
                    select(Event).where(
                        Event.type.in_(SWEPT),
                        Event.resource_id.in_(mine),
                        Event.id.not_in(earlier_events | announcements),
                    )
                )
            ).all()
            for e in sorted(found, key=lambda e: (e.type, mine.index(e.resource_id))):
                announcements.add(e.id)
                answers.append(
                    f"{label}: {e.type} {e.resource_type} {e.resource_id} {e.customer_id} "
                    f"{json.dumps(e.data, ensure_ascii=False)}"
                )

        async def turn(label: str) -> None:
            async with app.state.sessionmaker() as turned:
                customers = await TicketService(turned, rules).refresh_turning_contracts()
                await turned.commit()
            answers.append(f"{label} customers {customers}")

        # The customers: each group, and one for each way a standing changes.
        standard = await setup("/api/v1/customers", {"name": "Standard KG"})
        premium = await setup("/api/v1/customers", {"name": "Einheiten GmbH"})
        await setup(
            f"/api/v1/customers/{premium}/ledger/entries", {"kind": "purchase", "units": 10}
        )
        contract = await setup("/api/v1/customers", {"name": "Vertrag AG"})
        await setup(
            "/api/v1/contracts",
            {"customer_id": contract, "kind": "maintenance", "starts_on": "1998-01-01"},
        )
        buyer = await setup("/api/v1/customers", {"name": "Käufer OHG"})
        spender = await setup("/api/v1/customers", {"name": "Verbraucher e.K."})
        await setup(f"/api/v1/customers/{spender}/ledger/entries", {"kind": "purchase", "units": 3})
        signer = await setup("/api/v1/customers", {"name": "Neuvertrag GmbH"})
        leaver = await setup("/api/v1/customers", {"name": "Altvertrag AG"})
        leaving = await setup(
            "/api/v1/contracts",
            {"customer_id": leaver, "kind": "maintenance", "starts_on": "1998-01-01"},
        )
        turner = await setup("/api/v1/customers", {"name": "Mittwoch KG"})
        await setup(
            f"/api/v1/products/{PRODUCT}",
            {"name": "Golden Change Add-on", "latest_version": "3.1.0"},
            method="PUT",
        )
        standard_key = dict(await headers_for("customer", standard))
        premium_key = dict(await headers_for("customer", premium))
        contract_key = dict(await headers_for("customer", contract))
        integration = dict(await headers_for("integration"))

        # Monday 11:00 Berlin: the tickets.
        s_held = await create(standard, "bug_report", headers=standard_key)
        s_shot = await create(standard, "operation", **COMPLETE)
        s_db = await create(standard, "database_defect", "high", **COMPLETE)
        s_install = await create(standard, "installation", proposed_appointments=[WITHIN])
        s_progress = await create(standard, "operation", "low", **COMPLETE)
        p_edit = await create(premium, "bug_report", "high", **COMPLETE)
        p_answer = await create(premium, "bug_report", **COMPLETE)
        p_upload_answer = await create(premium, "how_to")
        p_db = await create(premium, "database_defect", "critical", **COMPLETE)
        p_change = await create(premium, "change_request", headers=premium_key)
        c_dongle = await create(contract, "hardware_exchange")
        c_dongle_dated = await create(contract, "hardware_exchange", "high")
        c_op = await create(contract, "operation", **COMPLETE)
        b_howto = await create(buyer, "how_to")
        b_bug = await create(buyer, "bug_report", **COMPLETE)
        b_install = await create(buyer, "installation", "high", proposed_appointments=[WITHIN])
        b_taken = await create(buyer, "installation", "low")
        d_bug = await create(spender, "bug_report", **COMPLETE)
        d_howto = await create(spender, "how_to", "low")
        d_install = await create(spender, "installation", "critical")
        k_bug = await create(signer, "bug_report", "high", **COMPLETE)
        k_howto = await create(signer, "how_to")
        e_bug = await create(leaver, "bug_report", **COMPLETE)
        e_howto = await create(leaver, "how_to", "high")
        t_howto = await create(turner, "how_to")
        await move(b_taken, "in_progress")

        # 12:00 Berlin: edits, uploads, dongles.
        at(START + timedelta(hours=1))
        await patch(
            "customer completes the held ticket, still held by the screenshot",
            s_held,
            standard_key,
            {
                "steps_to_reproduce": "Export starten.",
                "environment": {"os": "Windows 98", "host_application": "AutoCAD"},
            },
        )
        await upload(
            "customer's screenshot opens the held ticket",
            s_held,
            standard_key,
            "screenshot",
            PNG,
            "Bildschirm.png",
            "image/png",
        )
        etag = await read("read before the edit", p_edit)
        await patch(
            "edit with a matching If-Match",
            p_edit,
            agent,
            {"subject": "  Neuer Betreff  ", "severity": "critical"},
            if_match=etag,
        )
        await patch("edit with a stale If-Match", p_edit, agent, {"subject": "x"}, if_match=etag)
        await patch(
            "edit with If-Match *",
            p_edit,
            agent,
            {"environment": {"host_version": "7.0", "extra": {"Lizenz": "Einzelplatz", "n": 2}}},
            if_match="*",
        )
        etag = await read("read again", p_edit)
        await patch(
            "edit with a weak If-Match among others, environment cleared",
            p_edit,
            agent,
            {"environment": None},
            if_match=f'"nope", W/{etag}',
        )
        await patch(
            "edit without If-Match, outdated version",
            p_edit,
            agent,
            {"product": PRODUCT, "addon_version": " 3.0.9 "},
        )
        await patch("empty edit", p_edit, agent, {})
        await upload(
            "agent's screenshot opens a held ticket",
            s_shot,
            agent,
            "screenshot",
            PNG,
            "shot.png",
            "image/png",
            kind_in_query=True,
        )
        await patch(
            "agent names the product without version: held again",
            s_shot,
            agent,
            {"product": PRODUCT},
        )
        await upload(
            "agent's screenshot, a backup still missing",
            s_db,
            agent,
            "screenshot",
            PNG,
            "a.png",
            "image/png",
        )
        await upload(
            "agent's backup on a premium ticket",
            p_db,
            agent,
            "database_backup",
            b"BAK" * 100,
            "kunde.bak",
            "application/octet-stream",
        )
        await upload(
            "a log changes no blocker", c_op, agent, "log", b"17:00 error 42\n", "x.log", ""
        )
        await upload(
            "a document by the admin",
            c_op,
            admin,
            "document",
            b"%PDF-1.4\n",
            "Angebot.pdf",
            "application/pdf",
        )
        await upload(
            "a screenshot that is no image",
            p_edit,
            agent,
            "screenshot",
            b"not an image",
            "fake.png",
            "image/png",
        )
        await upload("upload to an unknown ticket", UNKNOWN, agent, "log", b"x", "x.log", "")
        await upload(
            "customer uploads to another's ticket", p_edit, standard_key, "log", b"x", "x.log", ""
        )
        await upload(
            "agent's screenshot on a ticket taken",
            s_progress,
            agent,
            "screenshot",
            PNG,
            "b.png",
            "image/png",
        )
        await move(s_progress, "in_progress")
        await patch(
            "steps removed from a ticket taken: held, but left to its supporter",
            s_progress,
            agent,
            {"steps_to_reproduce": None},
        )
        await patch(
            "one appointment outside hours", s_install, agent, {"proposed_appointments": [SATURDAY]}
        )
        await patch(
            "two appointments outside hours",
            s_install,
            standard_key,
            {"proposed_appointments": [EVENING, SATURDAY]},
        )
        await patch(
            "the concept of a change request",
            p_change,
            premium_key,
            {"concept": "Export nach IFC 2x", "concept_en": "Export to IFC 2x"},
        )
        await patch("integration lowers the severity", c_op, integration, {"severity": "low"})
        await patch("edit of an unknown ticket", UNKNOWN, agent, {"subject": "x"})
        await patch("customer edits another's ticket", p_edit, standard_key, {"subject": "x"})
        await patch("subject null", p_edit, agent, {"subject": None})
        await patch("unknown field", p_edit, agent, {"priority": 1})
        await patch("edit without key", p_edit, None, {"subject": "x"})
        await move(p_answer, "in_progress")
        await move(p_answer, "awaiting_customer")
        await move(p_upload_answer, "in_progress")
        await move(p_upload_answer, "awaiting_customer")
        await patch(
            "agent edits a ticket waiting on the customer",
            p_upload_answer,
            agent,
            {"description": "Frage an den Kunden."},
        )
        dongles = "/api/v1/tickets/{}/dongle-return"
        await send("dongle back, no body", dongles.format(c_dongle), agent)
        await send(
            "dongle back on a given day",
            dongles.format(c_dongle_dated),
            agent,
            {"received_at": "1999-06-04T15:30:00.25+02:00"},
        )
        await send("dongle back, empty body", dongles.format(c_dongle_dated), admin, {})
        await send("dongle of an operation", dongles.format(c_op), agent, {})
        await send("dongle of an unknown ticket", dongles.format(UNKNOWN), agent, {})
        await send("dongle by a customer", dongles.format(c_dongle), contract_key, {})
        await send(
            "dongle, instant without offset",
            dongles.format(c_dongle),
            agent,
            {"received_at": "1999-06-04T15:30:00"},
        )
        await move(c_dongle, "in_progress")
        await move(c_dongle, "resolved")
        await move(c_dongle, "closed")

        # 13:17:12.345678 Berlin: customers answer by edits and uploads.
        at(START + timedelta(hours=2, minutes=17, seconds=12, microseconds=345_678))
        await patch(
            "customer's edit answers", p_answer, premium_key, {"description": "Mehr Details."}
        )
        await upload(
            "customer's log answers",
            p_upload_answer,
            premium_key,
            "log",
            b"Protokoll\n",
            "protokoll.txt",
            "text/plain",
        )
        await patch(
            "customer's outdated version: still held",
            s_shot,
            standard_key,
            {"addon_version": "3.0"},
        )
        await patch(
            "customer's current version opens the ticket",
            s_shot,
            standard_key,
            {"addon_version": "3.1.0"},
        )
        await upload(
            "customer's backup opens the ticket",
            s_db,
            standard_key,
            "database_backup",
            b"BAK",
            "db.bak",
            "application/x-sql-backup",
        )

        # 14:00 Berlin: standings change.
        at(START + timedelta(hours=3))
        ledger = "/api/v1/customers/{}/ledger/entries"
        await send(
            "purchase opens what it held",
            ledger.format(buyer),
            admin,
            {"kind": "purchase", "units": 5},
        )
        await send(
            "debit to zero holds", ledger.format(spender), admin, {"kind": "debit", "units": 3}
        )
        await send("debit at zero", ledger.format(spender), admin, {"kind": "debit", "units": 1})
        bought = await send(
            "purchase after zero", ledger.format(spender), admin, {"kind": "purchase", "units": 2}
        )
        await send(
            "reversal to zero",
            ledger.format(spender),
            admin,
            {"kind": "reversal", "reverses": bought.get("id")},
        )
        await send(
            "contract added",
            "/api/v1/contracts",
            admin,
            {"customer_id": signer, "kind": "maintenance", "starts_on": "1999-01-01"},
        )
        await send(
            "contract ended",
            f"/api/v1/contracts/{leaving}",
            admin,
            {"ends_on": "1999-06-06"},
            method="PATCH",
        )
        await send(
            "contract from Wednesday",
            "/api/v1/contracts",
            admin,
            {"customer_id": turner, "kind": "maintenance", "starts_on": "1999-06-09"},
        )

        # 14:30 Berlin: the premium tickets are at risk, the critical ones late.
        at(START + timedelta(hours=3, minutes=30))
        await sweep("sweep at 14:30")
        await sweep("sweep again at 14:30")
        # Tuesday 10:00 Berlin: more are late.
        at(datetime(1999, 6, 8, 8, 0, tzinfo=UTC))
        await sweep("sweep on Tuesday")
        # Wednesday 09:00 Berlin: a contract starts with the date.
        at(datetime(1999, 6, 9, 7, 0, tzinfo=UTC))
        await turn("contracts turning on Wednesday")
        await sweep("sweep on Wednesday")
        await read("the turned ticket", t_howto)
        for name, ticket_id in (("b_taken", b_taken), ("k_howto", k_howto), ("e_howto", e_howto)):
            await read(f"read {name}", ticket_id)
        del b_howto, b_bug, b_install, d_bug, d_howto, d_install, k_bug, e_bug

        captured: dict[str, list[str]] = {"answers": [normalise(a) for a in answers]}
        events = (await session.scalars(select(Event).order_by(Event.id))).all()
        captured["events"] = [
            normalise(
                f"{e.type} {e.resource_type} {e.resource_id} {e.customer_id} "
                f"{json.dumps(e.data, ensure_ascii=False)}"
            )
            for e in events
            if e.type.startswith("ticket.")
            and e.resource_id in mine
            and e.id not in earlier_events | announcements
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
            ("ticket_attachments", Attachment, Attachment.id),
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
