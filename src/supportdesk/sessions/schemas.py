from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from supportdesk.config import BusinessRules
from supportdesk.domain.billing import BillingOutcome, NonBillableReason
from supportdesk.domain.pricing import list_price_amount
from supportdesk.kit.schemas import (
    NOT_BLANK,
    Instant,
    Money,
    RequestModel,
    ResponseModel,
    StrictBool,
    StrictInt,
    Stripped,
)
from supportdesk.models import RemoteSession, SessionLog
from supportdesk.sessions.repository import SessionLogRow

Text200 = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=NOT_BLANK), Stripped
]
Notes = Annotated[str, StringConstraints(max_length=20_000)]
MAX_SESSION_SECONDS = 7 * 24 * 3600


class RemoteSessionCreate(RequestModel):
    customer_id: str = Field(max_length=255)
    ticket_id: str | None = Field(default=None, max_length=255)
    contact_id: str | None = Field(default=None, max_length=255)
    computer: Text200 | None = Field(default=None, examples=["PC Herr Horst Maier"])
    bill_at_list_price: StrictBool = Field(
        default=False, description="Required for a `standard` customer: remote work is billed."
    )
    supporter: Text200 | None = Field(
        default=None, description="Who works; default: the name of the caller's API key."
    )


class RemoteSessionOpened(ResponseModel):
    id: str
    code: str = Field(description="Read it to the customer; valid once, until code_expires_at.")
    code_expires_at: datetime
    status: Literal["waiting"]
    customer_id: str
    ticket_id: str | None
    contact_id: str | None
    computer: str | None
    bill_at_list_price: bool


class JoinRequest(RequestModel):
    code: Annotated[str, StringConstraints(min_length=1, max_length=40)]


class RemoteSessionRead(ResponseModel):
    id: str
    customer_id: str
    ticket_id: str | None
    contact_id: str | None
    computer: str | None
    status: Literal["waiting", "active", "ended", "expired"]
    code_expires_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    ended_by: Literal["agent", "customer"] | None
    bill_at_list_price: bool
    session_log_id: str | None


class SessionEnd(RequestModel):
    notes: Notes | None = None
    billable: StrictBool = True
    non_billable_reason: NonBillableReason | None = None


class SessionLogCreate(RequestModel):
    customer_id: str = Field(max_length=255)
    partner: Annotated[
        str, StringConstraints(min_length=1, max_length=300, pattern=NOT_BLANK), Stripped
    ]
    started_at: Instant
    duration_seconds: Annotated[StrictInt, Field(ge=0, le=MAX_SESSION_SECONDS)]
    supporter: Text200
    notes: Notes = ""
    billable: StrictBool
    non_billable_reason: NonBillableReason | None = None
    bill_at_list_price: StrictBool = False
    ticket_id: str | None = Field(default=None, max_length=255)
    contact_id: str | None = Field(default=None, max_length=255)
    computer: Text200 | None = None


class Billing(ResponseModel):
    outcome: BillingOutcome
    units: int = Field(description="What the work is worth in units.")
    units_charged: int = Field(description="Taken from the prepaid balance.")
    units_at_list_price: int
    units_covered: int = Field(description="Covered by a maintenance contract.")
    amount_at_list_price: Money
    non_billable_reason: NonBillableReason | None
    ledger_entry_id: str | None


class SessionLogRead(ResponseModel):
    id: str
    customer_id: str
    ticket_id: str | None
    contact_id: str | None
    computer: str | None
    partner: str
    started_at: datetime
    ended_at: datetime
    duration_seconds: int
    duration: str = Field(description="The exact duration as hh:mm:ss.", examples=["00:12:22"])
    supporter: str
    notes: str
    billable: bool
    non_billable_reason: NonBillableReason | None
    origin: Literal["live", "logged", "imported"]
    remote_session_id: str | None
    ended_by: Literal["agent", "customer"] | None
    units_charged: int
    units_at_list_price: int
    units_covered: int
    billing: Billing
    created_at: datetime


class ImportError_(ResponseModel):
    line: int
    msg: str


class ImportResult(ResponseModel):
    imported: int
    skipped: int = Field(description="Rows already imported before.")
    errors: list[ImportError_]


def format_duration(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}"


def session_log_read(log: SessionLog | SessionLogRow, rules: BusinessRules) -> SessionLogRead:
    currency = rules.price_list.currency
    return SessionLogRead(
        id=log.id,
        customer_id=log.customer_id,
        ticket_id=log.ticket_id,
        contact_id=log.contact_id,
        computer=log.computer,
        partner=log.partner,
        started_at=log.started_at,
        ended_at=log.started_at + timedelta(seconds=log.duration_seconds),
        duration_seconds=log.duration_seconds,
        duration=format_duration(log.duration_seconds),
        supporter=log.supporter,
        notes=log.notes,
        billable=log.billable,
        non_billable_reason=(
            NonBillableReason(log.non_billable_reason) if log.non_billable_reason else None
        ),
        origin=log.origin,
        remote_session_id=log.remote_session_id,
        ended_by=log.ended_by,
        units_charged=log.units_charged,
        units_at_list_price=log.units_at_list_price,
        units_covered=log.units_covered,
        billing=Billing(
            outcome=BillingOutcome(log.billing_outcome),
            units=log.units,
            units_charged=log.units_charged,
            units_at_list_price=log.units_at_list_price,
            units_covered=log.units_covered,
            amount_at_list_price=Money.of(
                list_price_amount(log.units_at_list_price, rules.price_list), currency
            ),
            non_billable_reason=(
                NonBillableReason(log.non_billable_reason) if log.non_billable_reason else None
            ),
            ledger_entry_id=log.ledger_entry_id,
        ),
        created_at=log.created_at,
    )


def remote_session_read(remote: RemoteSession, now: datetime) -> RemoteSessionRead:
    status = remote.status
    if status == "waiting" and remote.code_expires_at <= now:
        status = "expired"
    return RemoteSessionRead(
        id=remote.id,
        customer_id=remote.customer_id,
        ticket_id=remote.ticket_id,
        contact_id=remote.contact_id,
        computer=remote.computer,
        status=status,
        code_expires_at=remote.code_expires_at,
        started_at=remote.started_at,
        ended_at=remote.ended_at,
        ended_by=remote.ended_by,
        bill_at_list_price=remote.bill_at_list_price,
        session_log_id=remote.session_log_id,
    )
