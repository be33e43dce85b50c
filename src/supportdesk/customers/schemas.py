from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints, field_validator

from supportdesk.domain.groups import SupportGroup
from supportdesk.domain.notifications import Language, NotificationKind
from supportdesk.kit.schemas import (
    NOT_BLANK,
    RequestModel,
    ResponseModel,
    StrictInt,
    Stripped,
    not_null,
)

Name = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=NOT_BLANK), Stripped]
ExternalRef = Annotated[str, StringConstraints(min_length=1, max_length=200)]
# Patterns judge the text as sent, which is what the schema describes (see Stripped).
Email = Annotated[str, StringConstraints(max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
WarningLevels = Annotated[
    list[Annotated[StrictInt, Field(ge=0, le=100_000)]],
    Field(
        max_length=10,
        description="Low-balance warning levels in units; null: the desk's default levels.",
        examples=[[10, 4]],
    ),
]
OptOuts = Annotated[
    list[NotificationKind],
    Field(
        max_length=len(NotificationKind),
        description="Kinds of e-mail notification the customer does not want.",
        examples=[["low_balance"]],
    ),
]
LanguageField = Field(
    description="The language of the customer's e-mail notifications.", examples=["de"]
)
BillingContact = Field(
    description="The contact (of this customer) who receives the low-balance and "
    "statement e-mails; null: nobody.",
    examples=["con_01J..."],
)
ContactId = Annotated[str, StringConstraints(min_length=1, max_length=255)]
Phone = Annotated[
    str, StringConstraints(max_length=50, pattern=r"^\+?[0-9 ()/.\-]{3,50}$"), Stripped
]


class CustomerCreate(RequestModel):
    name: Name = Field(examples=["Fa. Walter Maier GmbH"])
    external_ref: ExternalRef | None = Field(
        default=None, description="The customer's id in a CRM; unique.", examples=["CRM-4711"]
    )
    unit_warning_levels: WarningLevels | None = None
    language: Language = Field(default=Language.DE, description=LanguageField.description)
    notification_opt_outs: OptOuts = Field(default_factory=list)


class CustomerUpdate(RequestModel):
    name: Name | None = Field(default=None, json_schema_extra=not_null)
    external_ref: ExternalRef | None = None
    unit_warning_levels: WarningLevels | None = None
    language: Language | None = Field(
        default=None, description=LanguageField.description, json_schema_extra=not_null
    )
    billing_contact_id: ContactId | None = Field(
        default=None, description=BillingContact.description
    )
    notification_opt_outs: OptOuts | None = Field(default=None, json_schema_extra=not_null)

    @field_validator("language", "notification_opt_outs")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("cannot be null")
        return value

    @field_validator("name")
    @classmethod
    def _name_not_null(cls, value: str | None) -> str:
        if value is None:
            raise ValueError("name cannot be null")
        return value


class CustomerRead(ResponseModel):
    id: str
    name: str
    external_ref: str | None
    support_group: SupportGroup = Field(
        description="The customer's standing now: contract, premium or standard."
    )
    unit_balance: int = Field(description="Prepaid units left.")
    unit_warning_levels: list[int] = Field(
        description="Balances at or below which the customer is warned, highest first."
    )
    language: Language = LanguageField
    billing_contact_id: str | None = BillingContact
    notification_opt_outs: list[NotificationKind] = Field(
        description="Kinds of e-mail notification the customer does not want."
    )
    created_at: datetime
    updated_at: datetime


class ContactCreate(RequestModel):
    name: Name = Field(examples=["Horst Maier"])
    email: Email | None = Field(default=None, examples=["horst.maier@example.com"])
    phone: Phone | None = Field(default=None, examples=["+49 821 123456"])


class ContactRead(ResponseModel):
    id: str
    customer_id: str
    name: str
    email: str | None
    phone: str | None
    created_at: datetime
