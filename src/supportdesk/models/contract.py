from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from supportdesk.db import Base, UTCDateTime


class Contract(Base):
    """A service and maintenance contract; valid from ``starts_on`` through ``ends_on``.

    Contracts are never deleted: ending one means setting ``ends_on``.
    """

    __tablename__ = "contracts"
    __table_args__ = (
        CheckConstraint("kind IN ('maintenance')", name="kind_known"),
        CheckConstraint("ends_on IS NULL OR ends_on >= starts_on", name="period_ordered"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    customer_id: Mapped[str] = mapped_column(
        ForeignKey("customers.id", ondelete="RESTRICT"), index=True
    )
    kind: Mapped[str] = mapped_column(String(20))
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
