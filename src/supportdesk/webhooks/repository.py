from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Select, exists, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from supportdesk.kit.pagination import PageParams, fetch_page
from supportdesk.kit.repository import Repository
from supportdesk.models import Event, UrlLease, WebhookDelivery, WebhookJob, WebhookSubscription

# The advisory lock the dispatchers' fan-outs take in turn (any constant of the service's own).
FAN_OUT_LOCK = 0x5D_F0_0F_A4


class WebhookRepository(Repository):
    def __init__(self, session: AsyncSession, owner: str | None = None) -> None:
        super().__init__(session)
        self.owner = owner

    def _subscriptions(self) -> Select[WebhookSubscription]:
        stmt = select(WebhookSubscription)
        if self.owner is not None:
            stmt = stmt.where(WebhookSubscription.created_by == self.owner)
        return stmt

    async def get_subscription(self, subscription_id: str) -> WebhookSubscription | None:
        stmt = self._subscriptions().where(WebhookSubscription.id == subscription_id)
        return (await self.session.scalars(stmt)).one_or_none()

    async def list_subscriptions(
        self, params: PageParams
    ) -> tuple[list[WebhookSubscription], str | None]:
        return await fetch_page(self.session, self._subscriptions(), WebhookSubscription.id, params)

    async def list_deliveries(
        self, subscription_id: str, params: PageParams
    ) -> tuple[list[WebhookDelivery], str | None]:
        stmt = select(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription_id)
        return await fetch_page(self.session, stmt, WebhookDelivery.id, params)

    # The dispatcher's queries -----------------------------------------------------------

    async def active_subscriptions(self) -> list[WebhookSubscription]:
        stmt = select(WebhookSubscription).where(WebhookSubscription.active.is_(True))
        return list((await self.session.scalars(stmt)).all())

    async def events_to_fan_out(self, limit: int) -> list[Event]:
        """The next events to turn into jobs, oldest first, for one dispatcher at a time.

        Jobs are delivered in the order of their ids, per resource; so the fan-outs of
        several dispatchers (replicas) must not overlap: with row locks skipped, one could
        insert the jobs of a resource's later event before another inserted those of its
        earlier one. On PostgreSQL a transaction-level advisory lock takes them in turn
        (SQLite's write lock already does); the lock ends with the transaction.
        """
        if self.is_postgres:
            await self.session.execute(select(func.pg_advisory_xact_lock(FAN_OUT_LOCK)))
        stmt = select(Event).where(Event.fanned_out.is_(False)).order_by(Event.id).limit(limit)
        return list((await self.session.scalars(stmt)).all())

    async def due_jobs(self, now: datetime, limit: int) -> list[WebhookJob]:
        """Pending jobs that are due, not held by a dispatcher, and first in line for
        their subscription and resource (deliveries go out in order per resource)."""
        earlier = aliased(WebhookJob)
        stmt = (
            select(WebhookJob)
            .where(
                WebhookJob.state == "pending",
                WebhookJob.next_attempt_at <= now,
                (WebhookJob.locked_until.is_(None)) | (WebhookJob.locked_until < now),
                ~exists().where(
                    earlier.subscription_id == WebhookJob.subscription_id,
                    earlier.resource_key == WebhookJob.resource_key,
                    earlier.state == "pending",
                    earlier.id < WebhookJob.id,
                ),
            )
            .order_by(WebhookJob.id)
            .limit(limit)
        )
        if self.is_postgres:
            stmt = stmt.with_for_update(of=WebhookJob, skip_locked=True)
        return list((await self.session.scalars(stmt)).all())

    async def take_url_lease(
        self, url_key: str, owner: str, now: datetime, until: datetime
    ) -> bool:
        """Hold the receiving URL for ``owner``, unless another dispatcher holds it (its
        lease has not run out: a delivery to it is in flight)."""
        result = await self.session.execute(
            update(UrlLease)
            .where(UrlLease.url_key == url_key, UrlLease.locked_until < now)
            .values(owner=owner, locked_until=until)
            .execution_options(synchronize_session=False)
        )
        if int(getattr(result, "rowcount", 0) or 0) == 1:
            return True
        try:
            async with self.session.begin_nested():
                await self.session.execute(
                    insert(UrlLease).values(url_key=url_key, owner=owner, locked_until=until)
                )
        except IntegrityError:
            return False
        return True

    async def renew_url_leases(
        self, owner: str, held: Mapping[str, Collection[int]], until: datetime
    ) -> set[str]:
        """Extend the leases ``owner`` still holds on these URLs, and on its jobs for
        them; returns the URLs still held (the others were taken over)."""
        held = {key: list(ids) for key, ids in held.items()}  # it changes while we wait
        if not held:
            return set()
        # The jobs first, then the URLs: the order a claim locks them in (no deadlock).
        job_ids = sorted(job_id for ids in held.values() for job_id in ids)
        if job_ids:
            await self.session.execute(
                update(WebhookJob)
                .where(
                    WebhookJob.id.in_(job_ids),
                    WebhookJob.owner == owner,
                    WebhookJob.state == "pending",
                )
                .values(locked_until=until)
                .execution_options(synchronize_session=False)
            )
        return set(
            (
                await self.session.scalars(
                    update(UrlLease)
                    .where(UrlLease.url_key.in_(sorted(held)), UrlLease.owner == owner)
                    .values(locked_until=until)
                    .returning(UrlLease.url_key)
                    .execution_options(synchronize_session=False)
                )
            ).all()
        )

    async def release_url_lease(self, url_key: str, owner: str, now: datetime) -> None:
        """Free the URL; a heartbeat of ``owner`` that renews after this finds it gone."""
        await self.session.execute(
            update(UrlLease)
            .where(UrlLease.url_key == url_key, UrlLease.owner == owner)
            .values(owner=None, locked_until=now)
            .execution_options(synchronize_session=False)
        )

    async def finish_attempt(self, job_id: int, owner: str, values: Mapping[str, Any]) -> bool:
        """Write an attempt's outcome to the job, if ``owner`` still holds it: False when
        another dispatcher took it over (or it is gone), and nothing is written."""
        result = await self.session.execute(
            update(WebhookJob)
            .where(
                WebhookJob.id == job_id,
                WebhookJob.owner == owner,
                WebhookJob.state == "pending",
            )
            .values(owner=None, locked_until=None, **values)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0) == 1

    async def get_event(self, event_id: str) -> Event | None:
        return await self.session.get(Event, event_id)

    async def get_subscription_any(self, subscription_id: str) -> WebhookSubscription | None:
        return await self.session.get(WebhookSubscription, subscription_id)
