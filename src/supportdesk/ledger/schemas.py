from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from supportdesk.kit.schemas import Money, RequestModel, ResponseModel, StrictInt
from supportdesk.ledger.repository import LedgerEntryRow
from supportdesk.models import LedgerEntry

MAX_UNITS = 100_000
Units = Annotated[StrictInt, Field(ge=1, le=MAX_UNITS)]
Reference = Annotated[str | None, Field(default=None, min_length=1, max_length=200)]


class PurchaseCreate(RequestModel):
    kind: Literal["purchase"]
    units: Units = Field(examples=[20])
    reference: Reference = Field(default=None, examples=["INV-2026-0042"])


class DebitCreate(RequestModel):
    kind: Literal["debit"]
    units: Units = Field(examples=[2])
    reference: Reference = Field(default=None, examples=["phone call 2026-11-20"])


class ReversalCreate(RequestModel):
    kind: Literal["reversal"]
    reverses: str = Field(max_length=255, description="The id of the entry to undo.")
    reference: Reference = None


LedgerEntryCreate = Annotated[
    PurchaseCreate | DebitCreate | ReversalCreate, Field(discriminator="kind")
]


class Cause(ResponseModel):
    type: str = Field(description="purchase, manual, session or reversal")
    id: str | None = None


class LedgerEntryRead(ResponseModel):
    id: str
    customer_id: str
    kind: Literal["purchase", "debit", "reversal"]
    units: int = Field(description="Units bought, asked to debit, or of the entry reversed.")
    change: int = Field(description="The entry's signed effect on the balance.")
    units_debited: int = Field(description="Units taken from the prepaid balance.")
    units_billed_at_list_price: int = Field(description="Units beyond the balance, billed.")
    unit_price: Money | None = Field(description="Price per unit paid (purchases).")
    amount: Money | None = Field(description="Amount paid (purchases; negative if reversed).")
    list_price_amount: Money | None = Field(description="Billed at list price (debits).")
    reverses: str | None
    reference: str | None
    cause: Cause
    balance_after: int
    recorded_at: datetime
    effective_at: datetime
    created_by: str | None


class LedgerRead(ResponseModel):
    customer_id: str
    balance: int
    warning_threshold: int = Field(description="At or below this balance the account is low.")
    warning_levels: list[int]
    low: bool
    as_of: datetime | None


def entry_read(entry: LedgerEntry | LedgerEntryRow) -> LedgerEntryRead:
    return LedgerEntryRead(
        id=entry.id,
        customer_id=entry.customer_id,
        kind=entry.kind,
        units=entry.units,
        change=entry.change,
        units_debited=entry.units_debited,
        units_billed_at_list_price=entry.units_billed_at_list_price,
        unit_price=Money.maybe(entry.unit_price, entry.currency),
        amount=Money.maybe(entry.amount, entry.currency),
        list_price_amount=Money.maybe(entry.list_price_amount, entry.currency),
        reverses=entry.reverses_id,
        reference=entry.reference,
        cause=Cause(type=entry.cause_type, id=entry.cause_id),
        balance_after=entry.balance_after,
        recorded_at=entry.recorded_at,
        effective_at=entry.effective_at,
        created_by=entry.created_by,
    )
