"""The housekeeping queries that run against every ticket use their indexes."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from supportdesk.tickets.repository import sla_watch_query


async def _plan(session: AsyncSession, sql: str) -> str:
    if session.bind.dialect.name == "postgresql":
        # An empty table is cheapest to scan: make the planner show what it can use.
        await session.execute(text("SET LOCAL enable_seqscan = off"))
        return "\n".join(row[0] for row in await session.execute(text("EXPLAIN " + sql)))
    rows = await session.execute(text("EXPLAIN QUERY PLAN " + sql))
    return "\n".join(str(row[-1]) for row in rows)


class TestSlaSweepPlan:
    async def test_the_sla_sweep_is_a_range_scan_of_its_partial_index(
        self, session: AsyncSession
    ) -> None:
        query = sla_watch_query(session.bind.dialect.name == "postgresql").params(
            due_before=datetime(2026, 11, 21, 12, tzinfo=UTC), limit=1000, today=date(2026, 11, 21)
        )
        sql = str(
            query.compile(dialect=session.bind.dialect, compile_kwargs={"literal_binds": True})
        )
        plan = await _plan(session, sql)
        assert "ix_tickets_sla_watch" in plan, plan
