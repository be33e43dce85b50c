"""Fault tests: load on `serve` over PostgreSQL while things break; one or two replicas.

Creates a database of its own, migrates it, makes keys (CLI) and customers, a contract
and opening purchases (API). Then 24 async clients create tickets, debit and buy units
on the accounts and claim tickets from the queue, every POST with an Idempotency-Key of
its own; a transport error, a 5xx or a 409 "in progress" is retried with the same
request and the same key (with backoff) until a definitive answer comes. Some requests
are sent twice at once with one key, to make two copies converge.

One replica (the default): `supportdesk serve --workers 2` in a process group of its
own, and meanwhile, in order:

1. SIGKILL of one uvicorn worker: uvicorn's supervisor must replace it and the other
   worker must keep answering;
2. pg_terminate_backend of every connection of the server to the database: the pools
   must reconnect;
3. SIGTERM of the service and a restart on the same database and port; SIGKILL of the
   supervisor alone (its workers must shut down by themselves) and a restart; SIGKILL of
   the whole process group (supervisor and workers) and a restart.

Two replicas (`--replicas 2`): replicas A and B, each `supportdesk serve --workers 1`
(one worker each, so the two replicas together serve with as many processes as the one
replica's two workers: the machine has 2 CPUs for the service, PostgreSQL and this
script; `--workers 2` on a bigger one) on two ports and the same database, each in a
process group of its own. A webhook receiver runs in this script (asyncio, 127.0.0.1;
it records every delivery's event id, signature and arrival time and now and then
answers after 200-500 ms), subscribed to every event type; the service runs with
SUPPORTDESK_WEBHOOKS_ALLOW_PRIVATE=true, SUPPORTDESK_WEBHOOK_LEASE_SECONDS=10 and
SUPPORTDESK_WEBHOOK_POLL_SECONDS=0.25 (the backlog drains in time on 2 CPUs). The
setup runs on A alone, which then stops; tickets of their own customer are made overdue
in the database (received a month ago) and both replicas start at the same moment, so
both SLA sweeps find them at once. Accounts with a few units join the load, so debits
cross the low-balance level (4 units) again and again. Each request goes to a replica
at random and each retry to the other one. A third of the way in, the receiver holds
the next delivery open and tells which replica sent it (the sending socket's owner, in
/proc); that replica's whole process group gets SIGKILL while the delivery is open, so
the kill lands mid-delivery with the URL's lease held (one delivery at a time goes to a
URL); the replica restarts 5 s later.
After the load, the script waits until every event the outbox holds since the
subscription was received, for as long as deliveries keep arriving (it gives up when
none arrived for lease + 30 s, or after 300 s in all).

After the load it checks, printing PASS/FAIL with the numbers: every acknowledged (2xx)
write exists, no write exists that was not acknowledged, each retried key has exactly
one effect and its copies got the same answer, balance == sum of entries (database and
API), no ticket claimed twice, no 5xx and no claim left running once retries ended.
With two replicas also: every event delivered; event ids received twice no more than
the deliveries open at the kill; the first delivery after the kill within lease + 10 s
(a stuck lease fails here); each overdue ticket announced once (events table and
receiver); one ledger.low_balance per debit that crosses the level; per resource, the
events arrive in the order they occurred; every delivery's signature verifies.
Exits 1 if any check fails. The server's log goes to bench/results/fault-server.log
(two replicas: fault-server-a.log and fault-server-b.log).

    python bench/fault.py [--seconds 40] [--clients 24] [--replicas 2 [--workers 1]]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import secrets
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
from supportdesk.webhooks.dispatcher import SIGNATURE_HEADER, verify_signature
from supportdesk.webhooks.schemas import EventType

DATABASE = "supportdesk_bench_fault"
ACCOUNTS = 3
OPENING_UNITS = 5_000
AGENTS = 3
# Two replicas only.
LOW_ACCOUNTS = 2  # accounts the load keeps around the low-balance level
LOW_OPENING_UNITS = 30
WARNING_LEVELS = (4,)  # the desk's default (SUPPORTDESK_WARNING_LEVELS), no customer's own
OVERDUE_TICKETS = 12
LEASE_SECONDS = 10  # SUPPORTDESK_WEBHOOK_LEASE_SECONDS given to the service
POLL_SECONDS = 0.25  # SUPPORTDESK_WEBHOOK_POLL_SECONDS given to the service
TAKEOVER_SLACK = 10.0  # seconds over the lease the first delivery after a kill may take
RESTART_AFTER = 5.0  # seconds the killed replica stays dead
WEBHOOK_SECRET = secrets.token_hex(16)  # the subscription's, to verify signatures
REPLICAS_DATABASE = "supportdesk_bench_fault_replicas"
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
    """`supportdesk serve --workers N` in a process group of its own, on a fixed port."""

    def __init__(self, env: dict[str, str], port: int, log: TextIO, worker_count: int = 2) -> None:
        self.env = env
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.log = log
        self.worker_count = worker_count
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
                str(self.worker_count),
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
                    # Ours, not some other process's on the port: alive, with its workers
                    # (one worker: uvicorn serves in the process itself).
                    expected = self.worker_count if self.worker_count > 1 else 0
                    if (
                        answered
                        and self.process.poll() is None
                        and len(workers(self.pid)) == expected
                    ):
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
    # Replicas' base URLs: each request starts at one at random, each retry goes to the
    # next. Empty: the client's own base URL.
    bases: list[str] = field(default_factory=list)
    answered_by: Counter[str] = field(default_factory=Counter)  # definitive answers

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
    first = random.randrange(len(traffic.bases)) if traffic.bases else 0
    while True:
        attempts += 1
        delay = min(2.0, 0.05 * 2 ** min(attempts, 6)) * random.uniform(0.5, 1.0)
        base = traffic.bases[(first + attempts - 1) % len(traffic.bases)] if traffic.bases else ""
        try:
            response = await http.post(base + url, json=body, headers=headers)
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
                traffic.answered_by[base] += 1
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
    accounts: list[str]  # every account the load uses, the low ones included
    ticket_customer: str
    opening: list[Outcome]
    # Two replicas only: accounts kept near the low-balance level, the overdue tickets
    # (of a customer of their own) and the webhook subscription.
    low_accounts: list[str] = field(default_factory=list)
    overdue_customer: str = ""
    overdue_tickets: list[str] = field(default_factory=list)
    webhook: str = ""


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
                # Small packages keep the low accounts around their warning level.
                most = 10 if account in setup.low_accounts else 20
                buy: dict[str, Any] = {"kind": "purchase", "units": rng.randint(1, most)}
                await one("purchase", url, buy, admin)
            else:
                await one("claim", "/api/v1/queue/claim", None, agents[number % len(agents)])

    await asyncio.gather(*(client(n) for n in range(clients)))


async def probe(
    http: httpx.AsyncClient, traffic: Traffic, samples: list[tuple[float, bool]], base: str = ""
) -> None:
    """GET /health/ready every 100 ms: when the service answered and when not."""
    while traffic.loading:
        try:
            ok = (await http.get(f"{base}/health/ready", timeout=1)).status_code == 200
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


async def prepare(
    http: httpx.AsyncClient, env: dict[str, str], webhook_url: str | None = None
) -> Setup:
    """Keys, accounts and the contract customer; with ``webhook_url`` (two replicas) first
    a subscription to every event type, then low accounts and the overdue tickets."""
    admin = {"Authorization": f"Bearer {cli(env, 'api-key', 'create', '--role', 'admin')}"}
    webhook = ""
    if webhook_url is not None:
        subscribed = await http.post(
            "/api/v1/webhooks",
            json={"url": webhook_url, "events": list(EventType), "secret": WEBHOOK_SECRET},
            headers=admin,
        )
        assert subscribed.status_code == 201, subscribed.text
        webhook = subscribed.json()["id"]
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
    setup = Setup(admin, agents, agent_ids, accounts, str(ticket_customer.effect_id), opening)
    if webhook_url is None:
        return setup
    setup.webhook = webhook
    for n in range(LOW_ACCOUNTS):
        customer = await create("/api/v1/customers", {"name": f"Low {n}"}, f"setup-cus-low-{n}")
        setup.low_accounts.append(str(customer.effect_id))
        url = f"/api/v1/customers/{customer.effect_id}/ledger/entries"
        body = {"kind": "purchase", "units": LOW_OPENING_UNITS, "reference": f"setup-low-{n}"}
        opening.append(await create(url, body, f"setup-low-{n}"))
    accounts.extend(setup.low_accounts)
    overdue = await create("/api/v1/customers", {"name": "Overdue"}, "setup-cus-overdue")
    setup.overdue_customer = str(overdue.effect_id)
    await create(
        "/api/v1/contracts",
        {"customer_id": overdue.effect_id, "starts_on": str(date(2020, 1, 1))},
        "setup-contract-overdue",
    )
    for n in range(OVERDUE_TICKETS):
        body = {
            "customer_id": overdue.effect_id,
            "category": "installation",
            "severity": "critical",
            "subject": f"setup-overdue-{n}",
            "description": "Please install the add-on.",
        }
        ticket = await create("/api/v1/tickets", body, f"setup-overdue-{n}")
        setup.overdue_tickets.append(str(ticket.effect_id))
    return setup


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
        every_ticket = await conn.fetch(
            "SELECT id, customer_id, subject, status, assignee_key_id FROM tickets"
        )
        tickets = {
            r["subject"]: r for r in every_ticket if r["customer_id"] == setup.ticket_customer
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
    # Over every ticket: the queue also hands out the overdue ones (two replicas).
    by_id = {r["id"]: r for r in every_ticket}
    in_progress = {r["id"] for r in every_ticket if r["status"] == "in_progress"}
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

    # The service (each replica) answers writes after it all.
    finals = []
    for n, base in enumerate(traffic.bases or [""]):
        after = await send(
            http,
            Traffic(bases=[base] if base else []),
            "final",
            f"/api/v1/customers/{setup.accounts[0]}/ledger/entries",
            {"kind": "debit", "units": 1, "reference": f"final-{n}"},
            ("admin", setup.admin),
            f"fault-final-{n}",
            frozenset({201}),
        )
        finals.append(after)
    checks.append(
        Check(
            "the service takes a write at the end, first time"
            + (" (each replica)" if traffic.bases else ""),
            all(a.status == 201 and a.attempts == 1 for a in finals),
            "; ".join(f"status {a.status} after {a.attempts} attempt(s)" for a in finals),
        )
    )
    return checks


# --- two replicas: the webhook receiver --------------------------------------------------

CATCH_SECONDS = 20.0  # how long the kill waits for a delivery to hold open
HOLD_SECONDS = 1.5  # how long the receiver holds that delivery open (the kill lands in it)
SLOW_FRACTION = 0.03  # deliveries answered after 200-500 ms


def tcp_inode(local_port: int, remote_port: int) -> str | None:
    """The socket inode of the established connection from local_port to remote_port."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                cols = line.split()
                if (
                    cols[3] == "01"
                    and int(cols[1].rsplit(":", 1)[1], 16) == local_port
                    and int(cols[2].rsplit(":", 1)[1], 16) == remote_port
                ):
                    return cols[9]
    return None


def owns_socket(pids: set[int], inode: str) -> bool:
    target = f"socket:[{inode}]"
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) == target:
                        return True
    return False


@dataclass
class Arrival:
    event_id: str
    event_type: str
    at: float  # stamp() when the whole request had arrived
    signed: bool  # X-Supportdesk-Signature verifies with the subscription's secret
    held: bool  # the delivery held open for the kill of the replica that sent it


class Receiver:
    """The subscribed URL: HTTP/1.1 with keep-alive, 200 to every POST, now and then slow.

    Armed with the replicas' pids, it holds the next delivery open, sets ``caught`` and
    names the replica that sent it (the sending socket's owner, from /proc).
    """

    def __init__(self) -> None:
        self.arrivals: list[Arrival] = []
        self.open = 0  # requests received and not yet answered
        self.port = 0
        self.caught = asyncio.Event()
        self.caught_from = ""  # the replica whose delivery is held
        self._replicas: dict[str, set[int]] = {}
        self._sender: dict[int, str] = {}  # peer port -> replica ("" unknown)
        self._rng = random.Random(7)
        self._server: asyncio.Server | None = None

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return f"http://127.0.0.1:{self.port}/hooks/supportdesk"

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()

    def arm(self, replicas: dict[str, list[int]]) -> None:
        self._replicas = {name: set(pids) for name, pids in replicas.items()}
        self._sender.clear()
        self.caught_from = ""
        self.caught.clear()

    def disarm(self) -> None:
        self._replicas = {}

    def _sent_by(self, peer_port: int) -> str:
        if peer_port not in self._sender:
            inode = tcp_inode(peer_port, self.port)
            owners = [n for n, pids in self._replicas.items() if inode and owns_socket(pids, inode)]
            self._sender[peer_port] = owners[0] if owners else ""
        return self._sender[peer_port]

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer_port = int(writer.get_extra_info("peername")[1])
        try:
            while await reader.readline():  # the request line; empty: the peer closed
                headers: dict[str, str] = {}
                while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.open += 1
                try:
                    await self._receive(peer_port, headers, body)
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                    await writer.drain()
                finally:
                    self.open -= 1
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the sender died mid-request (the kill)
        finally:
            writer.close()

    async def _receive(self, peer_port: int, headers: dict[str, str], body: bytes) -> None:
        arrived = stamp()
        try:
            event = json.loads(body)
            event_id, event_type = str(event["id"]), str(event["type"])
        except (ValueError, KeyError, TypeError):
            event_id, event_type = headers.get("x-supportdesk-delivery", "?"), "?"
        signature = headers.get(SIGNATURE_HEADER.lower(), "")
        sender = self._sent_by(peer_port) if self._replicas and not self.caught.is_set() else ""
        held = bool(sender)
        signed = verify_signature(WEBHOOK_SECRET, signature, body)
        self.arrivals.append(Arrival(event_id, event_type, arrived, signed, held))
        if held:
            self.caught_from = sender
            self.caught.set()
            await asyncio.sleep(HOLD_SECONDS)  # the kill lands meanwhile
        elif self._rng.random() < SLOW_FRACTION:
            await asyncio.sleep(self._rng.uniform(0.2, 0.5))


# --- two replicas: faults and checks -----------------------------------------------------


async def kill_replica_mid_delivery(
    replicas: dict[str, Server], receiver: Receiver, traffic: Traffic, checks: list[Check]
) -> None:
    """SIGKILL of the whole process group of the replica whose delivery the receiver holds
    open (one delivery is in flight at a time: the URL lease); it restarts RESTART_AFTER
    seconds later on the same port."""
    traffic.enter("replica killed mid-delivery")
    groups = {name: group_members(server.pid) for name, server in replicas.items()}
    receiver.arm(groups)
    say(f"fault: waiting for a webhook delivery to hold open (process groups {groups})")
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(receiver.caught.wait(), CATCH_SECONDS)
    # With no delivery to catch (none came), the first replica goes all the same.
    victim = receiver.caught_from or next(iter(replicas))
    survivor = next(name for name in replicas if name != victim)
    server = replicas[victim]
    in_flight = receiver.open
    killed_at = stamp()
    os.killpg(server.pid, signal.SIGKILL)
    receiver.disarm()
    caught = bool(receiver.caught_from)
    traffic.marks.update(killed_at=killed_at, in_flight=in_flight)
    say(
        f"  SIGKILL of replica {victim}'s process group {server.pid}: "
        + (
            f"its delivery was open at the receiver ({in_flight} open in all)"
            if caught
            else f"no delivery came within {CATCH_SECONDS:.0f}s ({in_flight} open)"
        )
    )
    code = await server.wait(10)
    left = [pid for pid in groups[victim] if alive(pid)]
    while left and stamp() - killed_at < 10:
        await asyncio.sleep(0.05)
        left = [pid for pid in groups[victim] if alive(pid)]
    gone_after = stamp() - killed_at
    await asyncio.sleep(max(0.0, killed_at + RESTART_AFTER - stamp()))
    restarting_at = stamp()
    oks = sum(1 for t in traffic.ok_times if killed_at <= t <= restarting_at)
    gap = _longest_gap(traffic.ok_times, killed_at, restarting_at)
    ready = await server.start()
    say(
        f"  {victim} restarted on its port: pid {server.pid}, ready after {ready:.2f}s (down "
        f"{stamp() - killed_at:.2f}s); {survivor} gave {oks} definitive answers meanwhile, "
        f"longest pause {gap:.2f}s"
    )
    checks.append(
        Check(
            "the kill landed while the killed replica's delivery was open at the receiver",
            caught and in_flight >= 1,
            f"replica {victim} killed, {in_flight} deliveries open at the kill"
            + ("" if caught else f"; none came within {CATCH_SECONDS:.0f}s"),
        )
    )
    checks.append(
        Check(
            f"SIGKILL of replica {victim}'s process group: every process went, and it came back",
            code is not None and not left,
            f"gone after {gone_after:.2f}s, {len(left)} processes left, serving again after "
            f"{stamp() - killed_at:.2f}s",
        )
    )
    checks.append(
        Check(
            f"replica {survivor} kept answering while {victim} was dead (retries switch replica)",
            oks > 0 and gap < 3.0,
            f"{oks} definitive answers in {restarting_at - killed_at:.2f}s, longest pause "
            f"{gap:.2f}s",
        )
    )


async def await_announcements(dsn: str, setup: Setup, seconds: float) -> float:
    """Until every overdue ticket has its ticket.sla_breached event (or ``seconds``)."""
    started = stamp()
    conn = await asyncpg.connect(dsn)
    try:
        while stamp() - started < seconds:
            announced = await conn.fetchval(
                "SELECT count(DISTINCT resource_id) FROM events "
                "WHERE type = 'ticket.sla_breached' AND resource_id = ANY($1::text[])",
                setup.overdue_tickets,
            )
            if announced >= len(setup.overdue_tickets):
                break
            await asyncio.sleep(0.2)
    finally:
        await conn.close()
    return stamp() - started


async def outbox_since_subscription(dsn: str, setup: Setup) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return list(
            await conn.fetch(
                "SELECT e.id, e.type, e.occurred_at, e.resource_type, e.resource_id, e.data "
                "FROM events e JOIN webhook_subscriptions s ON s.id = $1 "
                "WHERE e.occurred_at >= s.created_at ORDER BY e.occurred_at, e.id",
                setup.webhook,
            )
        )
    finally:
        await conn.close()


async def await_deliveries(
    dsn: str, setup: Setup, receiver: Receiver, seconds: float, stall: float
) -> tuple[list[asyncpg.Record], float]:
    """Until the receiver has every event of the outbox since the subscription; or until
    nothing arrived for ``stall`` seconds (delivery stopped), or ``seconds`` in all.
    Returns those events and the seconds waited. The backlog the load leaves drains one
    delivery at a time to the one URL, so how long that takes grows with the load: the
    wait is bounded by progress, not by a fixed time."""
    started = stamp()
    told = started
    arrived, last_progress = len(receiver.arrivals), started
    while True:
        events = await outbox_since_subscription(dsn, setup)
        received = {a.event_id for a in receiver.arrivals}
        missing = sum(1 for e in events if e["id"] not in received)
        if len(receiver.arrivals) > arrived:
            arrived, last_progress = len(receiver.arrivals), stamp()
        if not missing or stamp() - last_progress > stall or stamp() - started > seconds:
            return events, stamp() - started
        if stamp() - told >= 10:
            told = stamp()
            say(f"  {missing} of {len(events)} events not received yet")
        await asyncio.sleep(1)


def crossed(before: int, after: int) -> list[int]:
    """The warning levels a balance change crosses downward (DOMAIN.md: above before, at
    or below after; going back up and down again is a new crossing)."""
    return [level for level in WARNING_LEVELS if after <= level < before]


async def webhook_checks(
    dsn: str,
    setup: Setup,
    receiver: Receiver,
    marks: dict[str, float],
    events: list[asyncpg.Record],
    waited: float,
    wait_bound: float,
    lease: float,
) -> list[Check]:
    checks: list[Check] = []
    arrivals = receiver.arrivals
    received = Counter(a.event_id for a in arrivals)
    missing = [e for e in events if e["id"] not in received]
    by_type = Counter(e["type"] for e in missing)
    checks.append(
        Check(
            "every event delivered (each event since the subscription received at least once)",
            bool(events) and not missing,
            f"{len(events)} events, {len(arrivals)} deliveries received, {len(missing)} never "
            f"received after waiting {waited:.0f}s (bound {wait_bound:.0f}s)"
            + ("".join(f"; {n} x {t}" for t, n in by_type.most_common(4)) if missing else ""),
        )
    )

    killed_at = marks.get("killed_at")
    in_flight = int(marks.get("in_flight", 0))
    held = [a.event_id for a in arrivals if a.held]
    twice = {event_id: n for event_id, n in received.items() if n > 1}
    checks.append(
        Check(
            "event ids received twice: at most the deliveries open at the kill",
            len(twice) <= in_flight and sum(twice.values()) - len(twice) <= in_flight,
            f"{len(twice)} event ids received more than once ({sum(twice.values())} "
            f"deliveries), {in_flight} open at the kill"
            + (
                f"; the one held at the kill {'was' if held[0] in twice else 'was not'} "
                "received again"
                if held
                else ""
            ),
        )
    )

    bound = lease + TAKEOVER_SLACK
    after_kill = [a.at for a in arrivals if killed_at is not None and a.at > killed_at]
    takeover = min(after_kill) - killed_at if after_kill and killed_at is not None else None
    if takeover is not None:
        say(f"first delivery {takeover:.2f}s after the SIGKILL")
    checks.append(
        Check(
            f"delivery resumed within the takeover bound after the kill (lease "
            f"{lease:.0f}s + {TAKEOVER_SLACK:.0f}s)",
            takeover is not None and takeover < bound,
            (
                f"first delivery {takeover:.2f}s after the SIGKILL, bound {bound:.0f}s"
                if takeover is not None
                else f"no delivery at all after the SIGKILL ({stamp() - (killed_at or 0):.0f}s)"
            ),
        )
    )

    # Overdue tickets: one ticket.sla_breached each, in the outbox and at the receiver.
    conn = await asyncpg.connect(dsn)
    try:
        breaches = await conn.fetch(
            "SELECT id, resource_id FROM events WHERE type = 'ticket.sla_breached' "
            "AND resource_id = ANY($1::text[])",
            setup.overdue_tickets,
        )
        entries = await conn.fetch(
            "SELECT id, customer_id, change, balance_after FROM ledger_entries "
            "WHERE customer_id = ANY($1::text[])",
            setup.accounts,
        )
        warnings = await conn.fetch(
            "SELECT id, data FROM events WHERE type = 'ledger.low_balance' "
            "AND resource_id = ANY($1::text[])",
            setup.accounts,
        )
        own_levels = await conn.fetchval(
            "SELECT count(*) FROM customers WHERE id = ANY($1::text[]) "
            "AND unit_warning_levels IS NOT NULL",
            setup.accounts,
        )
    finally:
        await conn.close()
    per_ticket = Counter(r["resource_id"] for r in breaches)
    counts = Counter(per_ticket[t] for t in setup.overdue_tickets)
    checks.append(
        Check(
            "each overdue ticket announced once (ticket.sla_breached in the events table)",
            set(counts) == {1},
            f"{len(setup.overdue_tickets)} overdue tickets, both replicas sweeping: "
            + ", ".join(f"{n} with {k} event(s)" for k, n in sorted(counts.items())),
        )
    )
    breach_ticket = {r["id"]: r["resource_id"] for r in breaches}
    heard = Counter(breach_ticket[i] for i in {a.event_id for a in arrivals} if i in breach_ticket)
    heard_counts = Counter(heard[t] for t in setup.overdue_tickets)
    checks.append(
        Check(
            "each overdue ticket's breach reached the receiver as one event",
            set(heard_counts) == {1},
            ", ".join(f"{n} tickets with {k} distinct event(s)" for k, n in heard_counts.items()),
        )
    )

    # Low balance: one event per level a balance-lowering entry crossed, no more, no less.
    expected = Counter(
        (e["id"], level)
        for e in entries
        if e["change"] < 0
        for level in crossed(e["balance_after"] - e["change"], e["balance_after"])
    )
    got: Counter[tuple[str, int]] = Counter()
    for w in warnings:
        data = json.loads(w["data"]) if isinstance(w["data"], str) else w["data"]
        got[(data["entry_id"], data["level"])] += 1
    doubled = sum(1 for n in got.values() if n > 1)
    checks.append(
        Check(
            "ledger.low_balance once per debit that crosses the level (4 units)",
            got == expected and bool(expected) and own_levels == 0,
            f"{sum(expected.values())} crossings by debits, {sum(got.values())} events: "
            f"{doubled} duplicated, {len(expected - got)} missing, "
            f"{len(got - expected)} without a crossing",
        )
    )

    # Order per resource: the first arrival of each event, in the order they occurred.
    first_seen: dict[str, int] = {}
    for n, a in enumerate(arrivals):
        first_seen.setdefault(a.event_id, n)
    by_resource: dict[str, list[asyncpg.Record]] = {}
    for e in events:
        if e["id"] in first_seen:
            by_resource.setdefault(f"{e['resource_type']}:{e['resource_id']}", []).append(e)
    several = {k: v for k, v in by_resource.items() if len(v) > 1}
    disorder = []
    for resource, evs in several.items():
        arrived = sorted(evs, key=lambda e: first_seen[e["id"]])
        if any(x["occurred_at"] > y["occurred_at"] for x, y in itertools.pairwise(arrived)):
            disorder.append(resource)
    checks.append(
        Check(
            "per resource, events arrive in the order they occurred (first arrivals)",
            not disorder and bool(several),
            f"{len(several)} resources with 2+ events received, {len(disorder)} out of order"
            + (f", e.g. {disorder[0]}" if disorder else ""),
        )
    )

    unsigned = sum(1 for a in arrivals if not a.signed)
    checks.append(
        Check(
            "every delivery's X-Supportdesk-Signature verifies",
            not unsigned and bool(arrivals),
            f"{len(arrivals)} deliveries, {unsigned} with a bad signature",
        )
    )
    return checks


async def two_replicas(args: argparse.Namespace) -> list[Check]:
    load_seconds = args.seconds
    kill_at = load_seconds * 0.33
    RESULTS.mkdir(parents=True, exist_ok=True)
    checks: list[Check] = []
    receiver = Receiver()
    hook_url = await receiver.start()
    # The lease setting comes with the dispatcher's takeover fix; older code ignores it.
    # Rounds every 0.25 s rather than 1 s: the backlog the load leaves (one delivery at a
    # time to the one URL) drains well within the bound on 2 CPUs.
    extra = {
        "SUPPORTDESK_WEBHOOKS_ALLOW_PRIVATE": "true",
        "SUPPORTDESK_WEBHOOK_LEASE_SECONDS": str(LEASE_SECONDS),
        "SUPPORTDESK_WEBHOOK_POLL_SECONDS": str(POLL_SECONDS),
    }
    lease = float(extra["SUPPORTDESK_WEBHOOK_LEASE_SECONDS"])
    wait_bound = 300.0  # in all; delivery that stops for lease + 30 s ends the wait sooner
    stall = lease + 30.0
    port_a = free_port()
    port_b = free_port()
    while port_b == port_a:
        port_b = free_port()
    async with postgres_database(REPLICAS_DATABASE) as dsn:
        env = service_env(dsn, **extra)
        cli(env, "db", "upgrade")
        say(f"database {REPLICAS_DATABASE} created and migrated; receiver at {hook_url}")
        with (
            (RESULTS / "fault-server-a.log").open("w") as log_a,
            (RESULTS / "fault-server-b.log").open("w") as log_b,
        ):
            a = Server(env, port_a, log_a, args.workers)
            b = Server(env, port_b, log_b, args.workers)
            limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
            timeout = httpx.Timeout(15, connect=2)
            try:
                ready = await a.start()
                say(f"setup on replica A alone ({a.base}, ready after {ready:.2f}s)")
                async with httpx.AsyncClient(
                    base_url=a.base, limits=limits, timeout=timeout
                ) as http:
                    setup = await prepare(http, env, hook_url)
                os.kill(a.pid, signal.SIGTERM)
                if await a.wait(30) is None:
                    a.kill_group()
                conn = await asyncpg.connect(dsn)
                try:
                    await conn.execute(
                        "UPDATE tickets SET received_at = now() - interval '30 days', "
                        "first_response_due = now() - interval '29 days' WHERE customer_id = $1",
                        setup.overdue_customer,
                    )
                finally:
                    await conn.close()
                say(
                    f"{len(setup.accounts)} accounts ({len(setup.low_accounts)} with "
                    f"{LOW_OPENING_UNITS} units), a webhook to every event type, "
                    f"{len(setup.overdue_tickets)} tickets made overdue in the database; "
                    "A stopped"
                )
                ready_a, ready_b = await asyncio.gather(a.start(), b.start())
                say(
                    f"replicas started together, serve --workers {args.workers} each: A on "
                    f"{a.base} (ready after {ready_a:.2f}s), B on {b.base} ({ready_b:.2f}s)"
                )
                took = await await_announcements(dsn, setup, 30)
                say(f"waited {took:.2f}s for the SLA sweeps to announce the overdue tickets")
                await asyncio.sleep(2)  # the slower replica's first sweep, too
                async with httpx.AsyncClient(
                    base_url=b.base, limits=limits, timeout=timeout
                ) as http:
                    traffic = Traffic(bases=[a.base, b.base])
                    probes: dict[str, list[tuple[float, bool]]] = {" A": [], " B": []}
                    start = stamp()
                    say(
                        f"load: {args.clients} clients for {load_seconds:.0f}s over both "
                        f"replicas; a replica killed mid-delivery from +{kill_at:.0f}s"
                    )

                    async def fault() -> None:
                        await asyncio.sleep(max(0.0, start + kill_at - stamp()))
                        replicas = {"A": a, "B": b}
                        await kill_replica_mid_delivery(replicas, receiver, traffic, checks)
                        traffic.enter("after the kill")

                    faults = asyncio.create_task(fault())
                    await asyncio.gather(
                        load(http, traffic, setup, args.clients),
                        probe(http, traffic, probes[" A"], a.base),
                        probe(http, traffic, probes[" B"], b.base),
                        _stop_load(start + load_seconds, faults, traffic),
                    )
                    say(f"all requests settled; {len(traffic.outcomes)} keys sent")
                    print_traffic(traffic, probes)
                    print()
                    say(
                        f"waiting for every event to reach the receiver (at most {wait_bound:.0f}s)"
                    )
                    events, waited = await await_deliveries(dsn, setup, receiver, wait_bound, stall)
                    say("checking")
                    checks += await webhook_checks(
                        dsn, setup, receiver, traffic.marks, events, waited, wait_bound, lease
                    )
                    checks += await verify(http, traffic, setup, dsn)
            finally:
                a.kill_group()
                b.kill_group()
                receiver.stop()
    return checks


# --- main --------------------------------------------------------------------------------


def print_traffic(traffic: Traffic, probes: dict[str, list[tuple[float, bool]]]) -> None:
    columns = sorted(
        {k for c in traffic.by_phase.values() for k in c},
        key=lambda k: (not k[0].isdigit(), k),
    )
    print(f"\n{'answers by phase':<32}" + "".join(f"{c:>16}" for c in columns))
    for phase in traffic.phases:
        row = traffic.by_phase[phase]
        print(f"{phase:<32}" + "".join(f"{row.get(c, 0):>16}" for c in columns))
    for name, samples in probes.items():
        down = [t for t, ok in samples if not ok]
        print(
            f"health probe{name}: {len(samples)} probes every 100 ms, {len(down)} unanswered "
            f"(about {len(down) / 10:.1f}s of downtime in all)"
        )
    if traffic.bases:
        print(
            "definitive answers by replica: "
            + ", ".join(f"{b}: {traffic.answered_by[b]}" for b in traffic.bases)
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
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=40, help="how long the load runs")
    parser.add_argument("--clients", type=int, default=24)
    parser.add_argument("--replicas", type=int, choices=(1, 2), default=1)
    parser.add_argument(
        "--workers", type=int, default=1, help="workers per replica with --replicas 2"
    )
    args = parser.parse_args()
    checks = await (one_replica(args) if args.replicas == 1 else two_replicas(args))
    failed = [c for c in checks if not c.passed]
    print()
    for c in checks:
        print(f"{'PASS' if c.passed else 'FAIL'}  {c.name}: {c.detail}")
    print(f"\n{len(checks) - len(failed)} of {len(checks)} checks passed in {stamp():.1f}s")
    return 1 if failed else 0


async def one_replica(args: argparse.Namespace) -> list[Check]:
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
                    print_traffic(traffic, {"": samples})
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
    return checks


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
