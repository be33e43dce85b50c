from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from supportdesk.api_keys.repository import ApiKeyRepository
from supportdesk.api_keys.schemas import ApiKeyCreate
from supportdesk.customers.repository import CustomerRepository
from supportdesk.errors import NotFound
from supportdesk.kit.auth import generate_key, principals
from supportdesk.kit.clock import utcnow
from supportdesk.kit.ids import new_id
from supportdesk.kit.pagination import PageParams
from supportdesk.models import ApiKey


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    secret: str


class ApiKeyService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.keys = ApiKeyRepository(session)
        self.customers = CustomerRepository(session)

    async def issue_key(self, data: ApiKeyCreate, *, issued_by: str | None) -> IssuedKey:
        """Create a key; the secret is returned here and nowhere else, ever."""
        if (
            data.customer_id is not None
            and await self.customers.get_by_id(data.customer_id) is None
        ):
            raise NotFound.of("customer", data.customer_id)
        new = generate_key()
        key = ApiKey(
            id=new_id("key"),
            name=data.name,
            role=data.role.value,
            customer_id=data.customer_id,
            prefix=new.prefix,
            key_hash=new.key_hash,
            created_by=issued_by,
            created_at=utcnow(),
        )
        await self.keys.add(key)
        return IssuedKey(key=key, secret=new.secret)

    async def get_key(self, key_id: str) -> ApiKey:
        key = await self.keys.get_by_id(key_id)
        if key is None:
            raise NotFound.of("API key", key_id)
        return key

    async def list_keys(self, params: PageParams) -> tuple[list[ApiKey], str | None]:
        return await self.keys.list_page(params)

    async def revoke_key(self, key_id: str) -> ApiKey:
        """Revoke a key at once; revoking a revoked key changes nothing."""
        key = await self.get_key(key_id)
        if key.revoked_at is None:
            key.revoked_at = utcnow()
            await self.keys.flush()
        principals.forget_on_commit(self.session, key.id)
        return key
