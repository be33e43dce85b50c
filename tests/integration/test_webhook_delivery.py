"""Webhooks delivered to a real HTTP receiver on 127.0.0.1, by the real dispatcher."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpcore
import httpx
import pytest
import uvicorn
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import live_admin_headers, live_client
from supportdesk.config import Settings, build_rules
from supportdesk.db import build_engine, build_sessionmaker
from supportdesk.domain.sla import at_risk_from
from supportdesk.kit.clock import utcnow
from supportdesk.kit.ids import new_id
from supportdesk.models import Event, Ticket, WebhookJob
from supportdesk.tickets.service import TicketService
from supportdesk.webhooks.dispatcher import (
    SIGNATURE_HEADER,
    Dispatcher,
    url_key,
    verify_signature,
)
from supportdesk.webhooks.repository import WebhookRepository
from supportdesk.webhooks.schemas import EventType
from supportdesk.webhooks.transport import delivery_client

SECRET = "webhook-secret-0123456789"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
FAST = {
    "webhooks_allow_private": True,
    "webhook_retry_base_seconds": 0.01,
    "webhook_retry_max_seconds": 0.05,
    "webhook_poll_seconds": 0.01,
}


class Receiver:
    """An HTTP endpoint that records what arrives and can fail on purpose."""

    def __init__(self) -> None:
        self.attempts: list[dict[str, Any]] = []
        self.accepted: list[dict[str, Any]] = []
        self.fail_times: dict[str, int] = {}
        self.delay = 0.0
        self.in_flight = 0
        self.max_in_flight = 0
        # (event id, time.monotonic()) of every request as it arrives, before the delay.
        self.arrivals: list[tuple[str, float]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        event = json.loads(body)
        self.arrivals.append((event["id"], time.monotonic()))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
            record = {"headers": headers, "body": body, "event": event}
            self.attempts.append(record)
            left = self.fail_times.get(event["id"], 0)
            if left:
                self.fail_times[event["id"]] = left - 1
                status = 503
            else:
                status = 200
                self.accepted.append(record)
        finally:
            self.in_flight -= 1
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    app = Receiver()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers only this flag
        await asyncio.sleep(0.01)
    yield app, f"http://127.0.0.1:{port}/hook"
    server.should_exit = True
    await task


def dispatcher_for(database_url: str, **overrides: Any) -> tuple[Dispatcher, AsyncEngine]:
    settings = Settings(database_url=database_url, **{**FAST, **overrides})
    engine = build_engine(settings)
    return Dispatcher(build_sessionmaker(engine), settings), engine


async def deliver_until(dispatcher: Dispatcher, done: Any, seconds: float = 30) -> None:
    async with asyncio.timeout(seconds):
        while not done():
            await dispatcher.run_once()
            await asyncio.sleep(0.02)


async def subscribe(
    http: httpx.AsyncClient, admin: dict[str, str], url: str, events: list[str]
) -> str:
    response = await http.post(
        "/api/v1/webhooks", json={"url": url, "events": events, "secret": SECRET}, headers=admin
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


class TestDelivery:
    async def test_every_event_type_arrives_signed(
        self, database_url: str, receiver: tuple[Receiver, str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        app, url = receiver
        admin = await live_admin_headers(database_url)
        dispatcher, engine = dispatcher_for(database_url)
        try:
            async with live_client(database_url, **FAST) as http:
                hook = await subscribe(http, admin, url, [e.value for e in EventType])
                premium = (
                    await http.post("/api/v1/customers", json={"name": "P"}, headers=admin)
                ).json()["id"]
                ledger = f"/api/v1/customers/{premium}/ledger/entries"
                await http.post(ledger, json={"kind": "purchase", "units": 10}, headers=admin)
                await http.post(ledger, json={"kind": "debit", "units": 8}, headers=admin)
                await http.post(
                    "/api/v1/session-logs",
                    json={
                        "customer_id": premium,
                        "partner": "P – PC",
                        "duration_seconds": 600,
                        "started_at": "2026-11-20T10:00:00+01:00",
                        "supporter": "K",
                        "billable": True,
                    },
                    headers=admin,
                )
                issued = await http.post(
                    f"/api/v1/customers/{premium}/statements",
                    json={"from": "2026-11-01", "to": "2026-11-30"},
                    headers=admin,
                )
                assert issued.status_code == 201, issued.text
                standard = (
                    await http.post("/api/v1/customers", json={"name": "S"}, headers=admin)
                ).json()["id"]
                ticket = (
                    await http.post(
                        "/api/v1/tickets",
                        json={
                            "customer_id": standard,
                            "category": "bug_report",
                            "severity": "high",
                            "subject": "s",
                            "description": "d",
                        },
                        headers=admin,
                    )
                ).json()
                await http.patch(
                    f"/api/v1/tickets/{ticket['id']}",
                    json={
                        "steps_to_reproduce": "1.",
                        "environment": {"os": "W", "host_application": "A"},
                    },
                    headers=admin,
                )
                await http.post(
                    f"/api/v1/tickets/{ticket['id']}/attachments",
                    files={"file": ("s.png", PNG, "image/png")},
                    data={"kind": "screenshot"},
                    headers=admin,
                )
                await http.post(
                    "/api/v1/contracts",
                    json={
                        "customer_id": standard,
                        "kind": "maintenance",
                        "starts_on": "2020-01-01",
                    },
                    headers=admin,
                )
            # Time alone makes a ticket at risk, then breached: the sweep notices.
            rules = build_rules(Settings())
            async with build_sessionmaker(engine)() as session:
                row = await session.get(Ticket, ticket["id"])
                assert row is not None
                risky = at_risk_from(
                    row.received_at, row.first_response_due, rules.calendar, (), rules.at_risk_ratio
                )
                for moment in (
                    risky + timedelta(minutes=1),
                    row.first_response_due + timedelta(days=30),
                ):
                    monkeypatch.setattr("supportdesk.tickets.service.utcnow", lambda m=moment: m)
                    assert await TicketService(session, rules).sweep_sla() >= 1
                await session.commit()
            monkeypatch.undo()
            async with live_client(database_url, **FAST) as http:
                # After the sweep: a supporter's answer is a first response, no SLA to miss.
                await http.post(
                    f"/api/v1/tickets/{ticket['id']}/comments",
                    json={"body": "Which version?"},
                    headers=admin,
                )

            expected = {e.value for e in EventType}
            await deliver_until(
                dispatcher, lambda: expected <= {r["event"]["type"] for r in app.accepted}
            )
            for record in app.accepted:
                assert verify_signature(
                    SECRET, record["headers"][SIGNATURE_HEADER.lower()], record["body"]
                )
                assert set(record["event"]) == {"id", "type", "occurred_at", "data"}
            assert not verify_signature(
                "wrong-secret-000000",
                app.accepted[0]["headers"][SIGNATURE_HEADER.lower()],
                app.accepted[0]["body"],
            )
            ids = [r["event"]["id"] for r in app.accepted]
            assert len(ids) == len(set(ids))
            async with live_client(database_url, **FAST) as http:
                log = (
                    await http.get(
                        f"/api/v1/webhooks/{hook}/deliveries", params={"limit": 100}, headers=admin
                    )
                ).json()["items"]
                assert log
                assert all(entry["delivered"] for entry in log)
                await http.delete(f"/api/v1/webhooks/{hook}", headers=admin)
        finally:
            await dispatcher.aclose()
            await engine.dispose()

    async def test_three_failures_then_accepted_exactly_once(
        self, database_url: str, receiver: tuple[Receiver, str]
    ) -> None:
        app, url = receiver
        admin = await live_admin_headers(database_url)
        dispatcher, engine = dispatcher_for(database_url)
        try:
            async with live_client(database_url, **FAST) as http:
                hook = await subscribe(http, admin, url, ["contract.changed"])
                customer = (
                    await http.post("/api/v1/customers", json={"name": "F"}, headers=admin)
                ).json()["id"]
                await http.post(
                    "/api/v1/contracts",
                    json={
                        "customer_id": customer,
                        "kind": "maintenance",
                        "starts_on": "2020-01-01",
                    },
                    headers=admin,
                )
                await dispatcher.fan_out()
                pending = await first_event_id(hook, dispatcher)
                app.fail_times[pending] = 3
                await deliver_until(dispatcher, lambda: len(app.accepted) >= 1)
                await asyncio.sleep(0.1)
                for _ in range(3):
                    await dispatcher.run_once()
                assert [r["event"]["id"] for r in app.accepted] == [pending]
                assert len(app.attempts) == 4
                log = (await http.get(f"/api/v1/webhooks/{hook}/deliveries", headers=admin)).json()[
                    "items"
                ]
                assert [(d["attempt"], d["delivered"]) for d in log] == [
                    (1, False),
                    (2, False),
                    (3, False),
                    (4, True),
                ]
                assert [d["status_code"] for d in log] == [503, 503, 503, 200]
                await http.delete(f"/api/v1/webhooks/{hook}", headers=admin)
        finally:
            await dispatcher.aclose()
            await engine.dispose()

    async def test_a_restart_in_the_middle_of_retries_loses_nothing(
        self, database_url: str, receiver: tuple[Receiver, str]
    ) -> None:
        app, url = receiver
        admin = await live_admin_headers(database_url)
        first, first_engine = dispatcher_for(database_url)
        async with live_client(database_url, **FAST) as http:
            hook = await subscribe(http, admin, url, ["ledger.entry_created"])
            customer = (
                await http.post("/api/v1/customers", json={"name": "R"}, headers=admin)
            ).json()["id"]
            entry = (
                await http.post(
                    f"/api/v1/customers/{customer}/ledger/entries",
                    json={"kind": "purchase", "units": 3},
                    headers=admin,
                )
            ).json()
        await first.fan_out()
        event_id = await first_event_id(hook, first)
        app.fail_times[event_id] = 1
        await first.run_once()  # fails once...
        await first.aclose()  # ...and the service goes down
        await first_engine.dispose()
        assert app.accepted == []

        second, second_engine = dispatcher_for(database_url)  # a fresh process, same database
        try:
            await deliver_until(second, lambda: len(app.accepted) >= 1)
            assert app.accepted[0]["event"]["data"]["id"] == entry["id"]
        finally:
            await second.aclose()
            await second_engine.dispose()
        async with live_client(database_url, **FAST) as http:
            await http.delete(f"/api/v1/webhooks/{hook}", headers=admin)

    async def test_two_dispatchers_never_deliver_twice_at_once(
        self, database_url: str, receiver: tuple[Receiver, str]
    ) -> None:
        app, url = receiver
        app.delay = 0.02
        admin = await live_admin_headers(database_url)
        one, one_engine = dispatcher_for(database_url)
        two, two_engine = dispatcher_for(database_url)
        try:
            async with live_client(database_url, **FAST) as http:
                hook = await subscribe(http, admin, url, ["ledger.entry_created"])
                customer = (
                    await http.post("/api/v1/customers", json={"name": "T"}, headers=admin)
                ).json()["id"]
                for _ in range(15):
                    await http.post(
                        f"/api/v1/customers/{customer}/ledger/entries",
                        json={"kind": "purchase", "units": 1},
                        headers=admin,
                    )

                def done() -> bool:
                    return len({r["event"]["id"] for r in app.accepted}) >= 15

                await asyncio.gather(deliver_until(one, done), deliver_until(two, done))
                await asyncio.sleep(0.1)
                counts = Counter(r["event"]["id"] for r in app.accepted)
                assert len(counts) == 15
                assert set(counts.values()) == {1}
                assert app.max_in_flight == 1
                await http.delete(f"/api/v1/webhooks/{hook}", headers=admin)
        finally:
            await one.aclose()
            await two.aclose()
            await one_engine.dispose()
            await two_engine.dispose()


LEASE = 2.0  # SUPPORTDESK_WEBHOOK_LEASE_SECONDS in these tests, instead of 30
POLL = FAST["webhook_poll_seconds"]
SLACK = 1.0  # a round of the dispatcher and the scheduling of a busy test machine


async def entries_for_one_customer(
    http: httpx.AsyncClient, admin: dict[str, str], count: int
) -> None:
    customer = (await http.post("/api/v1/customers", json={"name": "L"}, headers=admin)).json()
    for _ in range(count):
        created = await http.post(
            f"/api/v1/customers/{customer['id']}/ledger/entries",
            json={"kind": "purchase", "units": 1},
            headers=admin,
        )
        assert created.status_code == 201, created.text


async def arrived(app: Receiver, count: int, seconds: float = 10) -> None:
    async with asyncio.timeout(seconds):
        while len(app.arrivals) < count:  # noqa: ASYNC110 - the receiver offers only its list
            await asyncio.sleep(0.01)


async def settled(app: Receiver) -> None:
    """Wait for the requests the receiver is still answering (a killed sender's too)."""
    async with asyncio.timeout(10):
        while app.in_flight:  # noqa: ASYNC110 - the receiver offers only its counter
            await asyncio.sleep(0.01)


async def url_lease_left(dispatcher: Dispatcher, url: str) -> float:
    """Seconds the URL's lease has left, as stored."""
    from sqlalchemy import select

    from supportdesk.kit.clock import utcnow
    from supportdesk.models import UrlLease

    async with dispatcher.sessionmaker() as session:
        until = await session.scalar(
            select(UrlLease.locked_until).where(UrlLease.url_key == url_key(url))
        )
        assert until is not None
        return (until - utcnow()).total_seconds()


async def jobs_of(dispatcher: Dispatcher, hook: str) -> list[tuple[str, int, str | None]]:
    """(state, attempts, owner) of the subscription's jobs, read from the job table."""
    from sqlalchemy import select

    from supportdesk.models import WebhookJob

    async with dispatcher.sessionmaker() as session:
        jobs = await session.scalars(
            select(WebhookJob).where(WebhookJob.subscription_id == hook).order_by(WebhookJob.id)
        )
        return [(job.state, job.attempts, job.owner) for job in jobs]


class TestTakeover:
    """Issue 15 item 2: a dispatcher that died stops its URLs for one short lease, not
    for 530 s; a live one keeps its URL with a heartbeat however slow the receiver."""

    async def test_a_dispatcher_killed_mid_delivery_is_taken_over_within_the_lease(
        self, database_url: str, receiver: tuple[Receiver, str]
    ) -> None:
        app, url = receiver
        admin = await live_admin_headers(database_url)
        killed, killed_engine = dispatcher_for(database_url, webhook_lease_seconds=LEASE)
        survivor, survivor_engine = dispatcher_for(database_url, webhook_lease_seconds=LEASE)
        try:
            async with live_client(database_url, **FAST) as http:
                hook = await subscribe(http, admin, url, ["ledger.entry_created"])
                await entries_for_one_customer(http, admin, 3)
            await killed.fan_out()
            app.delay = LEASE + 1.5  # the first POST hangs past the lease...
            started = time.monotonic()
            round_ = asyncio.create_task(killed.run_once())
            await arrived(app, 1)
            app.delay = 0
            round_.cancel()  # ...and its dispatcher is killed: no heartbeat, no write-back
            with contextlib.suppress(asyncio.CancelledError):
                await round_
            killed_at = time.monotonic()
            in_flight_at_crash = app.arrivals[0][0]

            def all_three() -> bool:
                return len({r["event"]["id"] for r in app.accepted}) >= 3

            await deliver_until(survivor, all_three, seconds=LEASE + 10)
            resumed_at = app.arrivals[1][1]
            # Not before the dead owner's lease ran out, and soon after.
            assert resumed_at >= started + LEASE - 0.2
            assert resumed_at - killed_at <= LEASE + POLL + SLACK
            await settled(app)
            # At least once: only the delivery in flight at the crash arrived twice.
            counts = Counter(r["event"]["id"] for r in app.accepted)
            assert counts[in_flight_at_crash] == 2
            assert sorted(counts.values()) == [1, 1, 2]
            log = await deliveries_of(database_url, admin, hook, FAST)
            assert sorted((d["attempt"], d["delivered"]) for d in log) == [(1, True)] * 3
        finally:
            for dispatcher, engine in ((killed, killed_engine), (survivor, survivor_engine)):
                await dispatcher.aclose()
                await engine.dispose()

    async def test_a_live_owner_keeps_its_url_through_a_delivery_slower_than_the_lease(
        self, database_url: str, receiver: tuple[Receiver, str]
    ) -> None:
        app, url = receiver
        lease = 1.0
        admin = await live_admin_headers(database_url)
        owner, owner_engine = dispatcher_for(database_url, webhook_lease_seconds=lease)
        other, other_engine = dispatcher_for(database_url, webhook_lease_seconds=lease)
        try:
            async with live_client(database_url, **FAST) as http:
                hook = await subscribe(http, admin, url, ["ledger.entry_created"])
                await entries_for_one_customer(http, admin, 3)
            await owner.fan_out()
            app.delay = lease * 2.5  # longer than the lease
            round_ = asyncio.create_task(owner.run_once())
            await arrived(app, 1)
            app.delay = 0
            left: list[float] = []
            while not round_.done():
                await other.run_once()  # the other dispatcher keeps trying meanwhile
                left.append(await url_lease_left(owner, url))
                await asyncio.sleep(0.05)
            assert await round_ == 3
            # Sized to the work in hand: never more than one lease ahead, and renewed.
            assert max(left) <= lease + 0.2
            assert min(left) > -0.2
            assert app.max_in_flight == 1
            counts = Counter(r["event"]["id"] for r in app.accepted)
            assert len(counts) == 3
            assert set(counts.values()) == {1}
            assert len(app.attempts) == 3
            log = await deliveries_of(database_url, admin, hook, FAST)
            assert sorted((d["attempt"], d["delivered"]) for d in log) == [(1, True)] * 3
        finally:
            for dispatcher, engine in ((owner, owner_engine), (other, other_engine)):
                await dispatcher.aclose()
                await engine.dispose()

    async def test_a_write_back_after_losing_the_lease_leaves_the_new_owners_record(
        self, database_url: str, receiver: tuple[Receiver, str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        app, url = receiver
        lease = 1.0
        admin = await live_admin_headers(database_url)
        # Its POST times out after 2 s, longer than its lease, and it cannot renew.
        cut_off, cut_off_engine = dispatcher_for(
            database_url, webhook_lease_seconds=lease, webhook_timeout_seconds=2.0
        )
        new_owner, new_owner_engine = dispatcher_for(database_url, webhook_lease_seconds=lease)

        async def unreachable(held: object) -> None:
            raise OSError("the database is unreachable from this replica")

        monkeypatch.setattr(cut_off, "_renew", unreachable)
        try:
            async with live_client(database_url, **FAST) as http:
                hook = await subscribe(http, admin, url, ["ledger.entry_created"])
                await entries_for_one_customer(http, admin, 1)
            await cut_off.fan_out()
            app.delay = 3.0
            round_ = asyncio.create_task(cut_off.run_once())
            await arrived(app, 1)
            app.delay = 0
            await deliver_until(new_owner, lambda: app.accepted, seconds=lease + 10)
            assert not round_.done()  # the first owner's POST is still open
            assert await round_ == 1  # ...then times out, and its write-back finds no job
            await settled(app)
            assert await jobs_of(new_owner, hook) == [("delivered", 1, None)]
            log = await deliveries_of(database_url, admin, hook, FAST)
            assert [(d["attempt"], d["delivered"], d["status_code"]) for d in log] == [
                (1, True, 200)
            ]
        finally:
            for dispatcher, engine in ((cut_off, cut_off_engine), (new_owner, new_owner_engine)):
                await dispatcher.aclose()
                await engine.dispose()


async def first_event_id(hook: str, dispatcher: Dispatcher) -> str:
    """The event waiting for this subscription (read from the job table)."""
    from sqlalchemy import select

    from supportdesk.models import WebhookJob

    async with dispatcher.sessionmaker() as session:
        job = (
            await session.scalars(
                select(WebhookJob).where(WebhookJob.subscription_id == hook).order_by(WebhookJob.id)
            )
        ).first()
        assert job is not None
        return job.event_id


class TestShutdown:
    async def test_stop_lets_the_round_under_way_finish(
        self, database_url: str, receiver: tuple[Receiver, str]
    ) -> None:
        dispatcher, engine = dispatcher_for(database_url)
        try:
            running = asyncio.create_task(dispatcher.run_forever())
            await asyncio.sleep(0.05)
            dispatcher.stop()
            await asyncio.wait_for(running, 10)
            assert running.done()
            assert not running.cancelled()
        finally:
            await dispatcher.aclose()
            await engine.dispose()


class TestInsideTheService:
    async def test_the_service_delivers_by_itself(
        self, database_url: str, receiver: tuple[Receiver, str]
    ) -> None:
        # No dispatcher started by the test: the app's own, started with its lifespan.
        app, url = receiver
        admin = await live_admin_headers(database_url)
        async with live_client(database_url, webhook_dispatcher_enabled=True, **FAST) as http:
            await subscribe(http, admin, url, ["ticket.created"])
            customer = (
                await http.post("/api/v1/customers", json={"name": "Selbst GmbH"}, headers=admin)
            ).json()
            created = await http.post(
                "/api/v1/tickets",
                json={
                    "customer_id": customer["id"],
                    "category": "how_to",
                    "severity": "normal",
                    "subject": "Delivered by the service",
                    "description": "No dispatcher was started by hand.",
                },
                headers=admin,
            )
            assert created.status_code == 201, created.text
            async with asyncio.timeout(20):
                while not any(  # noqa: ASYNC110 - the receiver offers only its list
                    a["event"]["data"]["id"] == created.json()["id"] for a in app.accepted
                ):
                    await asyncio.sleep(0.05)
        (arrived,) = [a for a in app.accepted if a["event"]["data"]["id"] == created.json()["id"]]
        assert arrived["event"]["type"] == "ticket.created"
        assert verify_signature(
            SECRET, arrived["headers"][SIGNATURE_HEADER.lower()], arrived["body"]
        )


class Rebinding:
    """``socket.getaddrinfo`` with a rebinding DNS server for one name: its answers in
    turn, the last one from then on (``None``: the name does not resolve); every other
    name as usual."""

    def __init__(self, name: str, *answers: str | None) -> None:
        self.name = name
        self.answers = answers
        self.calls = 0
        self.real = socket.getaddrinfo

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != self.name:
            return self.real(host, port, *args, **kwargs)
        address = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        if address is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        if ":" in address:
            return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, int(port), 0, 0))]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port)))]


class Recorder(httpcore.AsyncNetworkBackend):
    """A network backend that dials nothing: it records where it was asked to connect,
    the TLS server name and the bytes sent, and answers 200."""

    def __init__(self) -> None:
        self.connects: list[tuple[str, int]] = []
        self.server_names: list[str | None] = []
        self.sent = b""

    async def connect_tcp(self, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        self.connects.append((host, port))
        return RecordingStream(self)

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("no unix sockets")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class RecordingStream(httpcore.AsyncMockStream):
    def __init__(self, recorder: Recorder) -> None:
        super().__init__([b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"])
        self.recorder = recorder

    async def write(self, buffer: bytes, **kwargs: Any) -> None:
        self.recorder.sent += buffer

    async def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, **kwargs: Any
    ) -> Any:
        self.recorder.server_names.append(server_hostname)
        return self


NAME = "hooks.example.test"
STRICT = {**FAST, "webhooks_allow_private": False}


async def contract_changed(http: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = (await http.post("/api/v1/customers", json={"name": "D"}, headers=admin)).json()
    created = await http.post(
        "/api/v1/contracts",
        json={"customer_id": customer["id"], "kind": "maintenance", "starts_on": "2020-01-01"},
        headers=admin,
    )
    assert created.status_code == 201, created.text


async def deliveries_of(
    database_url: str, admin: dict[str, str], hook: str, settings: dict[str, Any]
) -> list[dict[str, Any]]:
    async with live_client(database_url, **settings) as http:
        response = await http.get(f"/api/v1/webhooks/{hook}/deliveries", headers=admin)
        items = list(response.json()["items"])
        await http.delete(f"/api/v1/webhooks/{hook}", headers=admin)
        return items


@pytest.mark.security
class TestDnsRebinding:
    """Issue 14 item 5: delivery connects to the address it checked, not to what the
    name resolves to a moment later."""

    async def test_delivery_connects_to_the_checked_address_with_the_url_host(
        self, database_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Public at subscribing and at the delivery's check, loopback for anyone asking
        # after that: only the checked address may be dialled.
        rebinding = Rebinding(NAME, "93.184.216.34", "93.184.216.34", "127.0.0.1")
        monkeypatch.setattr(socket, "getaddrinfo", rebinding)
        recorder = Recorder()
        settings = Settings(database_url=database_url, **STRICT)  # type: ignore[arg-type]
        engine = build_engine(settings)
        dispatcher = Dispatcher(
            build_sessionmaker(engine),
            settings,
            client=delivery_client(settings.webhook_timeout_seconds, recorder),
        )
        admin = await live_admin_headers(database_url)
        try:
            async with live_client(database_url, **STRICT) as http:
                hook = await subscribe(
                    http, admin, f"https://{NAME}:8443/hook", ["contract.changed"]
                )
                assert rebinding.calls == 1
                await contract_changed(http, admin)
            await deliver_until(dispatcher, lambda: recorder.connects)
        finally:
            await dispatcher.aclose()
            await engine.dispose()
        assert recorder.connects == [("93.184.216.34", 8443)]
        assert rebinding.calls == 2  # subscribing, then the delivery's own check; no more
        assert recorder.server_names == [NAME]  # TLS SNI and certificate: the URL's host
        assert f"Host: {NAME}:8443\r\n".encode() in recorder.sent
        log = await deliveries_of(database_url, admin, hook, STRICT)
        assert [(d["delivered"], d["status_code"]) for d in log] == [(True, 200)]

    async def test_a_name_rebound_to_loopback_after_subscribing_is_not_delivered(
        self, database_url: str, receiver: tuple[Receiver, str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        app, url = receiver
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        monkeypatch.setattr(socket, "getaddrinfo", Rebinding(NAME, "93.184.216.34", "127.0.0.1"))
        settings = Settings(database_url=database_url, **STRICT)  # type: ignore[arg-type]
        engine = build_engine(settings)
        dispatcher = Dispatcher(build_sessionmaker(engine), settings)
        admin = await live_admin_headers(database_url)
        try:
            async with live_client(database_url, **STRICT) as http:
                hook = await subscribe(
                    http, admin, f"http://{NAME}:{port}/hook", ["contract.changed"]
                )
                await contract_changed(http, admin)
            await dispatcher.fan_out()
            await dispatcher.run_once()
        finally:
            await dispatcher.aclose()
            await engine.dispose()
        assert app.attempts == []
        log = await deliveries_of(database_url, admin, hook, STRICT)
        assert [(d["delivered"], d["status_code"]) for d in log] == [(False, None)]
        assert "127.0.0.1 (loopback)" in log[0]["error"]

    async def test_the_connection_is_made_to_the_pinned_address_not_a_new_lookup(
        self, database_url: str, receiver: tuple[Receiver, str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # With private addresses allowed (as in development), the receiver on 127.0.0.1
        # is the checked address. Any later lookup of the name fails: the delivery
        # arrives only because the HTTP client never looks the name up again.
        app, url = receiver
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        rebinding = Rebinding(NAME, "127.0.0.1", None)
        monkeypatch.setattr(socket, "getaddrinfo", rebinding)
        dispatcher, engine = dispatcher_for(database_url)
        admin = await live_admin_headers(database_url)
        try:
            async with live_client(database_url, **FAST) as http:
                hook = await subscribe(
                    http, admin, f"http://{NAME}:{port}/hook", ["contract.changed"]
                )
                assert rebinding.calls == 0  # allowed private: no lookup at subscribing
                await contract_changed(http, admin)
            await deliver_until(dispatcher, lambda: app.accepted)
        finally:
            await dispatcher.aclose()
            await engine.dispose()
        assert rebinding.calls == 1
        (arrived,) = app.accepted
        assert arrived["headers"]["host"] == f"{NAME}:{port}"
        log = await deliveries_of(database_url, admin, hook, FAST)
        assert [d["delivered"] for d in log] == [True]


class TestFanOutInTurn:
    async def test_two_fan_outs_at_once_keep_a_resources_order(
        self, database_url: str, receiver: tuple[Receiver, str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """One dispatcher is held between reading its events and writing their jobs while
        a later event of the same resource arrives and another dispatcher fans out: the
        later event's job must still come after the earlier one's (jobs go out in id
        order per resource)."""
        _, url = receiver
        admin = await live_admin_headers(database_url)
        async with live_client(database_url, **FAST) as http:
            hook = await http.post(
                "/api/v1/webhooks",
                json={"url": url, "events": ["ticket.status_changed"], "secret": SECRET},
                headers=admin,
            )
            assert hook.status_code == 201, hook.text
        first, engine_a = dispatcher_for(database_url)
        second, engine_b = dispatcher_for(database_url)
        resource = new_id("tkt")
        writes = build_sessionmaker(engine_b)

        async def happened() -> str:
            async with writes.begin() as session:
                event = Event(
                    id=new_id("evt"),
                    type="ticket.status_changed",
                    occurred_at=utcnow(),
                    resource_type="ticket",
                    resource_id=resource,
                    customer_id=None,
                    data={},
                    fanned_out=False,
                    notified=True,
                )
                session.add(event)
            return event.id

        first_has_read = asyncio.Event()
        second_done = asyncio.Event()
        read = WebhookRepository.events_to_fan_out

        async def held(self: WebhookRepository, limit: int) -> list[Event]:
            events = await read(self, limit)
            if not first_has_read.is_set():
                first_has_read.set()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(second_done.wait(), 1.0)
            return events

        monkeypatch.setattr(WebhookRepository, "events_to_fan_out", held)
        try:
            earlier = await happened()

            async def meanwhile() -> str:
                await first_has_read.wait()
                later = await happened()
                await second.fan_out()
                second_done.set()
                return later

            _, later = await asyncio.gather(first.fan_out(), meanwhile())
            async with writes() as session:
                jobs = (
                    await session.scalars(
                        select(WebhookJob)
                        .where(WebhookJob.resource_key == f"ticket:{resource}")
                        .order_by(WebhookJob.id)
                    )
                ).all()
            assert [job.event_id for job in jobs] == [earlier, later]
        finally:
            for dispatcher, engine in ((first, engine_a), (second, engine_b)):
                await dispatcher.aclose()
                await engine.dispose()
