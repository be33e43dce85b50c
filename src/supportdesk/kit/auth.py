"""API keys, roles and what each role may do.

A key is ``sdk_`` plus 43 characters of ``secrets.token_urlsafe``; only its SHA-256 is
stored. Lookup is by hash, so the secret never touches the database and a stolen
database dump yields no usable key.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import HTTPConnection

from supportdesk.db import ReadConnect, get_read_connect, get_session
from supportdesk.errors import Forbidden, Unauthorized

KEY_PREFIX = "sdk_"
SHOWN_PREFIX_LENGTH = 12


class Role(StrEnum):
    admin = "admin"
    agent = "agent"
    integration = "integration"
    customer = "customer"


class Permission(StrEnum):
    manage_api_keys = "manage_api_keys"
    write_customers = "write_customers"
    write_contracts = "write_contracts"
    read = "read"
    write_tickets = "write_tickets"
    comment = "comment"
    work_queue = "work_queue"
    buy_units = "buy_units"
    debit_units = "debit_units"
    read_units = "read_units"
    run_sessions = "run_sessions"
    join_sessions = "join_sessions"
    manage_webhooks = "manage_webhooks"
    read_audit = "read_audit"
    issue_statements = "issue_statements"


_A, _G, _I, _C = Role.admin, Role.agent, Role.integration, Role.customer

# The table of API.md, "API keys and roles". A customer-bound key's reach is further
# narrowed to its own customer by the repositories.
PERMISSIONS: dict[Permission, frozenset[Role]] = {
    Permission.manage_api_keys: frozenset({_A}),
    Permission.write_customers: frozenset({_A, _G, _I}),
    Permission.write_contracts: frozenset({_A, _I}),
    Permission.read: frozenset({_A, _G, _I, _C}),
    Permission.write_tickets: frozenset({_A, _G, _I, _C}),
    Permission.comment: frozenset({_A, _G, _C}),
    Permission.work_queue: frozenset({_A, _G}),
    Permission.buy_units: frozenset({_A, _I}),
    Permission.debit_units: frozenset({_A, _G}),
    Permission.read_units: frozenset({_A, _G, _I, _C}),
    Permission.run_sessions: frozenset({_A, _G}),
    Permission.join_sessions: frozenset({_C}),
    Permission.manage_webhooks: frozenset({_A, _I}),
    Permission.read_audit: frozenset({_A, _G}),
    Permission.issue_statements: frozenset({_A, _G, _I}),
}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key's id, its role and, for customer keys, its customer."""

    key_id: str
    role: Role
    customer_id: str | None
    name: str = ""

    @property
    def customer_scope(self) -> str | None:
        """The one customer this caller may see, or None for staff and integrations."""
        return self.customer_id if self.role is Role.customer else None

    def may(self, permission: Permission) -> bool:
        return self.role in PERMISSIONS[permission]


@dataclass(frozen=True, slots=True)
class NewKey:
    secret: str
    prefix: str
    key_hash: str


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def generate_key() -> NewKey:
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    return NewKey(secret=secret, prefix=secret[:SHOWN_PREFIX_LENGTH], key_hash=hash_key(secret))


class _DocumentedBearer(HTTPBearer):
    """The bearer scheme in the OpenAPI document. The request guard has authenticated
    the caller before the route runs, so the route parses nothing here."""

    async def __call__(self, request: HTTPConnection) -> HTTPAuthorizationCredentials | None:
        return None


_bearer = _DocumentedBearer(
    auto_error=False,
    description="An API key: `Authorization: Bearer sdk_…`.",
    scheme_name="HTTPBearer",
)

SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
# Where the hot reads take their bare connections (Core only, autocommit on PostgreSQL).
ReadConnectDep = Annotated[ReadConnect, Depends(get_read_connect)]


class PrincipalCache:
    """Keys that authenticated lately, remembered per worker process for a few seconds.

    Saves each request the key lookup, a transaction of its own. Only keys found active
    are remembered, so a new key works at once and an unknown one is always looked up.
    A revocation through the API forgets the key here as it commits; another worker may
    still accept it until its entry expires (``auth_cache_seconds``).
    """

    MAX_ENTRIES = 10_000

    def __init__(self) -> None:
        self._entries: dict[str, tuple[Principal, float]] = {}

    def get(self, key_hash: str) -> Principal | None:
        entry = self._entries.get(key_hash)
        if entry is None:
            return None
        principal, expires = entry
        if expires <= time.monotonic():
            self._entries.pop(key_hash, None)
            return None
        return principal

    def put(self, key_hash: str, principal: Principal, ttl: float) -> None:
        if ttl <= 0:
            return
        if len(self._entries) >= self.MAX_ENTRIES:
            self._entries.clear()
        self._entries[key_hash] = (principal, time.monotonic() + ttl)

    def forget(self, key_id: str) -> None:
        for key_hash, (principal, _) in list(self._entries.items()):
            if principal.key_id == key_id:
                self._entries.pop(key_hash, None)

    def forget_on_commit(self, session: AsyncSession, key_id: str) -> None:
        """Forget ``key_id`` now and again once ``session`` commits, so that a request
        that looked the key up before the revocation committed cannot keep it alive."""
        self.forget(key_id)
        event.listen(
            session.sync_session, "after_commit", lambda _s: self.forget(key_id), once=True
        )


principals = PrincipalCache()


async def active_principal(
    sessionmaker: async_sessionmaker[AsyncSession], key_hash: str, ttl: float
) -> Principal | None:
    """The caller whose key has ``key_hash``, if the key exists and is not revoked.

    The key is looked up in a short transaction of its own, not the request's: the
    request's transaction then starts with its first real query, so an upload that
    streams for minutes holds no database lock while the bytes arrive.
    """
    # Imported here: the repository imports the models, which import kit modules.
    from supportdesk.api_keys.repository import ApiKeyRepository

    principal = principals.get(key_hash)
    if principal is not None:
        return principal
    async with sessionmaker() as session:
        key = await ApiKeyRepository(session).get_active_by_hash(key_hash)
    if key is None:
        return None
    principal = Principal(
        key_id=key.id, role=Role(key.role), customer_id=key.customer_id, name=key.name
    )
    principals.put(key_hash, principal, ttl)
    return principal


def _principal(request: Request) -> Principal:
    principal = request.scope.get("state", {}).get("principal")
    if not isinstance(principal, Principal):
        raise Unauthorized()
    return principal


async def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller, as the request guard found it before any of the body was read
    (kit.guard: address lockout, then the key, then its rate limit)."""
    return _principal(request)


def takes_key(call: object) -> bool:
    """Whether a dependency stands for the caller's API key: the request guard then
    authenticates the caller before the body is read."""
    return call is authenticate or getattr(call, "takes_key", False) is True


def permissions_of(call: object) -> tuple[Permission, ...] | None:
    """The permissions an ``authorize``/``authorize_any`` dependency asks for (any one
    of them suffices), or None for another dependency: the request guard reads them to
    refuse a caller before the body is read."""
    found = getattr(call, "permissions", None)
    return found if isinstance(found, tuple) else None


# authorize and authorize_any take the caller as authenticate does, in one dependency
# rather than two: each level of dependencies costs every request its resolution.
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def refusal(principal: Principal, permissions: tuple[Permission, ...]) -> Forbidden | None:
    """Why ``principal`` may not go on, when its role has none of ``permissions``."""
    if any(principal.may(p) for p in permissions):
        return None
    names = " or ".join(p.value for p in permissions)
    return Forbidden(f"The role {principal.role.value!r} may not {names}.")


def authorize_any(*permissions: Permission) -> Callable[..., Awaitable[Principal]]:
    """A dependency for callers whose role has at least one of ``permissions``; the
    route decides on the rest once it knows the body."""

    async def dependency(request: Request, credentials: Credentials) -> Principal:
        principal = _principal(request)
        refused = refusal(principal, permissions)
        if refused is not None:
            raise refused
        return principal

    dependency.permissions = permissions  # type: ignore[attr-defined]
    dependency.takes_key = True  # type: ignore[attr-defined]
    return dependency


def authorize(permission: Permission) -> Callable[..., Awaitable[Principal]]:
    """A dependency that lets through only callers whose role has ``permission``."""
    return authorize_any(permission)


def AllowedAny(*permissions: Permission) -> object:
    return Depends(authorize_any(*permissions))


def Allowed(permission: Permission) -> object:
    """``principal: Annotated[Principal, Allowed(Permission.read)]``."""
    return Depends(authorize(permission))
