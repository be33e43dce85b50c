"""The prepaid-unit ledger over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from supportdesk.events.repository import EventRepository

PROBLEM = "application/problem+json"


@pytest.fixture
async def admin(headers_for) -> dict[str, str]:
    return dict(await headers_for("admin"))


async def new_customer(client: httpx.AsyncClient, admin: dict[str, str]) -> str:
    response = await client.post("/api/v1/customers", json={"name": "Maier"}, headers=admin)
    assert response.status_code == 201
    return str(response.json()["id"])


async def post_entry(
    client: httpx.AsyncClient, customer_id: str, headers: dict[str, str], **body: object
) -> httpx.Response:
    return await client.post(
        f"/api/v1/customers/{customer_id}/ledger/entries", json=body, headers=headers
    )


async def balance(client: httpx.AsyncClient, customer_id: str, headers: dict[str, str]) -> int:
    response = await client.get(f"/api/v1/customers/{customer_id}/ledger", headers=headers)
    assert response.status_code == 200
    return int(response.json()["balance"])


class TestPurchase:
    async def test_package_priced_at_its_bracket(self, client: httpx.AsyncClient, admin) -> None:
        customer_id = await new_customer(client, admin)
        response = await post_entry(client, customer_id, admin, kind="purchase", units=20)
        assert response.status_code == 201, response.text
        entry = response.json()
        assert entry["kind"] == "purchase"
        assert entry["units"] == 20
        assert entry["unit_price"] == {"amount": "26.00", "currency": "EUR"}
        assert entry["amount"] == {"amount": "520.00", "currency": "EUR"}
        assert entry["balance_after"] == 20
        assert await balance(client, customer_id, admin) == 20
        customer = (await client.get(f"/api/v1/customers/{customer_id}", headers=admin)).json()
        assert customer["unit_balance"] == 20
        assert customer["support_group"] == "premium"

    async def test_small_package_at_list_price(self, client: httpx.AsyncClient, admin) -> None:
        customer_id = await new_customer(client, admin)
        entry = (await post_entry(client, customer_id, admin, kind="purchase", units=3)).json()
        assert entry["unit_price"]["amount"] == "30.00"
        assert entry["amount"]["amount"] == "90.00"

    async def test_agent_may_not_buy(self, client: httpx.AsyncClient, admin, headers_for) -> None:
        customer_id = await new_customer(client, admin)
        response = await post_entry(
            client, customer_id, await headers_for("agent"), kind="purchase", units=5
        )
        assert response.status_code == 403

    async def test_integration_may_buy_but_not_debit(
        self, client: httpx.AsyncClient, admin, headers_for
    ) -> None:
        customer_id = await new_customer(client, admin)
        integration = await headers_for("integration")
        bought = await post_entry(client, customer_id, integration, kind="purchase", units=5)
        assert bought.status_code == 201
        debit = await post_entry(client, customer_id, integration, kind="debit", units=1)
        assert debit.status_code == 403

    @pytest.mark.parametrize("units", [0, -1, 100_001, "ten", None])
    async def test_bad_units_are_422(self, client: httpx.AsyncClient, admin, units) -> None:
        customer_id = await new_customer(client, admin)
        response = await post_entry(client, customer_id, admin, kind="purchase", units=units)
        assert response.status_code == 422
        assert response.headers["content-type"].startswith(PROBLEM)

    async def test_unknown_kind_and_extra_fields_are_422(
        self, client: httpx.AsyncClient, admin
    ) -> None:
        customer_id = await new_customer(client, admin)
        assert (
            await post_entry(client, customer_id, admin, kind="gift", units=1)
        ).status_code == 422
        extra = await post_entry(client, customer_id, admin, kind="debit", units=1, price="0")
        assert extra.status_code == 422


class TestDebit:
    async def test_debit_within_balance(self, client: httpx.AsyncClient, admin) -> None:
        customer_id = await new_customer(client, admin)
        await post_entry(client, customer_id, admin, kind="purchase", units=10)
        response = await post_entry(
            client, customer_id, admin, kind="debit", units=3, reference="call"
        )
        assert response.status_code == 201
        entry = response.json()
        assert entry["units_debited"] == 3
        assert entry["units_billed_at_list_price"] == 0
        assert entry["balance_after"] == 7
        assert entry["reference"] == "call"
        assert await balance(client, customer_id, admin) == 7

    async def test_debit_beyond_balance_goes_to_zero_and_bills_the_rest(
        self, client: httpx.AsyncClient, admin
    ) -> None:
        customer_id = await new_customer(client, admin)
        await post_entry(client, customer_id, admin, kind="purchase", units=2)
        entry = (await post_entry(client, customer_id, admin, kind="debit", units=5)).json()
        assert entry["units_debited"] == 2
        assert entry["units_billed_at_list_price"] == 3
        assert entry["list_price_amount"] == {"amount": "90.00", "currency": "EUR"}
        assert entry["balance_after"] == 0
        assert await balance(client, customer_id, admin) == 0

    async def test_debit_on_empty_balance_is_all_list_price(
        self, client: httpx.AsyncClient, admin
    ) -> None:
        customer_id = await new_customer(client, admin)
        entry = (await post_entry(client, customer_id, admin, kind="debit", units=4)).json()
        assert entry["units_debited"] == 0
        assert entry["units_billed_at_list_price"] == 4

    async def test_unknown_customer_is_404(self, client: httpx.AsyncClient, admin) -> None:
        response = await post_entry(client, "cus_nope", admin, kind="debit", units=1)
        assert response.status_code == 404


class TestReversal:
    async def test_reversing_a_debit_gives_the_units_back_once(
        self, client: httpx.AsyncClient, admin
    ) -> None:
        customer_id = await new_customer(client, admin)
        await post_entry(client, customer_id, admin, kind="purchase", units=10)
        debit = (await post_entry(client, customer_id, admin, kind="debit", units=4)).json()
        first = await post_entry(client, customer_id, admin, kind="reversal", reverses=debit["id"])
        assert first.status_code == 201, first.text
        assert first.json()["reverses"] == debit["id"]
        assert first.json()["change"] == 4
        assert await balance(client, customer_id, admin) == 10
        second = await post_entry(client, customer_id, admin, kind="reversal", reverses=debit["id"])
        assert second.status_code == 409
        assert second.headers["content-type"].startswith(PROBLEM)
        assert await balance(client, customer_id, admin) == 10

    async def test_reversing_a_purchase_whose_units_are_used_is_409(
        self, client: httpx.AsyncClient, admin
    ) -> None:
        customer_id = await new_customer(client, admin)
        purchase = (await post_entry(client, customer_id, admin, kind="purchase", units=5)).json()
        await post_entry(client, customer_id, admin, kind="debit", units=2)
        response = await post_entry(
            client, customer_id, admin, kind="reversal", reverses=purchase["id"]
        )
        assert response.status_code == 409
        assert await balance(client, customer_id, admin) == 3

    async def test_reversing_a_purchase_refunds_it(self, client: httpx.AsyncClient, admin) -> None:
        customer_id = await new_customer(client, admin)
        purchase = (await post_entry(client, customer_id, admin, kind="purchase", units=5)).json()
        reversal = (
            await post_entry(client, customer_id, admin, kind="reversal", reverses=purchase["id"])
        ).json()
        assert reversal["change"] == -5
        assert reversal["amount"] == {"amount": "-150.00", "currency": "EUR"}
        assert await balance(client, customer_id, admin) == 0

    async def test_a_reversal_cannot_be_reversed(self, client: httpx.AsyncClient, admin) -> None:
        customer_id = await new_customer(client, admin)
        purchase = (await post_entry(client, customer_id, admin, kind="purchase", units=5)).json()
        reversal = (
            await post_entry(client, customer_id, admin, kind="reversal", reverses=purchase["id"])
        ).json()
        response = await post_entry(
            client, customer_id, admin, kind="reversal", reverses=reversal["id"]
        )
        assert response.status_code == 409

    async def test_unknown_or_foreign_entry_is_404(self, client: httpx.AsyncClient, admin) -> None:
        mine = await new_customer(client, admin)
        other = await new_customer(client, admin)
        foreign = (await post_entry(client, other, admin, kind="purchase", units=5)).json()
        for target in ("led_nope", foreign["id"]):
            response = await post_entry(client, mine, admin, kind="reversal", reverses=target)
            assert response.status_code == 404


class TestReading:
    async def test_entries_newest_first_and_paged(self, client: httpx.AsyncClient, admin) -> None:
        customer_id = await new_customer(client, admin)
        ids = []
        for units in (10, 1, 2, 3):
            kind = "purchase" if units == 10 else "debit"
            ids.append(
                (await post_entry(client, customer_id, admin, kind=kind, units=units)).json()["id"]
            )
        url = f"/api/v1/customers/{customer_id}/ledger/entries"
        first = (await client.get(url, params={"limit": 3}, headers=admin)).json()
        assert [e["id"] for e in first["items"]] == ids[::-1][:3]
        second = (
            await client.get(
                url, params={"limit": 3, "cursor": first["next_cursor"]}, headers=admin
            )
        ).json()
        assert [e["id"] for e in second["items"]] == [ids[0]]
        assert second["next_cursor"] is None
        one = await client.get(f"{url}/{ids[1]}", headers=admin)
        assert one.json()["units_debited"] == 1

    async def test_balance_equals_sum_of_entries(self, client: httpx.AsyncClient, admin) -> None:
        customer_id = await new_customer(client, admin)
        for kind, units in (("purchase", 20), ("debit", 7), ("debit", 30), ("purchase", 5)):
            await post_entry(client, customer_id, admin, kind=kind, units=units)
        entries = (
            await client.get(f"/api/v1/customers/{customer_id}/ledger/entries", headers=admin)
        ).json()["items"]
        assert sum(e["change"] for e in entries) == await balance(client, customer_id, admin) == 5

    async def test_as_of_gives_a_past_balance(self, client: httpx.AsyncClient, admin) -> None:
        customer_id = await new_customer(client, admin)
        before = datetime.now(UTC) - timedelta(seconds=1)
        await post_entry(client, customer_id, admin, kind="purchase", units=8)
        url = f"/api/v1/customers/{customer_id}/ledger"
        past = (await client.get(url, params={"as_of": before.isoformat()}, headers=admin)).json()
        assert past["balance"] == 0
        now = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
        assert (await client.get(url, params={"as_of": now}, headers=admin)).json()["balance"] == 8

    async def test_naive_as_of_is_422(self, client: httpx.AsyncClient, admin) -> None:
        customer_id = await new_customer(client, admin)
        response = await client.get(
            f"/api/v1/customers/{customer_id}/ledger",
            params={"as_of": "2026-01-01T10:00:00"},
            headers=admin,
        )
        assert response.status_code == 422

    async def test_low_flag_and_threshold(self, client: httpx.AsyncClient, admin) -> None:
        customer_id = await new_customer(client, admin)
        await post_entry(client, customer_id, admin, kind="purchase", units=10)
        url = f"/api/v1/customers/{customer_id}/ledger"
        ledger = (await client.get(url, headers=admin)).json()
        assert ledger["warning_threshold"] == 4
        assert ledger["low"] is False
        await post_entry(client, customer_id, admin, kind="debit", units=6)
        assert (await client.get(url, headers=admin)).json()["low"] is True

    async def test_customer_key_reads_own_ledger_only(
        self, client: httpx.AsyncClient, admin, headers_for
    ) -> None:
        own = await new_customer(client, admin)
        other = await new_customer(client, admin)
        reader = await headers_for("customer", own)
        assert (
            await client.get(f"/api/v1/customers/{own}/ledger", headers=reader)
        ).status_code == 200
        foreign = await client.get(f"/api/v1/customers/{other}/ledger", headers=reader)
        assert foreign.status_code == 404
        write = await post_entry(client, own, reader, kind="debit", units=1)
        assert write.status_code == 403


class TestLowBalanceEvents:
    async def test_each_crossing_raises_one_event(
        self, client: httpx.AsyncClient, admin, session: AsyncSession
    ) -> None:
        customer_id = await new_customer(client, admin)
        await post_entry(client, customer_id, admin, kind="purchase", units=10)
        for units in (5, 1, 1):  # 10 -> 5 (above 4), -> 4 (crosses), -> 3 (already low)
            await post_entry(client, customer_id, admin, kind="debit", units=units)
        await post_entry(client, customer_id, admin, kind="purchase", units=10)  # 13, above again
        await post_entry(client, customer_id, admin, kind="debit", units=12)  # crosses again
        events = await EventRepository(session).list_of_type(
            "ledger.low_balance", customer_id=customer_id
        )
        assert [event.data["balance"] for event in events] == [4, 1]


class TestWarningLevels:
    async def test_customer_levels_override_the_default(
        self, client: httpx.AsyncClient, admin, session: AsyncSession
    ) -> None:
        created = await client.post(
            "/api/v1/customers",
            json={"name": "Careful", "unit_warning_levels": [4, 10]},
            headers=admin,
        )
        customer = created.json()
        assert customer["unit_warning_levels"] == [10, 4]
        await post_entry(client, customer["id"], admin, kind="purchase", units=20)
        ledger = await client.get(f"/api/v1/customers/{customer['id']}/ledger", headers=admin)
        assert ledger.json()["warning_threshold"] == 10
        assert ledger.json()["warning_levels"] == [10, 4]
        await post_entry(client, customer["id"], admin, kind="debit", units=17)  # 20 -> 3
        events = await EventRepository(session).list_of_type(
            "ledger.low_balance", customer_id=customer["id"]
        )
        assert sorted(event.data["level"] for event in events) == [4, 10]

    async def test_levels_can_be_changed_and_reset(self, client: httpx.AsyncClient, admin) -> None:
        customer_id = await new_customer(client, admin)
        url = f"/api/v1/customers/{customer_id}"
        changed = await client.patch(url, json={"unit_warning_levels": [2]}, headers=admin)
        assert changed.json()["unit_warning_levels"] == [2]
        reset = await client.patch(url, json={"unit_warning_levels": None}, headers=admin)
        assert reset.json()["unit_warning_levels"] == [4]
        bad = await client.patch(url, json={"unit_warning_levels": [-1]}, headers=admin)
        assert bad.status_code == 422


class TestAppendOnly:
    async def test_database_refuses_update_and_delete(
        self, client: httpx.AsyncClient, admin, session: AsyncSession
    ) -> None:
        customer_id = await new_customer(client, admin)
        entry = (await post_entry(client, customer_id, admin, kind="purchase", units=5)).json()
        for statement in (
            "UPDATE ledger_entries SET units = 500 WHERE id = :id",
            "DELETE FROM ledger_entries WHERE id = :id",
        ):
            with pytest.raises(DBAPIError, match="append-only"):
                async with session.begin_nested():
                    await session.execute(text(statement), {"id": entry["id"]})

    async def test_no_route_changes_entries(self, client: httpx.AsyncClient, admin) -> None:
        customer_id = await new_customer(client, admin)
        entry = (await post_entry(client, customer_id, admin, kind="purchase", units=5)).json()
        url = f"/api/v1/customers/{customer_id}/ledger/entries/{entry['id']}"
        for method in ("PUT", "PATCH", "DELETE"):
            response = await client.request(method, url, json={}, headers=admin)
            assert response.status_code == 405
