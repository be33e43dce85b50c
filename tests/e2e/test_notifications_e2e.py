"""The notification settings of a customer, the ticket.commented event and the per-ticket
list of what was sent, over HTTP (the sending itself: tests/integration/
test_mail_notifications.py)."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from supportdesk.events.repository import EventRepository


@pytest.fixture
async def admin(headers_for) -> dict[str, str]:
    return dict(await headers_for("admin"))


async def new_customer(
    client: httpx.AsyncClient, headers: dict[str, str], **fields: object
) -> dict[str, object]:
    response = await client.post(
        "/api/v1/customers", json={"name": "Maier", **fields}, headers=headers
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def new_contact(client: httpx.AsyncClient, headers: dict[str, str], customer: str) -> str:
    response = await client.post(
        f"/api/v1/customers/{customer}/contacts",
        json={"name": "Erika", "email": "erika@example.com"},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def new_ticket(client: httpx.AsyncClient, headers: dict[str, str], customer: str) -> str:
    response = await client.post(
        "/api/v1/tickets",
        json={
            "customer_id": customer,
            "category": "how_to",
            "severity": "low",
            "subject": "s",
            "description": "d",
        },
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


class TestNotificationSettings:
    async def test_german_without_opt_outs_by_default(
        self, client: httpx.AsyncClient, admin: dict[str, str]
    ) -> None:
        created = await new_customer(client, admin)
        read = (await client.get(f"/api/v1/customers/{created['id']}", headers=admin)).json()
        assert read["language"] == "de"
        assert read["billing_contact_id"] is None
        assert read["notification_opt_outs"] == []

    async def test_language_opt_outs_and_billing_contact_are_kept(
        self, client: httpx.AsyncClient, admin: dict[str, str]
    ) -> None:
        created = await new_customer(
            client, admin, language="en", notification_opt_outs=["low_balance"]
        )
        contact = await new_contact(client, admin, str(created["id"]))
        path = f"/api/v1/customers/{created['id']}"
        response = await client.patch(
            path,
            json={
                "billing_contact_id": contact,
                "notification_opt_outs": ["statement_issued", "low_balance", "low_balance"],
            },
            headers=admin,
        )
        assert response.status_code == 200, response.text
        read = (await client.get(path, headers=admin)).json()
        assert read["language"] == "en"
        assert read["billing_contact_id"] == contact
        assert read["notification_opt_outs"] == ["low_balance", "statement_issued"]
        cleared = await client.patch(
            path, json={"billing_contact_id": None, "notification_opt_outs": []}, headers=admin
        )
        assert cleared.json()["billing_contact_id"] is None
        assert cleared.json()["notification_opt_outs"] == []

    @pytest.mark.parametrize(
        "body",
        [
            {"language": "fr"},
            {"language": None},
            {"notification_opt_outs": ["spam"]},
            {"notification_opt_outs": None},
            {"notification_opt_outs": "low_balance"},
            {"billing_contact_id": ""},
        ],
    )
    async def test_bad_settings_are_refused(
        self, client: httpx.AsyncClient, admin: dict[str, str], body: dict[str, object]
    ) -> None:
        created = await new_customer(client, admin)
        response = await client.patch(
            f"/api/v1/customers/{created['id']}", json=body, headers=admin
        )
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["errors"]

    async def test_billing_contact_of_another_customer_does_not_exist(
        self, client: httpx.AsyncClient, admin: dict[str, str]
    ) -> None:
        mine = await new_customer(client, admin)
        other = await new_customer(client, admin)
        foreign = await new_contact(client, admin, str(other["id"]))
        for contact in (foreign, "con_does_not_exist"):
            response = await client.patch(
                f"/api/v1/customers/{mine['id']}",
                json={"billing_contact_id": contact},
                headers=admin,
            )
            assert response.status_code == 404, response.text
            assert response.headers["content-type"].startswith("application/problem+json")


class TestCommentEvent:
    async def test_a_visible_comment_is_an_event_an_internal_one_is_not(
        self, client: httpx.AsyncClient, admin: dict[str, str], session: AsyncSession
    ) -> None:
        customer = await new_customer(client, admin)
        ticket = await new_ticket(client, admin, str(customer["id"]))
        comments = f"/api/v1/tickets/{ticket}/comments"
        await client.post(comments, json={"body": "note", "internal": True}, headers=admin)
        visible = (
            await client.post(comments, json={"body": "Welche Version?"}, headers=admin)
        ).json()
        events = [
            e
            for e in await EventRepository(session).list_for_resource("ticket", ticket)
            if e.type == "ticket.commented"
        ]
        assert len(events) == 1
        assert events[0].data["id"] == visible["id"]
        assert events[0].data["body"] == "Welche Version?"
        assert events[0].data["author_role"] == "admin"
        assert events[0].data["internal"] is False


class TestTicketNotifications:
    async def test_empty_until_the_mailer_ran(
        self, client: httpx.AsyncClient, admin: dict[str, str], headers_for
    ) -> None:
        customer = await new_customer(client, admin)
        ticket = await new_ticket(client, admin, str(customer["id"]))
        for role in ("admin", "agent"):
            response = await client.get(
                f"/api/v1/tickets/{ticket}/notifications", headers=await headers_for(role)
            )
            assert response.status_code == 200, response.text
            assert response.json() == {"items": [], "next_cursor": None}

    async def test_only_agents_and_admins_may_read_it(
        self, client: httpx.AsyncClient, admin: dict[str, str], headers_for
    ) -> None:
        customer = await new_customer(client, admin)
        ticket = await new_ticket(client, admin, str(customer["id"]))
        path = f"/api/v1/tickets/{ticket}/notifications"
        for headers in (
            await headers_for("integration"),
            await headers_for("customer", str(customer["id"])),
        ):
            assert (await client.get(path, headers=headers)).status_code == 403
        assert (await client.get(path)).status_code == 401

    async def test_unknown_ticket_is_404(
        self, client: httpx.AsyncClient, admin: dict[str, str]
    ) -> None:
        response = await client.get("/api/v1/tickets/tkt_nope/notifications", headers=admin)
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("application/problem+json")
