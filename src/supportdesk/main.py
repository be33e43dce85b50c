"""The application factory. No engine or connection exists before the lifespan starts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.routing import APIRoute

from supportdesk import __version__
from supportdesk.api_keys.endpoints import router as api_keys_router
from supportdesk.config import Settings, get_settings
from supportdesk.customers.endpoints import router as customers_router
from supportdesk.db import build_engine, build_sessionmaker
from supportdesk.errors import install_error_handlers
from supportdesk.health.endpoints import router as health_router
from supportdesk.products.endpoints import router as products_router

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
        try:
            yield
        finally:
            await engine.dispose()

    app = FastAPI(
        title="supportdesk",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
    )
    app.state.settings = settings
    install_error_handlers(app)
    for router in (health_router, api_keys_router, customers_router, products_router):
        app.include_router(router)
    return app
