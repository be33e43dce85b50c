from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from supportdesk.kit.pagination import PageParams, fetch_page
from supportdesk.kit.repository import Repository
from supportdesk.models import Contract


class ContractRepository(Repository):
    def __init__(self, session: AsyncSession, scope: str | None = None) -> None:
        super().__init__(session)
        self.scope = scope

    def _base(self) -> Select[Contract]:
        stmt = select(Contract)
        if self.scope is not None:
            stmt = stmt.where(Contract.customer_id == self.scope)
        return stmt

    async def get_by_id(self, contract_id: str, *, for_update: bool = False) -> Contract | None:
        stmt = self._base().where(Contract.id == contract_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.scalars(stmt)).one_or_none()

    async def list_page(
        self, params: PageParams, *, customer_id: str | None = None
    ) -> tuple[list[Contract], str | None]:
        stmt = self._base()
        if customer_id is not None:
            stmt = stmt.where(Contract.customer_id == customer_id)
        return await fetch_page(self.session, stmt, Contract.id, params)

    async def list_for_customers(self, customer_ids: Iterable[str]) -> dict[str, list[Contract]]:
        ids = list(set(customer_ids))
        found: dict[str, list[Contract]] = defaultdict(list)
        if not ids:
            return found
        stmt = select(Contract).where(Contract.customer_id.in_(ids))
        for contract in (await self.session.scalars(stmt)).all():
            found[contract.customer_id].append(contract)
        return found
