"""The database's ceiling: one raw asyncpg INSERT per request, one row per transaction.

A bare ASGI application (no framework, no ORM, no validation) served by the same
uvicorn, with the same number of workers and the same pool size as the service, so that
`wrk` drives it exactly as it drives the service. What it reaches is what PostgreSQL on
this machine allows for one committed row per request; a write endpoint of the service
is measured as a ratio to it.

    SUPPORTDESK_BENCH_DSN=postgresql://... uvicorn raw_insert_app:app --workers 2
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any

import asyncpg

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

DDL = """
CREATE TABLE IF NOT EXISTS bench_raw_insert (
    id text PRIMARY KEY,
    payload text NOT NULL,
    created_at timestamptz NOT NULL
)
"""

_pool: asyncpg.Pool | None = None


async def _lifespan(receive: Receive, send: Send) -> None:
    global _pool
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            size = int(os.environ.get("SUPPORTDESK_DATABASE_POOL_SIZE", "10"))
            _pool = await asyncpg.create_pool(
                os.environ["SUPPORTDESK_BENCH_DSN"], min_size=size, max_size=size
            )
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if _pool is not None:
                await _pool.close()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    assert _pool is not None
    row_id = uuid.uuid4().hex
    async with _pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO bench_raw_insert (id, payload, created_at) VALUES ($1, $2, $3)",
            row_id,
            body.decode() or "{}",
            datetime.now(UTC),
        )
    answer = b'{"id":"' + row_id.encode() + b'"}'
    await send(
        {
            "type": "http.response.start",
            "status": 201,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": answer})
