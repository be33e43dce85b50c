from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from supportdesk.kit.pagination import PageParams, fetch_page
from supportdesk.kit.repository import Repository
from supportdesk.models import Contact, Customer, Event, Notification, Ticket


class NotificationRepository(Repository):
    async def list_for_ticket(
        self, ticket_id: str, params: PageParams
    ) -> tuple[list[Notification], str | None]:
        stmt = select(Notification).where(Notification.ticket_id == ticket_id)
        return await fetch_page(self.session, stmt, Notification.id, params)

    # The mailer's queries ---------------------------------------------------------------

    async def events_to_notify(self, limit: int) -> list[Event]:
        stmt = select(Event).where(Event.notified.is_(False)).order_by(Event.id).limit(limit)
        if self.is_postgres:
            stmt = stmt.with_for_update(skip_locked=True)
        return list((await self.session.scalars(stmt)).all())

    async def add_once(self, notification: Notification) -> bool:
        """Insert unless (event, kind, recipient) is there already; False then."""
        try:
            async with self.session.begin_nested():
                self.session.add(notification)
                await self.session.flush()
        except IntegrityError:
            return False
        return True

    async def due(self, now: datetime, limit: int) -> list[Notification]:
        stmt = (
            select(Notification)
            .where(
                Notification.status == "queued",
                Notification.next_attempt_at <= now,
                (Notification.locked_until.is_(None)) | (Notification.locked_until < now),
            )
            .order_by(Notification.next_attempt_at, Notification.id)
            .limit(limit)
        )
        if self.is_postgres:
            stmt = stmt.with_for_update(skip_locked=True)
        return list((await self.session.scalars(stmt)).all())

    async def renew_claims(self, owner: str, ids: Collection[str], until: datetime) -> set[str]:
        """Extend the claims ``owner`` still holds among ``ids``; returns those."""
        if not ids:
            return set()
        return set(
            (
                await self.session.scalars(
                    update(Notification)
                    .where(
                        Notification.id.in_(sorted(ids)),
                        Notification.owner == owner,
                        Notification.status == "queued",
                    )
                    .values(locked_until=until)
                    .returning(Notification.id)
                    .execution_options(synchronize_session=False)
                )
            ).all()
        )

    async def finish_send(
        self, notification_id: str, owner: str, values: Mapping[str, Any]
    ) -> bool:
        """Write a send's outcome, if ``owner`` still holds the claim: False when another
        mailer took it over (or it is no longer queued), and nothing is written."""
        result = await self.session.execute(
            update(Notification)
            .where(
                Notification.id == notification_id,
                Notification.owner == owner,
                Notification.status == "queued",
            )
            .values(owner=None, locked_until=None, **values)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0) == 1

    async def get_by_id(self, notification_id: str) -> Notification | None:
        return await self.session.get(Notification, notification_id, populate_existing=True)

    async def get_customer(self, customer_id: str) -> Customer | None:
        return await self.session.get(Customer, customer_id)

    async def get_contact(self, customer_id: str, contact_id: str) -> Contact | None:
        contact = await self.session.get(Contact, contact_id)
        return contact if contact is not None and contact.customer_id == customer_id else None

    async def get_ticket(self, ticket_id: str) -> Ticket | None:
        return await self.session.get(Ticket, ticket_id)
