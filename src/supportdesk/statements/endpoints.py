from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import Body, Header, Path, Query, Request, Response
from fastapi.responses import StreamingResponse

from supportdesk.config import BusinessRules
from supportdesk.errors import AppError, problem_responses
from supportdesk.kit.auth import Allowed, Permission, Principal, SessionDep
from supportdesk.kit.pagination import Page, PageDep
from supportdesk.kit.routing import APIRouter
from supportdesk.kit.rules import RulesDep
from supportdesk.statements.render import RENDERERS, stream_statement
from supportdesk.statements.schemas import (
    IssuedStatementRead,
    StatementIssue,
    StatementIssuedRead,
    StatementRead,
    statement_issued_read,
    statement_location,
)
from supportdesk.statements.service import StatementHeader, StatementService, issued_header

router = APIRouter(tags=["statements"])

Reader = Annotated[Principal, Allowed(Permission.read)]
Issuer = Annotated[Principal, Allowed(Permission.issue_statements)]
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
    description="A preview: opening and closing balance, purchases, every billable session, "
    "what was covered by contract and the amount due at list price, for the dates `from` "
    "through `to` (inclusive, in the desk's time zone), as they are now. Safe: nothing is "
    "issued, recorded or sent (`POST /api/v1/customers/{customer_id}/statements` issues). "
    "`Accept: application/json` (default), `text/csv` or `application/pdf`; "
    "`?format=json|csv|pdf` does the same.",
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
    header = await service.preview_statement(customer_id, start, end)
    return _streamed(request, rules, header, chosen, f"statement-{customer_id}-{start}-{end}")


def _streamed(
    request: Request, rules: BusinessRules, header: StatementHeader, chosen: str, name: str
) -> StreamingResponse:
    renderer = RENDERERS[chosen](rules.calendar.time_zone)
    filename = f"{name}.{renderer.extension}"
    return StreamingResponse(
        stream_statement(request.app.state.sessionmaker, rules, header, renderer),
        media_type=renderer.media_type,
        headers={"Content-Disposition": f'inline; filename="{filename}"'},
    )


@router.post(
    "/api/v1/customers/{customer_id}/statements",
    status_code=201,
    response_model=StatementIssuedRead,
    name="statements_issue",
    responses={
        201: {
            "description": "Issued.",
            "headers": {
                "Location": {
                    "description": "Where the issued statement is read.",
                    "schema": {"type": "string"},
                }
            },
        },
        409: {
            **problem_responses(409)[409],
            "description": "The period was issued before: `Location` (and `location`, "
            "`statement_id` in the body) name the statement issued then.",
            "headers": {
                "Location": {
                    "description": "The statement issued before.",
                    "schema": {"type": "string"},
                }
            },
        },
        **problem_responses(401, 403, 404, 422),
    },
    description="Issue the customer's statement for the dates `from` through `to` "
    "(inclusive, in the desk's time zone): its totals and lines are frozen as they are now, "
    "it gets a number, and `statement.issued` goes out (webhooks, and the PDF by e-mail to "
    "the billing contact). A period is issued once.",
)
async def issue_statement(
    customer_id: Annotated[str, Path(max_length=255)],
    body: Annotated[StatementIssue, Body()],
    principal: Issuer,
    session: SessionDep,
    rules: RulesDep,
    response: Response,
) -> StatementIssuedRead:
    service = StatementService(
        session, rules, scope=principal.customer_scope, actor=principal.key_id
    )
    statement = await service.issue_statement(customer_id, body.from_, body.to)
    response.headers["Location"] = statement_location(statement.id)
    return statement_issued_read(statement)


@router.get(
    "/api/v1/customers/{customer_id}/statements",
    response_model=Page[StatementIssuedRead],
    name="statements_list",
    responses=problem_responses(401, 403, 404, 422),
    description="The customer's issued statements, newest first.",
)
async def list_statements(
    customer_id: Annotated[str, Path(max_length=255)],
    principal: Reader,
    session: SessionDep,
    rules: RulesDep,
    page: PageDep,
) -> Page[StatementIssuedRead]:
    service = StatementService(session, rules, scope=principal.customer_scope)
    rows, next_cursor = await service.list_issued(customer_id, page)
    return Page(items=[statement_issued_read(row) for row in rows], next_cursor=next_cursor)


@router.get(
    "/api/v1/statements/{statement_id}",
    name="statements_get_issued",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The statement exactly as it was issued, streamed.",
            "content": {
                "application/json": {
                    "schema": {"$ref": "#/components/schemas/IssuedStatementRead"}
                },
                "text/csv": {"schema": {"type": "string"}},
                "application/pdf": {"schema": {"type": "string", "format": "binary"}},
            },
            "model": IssuedStatementRead,
        },
        **problem_responses(401, 403, 404, 406, 422),
    },
    description="An issued statement, frozen: later ledger entries and corrections do not "
    "change it. `Accept: application/json` (default), `text/csv` or `application/pdf`; "
    "`?format=json|csv|pdf` does the same.",
)
async def get_issued_statement(
    request: Request,
    statement_id: Annotated[str, Path(max_length=255)],
    principal: Reader,
    session: SessionDep,
    rules: RulesDep,
    accept: Annotated[str | None, Header(max_length=1000, include_in_schema=False)] = None,
    format: Annotated[str | None, Query(pattern="^(json|csv|pdf)$")] = None,
) -> StreamingResponse:
    chosen = choose_format(accept, format)
    service = StatementService(session, rules, scope=principal.customer_scope)
    header = issued_header(await service.get_issued(statement_id))
    return _streamed(request, rules, header, chosen, f"statement-{header.number}")
