from __future__ import annotations

from sqlalchemy import func, select

from supportdesk.kit.repository import Repository
from supportdesk.models import Ticket, WebhookJob


class MetricsRepository(Repository):
    async def queue_lengths(self) -> dict[int, int]:
        stmt = (
            select(Ticket.queue_group, func.count())
            .where(Ticket.status == "open")
            .group_by(Ticket.queue_group)
        )
        return {int(group): int(n) for group, n in (await self.session.execute(stmt)).all()}

    async def webhook_backlog(self) -> int:
        stmt = select(func.count()).select_from(WebhookJob).where(WebhookJob.state == "pending")
        return int((await self.session.execute(stmt)).scalar_one())
