from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from supportdesk.db import Base, Units, UTCDateTime
from supportdesk.kit.clock import utcnow


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (
        # The prepaid balance is kept beside the customer so that a debit can be one
        # conditional UPDATE; the database refuses a negative balance on its own.
        CheckConstraint("unit_balance >= 0", name="unit_balance_not_negative"),
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
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
