"""The application factory. No engine or connection exists before the lifespan starts."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import multiprocessing
import os
import signal
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from supportdesk import __version__
from supportdesk.api_keys.endpoints import router as api_keys_router
from supportdesk.audit.endpoints import router as audit_router
from supportdesk.config import BusinessRules, Settings, build_rules, get_settings
from supportdesk.contracts.endpoints import router as contracts_router
from supportdesk.customers.endpoints import router as customers_router
from supportdesk.db import build_engine, build_read_engine, build_sessionmaker
from supportdesk.errors import install_error_handlers, leaf_routes
from supportdesk.health.endpoints import router as health_router
from supportdesk.kit.cors import CorsMiddleware
from supportdesk.kit.guard import RequestGuardMiddleware
from supportdesk.kit.idempotency import HEADER as IDEMPOTENCY_HEADER
from supportdesk.kit.idempotency import (
    IdempotencyMiddleware,
    IdempotencyPolicy,
    purge_expired_records,
)
from supportdesk.kit.observability import RequestContextMiddleware, configure_logging
from supportdesk.kit.ratelimit import Limit, RateLimiter, RateLimits, purge_old_windows
from supportdesk.ledger.endpoints import router as ledger_router
from supportdesk.metrics.endpoints import router as metrics_router
from supportdesk.notifications.endpoints import router as notifications_router
from supportdesk.notifications.mailer import Mailer
from supportdesk.products.endpoints import router as products_router
from supportdesk.queue.endpoints import router as queue_router
from supportdesk.sessions.endpoints import router as sessions_router
from supportdesk.statements.endpoints import router as statements_router
from supportdesk.statements.monthly import issue_monthly_statements
from supportdesk.tickets.endpoints import router as tickets_router
from supportdesk.tickets.service import TicketService
from supportdesk.webhooks.dispatcher import Dispatcher
from supportdesk.webhooks.endpoints import router as webhooks_router

logger = logging.getLogger("supportdesk")

DESCRIPTION = """\
The support desk of a software vendor: tickets, maintenance contracts, a prepaid-unit
ledger and remote-session logs, for add-on clients, frontends and CRM integrations.

Authenticate with `Authorization: Bearer <api key>`. Every error is
`application/problem+json` (RFC 9457). Lists take `limit` (1–100) and `cursor` and answer
`{"items": [...], "next_cursor": ...}`.
"""


def _operation_id(route: APIRoute) -> str:
    # Route names are chosen by hand and stable, so client generators keep their names.
    return route.name


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = build_engine(settings)
        app.state.engine = engine
        app.state.sessionmaker = build_sessionmaker(engine)
        app.state.read_engine = build_read_engine(engine)
        housekeeping = asyncio.create_task(
            _housekeeping(app.state.sessionmaker, app.state.rules, app.state.rate_limits)
        )
        dispatcher = (
            Dispatcher(app.state.sessionmaker, settings)
            if settings.webhook_dispatcher_enabled
            else None
        )
        delivering = (
            asyncio.create_task(dispatcher.run_forever()) if dispatcher is not None else None
        )
        # E-mail notifications, in every worker (claims keep them from sending twice).
        mailer = (
            Mailer(app.state.sessionmaker, settings, app.state.rules)
            if settings.smtp_host
            else None
        )
        mailing = asyncio.create_task(mailer.run_forever()) if mailer is not None else None
        supervisor = _supervisor_pid()
        watch = (
            asyncio.create_task(_stop_when_orphaned(supervisor)) if supervisor is not None else None
        )
        # What is built by now (modules, the app, its rules and calendars, the pool)
        # lives as long as the worker: out of the cyclic collector's sight, its full
        # collections walk only what requests leave behind. They walked the whole heap,
        # 0.1-0.9 ms per request measured in bench-cpu; frozen, a tenth of that.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()  # an app stopped within a longer process (tests) is freed again
            # The rounds under way finish: webhook deliveries and mails in flight complete
            # and are recorded, nothing is cut off halfway.
            for worker, task in ((dispatcher, delivering), (mailer, mailing)):
                if worker is not None and task is not None:
                    worker.stop()
                    try:
                        await asyncio.wait_for(task, SHUTDOWN_GRACE.total_seconds())
                    except TimeoutError:
                        logger.warning("%s did not finish its round in time", type(worker).__name__)
            if dispatcher is not None:
                await dispatcher.aclose()
            for task in (housekeeping, watch):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            await engine.dispose()

    app = FastAPI(
        title="supportdesk",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
    )
    configure_logging(settings.log_level)
    app.state.settings = settings
    app.state.rules = build_rules(settings)
    window = timedelta(seconds=settings.rate_limit_window_seconds)
    app.state.rate_limits = RateLimits(
        per_key=Limit(settings.rate_limit_requests, window),
        auth_failures=Limit(settings.rate_limit_auth_failures, window),
    )
    app.state.rate_limiter = RateLimiter()
    install_error_handlers(app)
    app.add_middleware(
        IdempotencyMiddleware,
        policy=IdempotencyPolicy(retention=timedelta(hours=settings.idempotency_retention_hours)),
    )
    # Added after idempotency, so it runs before: nothing reads a body before the caller
    # is known and allowed, and its size bounded.
    app.add_middleware(RequestGuardMiddleware, max_json_body=settings.max_json_body_bytes)
    if settings.cors_origins:
        app.add_middleware(CorsMiddleware, origins=settings.cors_origins)
    # Outermost: every answer, refusals included, carries the request id and is logged.
    app.add_middleware(RequestContextMiddleware)
    for router in ROUTING_ORDER:
        app.include_router(router)
    _document_in_order(app, DOCUMENTED_ORDER)
    _document_what_middleware_adds(app)
    return app


# The order the API is documented in (openapi/openapi.json).
DOCUMENTED_ORDER = (
    health_router,
    metrics_router,
    api_keys_router,
    customers_router,
    products_router,
    contracts_router,
    tickets_router,
    notifications_router,
    queue_router,
    ledger_router,
    sessions_router,
    statements_router,
    webhooks_router,
    audit_router,
)
# The order requests try the routes in: FastAPI matches a request against every route
# in turn (twice: to choose, then to enter the router), so a route found after all the
# others costs each request ~0.1 ms more. The busiest come first, after the liveness
# probe; no two routers have a path in common, so the order decides nothing else.
HOT_ROUTERS = (tickets_router, queue_router, ledger_router, sessions_router)
ROUTING_ORDER = (
    health_router,
    *HOT_ROUTERS,
    *(r for r in DOCUMENTED_ORDER if r is not health_router and r not in HOT_ROUTERS),
)

HOUSEKEEPING_EVERY = timedelta(seconds=60)
SHUTDOWN_GRACE = timedelta(seconds=30)
PURGE_EVERY_ROUNDS = 10


async def _housekeeping(
    sessionmaker: async_sessionmaker[AsyncSession],
    rules: BusinessRules,
    rate_limits: RateLimits,
) -> None:
    """Work that time alone makes due: contracts that start or end with the date move
    their customers' tickets; tickets at risk of or past their SLA are announced once
    each; idempotency records past their retention go."""
    rounds = 0
    while True:
        try:
            async with sessionmaker() as session:
                tickets = TicketService(session, rules)
                await tickets.refresh_turning_contracts()
                await tickets.sweep_sla()
                await session.commit()
            await issue_monthly_statements(sessionmaker, rules)
            if rounds % PURGE_EVERY_ROUNDS == 0:
                purged = await purge_expired_records(sessionmaker)
                if purged:
                    logger.info("purged %d expired idempotency records", purged)
                longest = max(rate_limits.per_key.window, rate_limits.auth_failures.window)
                await purge_old_windows(sessionmaker, keep=2 * longest)
        except Exception:  # the next round tries again
            logger.warning("housekeeping failed", exc_info=True)
        rounds += 1
        await asyncio.sleep(HOUSEKEEPING_EVERY.total_seconds())


SUPERVISOR_CHECK_EVERY = timedelta(seconds=1)


def _supervisor_pid() -> int | None:
    """The supervisor's pid when this process is one of ``serve --workers N``'s workers
    (started by multiprocessing), else None."""
    parent = multiprocessing.parent_process()
    return parent.pid if parent is not None else None


async def _stop_when_orphaned(supervisor: int, every: timedelta = SUPERVISOR_CHECK_EVERY) -> None:
    """Shut this worker down, gracefully, once its supervisor is gone.

    uvicorn's workers do not notice when the supervisor dies (SIGKILL, the OOM killer):
    they would go on serving unsupervised, nobody replacing them when they die, and hold
    the port so that the restarted service cannot bind it.
    """
    while True:
        await asyncio.sleep(every.total_seconds())
        if os.getppid() != supervisor:  # reparented: the supervisor died
            break
    logger.error("the supervisor (pid %d) is gone; this worker shuts down", supervisor)
    os.kill(os.getpid(), signal.SIGTERM)


def _document_in_order(app: FastAPI, routers: Sequence[APIRouter]) -> None:
    """The document lists the paths in the order of ``routers``, whatever the order the
    routes are tried in."""
    build = app.openapi
    order = [route.path_format for router in routers for route in leaf_routes(router.routes)]

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        paths = schema.get("paths", {})
        documented = {path: paths[path] for path in dict.fromkeys(order) if path in paths}
        schema["paths"] = {**documented, **paths}
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _document_what_middleware_adds(app: FastAPI) -> None:
    """What the routes do not declare, the schema says: every POST takes
    ``Idempotency-Key`` (the middleware); every ``limit`` has this deployment's maximum
    page size; every operation that takes an API key can answer 429: its key's rate limit, or the
    failed authentications of the caller's address (kit.ratelimit)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        most = app.state.settings.max_page_size
        for item in schema.get("paths", {}).values():
            for keyed in item.values():
                for parameter in keyed.get("parameters", []):
                    if parameter.get("in") == "query" and parameter.get("name") == "limit":
                        parameter["schema"]["maximum"] = most
                        parameter["schema"]["description"] = f"Items per page (1–{most})."
                responses = keyed.get("responses", {})
                if "401" in responses and "429" not in responses:
                    responses["429"] = {
                        "description": "Too many requests: wait for the time in Retry-After.",
                        "headers": {
                            "Retry-After": {
                                "description": "Seconds until the limit's window ends.",
                                "schema": {"type": "integer", "minimum": 1},
                            }
                        },
                        "content": responses["401"]["content"],
                    }
            operation = item.get("post")
            if operation is None:
                continue
            operation.setdefault("parameters", []).append(
                {
                    "name": IDEMPOTENCY_HEADER,
                    "in": "header",
                    "required": False,
                    "description": (
                        "Makes the POST safe to retry: the same key with the same request "
                        "returns the first answer and changes nothing (header "
                        "`Idempotent-Replayed: true`); with another request → 422; while "
                        "the first is still running → 409. Keys are kept 24 hours, per API key."
                    ),
                    "schema": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 255,
                        "pattern": "^[!-~]+$",
                        "description": "Visible ASCII characters only.",
                    },
                }
            )
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
