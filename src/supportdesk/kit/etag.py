"""Optimistic concurrency: an ``ETag`` per object version, ``If-Match`` on changes.

Two supporters editing one ticket never overwrite each other silently: the second
PATCH, made against the version the first one replaced, gets 412.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Protocol, TypeVar

from starlette.responses import Response

from supportdesk.errors import AppError


class PreconditionFailed(AppError):
    status, slug, title = 412, "precondition-failed", "Precondition Failed"


def etag_of(object_id: str, updated_at: datetime) -> str:
    digest = hashlib.sha256(f"{object_id}:{updated_at.isoformat()}".encode()).hexdigest()
    return f'"{digest[:24]}"'


class Versioned(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def updated_at(self) -> datetime: ...


V = TypeVar("V", bound=Versioned)


def tagged(read: V, response: Response) -> V:
    """Put the object's ETag on the answer that shows it."""
    response.headers["ETag"] = etag_of(read.id, read.updated_at)
    return read


def require_match(if_match: str | None, object_id: str, updated_at: datetime) -> None:
    """Pass when no ``If-Match`` was sent, or it names the current version (or ``*``)."""
    if if_match is None:
        return
    current = etag_of(object_id, updated_at)
    tags = [tag.strip().removeprefix("W/") for tag in if_match.split(",")]
    if "*" not in tags and current not in tags:
        raise PreconditionFailed(
            "The object changed since you read it (If-Match no longer matches its ETag); "
            "read it again and reapply your change."
        )
