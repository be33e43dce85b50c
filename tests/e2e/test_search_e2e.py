"""?q= finds tickets by words in subject, description, environment and comments."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, literal_column, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from supportdesk.models import Ticket
from supportdesk.tickets.repository import _ticket_text


@pytest.fixture
async def admin(headers_for) -> dict[str, str]:
    return dict(await headers_for("admin"))


async def ticket(
    client: httpx.AsyncClient, admin: dict[str, str], customer_id: str, **fields: object
) -> str:
    body = {
        "customer_id": customer_id,
        "category": "how_to",
        "severity": "low",
        "subject": "Question",
        "description": "Please help",
        **fields,
    }
    response = await client.post("/api/v1/tickets", json=body, headers=admin)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def search(
    client: httpx.AsyncClient, headers: dict[str, str], q: str, **params: str
) -> list[str]:
    response = await client.get("/api/v1/tickets", params={"q": q, **params}, headers=headers)
    assert response.status_code == 200, response.text
    return [t["id"] for t in response.json()["items"]]


class TestSearch:
    async def test_a_word_only_in_a_comment(self, client: httpx.AsyncClient, admin) -> None:
        customer = (
            await client.post("/api/v1/customers", json={"name": "S"}, headers=admin)
        ).json()["id"]
        target = await ticket(client, admin, customer)
        await ticket(client, admin, customer)
        await client.post(
            f"/api/v1/tickets/{target}/comments",
            json={"body": "Der Druckertreiber xylophonia fehlt"},
            headers=admin,
        )
        assert await search(client, admin, "xylophonia") == [target]
        assert await search(client, admin, "XYLOPHONIA") == [target]

    async def test_subject_description_and_environment(
        self, client: httpx.AsyncClient, admin
    ) -> None:
        customer = (
            await client.post("/api/v1/customers", json={"name": "S"}, headers=admin)
        ).json()["id"]
        by_subject = await ticket(client, admin, customer, subject="Quarzuhr stops")
        by_env = await ticket(
            client, admin, customer, environment={"os": "Solaris", "host_application": "Zebrafant"}
        )
        assert await search(client, admin, "quarzuhr") == [by_subject]
        assert await search(client, admin, "zebrafant") == [by_env]
        assert await search(client, admin, "zebrafant", status="closed") == []
        assert await search(client, admin, "nothingmatchesthis") == []

    async def test_customer_does_not_find_by_internal_notes(
        self, client: httpx.AsyncClient, admin, headers_for
    ) -> None:
        customer = (
            await client.post("/api/v1/customers", json={"name": "S"}, headers=admin)
        ).json()["id"]
        target = await ticket(client, admin, customer)
        await client.post(
            f"/api/v1/tickets/{target}/comments",
            json={"body": "grumblewort suspected", "internal": True},
            headers=admin,
        )
        own = await headers_for("customer", customer)
        assert await search(client, own, "grumblewort") == []
        assert await search(client, admin, "grumblewort") == [target]

    async def test_odd_input_is_safe(self, client: httpx.AsyncClient, admin) -> None:
        for q in ("100%", "a_b", "'; drop table tickets; --", "!!!", "& | :*"):
            response = await client.get("/api/v1/tickets", params={"q": q}, headers=admin)
            assert response.status_code == 200, (q, response.text)
        empty = await client.get("/api/v1/tickets", params={"q": ""}, headers=admin)
        assert empty.status_code == 422


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
class TestSearchIndex:
    async def test_postgres_uses_the_full_text_index_for_the_search_expression(
        self, session: AsyncSession
    ) -> None:
        searched = func.to_tsvector(literal_column("'simple'"), _ticket_text())
        query = select(Ticket.id).where(
            searched.op("@@")(func.plainto_tsquery(literal_column("'simple'"), "x"))
        )
        sql = str(
            query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
        )
        await session.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(row[0] for row in await session.execute(text("EXPLAIN " + sql)))
        assert "ix_tickets_search" in plan
