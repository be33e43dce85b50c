from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import Body, Path, Query, Request, Response

from supportdesk.domain.calendar import BusinessCalendar, in_utc
from supportdesk.errors import InvalidInput, problem_response, problem_responses
from supportdesk.kit.auth import Allowed, AllowedAny, Permission, Principal, SessionDep
from supportdesk.kit.clock import utcnow
from supportdesk.kit.guard import takes_upload
from supportdesk.kit.ids import id_segment
from supportdesk.kit.pagination import Page, PageDep
from supportdesk.kit.routing import APIRouter
from supportdesk.kit.rules import RulesDep, SettingsDep
from supportdesk.kit.schemas import json_answer
from supportdesk.kit.uploads import receive_multipart
from supportdesk.sessions.schemas import (
    ImportResult,
    JoinRequest,
    RemoteSessionCreate,
    RemoteSessionOpened,
    RemoteSessionRead,
    SessionEnd,
    SessionLogCreate,
    SessionLogRead,
    remote_session_read,
    session_log_read,
)
from supportdesk.sessions.service import SessionService

router = APIRouter(tags=["remote sessions"])

Supporter = Annotated[Principal, Allowed(Permission.run_sessions)]
Joiner = Annotated[Principal, Allowed(Permission.join_sessions)]
Reader = Annotated[Principal, Allowed(Permission.read)]
SessionReader = Annotated[Principal, AllowedAny(Permission.run_sessions, Permission.join_sessions)]
SessionId = Annotated[str, Path(max_length=255)]
# Parsed by _bounds; the schema says which texts it takes.
DAY_OR_INSTANT: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "format": "date"},
        {"type": "string", "format": "date-time", "maxLength": 40},
        {"type": "null"},
    ]
}
MAX_REPORT_BYTES = 50 * 1024 * 1024

IMPORT_FORM: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "customer_id"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "customer_id": {"type": "string", "minLength": 1, "maxLength": 255},
                        "bill_at_list_price": {"type": "boolean", "default": False},
                    },
                }
            }
        },
    }
}


@router.post(
    "/api/v1/remote-sessions",
    status_code=201,
    response_model=RemoteSessionOpened,
    name="remote_sessions_open",
    responses=problem_responses(401, 403, 404, 409, 422),
    description="Opens a session and draws its one-time code. A `standard` customer's "
    "session needs `bill_at_list_price`.",
)
async def open_session(
    body: RemoteSessionCreate,
    principal: Supporter,
    session: SessionDep,
    rules: RulesDep,
    response: Response,
) -> RemoteSessionOpened:
    remote, code = await SessionService(session, rules, principal).open_session(body)
    response.headers["Cache-Control"] = "no-store"
    return RemoteSessionOpened(
        id=remote.id,
        code=code,
        code_expires_at=remote.code_expires_at,
        status="waiting",
        customer_id=remote.customer_id,
        ticket_id=remote.ticket_id,
        contact_id=remote.contact_id,
        computer=remote.computer,
        bill_at_list_price=remote.bill_at_list_price,
    )


@router.post(
    "/api/v1/remote-sessions/join",
    response_model=RemoteSessionRead,
    name="remote_sessions_join",
    responses=problem_responses(401, 403, 404, 422, 429),
    description="The customer's client joins with the code. A wrong, used or expired code "
    "is 404; repeated wrong codes are slowed down with 429 and Retry-After.",
)
async def join_session(
    body: JoinRequest, principal: Joiner, session: SessionDep, rules: RulesDep
) -> RemoteSessionRead | Response:
    remote = await SessionService(session, rules, principal).join_session(body.code)
    if remote is None:
        # Answered, not raised: the counted failure must be kept.
        return problem_response(404, "No waiting session has this code.")
    return remote_session_read(remote, utcnow())


@router.get(
    f"/api/v1/remote-sessions/{id_segment('session_id', besides='join')}",
    response_model=RemoteSessionRead,
    name="remote_sessions_get",
    responses=problem_responses(401, 403, 404, 422),
)
async def get_session(
    session_id: SessionId, principal: SessionReader, session: SessionDep, rules: RulesDep
) -> RemoteSessionRead:
    remote = await SessionService(session, rules, principal).get_session(session_id)
    return remote_session_read(remote, utcnow())


@router.post(
    "/api/v1/remote-sessions/{session_id}/end",
    response_model=SessionLogRead,
    name="remote_sessions_end",
    responses=problem_responses(401, 403, 404, 409, 422),
    description="Ends the session and bills it; answers the session log.",
)
async def end_session(
    session_id: SessionId,
    principal: Supporter,
    session: SessionDep,
    rules: RulesDep,
    body: Annotated[SessionEnd | None, Body()] = None,
) -> Response:
    service = SessionService(session, rules, principal)
    return json_answer(await service.end_session(session_id, body or SessionEnd()))


@router.post(
    "/api/v1/remote-sessions/{session_id}/emergency-stop",
    response_model=SessionLogRead,
    name="remote_sessions_emergency_stop",
    responses=problem_responses(401, 403, 404, 409, 422),
    description="The customer ends the session at once; `ended_by` is `customer`.",
)
async def emergency_stop(
    session_id: SessionId, principal: Joiner, session: SessionDep, rules: RulesDep
) -> Response:
    service = SessionService(session, rules, principal)
    return json_answer(await service.end_session(session_id, SessionEnd(), by_customer=True))


def _bounds(
    start: str | None, end: str | None, calendar: BusinessCalendar
) -> tuple[datetime | None, datetime | None]:
    """``from``/``to`` as dates (whole days in the desk's zone, both inclusive) or instants."""

    def parse(value: str, name: str, *, upper: bool) -> datetime:
        try:
            day = date.fromisoformat(value)
        except ValueError:
            try:
                instant = datetime.fromisoformat(value)
            except ValueError as exc:
                raise InvalidInput(
                    f"{name} must be a date or an instant.", loc=["query", name]
                ) from exc
            if instant.tzinfo is None:
                raise InvalidInput(f"{name} needs an offset.", loc=["query", name]) from None
            return in_utc(instant)
        first, last = calendar.period(day, day)
        return last if upper else first

    lower = parse(start, "from", upper=False) if start is not None else None
    upper = parse(end, "to", upper=True) if end is not None else None
    return lower, upper


@router.get(
    "/api/v1/session-logs",
    response_model=Page[SessionLogRead],
    name="session_logs_list",
    responses=problem_responses(401, 403, 404, 422),
    description="Every ended session, whatever its origin. `from` and `to` are dates "
    "(both inclusive, in the desk's time zone) or RFC 3339 instants.",
)
async def list_logs(
    principal: Reader,
    session: SessionDep,
    rules: RulesDep,
    page: PageDep,
    customer_id: Annotated[str | None, Query(max_length=255)] = None,
    start: Annotated[
        str | None, Query(alias="from", max_length=40, json_schema_extra=DAY_OR_INSTANT)
    ] = None,
    end: Annotated[
        str | None, Query(alias="to", max_length=40, json_schema_extra=DAY_OR_INSTANT)
    ] = None,
) -> Page[SessionLogRead]:
    starts, ends = _bounds(start, end, rules.calendar)
    service = SessionService(session, rules, principal)
    rows, next_cursor = await service.list_logs(
        page, customer_id=customer_id, starts=starts, ends=ends
    )
    return Page(items=[session_log_read(r, rules) for r in rows], next_cursor=next_cursor)


@router.get(
    f"/api/v1/session-logs/{id_segment('log_id', besides='import')}",
    response_model=SessionLogRead,
    name="session_logs_get",
    responses=problem_responses(401, 403, 404, 422),
)
async def get_log(
    log_id: SessionId, principal: Reader, session: SessionDep, rules: RulesDep
) -> SessionLogRead:
    return session_log_read(await SessionService(session, rules, principal).get_log(log_id), rules)


@router.post(
    "/api/v1/session-logs",
    status_code=201,
    response_model=SessionLogRead,
    name="session_logs_create",
    responses=problem_responses(401, 403, 404, 422),
    description="A session held with an outside tool, logged afterwards and billed.",
)
async def create_log(
    body: SessionLogCreate, principal: Supporter, session: SessionDep, rules: RulesDep
) -> SessionLogRead:
    log = await SessionService(session, rules, principal).log_session(body)
    return session_log_read(log, rules)


async def _report_limit(_request: Request, _principal: Principal) -> int:
    return MAX_REPORT_BYTES


@router.post(
    "/api/v1/session-logs/import",
    status_code=201,
    response_model=ImportResult,
    name="session_logs_import",
    responses=problem_responses(401, 403, 404, 413, 422),
    openapi_extra=IMPORT_FORM,
    description="A connection-report CSV (German or English headers); good rows are logged "
    "and billed, rows imported before are skipped, bad rows reported by line.",
)
@takes_upload(_report_limit)
async def import_logs(
    request: Request,
    principal: Supporter,
    session: SessionDep,
    rules: RulesDep,
    settings: SettingsDep,
) -> ImportResult:
    upload = await receive_multipart(
        request.headers.get("content-type", ""),
        request.stream(),
        settings.attachments_dir / "incoming",
        request.state.upload_limit,
    )
    try:
        report = upload.only_file("file")
        customer_id = upload.required_field("customer_id")
        flag = upload.fields.get("bill_at_list_price", "false").strip().lower()
        if flag not in ("true", "false", "1", "0"):
            raise InvalidInput(
                "bill_at_list_price is true or false.", loc=["body", "bill_at_list_price"]
            )
        service = SessionService(session, rules, principal)
        return await service.import_report(
            customer_id, report.path, bill_at_list_price=flag in ("true", "1")
        )
    finally:
        upload.discard()
