"""Refuse malformed requests at the door, before any route or database sees them.

- A NUL character in the path or query is never part of a valid request and cannot be
  stored in PostgreSQL text: 422.
- Bodies are bounded: JSON bodies by ``max_json_body_bytes`` (413), multipart uploads by
  the largest attachment size (their routes check per kind while streaming). The limit
  is applied to the declared ``Content-Length`` and to the bytes actually received, so
  a chunked body cannot slip past it.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from supportdesk.errors import send_problem


class _TooLarge(StarletteHTTPException):
    """Raised from ``receive``: an HTTP error, so the routes' body parsing passes it on."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The body is larger than {limit} bytes.")


class RequestGuardMiddleware:
    def __init__(self, app: ASGIApp, *, max_json_body: int, max_upload_body: int) -> None:
        self.app = app
        self.max_json_body = max_json_body
        self.max_upload_body = max_upload_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_path = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
        if b"\x00" in unquote_to_bytes(raw_path) or b"\x00" in unquote_to_bytes(
            scope.get("query_string", b"")
        ):
            await send_problem(
                send,
                422,
                "The request's path or query contains a NUL character.",
                slug="validation-error",
                title="Unprocessable Content",
                extra={"errors": [{"loc": ["path"], "msg": "NUL character"}]},
            )
            return
        headers = Headers(scope=scope)
        multipart = headers.get("content-type", "").lower().startswith("multipart/")
        limit = self.max_upload_body if multipart else self.max_json_body
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await send_problem(send, 413, f"The body is larger than {limit} bytes.")
            return

        received = 0
        response_started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge(limit)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _TooLarge:
            if response_started:
                raise
            await send_problem(send, 413, f"The body is larger than {limit} bytes.")
