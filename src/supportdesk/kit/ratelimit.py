"""Rate limits per API key, and stricter ones for failed authentication, across workers.

The counts live in the database (``rate_limit_windows``), one row per bucket and fixed
window, so every worker and every replica on the same database shares them. A request
does not pay a database round trip each: a worker takes *tokens* from the shared count
in small batches (a twentieth of the limit, at most 100) and spends them locally. The
count only ever grows by what was taken, so all workers together never admit more than
the limit; a worker's unspent tokens at the end of a window are lost, which makes the
limit at most a batch per worker stricter, never looser. Once a window's tokens are gone
the worker refuses locally until the window ends, without asking the database again.

Failed authentication is counted exactly (batches of one) per client address, and
checked before a key is looked up, so that guessing keys is slow everywhere at once.
Wrong remote-session codes have their own, stricter throttle (sessions.service).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from supportdesk.errors import TooManyRequests
from supportdesk.kit.clock import utcnow
from supportdesk.kit.repository import Repository
from supportdesk.models import RateLimitWindow

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_BATCH = 100


class RateLimitRepository(Repository):
    async def take(self, bucket: str, window_start: datetime, tokens: int) -> int:
        """Add ``tokens`` to the bucket's count in this window; the count afterwards."""
        insert = pg_insert if self.is_postgres else sqlite_insert
        stmt = insert(RateLimitWindow).values(bucket=bucket, window_start=window_start, hits=tokens)
        upsert = stmt.on_conflict_do_update(
            index_elements=[RateLimitWindow.bucket, RateLimitWindow.window_start],
            set_={"hits": RateLimitWindow.hits + tokens},
        ).returning(RateLimitWindow.hits)
        return int((await self.session.execute(upsert)).scalar_one())

    async def count(self, bucket: str, window_start: datetime) -> int:
        stmt = select(RateLimitWindow.hits).where(
            RateLimitWindow.bucket == bucket, RateLimitWindow.window_start == window_start
        )
        return int((await self.session.execute(stmt)).scalar_one_or_none() or 0)

    async def purge_before(self, before: datetime) -> int:
        result = await self.session.execute(
            delete(RateLimitWindow).where(RateLimitWindow.window_start < before)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Limit:
    """``requests`` per ``window``; 0 requests switches the limit off."""

    requests: int
    window: timedelta

    @property
    def enabled(self) -> bool:
        return self.requests > 0

    @property
    def batch(self) -> int:
        return max(1, min(MAX_BATCH, self.requests // 20))

    def window_start(self, now: datetime) -> datetime:
        seconds = self.window.total_seconds()
        index = math.floor((now - _EPOCH).total_seconds() / seconds)
        return _EPOCH + timedelta(seconds=index * seconds)

    def retry_after(self, now: datetime) -> int:
        """Whole seconds until the window that ``now`` falls in ends (at least 1)."""
        ends = self.window_start(now) + self.window
        return max(1, math.ceil((ends - now).total_seconds()))


@dataclass(frozen=True, slots=True)
class RateLimits:
    per_key: Limit
    auth_failures: Limit


class RateLimiter:
    """One per worker: the tokens it holds and the buckets it knows to be spent."""

    def __init__(self) -> None:
        self._tokens: dict[str, tuple[datetime, int]] = {}
        self._spent: dict[str, datetime] = {}

    def _refuse(self, limit: Limit, now: datetime, what: str) -> TooManyRequests:
        return TooManyRequests(
            f"{what}: at most {limit.requests} per {int(limit.window.total_seconds())} s. "
            "Retry after the time in Retry-After.",
            retry_after=limit.retry_after(now),
        )

    def _current_window(
        self, bucket: str, limit: Limit, what: str
    ) -> tuple[datetime, datetime] | None:
        """Now and the window it falls in; None when the limit is off. Refuses at once
        when this worker already knows the bucket's window to be spent."""
        if not limit.enabled:
            return None
        now = utcnow()
        window = limit.window_start(now)
        if self._spent.get(bucket) == window:
            raise self._refuse(limit, now, what)
        return now, window

    async def spend(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        bucket: str,
        limit: Limit,
        what: str,
    ) -> None:
        """Count one request against ``bucket``; TooManyRequests when the window's
        limit is reached."""
        current = self._current_window(bucket, limit, what)
        if current is None:
            return
        now, window = current
        held = self._tokens.get(bucket)
        if held is not None and held[0] == window and held[1] > 0:
            self._tokens[bucket] = (window, held[1] - 1)
            return
        async with sessionmaker() as session:
            total = await RateLimitRepository(session).take(bucket, window, limit.batch)
            await session.commit()
        granted = max(0, min(limit.batch, limit.requests - (total - limit.batch)))
        self._forget_old(window)
        if granted == 0:
            self._tokens.pop(bucket, None)
            self._spent[bucket] = window
            raise self._refuse(limit, now, what)
        self._tokens[bucket] = (window, granted - 1)

    async def check(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        bucket: str,
        limit: Limit,
        what: str,
    ) -> None:
        """Refuse when ``bucket`` has reached its limit in this window, counting nothing."""
        current = self._current_window(bucket, limit, what)
        if current is None:
            return
        now, window = current
        async with sessionmaker() as session:
            count = await RateLimitRepository(session).count(bucket, window)
        if count >= limit.requests:
            self._spent[bucket] = window
            raise self._refuse(limit, now, what)

    def _forget_old(self, window: datetime) -> None:
        if len(self._spent) > 10_000:
            self._spent = {k: w for k, w in self._spent.items() if w == window}
        if len(self._tokens) > 10_000:
            self._tokens = {k: v for k, v in self._tokens.items() if v[0] == window}


async def purge_old_windows(sessionmaker: async_sessionmaker[AsyncSession], keep: timedelta) -> int:
    """Delete counts of windows that ended more than ``keep`` ago."""
    async with sessionmaker() as session:
        purged = await RateLimitRepository(session).purge_before(utcnow() - keep)
        await session.commit()
    return purged
