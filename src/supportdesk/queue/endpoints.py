from __future__ import annotations

from typing import Annotated

from fastapi import Response

from supportdesk.errors import problem_responses
from supportdesk.kit.auth import Allowed, Permission, Principal, ReadConnectDep, SessionDep
from supportdesk.kit.pagination import Page, PageDep
from supportdesk.kit.routing import APIRouter
from supportdesk.kit.rules import RulesDep
from supportdesk.queue.schemas import TicketRead
from supportdesk.queue.service import QueueReader, QueueService
from supportdesk.tickets.views import answer, render, render_page

router = APIRouter(prefix="/api/v1/queue", tags=["queue"])

Worker = Annotated[Principal, Allowed(Permission.work_queue)]


@router.get(
    "",
    response_model=Page[TicketRead],
    name="queue_list",
    responses=problem_responses(401, 403, 422),
    description=(
        "Open tickets in working order: support group (the customer's standing now), "
        "severity, arrival, id."
    ),
)
async def read_queue(
    principal: Worker, connect: ReadConnectDep, rules: RulesDep, page: PageDep
) -> Response:
    views, next_cursor = await QueueReader(connect, rules, principal).list_queue(page)
    body = render_page([answer(t, view) for t, view in views], next_cursor)
    return Response(body, media_type="application/json")


@router.post(
    "/claim",
    response_model=TicketRead,
    name="queue_claim",
    responses={
        204: {"description": "Nothing waits in the queue."},
        **problem_responses(401, 403, 422),
    },
    description="Takes the first ticket of the queue for the caller; 204 when none waits.",
)
async def claim(principal: Worker, session: SessionDep, rules: RulesDep) -> Response:
    taken = await QueueService(session, rules, principal).claim_next()
    if taken is None:
        return Response(status_code=204)
    return Response(render(answer(*taken)), media_type="application/json")
