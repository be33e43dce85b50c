"""Keyset pagination: ``?limit=`` (1 to the configured page size, 100 by default) and an
opaque ``?cursor=``.

The cursor carries the sort key of the last item returned, so a page is one index range
scan however deep the client pages, and rows inserted meanwhile are neither skipped nor
repeated.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query, Request
from pydantic import BaseModel
from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from supportdesk.errors import InvalidInput

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_LIMIT = 50
# The most any deployment may allow; each allows SUPPORTDESK_MAX_PAGE_SIZE (default 100),
# and its OpenAPI document says so (main._document_limits).
HARD_MAX_LIMIT = 1000


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


@dataclass(frozen=True)
class PageParams:
    limit: int
    after: str | None


def encode_cursor(after: str) -> str:
    raw = json.dumps({"a": after}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        after = data["a"]
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeError) as exc:
        raise InvalidInput(
            "The cursor is not one this API issued.", loc=["query", "cursor"]
        ) from exc
    if not isinstance(after, str) or "\x00" in after:
        raise InvalidInput("The cursor is not one this API issued.", loc=["query", "cursor"])
    try:
        after.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(
            "The cursor is not one this API issued.", loc=["query", "cursor"]
        ) from exc
    return after


async def page_params(
    request: Request,
    limit: Annotated[
        int, Query(ge=1, le=HARD_MAX_LIMIT, description="Items per page (1–100).")
    ] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None,
        Query(max_length=512, description="`next_cursor` of the previous page."),
    ] = None,
) -> PageParams:
    most: int = request.app.state.settings.max_page_size
    if limit > most:
        raise InvalidInput(f"limit is at most {most}.", loc=["query", "limit"])
    return PageParams(limit=limit, after=decode_cursor(cursor) if cursor else None)


PageDep = Annotated[PageParams, Depends(page_params)]


async def fetch_page(
    session: AsyncSession,
    stmt: Select[Any],
    key: InstrumentedAttribute[str],
    params: PageParams,
    *,
    descending: bool = False,
) -> tuple[list[Any], str | None]:
    """One page of ``stmt`` ordered by the unique string column ``key``."""
    if params.after is not None:
        stmt = stmt.where(key < params.after if descending else key > params.after)
    order = key.desc() if descending else key.asc()
    rows = list((await session.scalars(stmt.order_by(order).limit(params.limit + 1))).all())
    if len(rows) <= params.limit:
        return rows, None
    rows = rows[: params.limit]
    return rows, encode_cursor(getattr(rows[-1], key.key))
