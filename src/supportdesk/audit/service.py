from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from supportdesk.audit.repository import AuditRepository
from supportdesk.kit.pagination import PageParams
from supportdesk.models import AuditEntry


class AuditService:
    def __init__(self, session: AsyncSession) -> None:
        self.audit = AuditRepository(session)

    async def read_trail(
        self, object_type: str | None, object_id: str | None, params: PageParams
    ) -> tuple[list[AuditEntry], str | None]:
        """Who changed what on an object, oldest first."""
        return await self.audit.list_for_object(object_type, object_id, params)
