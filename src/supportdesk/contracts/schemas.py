from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import Field, field_validator, model_validator

from supportdesk.kit.schemas import RequestModel, ResponseModel, not_null
from supportdesk.models import Contract


class ContractCreate(RequestModel):
    customer_id: str = Field(max_length=255)
    kind: Literal["maintenance"] = "maintenance"
    starts_on: date = Field(examples=["2026-01-01"])
    ends_on: date | None = Field(default=None, description="Inclusive; null: open-ended.")

    @model_validator(mode="after")
    def _ordered(self) -> ContractCreate:
        if self.ends_on is not None and self.ends_on < self.starts_on:
            raise ValueError("ends_on cannot be before starts_on")
        return self


class ContractUpdate(RequestModel):
    starts_on: date | None = Field(default=None, json_schema_extra=not_null)
    ends_on: date | None = Field(default=None, description="Set to end the contract.")

    @field_validator("starts_on")
    @classmethod
    def _starts_not_null(cls, value: date | None) -> date:
        if value is None:
            raise ValueError("starts_on cannot be null")
        return value


class ContractRead(ResponseModel):
    id: str
    customer_id: str
    kind: Literal["maintenance"]
    starts_on: date
    ends_on: date | None
    active: bool = Field(description="Valid today, in the desk's time zone.")
    created_at: datetime
    updated_at: datetime


def contract_read(contract: Contract, active: bool) -> ContractRead:
    return ContractRead(
        id=contract.id,
        customer_id=contract.customer_id,
        kind="maintenance",
        starts_on=contract.starts_on,
        ends_on=contract.ends_on,
        active=active,
        created_at=contract.created_at,
        updated_at=contract.updated_at,
    )
