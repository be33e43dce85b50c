"""Remote sessions, session logs and their billing over HTTP, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

PROBLEM = "application/problem+json"


@pytest.fixture
async def admin(headers_for) -> dict[str, str]:
    return dict(await headers_for("admin"))


@pytest.fixture
async def agent(headers_for) -> dict[str, str]:
    return dict(await headers_for("agent"))


async def customer(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    *,
    units: int = 0,
    contract: bool = False,
    name: str = "Fa. Walter Maier GmbH",
) -> str:
    customer_id = str(
        (await client.post("/api/v1/customers", json={"name": name}, headers=admin)).json()["id"]
    )
    if units:
        await client.post(
            f"/api/v1/customers/{customer_id}/ledger/entries",
            json={"kind": "purchase", "units": units},
            headers=admin,
        )
    if contract:
        await client.post(
            "/api/v1/contracts",
            json={"customer_id": customer_id, "kind": "maintenance", "starts_on": "2020-01-01"},
            headers=admin,
        )
    return customer_id


async def open_session(
    client: httpx.AsyncClient, agent: dict[str, str], customer_id: str, **fields: object
) -> dict[str, object]:
    response = await client.post(
        "/api/v1/remote-sessions", json={"customer_id": customer_id, **fields}, headers=agent
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def join(client: httpx.AsyncClient, key: dict[str, str], code: object) -> httpx.Response:
    return await client.post("/api/v1/remote-sessions/join", json={"code": code}, headers=key)


async def log(
    client: httpx.AsyncClient,
    agent: dict[str, str],
    customer_id: str,
    seconds: int,
    **fields: object,
) -> httpx.Response:
    body = {
        "customer_id": customer_id,
        "partner": "Fa. Walter Maier GmbH – PC Herr Horst Maier",
        "started_at": "2026-11-20T09:22:00+01:00",
        "duration_seconds": seconds,
        "supporter": "Klaus Hörner",
        "notes": "Internet-Explorer aktualisiert",
        "billable": True,
        **fields,
    }
    return await client.post("/api/v1/session-logs", json=body, headers=agent)


class TestCodeLifecycle:
    async def test_join_once_then_dead_after_the_end(
        self, client: httpx.AsyncClient, admin, agent, headers_for
    ) -> None:
        customer_id = await customer(client, admin, units=10)
        opened = await open_session(client, agent, customer_id, computer="PC Herr Maier")
        assert opened["status"] == "waiting"
        code = str(opened["code"])
        assert len("".join(c for c in code if c.isdigit())) == 9
        key = await headers_for("customer", customer_id)
        joined = await join(client, key, code)
        assert joined.status_code == 200
        assert joined.json()["status"] == "active"
        assert joined.json()["started_at"] is not None
        assert (await join(client, key, code)).status_code == 404
        ended = await client.post(
            f"/api/v1/remote-sessions/{opened['id']}/end",
            json={"notes": "Neustart des PC"},
            headers=agent,
        )
        assert ended.status_code == 200, ended.text
        log_read = ended.json()
        assert log_read["ended_by"] == "agent"
        assert log_read["supporter"] == "test"  # the name of the agent's API key
        assert log_read["partner"] == "Fa. Walter Maier GmbH – PC Herr Maier"
        assert log_read["billing"]["outcome"] == "charged"
        assert (await join(client, key, code)).status_code == 404
        again = await client.post(f"/api/v1/remote-sessions/{opened['id']}/end", headers=agent)
        assert again.status_code == 409
        state = (await client.get(f"/api/v1/remote-sessions/{opened['id']}", headers=key)).json()
        assert state["status"] == "ended"

    async def test_unknown_and_expired_codes_are_404(
        self,
        client: httpx.AsyncClient,
        admin,
        agent,
        headers_for,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        customer_id = await customer(client, admin, units=10)
        key = await headers_for("customer", customer_id)
        response = await join(client, key, "000-000-000")
        assert response.status_code == 404
        assert response.headers["content-type"].startswith(PROBLEM)
        opened = await open_session(client, agent, customer_id)
        later = datetime.now(UTC) + timedelta(minutes=11)
        monkeypatch.setattr("supportdesk.sessions.service.utcnow", lambda: later)
        assert (await join(client, key, opened["code"])).status_code == 404

    async def test_another_customers_code_is_404(
        self, client: httpx.AsyncClient, admin, agent, headers_for
    ) -> None:
        mine = await customer(client, admin, units=10)
        other = await customer(client, admin, units=10)
        opened = await open_session(client, agent, other)
        key = await headers_for("customer", mine)
        assert (await join(client, key, opened["code"])).status_code == 404

    async def test_wrong_codes_are_slowed_down(
        self, client: httpx.AsyncClient, admin, headers_for
    ) -> None:
        customer_id = await customer(client, admin)
        key = await headers_for("customer", customer_id)
        statuses = [(await join(client, key, f"111-111-{n:03d}")).status_code for n in range(6)]
        assert statuses[:5] == [404] * 5
        assert statuses[5] == 429
        blocked = await join(client, key, "111-111-999")
        assert blocked.status_code == 429
        assert int(blocked.headers["retry-after"]) >= 1

    async def test_only_agents_open_and_only_customers_join(
        self, client: httpx.AsyncClient, admin, headers_for
    ) -> None:
        customer_id = await customer(client, admin, units=10)
        key = await headers_for("customer", customer_id)
        integration = await headers_for("integration")
        for headers in (key, integration):
            response = await client.post(
                "/api/v1/remote-sessions", json={"customer_id": customer_id}, headers=headers
            )
            assert response.status_code == 403
        assert (await join(client, admin, "123-456-789")).status_code == 403


class TestEmergencyStop:
    async def test_customer_stops_its_own_session(
        self, client: httpx.AsyncClient, admin, agent, headers_for
    ) -> None:
        customer_id = await customer(client, admin, units=10)
        opened = await open_session(client, agent, customer_id)
        key = await headers_for("customer", customer_id)
        await join(client, key, opened["code"])
        url = f"/api/v1/remote-sessions/{opened['id']}/emergency-stop"
        assert (await client.post(url, headers=agent)).status_code == 403
        other = await headers_for("customer", await customer(client, admin))
        assert (await client.post(url, headers=other)).status_code == 404
        stopped = await client.post(url, headers=key)
        assert stopped.status_code == 200
        assert stopped.json()["ended_by"] == "customer"
        assert (await join(client, key, opened["code"])).status_code == 404
        assert (await client.post(url, headers=key)).status_code == 409


class TestBilling:
    @pytest.mark.parametrize(
        ("seconds", "units"), [(600, 1), (900, 1), (901, 2), (742, 1), (0, 0), (3600, 4)]
    )
    async def test_rounding_of_units(
        self, client: httpx.AsyncClient, admin, agent, seconds: int, units: int
    ) -> None:
        customer_id = await customer(client, admin, units=20)
        response = await log(client, agent, customer_id, seconds)
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["duration_seconds"] == seconds
        assert body["billing"]["units"] == units
        assert body["units_charged"] == units
        ledger = (await client.get(f"/api/v1/customers/{customer_id}/ledger", headers=admin)).json()
        assert ledger["balance"] == 20 - units

    async def test_duration_is_shown_as_hh_mm_ss(
        self, client: httpx.AsyncClient, admin, agent
    ) -> None:
        customer_id = await customer(client, admin, units=5)
        body = (await log(client, agent, customer_id, 742)).json()
        assert body["duration"] == "00:12:22"

    async def test_beyond_the_balance_is_billed_at_list_price(
        self, client: httpx.AsyncClient, admin, agent
    ) -> None:
        customer_id = await customer(client, admin, units=1)
        body = (await log(client, agent, customer_id, 1800)).json()
        assert body["units_charged"] == 1
        assert body["units_at_list_price"] == 1
        assert body["billing"]["amount_at_list_price"] == {"amount": "30.00", "currency": "EUR"}

    async def test_contract_covers_and_charges_nothing(
        self, client: httpx.AsyncClient, admin, agent
    ) -> None:
        customer_id = await customer(client, admin, units=5, contract=True)
        body = (await log(client, agent, customer_id, 1800)).json()
        assert body["billing"]["outcome"] == "covered"
        assert body["units_covered"] == 2
        assert body["units_charged"] == 0
        ledger = (await client.get(f"/api/v1/customers/{customer_id}/ledger", headers=admin)).json()
        assert ledger["balance"] == 5

    async def test_not_billable_needs_a_reason_and_charges_nothing(
        self, client: httpx.AsyncClient, admin, agent
    ) -> None:
        customer_id = await customer(client, admin, units=5)
        missing = await log(client, agent, customer_id, 600, billable=False)
        assert missing.status_code == 422
        both = await log(
            client, agent, customer_id, 600, billable=True, non_billable_reason="warranty"
        )
        assert both.status_code == 422
        body = (
            await log(
                client, agent, customer_id, 600, billable=False, non_billable_reason="warranty"
            )
        ).json()
        assert body["billing"]["outcome"] == "not_billable"
        assert body["non_billable_reason"] == "warranty"
        assert body["units_charged"] == 0

    async def test_standard_customer_needs_list_price_billing(
        self, client: httpx.AsyncClient, admin, agent
    ) -> None:
        customer_id = await customer(client, admin)
        refused = await client.post(
            "/api/v1/remote-sessions", json={"customer_id": customer_id}, headers=agent
        )
        assert refused.status_code == 422
        assert refused.headers["content-type"].startswith(PROBLEM)
        opened = await open_session(client, agent, customer_id, bill_at_list_price=True)
        assert opened["bill_at_list_price"] is True
        body = (await log(client, agent, customer_id, 900, bill_at_list_price=True)).json()
        assert body["units_at_list_price"] == 1
        assert body["units_charged"] == 0
        unflagged = await log(client, agent, customer_id, 900)
        assert unflagged.status_code == 422


class TestLogsAccess:
    async def test_customer_key_reads_only_its_own_logs(
        self, client: httpx.AsyncClient, admin, agent, headers_for
    ) -> None:
        mine = await customer(client, admin, units=5)
        other = await customer(client, admin, units=5)
        own_log = (await log(client, agent, mine, 600)).json()
        other_log = (await log(client, agent, other, 600)).json()
        key = await headers_for("customer", mine)
        listed = (await client.get("/api/v1/session-logs", headers=key)).json()
        assert {item["customer_id"] for item in listed["items"]} == {mine}
        assert own_log["id"] in [item["id"] for item in listed["items"]]
        assert (
            await client.get(f"/api/v1/session-logs/{other_log['id']}", headers=key)
        ).status_code == 404
        filtered = await client.get(
            "/api/v1/session-logs", params={"customer_id": other}, headers=key
        )
        assert filtered.status_code == 404
        assert (await log(client, key, mine, 60)).status_code == 403

    async def test_period_filter_by_dates(self, client: httpx.AsyncClient, admin, agent) -> None:
        customer_id = await customer(client, admin, units=20)
        await log(client, agent, customer_id, 600, started_at="2026-10-31T23:30:00+01:00")
        inside = (
            await log(client, agent, customer_id, 600, started_at="2026-11-01T00:10:00+01:00")
        ).json()
        await log(client, agent, customer_id, 600, started_at="2026-12-01T00:00:00+01:00")
        page = (
            await client.get(
                "/api/v1/session-logs",
                params={"customer_id": customer_id, "from": "2026-11-01", "to": "2026-11-30"},
                headers=admin,
            )
        ).json()
        assert [item["id"] for item in page["items"]] == [inside["id"]]
        bad = await client.get("/api/v1/session-logs", params={"from": "yesterday"}, headers=admin)
        assert bad.status_code == 422


GERMAN_REPORT = (
    "Benutzer;Computer;Beginn;Ende;Dauer;Notizen;Abrechenbar\n"
    "Klaus Hörner;PC Herr Horst Maier;01.03.2026 10:22 Uhr;;00:12:22;Neustart;ja\n"
    "Klaus Hörner;PC Frau Maier;02.03.2026 09:00;02.03.2026 09:15;;Drucker;ja\n"
    "Klaus Hörner;PC Frau Maier;03.03.2026 09:00;;;kein Ende;ja\n"
    "Klaus Hörner;Server;kaputt;;00:05:00;;ja\n"
    "Klaus Hörner;Server;04.03.2026 11:00;;00:20:00;Garantie;nein\n"
)
ENGLISH_REPORT = (
    "User,Computer,Start,End,Duration,Notes,Billable\n"
    "Kim,Laptop,03/05/2026 2:30 PM,03/05/2026 2:45 PM,,update,yes\n"
    "Kim,Laptop,2026-03-06 10:00:00,,15:01,longer,yes\n"
)


class TestImport:
    async def import_report(
        self, client: httpx.AsyncClient, agent: dict[str, str], customer_id: str, content: str
    ) -> httpx.Response:
        return await client.post(
            "/api/v1/session-logs/import",
            files={"file": ("report.csv", content.encode("utf-8"), "text/csv")},
            data={"customer_id": customer_id},
            headers=agent,
        )

    async def test_german_report_with_bad_rows_and_a_reimport(
        self, client: httpx.AsyncClient, admin, agent
    ) -> None:
        customer_id = await customer(client, admin, units=20)
        first = await self.import_report(client, agent, customer_id, GERMAN_REPORT)
        assert first.status_code == 201, first.text
        result = first.json()
        assert result["imported"] == 3
        assert result["skipped"] == 0
        assert [e["line"] for e in result["errors"]] == [4, 5]
        again = (await self.import_report(client, agent, customer_id, GERMAN_REPORT)).json()
        assert again["imported"] == 0
        assert again["skipped"] == 3
        logs = (
            await client.get(
                "/api/v1/session-logs", params={"customer_id": customer_id}, headers=admin
            )
        ).json()["items"]
        assert len(logs) == 3
        by_duration = {item["duration_seconds"]: item for item in logs}
        assert set(by_duration) == {742, 900, 1200}
        assert by_duration[742]["started_at"].startswith("2026-03-01T09:22:00")
        assert by_duration[742]["partner"] == "Fa. Walter Maier GmbH – PC Herr Horst Maier"
        assert by_duration[1200]["billing"]["outcome"] == "not_billable"
        ledger = (await client.get(f"/api/v1/customers/{customer_id}/ledger", headers=admin)).json()
        assert ledger["balance"] == 20 - 1 - 1

    async def test_english_report(self, client: httpx.AsyncClient, admin, agent) -> None:
        customer_id = await customer(client, admin, units=20)
        result = (await self.import_report(client, agent, customer_id, ENGLISH_REPORT)).json()
        assert result == {"imported": 2, "skipped": 0, "errors": []}
        logs = (
            await client.get(
                "/api/v1/session-logs", params={"customer_id": customer_id}, headers=admin
            )
        ).json()["items"]
        assert sorted(item["billing"]["units"] for item in logs) == [1, 2]

    async def test_import_needs_a_known_customer_and_a_file(
        self, client: httpx.AsyncClient, admin, agent
    ) -> None:
        unknown = await self.import_report(client, agent, "cus_nope", ENGLISH_REPORT)
        assert unknown.status_code == 404
        no_header = await self.import_report(
            client, agent, await customer(client, admin), "a,b\n1,2\n"
        )
        assert no_header.status_code == 201
        assert no_header.json()["errors"][0]["line"] == 1
