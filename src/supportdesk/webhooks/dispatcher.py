"""Delivering the outbox: at least once, signed, in order per resource, one at a time
per receiving URL, safe with several dispatchers (workers, replicas) at once.

Each round: events not yet fanned out become one job per matching subscription; due
jobs are claimed (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the single writer on
SQLite) with a lease on the job and on its URL; the POSTs go out outside any
transaction; the outcome is written back.

The leases name their owner (a random id per dispatcher) and last
``webhook_lease_seconds``: a heartbeat renews them every third of that while the round
runs, and the write-back of each job renews them before the next job of the URL, so a
batch or a slow receiver never needs a longer lease. A dispatcher that dies (or loses
the database for longer than the lease) stops renewing; another takes its URLs and jobs
over once the leases run out and delivers the job that was in flight again: at least
once. Only the owner writes an outcome back, so a dispatcher that lost its lease never
overwrites what the new owner recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import random
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from supportdesk.config import Settings
from supportdesk.kit.clock import utcnow
from supportdesk.kit.heartbeat import heartbeat
from supportdesk.kit.ids import new_id
from supportdesk.models import Event, WebhookDelivery, WebhookJob
from supportdesk.webhooks.repository import WebhookRepository
from supportdesk.webhooks.service import InvalidWebhookUrl, delivery_target
from supportdesk.webhooks.transport import delivery_client, pinned

logger = logging.getLogger("supportdesk.webhooks")

SIGNATURE_HEADER = "X-Supportdesk-Signature"
FAN_OUT_BATCH = 500
CLAIM_BATCH = 50


def url_key(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">``, as receivers verify it."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def event_body(event: Event) -> bytes:
    payload = {
        "id": event.id,
        "type": event.type,
        "occurred_at": event.occurred_at.isoformat().replace("+00:00", "Z"),
        "data": event.data,
    }
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class Claimed:
    job_id: int
    subscription_id: str
    created_at: datetime
    url: str
    url_key: str
    secret: str
    event_id: str
    event_type: str
    body: bytes
    attempt: int


class Dispatcher:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.client = client or delivery_client(settings.webhook_timeout_seconds)
        self._stopping = asyncio.Event()
        # Who holds a lease: this dispatcher, and no other in this process or elsewhere.
        self.owner = secrets.token_hex(16)
        self.lease = timedelta(seconds=settings.webhook_lease_seconds)

    async def run_forever(self) -> None:
        """Rounds until ``stop()``: a round under way is finished, not cut off, so the
        deliveries in flight at shutdown complete and are recorded."""
        while not self._stopping.is_set():
            try:
                await self.run_once()
            except Exception:  # the next round tries again
                logger.warning("webhook dispatch round failed", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._stopping.wait(), timeout=self.settings.webhook_poll_seconds
                )

    def stop(self) -> None:
        self._stopping.set()

    async def run_once(self) -> int:
        """One round; returns how many deliveries were attempted."""
        await self.fan_out()
        claimed = await self.claim()
        by_url: dict[str, list[Claimed]] = {}
        for job in claimed:
            by_url.setdefault(job.url_key, []).append(job)
        # What this dispatcher holds: per URL, the jobs not yet written back.
        held = {key: [job.job_id for job in jobs] for key, jobs in by_url.items()}
        async with heartbeat(lambda: self._renew(held), self.lease, "webhook"):
            # URLs in parallel; the jobs of one URL one after another, in their order.
            await asyncio.gather(*(self._deliver_in_turn(jobs, held) for jobs in by_url.values()))
        return len(claimed)

    async def _deliver_in_turn(self, jobs: list[Claimed], held: dict[str, list[int]]) -> None:
        key = jobs[0].url_key
        for index, job in enumerate(jobs):
            if key not in held:  # taken over: the new owner delivers the rest
                logger.warning("lost the lease of %s; another dispatcher delivers to it", job.url)
                return
            last = index == len(jobs) - 1
            await self.deliver(job, release=last, held=held)
            if last:
                held.pop(key, None)
            elif key in held:
                held[key].remove(job.job_id)

    async def _renew(self, held: dict[str, list[int]]) -> None:
        async with self.sessionmaker() as session:
            kept = await WebhookRepository(session).renew_url_leases(
                self.owner, held, utcnow() + self.lease
            )
            await session.commit()
        for key in set(held) - kept:
            held.pop(key, None)

    async def fan_out(self) -> int:
        async with self.sessionmaker() as session:
            repo = WebhookRepository(session)
            events = await repo.events_to_fan_out(FAN_OUT_BATCH)
            if not events:
                await session.rollback()
                return 0
            subscriptions = await repo.active_subscriptions()
            now = utcnow()
            for event in events:
                for subscription in subscriptions:
                    # A subscription hears what happens from its creation on.
                    if (
                        event.type in subscription.events
                        and event.occurred_at >= subscription.created_at
                    ):
                        session.add(
                            WebhookJob(
                                subscription_id=subscription.id,
                                event_id=event.id,
                                event_type=event.type,
                                resource_key=f"{event.resource_type}:{event.resource_id}",
                                url_key=url_key(subscription.url),
                                state="pending",
                                attempts=0,
                                next_attempt_at=now,
                                created_at=now,
                            )
                        )
                event.fanned_out = True
            await session.commit()
            return len(events)

    async def claim(self) -> list[Claimed]:
        async with self.sessionmaker() as session:
            repo = WebhookRepository(session)
            now = utcnow()
            until = now + self.lease
            claimed: list[Claimed] = []
            leased: set[str] = set()
            refused: set[str] = set()
            for job in await repo.due_jobs(now, CLAIM_BATCH):
                subscription = await repo.get_subscription_any(job.subscription_id)
                event = await repo.get_event(job.event_id)
                if subscription is None or event is None or not subscription.active:
                    job.state, job.finished_at = "failed", now
                    continue
                if job.url_key in refused:
                    continue
                if job.url_key not in leased:
                    if not await repo.take_url_lease(job.url_key, self.owner, now, until):
                        refused.add(job.url_key)  # another delivery to it is in flight
                        continue
                    leased.add(job.url_key)
                job.owner, job.locked_until = self.owner, until
                claimed.append(
                    Claimed(
                        job_id=job.id,
                        subscription_id=job.subscription_id,
                        created_at=job.created_at,
                        url=subscription.url,
                        url_key=job.url_key,
                        secret=subscription.secret,
                        event_id=event.id,
                        event_type=event.type,
                        body=event_body(event),
                        attempt=job.attempts + 1,
                    )
                )
            await session.commit()
            return claimed

    async def _post(self, job: Claimed) -> tuple[int | None, str | None]:
        try:
            host, port, address = await delivery_target(
                job.url, allow_private=self.settings.webhooks_allow_private
            )
        except InvalidWebhookUrl as exc:
            return None, str(exc)
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "supportdesk-webhooks/1",
            SIGNATURE_HEADER: sign(job.secret, timestamp, job.body),
            "X-Supportdesk-Event": job.event_type,
            "X-Supportdesk-Delivery": job.event_id,
        }
        try:
            # The connection goes to the address just checked, not to a new lookup.
            with pinned(host, port, address):
                response = await self.client.post(job.url, content=job.body, headers=headers)
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"[:500]
        return response.status_code, None

    def _backoff(self, attempts: int) -> timedelta:
        """Exponential, with jitter so that many failed receivers do not retry in step."""
        base = self.settings.webhook_retry_base_seconds * 2 ** max(0, attempts - 1)
        delay = min(base, self.settings.webhook_retry_max_seconds)
        return timedelta(seconds=delay * random.uniform(0.8, 1.2))  # noqa: S311 - jitter

    async def deliver(
        self,
        job: Claimed,
        *,
        release: bool = True,
        held: dict[str, list[int]] | None = None,
    ) -> bool:
        """POST one claimed job and write the outcome back, if this dispatcher still owns
        the job (another may have taken it over: its record stands). Then either release
        the URL (``release``) or renew the leases on it and on the jobs of ``held`` still
        to come. Returns whether the receiver accepted it."""
        started = time.perf_counter()
        status, error = await self._post(job)
        latency = int((time.perf_counter() - started) * 1000)
        delivered = status is not None and 200 <= status < 300
        async with self.sessionmaker() as session:
            repo = WebhookRepository(session)
            now = utcnow()
            outcome: dict[str, object] = {"attempts": job.attempt}
            if delivered:
                outcome.update(state="delivered", finished_at=now)
            elif now - job.created_at > timedelta(hours=self.settings.webhook_give_up_hours):
                outcome.update(state="failed", finished_at=now)
                logger.warning("gave up delivering %s to %s", job.event_id, job.url)
            else:
                outcome.update(next_attempt_at=now + self._backoff(job.attempt))
            if await repo.finish_attempt(job.job_id, self.owner, outcome):
                session.add(
                    WebhookDelivery(
                        id=new_id("dlv"),
                        job_id=job.job_id,
                        subscription_id=job.subscription_id,
                        event_id=job.event_id,
                        event_type=job.event_type,
                        attempt=job.attempt,
                        status_code=status,
                        delivered=delivered,
                        error=error,
                        latency_ms=latency,
                        at=now,
                    )
                )
            else:
                # Taken over (or the subscription is gone): the new owner's record stands.
                logger.warning(
                    "attempt %d of %s to %s not recorded: the job is no longer ours",
                    job.attempt,
                    job.event_id,
                    job.url,
                )
            if release:
                await repo.release_url_lease(job.url_key, self.owner, now)
            elif held is not None and job.url_key in held:
                # Before the next job of the URL: hold the URL and its jobs for one more
                # lease, or learn that another dispatcher has them now.
                mine = {job.url_key: held[job.url_key]}
                if not await repo.renew_url_leases(self.owner, mine, now + self.lease):
                    held.pop(job.url_key, None)
            await session.commit()
        return delivered

    async def aclose(self) -> None:
        await self.client.aclose()


def verify_signature(secret: str, header: str, body: bytes, tolerance: int = 300) -> bool:
    """What a receiver does (also in the README): recompute and compare, in constant time,
    and refuse old timestamps against replays."""
    fields: dict[str, Any] = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, str(fields.get("v1", "")))
