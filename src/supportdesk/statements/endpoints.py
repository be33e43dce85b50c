from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import StreamingResponse

from supportdesk.errors import AppError, problem_responses
from supportdesk.kit.auth import Allowed, Permission, Principal, SessionDep
from supportdesk.kit.rules import RulesDep
from supportdesk.statements.render import RENDERERS, stream_statement
from supportdesk.statements.schemas import StatementRead
from supportdesk.statements.service import StatementService

router = APIRouter(tags=["statements"])

Reader = Annotated[Principal, Allowed(Permission.read)]
MEDIA_TYPES = {"application/json": "json", "text/csv": "csv", "application/pdf": "pdf"}


class NotAcceptable(AppError):
    status, slug, title = 406, "not-acceptable", "Not Acceptable"


def choose_format(accept: str | None, requested: str | None) -> str:
    """``?format=`` first, else the first acceptable of JSON, CSV and PDF (JSON for */*)."""
    if requested:
        return requested
    if not accept:
        return "json"
    ranked = []
    for position, part in enumerate(accept.split(",")):
        media, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        ranked.append((-quality, position, media.strip().lower()))
    for quality, _, media in sorted(ranked):
        if quality >= 0:
            continue
        if media in MEDIA_TYPES:
            return MEDIA_TYPES[media]
        if media in ("*/*", "application/*"):
            return "json"
        if media == "text/*":
            return "csv"
    raise NotAcceptable("Statements come as application/json, text/csv or application/pdf.")


@router.get(
    "/api/v1/customers/{customer_id}/statement",
    name="statements_get",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The statement, streamed.",
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/StatementRead"}},
                "text/csv": {"schema": {"type": "string"}},
                "application/pdf": {"schema": {"type": "string", "format": "binary"}},
            },
            "model": StatementRead,
        },
        **problem_responses(401, 403, 404, 406, 422),
    },
    description="Opening and closing balance, purchases, every billable session, what was "
    "covered by contract and the amount due at list price, for the dates `from` through "
    "`to` (inclusive, in the desk's time zone). `Accept: application/json` (default), "
    "`text/csv` or `application/pdf`; `?format=json|csv|pdf` does the same.",
)
async def get_statement(
    request: Request,
    customer_id: Annotated[str, Path(max_length=255)],
    start: Annotated[date, Query(alias="from")],
    end: Annotated[date, Query(alias="to")],
    principal: Reader,
    session: SessionDep,
    rules: RulesDep,
    # Not a documented parameter: OpenAPI says an `Accept` parameter "SHALL be ignored";
    # the 200 response's media types and the description say what may be asked for.
    accept: Annotated[str | None, Header(max_length=1000, include_in_schema=False)] = None,
    format: Annotated[str | None, Query(pattern="^(json|csv|pdf)$")] = None,
) -> StreamingResponse:
    chosen = choose_format(accept, format)
    service = StatementService(session, rules, scope=principal.customer_scope)
    header = await service.issue_statement(customer_id, start, end)
    renderer = RENDERERS[chosen](rules.calendar.time_zone)
    filename = f"statement-{customer_id}-{start}-{end}.{renderer.extension}"
    return StreamingResponse(
        stream_statement(request.app.state.sessionmaker, rules, header, renderer),
        media_type=renderer.media_type,
        headers={"Content-Disposition": f'inline; filename="{filename}"'},
    )
