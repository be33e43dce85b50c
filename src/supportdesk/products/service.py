from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from supportdesk.errors import NotFound
from supportdesk.kit.clock import utcnow
from supportdesk.kit.pagination import PageParams
from supportdesk.models import Product
from supportdesk.products.repository import ProductRepository
from supportdesk.products.schemas import ProductUpsert


class ProductService:
    def __init__(self, session: AsyncSession) -> None:
        self.products = ProductRepository(session)

    async def put_product(self, code: str, data: ProductUpsert) -> tuple[Product, bool]:
        """Create or replace the product ``code``; says whether it was created."""
        now = utcnow()
        product = await self.products.get_by_code(code)
        if product is None:
            product = Product(
                code=code,
                name=data.name,
                latest_version=data.latest_version,
                created_at=now,
                updated_at=now,
            )
            await self.products.add(product, conflict="The product was created concurrently.")
            return product, True
        product.name = data.name
        product.latest_version = data.latest_version
        product.updated_at = now
        await self.products.flush()
        return product, False

    async def get_product(self, code: str) -> Product:
        product = await self.products.get_by_code(code)
        if product is None:
            raise NotFound.of("product", code)
        return product

    async def list_products(self, params: PageParams) -> tuple[list[Product], str | None]:
        return await self.products.list_page(params)
