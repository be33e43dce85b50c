"""Schema fuzzing: schemathesis against the in-process app, every operation, every check.

The run is the one ``schemathesis run --checks all`` makes: the examples, coverage,
fuzzing and stateful phases over all operations of ``/openapi.json``, with positive and
negative data, as an admin. It is driven from Python so that it runs on both backends,
inside the test's rolled-back connection like every other database test.

Every check is on. One is narrowed, for a reason: ``use_after_free`` is off for reads of
API keys and webhooks, whose DELETE is a documented soft delete (the key stays readable
with ``revoked_at``, the subscription with ``active: false`` and its delivery log), so a
200 after it is the contract, not a use after free. (``object_level_authorization`` needs
several identities and ``max_response_time`` a limit; with one admin and no limit they do
nothing.)

Positive cases are generated to keep what a client can know but the schema cannot say:
the business rules in ``BUSINESS_RULES`` and server-issued tokens (``send_fresh_tokens``).
Everything else the schema allows must be accepted.

The run is deterministic (fixed seed, derandomized, no example database). To search
further: ``SUPPORTDESK_FUZZ_SEED=7 SUPPORTDESK_FUZZ_EXAMPLES=100 pytest tests/fuzz``.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from schemathesis.engine import Status, events
from schemathesis.python import asgi
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import _postgres_database
from supportdesk import migrate
from supportdesk.config import Settings
from supportdesk.db import build_engine
from supportdesk.kit.clock import in_accepted_range
from supportdesk.statements.service import MAX_PERIOD as STATEMENT_PERIOD
from supportdesk.webhooks.service import InvalidWebhookUrl, check_url_form

pytestmark = pytest.mark.db


# The fuzzer gets a fresh database of its own, per backend. The shared test database
# holds what the live-app tests commit (customers, tickets, attachments whose files lie
# elsewhere); a fuzzer that lists and follows those would explore differently depending
# on which tests ran before it. On a fresh, migrated database the seeded run is the same
# in the whole suite as on its own.
@pytest.fixture
async def engine(database_url: str, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    if database_url.startswith("sqlite"):
        url = f"sqlite+aiosqlite:///{tmp_path / 'fuzz.db'}"
        await asyncio.to_thread(migrate.upgrade, url)
        fresh = build_engine(Settings(database_url=url))
        yield fresh
        await fresh.dispose()
        return
    async for url in _postgres_database():
        await asyncio.to_thread(migrate.upgrade, url)
        fresh = build_engine(Settings(database_url=url))
        yield fresh
        await fresh.dispose()


SEED = int(os.environ.get("SUPPORTDESK_FUZZ_SEED", "20251121"))
MAX_EXAMPLES = int(os.environ.get("SUPPORTDESK_FUZZ_EXAMPLES", "20"))

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class LoopBridge:
    """An ASGI app that forwards each HTTP request to ``app`` on the test's event loop.

    Schemathesis is synchronous and calls an ASGI app on an event loop of its own, in a
    thread of its own; the app under test must run on the test's loop, where its database
    connection lives. The request body is read on schemathesis' loop, the app runs on the
    test's loop, and its messages are replayed on schemathesis' loop.
    """

    def __init__(self, app: FastAPI, loop: asyncio.AbstractEventLoop) -> None:
        self.app = app
        self.loop = loop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            # The app's own lifespan is not run (see the ``app`` fixture).
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        future = asyncio.run_coroutine_threadsafe(self._handle(dict(scope), body), self.loop)
        for message in await asyncio.wrap_future(future):
            await send(message)

    async def _handle(self, scope: Scope, body: bytes) -> list[Message]:
        sent: list[Message] = []
        done = asyncio.Event()
        delivered = False

        async def receive() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            # Like a server: the client goes away only once the response is complete.
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            sent.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                done.set()

        try:
            await self.app(scope, receive, send)
        finally:
            done.set()
        return sent


def _positive(case: schemathesis.Case) -> bool:
    return case.meta is not None and case.meta.generation.mode.is_positive


def _holds_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False


def _body(case: schemathesis.Case) -> dict[str, Any]:
    return case.body if isinstance(case.body, dict) else {}


def _date(value: object) -> date | None:
    try:
        return date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _instant(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _instants_in_range(value: object) -> bool:
    """Every instant the API takes lies in the years 1900 to 2999 (``kit.clock``)."""
    if isinstance(value, dict):
        return all(_instants_in_range(item) for item in value.values())
    if isinstance(value, list):
        return all(_instants_in_range(item) for item in value)
    instant = _instant(value)
    if instant is None or instant.tzinfo is None:
        return True
    try:
        in_accepted_range(instant)
    except ValueError:
        return False
    return True


def _key_binding(case: schemathesis.Case) -> bool:
    """Only a customer key is bound to a customer, and it must be."""
    body = _body(case)
    return (body.get("role") == "customer") == (body.get("customer_id") is not None)


def _contract_dates(case: schemathesis.Case) -> bool:
    """A contract does not end before it starts."""
    starts, ends = _date(_body(case).get("starts_on")), _date(_body(case).get("ends_on"))
    return starts is None or ends is None or starts <= ends


def _appointments(case: schemathesis.Case) -> bool:
    """A proposed appointment ends after it starts."""
    for item in _body(case).get("proposed_appointments") or []:
        starts, ends = _instant(item.get("starts_at")), _instant(item.get("ends_at"))
        if starts is not None and ends is not None and ends <= starts:
            return False
    return True


def _new_ticket(case: schemathesis.Case) -> bool:
    """Only a customer-bound key may leave out customer_id; the fuzzer's key is an admin's."""
    return _body(case).get("customer_id") is not None and _appointments(case)


def _statement_period(case: schemathesis.Case) -> bool:
    """A statement's period runs forward, over ten years at most."""
    first, last = _date((case.query or {}).get("from")), _date((case.query or {}).get("to"))
    return first is None or last is None or first <= last <= first + STATEMENT_PERIOD


def _issued_period(case: schemathesis.Case) -> bool:
    """The same rule for the period a statement is issued for."""
    first, last = _date(_body(case).get("from")), _date(_body(case).get("to"))
    return first is None or last is None or first <= last <= first + STATEMENT_PERIOD


def _webhook_url(case: schemathesis.Case) -> bool:
    """http or https, a host, no credentials, a numeric port. (No DNS: the fuzzed app
    allows private addresses, as the webhook tests do.)"""
    try:
        check_url_form(str(_body(case).get("url")))
    except InvalidWebhookUrl:
        return False
    return True


# Rules of API.md and DOMAIN.md that a JSON Schema cannot state, each refused with a 422
# by design. A request the schema allows but one of these refuses is not "valid data"
# for positive_data_acceptance, so positive cases are drawn from requests that keep them.
BUSINESS_RULES: dict[str, Callable[[schemathesis.Case], bool]] = {
    "POST /api/v1/api-keys": _key_binding,
    "POST /api/v1/contracts": _contract_dates,
    "POST /api/v1/tickets": _new_ticket,
    "PATCH /api/v1/tickets/{ticket_id}": _appointments,
    "GET /api/v1/customers/{customer_id}/statement": _statement_period,
    "POST /api/v1/customers/{customer_id}/statements": _issued_period,
    "POST /api/v1/webhooks": _webhook_url,
}


def keep_business_rules(_context: schemathesis.HookContext, case: schemathesis.Case) -> bool:
    """filter_case: positive cases keep the rules above, hold no NUL in their bodies
    (no text may: PostgreSQL cannot store it, see RequestModel) and no instant outside
    the range the API takes."""
    if not _positive(case):
        return True
    if _holds_nul(case.body):
        return False
    if not (_instants_in_range(case.body) and _instants_in_range(case.query)):
        return False
    rule = BUSINESS_RULES.get(case.operation.label)
    return rule is None or rule(case)


IDEMPOTENCY_KEY = re.compile(r"[!-~]{1,255}")
_idempotency_keys = itertools.count()


def send_fresh_tokens(
    _context: schemathesis.HookContext, case: schemathesis.Case
) -> schemathesis.Case:
    """map_case: what a client cannot make up, a positive case leaves out; what a client
    must make unique, every case makes unique.

    A ``cursor`` is the ``next_cursor`` of an earlier page and ``If-Match`` an ETag the
    server sent: any other value is rightly refused (422, 412). An ``Idempotency-Key``
    promises that one key means one request: a key reused with another request is rightly
    refused (422), so every well-formed key is replaced by a fresh one (an ill-formed one
    stays, for the negative cases).
    """
    if _positive(case):
        if case.query:
            case.query.pop("cursor", None)
        if case.headers:
            case.headers.pop("If-Match", None)
    if case.headers and IDEMPOTENCY_KEY.fullmatch(str(case.headers.get("Idempotency-Key", ""))):
        case.headers["Idempotency-Key"] = f"fuzz-{next(_idempotency_keys)}"
    return case


def examples_keep_business_rules(
    context: schemathesis.HookContext, examples: list[schemathesis.Case]
) -> None:
    """before_add_examples: the same for the cases built from the schema's examples."""
    examples[:] = [
        send_fresh_tokens(context, case) for case in examples if keep_business_rules(context, case)
    ]


def fuzz_config(secret: str) -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "workers": 1,  # one connection under test: requests go one at a time
            "cache": {"enabled": False},
            "auth": {"openapi": {"HTTPBearer": {"bearer": secret}}},
            "checks": {"enabled": True},
            "generation": {
                "mode": "all",
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                "database": "none",
            },
            "phases": {
                "examples": {"enabled": True},
                "coverage": {"enabled": True},
                "fuzzing": {"enabled": True},
                "stateful": {"enabled": True},
            },
            "operations": [
                {
                    # The soft deletes of the module docstring.
                    "include-operation-id": [
                        "api_keys_get",
                        "webhooks_get",
                        "webhooks_deliveries_list",
                    ],
                    "checks": {"use_after_free": {"enabled": False}},
                }
            ],
        }
    )


def _failures(stream: list[events.EngineEvent]) -> list[str]:
    found: list[str] = []
    for event in stream:
        if isinstance(event, events.NonFatalError):
            found.append(f"{event.label}: {event.info.title}\n  {event.info.message}")
        elif isinstance(event, events.FatalError):
            found.append(f"fatal: {event.exception!r}")
        elif isinstance(event, events.ScenarioFinished):
            recorder = event.recorder
            for case_id, checks in recorder.checks.items():
                for check in checks:
                    if check.status != Status.FAILURE or check.failure_info is None:
                        continue
                    failure = check.failure_info.failure
                    interaction = recorder.interactions.get(case_id)
                    response = interaction.response if interaction is not None else None
                    answer = (
                        f"[{response.status_code}] {response.content[:500]!r}"
                        if response is not None
                        else "no response"
                    )
                    found.append(
                        f"{event.phase.value} {recorder.label}: {check.name}: {failure.title}\n"
                        f"  {failure.message}\n  {answer}\n  {check.failure_info.code_sample}"
                    )
    return found


def _tested_operations(stream: list[events.EngineEvent]) -> tuple[set[str], int]:
    labels: set[str] = set()
    cases = 0
    for event in stream:
        if isinstance(event, events.ScenarioFinished):
            cases += len(event.recorder.cases)
            labels.update(node.value.operation.label for node in event.recorder.cases.values())
    return labels, cases


async def test_schemathesis_finds_nothing(
    app: FastAPI, settings: Settings, headers_for: Callable[..., Awaitable[dict[str, str]]]
) -> None:
    settings.webhooks_allow_private = True  # no DNS lookups of generated hosts
    secret = (await headers_for("admin"))["Authorization"].removeprefix("Bearer ")
    bridge = LoopBridge(app, asyncio.get_running_loop())

    def run() -> tuple[set[str], list[events.EngineEvent]]:
        try:
            schema = schemathesis.openapi.from_asgi(
                "/openapi.json", bridge, config=fuzz_config(secret)
            )
            schema.hook("filter_case")(keep_business_rules)
            schema.hook("map_case")(send_fresh_tokens)
            schema.hook("before_add_examples")(examples_keep_business_rules)
            operations = {result.ok().label for result in schema.get_all_operations()}
            return operations, list(schemathesis.engine.from_schema(schema).execute())
        finally:
            # Schemathesis keeps started ASGI apps until exit; this one's connection goes now.
            asgi.shutdown_lifespans()

    started = time.monotonic()
    operations, stream = await asyncio.to_thread(run)
    elapsed = time.monotonic() - started
    tested, cases = _tested_operations(stream)
    print(
        f"\nschemathesis (seed {SEED}): {len(tested)}/{len(operations)} operations, "
        f"{cases} requests, {elapsed:.0f}s"
    )
    failures = _failures(stream)
    assert not failures, "\n\n".join(failures)
    assert tested == operations, f"never tested: {sorted(operations - tested)}"
