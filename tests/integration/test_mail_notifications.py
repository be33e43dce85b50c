"""E-mail notifications sent to a real SMTP server on 127.0.0.1 (aiosmtpd), by the real
mailer reading the outbox."""

from __future__ import annotations

import asyncio
import email
import io
import socket
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import Envelope, Session
from pypdf import PdfReader
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import live_admin_headers, live_client
from supportdesk.config import Settings, build_rules
from supportdesk.db import build_engine, build_sessionmaker
from supportdesk.notifications.mailer import Mailer


class Inbox:
    """What the SMTP server accepted, parsed."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []
        self.delay = 0.0  # a slow server: seconds before a message is accepted

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        await asyncio.sleep(self.delay)
        content = envelope.original_content or b""
        parsed = email.message_from_bytes(content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append((list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for rcpts, m in self.messages if address in rcpts]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SmtpServer:
    def __init__(self, port: int) -> None:
        self.port = port
        self.inbox = Inbox()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer(free_port())
    server.start()
    yield server
    server.stop()


def mail_settings(port: int) -> dict[str, Any]:
    return {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_security": "none",
        "smtp_timeout_seconds": 5,
        "mail_from": "Support <support@desk.example>",
        "mail_poll_seconds": 0.01,
        "mail_retry_base_seconds": 0.01,
        "mail_retry_max_seconds": 0.05,
    }


def mailer_for(database_url: str, port: int, **overrides: Any) -> tuple[Mailer, AsyncEngine]:
    settings = Settings(database_url=database_url, **{**mail_settings(port), **overrides})
    engine = build_engine(settings)
    return Mailer(build_sessionmaker(engine), settings, build_rules(settings)), engine


async def send_until(mailer: Mailer | None, done: Any, seconds: float = 30) -> None:
    async with asyncio.timeout(seconds):
        while not done():
            if mailer is not None:
                await mailer.run_once()
            await asyncio.sleep(0.02)


class Desk:
    """A customer with a ticket contact and a billing contact, through the API."""

    def __init__(self, http: httpx.AsyncClient, admin: dict[str, str]) -> None:
        self.http, self.admin = http, admin

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.http.post(path, json=body, headers=self.admin)
        assert response.status_code in (200, 201), response.text
        return dict(response.json())

    async def customer(self, language: str | None = None) -> tuple[str, str, str, str]:
        """(customer id, ticket contact's id, its address, billing address)"""
        tag = uuid.uuid4().hex[:10]
        body: dict[str, Any] = {"name": f"Fa. Maier {tag}"}
        if language is not None:
            body["language"] = language
        customer = (await self.post("/api/v1/customers", body))["id"]
        contacts = f"/api/v1/customers/{customer}/contacts"
        horst = f"horst.{tag}@example.com"
        billing = f"buchhaltung.{tag}@example.com"
        contact = (await self.post(contacts, {"name": "Horst Maier", "email": horst}))["id"]
        payer = (await self.post(contacts, {"name": "Erika Kasse", "email": billing}))["id"]
        response = await self.http.patch(
            f"/api/v1/customers/{customer}", json={"billing_contact_id": payer}, headers=self.admin
        )
        assert response.status_code == 200, response.text
        assert response.json()["billing_contact_id"] == payer
        return customer, contact, horst, billing

    async def ticket(self, customer: str, contact: str, subject: str = "Import bricht ab") -> str:
        ticket = await self.post(
            "/api/v1/tickets",
            {
                "customer_id": customer,
                "contact_id": contact,
                "category": "bug_report",
                "severity": "normal",
                "subject": subject,
                "description": "d",
            },
        )
        return str(ticket["id"])


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())  # type: ignore[attr-defined]


def subject(message: EmailMessage) -> str:
    # The stdlib folds a long subject right after "Subject:" and keeps the space on parsing.
    return str(message["Subject"]).strip()


def kinds(messages: list[EmailMessage]) -> Counter[str]:
    return Counter(str(m["X-Supportdesk-Notification"]) for m in messages)


class TestEveryKind:
    async def test_each_kind_arrives_once_to_the_right_person_in_the_right_language(
        self, database_url: str, smtp: SmtpServer
    ) -> None:
        admin = await live_admin_headers(database_url)
        mailer, engine = mailer_for(database_url, smtp.port)
        try:
            people: dict[str, tuple[str, str, str]] = {}
            numbers: dict[str, str] = {}
            async with live_client(database_url) as http:
                desk = Desk(http, admin)
                for language in ("de", "en"):
                    customer, contact, horst, billing = await desk.customer(
                        None if language == "de" else language  # German by default
                    )
                    ledger = f"/api/v1/customers/{customer}/ledger/entries"
                    await desk.post(ledger, {"kind": "purchase", "units": 10})
                    ticket = await desk.ticket(customer, contact, subject=f"Import <{language}>")
                    comments = f"/api/v1/tickets/{ticket}/comments"
                    await desk.post(comments, {"body": "Intern: Kunde anrufen", "internal": True})
                    await desk.post(comments, {"body": "Which file did you import? <b>x</b>"})
                    transitions = f"/api/v1/tickets/{ticket}/transitions"
                    await desk.post(transitions, {"to": "in_progress"})
                    await desk.post(transitions, {"to": "resolved"})
                    await desk.post(ledger, {"kind": "debit", "units": 8})
                    preview = await http.get(
                        f"/api/v1/customers/{customer}/statement",
                        params={"from": "2026-11-01", "to": "2026-11-30"},
                        headers=admin,
                    )
                    assert preview.status_code == 200  # a preview sends nothing
                    issued = await desk.post(
                        f"/api/v1/customers/{customer}/statements",
                        {"from": "2026-11-01", "to": "2026-11-30"},
                    )
                    # A debit after issuing: the PDF mailed is the statement as issued.
                    await desk.post(ledger, {"kind": "debit", "units": 1})
                    people[language] = (horst, billing, ticket)
                    numbers[language] = str(issued["number"])

                def arrived() -> bool:
                    return all(
                        len(smtp.inbox.to(h)) >= 3 and len(smtp.inbox.to(b)) >= 2
                        for h, b, _ in people.values()
                    )

                await send_until(mailer, arrived)
                for _ in range(3):  # nothing more comes
                    await mailer.run_once()

                for language, (horst, billing, ticket) in people.items():
                    to_contact, to_billing = smtp.inbox.to(horst), smtp.inbox.to(billing)
                    assert kinds(to_contact) == {
                        "ticket_received": 1,
                        "supporter_question": 1,
                        "ticket_resolved": 1,
                    }
                    assert kinds(to_billing) == {"low_balance": 1, "statement_issued": 1}
                    for message in to_contact + to_billing:
                        assert message["From"] == "Support <support@desk.example>"
                        assert message["Content-Language"] == language
                    by_kind = {
                        str(m["X-Supportdesk-Notification"]): m for m in to_contact + to_billing
                    }
                    check_content(language, by_kind, ticket)
                    check_issued_pdf(by_kind["statement_issued"], numbers[language])

                    listed = await http.get(
                        f"/api/v1/tickets/{ticket}/notifications", headers=admin
                    )
                    assert listed.status_code == 200
                    items = listed.json()["items"]
                    assert [(n["kind"], n["status"], n["recipient"]) for n in items] == [
                        ("ticket_received", "sent", horst),
                        ("supporter_question", "sent", horst),
                        ("ticket_resolved", "sent", horst),
                    ]
                    assert all(n["language"] == language and n["attempts"] == 1 for n in items)
                    assert items[0]["subject"] == subject(by_kind["ticket_received"])
        finally:
            await engine.dispose()


def check_content(language: str, by_kind: dict[str, EmailMessage], ticket: str) -> None:
    received_text, received_html = parts(by_kind["ticket_received"])
    question_text, question_html = parts(by_kind["supporter_question"])
    resolved_text, _ = parts(by_kind["ticket_resolved"])
    low_text, low_html = parts(by_kind["low_balance"])
    statement_text, _ = parts(by_kind["statement_issued"])
    assert ticket in subject(by_kind["ticket_received"])
    # The comment and subject are the customer's words: verbatim in text, escaped in HTML.
    assert "Which file did you import? <b>x</b>" in question_text
    assert "&lt;b&gt;x&lt;/b&gt;" in question_html
    assert f"Import &lt;{language}&gt;" in received_html
    assert "Intern" not in question_text
    if language == "de":
        assert subject(by_kind["ticket_received"]).startswith("Ihre Anfrage ist eingegangen")
        assert "Ein Bildschirmfoto des Fehlers" in received_text
        assert "Die Schritte, mit denen sich der Fehler nachvollziehen lässt." in received_text
        assert "Betriebssystem" in received_html
        assert "gelöst" in resolved_text
        assert "noch 2 Einheiten" in low_text
        assert "10 Einheiten: 280,00 EUR (28,00 EUR je Einheit)" in low_text
        assert "50 Einheiten: 1.200,00 EUR" in low_text
        assert "<td>20 Einheiten</td>" in low_html
        assert "vom 01.11.2026 bis 30.11.2026" in statement_text
    else:
        assert subject(by_kind["ticket_received"]).startswith("Your request has arrived")
        assert "A screenshot of the problem" in received_text
        assert "The steps that make the problem happen." in received_text
        assert "resolved" in resolved_text
        assert "2 prepaid support units left" in low_text
        assert "10 units: 280.00 EUR (28.00 EUR per unit)" in low_text
        assert "50 units: 1,200.00 EUR" in low_text
        assert "from 2026-11-01 to 2026-11-30" in statement_text
    (attachment,) = list(by_kind["statement_issued"].iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    assert str(attachment.get_filename()).endswith("-2026-11-01-2026-11-30.pdf")
    assert attachment.get_content().startswith(b"%PDF")  # type: ignore[attr-defined]


def check_issued_pdf(message: EmailMessage, number: str) -> None:
    """The attached PDF is the frozen statement: its number, and the 8 units debited
    before issuing, not the one debited after."""
    assert number in subject(message)
    (attachment,) = list(message.iter_attachments())
    content = attachment.get_content()  # type: ignore[attr-defined]
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)
    assert number in text
    assert "debit: manual\n-8\n" in text
    assert "-1\n" not in text


class TestServerDown:
    async def test_a_mail_server_down_at_first_receives_the_message_once_it_is_back(
        self, database_url: str
    ) -> None:
        server = SmtpServer(free_port())  # not started: the mail server is down
        admin = await live_admin_headers(database_url)
        mailer, engine = mailer_for(database_url, server.port)
        try:
            async with live_client(database_url) as http:
                desk = Desk(http, admin)
                customer, contact, horst, _ = await desk.customer()
                ticket = await desk.ticket(customer, contact)
                notifications = f"/api/v1/tickets/{ticket}/notifications"

                async def attempts() -> int:
                    items = (await http.get(notifications, headers=admin)).json()["items"]
                    return int(items[0]["attempts"]) if items else 0

                async with asyncio.timeout(30):
                    while await attempts() < 3:
                        await mailer.run_once()
                        await asyncio.sleep(0.02)
                (item,) = (await http.get(notifications, headers=admin)).json()["items"]
                assert item["status"] == "queued"
                assert item["last_error"]
                assert item["sent_at"] is None

                server.start()  # the mail server comes back
                try:
                    await send_until(mailer, lambda: len(server.inbox.to(horst)) >= 1)
                    for _ in range(3):
                        await mailer.run_once()
                        await asyncio.sleep(0.06)
                    assert kinds(server.inbox.to(horst)) == {"ticket_received": 1}
                    (item,) = (await http.get(notifications, headers=admin)).json()["items"]
                    assert item["status"] == "sent"
                    assert item["attempts"] >= 4
                    assert item["last_error"] is None
                finally:
                    server.stop()
        finally:
            await engine.dispose()

    async def test_a_restarted_mailer_sends_what_the_first_could_not(
        self, database_url: str, smtp: SmtpServer
    ) -> None:
        admin = await live_admin_headers(database_url)
        down, down_engine = mailer_for(database_url, free_port())  # a port nobody serves
        async with live_client(database_url) as http:
            desk = Desk(http, admin)
            customer, contact, horst, _ = await desk.customer()
            await desk.ticket(customer, contact)
        await down.run_once()  # fails, and the service goes down
        await down_engine.dispose()
        assert smtp.inbox.to(horst) == []
        second, engine = mailer_for(database_url, smtp.port)  # a fresh process
        try:
            await send_until(second, lambda: len(smtp.inbox.to(horst)) >= 1)
            await second.run_once()
            assert kinds(smtp.inbox.to(horst)) == {"ticket_received": 1}
        finally:
            await engine.dispose()


class TestOptOut:
    async def test_opting_out_stops_that_kind_and_the_service_sends_the_rest_by_itself(
        self, database_url: str, smtp: SmtpServer
    ) -> None:
        admin = await live_admin_headers(database_url)
        # The mailer inside the service (the lifespan), as in production.
        async with live_client(database_url, **mail_settings(smtp.port)) as http:
            desk = Desk(http, admin)
            customer, contact, horst, _ = await desk.customer(language="en")
            response = await http.patch(
                f"/api/v1/customers/{customer}",
                json={"notification_opt_outs": ["ticket_received", "ticket_resolved"]},
                headers=admin,
            )
            assert response.status_code == 200, response.text
            assert response.json()["notification_opt_outs"] == [
                "ticket_received",
                "ticket_resolved",
            ]
            ticket = await desk.ticket(customer, contact)
            await desk.post(f"/api/v1/tickets/{ticket}/comments", {"body": "Which version?"})
            await send_until(None, lambda: len(smtp.inbox.to(horst)) >= 1)
            await asyncio.sleep(0.2)
            assert kinds(smtp.inbox.to(horst)) == {"supporter_question": 1}
            items = (
                await http.get(f"/api/v1/tickets/{ticket}/notifications", headers=admin)
            ).json()["items"]
            assert [(n["kind"], n["status"]) for n in items] == [
                ("ticket_received", "skipped_opt_out"),
                ("supporter_question", "sent"),
            ]


LEASE = 2.0  # SUPPORTDESK_MAIL_LEASE_SECONDS in these tests, instead of 30
POLL = 0.01  # mail_settings()
SLACK = 1.0  # a round of the mailer and the scheduling of a busy test machine


async def claims_of(mailer: Mailer, recipient: str) -> list[tuple[str, float | None]]:
    """(status, seconds its claim has left) of the recipient's notifications."""
    from sqlalchemy import select

    from supportdesk.kit.clock import utcnow
    from supportdesk.models import Notification

    async with mailer.sessionmaker() as session:
        rows = await session.scalars(
            select(Notification).where(Notification.recipient == recipient)
        )
        now = utcnow()
        return [
            (row.status, (row.locked_until - now).total_seconds() if row.locked_until else None)
            for row in rows
        ]


class TestTakeover:
    """Issue 15 item 2 for the mailer: the messages of a mailer that died are sent by
    another within the lease; a live one keeps its claims with a heartbeat."""

    async def test_a_mailer_that_died_holding_claims_is_taken_over_within_the_lease(
        self, database_url: str, smtp: SmtpServer
    ) -> None:
        admin = await live_admin_headers(database_url)
        # Its mail server is gone by the time it comes back: its late send fails.
        dead, dead_engine = mailer_for(database_url, free_port(), mail_lease_seconds=LEASE)
        survivor, engine = mailer_for(database_url, smtp.port, mail_lease_seconds=LEASE)
        try:
            async with live_client(database_url) as http:
                desk = Desk(http, admin)
                customer, contact, horst, _ = await desk.customer()
                ticket = await desk.ticket(customer, contact)
                await dead.plan()
                started = time.monotonic()
                claimed = await dead.claim()  # ...and it dies: no heartbeat, no send
                died_at = time.monotonic()
                (held,) = [message for message in claimed if message.recipient == horst]

                await send_until(survivor, lambda: smtp.inbox.to(horst), seconds=LEASE + 10)
                resumed_at = time.monotonic()
                assert resumed_at >= started + LEASE - 0.2
                assert resumed_at - died_at <= LEASE + POLL + SLACK

                # The first mailer comes back and writes back what it tried: refused.
                assert not await dead.send(held)
                items = (
                    await http.get(f"/api/v1/tickets/{ticket}/notifications", headers=admin)
                ).json()["items"]
                assert [(n["status"], n["attempts"], n["last_error"]) for n in items] == [
                    ("sent", 1, None)
                ]
                assert kinds(smtp.inbox.to(horst)) == {"ticket_received": 1}
        finally:
            await dead_engine.dispose()
            await engine.dispose()

    async def test_a_live_mailer_keeps_its_claims_through_a_send_slower_than_the_lease(
        self, database_url: str
    ) -> None:
        lease = 1.0
        server = SmtpServer(free_port())
        server.inbox.delay = lease * 2.5
        server.start()
        admin = await live_admin_headers(database_url)
        owner, owner_engine = mailer_for(database_url, server.port, mail_lease_seconds=lease)
        other, other_engine = mailer_for(database_url, server.port, mail_lease_seconds=lease)
        try:
            async with live_client(database_url) as http:
                desk = Desk(http, admin)
                customer, contact, horst, _ = await desk.customer()
                ticket = await desk.ticket(customer, contact)
            await owner.plan()
            round_ = asyncio.create_task(owner.run_once())
            left: list[float] = []
            while not round_.done():
                await other.run_once()  # the other mailer keeps trying meanwhile
                for status, seconds in await claims_of(owner, horst):
                    if status == "queued" and seconds is not None:
                        left.append(seconds)
                await asyncio.sleep(0.05)
            await round_
            # Held all along, by a lease never more than one lease ahead, and renewed.
            assert left
            assert max(left) <= lease + 0.2
            assert min(left) > -0.2
            assert kinds(server.inbox.to(horst)) == {"ticket_received": 1}
            async with live_client(database_url) as http:
                items = (
                    await http.get(f"/api/v1/tickets/{ticket}/notifications", headers=admin)
                ).json()["items"]
            assert [(n["status"], n["attempts"]) for n in items] == [("sent", 1)]
        finally:
            server.stop()
            await owner_engine.dispose()
            await other_engine.dispose()
