from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from supportdesk.config import BusinessRules
from supportdesk.db import ReadConnect
from supportdesk.errors import InvalidInput
from supportdesk.kit.auth import Principal
from supportdesk.kit.pagination import PageParams, encode_cursor
from supportdesk.queue.repository import QueueKey, TicketRepository
from supportdesk.tickets.repository import TicketRecord
from supportdesk.tickets.service import TicketReader, TicketService
from supportdesk.tickets.views import Derived

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


def _encode_key(key: QueueKey) -> str:
    group_rank, severity_rank, received_at, ticket_id = key
    stamp = received_at.isoformat()
    return encode_cursor(json.dumps([group_rank, severity_rank, stamp, ticket_id]))


class QueueReader:
    """The queue as the support team reads it, on bare connections (a hot read)."""

    def __init__(
        self, connect: ReadConnect, rules: BusinessRules, principal: Principal | None
    ) -> None:
        self.tickets = TicketReader(connect, rules, principal)

    async def list_queue(
        self, params: PageParams
    ) -> tuple[list[tuple[TicketRecord, Derived]], str | None]:
        """Open tickets in working order: group (the standing now), severity, arrival, id."""
        after = _decode_key(params.after) if params.after else None
        views, last = await self.tickets.queue_page(params.limit, after)
        return views, _encode_key(last) if last is not None else None


class QueueService:
    """Who is served next: open tickets by group (the standing now), severity, arrival, id."""

    def __init__(
        self, session: AsyncSession, rules: BusinessRules, principal: Principal | None = None
    ) -> None:
        self.session = session
        self.rules = rules
        self.principal = principal
        self.tickets = TicketRepository(session)

    async def claim_next(self) -> tuple[TicketRecord, Derived] | None:
        """Take the first ticket of the queue; two claimers never get the same one."""
        service = TicketService(self.session, self.rules, principal=self.principal)
        return await service.claim_next(MAX_HELD_SKIPS)
