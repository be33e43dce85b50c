"""Statements in JSON, CSV and PDF, on both databases."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, time, timedelta

import httpx
import pytest
from pypdf import PdfReader

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
