from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from supportdesk.db import Base, Units, UTCDateTime
from supportdesk.kit.clock import utcnow


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (
        # The prepaid balance is kept beside the customer so that a debit can be one
        # conditional UPDATE; the database refuses a negative balance on its own.
        CheckConstraint("unit_balance >= 0", name="unit_balance_not_negative"),
        CheckConstraint("language IN ('de', 'en')", name="language_known"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    external_ref: Mapped[str | None] = mapped_column(String(200), unique=True)
    unit_balance: Mapped[int] = mapped_column(Units, default=0, server_default="0")
    # The signed size of the last balance change, set by the same UPDATE that changes the
    # balance: SET expressions read the row as it was, so one statement both applies a
    # capped debit and reports how much it actually took, with no read-compute-write.
    last_balance_change: Mapped[int] = mapped_column(Units, default=0, server_default="0")
    # Low-balance warning levels, comma-separated, highest first; NULL: the settings' levels.
    unit_warning_levels: Mapped[str | None] = mapped_column(String(100))
    # E-mail notifications: the language they are written in, who receives the ledger's
    # and the statements' messages (a contact of this customer), the kinds not wanted.
    language: Mapped[str] = mapped_column(String(2), default="de", server_default="de")
    billing_contact_id: Mapped[str | None] = mapped_column(String(40))
    notification_opt_outs: Mapped[list[Any]] = mapped_column(
        JSON, default=list, server_default="[]"
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
