"""Benchmark of the pure domain core on 100,000 synthetic tickets.

Times, separately: queue keys and sorting, first-response due times, SLA states and
blockers. Prints a table and writes ``bench/results/domain.json``.

    python bench/bench_domain.py [--tickets N] [--seed S]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from supportdesk.domain import (
    Interval,
    Severity,
    SupportGroup,
    TicketCategory,
    TicketFacts,
    compute_blockers,
    default_sla_targets,
    desk_calendar,
    first_response_due,
    queue_key,
    sla_state,
)
from supportdesk.domain.calendar import _day_intervals

RESULTS = Path(__file__).parent / "results" / "domain.json"

# German public holidays (nationwide) 2026-2027, as the service would pass them in.
HOLIDAYS = [
    date(2026, 1, 1),
    date(2026, 4, 3),
    date(2026, 4, 6),
    date(2026, 5, 1),
    date(2026, 5, 14),
    date(2026, 5, 25),
    date(2026, 10, 3),
    date(2026, 12, 25),
    date(2026, 12, 26),
    date(2027, 1, 1),
]
START = datetime(2026, 1, 5, tzinfo=UTC)
SPREAD = timedelta(days=180)


@dataclass(frozen=True, slots=True)
class Ticket:
    id: str
    group: SupportGroup
    severity: Severity
    received_at: datetime
    pauses: tuple[Interval, ...]
    paused_now: bool
    now: datetime
    facts: TicketFacts


def build_tickets(n: int, rnd: random.Random) -> list[Ticket]:
    groups = list(SupportGroup)
    severities = list(Severity)
    categories = list(TicketCategory)
    tickets = []
    for i in range(n):
        received = START + timedelta(seconds=rnd.randrange(int(SPREAD.total_seconds())))
        pauses: list[Interval] = []
        if rnd.random() < 0.25:  # some waited on the customer or the vendor
            start = received
            for _ in range(rnd.randint(1, 3)):
                start += timedelta(minutes=rnd.randrange(0, 3 * 24 * 60))
                end = start + timedelta(minutes=rnd.randrange(10, 2 * 24 * 60))
                pauses.append((start, end))
                start = end
        blank = rnd.random() < 0.3
        facts = TicketFacts(
            category=rnd.choice(categories),
            os=None if blank else "Windows 11",
            host_application="Act! 26" if rnd.random() < 0.8 else None,
            product=rnd.choice([None, "act-sync", "crm-link"]),
            addon_version=rnd.choice([None, "2.9.0", "2.10.0", "2.10.1-beta", "unknown"]),
            latest_version="2.10.0",
            steps_to_reproduce=None if blank else "1. open the add-on 2. press sync",
            has_image_screenshot=rnd.random() < 0.7,
            has_database_backup=rnd.random() < 0.5,
        )
        tickets.append(
            Ticket(
                id=f"t{i:06d}",
                group=rnd.choices(groups, weights=[2, 3, 5])[0],
                severity=rnd.choices(severities, weights=[1, 2, 5, 2])[0],
                received_at=received,
                pauses=tuple(pauses),
                paused_now=rnd.random() < 0.05,
                now=received + timedelta(minutes=rnd.randrange(0, 3 * 24 * 60)),
                facts=facts,
            )
        )
    return tickets


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=20260302)
    args = parser.parse_args()

    rnd = random.Random(args.seed)
    tickets = build_tickets(args.tickets, rnd)
    calendar = desk_calendar(HOLIDAYS)
    targets = default_sla_targets()
    n = len(tickets)

    def queue_order() -> list[str]:
        keys = [queue_key(t.group, t.severity, t.received_at, t.id) for t in tickets]
        keys.sort()
        return [key.ticket_id for key in keys]

    def dues() -> list[datetime]:
        return [
            first_response_due(t.received_at, t.group, t.severity, calendar, targets, t.pauses)
            for t in tickets
        ]

    def states(due_times: list[datetime]) -> Counter[str]:
        return Counter(
            str(sla_state(t.now, t.received_at, due, t.paused_now, calendar, t.pauses))
            for t, due in zip(tickets, due_times, strict=True)
        )

    def blockers() -> Counter[int]:
        return Counter(len(compute_blockers(t.facts, t.group)) for t in tickets)

    rows: list[dict[str, Any]] = []

    def record(operation: str, seconds: float) -> None:
        rows.append(
            {
                "operation": operation,
                "count": n,
                "total_s": round(seconds, 4),
                "per_ticket_us": round(seconds / n * 1e6, 2),
            }
        )

    seconds, _ = timed(queue_order)
    record("queue keys + sort", seconds)
    # The per-date working intervals are memoized; time a cold cache, then a warm one.
    _day_intervals.cache_clear()
    seconds, due_times = timed(dues)
    record("first_response_due (cold cache)", seconds)
    seconds, due_times = timed(dues)
    record("first_response_due (warm cache)", seconds)
    seconds, state_counts = timed(lambda: states(due_times))
    record("sla_state", seconds)
    seconds, blocker_counts = timed(blockers)
    record("compute_blockers", seconds)

    width = max(len(row["operation"]) for row in rows)
    print(f"{'operation':<{width}}  {'count':>7}  {'total s':>8}  {'µs/ticket':>9}")
    for row in rows:
        print(
            f"{row['operation']:<{width}}  {row['count']:>7}  {row['total_s']:>8.3f}"
            f"  {row['per_ticket_us']:>9.2f}"
        )
    print("sla states:", dict(sorted(state_counts.items())))

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "benchmark": "domain",
        "tickets": n,
        "seed": args.seed,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "results": rows,
        "sla_states": dict(sorted(state_counts.items())),
        "blockers_per_ticket": {str(k): v for k, v in sorted(blocker_counts.items())},
        "day_interval_cache": _day_intervals.cache_info()._asdict(),
    }
    RESULTS.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
