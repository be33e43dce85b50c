"""Statements in JSON, CSV and PDF, on both databases."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import httpx
import pytest
from pypdf import PdfReader
from sqlalchemy.ext.asyncio import AsyncSession

from supportdesk.events.repository import EventRepository
from supportdesk.models import Event
from supportdesk.statements import repository as statements_repository
from supportdesk.statements import service as statements_service

TODAY = date.today()
PERIOD = {
    "from": (TODAY - timedelta(days=30)).isoformat(),
    "to": (TODAY + timedelta(days=1)).isoformat(),
}


def at(days_ago: int) -> str:
    return datetime.combine(TODAY - timedelta(days=days_ago), time(10, 0), UTC).isoformat()


@pytest.fixture
async def admin(headers_for) -> dict[str, str]:
    return dict(await headers_for("admin"))


@pytest.fixture
async def billed_customer(client: httpx.AsyncClient, admin: dict[str, str]) -> str:
    """20 units bought; a 12:22 session (1 unit); a manual debit of 30 (19 prepaid, 11
    at list price); a 1-hour session covered by a contract that started meanwhile; a
    session that is not billable."""
    customer_id = str(
        (
            await client.post("/api/v1/customers", json={"name": "Fa. Müller KG"}, headers=admin)
        ).json()["id"]
    )
    ledger = f"/api/v1/customers/{customer_id}/ledger/entries"
    await client.post(ledger, json={"kind": "purchase", "units": 20}, headers=admin)

    async def log(started_at: str, seconds: int, **extra: object) -> None:
        response = await client.post(
            "/api/v1/session-logs",
            json={
                "customer_id": customer_id,
                "partner": "Fa. Müller KG – PC Empfang",
                "started_at": started_at,
                "duration_seconds": seconds,
                "supporter": "Klaus Hörner",
                "notes": "Drucker eingerichtet",
                "billable": True,
                **extra,
            },
            headers=admin,
        )
        assert response.status_code == 201, response.text

    await log(at(20), 742)
    await client.post(
        ledger, json={"kind": "debit", "units": 30, "reference": "Telefon"}, headers=admin
    )
    await client.post(
        "/api/v1/contracts",
        json={
            "customer_id": customer_id,
            "kind": "maintenance",
            "starts_on": (TODAY - timedelta(days=10)).isoformat(),
        },
        headers=admin,
    )
    await log(at(5), 3600)
    await log(at(3), 600, billable=False, non_billable_reason="warranty")
    return customer_id


class TestStatementJson:
    async def test_totals_and_lines(
        self, client: httpx.AsyncClient, admin, billed_customer: str
    ) -> None:
        response = await client.get(
            f"/api/v1/customers/{billed_customer}/statement", params=PERIOD, headers=admin
        )
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/json")
        body = response.json()
        assert body["opening_balance"] == 0
        assert body["units_purchased"] == 20
        assert body["amount_purchased"] == {"amount": "520.00", "currency": "EUR"}
        assert body["units_used"] == 20
        assert body["units_at_list_price"] == 11
        assert body["amount_due"] == {"amount": "330.00", "currency": "EUR"}
        assert body["units_covered"] == 4
        assert body["closing_balance"] == 0
        assert [e["kind"] for e in body["entries"]] == ["purchase", "debit"]
        sessions = body["sessions"]
        assert [s["duration"] for s in sessions] == ["00:12:22", "01:00:00"]
        assert [s["paid_by"] for s in sessions] == ["prepaid", "contract"]
        assert sessions[0]["partner"] == "Fa. Müller KG – PC Empfang"
        assert sessions[0]["supporter"] == "Klaus Hörner"
        assert sessions[1]["units_covered"] == 4

    async def test_opening_balance_counts_what_came_before(
        self, client: httpx.AsyncClient, admin, billed_customer: str
    ) -> None:
        later = {
            "from": (TODAY + timedelta(days=2)).isoformat(),
            "to": (TODAY + timedelta(days=3)).isoformat(),
        }
        body = (
            await client.get(
                f"/api/v1/customers/{billed_customer}/statement", params=later, headers=admin
            )
        ).json()
        assert body["opening_balance"] == body["closing_balance"] == 0
        assert body["entries"] == []
        assert body["sessions"] == []

    async def test_bad_periods_and_formats(
        self, client: httpx.AsyncClient, admin, billed_customer: str
    ) -> None:
        url = f"/api/v1/customers/{billed_customer}/statement"
        backwards = await client.get(
            url, params={"from": "2026-11-30", "to": "2026-11-01"}, headers=admin
        )
        assert backwards.status_code == 422
        missing = await client.get(url, params={"from": "2026-11-01"}, headers=admin)
        assert missing.status_code == 422
        html = await client.get(url, params=PERIOD, headers={**admin, "Accept": "text/html"})
        assert html.status_code == 406
        assert html.headers["content-type"].startswith("application/problem+json")

    async def test_customer_key_reads_only_its_own(
        self, client: httpx.AsyncClient, admin, headers_for, billed_customer: str
    ) -> None:
        own = await headers_for("customer", billed_customer)
        assert (
            await client.get(
                f"/api/v1/customers/{billed_customer}/statement", params=PERIOD, headers=own
            )
        ).status_code == 200
        other = str(
            (await client.post("/api/v1/customers", json={"name": "X"}, headers=admin)).json()["id"]
        )
        assert (
            await client.get(f"/api/v1/customers/{other}/statement", params=PERIOD, headers=own)
        ).status_code == 404


class TestStatementCsv:
    async def test_header_row_and_one_row_per_line(
        self, client: httpx.AsyncClient, admin, billed_customer: str
    ) -> None:
        response = await client.get(
            f"/api/v1/customers/{billed_customer}/statement",
            params=PERIOD,
            headers={**admin, "Accept": "text/csv"},
        )
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        text = response.content.decode("utf-8-sig")
        rows = list(csv.DictReader(io.StringIO(text)))
        kinds = [row["kind"] for row in rows]
        assert kinds[:4] == ["purchase", "debit", "session", "session"]
        session = rows[2]
        assert session["partner"] == "Fa. Müller KG – PC Empfang"
        assert session["duration"] == "00:12:22"
        assert session["units"] == "1"
        due = next(row for row in rows if row["kind"] == "amount_due")
        assert due["amount"] == "330.00"
        assert due["currency"] == "EUR"


class TestStatementPdf:
    async def test_pdf_text_says_what_the_statement_says(
        self, client: httpx.AsyncClient, admin, billed_customer: str
    ) -> None:
        response = await client.get(
            f"/api/v1/customers/{billed_customer}/statement",
            params={**PERIOD, "format": "pdf"},
            headers=admin,
        )
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/pdf"
        assert response.content.startswith(b"%PDF")
        text = "\n".join(
            page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages
        )
        assert "Fa. Müller KG" in text
        assert "330.00 EUR" in text
        assert "Klaus Hörner" in text
        assert "00:12:22" in text
        assert "Closing balance" in text


async def issued_events(session: AsyncSession, customer_id: str) -> list[Event]:
    return await EventRepository(session).list_of_type("statement.issued", customer_id=customer_id)


async def issued_list(
    client: httpx.AsyncClient, headers: dict[str, str], customer_id: str
) -> list[dict[str, Any]]:
    response = await client.get(f"/api/v1/customers/{customer_id}/statements", headers=headers)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def period(first: int, last: int) -> dict[str, str]:
    """Days from today (negative: in the past)."""
    return {
        "from": (TODAY + timedelta(days=first)).isoformat(),
        "to": (TODAY + timedelta(days=last)).isoformat(),
    }


class TestPreviewIsSafe:
    async def test_twenty_previews_with_shifted_periods_issue_nothing(
        self, client: httpx.AsyncClient, admin, billed_customer: str, session: AsyncSession
    ) -> None:
        url = f"/api/v1/customers/{billed_customer}/statement"
        for shift in range(20):
            response = await client.get(
                url,
                params={**period(-30 - shift, 1), "format": ("json", "csv", "pdf")[shift % 3]},
                headers=admin,
            )
            assert response.status_code == 200, response.text
        assert await issued_events(session, billed_customer) == []
        assert await issued_list(client, admin, billed_customer) == []

    async def test_a_preview_of_an_issued_period_is_still_a_preview(
        self, client: httpx.AsyncClient, admin, billed_customer: str, session: AsyncSession
    ) -> None:
        issued = await client.post(
            f"/api/v1/customers/{billed_customer}/statements", json=PERIOD, headers=admin
        )
        assert issued.status_code == 201, issued.text
        preview = await client.get(
            f"/api/v1/customers/{billed_customer}/statement", params=PERIOD, headers=admin
        )
        assert preview.status_code == 200
        assert "number" not in preview.json()
        assert len(await issued_events(session, billed_customer)) == 1


class TestIssueStatement:
    async def test_issues_once_and_the_same_period_again_is_409_with_its_location(
        self,
        client: httpx.AsyncClient,
        admin,
        headers_for,
        billed_customer: str,
        session: AsyncSession,
    ) -> None:
        url = f"/api/v1/customers/{billed_customer}/statements"
        first = await client.post(url, json=PERIOD, headers=admin)
        assert first.status_code == 201, first.text
        body = first.json()
        assert re.fullmatch(r"ST-\d{4}-\d{6}", body["number"])
        assert body["customer_id"] == billed_customer
        assert (body["from"], body["to"]) == (PERIOD["from"], PERIOD["to"])
        assert body["issued_at"].endswith("Z")
        assert body["amount_due"] == {"amount": "330.00", "currency": "EUR"}
        assert body["units_purchased"] == 20
        assert body["units_covered"] == 4
        location = f"/api/v1/statements/{body['id']}"
        assert first.headers["location"] == location

        again = await client.post(url, json=PERIOD, headers=await headers_for("agent"))
        assert again.status_code == 409, again.text
        assert again.headers["content-type"].startswith("application/problem+json")
        assert again.headers["location"] == location
        problem = again.json()
        assert problem["statement_id"] == body["id"]
        assert problem["location"] == location

        events = await issued_events(session, billed_customer)
        assert len(events) == 1
        assert events[0].resource_id == body["id"]
        assert events[0].data["id"] == body["id"]
        assert events[0].data["number"] == body["number"]
        assert events[0].data["from"] == PERIOD["from"]
        listed = await issued_list(client, admin, billed_customer)
        assert [item["id"] for item in listed] == [body["id"]]
        assert listed[0] == body

        read = await client.get(location, headers=admin)
        assert read.status_code == 200, read.text
        frozen = read.json()
        assert frozen["number"] == body["number"]
        assert frozen["amount_due"] == body["amount_due"]
        assert [e["kind"] for e in frozen["entries"]] == ["purchase", "debit"]
        assert [s["duration"] for s in frozen["sessions"]] == ["00:12:22", "01:00:00"]

    async def test_the_issued_statement_does_not_change_with_later_entries(
        self, client: httpx.AsyncClient, admin, billed_customer: str
    ) -> None:
        issued = await client.post(
            f"/api/v1/customers/{billed_customer}/statements", json=PERIOD, headers=admin
        )
        assert issued.status_code == 201, issued.text
        location = issued.headers["location"]
        before = {
            fmt: (await client.get(location, params={"format": fmt}, headers=admin))
            for fmt in ("json", "csv", "pdf")
        }
        assert all(r.status_code == 200 for r in before.values())
        assert before["pdf"].content.startswith(b"%PDF")
        # A later purchase and debit, and a new session, all inside the issued period.
        ledger = f"/api/v1/customers/{billed_customer}/ledger/entries"
        assert (
            await client.post(ledger, json={"kind": "purchase", "units": 10}, headers=admin)
        ).status_code == 201
        assert (
            await client.post(
                ledger, json={"kind": "debit", "units": 2, "reference": "late"}, headers=admin
            )
        ).status_code == 201
        after = {
            fmt: (await client.get(location, params={"format": fmt}, headers=admin))
            for fmt in ("json", "csv")
        }
        assert after["json"].json() == before["json"].json()
        assert after["csv"].content == before["csv"].content
        pdf_text = "\n".join(
            page.extract_text() for page in PdfReader(io.BytesIO(before["pdf"].content)).pages
        )
        assert issued.json()["number"] in pdf_text
        assert "330.00 EUR" in pdf_text
        preview = (
            await client.get(
                f"/api/v1/customers/{billed_customer}/statement", params=PERIOD, headers=admin
            )
        ).json()
        assert preview["units_purchased"] == 30
        assert after["json"].json()["units_purchased"] == 20
        assert len(after["json"].json()["entries"]) == 2

    async def test_bad_periods_are_422_an_unknown_customer_404_and_nothing_is_issued(
        self, client: httpx.AsyncClient, admin, billed_customer: str, session: AsyncSession
    ) -> None:
        url = f"/api/v1/customers/{billed_customer}/statements"
        for body in (
            {"from": "2026-11-30", "to": "2026-11-01"},
            {"from": "2000-01-01", "to": "2026-11-01"},
            {"from": "2026-11-01"},
            {"from": "2026-11-01", "to": "2026-11-30", "lang": "de"},
            {"from": "yesterday", "to": "2026-11-30"},
        ):
            response = await client.post(url, json=body, headers=admin)
            assert response.status_code == 422, (body, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
        unknown = await client.post(
            "/api/v1/customers/cus_nobody/statements", json=PERIOD, headers=admin
        )
        assert unknown.status_code == 404
        assert await issued_events(session, billed_customer) == []
        assert await issued_list(client, admin, billed_customer) == []

    async def test_agents_and_integrations_issue_customer_keys_may_not(
        self,
        client: httpx.AsyncClient,
        admin,
        headers_for,
        billed_customer: str,
        session: AsyncSession,
    ) -> None:
        url = f"/api/v1/customers/{billed_customer}/statements"
        own = await headers_for("customer", billed_customer)
        refused = await client.post(url, json=PERIOD, headers=own)
        assert refused.status_code == 403, refused.text
        assert await issued_list(client, admin, billed_customer) == []
        assert await issued_events(session, billed_customer) == []
        for days, role in ((-40, "agent"), (-50, "integration")):
            response = await client.post(
                url, json=period(days, days + 5), headers=await headers_for(role)
            )
            assert response.status_code == 201, (role, response.text)
        assert len(await issued_list(client, own, billed_customer)) == 2

    async def test_customer_keys_read_their_own_statements_only(
        self, client: httpx.AsyncClient, admin, headers_for, billed_customer: str
    ) -> None:
        other = str(
            (await client.post("/api/v1/customers", json={"name": "Y"}, headers=admin)).json()["id"]
        )
        mine = (
            await client.post(
                f"/api/v1/customers/{billed_customer}/statements", json=PERIOD, headers=admin
            )
        ).json()
        theirs = (
            await client.post(f"/api/v1/customers/{other}/statements", json=PERIOD, headers=admin)
        ).json()
        own = await headers_for("customer", billed_customer)
        assert (
            await client.get(f"/api/v1/statements/{mine['id']}", headers=own)
        ).status_code == 200
        foreign = await client.get(f"/api/v1/statements/{theirs['id']}", headers=own)
        assert foreign.status_code == 404
        assert foreign.headers["content-type"].startswith("application/problem+json")
        assert (
            await client.get(f"/api/v1/customers/{other}/statements", headers=own)
        ).status_code == 404
        assert [s["id"] for s in await issued_list(client, own, billed_customer)] == [mine["id"]]
        assert (
            await client.get("/api/v1/statements/stm_nothing", headers=admin)
        ).status_code == 404

    async def test_the_list_pages_newest_first(
        self, client: httpx.AsyncClient, admin, billed_customer: str
    ) -> None:
        url = f"/api/v1/customers/{billed_customer}/statements"
        ids = []
        for days in (-90, -60, -30):
            response = await client.post(url, json=period(days, days + 29), headers=admin)
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
        first = (await client.get(url, params={"limit": 2}, headers=admin)).json()
        assert [s["id"] for s in first["items"]] == [ids[2], ids[1]]
        assert first["next_cursor"]
        rest = (
            await client.get(
                url, params={"limit": 2, "cursor": first["next_cursor"]}, headers=admin
            )
        ).json()
        assert [s["id"] for s in rest["items"]] == [ids[0]]
        assert rest["next_cursor"] is None
        numbers = [s["number"] for s in first["items"] + rest["items"]]
        assert len(set(numbers)) == 3

    async def test_a_retried_post_with_its_idempotency_key_issues_once(
        self, client: httpx.AsyncClient, admin, billed_customer: str, session: AsyncSession
    ) -> None:
        url = f"/api/v1/customers/{billed_customer}/statements"
        headers = {**admin, "Idempotency-Key": "issue-november"}
        first = await client.post(url, json=PERIOD, headers=headers)
        second = await client.post(url, json=PERIOD, headers=headers)
        assert first.status_code == second.status_code == 201
        assert first.json() == second.json()
        assert second.headers["location"] == first.headers["location"]
        assert len(await issued_events(session, billed_customer)) == 1


DANGEROUS = ("=", "@", "+", "-", "\t", "\r")


@pytest.fixture
async def hostile_customer(client: httpx.AsyncClient, admin: dict[str, str]) -> str:
    """Free text that spreadsheets would run as formulas, through every way it reaches a
    statement: a manual session log, an imported connection report and a debit's
    reference; and a reversed purchase, whose amount is negative."""
    customer_id = str(
        (await client.post("/api/v1/customers", json={"name": "=Evil Corp"}, headers=admin)).json()[
            "id"
        ]
    )
    ledger = f"/api/v1/customers/{customer_id}/ledger/entries"
    reversed_purchase = (
        await client.post(ledger, json={"kind": "purchase", "units": 10}, headers=admin)
    ).json()
    assert (
        await client.post(
            ledger, json={"kind": "reversal", "reverses": reversed_purchase["id"]}, headers=admin
        )
    ).status_code == 201
    await client.post(ledger, json={"kind": "purchase", "units": 20}, headers=admin)
    assert (
        await client.post(
            ledger,
            json={"kind": "debit", "units": 1, "reference": '=HYPERLINK("http://x","y")'},
            headers=admin,
        )
    ).status_code == 201
    for partner, supporter, notes, days in (
        ("@SUM(A1:A9)", "-2+3", "\tcmd", 6),
        ("+49 30 123", "=1+1", "\rCR", 5),
        ("Plain GmbH", "Klaus", "all good", 4),
    ):
        response = await client.post(
            "/api/v1/session-logs",
            json={
                "customer_id": customer_id,
                "partner": partner,
                "started_at": at(days),
                "duration_seconds": 600,
                "supporter": supporter,
                "notes": notes,
                "billable": True,
            },
            headers=admin,
        )
        assert response.status_code == 201, response.text
    day = (TODAY - timedelta(days=3)).strftime("%d.%m.%Y")
    report = (
        "Benutzer;Computer;Beginn;Dauer;Notizen;Abrechenbar\n"
        f"=cmd|' /C calc'!A0;-PC Empfang;{day} 10:00;00:10:00;@import;ja\n"
    )
    imported = await client.post(
        "/api/v1/session-logs/import",
        files={"file": ("report.csv", report.encode("utf-8"), "text/csv")},
        data={"customer_id": customer_id},
        headers=admin,
    )
    assert imported.status_code == 201, imported.text
    assert imported.json()["imported"] == 1, imported.text
    return customer_id


def neutralised(text: str) -> str:
    return "'" + text if text.startswith(DANGEROUS) else text


@pytest.mark.security
class TestCsvFormulaInjection:
    TEXT_COLUMNS = ("description", "partner", "supporter", "notes")
    NUMBER_COLUMNS = (
        "duration_seconds",
        "units",
        "units_prepaid",
        "units_at_list_price",
        "units_covered",
        "amount",
    )

    async def check(
        self,
        client: httpx.AsyncClient,
        admin: dict[str, str],
        url: str,
        params: dict[str, str] | None = None,
    ) -> None:
        params = params or {}
        json_body = (
            await client.get(url, params={**params, "format": "json"}, headers=admin)
        ).json()
        response = await client.get(url, params={**params, "format": "csv"}, headers=admin)
        assert response.status_code == 200, response.text
        rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
        lines = {item["id"]: item for item in json_body["entries"] + json_body["sessions"]}
        checked = 0
        for row in rows:
            if row["id"] not in lines:
                continue  # a totals row
            item = lines[row["id"]]
            for column in self.TEXT_COLUMNS:
                original = str(item.get(column, ""))
                assert row[column] == neutralised(original), (column, row[column], original)
                checked += original.startswith(DANGEROUS)
            for column in self.NUMBER_COLUMNS:
                # What the service formats itself stays a plain number, negative or not.
                assert not row[column].startswith("'"), (column, row[column])
                assert row[column] == "" or re.fullmatch(r"-?\d+(\.\d\d)?", row[column])
        # Every way in was used: = @ + - \t \r, from a log, an import and a reference.
        assert checked >= 8
        texts = [row[c] for row in rows for c in self.TEXT_COLUMNS]
        for start in DANGEROUS:
            assert any(text.startswith("'" + start) for text in texts), start
        assert not any(text.startswith(DANGEROUS) for text in texts)
        reversal = next(row for row in rows if row["kind"] == "reversal")
        assert reversal["amount"] == "-280.00"
        assert reversal["units"] == "-10"
        # JSON keeps the words as they were written.
        notes = {s["notes"] for s in json_body["sessions"]}
        assert {"\tcmd", "\rCR", "@import"} <= notes
        assert any(e["notes"].startswith("=HYPERLINK") for e in json_body["entries"])

    async def test_the_preview_csv_neutralises_formulas_and_keeps_numbers(
        self, client: httpx.AsyncClient, admin, hostile_customer: str
    ) -> None:
        await self.check(client, admin, f"/api/v1/customers/{hostile_customer}/statement", PERIOD)

    async def test_the_issued_csv_neutralises_formulas_and_keeps_numbers(
        self, client: httpx.AsyncClient, admin, hostile_customer: str
    ) -> None:
        issued = await client.post(
            f"/api/v1/customers/{hostile_customer}/statements", json=PERIOD, headers=admin
        )
        assert issued.status_code == 201, issued.text
        await self.check(client, admin, issued.headers["location"])

    async def test_the_pdf_keeps_the_words(
        self, client: httpx.AsyncClient, admin, hostile_customer: str
    ) -> None:
        response = await client.get(
            f"/api/v1/customers/{hostile_customer}/statement",
            params={**PERIOD, "format": "pdf"},
            headers=admin,
        )
        text = "\n".join(
            page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages
        )
        assert "@SUM(A1:A9)" in text
        assert "'@SUM" not in text


class TestIssuingManyLines:
    async def test_lines_are_frozen_in_batches_while_they_are_read(
        self,
        client: httpx.AsyncClient,
        admin,
        billed_customer: str,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Reading the period in small batches, writing the lines in smaller ones (each
        write between two reads of the same open result): every line, in order."""
        monkeypatch.setattr(statements_repository, "STREAM_BATCH", 1)
        monkeypatch.setattr(statements_service, "LINE_BATCH", 1)
        preview = (
            await client.get(
                f"/api/v1/customers/{billed_customer}/statement", params=PERIOD, headers=admin
            )
        ).json()
        issued = await client.post(
            f"/api/v1/customers/{billed_customer}/statements", json=PERIOD, headers=admin
        )
        assert issued.status_code == 201, issued.text
        frozen = (await client.get(issued.headers["location"], headers=admin)).json()
        for key in ("entries", "sessions", "closing_balance", "amount_due"):
            assert frozen[key] == preview[key]
