from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import Field, StringConstraints

from supportdesk.kit.schemas import RequestModel, ResponseModel


class EventType(StrEnum):
    TICKET_CREATED = "ticket.created"
    TICKET_STATUS_CHANGED = "ticket.status_changed"
    TICKET_BLOCKERS_CLEARED = "ticket.blockers_cleared"
    TICKET_COMMENTED = "ticket.commented"
    TICKET_SLA_AT_RISK = "ticket.sla_at_risk"
    TICKET_SLA_BREACHED = "ticket.sla_breached"
    LEDGER_LOW_BALANCE = "ledger.low_balance"
    LEDGER_ENTRY_CREATED = "ledger.entry_created"
    SESSION_ENDED = "session.ended"
    STATEMENT_ISSUED = "statement.issued"
    CONTRACT_CHANGED = "contract.changed"


class WebhookCreate(RequestModel):
    url: Annotated[str, StringConstraints(min_length=8, max_length=2000)] = Field(
        examples=["https://crm.example.com/hooks/supportdesk"]
    )
    events: list[EventType] = Field(min_length=1, max_length=20)
    secret: Annotated[str, StringConstraints(min_length=16, max_length=200)] = Field(
        description="Signs every delivery (HMAC-SHA256); never shown again."
    )


class WebhookRead(ResponseModel):
    id: str
    url: str
    events: list[EventType]
    active: bool
    created_at: datetime


class DeliveryRead(ResponseModel):
    id: str
    event_id: str
    event_type: EventType
    attempt: int
    status_code: int | None
    delivered: bool
    at: datetime
    latency_ms: int
    error: str | None
