"""Base classes for request and response bodies."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field


class RequestModel(BaseModel):
    """A request body: unknown fields are refused (422), never silently dropped."""

    model_config = ConfigDict(extra="forbid")


class ResponseModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Money(BaseModel):
    """An amount of money as a decimal string, never a float: ``{"amount": "123.45", ...}``."""

    amount: str = Field(pattern=r"^-?[0-9]+\.[0-9]{2}$", examples=["123.45"])
    currency: str = Field(pattern=r"^[A-Z]{3}$", examples=["EUR"])

    @classmethod
    def of(cls, amount: Decimal, currency: str) -> Money:
        return cls(amount=f"{amount:.2f}", currency=currency)

    @classmethod
    def maybe(cls, amount: Decimal | None, currency: str) -> Money | None:
        return None if amount is None else cls.of(amount, currency)
