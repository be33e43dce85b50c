from __future__ import annotations

from pydantic import Field

from supportdesk.kit.schemas import Money, ResponseModel


class StatementEntryRead(ResponseModel):
    id: str
    kind: str
    at: str
    description: str
    units: int
    units_prepaid: int
    units_at_list_price: int
    amount: Money | None
    notes: str


class StatementSessionRead(StatementEntryRead):
    partner: str
    supporter: str
    started_at: str
    duration_seconds: int
    duration: str
    units_covered: int
    paid_by: str


class StatementRead(ResponseModel):
    """The JSON statement (documented shape; the body is streamed)."""

    customer_id: str
    customer_name: str
    from_: str = Field(alias="from")
    to: str
    currency: str
    opening_balance: int
    closing_balance: int
    units_purchased: int
    amount_purchased: Money
    units_used: int
    units_at_list_price: int
    units_covered: int
    amount_due: Money
    entries: list[StatementEntryRead]
    sessions: list[StatementSessionRead]
