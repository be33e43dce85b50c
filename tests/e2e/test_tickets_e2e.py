"""Contracts, tickets, attachments and the queue over HTTP, on both databases."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from supportdesk.events.repository import EventRepository

PROBLEM = "application/problem+json"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
COMPLETE = {
    "steps_to_reproduce": "1. open the add-on 2. click import",
    "environment": {"os": "Windows 11", "host_application": "ArchiCAD", "host_version": "27"},
}


@pytest.fixture
async def admin(headers_for) -> dict[str, str]:
    return dict(await headers_for("admin"))


@pytest.fixture
async def agent(headers_for) -> dict[str, str]:
    return dict(await headers_for("agent"))


async def customer(
    client: httpx.AsyncClient, admin: dict[str, str], *, units: int = 0, contract: bool = False
) -> str:
    customer_id = str(
        (await client.post("/api/v1/customers", json={"name": "Maier"}, headers=admin)).json()["id"]
    )
    if units:
        await client.post(
            f"/api/v1/customers/{customer_id}/ledger/entries",
            json={"kind": "purchase", "units": units},
            headers=admin,
        )
    if contract:
        response = await client.post(
            "/api/v1/contracts",
            json={"customer_id": customer_id, "kind": "maintenance", "starts_on": "2020-01-01"},
            headers=admin,
        )
        assert response.status_code == 201, response.text
    return customer_id


async def ticket(
    client: httpx.AsyncClient, headers: dict[str, str], customer_id: str | None, **fields: object
) -> dict[str, object]:
    body: dict[str, object] = {
        "category": "bug_report",
        "severity": "normal",
        "subject": "Import fails",
        "description": "The import stops with an error.",
        **fields,
    }
    if customer_id is not None:
        body["customer_id"] = customer_id
    response = await client.post("/api/v1/tickets", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def read_due(due: datetime) -> str:
    """An instant as the answers write it."""
    return due.isoformat().replace("+00:00", "Z")


async def upload(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    ticket_id: str,
    kind: str,
    content: bytes,
    filename: str = "shot.png",
    content_type: str = "image/png",
) -> httpx.Response:
    return await client.post(
        f"/api/v1/tickets/{ticket_id}/attachments",
        files={"file": (filename, content, content_type)},
        data={"kind": kind},
        headers=headers,
    )


async def move(
    client: httpx.AsyncClient, headers: dict[str, str], ticket_id: object, to: str
) -> httpx.Response:
    return await client.post(
        f"/api/v1/tickets/{ticket_id}/transitions", json={"to": to}, headers=headers
    )


class TestContracts:
    async def test_contract_makes_the_customer_contract_group(
        self, client: httpx.AsyncClient, admin
    ) -> None:
        customer_id = await customer(client, admin)
        created = await client.post(
            "/api/v1/contracts",
            json={
                "customer_id": customer_id,
                "kind": "maintenance",
                "starts_on": "2024-01-01",
                "ends_on": None,
            },
            headers=admin,
        )
        assert created.status_code == 201
        contract = created.json()
        assert contract["active"] is True
        read = (await client.get(f"/api/v1/customers/{customer_id}", headers=admin)).json()
        assert read["support_group"] == "contract"
        listed = (
            await client.get(f"/api/v1/customers/{customer_id}/contracts", headers=admin)
        ).json()
        assert [c["id"] for c in listed["items"]] == [contract["id"]]

    async def test_ending_a_contract_changes_the_group(
        self, client: httpx.AsyncClient, admin
    ) -> None:
        customer_id = await customer(client, admin, contract=True)
        contract = (
            await client.get(f"/api/v1/customers/{customer_id}/contracts", headers=admin)
        ).json()["items"][0]
        yesterday = (date.today() - timedelta(days=2)).isoformat()
        changed = await client.patch(
            f"/api/v1/contracts/{contract['id']}", json={"ends_on": yesterday}, headers=admin
        )
        assert changed.status_code == 200
        assert changed.json()["active"] is False
        read = (await client.get(f"/api/v1/customers/{customer_id}", headers=admin)).json()
        assert read["support_group"] == "standard"

    async def test_rules_of_contracts(self, client: httpx.AsyncClient, admin, agent) -> None:
        customer_id = await customer(client, admin)
        bad_period = await client.post(
            "/api/v1/contracts",
            json={
                "customer_id": customer_id,
                "kind": "maintenance",
                "starts_on": "2026-05-01",
                "ends_on": "2026-04-01",
            },
            headers=admin,
        )
        assert bad_period.status_code == 422
        unknown = await client.post(
            "/api/v1/contracts",
            json={"customer_id": "cus_nope", "kind": "maintenance", "starts_on": "2026-05-01"},
            headers=admin,
        )
        assert unknown.status_code == 404
        by_agent = await client.post(
            "/api/v1/contracts",
            json={"customer_id": customer_id, "kind": "maintenance", "starts_on": "2026-05-01"},
            headers=agent,
        )
        assert by_agent.status_code == 403
        for method in ("DELETE", "PUT"):
            response = await client.request(method, "/api/v1/contracts/ctr_x", headers=admin)
            assert response.status_code == 405


class TestTicketCreation:
    async def test_standard_ticket_with_blockers_waits_for_the_customer(
        self, client: httpx.AsyncClient, admin
    ) -> None:
        customer_id = await customer(client, admin)
        created = await ticket(client, admin, customer_id)
        assert created["status"] == "awaiting_customer"
        assert created["support_group"] == "standard"
        assert created["blockers"] == ["missing_environment", "missing_steps", "missing_screenshot"]
        assert created["sla_state"] == "paused"
        assert {"received_at", "first_response_due", "next_business_window"} <= set(created)

    async def test_premium_ticket_lists_blockers_but_is_queued(
        self, client: httpx.AsyncClient, admin
    ) -> None:
        customer_id = await customer(client, admin, units=10)
        created = await ticket(client, admin, customer_id)
        assert created["status"] == "open"
        assert created["support_group"] == "premium"
        assert "missing_screenshot" in created["blockers"]
        assert created["held"] is False

    async def test_database_defect_needs_a_backup_and_versions_compare_as_versions(
        self, client: httpx.AsyncClient, admin
    ) -> None:
        await client.put(
            "/api/v1/products/db-addon",
            json={"name": "DB", "latest_version": "2.10.0"},
            headers=admin,
        )
        customer_id = await customer(client, admin)
        old = await ticket(
            client,
            admin,
            customer_id,
            category="database_defect",
            product="db-addon",
            addon_version="2.9.0",
            **COMPLETE,
        )
        assert "missing_database_backup" in old["blockers"]
        assert "outdated_version" in old["blockers"]
        current = await ticket(
            client, admin, customer_id, product="db-addon", addon_version="2.10.0", **COMPLETE
        )
        assert "outdated_version" not in current["blockers"]
        unversioned = await ticket(client, admin, customer_id, product="db-addon", **COMPLETE)
        assert "missing_environment" in unversioned["blockers"]
        assert "outdated_version" not in unversioned["blockers"]

    async def test_how_to_requires_premium_until_units_are_bought(
        self, client: httpx.AsyncClient, admin, session: AsyncSession
    ) -> None:
        customer_id = await customer(client, admin)
        created = await ticket(client, admin, customer_id, category="how_to")
        assert created["blockers"] == ["requires_premium"]
        assert created["status"] == "awaiting_customer"
        await client.post(
            f"/api/v1/customers/{customer_id}/ledger/entries",
            json={"kind": "purchase", "units": 5},
            headers=admin,
        )
        read = (await client.get(f"/api/v1/tickets/{created['id']}", headers=admin)).json()
        assert read["status"] == "open"
        assert read["blockers"] == []
        assert read["support_group"] == "premium"
        types = [
            e.type
            for e in await EventRepository(session).list_for_resource("ticket", str(created["id"]))
        ]
        assert "ticket.blockers_cleared" in types

    async def test_customer_key_files_for_its_own_customer_only(
        self, client: httpx.AsyncClient, admin, headers_for
    ) -> None:
        own = await customer(client, admin)
        other = await customer(client, admin)
        key = await headers_for("customer", own)
        created = await ticket(client, key, None)
        assert created["customer_id"] == own
        foreign = await client.post(
            "/api/v1/tickets",
            json={
                "customer_id": other,
                "category": "how_to",
                "severity": "low",
                "subject": "x",
                "description": "y",
            },
            headers=key,
        )
        assert foreign.status_code == 404
        other_ticket = await ticket(client, admin, other)
        assert (
            await client.get(f"/api/v1/tickets/{other_ticket['id']}", headers=key)
        ).status_code == 404
        listed = (await client.get("/api/v1/tickets", headers=key)).json()
        assert {t["customer_id"] for t in listed["items"]} == {own}
        filtered = await client.get("/api/v1/tickets", params={"customer_id": other}, headers=key)
        assert filtered.status_code == 404
        unknown = await client.get(
            "/api/v1/tickets", params={"customer_id": "cus_nope"}, headers=admin
        )
        assert unknown.status_code == 404

    async def test_list_filters_by_status_and_category(
        self, client: httpx.AsyncClient, admin
    ) -> None:
        customer_id = await customer(client, admin)
        held = await ticket(client, admin, customer_id)
        question = await ticket(client, admin, customer_id, category="how_to")
        url = "/api/v1/tickets"
        by_status = (
            await client.get(
                url,
                params={"status": "awaiting_customer", "customer_id": customer_id},
                headers=admin,
            )
        ).json()
        assert {t["id"] for t in by_status["items"]} == {held["id"], question["id"]}
        by_category = (
            await client.get(
                url, params={"category": "how_to", "customer_id": customer_id}, headers=admin
            )
        ).json()
        assert [t["id"] for t in by_category["items"]] == [question["id"]]
        bad = await client.get(url, params={"status": "sleeping"}, headers=admin)
        assert bad.status_code == 422

    async def test_staff_must_name_the_customer(self, client: httpx.AsyncClient, admin) -> None:
        response = await client.post(
            "/api/v1/tickets",
            json={"category": "how_to", "severity": "low", "subject": "x", "description": "y"},
            headers=admin,
        )
        assert response.status_code == 422

    @pytest.mark.parametrize(
        "field", [{"category": "gossip"}, {"severity": "urgent"}, {"subject": ""}, {"x": 1}]
    )
    async def test_bad_fields_are_422(self, client: httpx.AsyncClient, admin, field) -> None:
        customer_id = await customer(client, admin)
        body = {
            "customer_id": customer_id,
            "category": "bug_report",
            "severity": "low",
            "subject": "s",
            "description": "d",
            **field,
        }
        response = await client.post("/api/v1/tickets", json=body, headers=admin)
        assert response.status_code == 422
        assert response.headers["content-type"].startswith(PROBLEM)

    async def test_filed_outside_hours_names_the_next_window(
        self, client: httpx.AsyncClient, admin, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        saturday = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
        monkeypatch.setattr("supportdesk.tickets.service.utcnow", lambda: saturday)
        customer_id = await customer(client, admin, units=5)
        created = await ticket(client, admin, customer_id, **COMPLETE)
        # Monday 2026-11-23 08:30 Europe/Berlin is 07:30 UTC.
        assert created["next_business_window"] == "2026-11-23T07:30:00Z"
        # Premium, normal: 4 business hours from the opening.
        assert created["first_response_due"] == "2026-11-23T11:30:00Z"


class TestEditsAndUploads:
    async def test_patch_and_screenshot_clear_blockers_and_open_the_ticket(
        self, client: httpx.AsyncClient, admin, headers_for, session: AsyncSession
    ) -> None:
        customer_id = await customer(client, admin)
        key = await headers_for("customer", customer_id)
        created = await ticket(client, key, None)
        patched = await client.patch(f"/api/v1/tickets/{created['id']}", json=COMPLETE, headers=key)
        assert patched.status_code == 200
        assert patched.json()["blockers"] == ["missing_screenshot"]
        assert patched.json()["status"] == "awaiting_customer"
        uploaded = await upload(client, key, str(created["id"]), "screenshot", PNG)
        assert uploaded.status_code == 201, uploaded.text
        attachment = uploaded.json()
        assert attachment["sha256"] == hashlib.sha256(PNG).hexdigest()
        assert attachment["size"] == len(PNG)
        assert attachment["content_type"] == "image/png"
        read = (await client.get(f"/api/v1/tickets/{created['id']}", headers=admin)).json()
        assert read["status"] == "open"
        assert read["blockers"] == []
        content = await client.get(
            f"/api/v1/tickets/{created['id']}/attachments/{attachment['id']}/content",
            headers=key,
        )
        assert content.content == PNG
        assert content.headers["content-type"] == "image/png"
        listed = (
            await client.get(f"/api/v1/tickets/{created['id']}/attachments", headers=admin)
        ).json()
        assert [a["id"] for a in listed["items"]] == [attachment["id"]]

    async def test_content_whose_file_is_gone_is_a_plain_500_problem(
        self, client: httpx.AsyncClient, admin, settings
    ) -> None:
        created = await ticket(client, admin, await customer(client, admin))
        uploaded = (await upload(client, admin, str(created["id"]), "screenshot", PNG)).json()
        for stored in settings.attachments_dir.rglob("*"):
            if stored.is_file():
                stored.unlink()  # a restore without the attachments folder, say
        response = await client.get(
            f"/api/v1/tickets/{created['id']}/attachments/{uploaded['id']}/content",
            headers=admin,
        )
        assert response.status_code == 500
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["type"].endswith("/content-missing")
        assert "missing" in response.json()["detail"]

    async def test_a_screenshot_that_is_no_image_is_422(
        self, client: httpx.AsyncClient, admin
    ) -> None:
        created = await ticket(client, admin, await customer(client, admin))
        response = await upload(
            client,
            admin,
            str(created["id"]),
            "screenshot",
            b"MZ\x90\x00 not an image",
            "shot.png",
            "image/png",
        )
        assert response.status_code == 422
        assert response.headers["content-type"].startswith(PROBLEM)
        read = (await client.get(f"/api/v1/tickets/{created['id']}", headers=admin)).json()
        assert "missing_screenshot" in read["blockers"]

    async def test_declared_image_type_of_a_log_is_not_trusted(
        self, client: httpx.AsyncClient, admin
    ) -> None:
        created = await ticket(client, admin, await customer(client, admin))
        response = await upload(
            client, admin, str(created["id"]), "log", b"line 1\n", "app.log", "image/png"
        )
        assert response.status_code == 201
        assert response.json()["content_type"] != "image/png"

    async def test_oversize_upload_is_413(self, client: httpx.AsyncClient, admin, settings) -> None:
        settings.attachment_max_bytes["screenshot"] = 1000
        created = await ticket(client, admin, await customer(client, admin))
        response = await upload(client, admin, str(created["id"]), "screenshot", PNG * 100)
        assert response.status_code == 413
        assert response.headers["content-type"].startswith(PROBLEM)

    async def test_malformed_uploads_are_422(self, client: httpx.AsyncClient, admin) -> None:
        created = await ticket(client, admin, await customer(client, admin))
        url = f"/api/v1/tickets/{created['id']}/attachments"
        no_kind = await client.post(url, files={"file": ("a.png", PNG, "image/png")}, headers=admin)
        bad_kind = await upload(client, admin, str(created["id"]), "selfie", PNG)
        not_multipart = await client.post(url, json={"kind": "log"}, headers=admin)
        for response in (no_kind, bad_kind, not_multipart):
            assert response.status_code == 422, response.text

    async def test_backup_clears_missing_database_backup(
        self, client: httpx.AsyncClient, admin
    ) -> None:
        created = await ticket(
            client, admin, await customer(client, admin), category="database_defect", **COMPLETE
        )
        await upload(client, admin, str(created["id"]), "screenshot", PNG)
        response = await upload(
            client,
            admin,
            str(created["id"]),
            "database_backup",
            b"backup" * 100,
            "db.bak",
            "application/octet-stream",
        )
        assert response.status_code == 201
        read = (await client.get(f"/api/v1/tickets/{created['id']}", headers=admin)).json()
        assert read["blockers"] == []
        assert read["status"] == "open"


class TestStatusMachine:
    async def test_illegal_move_is_409_naming_the_allowed(
        self, client: httpx.AsyncClient, admin, agent
    ) -> None:
        created = await ticket(client, admin, await customer(client, admin, units=5))
        response = await move(client, agent, created["id"], "closed")
        assert response.status_code == 200
        again = await move(client, agent, created["id"], "open")
        assert again.status_code == 409
        assert again.headers["content-type"].startswith(PROBLEM)
        assert again.json()["allowed"] == []

    async def test_full_path_and_back(self, client: httpx.AsyncClient, admin, agent) -> None:
        created = await ticket(client, admin, await customer(client, admin, units=5), **COMPLETE)
        for to in (
            "in_progress",
            "awaiting_customer",
            "open",
            "in_progress",
            "resolved",
            "open",
            "in_progress",
            "resolved",
            "closed",
        ):
            response = await move(client, agent, created["id"], to)
            assert response.status_code == 200, (to, response.text)
            assert response.json()["status"] == to
        wrong = await move(client, agent, created["id"], "in_progress")
        assert wrong.status_code == 409

    async def test_held_ticket_cannot_be_opened_by_hand(
        self, client: httpx.AsyncClient, admin, agent
    ) -> None:
        created = await ticket(client, admin, await customer(client, admin))
        response = await move(client, agent, created["id"], "open")
        assert response.status_code == 409

    async def test_customers_and_integrations_cannot_move_tickets(
        self, client: httpx.AsyncClient, admin, headers_for
    ) -> None:
        customer_id = await customer(client, admin, units=5)
        created = await ticket(client, admin, customer_id)
        for headers in (
            await headers_for("customer", customer_id),
            await headers_for("integration"),
        ):
            assert (await move(client, headers, created["id"], "closed")).status_code == 403

    async def test_claim_through_transition_assigns_the_caller(
        self, client: httpx.AsyncClient, admin, agent
    ) -> None:
        created = await ticket(client, admin, await customer(client, admin, units=5))
        taken = (await move(client, agent, created["id"], "in_progress")).json()
        assert taken["assignee_key_id"] is not None


class TestComments:
    async def test_customer_answer_reopens_a_question(
        self, client: httpx.AsyncClient, admin, agent, headers_for
    ) -> None:
        customer_id = await customer(client, admin, units=5)
        created = await ticket(client, admin, customer_id, **COMPLETE)
        await move(client, agent, created["id"], "in_progress")
        asked = await move(client, agent, created["id"], "awaiting_customer")
        assert asked.json()["first_response_at"] is not None
        assert asked.json()["sla_state"] in ("paused", "on_track")
        key = await headers_for("customer", customer_id)
        answer = await client.post(
            f"/api/v1/tickets/{created['id']}/comments",
            json={"body": "Here is the log."},
            headers=key,
        )
        assert answer.status_code == 201
        read = (await client.get(f"/api/v1/tickets/{created['id']}", headers=admin)).json()
        assert read["status"] == "open"

    async def test_a_pause_moves_its_own_tickets_due_time_and_no_others(
        self, client: httpx.AsyncClient, admin, agent, headers_for, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        clock = [datetime(2026, 11, 23, 8, 0, tzinfo=UTC)]  # Monday, 09:00 in Berlin
        monkeypatch.setattr("supportdesk.tickets.service.utcnow", lambda: clock[0])
        customer_id = await customer(client, admin, units=5)
        other = await ticket(client, admin, customer_id, **COMPLETE)
        asked = await ticket(client, admin, customer_id, **COMPLETE)
        await move(client, agent, asked["id"], "in_progress")
        await move(client, agent, asked["id"], "awaiting_customer")
        clock[0] += timedelta(hours=3)
        key = await headers_for("customer", customer_id)
        url = f"/api/v1/tickets/{asked['id']}/comments"
        answered = await client.post(url, json={"body": "Here is the log."}, headers=key)
        assert answered.status_code == 201, answered.text
        # The three hours the clock stood move the asked ticket's due time...
        read = (await client.get(f"/api/v1/tickets/{asked['id']}", headers=admin)).json()
        assert read["status"] == "open"
        due = datetime.fromisoformat(read["first_response_due"])
        assert due - datetime.fromisoformat(str(asked["first_response_due"])) == timedelta(hours=3)
        # ...and not the other ticket's, read alone, in a list or in the queue.
        read = (await client.get(f"/api/v1/tickets/{other['id']}", headers=admin)).json()
        assert read["first_response_due"] == other["first_response_due"]
        params = {"customer_id": customer_id}
        listed = (await client.get("/api/v1/tickets", params=params, headers=admin)).json()
        dues = {t["id"]: t["first_response_due"] for t in listed["items"]}
        assert dues[other["id"]] == other["first_response_due"]
        assert dues[asked["id"]] == read_due(due)

    async def test_internal_comments_are_staff_only(
        self, client: httpx.AsyncClient, admin, agent, headers_for
    ) -> None:
        customer_id = await customer(client, admin, units=5)
        created = await ticket(client, admin, customer_id)
        key = await headers_for("customer", customer_id)
        refused = await client.post(
            f"/api/v1/tickets/{created['id']}/comments",
            json={"body": "x", "internal": True},
            headers=key,
        )
        assert refused.status_code == 403
        await client.post(
            f"/api/v1/tickets/{created['id']}/comments",
            json={"body": "note to self", "internal": True},
            headers=agent,
        )
        await client.post(
            f"/api/v1/tickets/{created['id']}/comments", json={"body": "Hello!"}, headers=agent
        )
        seen = (await client.get(f"/api/v1/tickets/{created['id']}/comments", headers=key)).json()[
            "items"
        ]
        assert [c["body"] for c in seen] == ["Hello!"]
        staff = (
            await client.get(f"/api/v1/tickets/{created['id']}/comments", headers=agent)
        ).json()["items"]
        assert len(staff) == 2

    async def test_integration_may_not_comment(
        self, client: httpx.AsyncClient, admin, headers_for
    ) -> None:
        created = await ticket(client, admin, await customer(client, admin))
        response = await client.post(
            f"/api/v1/tickets/{created['id']}/comments",
            json={"body": "x"},
            headers=await headers_for("integration"),
        )
        assert response.status_code == 403


class TestCategoryRules:
    async def test_change_request_escalates_only_with_its_english_concept(
        self, client: httpx.AsyncClient, admin, agent
    ) -> None:
        customer_id = await customer(client, admin, contract=True)
        created = await ticket(
            client, admin, customer_id, category="change_request", concept="Neue Exportfunktion"
        )
        await move(client, agent, created["id"], "in_progress")
        url = f"/api/v1/tickets/{created['id']}/escalations"
        body = {"vendor": "Graphisoft US", "summary_en": "Customer asks for a new export."}
        refused = await client.post(url, json=body, headers=agent)
        assert refused.status_code == 422
        await client.patch(
            f"/api/v1/tickets/{created['id']}",
            json={"concept_en": "A new export function"},
            headers=admin,
        )
        escalated = await client.post(url, json=body, headers=agent)
        assert escalated.status_code == 201, escalated.text
        escalation = escalated.json()
        vendor = datetime.fromisoformat(escalation["vendor_window_opens_at"])
        local = datetime.fromisoformat(escalation["local_window_opens_at"])
        assert vendor == local
        assert vendor.utcoffset() != local.utcoffset()
        assert vendor.utcoffset() in (timedelta(hours=-5), timedelta(hours=-4))
        read = (await client.get(f"/api/v1/tickets/{created['id']}", headers=admin)).json()
        assert read["status"] == "escalated"
        assert read["sla_state"] in ("paused", "on_track", "breached")

    async def test_escalating_a_queued_ticket_is_409(
        self, client: httpx.AsyncClient, admin, agent
    ) -> None:
        created = await ticket(client, admin, await customer(client, admin, units=5))
        response = await client.post(
            f"/api/v1/tickets/{created['id']}/escalations",
            json={"vendor": "V", "summary_en": "S"},
            headers=agent,
        )
        assert response.status_code == 409

    async def test_installation_outside_hours_needs_two_appointments(
        self, client: httpx.AsyncClient, admin
    ) -> None:
        customer_id = await customer(client, admin, units=5)
        evening = {"starts_at": "2026-12-01T19:00:00+01:00", "ends_at": "2026-12-01T21:00:00+01:00"}
        saturday = {
            "starts_at": "2026-12-05T10:00:00+01:00",
            "ends_at": "2026-12-05T12:00:00+01:00",
        }
        body = {
            "customer_id": customer_id,
            "category": "installation",
            "severity": "normal",
            "subject": "Install",
            "description": "Server install",
        }
        one = await client.post(
            "/api/v1/tickets", json={**body, "proposed_appointments": [evening]}, headers=admin
        )
        assert one.status_code == 422
        two = await client.post(
            "/api/v1/tickets",
            json={**body, "proposed_appointments": [evening, saturday]},
            headers=admin,
        )
        assert two.status_code == 201
        assert len(two.json()["proposed_appointments"]) == 2

    async def test_dongle_exchange_closes_only_after_the_dongle_is_back(
        self, client: httpx.AsyncClient, admin, agent
    ) -> None:
        customer_id = await customer(client, admin, contract=True)
        created = await ticket(client, admin, customer_id, category="hardware_exchange")
        early = await move(client, agent, created["id"], "closed")
        assert early.status_code == 409
        returned = await client.post(
            f"/api/v1/tickets/{created['id']}/dongle-return", headers=agent
        )
        assert returned.status_code == 200
        assert returned.json()["dongle_received_at"] is not None
        assert (await move(client, agent, created["id"], "closed")).status_code == 200

    async def test_dongle_return_applies_only_to_exchanges(
        self, client: httpx.AsyncClient, admin, agent
    ) -> None:
        created = await ticket(client, admin, await customer(client, admin))
        response = await client.post(
            f"/api/v1/tickets/{created['id']}/dongle-return", json={}, headers=agent
        )
        assert response.status_code == 422


class TestQueue:
    async def test_order_across_groups_and_severities(
        self, client: httpx.AsyncClient, admin, agent
    ) -> None:
        standard = await customer(client, admin)
        premium = await customer(client, admin, units=20)
        contract = await customer(client, admin, contract=True)
        ready = {**COMPLETE, "category": "operation"}
        expected = []
        for customer_id in (standard, premium, contract):
            for severity in ("low", "critical", "normal", "high"):
                created = await ticket(client, admin, customer_id, severity=severity, **ready)
                # A standard ticket needs its screenshot to be ready to work.
                await upload(client, admin, str(created["id"]), "screenshot", PNG)
                expected.append((customer_id, severity, created["id"]))
        group_rank = {contract: 0, premium: 1, standard: 2}
        severity_rank = {"critical": 0, "high": 1, "normal": 2, "low": 3}
        expected.sort(key=lambda e: (group_rank[e[0]], severity_rank[e[1]]))
        queue = (await client.get("/api/v1/queue", params={"limit": 100}, headers=agent)).json()
        mine = [t["id"] for t in queue["items"] if t["customer_id"] in group_rank]
        assert mine == [e[2] for e in expected]

    async def test_paging_the_queue_keeps_its_order(
        self, client: httpx.AsyncClient, admin, agent
    ) -> None:
        customer_id = await customer(client, admin, units=20)
        for severity in ("low", "critical", "normal", "high", "critical"):
            await ticket(client, admin, customer_id, severity=severity)
        whole = (await client.get("/api/v1/queue", params={"limit": 100}, headers=agent)).json()
        paged, cursor = [], None
        while True:
            params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            page = (await client.get("/api/v1/queue", params=params, headers=agent)).json()
            paged += [t["id"] for t in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert paged == [t["id"] for t in whole["items"]]

    async def test_a_contract_ending_moves_waiting_tickets_down(
        self, client: httpx.AsyncClient, admin, agent
    ) -> None:
        premium = await customer(client, admin, units=20)
        contract = await customer(client, admin, contract=True)
        first = await ticket(client, admin, premium, severity="critical")
        second = await ticket(client, admin, contract, severity="low", **COMPLETE)
        await upload(client, admin, str(second["id"]), "screenshot", PNG)

        def order(queue: dict[str, list[dict[str, object]]]) -> list[object]:
            return [t["id"] for t in queue["items"] if t["id"] in (first["id"], second["id"])]

        before = (await client.get("/api/v1/queue", params={"limit": 100}, headers=agent)).json()
        assert order(before) == [second["id"], first["id"]]
        contract_row = (
            await client.get(f"/api/v1/customers/{contract}/contracts", headers=admin)
        ).json()["items"][0]
        ended = (date.today() - timedelta(days=3)).isoformat()
        await client.patch(
            f"/api/v1/contracts/{contract_row['id']}", json={"ends_on": ended}, headers=admin
        )
        after = (await client.get("/api/v1/queue", params={"limit": 100}, headers=agent)).json()
        # Now standard (complete, so still queued) behind the premium ticket.
        assert order(after) == [first["id"], second["id"]]

    async def test_units_running_out_hold_an_incomplete_ticket(
        self, client: httpx.AsyncClient, admin, agent
    ) -> None:
        customer_id = await customer(client, admin, units=2)
        created = await ticket(client, admin, customer_id)  # lacks steps, env, screenshot
        assert created["status"] == "open"
        await client.post(
            f"/api/v1/customers/{customer_id}/ledger/entries",
            json={"kind": "debit", "units": 2},
            headers=admin,
        )
        read = (await client.get(f"/api/v1/tickets/{created['id']}", headers=admin)).json()
        assert read["status"] == "awaiting_customer"
        assert read["support_group"] == "standard"

    async def test_claim_takes_the_first_and_204_when_empty(
        self, client: httpx.AsyncClient, admin, agent
    ) -> None:
        while (await client.post("/api/v1/queue/claim", headers=agent)).status_code == 200:
            pass  # drain what other tests left queued in this transaction
        customer_id = await customer(client, admin, units=20)
        low = await ticket(client, admin, customer_id, severity="low")
        critical = await ticket(client, admin, customer_id, severity="critical")
        first = await client.post("/api/v1/queue/claim", json={}, headers=agent)
        assert first.status_code == 200
        assert first.json()["id"] == critical["id"]
        assert first.json()["status"] == "in_progress"
        second = await client.post("/api/v1/queue/claim", headers=agent)
        assert second.json()["id"] == low["id"]
        empty = await client.post("/api/v1/queue/claim", headers=agent)
        assert empty.status_code == 204
        assert empty.content == b""

    async def test_queue_is_staff_only(self, client: httpx.AsyncClient, admin, headers_for) -> None:
        customer_id = await customer(client, admin)
        for headers in (
            await headers_for("integration"),
            await headers_for("customer", customer_id),
        ):
            assert (await client.get("/api/v1/queue", headers=headers)).status_code == 403
            assert (await client.post("/api/v1/queue/claim", headers=headers)).status_code == 403
