from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from supportdesk.db import Base, Units, UTCDateTime


class RemoteSession(Base):
    """A live remote-maintenance session, opened by a supporter with a one-time code.

    Only the code's SHA-256 is kept, unique over every session ever opened, so a code
    is never valid twice. Once ``ended_at`` is set the session gives no access at all.
    """

    __tablename__ = "remote_sessions"
    __table_args__ = (
        CheckConstraint("status IN ('waiting', 'active', 'ended')", name="status_known"),
        CheckConstraint("ended_by IS NULL OR ended_by IN ('agent', 'customer')", name="ender"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    customer_id: Mapped[str] = mapped_column(
        ForeignKey("customers.id", ondelete="RESTRICT"), index=True
    )
    ticket_id: Mapped[str | None] = mapped_column(ForeignKey("tickets.id", ondelete="RESTRICT"))
    contact_id: Mapped[str | None] = mapped_column(ForeignKey("contacts.id", ondelete="RESTRICT"))
    computer: Mapped[str | None] = mapped_column(String(200))
    bill_at_list_price: Mapped[bool] = mapped_column(Boolean, default=False)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    code_expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(10))
    supporter: Mapped[str] = mapped_column(String(200))
    opened_by: Mapped[str | None] = mapped_column(String(40))
    joined_by: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_by: Mapped[str | None] = mapped_column(String(10))
    session_log_id: Mapped[str | None] = mapped_column(String(40))


class SessionLog(Base):
    """The log of one ended session, whatever its origin (live, logged, imported).

    ``duration_seconds`` is the exact raw time; the billed units are derived from it and
    kept beside it, never written over it.
    """

    __tablename__ = "session_logs"
    __table_args__ = (
        CheckConstraint("duration_seconds >= 0", name="duration_not_negative"),
        CheckConstraint("origin IN ('live', 'logged', 'imported')", name="origin_known"),
        CheckConstraint(
            "billing_outcome IN ('not_billable', 'covered', 'charged')", name="outcome_known"
        ),
        CheckConstraint(
            "non_billable_reason IS NULL OR non_billable_reason IN "
            "('warranty', 'goodwill', 'covered_by_contract', 'internal')",
            name="reason_known",
        ),
        Index("ix_session_logs_customer_id_started_at", "customer_id", "started_at"),
        Index("ix_session_logs_customer_id_id", "customer_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id", ondelete="RESTRICT"))
    ticket_id: Mapped[str | None] = mapped_column(ForeignKey("tickets.id", ondelete="RESTRICT"))
    contact_id: Mapped[str | None] = mapped_column(ForeignKey("contacts.id", ondelete="RESTRICT"))
    computer: Mapped[str | None] = mapped_column(String(200))
    partner: Mapped[str] = mapped_column(String(300))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    duration_seconds: Mapped[int] = mapped_column(Integer)
    supporter: Mapped[str] = mapped_column(String(200))
    notes: Mapped[str] = mapped_column(Text, default="")
    billable: Mapped[bool] = mapped_column(Boolean)
    non_billable_reason: Mapped[str | None] = mapped_column(String(30))
    bill_at_list_price: Mapped[bool] = mapped_column(Boolean, default=False)
    origin: Mapped[str] = mapped_column(String(10))
    remote_session_id: Mapped[str | None] = mapped_column(String(40))
    ended_by: Mapped[str | None] = mapped_column(String(10))
    import_fingerprint: Mapped[str | None] = mapped_column(String(64), unique=True)
    billing_outcome: Mapped[str] = mapped_column(String(20))
    units: Mapped[int] = mapped_column(Units)
    units_charged: Mapped[int] = mapped_column(Units)
    units_at_list_price: Mapped[int] = mapped_column(Units)
    units_covered: Mapped[int] = mapped_column(Units)
    ledger_entry_id: Mapped[str | None] = mapped_column(String(40))
    created_by: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class JoinAttempts(Base):
    """Wrong session codes per API key, so guessing is slowed down across workers."""

    __tablename__ = "session_join_attempts"

    api_key_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    blocked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
