from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from supportdesk.events.repository import EventRepository
from supportdesk.kit.clock import utcnow
from supportdesk.kit.ids import new_id
from supportdesk.kit.repository import table_of
from supportdesk.models import Event

EVENTS = table_of(Event)


class EventRecorder:
    """Writes events to the outbox, inside the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.events = EventRepository(session)

    def record(
        self,
        event_type: str,
        *,
        resource_type: str,
        resource_id: str,
        data: dict[str, Any],
        customer_id: str | None = None,
    ) -> Event:
        event = Event(
            id=new_id("evt"),
            type=event_type,
            occurred_at=utcnow(),
            resource_type=resource_type,
            resource_id=resource_id,
            customer_id=customer_id,
            data=data,
        )
        self.events.add_event(event)
        return event


def event_row(
    event_type: str,
    *,
    resource_type: str,
    resource_id: str,
    customer_id: str | None,
    data: dict[str, Any],
) -> dict[str, Any]:
    """An outbox row as ``EventRecorder`` writes it, for a Core insert."""
    return {
        "id": new_id("evt"),
        "type": event_type,
        "occurred_at": utcnow(),
        "resource_type": resource_type,
        "resource_id": resource_id,
        "customer_id": customer_id,
        "data": data,
        "fanned_out": False,
        "notified": False,
    }
