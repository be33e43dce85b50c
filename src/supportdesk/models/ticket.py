from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from supportdesk.db import Base, UTCDateTime

STATUSES = "('awaiting_customer', 'open', 'in_progress', 'escalated', 'resolved', 'closed')"
CATEGORIES = (
    "('bug_report', 'operation', 'how_to', 'database_defect', 'installation', "
    "'change_request', 'hardware_exchange')"
)


SLA_WATCH = (
    "first_response_at IS NULL AND sla_breached_notified_at IS NULL "
    "AND status NOT IN ('resolved', 'closed')"
)


class Ticket(Base):
    """A support request with everything an add-on client knows about the problem.

    ``blockers`` and ``support_group`` are derived from the customer's standing now
    whenever the ticket is read. For the queue to be one index range scan, the group's
    rank is also kept in ``queue_group`` (0 = contract), and the severity's in
    ``severity_rank`` (0 = critical): ``queue_group`` is rewritten whenever the
    customer's standing changes (a purchase, units running out, a contract changed, and
    a sweep when contracts start or end with the date).
    """

    __tablename__ = "tickets"
    __table_args__ = (
        CheckConstraint(f"status IN {STATUSES}", name="status_known"),
        CheckConstraint(f"category IN {CATEGORIES}", name="category_known"),
        CheckConstraint("severity_rank BETWEEN 0 AND 3", name="severity_rank_range"),
        CheckConstraint("queue_group BETWEEN 0 AND 2", name="queue_group_range"),
        Index("ix_tickets_customer_id_id", "customer_id", "id"),
        Index("ix_tickets_status_id", "status", "id"),
        # The queue: only open tickets, in the order they are worked.
        Index(
            "ix_tickets_queue",
            "queue_group",
            "severity_rank",
            "received_at",
            "id",
            postgresql_where=text("status = 'open'"),
            sqlite_where=text("status = 'open'"),
        ),
        # The SLA sweep: only tickets still waiting for a first response and not yet
        # announced as breached, by due time (without it, a scan of every ticket).
        Index(
            "ix_tickets_sla_watch",
            "first_response_due",
            postgresql_where=text(SLA_WATCH),
            sqlite_where=text(SLA_WATCH),
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id", ondelete="RESTRICT"))
    contact_id: Mapped[str | None] = mapped_column(ForeignKey("contacts.id", ondelete="RESTRICT"))
    category: Mapped[str] = mapped_column(String(30))
    severity: Mapped[str] = mapped_column(String(10))
    severity_rank: Mapped[int] = mapped_column(Integer)
    queue_group: Mapped[int] = mapped_column(Integer, server_default="2")
    status: Mapped[str] = mapped_column(String(20))
    subject: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text)
    steps_to_reproduce: Mapped[str | None] = mapped_column(Text)
    product: Mapped[str | None] = mapped_column(String(64))
    addon_version: Mapped[str | None] = mapped_column(String(50))
    env_os: Mapped[str | None] = mapped_column(String(200))
    env_host_application: Mapped[str | None] = mapped_column(String(200))
    env_host_version: Mapped[str | None] = mapped_column(String(100))
    env_database_server: Mapped[str | None] = mapped_column(String(200))
    env_extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    concept: Mapped[str | None] = mapped_column(Text)
    concept_en: Mapped[str | None] = mapped_column(Text)
    proposed_appointments: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    dongle_received_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    has_image_screenshot: Mapped[bool] = mapped_column(Boolean, default=False)
    has_database_backup: Mapped[bool] = mapped_column(Boolean, default=False)
    # Whether blockers held the ticket when it was last placed: a ticket waiting because
    # a supporter asked a question is not opened by blockers clearing.
    held: Mapped[bool] = mapped_column(Boolean, default=False)
    assignee_key_id: Mapped[str | None] = mapped_column(String(40))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    next_business_window: Mapped[datetime | None] = mapped_column(UTCDateTime())
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    first_response_due: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    paused_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When the SLA sweep raised ticket.sla_at_risk / ticket.sla_breached: once each.
    sla_at_risk_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sla_breached_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_by: Mapped[str | None] = mapped_column(String(40))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(Integer, default=1)


class TicketPause(Base):
    """A stretch of time in which the SLA clock stood (awaiting customer or vendor)."""

    __tablename__ = "ticket_pauses"
    __table_args__ = (CheckConstraint("ended_at >= started_at", name="ordered"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[str] = mapped_column(
        ForeignKey("tickets.id", ondelete="RESTRICT"), index=True
    )
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Comment(Base):
    __tablename__ = "ticket_comments"
    __table_args__ = (Index("ix_ticket_comments_ticket_id_id", "ticket_id", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id", ondelete="RESTRICT"))
    body: Mapped[str] = mapped_column(Text)
    internal: Mapped[bool] = mapped_column(Boolean, default=False)
    author_key_id: Mapped[str | None] = mapped_column(String(40))
    author_role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Attachment(Base):
    __tablename__ = "ticket_attachments"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('screenshot', 'database_backup', 'log', 'document')", name="kind_known"
        ),
        Index("ix_ticket_attachments_ticket_id_id", "ticket_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id", ondelete="RESTRICT"))
    kind: Mapped[str] = mapped_column(String(20))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(100))
    uploaded_by: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Escalation(Base):
    __tablename__ = "ticket_escalations"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    ticket_id: Mapped[str] = mapped_column(
        ForeignKey("tickets.id", ondelete="RESTRICT"), index=True
    )
    vendor: Mapped[str] = mapped_column(String(200))
    summary_en: Mapped[str] = mapped_column(Text)
    vendor_window_opens_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
