from __future__ import annotations

from sqlalchemy import select

from supportdesk.kit.pagination import PageParams, fetch_page
from supportdesk.kit.repository import Repository
from supportdesk.models import AuditEntry


class AuditRepository(Repository):
    async def list_for_object(
        self, object_type: str | None, object_id: str | None, params: PageParams
    ) -> tuple[list[AuditEntry], str | None]:
        stmt = select(AuditEntry)
        if object_type is not None:
            stmt = stmt.where(AuditEntry.object_type == object_type)
        if object_id is not None:
            stmt = stmt.where(AuditEntry.object_id == object_id)
        return await fetch_page(self.session, stmt, AuditEntry.id, params)
