from __future__ import annotations

from typing import Annotated

from fastapi import Path

from supportdesk.errors import problem_responses
from supportdesk.kit.auth import Allowed, Permission, Principal, SessionDep
from supportdesk.kit.pagination import Page, PageDep
from supportdesk.kit.routing import APIRouter
from supportdesk.kit.rules import RulesDep
from supportdesk.notifications.schemas import NotificationRead
from supportdesk.notifications.service import NotificationService

router = APIRouter(prefix="/api/v1/tickets", tags=["notifications"])

Worker = Annotated[Principal, Allowed(Permission.work_queue)]


@router.get(
    "/{ticket_id}/notifications",
    response_model=Page[NotificationRead],
    name="tickets_notifications_list",
    responses=problem_responses(401, 403, 404, 422),
    description="The e-mails the customer was sent about this ticket, or was not (opted "
    "out, no address), oldest first, with how each went (agents and admins).",
)
async def list_ticket_notifications(
    ticket_id: Annotated[str, Path(max_length=255)],
    principal: Worker,
    session: SessionDep,
    rules: RulesDep,
    page: PageDep,
) -> Page[NotificationRead]:
    service = NotificationService(session, rules, scope=principal.customer_scope)
    rows, next_cursor = await service.list_for_ticket(ticket_id, page)
    return Page(
        items=[NotificationRead.model_validate(row) for row in rows], next_cursor=next_cursor
    )
