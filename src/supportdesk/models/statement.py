from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from supportdesk.db import Base, Units, UTCDateTime


class Statement(Base):
    """An issued statement: its header and totals as they were when it was issued.

    Rows are written once and never updated; the unique (customer, period) is what makes
    a period issued once, however many workers try at the same moment.
    """

    __tablename__ = "statements"
    __table_args__ = (
        UniqueConstraint("customer_id", "first", "last"),
        UniqueConstraint("number"),
        CheckConstraint("last >= first", name="period_ordered"),
        Index("ix_statements_customer_id_id", "customer_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    number: Mapped[str] = mapped_column(String(20))
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id", ondelete="RESTRICT"))
    customer_name: Mapped[str] = mapped_column(String(200))
    first: Mapped[date] = mapped_column(Date)
    last: Mapped[date] = mapped_column(Date)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The API key that issued it; null for the monthly job.
    issued_by: Mapped[str | None] = mapped_column(String(40))
    currency: Mapped[str] = mapped_column(String(3))
    opening_balance: Mapped[int] = mapped_column(Units)
    closing_balance: Mapped[int] = mapped_column(Units)
    units_purchased: Mapped[int] = mapped_column(Units)
    amount_purchased: Mapped[Decimal] = mapped_column(Numeric(16, 2))
    units_used: Mapped[int] = mapped_column(Units)
    units_at_list_price: Mapped[int] = mapped_column(Units)
    units_covered: Mapped[int] = mapped_column(Units)
    amount_due: Mapped[Decimal] = mapped_column(Numeric(16, 2))


class StatementLine(Base):
    """One line of an issued statement, frozen: a ledger entry or a session as it read
    when the statement was issued, in the statement's order (``position``)."""

    __tablename__ = "statement_lines"
    __table_args__ = (
        CheckConstraint("kind IN ('purchase', 'debit', 'reversal', 'session')", name="kind_known"),
    )

    statement_id: Mapped[str] = mapped_column(
        ForeignKey("statements.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    source_id: Mapped[str] = mapped_column(String(40))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    description: Mapped[str] = mapped_column(Text)
    units: Mapped[int] = mapped_column(Units)
    units_prepaid: Mapped[int] = mapped_column(Units)
    units_at_list_price: Mapped[int] = mapped_column(Units)
    units_covered: Mapped[int] = mapped_column(Units)
    amount: Mapped[Decimal | None] = mapped_column(Numeric(16, 2))
    partner: Mapped[str] = mapped_column(Text)
    supporter: Mapped[str] = mapped_column(Text)
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    notes: Mapped[str] = mapped_column(Text)
    paid_by: Mapped[str] = mapped_column(String(30))


class StatementCounter(Base):
    """The last statement number given out per year: numbers are taken with one
    conditional ``UPDATE … RETURNING`` in the issuing transaction, so they are unique
    across workers and have no gaps (a refused issue rolls its number back)."""

    __tablename__ = "statement_counters"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_number: Mapped[int] = mapped_column(Integer)
