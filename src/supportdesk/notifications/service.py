from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from supportdesk.config import BusinessRules
from supportdesk.domain.notifications import (
    AUDIENCE,
    Audience,
    Language,
    NotificationKind,
    kind_for_event,
)
from supportdesk.domain.pricing import price_package
from supportdesk.errors import NotFound
from supportdesk.kit.clock import utcnow
from supportdesk.kit.ids import new_id
from supportdesk.kit.pagination import PageParams
from supportdesk.models import Customer, Event, Notification, Ticket
from supportdesk.notifications.repository import NotificationRepository
from supportdesk.notifications.schemas import NotificationStatus
from supportdesk.tickets.repository import TicketRepository


def money_text(amount: Decimal | str, language: Language) -> str:
    """2 decimals, as the reader writes them: 1.234,50 in German, 1,234.50 in English."""
    text = f"{Decimal(amount):,.2f}"
    if language is Language.DE:
        text = text.replace(",", "_").replace(".", ",").replace("_", ".")
    return text


def date_text(value: str, language: Language) -> str:
    day = date.fromisoformat(value)
    return day.strftime("%d.%m.%Y") if language is Language.DE else day.isoformat()


class NotificationService:
    def __init__(
        self, session: AsyncSession, rules: BusinessRules, *, scope: str | None = None
    ) -> None:
        self.rules = rules
        self.notifications = NotificationRepository(session)
        self.tickets = TicketRepository(session, scope)

    async def list_for_ticket(
        self, ticket_id: str, params: PageParams
    ) -> tuple[list[Notification], str | None]:
        """What the customer was told about a ticket, oldest first."""
        if await self.tickets.get_by_id(ticket_id) is None:
            raise NotFound.of("ticket", ticket_id)
        return await self.notifications.list_for_ticket(ticket_id, params)

    async def plan_event(self, event: Event) -> Notification | None:
        """The message an outbox event gives, recorded once: queued, or skipped because
        the customer opted out of the kind or nobody has an address. None when the event
        tells the customer nothing."""
        kind = kind_for_event(event.type, event.data)
        if kind is None or event.customer_id is None:
            return None
        customer = await self.notifications.get_customer(event.customer_id)
        if customer is None:
            return None
        ticket: Ticket | None = None
        if AUDIENCE[kind] is Audience.TICKET_CONTACT:
            ticket_id = event.data.get("ticket_id") or event.resource_id
            ticket = await self.notifications.get_ticket(str(ticket_id))
            if ticket is None:
                return None
            contact_id = ticket.contact_id
        else:
            contact_id = customer.billing_contact_id
        contact = (
            await self.notifications.get_contact(customer.id, contact_id) if contact_id else None
        )
        recipient = (contact.email or "") if contact is not None else ""
        if kind.value in (customer.notification_opt_outs or []):
            status = NotificationStatus.SKIPPED_OPT_OUT
        elif not recipient:
            status = NotificationStatus.SKIPPED_NO_RECIPIENT
        else:
            status = NotificationStatus.QUEUED
        language = Language(customer.language)
        context = {
            "customer_name": customer.name,
            "contact_name": contact.name if contact is not None else None,
            **self._context(kind, event, customer, ticket, language),
        }
        now = utcnow()
        notification = Notification(
            id=new_id("ntf"),
            event_id=event.id,
            kind=kind.value,
            customer_id=customer.id,
            ticket_id=ticket.id if ticket is not None else None,
            recipient=recipient,
            language=language.value,
            context=context,
            status=status.value,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        return notification if await self.notifications.add_once(notification) else None

    def _context(
        self,
        kind: NotificationKind,
        event: Event,
        customer: Customer,
        ticket: Ticket | None,
        language: Language,
    ) -> dict[str, Any]:
        data = event.data
        if ticket is not None:
            shown: dict[str, Any] = {"id": ticket.id, "subject": ticket.subject}
            if kind is NotificationKind.TICKET_RECEIVED:
                # The blockers as the ticket arrived, from the event: what the mail is about.
                shown |= {"blockers": list(data.get("blockers", [])), "held": data.get("held")}
            context: dict[str, Any] = {"ticket": shown}
            if kind is NotificationKind.SUPPORTER_QUESTION:
                context["comment"] = {"id": data.get("id"), "body": data.get("body", "")}
            return context
        prices = self.rules.price_list
        if kind is NotificationKind.LOW_BALANCE:
            sizes = [tier.min_units for tier in prices.tiers] or [1]
            packages = []
            for units in sizes:
                unit_price, amount = price_package(units, prices)
                packages.append(
                    {
                        "units": units,
                        "unit_price": money_text(unit_price, language),
                        "amount": money_text(amount, language),
                    }
                )
            return {
                "balance": int(data.get("balance", customer.unit_balance)),
                "level": data.get("level"),
                "unit_minutes": int(self.rules.billing.unit_length.total_seconds() // 60),
                "currency": prices.currency,
                "list_price": money_text(prices.list_price, language),
                "packages": packages,
            }
        # A statement: its totals, and where to find it again to attach the PDF.
        due = data.get("amount_due")
        return {
            "statement": {
                "id": data.get("id"),
                "number": data.get("number"),
                "customer_id": customer.id,
                "from": data["from"],
                "to": data["to"],
            },
            "period_from": date_text(data["from"], language),
            "period_to": date_text(data["to"], language),
            "opening_balance": data.get("opening_balance"),
            "closing_balance": data.get("closing_balance"),
            "amount_due": (
                {"amount": money_text(due["amount"], language), "currency": due["currency"]}
                if due
                else None
            ),
        }
