"""Instants out of range answer 422 with the field named, never 500, and store nothing
(issue 14 item 7); on both databases."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.security
PROBLEM = "application/problem+json"
FAR = ["9999-12-31T23:00:00Z", "0001-01-01T00:00:00Z", "3000-01-01T00:00:00Z"]


@pytest.fixture
async def admin(headers_for) -> dict[str, str]:
    return dict(await headers_for("admin"))


async def new_customer(client: httpx.AsyncClient, admin: dict[str, str]) -> str:
    customer_id = str(
        (await client.post("/api/v1/customers", json={"name": "C"}, headers=admin)).json()["id"]
    )
    await client.post(
        f"/api/v1/customers/{customer_id}/ledger/entries",
        json={"kind": "purchase", "units": 20},
        headers=admin,
    )
    return customer_id


def assert_field_refused(response: httpx.Response, loc: list[str | int]) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert loc in [error["loc"] for error in response.json()["errors"]], response.text


async def logs_of(client: httpx.AsyncClient, admin: dict[str, str], customer_id: str) -> list:
    response = await client.get(
        "/api/v1/session-logs", params={"customer_id": customer_id}, headers=admin
    )
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


class TestSessionLogs:
    @pytest.mark.parametrize("started_at", [*FAR, "9999-12-31T23:59:59-14:00"])
    async def test_started_at_out_of_range_is_422_and_nothing_is_logged(
        self, client: httpx.AsyncClient, admin, started_at: str
    ) -> None:
        customer_id = await new_customer(client, admin)
        response = await client.post(
            "/api/v1/session-logs",
            json={
                "customer_id": customer_id,
                "partner": "P",
                "started_at": started_at,
                "duration_seconds": 600,
                "supporter": "K",
                "billable": True,
            },
            headers=admin,
        )
        assert_field_refused(response, ["body", "started_at"])
        assert await logs_of(client, admin, customer_id) == []
        ledger = await client.get(f"/api/v1/customers/{customer_id}/ledger", headers=admin)
        assert ledger.json()["balance"] == 20

    async def test_the_last_accepted_instant_is_logged(
        self, client: httpx.AsyncClient, admin
    ) -> None:
        customer_id = await new_customer(client, admin)
        response = await client.post(
            "/api/v1/session-logs",
            json={
                "customer_id": customer_id,
                "partner": "P",
                "started_at": "2999-12-31T23:59:59Z",
                "duration_seconds": 7 * 24 * 3600,
                "supporter": "K",
                "billable": True,
            },
            headers=admin,
        )
        assert response.status_code == 201, response.text
        (read,) = await logs_of(client, admin, customer_id)
        assert read["ended_at"].startswith("3000-01-07T23:59:59")


class TestImport:
    async def test_rows_out_of_range_are_bad_rows_and_the_rest_is_imported(
        self, client: httpx.AsyncClient, admin
    ) -> None:
        customer_id = await new_customer(client, admin)
        report = (
            "Benutzer;Computer;Beginn;Ende;Dauer;Notizen;Abrechenbar\n"
            "K;PC;31.12.9999 23:00;;00:10:00;;ja\n"
            "K;PC;01.01.0001 00:00;;00:10:00;;ja\n"
            "K;PC;9999-12-31T23:00Z;;00:10:00;;ja\n"
            "K;PC;02.03.2026 09:00;31.12.9999 23:00;;;ja\n"
            "K;PC;02.03.2026 09:00;;99999999999999999999;;ja\n"
            "K;PC;02.03.2026 09:00;;99999999;;ja\n"
            "K;PC;02.03.2026 10:00;;00:10:00;ok;ja\n"
        )
        response = await client.post(
            "/api/v1/session-logs/import",
            files={"file": ("report.csv", report.encode(), "text/csv")},
            data={"customer_id": customer_id},
            headers=admin,
        )
        assert response.status_code == 201, response.text
        result = response.json()
        assert result["imported"] == 1
        assert [error["line"] for error in result["errors"]] == [2, 3, 4, 5, 6, 7]
        assert all(
            "1900 to 2999" in error["msg"] or "at most 7 days" in error["msg"]
            for error in result["errors"]
        )
        (kept,) = await logs_of(client, admin, customer_id)
        assert kept["notes"] == "ok"


class TestOtherInstants:
    @pytest.mark.parametrize("at", FAR)
    async def test_proposed_appointments_out_of_range_are_422_and_no_ticket_is_filed(
        self, client: httpx.AsyncClient, admin, at: str
    ) -> None:
        customer_id = await new_customer(client, admin)
        response = await client.post(
            "/api/v1/tickets",
            json={
                "customer_id": customer_id,
                "category": "installation",
                "severity": "low",
                "subject": "s",
                "description": "d",
                "proposed_appointments": [
                    {"starts_at": at, "ends_at": at.replace("00:00Z", "30:00Z")},
                    {"starts_at": "2026-12-01T09:00:00Z", "ends_at": "2026-12-01T10:00:00Z"},
                ],
            },
            headers=admin,
        )
        assert_field_refused(response, ["body", "proposed_appointments", 0, "starts_at"])
        tickets = await client.get(
            "/api/v1/tickets", params={"customer_id": customer_id}, headers=admin
        )
        assert tickets.json()["items"] == []

    @pytest.mark.parametrize("at", FAR)
    async def test_dongle_received_at_out_of_range_is_422_and_not_recorded(
        self, client: httpx.AsyncClient, admin, at: str
    ) -> None:
        customer_id = await new_customer(client, admin)
        ticket = (
            await client.post(
                "/api/v1/tickets",
                json={
                    "customer_id": customer_id,
                    "category": "hardware_exchange",
                    "severity": "low",
                    "subject": "s",
                    "description": "d",
                },
                headers=admin,
            )
        ).json()
        response = await client.post(
            f"/api/v1/tickets/{ticket['id']}/dongle-return",
            json={"received_at": at},
            headers=admin,
        )
        assert_field_refused(response, ["body", "received_at"])
        read = await client.get(f"/api/v1/tickets/{ticket['id']}", headers=admin)
        assert read.json()["dongle_received_at"] is None

    @pytest.mark.parametrize("as_of", FAR)
    async def test_ledger_as_of_out_of_range_is_422(
        self, client: httpx.AsyncClient, admin, as_of: str
    ) -> None:
        customer_id = await new_customer(client, admin)
        response = await client.get(
            f"/api/v1/customers/{customer_id}/ledger", params={"as_of": as_of}, headers=admin
        )
        assert_field_refused(response, ["query", "as_of"])
