from __future__ import annotations

from typing import Annotated

from fastapi import Body, Path, Query, Response

from supportdesk.errors import Forbidden, problem_responses
from supportdesk.kit.auth import Allowed, AllowedAny, Permission, Principal, SessionDep
from supportdesk.kit.pagination import Page, PageDep
from supportdesk.kit.routing import APIRouter
from supportdesk.kit.rules import RulesDep
from supportdesk.kit.schemas import Instant, json_answer
from supportdesk.ledger.schemas import (
    DebitCreate,
    LedgerEntryCreate,
    LedgerEntryRead,
    LedgerRead,
    PurchaseCreate,
    entry_read,
)
from supportdesk.ledger.service import LedgerService

router = APIRouter(prefix="/api/v1/customers/{customer_id}/ledger", tags=["ledger"])

Reader = Annotated[Principal, Allowed(Permission.read_units)]
Bookkeeper = Annotated[Principal, AllowedAny(Permission.buy_units, Permission.debit_units)]
CustomerId = Annotated[str, Path(max_length=255)]
EntryId = Annotated[str, Path(max_length=255)]


@router.get(
    "",
    response_model=LedgerRead,
    name="ledger_get",
    responses=problem_responses(401, 403, 404, 422),
)
async def get_ledger(
    customer_id: CustomerId,
    principal: Reader,
    session: SessionDep,
    rules: RulesDep,
    as_of: Annotated[
        Instant | None, Query(description="The balance at this past instant (RFC 3339).")
    ] = None,
) -> LedgerRead:
    service = LedgerService(session, rules, scope=principal.customer_scope)
    balance = await service.get_balance(customer_id, as_of)
    return LedgerRead(
        customer_id=balance.customer_id,
        balance=balance.balance,
        warning_threshold=balance.warning_threshold,
        warning_levels=list(balance.warning_levels),
        low=balance.low,
        as_of=balance.as_of,
    )


@router.get(
    "/entries",
    response_model=Page[LedgerEntryRead],
    name="ledger_entries_list",
    responses=problem_responses(401, 403, 404, 422),
)
async def list_entries(
    customer_id: CustomerId, principal: Reader, session: SessionDep, rules: RulesDep, page: PageDep
) -> Page[LedgerEntryRead]:
    service = LedgerService(session, rules, scope=principal.customer_scope)
    rows, next_cursor = await service.list_entries(customer_id, page)
    return Page(items=[entry_read(e) for e in rows], next_cursor=next_cursor)


@router.get(
    "/entries/{entry_id}",
    response_model=LedgerEntryRead,
    name="ledger_entries_get",
    responses=problem_responses(401, 403, 404, 422),
)
async def get_entry(
    customer_id: CustomerId,
    entry_id: EntryId,
    principal: Reader,
    session: SessionDep,
    rules: RulesDep,
) -> LedgerEntryRead:
    service = LedgerService(session, rules, scope=principal.customer_scope)
    return entry_read(await service.get_entry(customer_id, entry_id))


@router.post(
    "/entries",
    status_code=201,
    response_model=LedgerEntryRead,
    name="ledger_entries_create",
    responses=problem_responses(401, 403, 404, 409, 422),
    description=(
        "`purchase` (admin, integration): a package priced from the tiered price list. "
        "`debit` (admin, agent): taken from the balance as far as it goes, the rest billed "
        "at list price. `reversal` (admin, agent): undoes one entry, once."
    ),
)
async def create_entry(
    customer_id: CustomerId,
    body: Annotated[LedgerEntryCreate, Body()],
    principal: Bookkeeper,
    session: SessionDep,
    rules: RulesDep,
) -> Response:
    needed = Permission.buy_units if isinstance(body, PurchaseCreate) else Permission.debit_units
    if not principal.may(needed):
        raise Forbidden(f"The role {principal.role.value!r} may not {needed.value}.")
    service = LedgerService(session, rules, scope=principal.customer_scope, actor=principal.key_id)
    if isinstance(body, PurchaseCreate):
        recorded = await service.buy_units(customer_id, body.units, body.reference)
    elif isinstance(body, DebitCreate):
        recorded = await service.debit_units(customer_id, body.units, body.reference)
    else:
        reversal = await service.reverse_entry(customer_id, body.reverses, body.reference)
        return json_answer(entry_read(reversal), 201)
    return json_answer(recorded.read, 201)
