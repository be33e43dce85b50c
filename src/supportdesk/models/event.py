from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from supportdesk.db import Base, UTCDateTime


class Event(Base):
    """The transactional outbox: written in the same transaction as the change it reports.

    Webhook delivery reads from here; an event is never lost because the service
    restarted between the change and its delivery.
    """

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_resource", "resource_type", "resource_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    type: Mapped[str] = mapped_column(String(50), index=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    resource_type: Mapped[str] = mapped_column(String(30))
    resource_id: Mapped[str] = mapped_column(String(80))
    customer_id: Mapped[str | None] = mapped_column(String(40), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Set once the dispatcher has made the event's webhook jobs.
    fanned_out: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    # Set once the mailer has made the event's notifications (if it gives any).
    notified: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
