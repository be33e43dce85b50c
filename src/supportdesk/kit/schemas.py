"""Base classes for request and response bodies."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    model_validator,
)
from starlette.responses import Response

from supportdesk.kit.clock import in_accepted_range


def _as_json(value: Any) -> Any:
    """Refuse NUL in any text; read a number with an integral value (``5.0``) as the
    integer it is, since JSON has one number type (so does JSON Schema's ``integer``)."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("text must not contain NUL characters")
    elif isinstance(value, float):
        if value.is_integer():
            return int(value)
    elif isinstance(value, dict):
        for key in value:
            _as_json(key)
        return {key: _as_json(item) for key, item in value.items()}
    elif isinstance(value, list):
        return [_as_json(item) for item in value]
    return value


class RequestModel(BaseModel):
    """A request body: unknown fields are refused (422), never silently dropped; no text
    may hold a NUL character, which PostgreSQL cannot store. Numbers and flags use
    ``StrictInt``/``StrictBool`` (``true`` is not a number, ``"5"`` not an integer, while
    ``5.0`` is the integer 5, as in JSON)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _read_as_json(cls, data: Any) -> Any:
        return _as_json(data)


def _rfc3339_only(value: Any) -> Any:
    """A number is not an instant here: only RFC 3339 text (or a datetime) is."""
    if isinstance(value, bool | int | float) or (
        isinstance(value, str) and value.strip().lstrip("+-").replace(".", "", 1).isdigit()
    ):
        raise ValueError("an instant is RFC 3339 text with an offset, e.g. 2026-11-21T10:00:00Z")
    return value


NOT_BLANK = r"[^\s\x1c-\x1f]"
"""A pattern: some character that is not white space (Python's ``str.isspace`` and the
validator's ``\\s`` differ only in ``\\x1c``-``\\x1f``, named so both read it alike)."""

Stripped = AfterValidator(str.strip)
"""Strip a text after its constraints are checked. ``strip_whitespace=True`` would strip
before, and the schema, which describes the text as sent, would then promise too much
(``" "`` meets ``minLength: 1``) and too little (a text too long only by its spaces)."""

StrictInt = Annotated[int, Strict()]
StrictBool = Annotated[bool, Strict()]


def not_null(schema: dict[str, Any]) -> None:
    """``Field(json_schema_extra=not_null)`` on a ``T | None = None`` field of a PATCH body
    that may be left out but not sent as null: the schema says ``T``, as the validator does."""
    variants = [variant for variant in schema.pop("anyOf") if variant != {"type": "null"}]
    (kept,) = variants
    schema.update(kept)
    schema.pop("default", None)


Instant = Annotated[
    AwareDatetime, BeforeValidator(_rfc3339_only), AfterValidator(in_accepted_range)
]
"""An RFC 3339 instant with an offset, normalised to UTC. Every instant the API takes is
one: outside the years 1900 to 2999 (``kit.clock``) it is 422 with the field named, before
it can overflow a time-zone conversion or a sum of durations."""


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


def json_answer(model: BaseModel, status_code: int = 200) -> Response:
    """The model as JSON bytes, serialized once: the same bytes FastAPI's response model
    would give, without validating again what the route built from trusted values."""
    return Response(model.model_dump_json(), status_code, media_type="application/json")
