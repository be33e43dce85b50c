"""``Idempotency-Key`` for every POST of the API, in one place.

A POST that carries the header is run at most once per (caller, key):

1. The key is *claimed* in a short transaction of its own (state ``running``, with a
   lease kept alive while the request runs). A concurrent request with the same key
   sees the claim and gets 409; one with the same key and a different request gets 422.
2. The request runs in a transaction owned by this middleware. Its response is captured
   and written to the record **in the same transaction** as the request's own changes,
   so "the change happened" and "its answer is stored" commit together or not at all.
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

from sqlalchemy import ColumnElement, delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from supportdesk.db import OWNED_SESSION_STATE
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
class Claim:
    outcome: ClaimOutcome
    record: IdempotencyRecord | None = None


@dataclass(frozen=True)
class IdempotencyPolicy:
    retention: timedelta = timedelta(hours=24)
    lease: timedelta = timedelta(seconds=30)


class IdempotencyRepository(Repository):
    async def claim(
        self, scope: str, key: str, fingerprint: str, now: datetime, policy: IdempotencyPolicy
    ) -> Claim:
        record = await self.session.get(IdempotencyRecord, (scope, key), with_for_update=True)
        if record is None:
            record = IdempotencyRecord(scope=scope, key=key)
            self._start(record, fingerprint, now, policy)
            try:
                async with self.session.begin_nested():
                    self.session.add(record)
                    await self.session.flush()
            except IntegrityError:
                # Another request inserted the same key a moment ago: judge against it.
                record = await self.session.get(
                    IdempotencyRecord, (scope, key), populate_existing=True
                )
                if record is None or record.fingerprint == fingerprint:
                    if record is not None and record.state == "done":
                        return Claim(ClaimOutcome.REPLAY, record)
                    return Claim(ClaimOutcome.IN_PROGRESS)
                return Claim(ClaimOutcome.MISMATCH, record)
            return Claim(ClaimOutcome.ACQUIRED, record)
        if record.expires_at <= now:
            self._start(record, fingerprint, now, policy)
            await self.session.flush()
            return Claim(ClaimOutcome.ACQUIRED, record)
        if record.fingerprint != fingerprint:
            return Claim(ClaimOutcome.MISMATCH, record)
        if record.state == "done":
            return Claim(ClaimOutcome.REPLAY, record)
        if record.locked_until > now:
            return Claim(ClaimOutcome.IN_PROGRESS, record)
        # The first attempt died without committing anything: take its place.
        self._start(record, fingerprint, now, policy)
        await self.session.flush()
        return Claim(ClaimOutcome.ACQUIRED, record)

    @staticmethod
    def _start(
        record: IdempotencyRecord, fingerprint: str, now: datetime, policy: IdempotencyPolicy
    ) -> None:
        record.fingerprint = fingerprint
        record.token = secrets.token_hex(16)
        record.state = "running"
        record.response_status = None
        record.response_headers = None
        record.response_body = None
        record.created_at = now
        record.locked_until = now + policy.lease
        record.expires_at = now + policy.retention

    @staticmethod
    def _still_held(claim: IdempotencyRecord) -> tuple[ColumnElement[bool], ...]:
        """The claim's row, as long as this request still holds it."""
        return (
            IdempotencyRecord.scope == claim.scope,
            IdempotencyRecord.key == claim.key,
            IdempotencyRecord.token == claim.token,
            IdempotencyRecord.state == "running",
        )

    async def extend_lease(self, claim: IdempotencyRecord, until: datetime) -> None:
        await self.session.execute(
            update(IdempotencyRecord)
            .where(*self._still_held(claim))
            .values(locked_until=until)
            .execution_options(synchronize_session=False)
        )

    async def complete(
        self,
        claim: IdempotencyRecord,
        status: int,
        headers: list[tuple[str, str]],
        body: bytes,
    ) -> bool:
        """Store the answer, if this request still holds the claim (its token)."""
        result = await self.session.execute(
            update(IdempotencyRecord)
            .where(*self._still_held(claim))
            .values(
                state="done",
                response_status=status,
                response_headers=json.dumps(headers),
                response_body=body,
            )
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0) == 1

    async def release(self, claim: IdempotencyRecord) -> None:
        await self.session.execute(
            delete(IdempotencyRecord)
            .where(*self._still_held(claim))
            .execution_options(synchronize_session=False)
        )

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


class _ClientGone(Exception):
    """The client went away before its body was complete: nothing is claimed or run."""


async def _spool_body(receive: Receive, scope: Scope, key: str) -> tuple[Spool, str]:
    """Read the body to a spooled file (memory up to 1 MiB, then disk) and fingerprint it.

    JSON bodies are fingerprinted in canonical form, so the same request sent with other
    white space or key order is recognised as the same.
    """
    headers = Headers(scope=scope)
    media_type = headers.get("content-type", "").split(";")[0].strip().lower()
    raw = hashlib.sha256()
    spool: Spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY)  # noqa: SIM115
    size = 0
    try:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            raw.update(chunk)
            spool.write(chunk)
            if not message.get("more_body", False):
                break
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) != size:
            raise _ClientGone
    except BaseException:
        spool.close()  # a body cut off by the guard's limit leaves nothing behind
        raise
    body_digest = raw.hexdigest()
    if media_type == "application/json" and size <= _SPOOL_IN_MEMORY:
        spool.seek(0)
        with contextlib.suppress(ValueError, RecursionError):
            canonical = json.dumps(json.loads(spool.read()), sort_keys=True, separators=(",", ":"))
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
    spool.seek(0)
    return spool, digest.hexdigest()


def _replaying_receive(spool: Spool, receive: Receive) -> Receive:
    done = False

    async def replay() -> Message:
        nonlocal done
        if done:
            return await receive()
        chunk = spool.read(_CHUNK)
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
            spool, fingerprint = await _spool_body(receive, scope, key)
        except _ClientGone:
            return
        with spool:
            async with sessionmaker() as session:
                claim = await IdempotencyRepository(session).claim(
                    caller, key, fingerprint, utcnow(), self.policy
                )
                await session.commit()
            if claim.outcome is ClaimOutcome.ACQUIRED:
                assert claim.record is not None
                await self._run(scope, _replaying_receive(spool, receive), send, claim.record)
            elif claim.outcome is ClaimOutcome.REPLAY:
                assert claim.record is not None
                await self._replay(send, claim.record)
            elif claim.outcome is ClaimOutcome.MISMATCH:
                await send_problem(
                    send,
                    422,
                    f"This {HEADER} was used for a different request.",
                    slug="idempotency-key-reused",
                    title="Idempotency key reused",
                )
            else:
                await send_problem(
                    send,
                    409,
                    f"A request with this {HEADER} is still being processed; retry later.",
                    slug="idempotency-in-progress",
                    title="Request in progress",
                    headers={"Retry-After": "1"},
                )

    async def _replay(self, send: Send, record: IdempotencyRecord) -> None:
        stored = json.loads(record.response_headers or "[]")
        raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in stored]
        raw.append((b"idempotent-replayed", b"true"))
        await send_raw(send, record.response_status or 200, raw, record.response_body or b"")

    async def _run(
        self, scope: Scope, receive: Receive, send: Send, claim: IdempotencyRecord
    ) -> None:
        sessionmaker: async_sessionmaker[AsyncSession] = scope["app"].state.sessionmaker
        captured = _Captured()
        committed = False
        lost = False
        async with self._lease(sessionmaker, claim), sessionmaker() as session:
            scope.setdefault("state", {})[OWNED_SESSION_STATE] = session
            try:
                await self.app(scope, receive, captured.send)
                if captured.storable:
                    status, headers, body = captured.stored_form()
                    if await IdempotencyRepository(session).complete(claim, status, headers, body):
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
                        await self._release(sessionmaker, claim)
        if lost:
            await send_problem(
                send,
                409,
                "A retry with this Idempotency-Key took over while this request ran; "
                "this attempt was rolled back.",
                slug="idempotency-in-progress",
                title="Request in progress",
                headers={"Retry-After": "1"},
            )
            return
        await send_raw(send, captured.status, captured.headers, bytes(captured.body))

    def _lease(
        self, sessionmaker: async_sessionmaker[AsyncSession], claim: IdempotencyRecord
    ) -> contextlib.AbstractAsyncContextManager[None]:
        """Keep the claim alive while the request runs, so no retry takes it over."""

        async def renew() -> None:
            async with sessionmaker() as session:
                await IdempotencyRepository(session).extend_lease(
                    claim, utcnow() + self.policy.lease
                )
                await session.commit()

        return heartbeat(renew, self.policy.lease, "idempotency")

    async def _release(
        self, sessionmaker: async_sessionmaker[AsyncSession], claim: IdempotencyRecord
    ) -> None:
        try:
            async with sessionmaker() as session:
                await IdempotencyRepository(session).release(claim)
                await session.commit()
        except Exception:  # the lease runs out and a retry takes the claim over
            logger.warning("could not release an idempotency claim", exc_info=True)


async def purge_expired_records(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    """Delete the records past their retention; returns how many."""
    async with sessionmaker() as session:
        purged = await IdempotencyRepository(session).purge_expired(utcnow())
        await session.commit()
    return purged
