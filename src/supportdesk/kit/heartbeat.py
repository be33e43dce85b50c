"""A lease kept alive while its holder works: renewed every third of its length.

The dispatcher and the mailer hold their claims with short leases (seconds, not the
length of a batch), so that the claims of a process that died are taken over soon; a
live holder keeps them with this heartbeat, however long its work takes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

logger = logging.getLogger("supportdesk.leases")


@contextlib.asynccontextmanager
async def heartbeat(
    renew: Callable[[], Awaitable[object]], lease: timedelta, what: str
) -> AsyncIterator[None]:
    """Call ``renew`` every ``lease / 3`` while the block runs. A renewal that fails is
    logged and tried again at the next beat: two may fail before the lease runs out.

    The beating task is only started at the first beat, by a timer: most blocks (an
    idempotent request) end long before it, and a timer costs a fraction of a task."""
    interval = lease.total_seconds() / 3

    async def beat() -> None:
        while True:
            try:
                await renew()
            except Exception:  # the next beat tries again
                logger.warning("could not renew the %s lease", what, exc_info=True)
            await asyncio.sleep(interval)

    loop = asyncio.get_running_loop()
    started: list[asyncio.Task[None]] = []
    timer = loop.call_later(interval, lambda: started.append(loop.create_task(beat())))
    try:
        yield
    finally:
        timer.cancel()
        for task in started:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
