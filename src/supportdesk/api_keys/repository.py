from __future__ import annotations

from sqlalchemy import select

from supportdesk.kit.pagination import PageParams, fetch_page
from supportdesk.kit.repository import Repository
from supportdesk.models import ApiKey


class ApiKeyRepository(Repository):
    async def get_by_id(self, key_id: str) -> ApiKey | None:
        return await self.session.get(ApiKey, key_id)

    async def get_active_by_hash(self, key_hash: str) -> ApiKey | None:
        stmt = select(ApiKey).where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))
        return (await self.session.scalars(stmt)).one_or_none()

    async def list_page(self, params: PageParams) -> tuple[list[ApiKey], str | None]:
        return await fetch_page(self.session, select(ApiKey), ApiKey.id, params)
