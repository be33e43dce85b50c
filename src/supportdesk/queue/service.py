from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from supportdesk.config import BusinessRules
from supportdesk.errors import InvalidInput
from supportdesk.kit.auth import Principal
from supportdesk.kit.pagination import PageParams, encode_cursor
from supportdesk.models import Ticket
from supportdesk.queue.repository import QueueKey, TicketRepository
from supportdesk.tickets.service import TicketService, TicketView

# A claim passes over at most this many tickets that turned out to be held.
MAX_HELD_SKIPS = 25


def _decode_key(after: str) -> QueueKey:
    try:
        rank, severity, received_at, ticket_id = json.loads(after)
        key = (int(rank), int(severity), datetime.fromisoformat(received_at), str(ticket_id))
    except (ValueError, TypeError) as exc:
        raise InvalidInput(
            "The cursor is not one this API issued.", loc=["query", "cursor"]
        ) from exc
    if key[2].tzinfo is None:
        raise InvalidInput("The cursor is not one this API issued.", loc=["query", "cursor"])
    return key


def _encode_key(t: Ticket) -> str:
    key = [t.queue_group, t.severity_rank, t.received_at.isoformat(), t.id]
    return encode_cursor(json.dumps(key))


class QueueService:
    """Who is served next: open tickets by group (the standing now), severity, arrival, id."""

    def __init__(
        self, session: AsyncSession, rules: BusinessRules, principal: Principal | None = None
    ) -> None:
        self.rules = rules
        self.tickets = TicketRepository(session)
        self.ticket_service = TicketService(session, rules, principal=principal)

    async def list_queue(self, params: PageParams) -> tuple[list[TicketView], str | None]:
        after = _decode_key(params.after) if params.after else None
        rows = await self.tickets.queue_page(params.limit + 1, after)
        more = len(rows) > params.limit
        rows = rows[: params.limit]
        next_cursor = _encode_key(rows[-1]) if more and rows else None
        return await self.ticket_service.views(rows), next_cursor

    async def claim_next(self) -> TicketView | None:
        """Take the first ticket of the queue; two claimers never get the same one."""
        passed_over: list[str] = []
        for _ in range(MAX_HELD_SKIPS):
            ticket = await self.tickets.next_in_queue(skip=passed_over)
            if ticket is None:
                return None
            taken = await self.ticket_service.take_from_queue(ticket)
            if taken is not None:
                return taken
            passed_over.append(ticket.id)
        return None
