from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from supportdesk.domain.notifications import Language, NotificationKind
from supportdesk.kit.schemas import ResponseModel


class NotificationStatus(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    SKIPPED_OPT_OUT = "skipped_opt_out"
    SKIPPED_NO_RECIPIENT = "skipped_no_recipient"
    FAILED = "failed"


class NotificationRead(ResponseModel):
    id: str
    event_id: str = Field(description="The outbox event the message tells of.")
    kind: NotificationKind
    recipient: str = Field(description="The e-mail address; empty when nobody had one.")
    language: Language
    subject: str | None = Field(description="As sent; null until rendered.")
    status: NotificationStatus = Field(
        description="queued (waiting or retrying), sent, skipped_opt_out (the customer "
        "opted out of this kind), skipped_no_recipient (no contact with an e-mail "
        "address), failed (given up after retries)."
    )
    attempts: int
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime
    sent_at: datetime | None
