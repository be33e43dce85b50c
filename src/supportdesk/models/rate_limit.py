from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from supportdesk.db import Base, Units, UTCDateTime


class RateLimitWindow(Base):
    """Requests counted against one limit (``bucket``: an API key, or a client address
    for failed authentication) in one fixed window, shared by every worker."""

    __tablename__ = "rate_limit_windows"

    bucket: Mapped[str] = mapped_column(String(120), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    hits: Mapped[int] = mapped_column(Units)
