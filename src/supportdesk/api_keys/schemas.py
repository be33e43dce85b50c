from __future__ import annotations

from datetime import datetime

from pydantic import Field, model_validator

from supportdesk.kit.auth import Role
from supportdesk.kit.schemas import RequestModel, ResponseModel


class ApiKeyCreate(RequestModel):
    name: str = Field(min_length=1, max_length=200, examples=["Add-on at Fa. Maier"])
    role: Role
    customer_id: str | None = Field(
        default=None,
        max_length=40,
        description="Required for, and only for, the role `customer`.",
    )

    @model_validator(mode="after")
    def _binding(self) -> ApiKeyCreate:
        if self.role is Role.customer and self.customer_id is None:
            raise ValueError("a key with role 'customer' needs customer_id")
        if self.role is not Role.customer and self.customer_id is not None:
            raise ValueError("only a key with role 'customer' is bound to a customer")
        return self


class ApiKeyRead(ResponseModel):
    id: str
    name: str
    role: Role
    customer_id: str | None
    prefix: str = Field(description="The first characters of the key, to recognise it.")
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyRead):
    key: str = Field(description="The secret key. It is shown this once and never again.")
