"""The monthly statement job: on the statement day, last month's statement for every
customer with billable activity, once, however many workers run it at the same moment."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from conftest import live_admin_headers, live_client
from supportdesk.config import BusinessRules, Settings, build_rules
from supportdesk.db import build_engine, build_sessionmaker
from supportdesk.models import Event, Statement
from supportdesk.statements.monthly import issue_monthly_statements, last_month
from supportdesk.statements.service import StatementService

SETTINGS = Settings()
ZONE = ZoneInfo(SETTINGS.timezone)
THIS_MONTH = datetime.now(ZONE).date().replace(day=1)
NEXT_MONTH = (THIS_MONTH + timedelta(days=32)).replace(day=1)


def rules_with(statement_day: int) -> BusinessRules:
    return dataclasses.replace(build_rules(SETTINGS), statement_day=statement_day)


def on(day: date) -> datetime:
    return datetime.combine(day, time(9, 0), ZONE)


class Customers:
    """Customers of this test, with and without billable activity this month."""

    def __init__(self, http: httpx.AsyncClient, admin: dict[str, str]) -> None:
        self.http, self.admin = http, admin

    async def new(self, name: str) -> str:
        response = await self.http.post(
            "/api/v1/customers", json={"name": name}, headers=self.admin
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    async def log(self, customer_id: str, *, billable: bool, list_price: bool = False) -> None:
        body: dict[str, object] = {
            "customer_id": customer_id,
            "partner": "PC",
            "started_at": on(THIS_MONTH).isoformat(),
            "duration_seconds": 900,
            "supporter": "K",
            "billable": billable,
            "bill_at_list_price": list_price,
        }
        if not billable:
            body["non_billable_reason"] = "goodwill"
        response = await self.http.post("/api/v1/session-logs", json=body, headers=self.admin)
        assert response.status_code == 201, response.text

    async def make(self) -> tuple[list[str], list[str]]:
        """(customers that get a statement, customers that do not)"""
        due, idle = [], []
        for n in range(3):  # a purchase: a ledger entry only
            customer = await self.new(f"buyer {n}")
            response = await self.http.post(
                f"/api/v1/customers/{customer}/ledger/entries",
                json={"kind": "purchase", "units": 10},
                headers=self.admin,
            )
            assert response.status_code == 201, response.text
            due.append(customer)
        for n in range(3):  # a billable session, charged at list price
            customer = await self.new(f"caller {n}")
            await self.log(customer, billable=True, list_price=True)
            due.append(customer)
        for n in range(2):  # a session covered by a contract: no ledger entry at all
            customer = await self.new(f"contract {n}")
            response = await self.http.post(
                "/api/v1/contracts",
                json={
                    "customer_id": customer,
                    "kind": "maintenance",
                    "starts_on": (THIS_MONTH - timedelta(days=40)).isoformat(),
                },
                headers=self.admin,
            )
            assert response.status_code == 201, response.text
            await self.log(customer, billable=True)
            due.append(customer)
        quiet = await self.new("not billable")
        await self.log(quiet, billable=False)
        idle += [quiet, await self.new("nothing at all")]
        return due, idle


async def statements_and_events(
    database_url: str, customers: list[str]
) -> dict[str, tuple[int, int]]:
    """Per customer: (statements for this month, statement.issued events)."""
    first, last = THIS_MONTH, NEXT_MONTH - timedelta(days=1)
    engine = build_engine(Settings(database_url=database_url))
    try:
        async with build_sessionmaker(engine)() as session:
            found: dict[str, tuple[int, int]] = {}
            for customer in customers:
                statements = await session.scalar(
                    select(func.count()).where(
                        Statement.customer_id == customer,
                        Statement.first == first,
                        Statement.last == last,
                    )
                )
                events = await session.scalar(
                    select(func.count()).where(
                        Event.customer_id == customer, Event.type == "statement.issued"
                    )
                )
                found[customer] = (int(statements or 0), int(events or 0))
            return found
    finally:
        await engine.dispose()


class TestMonthlyJob:
    async def test_two_workers_at_once_issue_one_statement_and_one_event_per_customer(
        self, database_url: str
    ) -> None:
        admin = await live_admin_headers(database_url)
        async with live_client(database_url) as http:
            due, idle = await Customers(http, admin).make()
        engines = [build_engine(Settings(database_url=database_url)) for _ in range(2)]
        try:
            rules = rules_with(1)
            counts = await asyncio.gather(
                *(
                    issue_monthly_statements(build_sessionmaker(engine), rules, now=on(NEXT_MONTH))
                    for engine in engines
                )
            )
            # Others' customers of this run may be due too; ours are issued once in all.
            assert sum(counts) >= len(due)
            again = await issue_monthly_statements(
                build_sessionmaker(engines[0]), rules, now=on(NEXT_MONTH)
            )
            assert again == 0
        finally:
            for engine in engines:
                await engine.dispose()
        found = await statements_and_events(database_url, due + idle)
        assert {c: found[c] for c in due} == dict.fromkeys(due, (1, 1))
        assert {c: found[c] for c in idle} == dict.fromkeys(idle, (0, 0))
        async with live_client(database_url) as http:
            numbers = set()
            for customer in due:
                listed = await http.get(f"/api/v1/customers/{customer}/statements", headers=admin)
                (item,) = listed.json()["items"]
                assert item["from"] == THIS_MONTH.isoformat()
                numbers.add(item["number"])
            assert len(numbers) == len(due)

    async def test_nothing_happens_on_another_day_or_when_switched_off(
        self, database_url: str
    ) -> None:
        admin = await live_admin_headers(database_url)
        async with live_client(database_url) as http:
            due, idle = await Customers(http, admin).make()
        engine = build_engine(Settings(database_url=database_url))
        try:
            sessionmaker = build_sessionmaker(engine)
            second = NEXT_MONTH + timedelta(days=1)
            for statement_day, day in (
                (1, second),
                (1, NEXT_MONTH - timedelta(days=1)),
                (0, NEXT_MONTH),
            ):
                issued = await issue_monthly_statements(
                    sessionmaker, rules_with(statement_day), now=on(day)
                )
                assert issued == 0, (statement_day, day)
            found = await statements_and_events(database_url, due + idle)
            assert set(found.values()) == {(0, 0)}
            # On its day, the job does issue them.
            assert await issue_monthly_statements(
                sessionmaker, rules_with(2), now=on(second)
            ) >= len(due)
        finally:
            await engine.dispose()
        found = await statements_and_events(database_url, due)
        assert set(found.values()) == {(1, 1)}


class TestOneCustomerRacedFor:
    async def test_a_second_transaction_waits_and_then_issues_nothing(
        self, database_url: str
    ) -> None:
        """What two workers do for one customer: the second transaction waits for the
        first (the counter's row lock on PostgreSQL, the write lock on SQLite), then finds
        the period issued (the unique constraint, or its check) and issues nothing."""
        admin = await live_admin_headers(database_url)
        async with live_client(database_url) as http:
            customers = Customers(http, admin)
            customer = await customers.new("raced for")
            response = await http.post(
                f"/api/v1/customers/{customer}/ledger/entries",
                json={"kind": "purchase", "units": 10},
                headers=admin,
            )
            assert response.status_code == 201, response.text
        first, last = THIS_MONTH, NEXT_MONTH - timedelta(days=1)
        rules = rules_with(1)
        engines = [build_engine(Settings(database_url=database_url)) for _ in range(2)]
        try:
            makers = [build_sessionmaker(engine) for engine in engines]

            async def issue(maker: async_sessionmaker[AsyncSession]) -> Statement | None:
                async with maker.begin() as session:
                    return await StatementService(session, rules).issue_if_due(
                        customer, first, last
                    )

            async with makers[0].begin() as session:
                winner = await StatementService(session, rules).issue_if_due(customer, first, last)
                assert winner is not None
                loser = asyncio.create_task(issue(makers[1]))
                await asyncio.sleep(0.5)
                assert not loser.done()  # it waits for the first transaction
            assert await asyncio.wait_for(loser, 30) is None
        finally:
            for engine in engines:
                await engine.dispose()
        assert await statements_and_events(database_url, [customer]) == {customer: (1, 1)}


def test_last_month_crosses_the_year() -> None:
    assert last_month(date(2027, 1, 1)) == (date(2026, 12, 1), date(2026, 12, 31))
    assert last_month(date(2028, 3, 28)) == (date(2028, 2, 1), date(2028, 2, 29))
