from __future__ import annotations

from sqlalchemy import text

from supportdesk.kit.repository import Repository


class HealthRepository(Repository):
    async def ping(self) -> None:
        await self.session.execute(text("SELECT 1"))
