"""The answers of the ledger's and the sessions' writes, byte for byte, against answers
captured from the ORM implementation they replaced (ids and instants normalised): the
response bodies, the events they publish and the audit rows they leave, on both
databases. ``SUPPORTDESK_WRITE_GOLDEN=1`` captures them again."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from golden_normaliser import Normaliser
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from supportdesk.models import AuditEntry, Event

GOLDEN = Path(__file__).parent / "golden" / "write_answers.json"


@pytest.fixture
async def admin(headers_for) -> dict[str, str]:
    return dict(await headers_for("admin"))


@pytest.fixture
async def agent(headers_for) -> dict[str, str]:
    return dict(await headers_for("agent"))


async def _customer(
    client: httpx.AsyncClient, admin: dict[str, str], name: str, **fields: object
) -> str:
    response = await client.post("/api/v1/customers", json={"name": name, **fields}, headers=admin)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


class TestWriteAnswersMatchTheCapturedOnes:
    async def test_ledger_and_session_end_answer_the_same_bytes(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        admin,
        agent,
        headers_for,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        # Live tests commit to the shared test database: only what this test writes counts.
        earlier_events = set((await session.scalars(select(Event.id))).all())
        earlier_audit = set((await session.scalars(select(AuditEntry.id))).all())
        answers: list[tuple[str, int, bytes]] = []

        async def post(label: str, url: str, headers: dict[str, str], body: object) -> str:
            response = await client.post(url, json=body, headers=headers)
            answers.append((label, response.status_code, response.content))
            return str(response.json().get("id", ""))

        # The ledger: purchases, debits crossing two warning levels, a debit beyond the
        # balance, a reversal, and the refusals.
        units = await _customer(client, admin, "Fa. Walter Maier GmbH")
        levelled = await _customer(client, admin, "Müller & Söhne", unit_warning_levels=[10, 4])
        for customer_id in (units, levelled):
            ledger = f"/api/v1/customers/{customer_id}/ledger/entries"
            await post("purchase", ledger, admin, {"kind": "purchase", "units": 12})
            await post("debit", ledger, admin, {"kind": "debit", "units": 1})
            await post(
                "debit crossing",
                ledger,
                admin,
                {"kind": "debit", "units": 8, "reference": "Telefon"},
            )
            debit = await post("debit beyond", ledger, admin, {"kind": "debit", "units": 7})
            await post("debit at zero", ledger, admin, {"kind": "debit", "units": 1})
            await post("reversal", ledger, admin, {"kind": "reversal", "reverses": debit})
            await post(
                "purchase big",
                ledger,
                admin,
                {"kind": "purchase", "units": 50, "reference": "INV-7"},
            )
        await post(
            "debit unknown",
            "/api/v1/customers/cus_00000000000000000000000000/ledger/entries",
            admin,
            {"kind": "debit", "units": 1},
        )
        bound = await headers_for("customer", units)
        await post(
            "debit by customer",
            f"/api/v1/customers/{units}/ledger/entries",
            bound,
            {"kind": "debit", "units": 1},
        )

        # Session ends: charged, charged beyond the balance, covered, not billable, at list
        # price for a standard customer, by the customer's emergency stop, and twice.
        start = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
        clock = [start]
        monkeypatch.setattr("supportdesk.sessions.service.utcnow", lambda: clock[0])
        contract = await _customer(client, admin, "Vertrag AG")
        await client.post(
            "/api/v1/contracts",
            json={"customer_id": contract, "kind": "maintenance", "starts_on": "2020-01-01"},
            headers=admin,
        )
        standard = await _customer(client, admin, "Standard KG")
        cases: list[tuple[str, str, dict[str, object], dict[str, object] | None, int]] = [
            ("charged", units, {"computer": "PC Herr Horst Maier"}, {"notes": "Lizenzserver"}, 20),
            ("charged beyond", levelled, {}, None, 200),
            ("covered", contract, {"computer": "Server"}, {"notes": "Update"}, 31),
            ("not billable", units, {}, {"billable": False, "non_billable_reason": "goodwill"}, 5),
            ("list price", standard, {"bill_at_list_price": True}, {"notes": "x"}, 16),
            ("emergency stop", units, {}, None, 44),
            ("never joined", units, {}, {"notes": "no answer"}, 0),
        ]
        for label, customer_id, opening, ending, minutes in cases:
            clock[0] = start
            opened = await client.post(
                "/api/v1/remote-sessions",
                json={"customer_id": customer_id, **opening},
                headers=agent,
            )
            assert opened.status_code == 201, opened.text
            session_id, code = opened.json()["id"], opened.json()["code"]
            key = await headers_for("customer", customer_id)
            if label != "never joined":
                joined = await client.post(
                    "/api/v1/remote-sessions/join", json={"code": code}, headers=key
                )
                assert joined.status_code == 200, joined.text
            clock[0] = start + timedelta(minutes=minutes, seconds=7)
            if label == "emergency stop":
                url = f"/api/v1/remote-sessions/{session_id}/emergency-stop"
                await post(label, url, key, None)
            else:
                url = f"/api/v1/remote-sessions/{session_id}/end"
                await post(label, url, agent, ending)
                await post(f"{label} again", url, agent, ending)
        await post(
            "end unknown", "/api/v1/remote-sessions/rs_00000000000000000000000000/end", agent, None
        )

        normalise = Normaliser()
        captured: dict[str, list[str]] = {
            "answers": [
                f"{label} {status} {normalise(body.decode())}" for label, status, body in answers
            ]
        }
        events = (await session.scalars(select(Event).order_by(Event.id))).all()
        captured["events"] = [
            normalise(
                f"{e.type} {e.resource_type} {e.resource_id} {e.customer_id} "
                f"{json.dumps(e.data, ensure_ascii=False)}"
            )
            for e in events
            if e.type.startswith(("ledger.", "session.")) and e.id not in earlier_events
        ]
        audit = (
            await session.scalars(
                select(AuditEntry)
                .where(AuditEntry.object_type.in_(["ledger_entry", "customer"]))
                .order_by(AuditEntry.id)
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
        if os.environ.get("SUPPORTDESK_WRITE_GOLDEN"):
            GOLDEN.write_text(json.dumps(captured, ensure_ascii=False, indent=1) + "\n")
        expected = json.loads(GOLDEN.read_text())
        for part in ("answers", "events", "audit"):
            assert captured[part] == expected[part], part
