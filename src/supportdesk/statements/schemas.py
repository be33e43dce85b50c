from __future__ import annotations

from datetime import date, datetime

from pydantic import Field

from supportdesk.kit.schemas import Money, RequestModel, ResponseModel
from supportdesk.models import Statement


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


class StatementIssue(RequestModel):
    """The period to issue: local dates of the desk, both inclusive."""

    from_: date = Field(alias="from", examples=["2026-11-01"])
    to: date = Field(examples=["2026-11-30"])


class StatementIssuedRead(ResponseModel):
    """An issued statement: its number and totals (the lines: ``GET /statements/{id}``)."""

    id: str
    number: str = Field(examples=["ST-2026-000123"])
    customer_id: str
    customer_name: str
    from_: str = Field(alias="from")
    to: str
    issued_at: datetime
    currency: str
    opening_balance: int
    closing_balance: int
    units_purchased: int
    amount_purchased: Money
    units_used: int
    units_at_list_price: int
    units_covered: int
    amount_due: Money


class IssuedStatementRead(StatementIssuedRead):
    """An issued statement as JSON, with its lines as they were issued (documented shape;
    the body is streamed)."""

    entries: list[StatementEntryRead]
    sessions: list[StatementSessionRead]


def statement_location(statement_id: str) -> str:
    return f"/api/v1/statements/{statement_id}"


def statement_issued_read(statement: Statement) -> StatementIssuedRead:
    currency = statement.currency
    return StatementIssuedRead.model_validate(
        {
            "id": statement.id,
            "number": statement.number,
            "customer_id": statement.customer_id,
            "customer_name": statement.customer_name,
            "from": statement.first.isoformat(),
            "to": statement.last.isoformat(),
            "issued_at": statement.issued_at,
            "currency": currency,
            "opening_balance": statement.opening_balance,
            "closing_balance": statement.closing_balance,
            "units_purchased": statement.units_purchased,
            "amount_purchased": Money.of(statement.amount_purchased, currency),
            "units_used": statement.units_used,
            "units_at_list_price": statement.units_at_list_price,
            "units_covered": statement.units_covered,
            "amount_due": Money.of(statement.amount_due, currency),
        }
    )
