"""The monthly job: on the configured day of the month (desk time), last month's
statement is issued for every customer with billable activity in it.

Every worker of every replica runs it from its housekeeping loop. Each customer is issued
in a transaction of its own; the unique (customer, period) of ``statements`` decides who
issues it, so however many run it at once, each customer gets one statement and one
``statement.issued``.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from supportdesk.config import BusinessRules
from supportdesk.kit.clock import utcnow
from supportdesk.statements.service import StatementService

logger = logging.getLogger("supportdesk.statements")


def last_month(today: date) -> tuple[date, date]:
    """The first and last day of the month before ``today``'s."""
    last = today.replace(day=1) - timedelta(days=1)
    return last.replace(day=1), last


async def issue_monthly_statements(
    sessionmaker: async_sessionmaker[AsyncSession],
    rules: BusinessRules,
    *,
    now: datetime | None = None,
) -> int:
    """Issue last month's statements if today is the statement day; how many were issued
    (by this call: those another worker issued first are not counted)."""
    if not rules.statement_day:
        return 0
    today = rules.calendar.local_date(now or utcnow())
    if today.day != rules.statement_day:
        return 0
    first, last = last_month(today)
    async with sessionmaker() as session:
        due = await StatementService(session, rules).customers_due(first, last)
    issued = 0
    for customer_id in due:
        try:
            async with sessionmaker.begin() as session:
                statement = await StatementService(session, rules).issue_if_due(
                    customer_id, first, last
                )
        except Exception:  # one customer's failure does not hold up the others
            logger.warning(
                "issuing the statement of %s for %s to %s failed",
                customer_id,
                first,
                last,
                exc_info=True,
            )
            continue
        if statement is not None:
            issued += 1
    if issued:
        logger.info("issued %d statements for %s to %s", issued, first, last)
    return issued
