"""SQLAlchemy models, one file per table; importing this package registers them all."""

from supportdesk.models.api_key import ApiKey
from supportdesk.models.contact import Contact
from supportdesk.models.customer import Customer
from supportdesk.models.event import Event
from supportdesk.models.idempotency_record import IdempotencyRecord
from supportdesk.models.ledger_entry import LedgerEntry
from supportdesk.models.product import Product

__all__ = [
    "ApiKey",
    "Contact",
    "Customer",
    "Event",
    "IdempotencyRecord",
    "LedgerEntry",
    "Product",
]
