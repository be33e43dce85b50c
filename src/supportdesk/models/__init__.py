"""SQLAlchemy models, one file per table; importing this package registers them all."""

from supportdesk.models.api_key import ApiKey
from supportdesk.models.contact import Contact
from supportdesk.models.contract import Contract
from supportdesk.models.customer import Customer
from supportdesk.models.event import Event
from supportdesk.models.idempotency_record import IdempotencyRecord
from supportdesk.models.ledger_entry import LedgerEntry
from supportdesk.models.product import Product
from supportdesk.models.remote_session import JoinAttempts, RemoteSession, SessionLog
from supportdesk.models.ticket import Attachment, Comment, Escalation, Ticket, TicketPause

__all__ = [
    "ApiKey",
    "Attachment",
    "Comment",
    "Contact",
    "Contract",
    "Customer",
    "Escalation",
    "Event",
    "IdempotencyRecord",
    "JoinAttempts",
    "LedgerEntry",
    "Product",
    "RemoteSession",
    "SessionLog",
    "Ticket",
    "TicketPause",
]
