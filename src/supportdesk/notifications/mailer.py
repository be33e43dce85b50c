"""Sending the notifications: the outbox's second consumer, beside the webhook dispatcher.

Each round: events not yet read by the mailer become at most one notification row each
(unique per event, kind and recipient: an event read twice gives nothing new); due rows
are claimed (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the single writer on SQLite) with
a lease; the mails go out over SMTP outside any transaction; the outcome is written back.
A mail server that is down is retried with exponential backoff and jitter.

The claims name their owner (a random id per mailer) and last ``mail_lease_seconds``: a
heartbeat renews them every third of that while the batch is sent, and they are renewed
again before each further message, so a batch of slow sends never needs a longer lease.
A mailer that dies stops renewing, and another takes its messages over once the lease
runs out; the message that was in flight (accepted by the server, not yet written back)
is sent again (at least once; the Message-ID stays the same, so mail clients show it
once). Only the owner writes an outcome back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

import aiosmtplib
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from supportdesk.config import BusinessRules, Settings
from supportdesk.domain.notifications import Language, NotificationKind
from supportdesk.kit.clock import utcnow
from supportdesk.kit.heartbeat import heartbeat
from supportdesk.notifications.repository import NotificationRepository
from supportdesk.notifications.schemas import NotificationStatus
from supportdesk.notifications.service import NotificationService
from supportdesk.notifications.templates import render_message
from supportdesk.statements.render import PdfRenderer
from supportdesk.statements.service import StatementService, issued_header

logger = logging.getLogger("supportdesk.notifications")

PLAN_BATCH = 200
CLAIM_BATCH = 20


@dataclass(frozen=True)
class Claimed:
    id: str
    kind: NotificationKind
    language: Language
    recipient: str
    context: dict[str, Any]
    attempt: int
    created_at: datetime


class Mailer:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        rules: BusinessRules,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.rules = rules
        self._stopping = asyncio.Event()
        # Who holds a claim: this mailer, and no other in this process or elsewhere.
        self.owner = secrets.token_hex(16)
        self.lease = timedelta(seconds=settings.mail_lease_seconds)

    async def run_forever(self) -> None:
        """Rounds until ``stop()``; the round under way is finished, not cut off."""
        while not self._stopping.is_set():
            try:
                await self.run_once()
            except Exception:  # the next round tries again
                logger.warning("mail round failed", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._stopping.wait(), timeout=self.settings.mail_poll_seconds
                )

    def stop(self) -> None:
        self._stopping.set()

    async def run_once(self) -> int:
        """One round; returns how many sends were attempted."""
        await self.plan()
        claimed = await self.claim()
        held = {message.id for message in claimed}
        async with heartbeat(lambda: self._renew(held), self.lease, "mail"):
            for index, message in enumerate(claimed):
                if index and not await self._renew(held):
                    break  # every claim taken over: the new owner sends them
                if message.id not in held:
                    logger.warning("notification %s was taken over by another mailer", message.id)
                    continue
                await self.send(message)
                held.discard(message.id)
        return len(claimed)

    async def _renew(self, held: set[str]) -> set[str]:
        """Extend the claims still held; forget those another mailer took over."""
        async with self.sessionmaker() as session:
            kept = await NotificationRepository(session).renew_claims(
                self.owner, held, utcnow() + self.lease
            )
            await session.commit()
        held.intersection_update(kept)
        return kept

    async def plan(self) -> int:
        async with self.sessionmaker() as session:
            repo = NotificationRepository(session)
            service = NotificationService(session, self.rules)
            events = await repo.events_to_notify(PLAN_BATCH)
            for event in events:
                await service.plan_event(event)
                event.notified = True
            await session.commit()
            return len(events)

    async def claim(self) -> list[Claimed]:
        async with self.sessionmaker() as session:
            repo = NotificationRepository(session)
            now = utcnow()
            claimed = []
            for row in await repo.due(now, CLAIM_BATCH):
                row.owner, row.locked_until = self.owner, now + self.lease
                claimed.append(
                    Claimed(
                        id=row.id,
                        kind=NotificationKind(row.kind),
                        language=Language(row.language),
                        recipient=row.recipient,
                        context=row.context,
                        attempt=row.attempts + 1,
                        created_at=row.created_at,
                    )
                )
            await session.commit()
            return claimed

    async def compose(self, message: Claimed) -> EmailMessage:
        rendered = render_message(message.kind, message.language, message.context)
        mail = EmailMessage()
        mail["From"] = self.settings.mail_from
        mail["To"] = message.recipient
        mail["Subject"] = rendered.subject
        mail["Date"] = formatdate(localtime=False)
        mail["Message-ID"] = make_msgid(idstring=message.id, domain="supportdesk")
        mail["X-Supportdesk-Notification"] = message.kind.value
        mail["X-Supportdesk-Notification-Id"] = message.id
        mail.set_content(rendered.text)
        mail.add_alternative(rendered.html, subtype="html")
        if message.kind is NotificationKind.STATEMENT_ISSUED:
            which = message.context["statement"]
            pdf = await self._statement_pdf(which)
            mail.add_attachment(
                pdf,
                maintype="application",
                subtype="pdf",
                filename=f"statement-{which['customer_id']}-{which['from']}-{which['to']}.pdf",
            )
        # Last: setting the content drops the Content-* headers set before.
        mail["Content-Language"] = message.language.value
        return mail

    async def _statement_pdf(self, which: dict[str, Any]) -> bytes:
        """The PDF of the statement as it was issued. A message planned before statements
        were frozen names only the period: that one is rendered as it reads now."""
        async with self.sessionmaker() as session:
            statements = StatementService(session, self.rules)
            if which.get("id"):
                header = issued_header(await statements.get_issued(which["id"]))
            else:
                header = await statements.preview_statement(
                    which["customer_id"],
                    date.fromisoformat(which["from"]),
                    date.fromisoformat(which["to"]),
                )
            renderer = PdfRenderer(self.rules.calendar.time_zone)
            entries, sessions = statements.line_items(header)
            chunks = [chunk async for chunk in renderer.render(header, entries, sessions)]
        return b"".join(chunks)

    async def _smtp(self, mail: EmailMessage) -> None:
        s = self.settings
        assert s.smtp_host is not None
        await aiosmtplib.send(
            mail,
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            use_tls=s.smtp_security == "tls",
            start_tls=s.smtp_security == "starttls",
            timeout=s.smtp_timeout_seconds,
        )

    def _backoff(self, attempts: int) -> timedelta:
        """Exponential, with jitter so that many waiting messages do not retry in step."""
        base = self.settings.mail_retry_base_seconds * 2 ** max(0, attempts - 1)
        delay = min(base, self.settings.mail_retry_max_seconds)
        return timedelta(seconds=delay * random.uniform(0.8, 1.2))  # noqa: S311 - jitter

    async def send(self, message: Claimed) -> bool:
        subject: str | None = None
        error: str | None = None
        try:
            mail = await self.compose(message)
            subject = str(mail["Subject"])
            await self._smtp(mail)
        except Exception as exc:  # the server down, refusing, a template broken: retried
            error = f"{type(exc).__name__}: {exc}"[:1000]
        async with self.sessionmaker() as session:
            repo = NotificationRepository(session)
            now = utcnow()
            outcome: dict[str, object] = {"attempts": message.attempt, "last_error": error}
            if subject is not None:
                outcome["subject"] = subject
            if error is None:
                outcome.update(status=NotificationStatus.SENT.value, sent_at=now)
            elif now - message.created_at > timedelta(hours=self.settings.mail_give_up_hours):
                outcome.update(status=NotificationStatus.FAILED.value)
                logger.warning("gave up sending notification %s: %s", message.id, error)
            else:
                outcome.update(next_attempt_at=now + self._backoff(message.attempt))
                logger.info("notification %s not sent, retried later: %s", message.id, error)
            if not await repo.finish_send(message.id, self.owner, outcome):
                # Taken over meanwhile: the new owner's record stands.
                logger.warning(
                    "notification %s: attempt %d not recorded, the claim is no longer ours",
                    message.id,
                    message.attempt,
                )
            await session.commit()
        return error is None
