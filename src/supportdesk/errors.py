"""The service's errors and the one handler that turns every failure into problem+json.

Services raise these (or domain errors); nothing below the routers knows about HTTP
statuses except through this module. Every non-2xx response is RFC 9457
``application/problem+json`` with ``type``, ``title``, ``status`` and ``detail``;
validation errors add ``errors: [{loc, msg}]``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from functools import cache
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import Send

from supportdesk.domain.errors import ConflictError, DomainError, IllegalTransition

logger = logging.getLogger("supportdesk.errors")

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://supportdesk.dev/problems/"


class AppError(Exception):
    """Base of the service's own errors; the subclass fixes status and problem type."""

    status: int = 500
    slug: str = "internal-error"
    title: str = "Internal Server Error"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}

    def extra(self) -> dict[str, Any]:
        return {}


class Unauthorized(AppError):
    status, slug, title = 401, "unauthorized", "Unauthorized"

    def __init__(self, detail: str = "A valid API key is required.") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="supportdesk"'})


class Forbidden(AppError):
    status, slug, title = 403, "forbidden", "Forbidden"


class NotFound(AppError):
    status, slug, title = 404, "not-found", "Not Found"

    @classmethod
    def of(cls, kind: str, ident: str) -> NotFound:
        return cls(f"{kind} {ident!r} does not exist.")


class Conflict(AppError):
    status, slug, title = 409, "conflict", "Conflict"


class BusinessRuleViolation(AppError):
    status, slug, title = 422, "business-rule", "Unprocessable Content"


class InvalidInput(AppError):
    """Input that passed the schema but is still malformed (e.g. a tampered cursor)."""

    status, slug, title = 422, "validation-error", "Unprocessable Content"

    def __init__(self, detail: str, *, loc: Sequence[str | int] = ()) -> None:
        super().__init__(detail)
        self.loc = list(loc)

    def extra(self) -> dict[str, Any]:
        return {"errors": [{"loc": self.loc, "msg": self.detail}]}


class TooManyRequests(AppError):
    status, slug, title = 429, "too-many-requests", "Too Many Requests"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after))})


class PayloadTooLarge(AppError):
    status, slug, title = 413, "payload-too-large", "Content Too Large"


class ContentMissing(AppError):
    """A stored object whose bytes are gone from storage: the server's fault, said so."""

    status, slug, title = 500, "content-missing", "Content Missing"


class ServiceUnavailable(AppError):
    status, slug, title = 503, "unavailable", "Service Unavailable"


class ValidationItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str | None = None


class Problem(BaseModel):
    """RFC 9457 problem details, as every error response of the API."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=[PROBLEM_BASE + "not-found"])
    title: str = Field(examples=["Not Found"])
    status: int = Field(examples=[404])
    detail: str = Field(examples=["customer 'cus_01…' does not exist."])
    errors: list[ValidationItem] | None = None


def problem_response(
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + (slug or phrase.lower().replace(" ", "-")),
        "title": title or phrase,
        "status": status,
        "detail": detail,
    }
    if extra:
        body.update(extra)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


async def send_raw(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    """A whole answer straight on the ASGI channel, for middleware that answers itself."""
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def send_problem(send: Send, status: int, detail: str, **kw: Any) -> None:
    """A problem+json answer from middleware, shaped like every other error."""
    response = problem_response(status, detail, **kw)
    await send_raw(send, status, response.raw_headers, bytes(response.body))


def app_error_response(exc: AppError) -> JSONResponse:
    return problem_response(
        exc.status,
        exc.detail,
        slug=exc.slug,
        title=exc.title,
        headers=exc.headers,
        extra=exc.extra(),
    )


async def send_error(send: Send, exc: AppError) -> None:
    """An AppError answered from middleware, exactly as the routes' handler answers it."""
    response = app_error_response(exc)
    await send_raw(send, exc.status, response.raw_headers, bytes(response.body))


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the errors a route can give."""
    return {
        status: {
            "model": Problem,
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }


def _loc(loc: Sequence[Any]) -> list[str | int]:
    return [part if isinstance(part, int) else str(part) for part in loc]


async def _app_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return app_error_response(exc)


def _domain_status(exc: DomainError) -> tuple[int, str, str]:
    # A clash with the object's state is 409; every other rule (RuleViolation) is 422.
    if isinstance(exc, ConflictError):
        return 409, "conflict", "Conflict"
    return 422, "business-rule", "Unprocessable Content"


async def _domain_error(_request: Request, exc: Exception) -> JSONResponse:
    """Rules the domain core refuses: a clash with the object's state is 409, the rest 422."""
    assert isinstance(exc, DomainError)
    status, slug, title = _domain_status(exc)
    extra: dict[str, Any] = {"code": type(exc).__name__}
    if isinstance(exc, IllegalTransition):
        extra["allowed"] = [str(state) for state in exc.allowed]
    return problem_response(status, str(exc), slug=slug, title=title, extra=extra)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": _loc(err.get("loc", ())), "msg": str(err.get("msg", "")), "type": err.get("type")}
        for err in exc.errors()
    ]
    return problem_response(
        422,
        "The request does not match the schema; see errors.",
        slug="validation-error",
        title="Unprocessable Content",
        extra={"errors": errors},
    )


def leaf_routes(routes: Sequence[Any]) -> Iterator[Any]:
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from leaf_routes(included.routes)
        else:
            yield route


def _allowed_methods(request: Request) -> str:
    """Every method some route offers for this path (Starlette names only the first
    route's, and a path such as /api-keys/{id} is served by several routes)."""
    methods: set[str] = set()
    for route in leaf_routes(request.app.router.routes):
        match, _ = route.matches(dict(request.scope))
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    if exc.status_code == 400 and detail.startswith("There was an error parsing the body"):
        # A body that cannot be read as JSON at all (too deeply nested, say) is a
        # validation error like any other malformed body.
        return problem_response(
            422,
            "The body could not be parsed as JSON.",
            slug="validation-error",
            title="Unprocessable Content",
            extra={"errors": [{"loc": ["body"], "msg": "unparsable JSON"}]},
        )
    if exc.status_code == 404 and detail == "Not Found":
        detail = "No such resource or route."
    elif exc.status_code == 405:
        headers = {**dict(exc.headers or {}), "Allow": _allowed_methods(request)}
        return problem_response(405, "This path does not support that method.", headers=headers)
    return problem_response(exc.status_code, detail, headers=dict(exc.headers or {}))


def _database_unavailable(exc: BaseException) -> bool:
    """A lost connection or a database that cannot serve now (a restart, a terminated
    backend, a lock not granted in time): nothing of the request was committed, and the
    same request can succeed a moment later."""
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError):
        return True
    # The asyncpg adapter wraps a dropped connection in a plain DBAPIError; the driver's
    # own exception is its cause.
    cause = exc.orig.__cause__ if exc.orig is not None else None
    return isinstance(cause, connection_lost_errors())


@cache
def connection_lost_errors() -> tuple[type[BaseException], ...]:
    """The driver's errors that say the connection is gone or cannot be had now."""
    import asyncpg

    x = asyncpg.exceptions
    return (
        x.ConnectionDoesNotExistError,
        x.PostgresConnectionError,
        x.OperatorInterventionError,
        x.TooManyConnectionsError,
        x.CannotConnectNowError,
        x.InterfaceError,
        ConnectionError,
    )


def unexpected_problem(method: str, path: str, exc: BaseException) -> JSONResponse:
    """The answer to an exception nothing else handled: a database that is briefly gone
    is 503, anything else 500, its traceback in the log and never in the answer."""
    if _database_unavailable(exc):
        logger.warning("database unavailable on %s %s: %s", method, path, exc)
        return problem_response(
            503,
            "The database is unavailable for a moment; nothing was changed. Retry the request.",
            headers={"Retry-After": "1"},
        )
    logger.error("unhandled error on %s %s", method, path, exc_info=exc)
    return problem_response(500, "An unexpected error occurred; it has been logged.")


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    # For DBAPIError from the routes, and for anything from middleware outside them.
    return unexpected_problem(request.method, request.url.path, exc)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(DBAPIError, _unexpected_error)
    app.add_exception_handler(Exception, _unexpected_error)
