"""The queue's queries live with the tickets' (``TicketReadRepository.read_queue_page`` and
``read_queue_head``): the queue is a view over tickets, ordered by the customer's
standing."""

from __future__ import annotations

from supportdesk.tickets.repository import QueueKey, TicketRepository

__all__ = ["QueueKey", "TicketRepository"]
