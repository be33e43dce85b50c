from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from supportdesk.db import Base, Units, UTCDateTime


class LedgerEntry(Base):
    """One line of a customer's prepaid-unit ledger. Rows are never updated or deleted.

    ``change`` is the entry's signed effect on the balance; the balance is the sum of the
    changes. ``balance_after`` is the balance the entry left, read from the same atomic
    update that applied it, so the ledger's history can be replayed and checked.
    """

    __tablename__ = "ledger_entries"
    __table_args__ = (
        CheckConstraint("kind IN ('purchase', 'debit', 'reversal')", name="kind_known"),
        CheckConstraint("(kind = 'reversal') = (reverses_id IS NOT NULL)", name="reversal_target"),
        CheckConstraint("units >= 0", name="units_not_negative"),
        CheckConstraint("balance_after >= 0", name="balance_after_not_negative"),
        CheckConstraint(
            "units_debited >= 0 AND units_billed_at_list_price >= 0", name="debit_parts"
        ),
        Index("ix_ledger_entries_customer_id_id", "customer_id", "id"),
        Index("ix_ledger_entries_customer_id_effective_at", "customer_id", "effective_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id", ondelete="RESTRICT"))
    kind: Mapped[str] = mapped_column(String(20))
    units: Mapped[int] = mapped_column(Units)
    change: Mapped[int] = mapped_column(Units)
    units_debited: Mapped[int] = mapped_column(Units, default=0)
    units_billed_at_list_price: Mapped[int] = mapped_column(Units, default=0)
    unit_price: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    list_price_amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    currency: Mapped[str] = mapped_column(String(3))
    reverses_id: Mapped[str | None] = mapped_column(
        ForeignKey("ledger_entries.id", ondelete="RESTRICT"), unique=True
    )
    reference: Mapped[str | None] = mapped_column(String(200))
    cause_type: Mapped[str] = mapped_column(String(20))
    cause_id: Mapped[str | None] = mapped_column(String(200))
    balance_after: Mapped[int] = mapped_column(Units)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    effective_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str | None] = mapped_column(String(40))
