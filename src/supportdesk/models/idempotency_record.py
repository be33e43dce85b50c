from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from supportdesk.db import Base, UTCDateTime


class IdempotencyRecord(Base):
    """The first answer to a POST carrying an ``Idempotency-Key``, for replaying it.

    ``scope`` is the SHA-256 of the caller's credentials, so two API keys never share
    an idempotency key space. ``state`` is ``running`` while the first request is in
    flight (a lease until ``locked_until``) and ``done`` once its response is stored,
    in the same transaction as the request's own changes.
    """

    __tablename__ = "idempotency_records"
    __table_args__ = (Index("ix_idempotency_records_expires_at", "expires_at"),)

    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    # Fences a claim: only the request holding this token may store the answer.
    token: Mapped[str] = mapped_column(String(32), server_default="")
    state: Mapped[str] = mapped_column(String(10))
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_headers: Mapped[str | None] = mapped_column(Text)
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    locked_until: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
