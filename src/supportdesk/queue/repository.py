"""The queue's queries live with the tickets' (``TicketRepository.queue_page`` and
``next_in_queue``): the queue is a view over tickets, ordered by the customer's standing."""

from __future__ import annotations

from supportdesk.tickets.repository import QueueKey, TicketRepository

__all__ = ["QueueKey", "TicketRepository"]
