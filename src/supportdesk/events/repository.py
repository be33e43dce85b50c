from __future__ import annotations

from sqlalchemy import select

from supportdesk.kit.repository import Repository
from supportdesk.models import Event


class EventRepository(Repository):
    def add_event(self, event: Event) -> None:
        # No flush of its own: the event goes out with the change it reports.
        self.session.add(event)

    async def list_for_resource(self, resource_type: str, resource_id: str) -> list[Event]:
        stmt = (
            select(Event)
            .where(Event.resource_type == resource_type, Event.resource_id == resource_id)
            .order_by(Event.id)
        )
        return list((await self.session.scalars(stmt)).all())

    async def list_of_type(self, event_type: str, *, customer_id: str | None = None) -> list[Event]:
        stmt = select(Event).where(Event.type == event_type)
        if customer_id is not None:
            stmt = stmt.where(Event.customer_id == customer_id)
        return list((await self.session.scalars(stmt.order_by(Event.id))).all())
