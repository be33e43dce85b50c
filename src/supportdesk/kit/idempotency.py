"""``Idempotency-Key`` for every POST of the API, in one place.

A POST that carries the header is run at most once per (caller, key):

1. The key is *claimed* in a short transaction of its own (state ``running``, with a
   lease kept alive while the request runs): a new key by one ``INSERT … ON CONFLICT DO
   NOTHING``, a key already there judged only then. A concurrent request with the same
   key sees the claim and gets 409; one with the same key and a different request 422.
2. The request runs in a transaction owned by this middleware. Its response is captured
   and written to the record **in the same transaction** as the request's own changes,
   so "the change happened" and "its answer is stored" commit together or not at all.
   A request that raised has its changes rolled back; the answer made of its error is
   then stored alone.
3. A retry then gets the stored answer (status, headers, body) with
   ``Idempotent-Replayed: true``; nothing is done twice.

The request guard runs before this layer: a caller without a valid key, or whose role
may not use the route, or who is over its rate limit, is refused before its key is looked
up here or any of its body spooled. Answers about the moment rather than the request -
5xx, 429 - are not stored: the claim is released so that the same key succeeds later.
A claim whose process died is taken over once its lease has run out; since the changes
and the stored answer commit together, a dead request left no changes behind.

The scope is the SHA-256 of the ``Authorization`` header, so two API keys never share
an idempotency key space and the secret itself is never stored.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import secrets
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Table, and_, bindparam, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.sql.dml import Insert
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from supportdesk.db import OWNED_SESSION_STATE, OwnedTransaction, UTCDateTime
from supportdesk.errors import PROBLEM_JSON, problem_response, send_problem, send_raw
from supportdesk.kit.auth import Principal, hash_key
from supportdesk.kit.clock import utcnow
from supportdesk.kit.heartbeat import heartbeat
from supportdesk.kit.repository import Repository
from supportdesk.models import IdempotencyRecord

logger = logging.getLogger("supportdesk.idempotency")

HEADER = "Idempotency-Key"
_KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")
_SPOOL_IN_MEMORY = 1024 * 1024
_CHUNK = 64 * 1024
# Answers about the moment, not the request: never stored under a key.
_MOMENTARY = frozenset({401, 429})


class ClaimOutcome(StrEnum):
    ACQUIRED = "acquired"
    REPLAY = "replay"
    IN_PROGRESS = "in_progress"
    MISMATCH = "mismatch"


@dataclass(frozen=True)
class Held:
    """A claim this request holds: its token fences every later write to the record."""

    scope: str
    key: str
    token: str


@dataclass(frozen=True)
class StoredAnswer:
    status: int
    headers: str
    body: bytes


@dataclass(frozen=True)
class Claim:
    outcome: ClaimOutcome
    held: Held | None = None
    answer: StoredAnswer | None = None


@dataclass(frozen=True)
class IdempotencyPolicy:
    retention: timedelta = timedelta(hours=24)
    lease: timedelta = timedelta(seconds=30)


# The statements of the hot path, built once (Core, no unit of work: every idempotent
# POST runs a claim and a completion).
_RECORDS: Table = IdempotencyRecord.__table__  # type: ignore[assignment]
_C = _RECORDS.c
_NOW = bindparam("now", type_=UTCDateTime())
_START = {
    "fingerprint": bindparam("b_fingerprint", type_=_C.fingerprint.type),
    "token": bindparam("b_token", type_=_C.token.type),
    "state": "running",
    "response_status": None,
    "response_headers": None,
    "response_body": None,
    "created_at": _NOW,
    "locked_until": bindparam("b_locked_until", type_=UTCDateTime()),
    "expires_at": bindparam("b_expires_at", type_=UTCDateTime()),
}
_THIS_KEY = (_C.scope == bindparam("b_scope"), _C.key == bindparam("b_key"))


def _claim_insert(insert: Any) -> Insert:
    statement: Insert = (
        insert(_RECORDS)
        .values(scope=bindparam("b_scope"), key=bindparam("b_key"), **_START)
        .on_conflict_do_nothing(index_elements=[_C.scope, _C.key])
        .returning(_C.token)
    )
    return statement


# A new key is claimed by one statement; a key already there is judged by the two below.
_CLAIM = {"postgresql": _claim_insert(postgresql.insert), "sqlite": _claim_insert(sqlite.insert)}
# A record past its retention, or the claim of a request that died (its lease ran out
# before it stored an answer) for the same request: taken over.
_TAKE_OVER = (
    update(_RECORDS)
    .where(
        *_THIS_KEY,
        or_(
            _C.expires_at <= _NOW,
            and_(
                _C.state == "running",
                _C.locked_until <= _NOW,
                _C.fingerprint == bindparam("b_fingerprint"),
            ),
        ),
    )
    .values(**_START)
    .returning(_C.token)
)
_JUDGE = select(
    _C.fingerprint, _C.state, _C.response_status, _C.response_headers, _C.response_body
).where(*_THIS_KEY)
_STILL_HELD = (*_THIS_KEY, _C.token == bindparam("b_token"), _C.state == "running")
_EXTEND = (
    update(_RECORDS)
    .where(*_STILL_HELD)
    .values(locked_until=bindparam("until", type_=UTCDateTime()))
)
_COMPLETE = (
    update(_RECORDS)
    .where(*_STILL_HELD)
    .values(
        state="done",
        response_status=bindparam("status", type_=_C.response_status.type),
        response_headers=bindparam("headers", type_=_C.response_headers.type),
        response_body=bindparam("body", type_=_C.response_body.type),
    )
)
_RELEASE = delete(_RECORDS).where(*_STILL_HELD)


def _held(held: Held) -> dict[str, str]:
    return {"b_scope": held.scope, "b_key": held.key, "b_token": held.token}


class IdempotencyRepository(Repository):
    async def claim(
        self, scope: str, key: str, fingerprint: str, now: datetime, policy: IdempotencyPolicy
    ) -> Claim:
        """Claim ``key`` for this request, or judge the record already there.

        On PostgreSQL the claim runs on an autocommit connection: each statement is
        atomic on its own (``ON CONFLICT DO NOTHING``, a conditional ``UPDATE``), and a
        new key costs one round trip. SQLite runs them in one ``BEGIN IMMEDIATE``.
        """
        bind = self.session.bind
        dialect = bind.dialect.name if bind is not None else ""
        if dialect == "postgresql" and isinstance(bind, AsyncEngine):
            # (A session bound to a connection - the tests' - works in its transaction.)
            await self.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        token = secrets.token_hex(16)
        params = {
            "b_scope": scope,
            "b_key": key,
            "b_fingerprint": fingerprint,
            "b_token": token,
            "now": now,
            "b_locked_until": now + policy.lease,
            "b_expires_at": now + policy.retention,
        }
        held = Held(scope, key, token)
        # A new key, the statement every keyed POST runs: straight to the driver on
        # PostgreSQL (``Repository.fetch``).
        if await self.fetch(_CLAIM[dialect], params):
            return Claim(ClaimOutcome.ACQUIRED, held)
        connection = await self.session.connection()
        if (await connection.execute(_TAKE_OVER, params)).first() is not None:
            return Claim(ClaimOutcome.ACQUIRED, held)
        record = (await connection.execute(_JUDGE, {"b_scope": scope, "b_key": key})).first()
        if record is None:
            # Released (or purged) a moment ago, between the statements: retry soon.
            return Claim(ClaimOutcome.IN_PROGRESS)
        if record.fingerprint != fingerprint:
            return Claim(ClaimOutcome.MISMATCH)
        if record.state == "done":
            answer = StoredAnswer(
                record.response_status or 200,
                record.response_headers or "[]",
                record.response_body or b"",
            )
            return Claim(ClaimOutcome.REPLAY, answer=answer)
        return Claim(ClaimOutcome.IN_PROGRESS)

    async def extend_lease(self, held: Held, until: datetime) -> None:
        await self.session.execute(_EXTEND, {**_held(held), "until": until})

    async def complete(
        self, held: Held, status: int, headers: list[tuple[str, str]], body: bytes
    ) -> bool:
        """Store the answer, if this request still holds the claim (its token)."""
        params = {**_held(held), "status": status, "headers": json.dumps(headers), "body": body}
        return await self.execute(_COMPLETE, params) == 1

    async def release(self, held: Held) -> None:
        await self.session.execute(_RELEASE, _held(held))

    async def purge_expired(self, now: datetime) -> int:
        result = await self.session.execute(
            delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= now)
        )
        return int(getattr(result, "rowcount", 0) or 0)


class _Captured:
    """The app's response, held back until the transaction has committed."""

    def __init__(self) -> None:
        self.status = 500
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = bytearray()
        self.complete = False

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
            self.headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")
            if not message.get("more_body", False):
                self.complete = True

    @property
    def storable(self) -> bool:
        """Only an answer about the request is kept; one about the moment (a rate limit,
        an unavailable database, a conflicting request still running) is not, so the
        same key succeeds once the moment has passed."""
        return self.complete and self.status < 500 and self.status not in _MOMENTARY

    @property
    def secret(self) -> bool:
        """An answer marked ``Cache-Control: no-store`` carries a secret shown only once."""
        return any(
            k.lower() == b"cache-control" and b"no-store" in v.lower() for k, v in self.headers
        )

    def stored_form(self) -> tuple[int, list[tuple[str, str]], bytes]:
        if not self.secret:
            return self.status, self.text_headers(), bytes(self.body)
        # Replaying would show the secret a second time: a retry learns that the first
        # request succeeded, and nothing more.
        problem = problem_response(
            409,
            "This request succeeded the first time; its answer held a secret that is shown "
            "only once.",
            slug="idempotency-secret-not-replayed",
            title="Answer not replayable",
        )
        return 409, [("content-type", PROBLEM_JSON)], bytes(problem.body)

    def text_headers(self) -> list[tuple[str, str]]:
        return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in self.headers]


Spool = tempfile.SpooledTemporaryFile[bytes]
# A body read ahead: bytes up to 1 MiB (the usual JSON), a spooled file beyond.
Body = bytes | Spool


class _ClientGone(Exception):
    """The client went away before its body was complete: nothing is claimed or run."""


async def _read_body(receive: Receive, headers: Headers) -> tuple[Body, str]:
    """Read the whole body (memory up to 1 MiB, then a file); also its SHA-256."""
    raw = hashlib.sha256()
    buffer = bytearray()
    spool: Spool | None = None
    size = 0
    try:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            raw.update(chunk)
            if spool is not None:
                spool.write(chunk)
            elif size > _SPOOL_IN_MEMORY:
                spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY)  # noqa: SIM115
                spool.write(buffer)
                spool.write(chunk)
                buffer = bytearray()
            else:
                buffer += chunk
            if not message.get("more_body", False):
                break
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) != size:
            raise _ClientGone
    except BaseException:
        if spool is not None:
            spool.close()  # a body cut off by the guard's limit leaves nothing behind
        raise
    if spool is not None:
        spool.seek(0)
        return spool, raw.hexdigest()
    return bytes(buffer), raw.hexdigest()


def _fingerprint(scope: Scope, media_type: str, key: str, body: Body, body_digest: str) -> str:
    """What makes two requests the same request.

    JSON bodies are fingerprinted in canonical form, so the same request sent with other
    white space or key order is recognised as the same.
    """
    if media_type == "application/json" and isinstance(body, bytes):
        with contextlib.suppress(ValueError, RecursionError):
            canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"))
            body_digest = hashlib.sha256(canonical.encode()).hexdigest()
    digest = hashlib.sha256()
    for part in (
        scope["method"],
        scope["path"],
        scope.get("query_string", b"").decode("latin-1"),
        media_type,
        key,
        body_digest,
    ):
        digest.update(part.encode("utf-8", "surrogateescape") + b"\0")
    return digest.hexdigest()


def _replaying_receive(body: Body, receive: Receive) -> Receive:
    done = False

    async def replay() -> Message:
        nonlocal done
        if done:
            return await receive()
        if isinstance(body, bytes):
            done = True
            return {"type": "http.request", "body": body, "more_body": False}
        chunk = body.read(_CHUNK)
        more = len(chunk) == _CHUNK
        done = not more
        return {"type": "http.request", "body": chunk, "more_body": more}

    return replay


def _caller(authorization: str) -> str | None:
    """The scope of a caller: the hash of its bearer credential (``Bearer`` in any case)."""
    scheme, _, credential = authorization.strip().partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential:
        return None
    return hash_key(credential)


async def _in_progress(send: Send, detail: str) -> None:
    """409 with Retry-After: another attempt with the key holds it (an answer about the
    moment, which the client retries)."""
    await send_problem(
        send,
        409,
        detail,
        slug="idempotency-in-progress",
        title="Request in progress",
        headers={"Retry-After": "1"},
    )


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, policy: IdempotencyPolicy | None = None) -> None:
        self.app = app
        self.policy = policy or IdempotencyPolicy()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        key = headers.get(HEADER)
        if key is None:
            await self.app(scope, receive, send)
            return
        if not _KEY_PATTERN.match(key):
            await send_problem(
                send,
                422,
                f"{HEADER} must be 1 to 255 visible ASCII characters.",
                slug="validation-error",
                title="Unprocessable Content",
                extra={"errors": [{"loc": ["header", HEADER], "msg": "invalid idempotency key"}]},
            )
            return
        caller = _caller(headers.get("authorization", ""))
        if caller is None or not isinstance(scope.get("state", {}).get("principal"), Principal):
            # A route without an API key: no scope to keep answers under. The request
            # guard, which runs first, has already refused every keyed route's caller
            # without a valid key, before any of the body was read.
            await self.app(scope, receive, send)
            return
        sessionmaker: async_sessionmaker[AsyncSession] = scope["app"].state.sessionmaker
        try:
            body, body_digest = await _read_body(receive, headers)
        except _ClientGone:
            return
        media_type = headers.get("content-type", "").split(";")[0].strip().lower()
        fingerprint = _fingerprint(scope, media_type, key, body, body_digest)
        # One session: the claim commits on its own, the request then runs in the
        # session's next transaction. Every path ends its transactions, so the session
        # is closed only if one was left (a close costs a task and a greenlet hop).
        session = sessionmaker()
        try:
            claim = await IdempotencyRepository(session).claim(
                caller, key, fingerprint, utcnow(), self.policy
            )
            await session.commit()
            if claim.outcome is ClaimOutcome.ACQUIRED:
                assert claim.held is not None
                replay = _replaying_receive(body, receive)
                await self._run(scope, replay, send, session, claim.held)
                return
        finally:
            if session.in_transaction():
                await session.close()
            if not isinstance(body, bytes):
                body.close()
        if claim.outcome is ClaimOutcome.REPLAY:
            assert claim.answer is not None
            await self._replay(send, claim.answer)
        elif claim.outcome is ClaimOutcome.MISMATCH:
            await send_problem(
                send,
                422,
                f"This {HEADER} was used for a different request.",
                slug="idempotency-key-reused",
                title="Idempotency key reused",
            )
        else:
            await _in_progress(
                send, f"A request with this {HEADER} is still being processed; retry later."
            )

    async def _replay(self, send: Send, answer: StoredAnswer) -> None:
        raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in json.loads(answer.headers)]
        raw.append((b"idempotent-replayed", b"true"))
        await send_raw(send, answer.status, raw, answer.body)

    async def _run(
        self, scope: Scope, receive: Receive, send: Send, session: AsyncSession, held: Held
    ) -> None:
        sessionmaker: async_sessionmaker[AsyncSession] = scope["app"].state.sessionmaker
        captured = _Captured()
        owned = OwnedTransaction(session)
        committed = False
        lost = False
        async with self._lease(sessionmaker, held):
            scope.setdefault("state", {})[OWNED_SESSION_STATE] = owned
            try:
                await self.app(scope, receive, captured.send)
                if captured.storable:
                    if owned.failed:
                        # The request raised: its changes are undone, and the answer the
                        # error handlers made of it is stored on its own.
                        await session.rollback()
                    status, headers, body = captured.stored_form()
                    if await IdempotencyRepository(session).complete(held, status, headers, body):
                        await session.commit()
                        committed = True
                    else:
                        # The lease ran out and a retry took the claim over: this attempt
                        # must not commit, or the request would take effect twice.
                        lost = True
            finally:
                if not committed:
                    await session.rollback()
                    if not lost:
                        await self._release(sessionmaker, held)
        if lost:
            await _in_progress(
                send,
                "A retry with this Idempotency-Key took over while this request ran; "
                "this attempt was rolled back.",
            )
            return
        await send_raw(send, captured.status, captured.headers, bytes(captured.body))

    def _lease(
        self, sessionmaker: async_sessionmaker[AsyncSession], held: Held
    ) -> contextlib.AbstractAsyncContextManager[None]:
        """Keep the claim alive while the request runs, so no retry takes it over."""

        async def renew() -> None:
            async with sessionmaker() as session:
                await IdempotencyRepository(session).extend_lease(
                    held, utcnow() + self.policy.lease
                )
                await session.commit()

        return heartbeat(renew, self.policy.lease, "idempotency")

    async def _release(self, sessionmaker: async_sessionmaker[AsyncSession], held: Held) -> None:
        try:
            async with sessionmaker() as session:
                await IdempotencyRepository(session).release(held)
                await session.commit()
        except Exception:  # the lease runs out and a retry takes the claim over
            logger.warning("could not release an idempotency claim", exc_info=True)


async def purge_expired_records(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    """Delete the records past their retention; returns how many."""
    async with sessionmaker() as session:
        purged = await IdempotencyRepository(session).purge_expired(utcnow())
        await session.commit()
    return purged
