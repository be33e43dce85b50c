"""Rows for bulk seeding (COPY), shared by the benchmarks: tickets, ledger entries and
session logs shaped as the service writes them."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

import asyncpg

STATUSES = [
    ("closed", 0.80),
    ("resolved", 0.10),
    ("open", 0.05),
    ("in_progress", 0.02),
    ("awaiting_customer", 0.02),
    ("escalated", 0.01),
]
SEVERITIES = ["critical", "high", "normal", "low"]
CATEGORIES = ["bug_report", "operation", "how_to", "database_defect", "installation"]

TICKET_COLUMNS = [
    "id",
    "customer_id",
    "category",
    "severity",
    "severity_rank",
    "status",
    "subject",
    "description",
    "steps_to_reproduce",
    "env_os",
    "env_host_application",
    "env_extra",
    "proposed_appointments",
    "has_image_screenshot",
    "has_database_backup",
    "held",
    "received_at",
    "first_response_due",
    "paused_since",
    "sla_at_risk_notified_at",
    "sla_breached_notified_at",
    "updated_at",
    "version",
    "queue_group",
]
CUSTOMER_COLUMNS = [
    "id",
    "name",
    "external_ref",
    "unit_balance",
    "last_balance_change",
    "unit_warning_levels",
    "created_at",
    "updated_at",
]
CONTRACT_COLUMNS = ["id", "customer_id", "kind", "starts_on", "ends_on", "created_at", "updated_at"]
LEDGER_COLUMNS = [
    "id",
    "customer_id",
    "kind",
    "units",
    "change",
    "units_debited",
    "units_billed_at_list_price",
    "unit_price",
    "amount",
    "currency",
    "cause_type",
    "cause_id",
    "balance_after",
    "recorded_at",
    "effective_at",
]
SESSION_LOG_COLUMNS = [
    "id",
    "customer_id",
    "partner",
    "started_at",
    "duration_seconds",
    "supporter",
    "notes",
    "billable",
    "bill_at_list_price",
    "origin",
    "billing_outcome",
    "units",
    "units_charged",
    "units_at_list_price",
    "units_covered",
    "ledger_entry_id",
    "created_at",
]


REMOTE_SESSION_COLUMNS = [
    "id",
    "customer_id",
    "bill_at_list_price",
    "code_hash",
    "code_expires_at",
    "status",
    "supporter",
    "created_at",
    "started_at",
]
ENTRIES_PER_CUSTOMER = 20
SESSIONS_PER_CUSTOMER = 10
PURCHASE_UNITS = 2_000


def customer_id(i: int) -> str:
    return f"cus_{i:026d}"


def ticket_rows(
    count: int, customers: int, now: datetime, group_of: Callable[[int], int], seed: int = 7
) -> Iterator[tuple[object, ...]]:
    """Tickets in all states over two years, for random customers.

    A desk in service was told of its old tickets' SLA long ago: their notices are set,
    so the sweeps have nothing to catch up on, as in production.
    """
    rng = random.Random(seed)
    statuses = [s for s, _ in STATUSES]
    weights = [w for _, w in STATUSES]
    for i in range(count):
        severity = rng.randrange(4)
        owner = rng.randrange(customers)
        received = now - timedelta(minutes=rng.randrange(60 * 24 * 730))
        status = rng.choices(statuses, weights)[0]
        yield (
            f"tkt_{i:026d}",
            customer_id(owner),
            rng.choice(CATEGORIES),
            SEVERITIES[severity],
            severity,
            status,
            "Import fails",
            "The import stops with an error.",
            "1. 2. 3.",
            "Windows 11",
            "ArchiCAD",
            "{}",
            "[]",
            True,
            False,
            False,
            received,
            received + timedelta(hours=4),
            received if status == "awaiting_customer" else None,
            received + timedelta(hours=3),
            received + timedelta(hours=4),
            received,
            1,
            group_of(owner),
        )


@dataclass
class CustomerRows:
    """Customers with the rows that hang on them, ready for COPY."""

    customers: list[tuple[object, ...]] = field(default_factory=list)
    contracts: list[tuple[object, ...]] = field(default_factory=list)
    ledger_entries: list[tuple[object, ...]] = field(default_factory=list)
    session_logs: list[tuple[object, ...]] = field(default_factory=list)

    def tables(self) -> list[tuple[str, list[str], list[tuple[object, ...]]]]:
        """(table, columns, rows) in an order that satisfies the foreign keys."""
        return [
            ("customers", CUSTOMER_COLUMNS, self.customers),
            ("contracts", CONTRACT_COLUMNS, self.contracts),
            ("ledger_entries", LEDGER_COLUMNS, self.ledger_entries),
            ("session_logs", SESSION_LOG_COLUMNS, self.session_logs),
        ]


def customer_rows(customers: int, now: datetime) -> CustomerRows:
    """Customers, every other one with a maintenance contract, each with a purchase of
    units and nineteen debits, the first ten of them billing a logged session; the
    balances equal the sums of their entries."""
    rng = random.Random(11)
    rows = CustomerRows()
    period_start = now - timedelta(days=300)
    for c in range(customers):
        cid = customer_id(c)
        if c % 2 == 0:
            ends_on = None if c % 4 else date(2030, 12, 31)
            rows.contracts.append(
                (f"ctr_{c:026d}", cid, "maintenance", date(2020, 1, 1), ends_on, now, now)
            )
        balance = PURCHASE_UNITS
        at = period_start + timedelta(minutes=c)
        price = Decimal(rng.choice(["24.00", "26.00"]))
        rows.ledger_entries.append(
            ledger_row(
                f"led_{c:020d}_000000", cid, "purchase", balance, balance, at, unit_price=price
            )
        )
        for e in range(1, ENTRIES_PER_CUSTOMER):
            at = at + timedelta(days=1, minutes=rng.randrange(600))
            units = rng.randint(1, 8)
            balance -= units
            entry_id, log_id = f"led_{c:020d}_{e:06d}", f"sl_{c:020d}_{e:06d}"
            if e > SESSIONS_PER_CUSTOMER:
                rows.ledger_entries.append(ledger_row(entry_id, cid, "debit", units, balance, at))
                continue
            rows.ledger_entries.append(
                ledger_row(entry_id, cid, "debit", units, balance, at, cause=("session", log_id))
            )
            seconds = units * 900 - rng.randrange(600)
            partner = f"Customer {c} – PC {e}"
            rows.session_logs.append(
                session_log_row(log_id, cid, partner, at, seconds, units, entry_id)
            )
        rows.customers.append((cid, f"Customer {c}", f"CRM-{c}", balance, 0, None, now, now))
    return rows


def remote_session_rows(customers: int, count: int, now: datetime) -> list[tuple[object, ...]]:
    """Active remote sessions, started twenty minutes ago, waiting to be ended."""
    started = now - timedelta(minutes=20)
    return [
        (
            f"rs_{i:026d}",
            customer_id((i * 7) % customers),
            False,
            f"{i:064x}",
            started,
            "active",
            "Bench Supporter",
            started,
            started,
        )
        for i in range(count)
    ]


def ledger_row(
    entry_id: str,
    customer: str,
    kind: str,
    units: int,
    balance_after: int,
    at: datetime,
    *,
    cause: tuple[str, str | None] = ("api", None),
    unit_price: Decimal | None = None,
    at_list_price: bool = False,
) -> tuple[object, ...]:
    """A purchase (units added) or a debit, paid from the balance or, on an empty
    account, billed at list price."""
    purchase = kind == "purchase"
    paid = 0 if purchase or at_list_price else units
    return (
        entry_id,
        customer,
        kind,
        units,
        units if purchase else -paid,
        paid,
        units if at_list_price else 0,
        unit_price,
        unit_price * units if unit_price is not None else None,
        "EUR",
        cause[0],
        cause[1],
        balance_after,
        at,
        at,
    )


def session_log_row(
    log_id: str,
    customer: str,
    partner: str,
    started: datetime,
    seconds: int,
    units: int,
    entry_id: str,
    *,
    at_list_price: bool = False,
) -> tuple[object, ...]:
    """A logged session, billed by the debit ``entry_id`` from the balance or at list
    price."""
    return (
        log_id,
        customer,
        partner,
        started,
        seconds,
        "Klaus Hörner",
        "Internet-Explorer aktualisiert, Neustart des PC",
        True,
        False,
        "logged",
        "charged",
        units,
        0 if at_list_price else units,
        units if at_list_price else 0,
        0,
        entry_id,
        started,
    )


async def copy_rows(
    conn: asyncpg.Connection,
    table: str,
    columns: list[str],
    rows: Iterable[tuple[object, ...]],
    batch: int = 50_000,
) -> None:
    """COPY ``rows`` into ``table`` in batches, so that a million rows never sit in
    memory at once."""
    pending: list[tuple[object, ...]] = []
    for row in rows:
        pending.append(row)
        if len(pending) == batch:
            await conn.copy_records_to_table(table, records=pending, columns=columns)
            pending.clear()
    if pending:
        await conn.copy_records_to_table(table, records=pending, columns=columns)
