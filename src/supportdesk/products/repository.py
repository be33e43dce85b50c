from __future__ import annotations

from sqlalchemy import select

from supportdesk.kit.pagination import PageParams, fetch_page
from supportdesk.kit.repository import Repository
from supportdesk.models import Product


class ProductRepository(Repository):
    async def get_by_code(self, code: str) -> Product | None:
        return await self.session.get(Product, code)

    async def list_page(self, params: PageParams) -> tuple[list[Product], str | None]:
        return await fetch_page(self.session, select(Product), Product.code, params)
