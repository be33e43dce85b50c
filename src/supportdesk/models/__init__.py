"""SQLAlchemy models, one file per table; importing this package registers them all."""

from supportdesk.models.api_key import ApiKey
from supportdesk.models.audit import AuditEntry
from supportdesk.models.contact import Contact
from supportdesk.models.contract import Contract
from supportdesk.models.customer import Customer
from supportdesk.models.event import Event
from supportdesk.models.idempotency_record import IdempotencyRecord
from supportdesk.models.ledger_entry import LedgerEntry
from supportdesk.models.notification import Notification
from supportdesk.models.product import Product
from supportdesk.models.rate_limit import RateLimitWindow
from supportdesk.models.remote_session import JoinAttempts, RemoteSession, SessionLog
from supportdesk.models.statement import Statement, StatementCounter, StatementLine
from supportdesk.models.ticket import Attachment, Comment, Escalation, Ticket, TicketPause
from supportdesk.models.webhook import UrlLease, WebhookDelivery, WebhookJob, WebhookSubscription

__all__ = [
    "ApiKey",
    "Attachment",
    "AuditEntry",
    "Comment",
    "Contact",
    "Contract",
    "Customer",
    "Escalation",
    "Event",
    "IdempotencyRecord",
    "JoinAttempts",
    "LedgerEntry",
    "Notification",
    "Product",
    "RateLimitWindow",
    "RemoteSession",
    "SessionLog",
    "Statement",
    "StatementCounter",
    "StatementLine",
    "Ticket",
    "TicketPause",
    "UrlLease",
    "WebhookDelivery",
    "WebhookJob",
    "WebhookSubscription",
]
