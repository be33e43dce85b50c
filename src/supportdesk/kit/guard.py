"""The door: every request is judged on its head before a byte of its body is read.

In this order, for every route, so no check can be skipped by another's shortcut:

1. A NUL character in the path or query is never part of a valid request and cannot be
   stored in PostgreSQL text: 422.
2. The route is found (as the router will find it). A route that takes an API key gets
   the caller's address checked against its failed-authentication lockout, then the
   key, then the key's rate limit (401, 429), then the role's permission (403).
3. The body is judged by its head: ``multipart/*`` only where a route takes uploads
   (422 elsewhere, as any body that is not JSON); a declared ``Content-Length`` above
   the route's limit is 413 at once.
4. An upload route checks the caller's access to its target and names the most bytes
   its body may have (its kind's limit, the customer's quota) before the file streams.
5. The body then flows, counted: the first byte past the route's limit ends it with
   413, so nothing past the limit is buffered, spooled or stored - by the idempotency
   layer, which runs after this one, or by the route.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import unquote_to_bytes

from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from supportdesk.errors import (
    AppError,
    Forbidden,
    InvalidInput,
    PayloadTooLarge,
    Unauthorized,
    leaf_routes,
    send_error,
)
from supportdesk.kit.audit import current_actor
from supportdesk.kit.auth import (
    KEY_PREFIX,
    Permission,
    Principal,
    active_principal,
    hash_key,
    permissions_of,
    principals,
    refusal,
    takes_key,
)
from supportdesk.kit.ratelimit import RateLimiter, RateLimits

# Room for a multipart body's boundaries, part headers and small form fields beside the
# file itself (uploads.MAX_FIELDS fields of at most uploads.MAX_FIELD_BYTES each).
MULTIPART_OVERHEAD = 2 * 1024 * 1024
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_FAILED = "Too many failed authentications from this address"

Prepare = Callable[[Request, Principal], Awaitable[int]]
F = TypeVar("F", bound=Callable[..., Any])
UPLOAD_LIMIT_STATE = "upload_limit"


def takes_upload(prepare: Prepare) -> Callable[[F], F]:
    """Mark an endpoint as one that takes a multipart upload.

    ``prepare`` runs after the caller is authorized and before the body is read, with a
    request that has the path and query but no body: it checks that the caller may
    upload there (raising the service's errors) and returns the most bytes the file may
    have. The endpoint finds that number in ``request.state.upload_limit``.
    """

    def mark(endpoint: F) -> F:
        endpoint.upload_prepare = prepare  # type: ignore[attr-defined]
        return endpoint

    return mark


class _TooLarge(StarletteHTTPException):
    """Raised from ``receive``: an HTTP error, so the routes' body parsing passes it on."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The body is larger than {limit} bytes.")


@dataclass(frozen=True, slots=True)
class RouteDoor:
    """What the door needs to know of one route."""

    path: re.Pattern[str]
    methods: frozenset[str]
    keyed: bool
    # Every group must be satisfied; within a group any one permission suffices.
    permissions: tuple[tuple[Permission, ...], ...]
    prepare: Prepare | None

    def refuses(self, principal: Principal) -> Forbidden | None:
        for group in self.permissions:
            refused = refusal(principal, group)
            if refused is not None:
                return refused
        return None


def _walk(dependant: Dependant) -> tuple[bool, list[tuple[Permission, ...]]]:
    keyed = False
    groups: list[tuple[Permission, ...]] = []
    for sub in dependant.dependencies:
        if takes_key(sub.call):
            keyed = True
        found = permissions_of(sub.call)
        if found is not None:
            groups.append(found)
        sub_keyed, sub_groups = _walk(sub)
        keyed = keyed or sub_keyed
        groups.extend(sub_groups)
    return keyed, groups


def route_doors(routes: Sequence[Any]) -> dict[str, list[RouteDoor]]:
    """Per method, the app's routes in the router's order, with what each demands."""
    doors: dict[str, list[RouteDoor]] = {}
    for route in leaf_routes(routes):
        if not isinstance(route, APIRoute):
            continue
        keyed, groups = _walk(route.dependant)
        door = RouteDoor(
            path=route.path_regex,
            methods=frozenset(route.methods or ()),
            keyed=keyed,
            permissions=tuple(dict.fromkeys(groups)),
            prepare=getattr(route.endpoint, "upload_prepare", None),
        )
        for method in door.methods:
            doors.setdefault(method, []).append(door)
    return doors


def _has_nul(scope: Scope) -> bool:
    raw_path = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
    return b"\x00" in unquote_to_bytes(raw_path) or b"\x00" in unquote_to_bytes(
        scope.get("query_string", b"")
    )


def _credential(headers: Headers) -> str | None:
    scheme, _, credential = headers.get("authorization", "").strip().partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential.startswith(KEY_PREFIX):
        return None
    return credential


async def identify(scope: Scope, headers: Headers) -> Principal:
    """The caller, from its API key: the address's failed-authentication lockout first,
    then the key, then the key's rate limit."""
    credential = _credential(headers)
    if credential is None:
        raise Unauthorized()
    state = scope["app"].state
    limiter: RateLimiter = state.rate_limiter
    limits: RateLimits = state.rate_limits
    key_hash = hash_key(credential)
    principal = principals.get(key_hash)
    if principal is None:
        client = scope.get("client")
        failures = f"auth-failures:{client[0] if client else 'unknown'}"
        await limiter.check(state.sessionmaker, failures, limits.auth_failures, _FAILED)
        principal = await active_principal(
            state.sessionmaker, key_hash, state.settings.auth_cache_seconds
        )
        if principal is None:
            await limiter.spend(state.sessionmaker, failures, limits.auth_failures, _FAILED)
            raise Unauthorized("The API key is unknown or has been revoked.")
    await limiter.spend(
        state.sessionmaker, f"key:{principal.key_id}", limits.per_key, "Too many requests"
    )
    return principal


class RequestGuardMiddleware:
    def __init__(self, app: ASGIApp, *, max_json_body: int) -> None:
        self.app = app
        self.max_json_body = max_json_body
        self._doors: dict[str, list[RouteDoor]] | None = None

    def _door_for(self, scope: Scope) -> tuple[RouteDoor, dict[str, str]] | None:
        if self._doors is None:
            fastapi_app: FastAPI = scope["app"]
            self._doors = route_doors(fastapi_app.router.routes)
        path = scope["path"]
        for door in self._doors.get(scope["method"], ()):
            match = door.path.match(path)
            if match is not None:
                return door, match.groupdict()
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _has_nul(scope):
            await send_error(
                send,
                InvalidInput("The request's path or query contains a NUL character.", loc=["path"]),
            )
            return
        try:
            limit = await self._admit(scope)
        except AppError as exc:
            await send_error(send, exc)
            return
        await self._run_bounded(scope, receive, send, limit)

    async def _admit(self, scope: Scope) -> int:
        """Judge the request on its head; the most bytes its body may have."""
        found = self._door_for(scope)
        if found is None:  # 404 or 405: the router answers without reading the body
            return self.max_json_body
        door, path_params = found
        headers = Headers(scope=scope)
        state = scope.setdefault("state", {})
        principal: Principal | None = None
        if door.keyed:
            principal = await identify(scope, headers)
            state["principal"] = principal
            current_actor.set((principal.key_id, principal.role.value))
            refused = door.refuses(principal)
            if refused is not None:
                raise refused
        limit = self.max_json_body
        if scope["method"] in _BODY_METHODS:
            media_type = headers.get("content-type", "").split(";")[0].strip().lower()
            multipart = media_type.startswith("multipart/")
            if multipart and door.prepare is None:
                raise InvalidInput(
                    "The body must be JSON (application/json); this route takes no upload.",
                    loc=["header", "content-type"],
                )
            if door.prepare is not None and principal is not None:
                if not multipart:
                    raise InvalidInput(
                        "The body must be multipart/form-data.", loc=["header", "content-type"]
                    )
                scope["path_params"] = path_params
                file_limit = await door.prepare(Request(scope), principal)
                state[UPLOAD_LIMIT_STATE] = file_limit
                limit = file_limit + MULTIPART_OVERHEAD
            declared = headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise PayloadTooLarge(f"The body is larger than {limit} bytes.")
        return limit

    async def _run_bounded(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
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
            await send_error(send, PayloadTooLarge(f"The body is larger than {limit} bytes."))
