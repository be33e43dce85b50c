"""kit.routing.APIRouter skips a router whose paths cannot match, and answers every
request as FastAPI's own router does: the same route, 404, 405 with Allow, redirects."""

from __future__ import annotations

import fastapi
import httpx
import pytest

from supportdesk.kit.routing import APIRouter
from supportdesk.main import ROUTING_ORDER

REQUESTS = [
    ("GET", "/api/v1/things"),
    ("GET", "/api/v1/things/t1"),
    ("DELETE", "/api/v1/things/t1"),  # 405
    ("GET", "/api/v1/things/"),  # a redirect to the path without the slash
    ("GET", "/api/v1/customers/c1/ledger"),
    ("POST", "/api/v1/customers/c1/ledger"),
    ("GET", "/api/v1/customers/c1/ledger/"),
    ("GET", "/api/v1/customers/c1"),  # 404: no router has it
    ("GET", "/api/v1/remote-sessions/r1"),
    ("GET", "/api/v1/session-logs"),
    ("GET", "/api/v1/session-logs/"),
    ("PUT", "/api/v1/session-logs"),
    ("GET", "/elsewhere"),
]


def _app(router_class: type[fastapi.APIRouter]) -> fastapi.FastAPI:
    things = router_class(prefix="/api/v1/things")
    ledger = router_class(prefix="/api/v1/customers/{customer_id}/ledger")
    sessions = router_class()

    @things.get("")
    async def list_things() -> str:
        return "things"

    @things.get("/{thing_id}")
    async def get_thing(thing_id: str) -> str:
        return f"thing {thing_id}"

    @ledger.get("")
    async def get_ledger(customer_id: str) -> str:
        return f"ledger {customer_id}"

    @sessions.get("/api/v1/remote-sessions/{session_id}")
    async def get_session(session_id: str) -> str:
        return f"session {session_id}"

    @sessions.get("/api/v1/session-logs")
    async def list_logs() -> str:
        return "logs"

    app = fastapi.FastAPI()
    for router in (things, ledger, sessions):
        app.include_router(router)
    return app


async def _answers(app: fastapi.FastAPI) -> list[tuple[int, str, str | None, str | None]]:
    transport = httpx.ASGITransport(app=app)
    found = []
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        for method, path in REQUESTS:
            response = await http.request(method, path)
            found.append(
                (
                    response.status_code,
                    response.text,
                    response.headers.get("allow"),
                    response.headers.get("location"),
                )
            )
    return found


class TestRoutersSkippedByPath:
    async def test_answers_as_fastapis_router_does(self) -> None:
        assert await _answers(_app(APIRouter)) == await _answers(_app(fastapi.APIRouter))

    @pytest.mark.parametrize("router", ROUTING_ORDER)
    def test_every_router_of_the_app_skips(self, router: fastapi.APIRouter) -> None:
        assert isinstance(router, APIRouter)
