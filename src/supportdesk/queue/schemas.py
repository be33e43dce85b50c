"""The queue answers with tickets (``TicketRead``) in working order."""

from __future__ import annotations

from supportdesk.tickets.schemas import TicketRead

__all__ = ["TicketRead"]
