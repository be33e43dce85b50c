from __future__ import annotations

from typing import Annotated

from fastapi import Path, Response

from supportdesk.errors import problem_responses
from supportdesk.kit.auth import Allowed, Permission, Principal, SessionDep
from supportdesk.kit.pagination import Page, PageDep
from supportdesk.kit.routing import APIRouter
from supportdesk.products.schemas import PRODUCT_CODE_PATTERN, ProductRead, ProductUpsert
from supportdesk.products.service import ProductService

router = APIRouter(prefix="/api/v1/products", tags=["products"])

Reader = Annotated[Principal, Allowed(Permission.read)]
Writer = Annotated[Principal, Allowed(Permission.write_contracts)]
Code = Annotated[str, Path(pattern=PRODUCT_CODE_PATTERN, examples=["backup-addon"])]


@router.put(
    "/{code}",
    response_model=ProductRead,
    name="products_put",
    responses={
        201: {"model": ProductRead, "description": "Created"},
        **problem_responses(401, 403, 422),
    },
)
async def put_product(
    code: Code, body: ProductUpsert, _: Writer, session: SessionDep, response: Response
) -> ProductRead:
    product, created = await ProductService(session).put_product(code, body)
    response.status_code = 201 if created else 200
    return ProductRead.model_validate(product)


@router.get(
    "",
    response_model=Page[ProductRead],
    name="products_list",
    responses=problem_responses(401, 403, 422),
)
async def list_products(_: Reader, session: SessionDep, page: PageDep) -> Page[ProductRead]:
    rows, next_cursor = await ProductService(session).list_products(page)
    return Page(items=[ProductRead.model_validate(p) for p in rows], next_cursor=next_cursor)


@router.get(
    "/{code}",
    response_model=ProductRead,
    name="products_get",
    responses=problem_responses(401, 403, 404, 422),
)
async def get_product(code: Code, _: Reader, session: SessionDep) -> ProductRead:
    return ProductRead.model_validate(await ProductService(session).get_product(code))
