from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Query

from supportdesk.audit.schemas import AuditRead
from supportdesk.audit.service import AuditService
from supportdesk.errors import problem_responses
from supportdesk.kit.auth import Allowed, Permission, Principal, SessionDep
from supportdesk.kit.pagination import Page, PageDep
from supportdesk.kit.routing import APIRouter

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])

Auditor = Annotated[Principal, Allowed(Permission.read_audit)]
ObjectType = Literal["ticket", "contract", "ledger_entry", "api_key", "webhook", "customer"]


@router.get(
    "",
    response_model=Page[AuditRead],
    name="audit_list",
    responses=problem_responses(401, 403, 422),
    description="The changes to tickets, contracts, the ledger, API keys, webhooks and "
    "customers, with the acting key; secrets never appear.",
)
async def read_audit(
    _: Auditor,
    session: SessionDep,
    page: PageDep,
    object_type: ObjectType | None = None,
    object_id: Annotated[str | None, Query(max_length=255)] = None,
) -> Page[AuditRead]:
    rows, next_cursor = await AuditService(session).read_trail(object_type, object_id, page)
    return Page(items=[AuditRead.model_validate(r) for r in rows], next_cursor=next_cursor)
