"""Fault tests: load on `serve --workers 2` over PostgreSQL while things break.

Creates a database of its own, migrates it, makes keys (CLI) and customers, a contract
and opening purchases (API), and starts `supportdesk serve --workers 2` in a process
group of its own. Then 24 async clients create tickets, debit and buy units on three
accounts and claim tickets from the queue, every POST with an Idempotency-Key of its
own; a transport error, a 5xx or a 409 "in progress" is retried with the same request
and the same key (with backoff) until a definitive answer comes. Some requests are sent
twice at once with one key, to make two copies converge. Meanwhile, in order:

1. SIGKILL of one uvicorn worker: uvicorn's supervisor must replace it and the other
   worker must keep answering;
2. pg_terminate_backend of every connection of the server to the database: the pools
   must reconnect;
3. SIGTERM of the service and a restart on the same database and port; SIGKILL of the
   supervisor alone (its workers must shut down by themselves) and a restart; SIGKILL of
   the whole process group (supervisor and workers) and a restart.

After the load it checks, printing PASS/FAIL with the numbers: every acknowledged (2xx)
write exists, no write exists that was not acknowledged, each retried key has exactly
one effect and its copies got the same answer, balance == sum of entries (database and
API), no ticket claimed twice, no 5xx and no claim left running once retries ended.
Exits 1 if any check fails. The server's log goes to bench/results/fault-server.log.

    python bench/fault.py [--seconds 40] [--clients 24]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, TextIO

import asyncpg
import httpx
from common import ADMIN_URL, RESULTS, cli, free_port, postgres_database, service_env

from supportdesk.kit.auth import hash_key

DATABASE = "supportdesk_bench_fault"
ACCOUNTS = 3
OPENING_UNITS = 5_000
AGENTS = 3
RETRY_BUDGET = 120.0  # seconds one request may take to get a definitive answer
T0 = time.monotonic()


def stamp() -> float:
    return time.monotonic() - T0


def say(message: str) -> None:
    print(f"[{stamp():6.2f}s] {message}", flush=True)


# --- processes, from /proc -------------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()  # fields from "state" on


def alive(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None and fields[0] != "Z" and int(fields[1]) == pid:
                found.append(int(entry.name))
    return sorted(found)


def group_members(pgid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None and fields[0] != "Z" and int(fields[2]) == pgid:
                found.append(int(entry.name))
    return found


def workers(server_pid: int) -> list[int]:
    """uvicorn's worker processes: the supervisor's children started by multiprocessing."""
    found = []
    for pid in children(server_pid):
        with contextlib.suppress(OSError):
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
    return found


def postgres_ports(pid: int) -> set[int]:
    """Local ports of the process's established TCP connections to port 5432."""
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                cols = line.split()
                local, remote, state, inode = cols[1], cols[2], cols[3], cols[9]
                if state == "01" and int(remote.rsplit(":", 1)[1], 16) == 5432 and inode in inodes:
                    ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


# --- the server --------------------------------------------------------------------------


class Server:
    """`supportdesk serve --workers 2` in a process group of its own, on a fixed port."""

    def __init__(self, env: dict[str, str], port: int, log: TextIO) -> None:
        self.env = env
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def start(self) -> float:
        """Starts it; returns the seconds until /health/ready answered 200."""
        started = time.monotonic()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "supportdesk.cli",
                "serve",
                "--port",
                str(self.port),
                "--workers",
                "2",
            ],
            env=self.env,
            stdout=self.log,
            stderr=self.log,
            start_new_session=True,
        )
        async with httpx.AsyncClient(timeout=1) as http:
            while time.monotonic() - started < 60:
                if self.process.poll() is not None:
                    raise RuntimeError("the server exited while starting")
                with contextlib.suppress(httpx.TransportError):
                    answered = (await http.get(f"{self.base}/health/ready")).status_code == 200
                    # Ours, not some other process's on the port: alive, with its workers.
                    if answered and self.process.poll() is None and len(workers(self.pid)) == 2:
                        return time.monotonic() - started
                await asyncio.sleep(0.05)
        raise RuntimeError("the server did not get ready in 60 s")

    async def wait(self, seconds: float) -> int | None:
        assert self.process is not None
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                return code
            await asyncio.sleep(0.05)
        return None

    def kill_group(self) -> None:
        """SIGKILL of the whole process group, whatever is left of it."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


# --- load --------------------------------------------------------------------------------


@dataclass
class Outcome:
    op: str
    key: str
    caller: str  # whose key sent it: "admin" or an agent's name
    status: int | None  # None: no definitive answer within the retry budget
    body: Any
    attempts: int
    replayed: bool
    expected: frozenset[int]
    phase: str = ""
    seconds: float = 0.0
    history: list[str] = field(default_factory=list)

    @property
    def acknowledged(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def effect_id(self) -> str | None:
        return self.body.get("id") if isinstance(self.body, dict) else None


@dataclass
class Traffic:
    """Every answer the load saw, by phase, and when it saw them."""

    phase: str = "steady"
    by_phase: dict[str, Counter[str]] = field(default_factory=dict)
    phases: list[str] = field(default_factory=list)
    ok_times: list[float] = field(default_factory=list)
    server_errors: list[tuple[float, int, str]] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    copies: list[tuple[Outcome, Outcome]] = field(default_factory=list)
    marks: dict[str, float] = field(default_factory=dict)
    loading: bool = True  # new requests are sent; then only retries until all settle

    def enter(self, phase: str) -> None:
        self.phase = phase

    def count(self, what: str) -> None:
        if self.phase not in self.by_phase:
            self.by_phase[self.phase] = Counter()
            self.phases.append(self.phase)
        self.by_phase[self.phase][what] += 1


def _in_progress(response: httpx.Response) -> bool:
    if response.status_code != 409:
        return False
    with contextlib.suppress(ValueError):
        return "idempotency-in-progress" in str(response.json().get("type", ""))
    return False


async def send(
    http: httpx.AsyncClient,
    traffic: Traffic,
    op: str,
    url: str,
    body: dict[str, Any] | None,
    caller: tuple[str, dict[str, str]],
    key: str,
    expected: frozenset[int],
) -> Outcome:
    """POSTs until a definitive answer, retrying the same request with the same key."""
    headers = {**caller[1], "Idempotency-Key": key}
    started = time.monotonic()
    phase = traffic.phase
    history: list[str] = []
    attempts = 0
    status: int | None = None
    while True:
        attempts += 1
        delay = min(2.0, 0.05 * 2 ** min(attempts, 6)) * random.uniform(0.5, 1.0)
        try:
            response = await http.post(url, json=body, headers=headers)
        except httpx.TransportError as exc:
            traffic.count("transport error")
            history.append(type(exc).__name__)
        else:
            status = response.status_code
            label = "409*" if _in_progress(response) else str(status)
            traffic.count(label)
            history.append(label)
            if status >= 500:
                traffic.server_errors.append((stamp(), status, response.text[:200]))
            elif _in_progress(response):
                delay = max(delay, float(response.headers.get("retry-after", "1")) / 2)
            else:
                traffic.ok_times.append(stamp())
                payload = response.json() if response.content else None
                replayed = response.headers.get("idempotent-replayed") == "true"
                took = time.monotonic() - started
                return Outcome(
                    op,
                    key,
                    caller[0],
                    status,
                    payload,
                    attempts,
                    replayed,
                    expected,
                    phase,
                    took,
                    history,
                )
        if time.monotonic() - started > RETRY_BUDGET:
            took = time.monotonic() - started
            return Outcome(
                op, key, caller[0], None, status, attempts, False, expected, phase, took, history
            )
        await asyncio.sleep(delay)


@dataclass
class Setup:
    admin: dict[str, str]
    agents: dict[str, dict[str, str]]  # name -> headers
    agent_ids: dict[str, str]  # name -> key id
    accounts: list[str]
    ticket_customer: str
    opening: list[Outcome]


async def load(http: httpx.AsyncClient, traffic: Traffic, setup: Setup, clients: int) -> None:
    counter = itertools.count()

    def new_key(kind: str) -> str:
        return f"fault-{kind}-{next(counter):06d}"

    async def one(
        kind: str, url: str, body: dict[str, Any] | None, caller: tuple[str, dict[str, str]]
    ) -> None:
        expected = {
            "ticket": frozenset({201}),
            "debit": frozenset({201}),
            "purchase": frozenset({201}),
            "claim": frozenset({200, 204}),
        }[kind]
        key = new_key(kind)
        if body is not None and kind != "ticket":
            body["reference"] = key
        elif body is not None:
            body["subject"] = key
        if random.random() < 0.1:
            # Two copies at once, same key: one effect, the same answer twice.
            first, second = await asyncio.gather(
                send(http, traffic, kind, url, body, caller, key, expected),
                send(http, traffic, kind, url, body, caller, key, expected),
            )
            traffic.outcomes.append(first)
            traffic.copies.append((first, second))
        else:
            traffic.outcomes.append(
                await send(http, traffic, kind, url, body, caller, key, expected)
            )

    admin = ("admin", setup.admin)
    agents = list(setup.agents.items())

    async def client(number: int) -> None:
        rng = random.Random(number)
        role = number % 8
        while traffic.loading:
            if role in (0, 1):
                body = {
                    "customer_id": setup.ticket_customer,
                    "category": "installation",
                    "severity": rng.choice(["critical", "high", "normal", "low"]),
                    "description": "Please install the add-on.",
                }
                await one("ticket", "/api/v1/tickets", body, admin)
            elif role in (2, 3, 4):
                account = rng.choice(setup.accounts)
                url = f"/api/v1/customers/{account}/ledger/entries"
                await one("debit", url, {"kind": "debit", "units": rng.randint(1, 5)}, admin)
            elif role == 5:
                account = rng.choice(setup.accounts)
                url = f"/api/v1/customers/{account}/ledger/entries"
                buy: dict[str, Any] = {"kind": "purchase", "units": rng.randint(1, 20)}
                await one("purchase", url, buy, admin)
            else:
                await one("claim", "/api/v1/queue/claim", None, agents[number % len(agents)])

    await asyncio.gather(*(client(n) for n in range(clients)))


async def probe(
    http: httpx.AsyncClient, traffic: Traffic, samples: list[tuple[float, bool]]
) -> None:
    """GET /health/ready every 100 ms: when the service answered and when not."""
    while traffic.loading:
        try:
            ok = (await http.get("/health/ready", timeout=1)).status_code == 200
        except httpx.TransportError:
            ok = False
        samples.append((stamp(), ok))
        await asyncio.sleep(0.1)


# --- faults ------------------------------------------------------------------------------


@dataclass
class Check:
    name: str
    passed: bool
    detail: str


async def admin_fetch(query: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


def _longest_gap(times: list[float], start: float, end: float) -> float:
    inside = sorted(t for t in times if start <= t <= end)
    points = [start, *inside, end]
    return max(b - a for a, b in itertools.pairwise(points))


async def kill_worker(server: Server, traffic: Traffic, checks: list[Check]) -> None:
    before = workers(server.pid)
    victim = before[0]
    traffic.enter("1 worker killed")
    killed_at = stamp()
    os.kill(victim, signal.SIGKILL)
    say(f"fault 1: SIGKILL worker {victim} (workers were {before})")
    replacement: int | None = None
    serving_at: float | None = None
    while stamp() - killed_at < 30:
        new = [pid for pid in workers(server.pid) if pid not in before]
        if new and replacement is None:
            replacement = new[0]
            say(f"  uvicorn started replacement worker {replacement} (+{stamp() - killed_at:.2f}s)")
        if replacement is not None and postgres_ports(replacement):
            serving_at = stamp()
            held = len(postgres_ports(replacement))
            say(
                f"  replacement {replacement} is serving: it holds {held} DB connections "
                f"(+{serving_at - killed_at:.2f}s)"
            )
            break
        await asyncio.sleep(0.1)
    end = serving_at if serving_at is not None else stamp()
    oks = sum(1 for t in traffic.ok_times if killed_at <= t <= end)
    gap = _longest_gap(traffic.ok_times, killed_at, end)
    say(f"  while one worker was down: {oks} definitive answers, longest pause {gap:.2f}s")
    checks.append(
        Check(
            "uvicorn replaced the killed worker",
            replacement is not None and serving_at is not None,
            f"worker {victim} -> {replacement}, serving after "
            + (f"{serving_at - killed_at:.2f}s" if serving_at is not None else "never (30 s)"),
        )
    )
    checks.append(
        Check(
            "the other worker kept answering while one was dead",
            oks > 0 and gap < 3.0,
            f"{oks} definitive answers in {end - killed_at:.2f}s, longest pause {gap:.2f}s",
        )
    )


async def terminate_backends(server: Server, traffic: Traffic, checks: list[Check]) -> None:
    live_workers = workers(server.pid)
    per_worker = {w: len(postgres_ports(w)) for w in live_workers}
    traffic.enter("2 pg_terminate_backend")
    terminated_at = stamp()
    results = await admin_fetch(
        "SELECT pid, pg_terminate_backend(pid) AS done FROM pg_stat_activity "
        "WHERE datname = $1 AND pid <> pg_backend_pid()",
        DATABASE,
    )
    killed = {r["pid"] for r in results if r["done"]}
    say(
        f"fault 2: pg_terminate_backend of all {len(killed)} connections to {DATABASE} "
        f"(the workers held {per_worker})"
    )
    recovered_at: float | None = None
    per_worker_after: dict[int, int] = {}
    rows: list[asyncpg.Record] = []
    while stamp() - terminated_at < 20:
        await asyncio.sleep(0.2)
        rows = await admin_fetch(
            "SELECT pid, client_port FROM pg_stat_activity WHERE datname = $1", DATABASE
        )
        fresh_ports = {r["client_port"] for r in rows if r["pid"] not in killed}
        per_worker_after = {w: len(postgres_ports(w) & fresh_ports) for w in live_workers}
        oks_after = sum(1 for t in traffic.ok_times if t > terminated_at)
        if all(per_worker_after.values()) and oks_after:
            recovered_at = stamp()
            break
    survivors = [r["pid"] for r in rows if r["pid"] in killed]
    if recovered_at is not None:
        say(
            f"  pools reconnected: new connections per worker {per_worker_after} "
            f"(+{recovered_at - terminated_at:.2f}s)"
        )
    checks.append(
        Check(
            "both workers' pools reconnected after pg_terminate_backend",
            recovered_at is not None and not survivors,
            f"{len(killed)} terminated, new connections {per_worker_after}, "
            + (
                f"answering again after {recovered_at - terminated_at:.2f}s"
                if recovered_at is not None
                else "not recovered in 20 s"
            ),
        )
    )
    traffic.marks["terminated_at"] = terminated_at


STOPS = {  # how: (fault number, what is done, phase)
    "sigterm": ("3a", "SIGTERM of the supervisor", "3a SIGTERM"),
    "supervisor": ("3b", "SIGKILL of the supervisor alone", "3b SIGKILL supervisor"),
    "group": ("3c", "SIGKILL of the whole process group", "3c SIGKILL group"),
}


async def restart(server: Server, traffic: Traffic, checks: list[Check], how: str) -> None:
    """Stops the service one way, waits for all its processes to go, starts it again."""
    number, what, phase = STOPS[how]
    old_pid = server.pid
    group = group_members(old_pid)
    old_workers = workers(old_pid)
    traffic.enter(f"{phase} + restart")
    stopped_at = stamp()
    if how == "group":
        os.killpg(old_pid, signal.SIGKILL)
    else:
        os.kill(old_pid, signal.SIGTERM if how == "sigterm" else signal.SIGKILL)
    say(f"fault {number}: {what} {old_pid} (workers {old_workers}; group {group})")
    code = await server.wait(30)
    if code is None:
        say("  the supervisor did not stop within 30 s")
    # Workers left without a supervisor shut down by themselves, gracefully.
    patience = 15 if how == "supervisor" else 5
    left = [pid for pid in group if alive(pid)]
    while left and stamp() - stopped_at < patience:
        await asyncio.sleep(0.05)
        left = [pid for pid in group if alive(pid)]
    gone_after = stamp() - stopped_at
    served = sum(1 for t in traffic.ok_times if stopped_at < t <= stamp())
    say(
        f"  supervisor exit code {code}; all its processes gone after {gone_after:.2f}s "
        f"({served} answers meanwhile); left: {left}"
    )
    if left:
        say(f"  SIGKILL of what is left of group {old_pid}, to restart at all")
        server.kill_group()
    ready = await server.start()
    say(
        f"  restarted on the same database and port: supervisor {server.pid}, workers "
        f"{workers(server.pid)}, ready after {ready:.2f}s (down {stamp() - stopped_at:.2f}s)"
    )
    checks.append(
        Check(
            f"{what}: every process of the service went, and it came back",
            code is not None and not left,
            f"gone after {gone_after:.2f}s, {len(left)} processes left, "
            f"serving again after {stamp() - stopped_at:.2f}s",
        )
    )


async def inject(server: Server, traffic: Traffic, checks: list[Check], at: list[float]) -> None:
    steps: list[Callable[[], Awaitable[None]]] = [
        lambda: kill_worker(server, traffic, checks),
        lambda: terminate_backends(server, traffic, checks),
        lambda: restart(server, traffic, checks, "sigterm"),
        lambda: restart(server, traffic, checks, "supervisor"),
        lambda: restart(server, traffic, checks, "group"),
    ]
    for when, step in zip(at, steps, strict=True):
        await asyncio.sleep(max(0.0, when - stamp()))
        await step()
    traffic.enter("after the faults")


# --- setup -------------------------------------------------------------------------------


async def prepare(http: httpx.AsyncClient, env: dict[str, str]) -> Setup:
    admin = {"Authorization": f"Bearer {cli(env, 'api-key', 'create', '--role', 'admin')}"}
    agents = {}
    agent_ids = {}
    for n in range(AGENTS):
        name = f"agent-{n}"
        issued = await http.post(
            "/api/v1/api-keys", json={"name": name, "role": "agent"}, headers=admin
        )
        assert issued.status_code == 201, issued.text
        agents[name] = {"Authorization": f"Bearer {issued.json()['key']}"}
        agent_ids[name] = issued.json()["id"]
    traffic = Traffic()
    caller = ("admin", admin)

    async def create(url: str, body: dict[str, Any], key: str) -> Outcome:
        out = await send(http, traffic, "setup", url, body, caller, key, frozenset({201}))
        assert out.status == 201, out.body
        return out

    accounts = []
    opening = []
    for n in range(ACCOUNTS):
        customer = await create("/api/v1/customers", {"name": f"Account {n}"}, f"setup-cus-{n}")
        accounts.append(str(customer.effect_id))
        url = f"/api/v1/customers/{customer.effect_id}/ledger/entries"
        body = {"kind": "purchase", "units": OPENING_UNITS, "reference": f"setup-buy-{n}"}
        opening.append(await create(url, body, f"setup-buy-{n}"))
    ticket_customer = await create("/api/v1/customers", {"name": "Contract"}, "setup-cus-t")
    await create(
        "/api/v1/contracts",
        {"customer_id": ticket_customer.effect_id, "starts_on": str(date(2020, 1, 1))},
        "setup-contract",
    )
    return Setup(admin, agents, agent_ids, accounts, str(ticket_customer.effect_id), opening)


# --- checks ------------------------------------------------------------------------------


async def api_entries_sum(http: httpx.AsyncClient, headers: dict[str, str], account: str) -> int:
    total = 0
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        page = await http.get(
            f"/api/v1/customers/{account}/ledger/entries", params=params, headers=headers
        )
        page.raise_for_status()
        data = page.json()
        total += sum(int(item["change"]) for item in data["items"])
        cursor = data["next_cursor"]
        if cursor is None:
            return total


async def verify(http: httpx.AsyncClient, traffic: Traffic, setup: Setup, dsn: str) -> list[Check]:
    checks: list[Check] = []
    outcomes = traffic.outcomes
    by_op: dict[str, list[Outcome]] = {}
    for o in outcomes:
        by_op.setdefault(o.op, []).append(o)

    unresolved = [o for o in outcomes if o.status is None]
    server_errors = [o for o in outcomes if o.status is not None and o.status >= 500]
    unexpected = [o for o in outcomes if o.status is not None and o.status not in o.expected]
    retried = [o for o in outcomes if o.attempts > 1]
    checks.append(
        Check(
            "every request got a definitive answer once retries ended (no 5xx left)",
            not unresolved and not server_errors,
            f"{len(outcomes)} keys, {len(retried)} needed retries (up to "
            f"{max((o.attempts for o in outcomes), default=0)} attempts), "
            f"{len(unresolved)} unresolved, {len(server_errors)} ended in 5xx",
        )
    )
    checks.append(
        Check(
            "every definitive answer is the expected one (201; claims 200/204)",
            not unexpected,
            f"{len(unexpected)} unexpected"
            + "".join(f"; {o.op} {o.key}: {o.status} {o.body}" for o in unexpected[:3]),
        )
    )
    disagree = [
        (a, b) for a, b in traffic.copies if (a.status, a.effect_id) != (b.status, b.effect_id)
    ]
    replays = sum(1 for a, b in traffic.copies if a.replayed or b.replayed)
    checks.append(
        Check(
            "two copies sent at once with one key got the same answer",
            not disagree and bool(traffic.copies),
            f"{len(traffic.copies)} pairs, {replays} answered by a replay, {len(disagree)} differ",
        )
    )

    conn = await asyncpg.connect(dsn)
    try:
        tickets = {
            r["subject"]: r
            for r in await conn.fetch(
                "SELECT id, subject, status, assignee_key_id FROM tickets WHERE customer_id = $1",
                setup.ticket_customer,
            )
        }
        ticket_rows = await conn.fetch(
            "SELECT subject, count(*) AS n FROM tickets GROUP BY subject HAVING count(*) > 1"
        )
        entries = await conn.fetch(
            "SELECT id, customer_id, reference, change FROM ledger_entries "
            "WHERE customer_id = ANY($1::text[])",
            setup.accounts,
        )
        balances = {
            r["id"]: r["unit_balance"]
            for r in await conn.fetch(
                "SELECT id, unit_balance FROM customers WHERE id = ANY($1::text[])",
                setup.accounts,
            )
        }
        running = await conn.fetchval(
            "SELECT count(*) FROM idempotency_records WHERE state <> 'done'"
        )
        stored = {
            (r["scope"], r["key"]): r
            for r in await conn.fetch(
                "SELECT scope, key, state, response_status, response_body FROM idempotency_records"
            )
        }
    finally:
        await conn.close()

    # Tickets: every acknowledged one exists, and nothing else was created.
    acked_tickets = [o for o in by_op.get("ticket", []) if o.acknowledged]
    missing = [o for o in acked_tickets if o.key not in tickets]
    wrong_id = [
        o for o in acked_tickets if o.key in tickets and tickets[o.key]["id"] != o.effect_id
    ]
    extra = set(tickets) - {o.key for o in acked_tickets}
    checks.append(
        Check(
            "every acknowledged ticket exists, with the acknowledged id",
            not missing and not wrong_id,
            f"{len(acked_tickets)} acknowledged, {len(missing)} missing, "
            f"{len(wrong_id)} with another id",
        )
    )
    checks.append(
        Check(
            "no ticket exists that was not acknowledged, none twice for one key",
            not extra and not ticket_rows,
            f"{len(tickets)} in the database, {len(extra)} not acknowledged, "
            f"{len(ticket_rows)} keys with two tickets",
        )
    )

    # Ledger entries: likewise, keyed by their reference (the Idempotency-Key).
    acked_entries = [o for o in outcomes if o.op in ("debit", "purchase") and o.acknowledged]
    by_reference: dict[str, list[str]] = {}
    for e in entries:
        by_reference.setdefault(e["reference"], []).append(e["id"])
    missing_e = [o for o in acked_entries if o.effect_id not in by_reference.get(o.key, [])]
    doubled = {ref: ids for ref, ids in by_reference.items() if len(ids) > 1}
    known = {o.key for o in acked_entries} | {o.key for o in setup.opening}
    extra_e = set(by_reference) - known
    checks.append(
        Check(
            "every acknowledged ledger entry exists, with the acknowledged id",
            not missing_e,
            f"{len(acked_entries)} acknowledged "
            f"({len(by_op.get('debit', []))} debits, {len(by_op.get('purchase', []))} "
            f"purchases), {len(missing_e)} missing",
        )
    )
    checks.append(
        Check(
            "no ledger entry exists that was not acknowledged, none twice for one key",
            not extra_e and not doubled,
            f"{len(entries)} entries, {len(extra_e)} not acknowledged, "
            f"{len(doubled)} keys with two entries",
        )
    )

    # Retried keys: exactly one effect, the one the answer named.
    retried_keys = {o.key for o in retried} | {a.key for a, _ in traffic.copies}
    effects = []
    for o in outcomes:
        if o.key not in retried_keys or o.op == "claim":
            continue
        if o.op == "ticket":
            ids = [tickets[o.key]["id"]] if o.key in tickets else []
        else:
            ids = by_reference.get(o.key, [])
        effects.append(ids == [o.effect_id])
    bad_effects = effects.count(False)
    checks.append(
        Check(
            "each retried key (tickets, entries) has exactly one effect, the answered one",
            bad_effects == 0 and bool(effects),
            f"{len(effects)} retried keys, {bad_effects} without exactly one effect",
        )
    )

    # The stored answer of each key names what the client was told.
    scopes = {"admin": hash_key(setup.admin["Authorization"].split()[1])}
    for name, headers in setup.agents.items():
        scopes[name] = hash_key(headers["Authorization"].split()[1])
    mismatched = 0
    for o in outcomes:
        record = stored.get((scopes[o.caller], o.key))
        if record is None or record["response_status"] != o.status:
            mismatched += 1
            continue
        body = bytes(record["response_body"] or b"")
        stored_id = json.loads(body).get("id") if body else None
        mismatched += stored_id != o.effect_id
    checks.append(
        Check(
            "each key's stored answer is the one its client got; no claim left running",
            mismatched == 0 and running == 0,
            f"{len(outcomes)} keys, {mismatched} differ, {running} records not done",
        )
    )

    # Balances: the database, the API and the acknowledged answers agree.
    lines = []
    balance_ok = True
    for account in setup.accounts:
        db_sum = sum(e["change"] for e in entries if e["customer_id"] == account)
        api_sum = await api_entries_sum(http, setup.admin, account)
        ledger = await http.get(f"/api/v1/customers/{account}/ledger", headers=setup.admin)
        api_balance = ledger.json()["balance"]
        told = sum(
            o.body["change"]
            for o in [*acked_entries, *setup.opening]
            if o.body["customer_id"] == account
        )
        same = balances[account] == db_sum == api_balance == api_sum == told
        balance_ok &= same
        lines.append(
            f"{account[-6:]}: balance {balances[account]} (API {api_balance}), "
            f"sum of entries {db_sum} (API {api_sum}), acknowledged {told}"
        )
    checks.append(
        Check("balance == sum of entries, per account (DB and API)", balance_ok, "; ".join(lines))
    )

    # Claims: no ticket claimed twice, and the database agrees with the answers.
    claims = [o for o in by_op.get("claim", []) if o.status == 200]
    claimed = Counter(str(o.effect_id) for o in claims)
    twice = [t for t, n in claimed.items() if n > 1]
    by_id = {r["id"]: r for r in tickets.values()}
    in_progress = {r["id"] for r in tickets.values() if r["status"] == "in_progress"}
    wrong_owner = [
        o
        for o in claims
        if o.effect_id not in by_id
        or by_id[o.effect_id]["status"] != "in_progress"
        or by_id[o.effect_id]["assignee_key_id"] != setup.agent_ids[o.caller]
    ]
    unacked = in_progress - set(claimed)
    empty = sum(1 for o in by_op.get("claim", []) if o.status == 204)
    checks.append(
        Check(
            "no ticket claimed twice; claimed tickets in_progress with the claimer",
            not twice and not wrong_owner and not unacked,
            f"{len(claims)} claims acknowledged ({empty} found the queue empty), "
            f"{len(twice)} tickets claimed twice, {len(wrong_owner)} not in_progress with "
            f"their claimer, {len(unacked)} in_progress without an acknowledged claim",
        )
    )

    # Every acknowledged ticket can be read through the API.
    semaphore = asyncio.Semaphore(16)

    async def readable(ticket_id: str | None) -> bool:
        async with semaphore:
            response = await http.get(f"/api/v1/tickets/{ticket_id}", headers=setup.admin)
            return response.status_code == 200

    readable_count = sum(await asyncio.gather(*(readable(o.effect_id) for o in acked_tickets)))
    checks.append(
        Check(
            "every acknowledged ticket reads back through the API",
            readable_count == len(acked_tickets),
            f"{readable_count} of {len(acked_tickets)}",
        )
    )

    # The service answers writes after it all.
    after = await send(
        http,
        Traffic(),
        "final",
        f"/api/v1/customers/{setup.accounts[0]}/ledger/entries",
        {"kind": "debit", "units": 1, "reference": "final"},
        ("admin", setup.admin),
        "fault-final",
        frozenset({201}),
    )
    checks.append(
        Check(
            "the service takes a write at the end, first time",
            after.status == 201 and after.attempts == 1,
            f"status {after.status} after {after.attempts} attempt(s)",
        )
    )
    return checks


# --- main --------------------------------------------------------------------------------


def print_traffic(traffic: Traffic, samples: list[tuple[float, bool]]) -> None:
    columns = sorted(
        {k for c in traffic.by_phase.values() for k in c},
        key=lambda k: (not k[0].isdigit(), k),
    )
    print(f"\n{'answers by phase':<32}" + "".join(f"{c:>16}" for c in columns))
    for phase in traffic.phases:
        row = traffic.by_phase[phase]
        print(f"{phase:<32}" + "".join(f"{row.get(c, 0):>16}" for c in columns))
    down = [t for t, ok in samples if not ok]
    print(
        f"health probe: {len(samples)} probes every 100 ms, {len(down)} unanswered "
        f"(about {len(down) / 10:.1f}s of downtime in all)"
    )
    slowest = sorted(traffic.outcomes, key=lambda o: -o.seconds)[:5]
    print("slowest to a definitive answer:")
    for o in slowest:
        tries = Counter(o.history)
        print(
            f"  {o.seconds:6.2f}s {o.op:<8} sent in '{o.phase}': "
            + ", ".join(f"{n} x {what}" for what, n in tries.items())
        )
    if traffic.server_errors:
        kinds = Counter(f"{status} {text[:90]}" for _, status, text in traffic.server_errors)
        print("5xx seen (all retried):")
        for text, n in kinds.most_common(5):
            print(f"  {n:>5} x {text}")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=40, help="how long the load runs")
    parser.add_argument("--clients", type=int, default=24)
    args = parser.parse_args()
    load_seconds = args.seconds
    fault_times = [load_seconds * f for f in (0.12, 0.28, 0.44, 0.6, 0.76)]

    RESULTS.mkdir(parents=True, exist_ok=True)
    log_path = RESULTS / "fault-server.log"
    checks: list[Check] = []
    async with postgres_database(DATABASE) as dsn:
        env = service_env(dsn)
        cli(env, "db", "upgrade")
        say(f"database {DATABASE} created and migrated")
        with log_path.open("w") as log:
            server = Server(env, free_port(), log)
            try:
                ready = await server.start()
                say(
                    f"serve --workers 2 on {server.base}: supervisor {server.pid}, workers "
                    f"{workers(server.pid)}, ready after {ready:.2f}s"
                )
                limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
                timeout = httpx.Timeout(15, connect=2)
                async with httpx.AsyncClient(
                    base_url=server.base, limits=limits, timeout=timeout
                ) as http:
                    setup = await prepare(http, env)
                    say(
                        f"{ACCOUNTS} accounts with {OPENING_UNITS} units each, a contract "
                        f"customer for tickets, an admin and {AGENTS} agent keys"
                    )
                    traffic = Traffic()
                    samples: list[tuple[float, bool]] = []
                    start = stamp()
                    until = start + load_seconds
                    say(
                        f"load: {args.clients} clients for {load_seconds:.0f}s (tickets, "
                        "debits, purchases, claims), faults at "
                        + ", ".join(f"+{t:.0f}s" for t in fault_times)
                    )
                    faults = asyncio.create_task(
                        inject(server, traffic, checks, [start + t for t in fault_times])
                    )
                    await asyncio.gather(
                        load(http, traffic, setup, args.clients),
                        probe(http, traffic, samples),
                        _stop_load(until, faults, traffic),
                    )
                    say(f"all requests settled; {len(traffic.outcomes)} keys sent")
                    print_traffic(traffic, samples)
                    terminated_at = traffic.marks.get("terminated_at", 0.0)
                    late = [
                        t
                        for t, _, _ in traffic.server_errors
                        if terminated_at + 5 < t < start + fault_times[2]
                    ]
                    checks.append(
                        Check(
                            "no 5xx later than 5 s after pg_terminate_backend",
                            not late,
                            f"{len(late)} late 5xx",
                        )
                    )
                    print()
                    say("checking")
                    checks += await verify(http, traffic, setup, dsn)
            finally:
                server.kill_group()
    failed = [c for c in checks if not c.passed]
    print()
    for c in checks:
        print(f"{'PASS' if c.passed else 'FAIL'}  {c.name}: {c.detail}")
    print(f"\n{len(checks) - len(failed)} of {len(checks)} checks passed in {stamp():.1f}s")
    return 1 if failed else 0


async def _stop_load(until: float, faults: asyncio.Task[None], traffic: Traffic) -> None:
    """Ends the load at `until`, or a few seconds after the last fault if that is later."""
    await asyncio.sleep(max(0.0, until - stamp()))
    if not faults.done():
        await faults
        await asyncio.sleep(3)
    await faults
    traffic.loading = False
    traffic.enter("drain (retries only)")
    say("load stops; letting open requests finish their retries")


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
