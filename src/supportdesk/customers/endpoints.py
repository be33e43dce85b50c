from __future__ import annotations

from typing import Annotated

from fastapi import Header, Path, Query, Response

from supportdesk.customers.schemas import (
    ContactCreate,
    ContactRead,
    CustomerCreate,
    CustomerRead,
    CustomerUpdate,
)
from supportdesk.customers.service import CustomerService, CustomerStanding
from supportdesk.errors import problem_responses
from supportdesk.kit.auth import Allowed, Permission, Principal, SessionDep
from supportdesk.kit.etag import tagged
from supportdesk.kit.pagination import Page, PageDep
from supportdesk.kit.routing import APIRouter
from supportdesk.kit.rules import RulesDep

router = APIRouter(prefix="/api/v1/customers", tags=["customers"])

Reader = Annotated[Principal, Allowed(Permission.read)]
Writer = Annotated[Principal, Allowed(Permission.write_customers)]
CustomerId = Annotated[str, Path(max_length=255)]
ContactId = Annotated[str, Path(max_length=255)]


def _read(standing: CustomerStanding) -> CustomerRead:
    customer = standing.customer
    return CustomerRead(
        id=customer.id,
        name=customer.name,
        external_ref=customer.external_ref,
        support_group=standing.support_group,
        unit_balance=customer.unit_balance,
        unit_warning_levels=list(standing.warning_levels),
        language=customer.language,
        billing_contact_id=customer.billing_contact_id,
        notification_opt_outs=list(customer.notification_opt_outs or []),
        created_at=customer.created_at,
        updated_at=customer.updated_at,
    )


@router.post(
    "",
    status_code=201,
    response_model=CustomerRead,
    name="customers_create",
    responses=problem_responses(401, 403, 409, 422),
)
async def create_customer(
    body: CustomerCreate, _: Writer, session: SessionDep, rules: RulesDep
) -> CustomerRead:
    return _read(await CustomerService(session, rules).register_customer(body))


@router.get(
    "",
    response_model=Page[CustomerRead],
    name="customers_list",
    responses=problem_responses(401, 403, 422),
)
async def list_customers(
    principal: Reader,
    session: SessionDep,
    rules: RulesDep,
    page: PageDep,
    external_ref: Annotated[str | None, Query(max_length=200)] = None,
) -> Page[CustomerRead]:
    service = CustomerService(session, rules, scope=principal.customer_scope)
    rows, next_cursor = await service.list_customers(page, external_ref=external_ref)
    return Page(items=[_read(r) for r in rows], next_cursor=next_cursor)


@router.get(
    "/{customer_id}",
    response_model=CustomerRead,
    name="customers_get",
    responses=problem_responses(401, 403, 404, 422),
)
async def get_customer(
    customer_id: CustomerId,
    principal: Reader,
    session: SessionDep,
    rules: RulesDep,
    response: Response,
) -> CustomerRead:
    service = CustomerService(session, rules, scope=principal.customer_scope)
    return tagged(_read(await service.get_customer(customer_id)), response)


@router.patch(
    "/{customer_id}",
    response_model=CustomerRead,
    name="customers_update",
    responses=problem_responses(401, 403, 404, 409, 412, 422),
)
async def update_customer(
    customer_id: CustomerId,
    body: CustomerUpdate,
    _: Writer,
    session: SessionDep,
    rules: RulesDep,
    response: Response,
    if_match: Annotated[
        str | None, Header(max_length=500, description="ETag from a read; a stale one is 412.")
    ] = None,
) -> CustomerRead:
    service = CustomerService(session, rules)
    return tagged(
        _read(await service.update_customer(customer_id, body, if_match=if_match)), response
    )


@router.post(
    "/{customer_id}/contacts",
    status_code=201,
    response_model=ContactRead,
    name="contacts_create",
    responses=problem_responses(401, 403, 404, 422),
)
async def create_contact(
    customer_id: CustomerId, body: ContactCreate, _: Writer, session: SessionDep, rules: RulesDep
) -> ContactRead:
    return ContactRead.model_validate(
        await CustomerService(session, rules).add_contact(customer_id, body)
    )


@router.get(
    "/{customer_id}/contacts",
    response_model=Page[ContactRead],
    name="contacts_list",
    responses=problem_responses(401, 403, 404, 422),
)
async def list_contacts(
    customer_id: CustomerId, principal: Reader, session: SessionDep, rules: RulesDep, page: PageDep
) -> Page[ContactRead]:
    service = CustomerService(session, rules, scope=principal.customer_scope)
    rows, next_cursor = await service.list_contacts(customer_id, page)
    return Page(items=[ContactRead.model_validate(c) for c in rows], next_cursor=next_cursor)


@router.get(
    "/{customer_id}/contacts/{contact_id}",
    response_model=ContactRead,
    name="contacts_get",
    responses=problem_responses(401, 403, 404, 422),
)
async def get_contact(
    customer_id: CustomerId,
    contact_id: ContactId,
    principal: Reader,
    session: SessionDep,
    rules: RulesDep,
) -> ContactRead:
    service = CustomerService(session, rules, scope=principal.customer_scope)
    return ContactRead.model_validate(await service.get_contact(customer_id, contact_id))
