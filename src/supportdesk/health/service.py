from __future__ import annotations

import logging

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from supportdesk.errors import ServiceUnavailable
from supportdesk.health.repository import HealthRepository

logger = logging.getLogger("supportdesk.health")


class HealthService:
    def __init__(self, session: AsyncSession) -> None:
        self.health = HealthRepository(session)

    async def check_ready(self) -> None:
        """Ready means the database answers a query."""
        try:
            await self.health.ping()
        except (SQLAlchemyError, OSError) as exc:
            logger.warning("readiness check failed: %s", exc)
            raise ServiceUnavailable("The database is not reachable.") from exc
