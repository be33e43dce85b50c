from __future__ import annotations

from typing import Annotated

from fastapi import Header, Path, Query, Response

from supportdesk.contracts.schemas import (
    ContractCreate,
    ContractRead,
    ContractUpdate,
    contract_read,
)
from supportdesk.contracts.service import ContractService, ContractView
from supportdesk.errors import problem_responses
from supportdesk.kit.auth import Allowed, Permission, Principal, SessionDep
from supportdesk.kit.etag import tagged
from supportdesk.kit.pagination import Page, PageDep
from supportdesk.kit.routing import APIRouter
from supportdesk.kit.rules import RulesDep

router = APIRouter(tags=["contracts"])

Reader = Annotated[Principal, Allowed(Permission.read)]
Writer = Annotated[Principal, Allowed(Permission.write_contracts)]
ContractId = Annotated[str, Path(max_length=255)]
CustomerId = Annotated[str, Path(max_length=255)]


def _read(view: ContractView) -> ContractRead:
    return contract_read(view.contract, view.active)


@router.post(
    "/api/v1/contracts",
    status_code=201,
    response_model=ContractRead,
    name="contracts_create",
    responses=problem_responses(401, 403, 404, 422),
)
async def create_contract(
    body: ContractCreate, _: Writer, session: SessionDep, rules: RulesDep
) -> ContractRead:
    return _read(await ContractService(session, rules).add_contract(body))


@router.get(
    "/api/v1/contracts",
    response_model=Page[ContractRead],
    name="contracts_list",
    responses=problem_responses(401, 403, 404, 422),
)
async def list_contracts(
    principal: Reader,
    session: SessionDep,
    rules: RulesDep,
    page: PageDep,
    customer_id: Annotated[str | None, Query(max_length=255)] = None,
) -> Page[ContractRead]:
    service = ContractService(session, rules, scope=principal.customer_scope)
    rows, next_cursor = await service.list_contracts(page, customer_id=customer_id)
    return Page(items=[_read(v) for v in rows], next_cursor=next_cursor)


@router.get(
    "/api/v1/contracts/{contract_id}",
    response_model=ContractRead,
    name="contracts_get",
    responses=problem_responses(401, 403, 404, 422),
)
async def get_contract(
    contract_id: ContractId,
    principal: Reader,
    session: SessionDep,
    rules: RulesDep,
    response: Response,
) -> ContractRead:
    service = ContractService(session, rules, scope=principal.customer_scope)
    return tagged(_read(await service.get_contract(contract_id)), response)


@router.patch(
    "/api/v1/contracts/{contract_id}",
    response_model=ContractRead,
    name="contracts_update",
    responses=problem_responses(401, 403, 404, 412, 422),
)
async def update_contract(
    contract_id: ContractId,
    body: ContractUpdate,
    _: Writer,
    session: SessionDep,
    rules: RulesDep,
    response: Response,
    if_match: Annotated[
        str | None, Header(max_length=500, description="ETag from a read; a stale one is 412.")
    ] = None,
) -> ContractRead:
    service = ContractService(session, rules)
    return tagged(
        _read(await service.change_contract(contract_id, body, if_match=if_match)), response
    )


@router.get(
    "/api/v1/customers/{customer_id}/contracts",
    response_model=Page[ContractRead],
    name="customers_contracts_list",
    responses=problem_responses(401, 403, 404, 422),
)
async def list_customer_contracts(
    customer_id: CustomerId, principal: Reader, session: SessionDep, rules: RulesDep, page: PageDep
) -> Page[ContractRead]:
    service = ContractService(session, rules, scope=principal.customer_scope)
    rows, next_cursor = await service.list_contracts(page, customer_id=customer_id)
    return Page(items=[_read(v) for v in rows], next_cursor=next_cursor)
