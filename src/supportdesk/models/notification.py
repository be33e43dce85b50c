from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from supportdesk.db import Base, UTCDateTime

NOTIFICATION_STATUSES = "('queued', 'sent', 'skipped_opt_out', 'skipped_no_recipient', 'failed')"


class Notification(Base):
    """One e-mail an outbox event gives the customer, and what became of it.

    The unique key (event, kind, recipient) is what makes "never twice" hold: however
    often and by however many mailers an event is read, it gives one row, and a row is
    sent until it is ``sent`` (or given up).
    """

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("event_id", "kind", "recipient"),
        CheckConstraint(f"status IN {NOTIFICATION_STATUSES}", name="status_known"),
        Index("ix_notifications_due", "status", "next_attempt_at"),
        Index("ix_notifications_ticket_id_id", "ticket_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(30))
    customer_id: Mapped[str] = mapped_column(String(40), index=True)
    ticket_id: Mapped[str | None] = mapped_column(String(40))
    recipient: Mapped[str] = mapped_column(String(320))
    language: Mapped[str] = mapped_column(String(2))
    # What the templates are rendered with, taken when the event was read.
    context: Mapped[dict[str, Any]] = mapped_column(JSON)
    subject: Mapped[str | None] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(30))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The mailer that claimed the row until ``locked_until``: only it writes back.
    owner: Mapped[str | None] = mapped_column(String(32))
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
