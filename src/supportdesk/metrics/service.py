"""Prometheus metrics: requests by route template and status, their latency, the
database pool, the queue by support group, the webhook backlog and ledger debits.

Request counters live in each worker process (scrape each worker, or sum them); the
queue and backlog gauges are read from the database at scrape time, so every worker
reports the same.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from supportdesk.metrics.repository import MetricsRepository

REGISTRY = CollectorRegistry(auto_describe=True)
REQUESTS = Counter(
    "supportdesk_http_requests_total",
    "HTTP requests by method, route template and status.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "supportdesk_http_request_duration_seconds",
    "HTTP request duration by method and route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
POOL_IN_USE = Gauge(
    "supportdesk_db_pool_connections_in_use",
    "Database connections checked out.",
    registry=REGISTRY,
)
QUEUE = Gauge(
    "supportdesk_queue_length",
    "Open tickets waiting, by support group.",
    ["group"],
    registry=REGISTRY,
)
BACKLOG = Gauge(
    "supportdesk_webhook_backlog", "Webhook deliveries not yet done.", registry=REGISTRY
)
DEBITS = Counter(
    "supportdesk_ledger_debits_total",
    "Ledger debits recorded by this process.",
    registry=REGISTRY,
)
GROUPS = {0: "contract", 1: "premium", 2: "standard"}


# The labelled children per (method, route template, status): few, and looked up on
# every request (``labels()`` takes a lock and builds its key each time).
_CHILDREN: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    children = _CHILDREN.get((method, route, status))
    if children is None:
        if len(_CHILDREN) >= 10_000:  # a bound, whatever callers send
            _CHILDREN.clear()
        children = (REQUESTS.labels(method, route, str(status)), LATENCY.labels(method, route))
        _CHILDREN[(method, route, status)] = children
    children[0].inc()
    children[1].observe(seconds)


class MetricsService:
    def __init__(self, session: AsyncSession, engine: AsyncEngine | None) -> None:
        self.metrics = MetricsRepository(session)
        self.engine = engine

    async def exposition(self) -> bytes:
        """The metrics in the Prometheus text format, gauges read now."""
        lengths = await self.metrics.queue_lengths()
        for rank, group in GROUPS.items():
            QUEUE.labels(group).set(lengths.get(rank, 0))
        BACKLOG.set(await self.metrics.webhook_backlog())
        pool = getattr(self.engine, "pool", None) if self.engine is not None else None
        checked_out = getattr(pool, "checkedout", None)
        if callable(checked_out):
            POOL_IN_USE.set(float(checked_out()))
        return generate_latest(REGISTRY)
