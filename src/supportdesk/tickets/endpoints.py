from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Body, Header, Path, Query, Request, Response
from fastapi.responses import FileResponse

from supportdesk.domain.groups import Severity
from supportdesk.domain.tickets import TicketCategory, TicketStatus
from supportdesk.errors import Forbidden, InvalidInput, problem_responses
from supportdesk.kit.auth import Allowed, Permission, Principal, ReadConnectDep, SessionDep
from supportdesk.kit.etag import etag_of
from supportdesk.kit.guard import takes_upload
from supportdesk.kit.pagination import Page, PageDep
from supportdesk.kit.routing import APIRouter
from supportdesk.kit.rules import RulesDep, SettingsDep
from supportdesk.kit.uploads import receive_multipart
from supportdesk.tickets.schemas import (
    AttachmentKind,
    AttachmentRead,
    CommentCreate,
    CommentRead,
    DongleReturn,
    EscalationCreate,
    EscalationRead,
    TicketCreate,
    TicketRead,
    TicketUpdate,
    TransitionCreate,
    escalation_read,
)
from supportdesk.tickets.service import (
    INERT_TYPES,
    TicketReader,
    TicketService,
    safe_filename,
    served_type,
)
from supportdesk.tickets.views import answer, render, render_page

router = APIRouter(prefix="/api/v1/tickets", tags=["tickets"])

# The hot reads answer with bytes serialized once (``tickets.views``); their
# ``response_model`` still documents them.
JSON = "application/json"

Reader = Annotated[Principal, Allowed(Permission.read)]
Writer = Annotated[Principal, Allowed(Permission.write_tickets)]
Worker = Annotated[Principal, Allowed(Permission.work_queue)]
Commenter = Annotated[Principal, Allowed(Permission.comment)]
TicketId = Annotated[str, Path(max_length=255)]
AttachmentId = Annotated[str, Path(max_length=255)]

ATTACHMENT_FORM: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "kind"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "kind": {
                            "type": "string",
                            "enum": ["screenshot", "database_backup", "log", "document"],
                        },
                    },
                }
            }
        },
    }
}


@router.post(
    "",
    status_code=201,
    response_model=TicketRead,
    name="tickets_create",
    responses=problem_responses(401, 403, 404, 422),
)
async def create_ticket(
    body: TicketCreate, principal: Writer, session: SessionDep, rules: RulesDep
) -> Response:
    t, view = await TicketService(session, rules, principal=principal).open_ticket(body)
    return Response(render(answer(t, view)), status_code=201, media_type=JSON)


@router.get(
    "",
    response_model=Page[TicketRead],
    name="tickets_list",
    responses=problem_responses(401, 403, 404, 422),
)
async def list_tickets(
    principal: Reader,
    connect: ReadConnectDep,
    rules: RulesDep,
    page: PageDep,
    status: TicketStatus | None = None,
    customer_id: Annotated[str | None, Query(max_length=255)] = None,
    category: TicketCategory | None = None,
    severity: Severity | None = None,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            description="Words in subject, description, steps, environment or comments.",
        ),
    ] = None,
) -> Response:
    views, next_cursor = await TicketReader(connect, rules, principal).list_tickets(
        page, status=status, customer_id=customer_id, category=category, severity=severity, q=q
    )
    body = render_page([answer(t, view) for t, view in views], next_cursor)
    return Response(body, media_type=JSON)


@router.get(
    "/{ticket_id}",
    response_model=TicketRead,
    name="tickets_get",
    responses=problem_responses(401, 403, 404, 422),
)
async def get_ticket(
    ticket_id: TicketId, principal: Reader, connect: ReadConnectDep, rules: RulesDep
) -> Response:
    t, view = await TicketReader(connect, rules, principal).get_ticket(ticket_id)
    headers = {"ETag": etag_of(t.id, t.updated_at)}
    return Response(render(answer(t, view)), media_type=JSON, headers=headers)


@router.patch(
    "/{ticket_id}",
    response_model=TicketRead,
    name="tickets_update",
    responses=problem_responses(401, 403, 404, 412, 422),
)
async def update_ticket(
    ticket_id: TicketId,
    body: TicketUpdate,
    principal: Writer,
    session: SessionDep,
    rules: RulesDep,
    if_match: Annotated[
        str | None, Header(max_length=500, description="ETag from a read; a stale one is 412.")
    ] = None,
) -> Response:
    service = TicketService(session, rules, principal=principal)
    t, view = await service.update_ticket(ticket_id, body, if_match=if_match)
    headers = {"ETag": etag_of(t.id, t.updated_at)}
    return Response(render(answer(t, view)), media_type=JSON, headers=headers)


@router.post(
    "/{ticket_id}/transitions",
    response_model=TicketRead,
    name="tickets_transition",
    responses=problem_responses(401, 403, 404, 409, 422),
    description="Moves the ticket; an illegal move is 409 with the allowed moves in `allowed`.",
)
async def transition_ticket(
    ticket_id: TicketId,
    body: TransitionCreate,
    principal: Worker,
    session: SessionDep,
    rules: RulesDep,
) -> Response:
    service = TicketService(session, rules, principal=principal)
    t, view = await service.move_ticket(ticket_id, body.to, body.note)
    return Response(render(answer(t, view)), media_type=JSON)


@router.post(
    "/{ticket_id}/comments",
    status_code=201,
    response_model=CommentRead,
    name="tickets_comments_create",
    responses=problem_responses(401, 403, 404, 422),
)
async def create_comment(
    ticket_id: TicketId,
    body: CommentCreate,
    principal: Commenter,
    session: SessionDep,
    rules: RulesDep,
) -> Response:
    if body.internal and principal.customer_scope is not None:
        raise Forbidden("A customer cannot write internal comments.")
    service = TicketService(session, rules, principal=principal)
    comment = await service.add_comment(ticket_id, body)
    return Response(render(comment), status_code=201, media_type=JSON)


@router.get(
    "/{ticket_id}/comments",
    response_model=Page[CommentRead],
    name="tickets_comments_list",
    responses=problem_responses(401, 403, 404, 422),
)
async def list_comments(
    ticket_id: TicketId, principal: Reader, session: SessionDep, rules: RulesDep, page: PageDep
) -> Page[CommentRead]:
    service = TicketService(session, rules, principal=principal)
    rows, next_cursor = await service.list_comments(ticket_id, page)
    return Page(items=[CommentRead.model_validate(c) for c in rows], next_cursor=next_cursor)


@router.post(
    "/{ticket_id}/escalations",
    status_code=201,
    response_model=EscalationRead,
    name="tickets_escalations_create",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def create_escalation(
    ticket_id: TicketId,
    body: EscalationCreate,
    principal: Worker,
    session: SessionDep,
    rules: RulesDep,
) -> EscalationRead:
    service = TicketService(session, rules, principal=principal)
    escalation, _ = await service.escalate(ticket_id, body)
    return escalation_read(escalation, rules)


@router.get(
    "/{ticket_id}/escalations",
    response_model=Page[EscalationRead],
    name="tickets_escalations_list",
    responses=problem_responses(401, 403, 404, 422),
)
async def list_escalations(
    ticket_id: TicketId, principal: Reader, session: SessionDep, rules: RulesDep, page: PageDep
) -> Page[EscalationRead]:
    service = TicketService(session, rules, principal=principal)
    rows, next_cursor = await service.list_escalations(ticket_id, page)
    return Page(items=[escalation_read(e, rules) for e in rows], next_cursor=next_cursor)


@router.post(
    "/{ticket_id}/dongle-return",
    response_model=TicketRead,
    name="tickets_dongle_return",
    responses=problem_responses(401, 403, 404, 422),
)
async def record_dongle_return(
    ticket_id: TicketId,
    principal: Worker,
    session: SessionDep,
    rules: RulesDep,
    body: Annotated[DongleReturn | None, Body()] = None,
) -> Response:
    service = TicketService(session, rules, principal=principal)
    received_at = body.received_at if body else None
    t, view = await service.record_dongle_return(ticket_id, received_at)
    return Response(render(answer(t, view)), media_type=JSON)


async def _prepare_attachment(request: Request, principal: Principal) -> int:
    """Before the file streams: the caller may attach to the ticket, and how big it may be."""
    state = request.app.state
    async with state.sessionmaker() as session:
        service = TicketService(session, state.rules, principal=principal, settings=state.settings)
        return await service.prepare_upload(
            request.path_params["ticket_id"], request.query_params.get("kind")
        )


@router.post(
    "/{ticket_id}/attachments",
    status_code=201,
    response_model=AttachmentRead,
    name="tickets_attachments_create",
    responses=problem_responses(401, 403, 404, 413, 422),
    openapi_extra=ATTACHMENT_FORM,
    description="Multipart `file` and `kind`; the file is streamed to disk, never held in "
    "memory. The caller's access to the ticket is checked before the file streams. Send "
    "the kind first - as `?kind=` or as the `kind` field before the file - and its own "
    "limit applies while streaming (413 at the first byte past it); otherwise the largest "
    "kind's limit applies while streaming and the kind's own once the file is in. The "
    "customer's attachment quota (`SUPPORTDESK_ATTACHMENT_QUOTA_BYTES`) is checked before "
    "and after (413). A body that ends before its closing boundary is 422.",
)
@takes_upload(_prepare_attachment)
async def upload_attachment(
    ticket_id: TicketId,
    request: Request,
    principal: Writer,
    session: SessionDep,
    rules: RulesDep,
    settings: SettingsDep,
    kind: Annotated[
        AttachmentKind | None,
        Query(description="The attachment's kind, known before the file streams."),
    ] = None,
) -> AttachmentRead:
    service = TicketService(session, rules, principal=principal, settings=settings)
    allowed: int = request.state.upload_limit  # decided by _prepare_attachment

    def file_limit(fields: Mapping[str, str]) -> int:
        named = kind if kind is not None else fields.get("kind")
        return min(allowed, service.kind_limit(named))

    # No query before the body is in: the request holds no database lock while it streams.
    upload = await receive_multipart(
        request.headers.get("content-type", ""),
        request.stream(),
        service.upload_folder(),
        file_limit,
    )
    try:
        given = upload.fields.get("kind")
        if kind is not None and given is not None and given != kind:
            raise InvalidInput(
                f"The kind is {kind!r} in the query and {given!r} in the form.",
                loc=["body", "kind"],
            )
        attachment = await service.attach_file(
            ticket_id,
            kind if kind is not None else upload.required_field("kind"),
            upload.only_file("file"),
        )
    finally:
        upload.discard()
    return AttachmentRead.model_validate(attachment)


@router.get(
    "/{ticket_id}/attachments",
    response_model=Page[AttachmentRead],
    name="tickets_attachments_list",
    responses=problem_responses(401, 403, 404, 422),
)
async def list_attachments(
    ticket_id: TicketId, principal: Reader, session: SessionDep, rules: RulesDep, page: PageDep
) -> Page[AttachmentRead]:
    service = TicketService(session, rules, principal=principal)
    rows, next_cursor = await service.list_attachments(ticket_id, page)
    return Page(items=[AttachmentRead.model_validate(a) for a in rows], next_cursor=next_cursor)


@router.get(
    "/{ticket_id}/attachments/{attachment_id}/content",
    name="tickets_attachments_content",
    response_class=FileResponse,
    responses={
        200: {
            "description": "The file's bytes, always as a download (`Content-Disposition: "
            "attachment`, `X-Content-Type-Options: nosniff`): as its own type when that is "
            "an inert one (PNG, JPEG, GIF, WebP, PDF, plain text), else as "
            "`application/octet-stream`.",
            "content": {media: {} for media in ("application/octet-stream", *INERT_TYPES)},
        },
        **problem_responses(401, 403, 404, 422, 500),
    },
)
async def download_attachment(
    ticket_id: TicketId,
    attachment_id: AttachmentId,
    principal: Reader,
    session: SessionDep,
    rules: RulesDep,
    settings: SettingsDep,
) -> FileResponse:
    service = TicketService(session, rules, principal=principal, settings=settings)
    attachment, path = await service.attachment_file(ticket_id, attachment_id)
    return FileResponse(
        path,
        media_type=served_type(attachment.content_type),
        filename=safe_filename(attachment.filename),
        content_disposition_type="attachment",
        headers={"X-Content-Type-Options": "nosniff"},
    )
