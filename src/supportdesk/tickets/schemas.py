from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from supportdesk.domain.blockers import Blocker
from supportdesk.domain.groups import Severity, SupportGroup
from supportdesk.domain.sla import SlaState
from supportdesk.domain.tickets import TicketCategory, TicketStatus
from supportdesk.kit.schemas import (
    NOT_BLANK,
    Instant,
    RequestModel,
    ResponseModel,
    StrictBool,
    Stripped,
    not_null,
)
from supportdesk.products.schemas import PRODUCT_CODE_PATTERN

if TYPE_CHECKING:
    from supportdesk.config import BusinessRules
    from supportdesk.models import Escalation

ShortText = Annotated[str, StringConstraints(max_length=200)]
LongText = Annotated[str, StringConstraints(max_length=20_000)]
Subject = Annotated[
    str, StringConstraints(min_length=1, max_length=300, pattern=NOT_BLANK), Stripped
]
Description = Annotated[str, StringConstraints(min_length=1, max_length=20_000)]
ExtraKey = Annotated[str, StringConstraints(min_length=1, max_length=100)]
ExtraValue = Annotated[str, StringConstraints(max_length=1000)] | int | float | bool | None
ProductCode = Annotated[str, StringConstraints(pattern=PRODUCT_CODE_PATTERN)]
AddonVersion = Annotated[str, StringConstraints(max_length=50), Stripped]
AttachmentKind = Literal["screenshot", "database_backup", "log", "document"]


class Environment(RequestModel):
    """The workstation the problem happens on, as the add-on client knows it."""

    os: ShortText | None = Field(default=None, examples=["Windows 11 Pro 23H2"])
    host_application: ShortText | None = Field(default=None, examples=["ArchiCAD"])
    host_version: Annotated[str, StringConstraints(max_length=100)] | None = Field(
        default=None, examples=["27.1"]
    )
    database_server: ShortText | None = Field(default=None, examples=["SQL Server 2019"])
    extra: dict[ExtraKey, ExtraValue] | None = Field(
        default=None, max_length=50, description="Free-form key/values."
    )


class Appointment(RequestModel):
    starts_at: Instant
    ends_at: Instant

    @model_validator(mode="after")
    def _ordered(self) -> Appointment:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class TicketCreate(RequestModel):
    customer_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=40,
        description="May be left out with a customer-bound key.",
    )
    contact_id: str | None = Field(default=None, max_length=255)
    category: TicketCategory
    severity: Severity
    subject: Subject
    description: Description
    steps_to_reproduce: LongText | None = None
    product: ProductCode | None = Field(default=None, description="A product code.")
    addon_version: AddonVersion | None = None
    environment: Environment | None = None
    concept: LongText | None = Field(default=None, description="change_request: the concept.")
    concept_en: LongText | None = Field(default=None, description="Its English version.")
    proposed_appointments: list[Appointment] | None = Field(
        default=None, max_length=10, description="installation: possible appointments."
    )


class TicketUpdate(RequestModel):
    """Customer-side fields; what is sent replaces what was there."""

    subject: Subject | None = Field(default=None, json_schema_extra=not_null)
    description: Description | None = Field(default=None, json_schema_extra=not_null)
    severity: Severity | None = Field(default=None, json_schema_extra=not_null)
    steps_to_reproduce: LongText | None = None
    product: ProductCode | None = None
    addon_version: AddonVersion | None = None
    environment: Environment | None = None
    concept: LongText | None = None
    concept_en: LongText | None = None
    proposed_appointments: list[Appointment] | None = Field(default=None, max_length=10)

    @model_validator(mode="after")
    def _required_stay(self) -> TicketUpdate:
        for name in ("subject", "description", "severity"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class EnvironmentRead(ResponseModel):
    os: str | None
    host_application: str | None
    host_version: str | None
    database_server: str | None
    extra: dict[str, ExtraValue]


class AppointmentRead(ResponseModel):
    starts_at: datetime
    ends_at: datetime


class TicketRead(ResponseModel):
    id: str
    customer_id: str
    contact_id: str | None
    category: TicketCategory
    severity: Severity
    status: TicketStatus
    subject: str
    description: str
    steps_to_reproduce: str | None
    product: str | None
    addon_version: str | None
    environment: EnvironmentRead
    support_group: SupportGroup = Field(description="The customer's standing now.")
    blockers: list[Blocker] = Field(description="What is missing before work can start.")
    held: bool = Field(description="Whether the blockers hold the ticket (standard group).")
    received_at: datetime
    first_response_due: datetime
    first_response_at: datetime | None
    sla_state: SlaState
    next_business_window: datetime | None = Field(
        description="When business hours open next, if the ticket came in outside them."
    )
    concept: str | None
    concept_en: str | None
    proposed_appointments: list[AppointmentRead]
    dongle_received_at: datetime | None
    assignee_key_id: str | None
    updated_at: datetime


class TransitionCreate(RequestModel):
    to: TicketStatus
    note: LongText | None = Field(default=None, description="Kept as an internal comment.")


class CommentCreate(RequestModel):
    body: Annotated[str, StringConstraints(min_length=1, max_length=20_000)]
    internal: StrictBool = False


class CommentRead(ResponseModel):
    id: str
    ticket_id: str
    body: str
    internal: bool
    author_key_id: str | None
    author_role: str
    created_at: datetime


class EscalationCreate(RequestModel):
    vendor: Annotated[
        str, StringConstraints(min_length=1, max_length=200, pattern=NOT_BLANK), Stripped
    ]
    summary_en: Annotated[str, StringConstraints(min_length=1, max_length=20_000)]


class EscalationRead(ResponseModel):
    id: str
    ticket_id: str
    vendor: str
    summary_en: str
    vendor_window_opens_at: datetime = Field(
        description="When the vendor's business hours open next, in the vendor's time zone."
    )
    local_window_opens_at: datetime = Field(description="The same instant in the desk's time zone.")
    vendor_time_zone: str
    local_time_zone: str
    created_at: datetime


class DongleReturn(RequestModel):
    received_at: Instant | None = Field(default=None, description="Default: now.")


class AttachmentRead(ResponseModel):
    id: str
    ticket_id: str
    kind: AttachmentKind
    filename: str
    content_type: str
    size: int
    sha256: str
    created_at: datetime


def escalation_read(escalation: Escalation, rules: BusinessRules) -> EscalationRead:
    opens = escalation.vendor_window_opens_at
    return EscalationRead(
        id=escalation.id,
        ticket_id=escalation.ticket_id,
        vendor=escalation.vendor,
        summary_en=escalation.summary_en,
        vendor_window_opens_at=rules.vendor_calendar.local(opens),
        local_window_opens_at=rules.calendar.local(opens),
        vendor_time_zone=rules.vendor_calendar.time_zone,
        local_time_zone=rules.calendar.time_zone,
        created_at=escalation.created_at,
    )
