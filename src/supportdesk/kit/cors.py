"""CORS for browser clients: origins from the settings (none by default).

A preflight from an allowed origin is answered 204 with what it may send; one from any
other origin gets 403 problem+json. Answers to allowed origins expose the headers
clients need.
"""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from supportdesk.errors import send_problem, send_raw

ALLOWED_METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
ALLOWED_HEADERS = {
    "authorization",
    "content-type",
    "idempotency-key",
    "if-match",
    "x-request-id",
    "accept",
}
EXPOSED_HEADERS = "Location, X-Request-ID, ETag, Retry-After, Idempotent-Replayed"


class CorsMiddleware:
    def __init__(self, app: ASGIApp, origins: list[str], max_age: int = 600) -> None:
        self.app = app
        self.origins = {o.rstrip("/") for o in origins}
        self.any = "*" in self.origins
        self.max_age = max_age

    def _allowed(self, origin: str) -> bool:
        return self.any or origin.rstrip("/") in self.origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await self._preflight(origin, headers, send)
            return
        if not self._allowed(origin):
            await self.app(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                out["Access-Control-Allow-Origin"] = origin
                out["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
                out.add_vary_header("Origin")
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _preflight(self, origin: str, headers: Headers, send: Send) -> None:
        requested = {
            h.strip().lower()
            for h in headers.get("access-control-request-headers", "").split(",")
            if h.strip()
        }
        if not self._allowed(origin) or not requested <= ALLOWED_HEADERS:
            await send_problem(send, 403, "This origin or these headers are not allowed.")
            return
        await send_raw(
            send,
            204,
            [
                (b"access-control-allow-origin", origin.encode("latin-1")),
                (b"access-control-allow-methods", ALLOWED_METHODS.encode()),
                (b"access-control-allow-headers", ", ".join(sorted(ALLOWED_HEADERS)).encode()),
                (b"access-control-max-age", str(self.max_age).encode()),
                (b"vary", b"Origin"),
            ],
            b"",
        )
