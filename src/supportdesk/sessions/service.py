"""Remote sessions and their logs: one-time codes, the emergency stop, and billing.

Every ended session, live, logged after the fact or imported, becomes a session log
and is billed through the domain core and the ledger in the same transaction: not
billable → nothing; covered by a valid contract → nothing, shown as covered; otherwise
units are debited and any rest billed at list price.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from supportdesk.config import BusinessRules
from supportdesk.customers.repository import ContactRepository, CustomerRepository
from supportdesk.customers.service import StandingService
from supportdesk.domain.billing import (
    BillingOutcome,
    NonBillableReason,
    decide_billing,
    require_remote_allowed,
    units_added,
)
from supportdesk.domain.errors import ConflictError, DomainError
from supportdesk.domain.groups import ContractPeriod, SupportGroup, support_group
from supportdesk.errors import Conflict, NotFound, TooManyRequests
from supportdesk.events.service import EVENTS, EventRecorder, event_row
from supportdesk.kit.auth import Principal
from supportdesk.kit.clock import utcnow
from supportdesk.kit.ids import new_id
from supportdesk.kit.pagination import PageParams
from supportdesk.kit.repository import Writes
from supportdesk.ledger.service import LedgerService
from supportdesk.models import Customer, JoinAttempts, RemoteSession, SessionLog
from supportdesk.sessions.report import Connection, RowError, read_report
from supportdesk.sessions.repository import SESSION_LOGS, SessionLogRow, SessionRepository
from supportdesk.sessions.schemas import (
    ImportError_,
    ImportResult,
    RemoteSessionCreate,
    SessionEnd,
    SessionLogCreate,
    SessionLogRead,
    session_log_read,
)
from supportdesk.tickets.repository import TicketRepository

CODE_DIGITS = 9
FREE_FAILURES = 5
FAILURE_WINDOW = timedelta(minutes=10)
MAX_BLOCK = timedelta(hours=1)
MERGE_LOOKBACK = timedelta(days=1)


class SessionNotActive(ConflictError):
    """The session has ended already."""


def normalise_code(code: str) -> str:
    return "".join(ch for ch in code if ch.isdigit())


def hash_code(code: str) -> str:
    return hashlib.sha256(normalise_code(code).encode()).hexdigest()


def new_code() -> str:
    """Nine random digits, read out in three groups: 10^9 codes against five guesses
    per key per ten minutes, each code living ten minutes."""
    digits = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    return f"{digits[:3]}-{digits[3:6]}-{digits[6:]}"


@dataclass(frozen=True)
class Work:
    """A piece of remote work to log and bill."""

    customer: Customer
    started_at: datetime
    duration_seconds: int
    supporter: str
    partner: str
    notes: str
    billable: bool
    non_billable_reason: NonBillableReason | None
    bill_at_list_price: bool
    origin: str
    ticket_id: str | None = None
    contact_id: str | None = None
    computer: str | None = None
    remote_session_id: str | None = None
    ended_by: str | None = None
    import_fingerprint: str | None = None


class SessionService:
    def __init__(
        self, session: AsyncSession, rules: BusinessRules, principal: Principal | None = None
    ) -> None:
        self.session = session
        self.rules = rules
        self.principal = principal
        scope = principal.customer_scope if principal else None
        self.sessions = SessionRepository(session, scope)
        self.customers = CustomerRepository(session, scope)
        self.contacts = ContactRepository(session, scope)
        self.tickets = TicketRepository(session, scope)
        self.standing = StandingService(session, rules)
        self.events = EventRecorder(session)

    # Live sessions ------------------------------------------------------------------

    async def _customer(self, customer_id: str) -> Customer:
        customer = await self.customers.get_by_id(customer_id)
        if customer is None:
            raise NotFound.of("customer", customer_id)
        return customer

    async def _check_links(
        self, customer_id: str, ticket_id: str | None, contact_id: str | None
    ) -> None:
        if ticket_id is not None:
            ticket = await self.tickets.get_by_id(ticket_id)
            if ticket is None or ticket.customer_id != customer_id:
                raise NotFound.of("ticket", ticket_id)
        if (
            contact_id is not None
            and await self.contacts.get_of_customer(customer_id, contact_id) is None
        ):
            raise NotFound.of("contact", contact_id)

    def _supporter(self, given: str | None = None) -> str:
        """Who does the work: as given, else the name of the supporter's API key."""
        if given:
            return given
        if self.principal is None:
            return "system"
        return self.principal.name or self.principal.key_id

    async def open_session(self, data: RemoteSessionCreate) -> tuple[RemoteSession, str]:
        """A waiting session and its one-time code, to be read out over the phone."""
        customer = await self._customer(data.customer_id)
        await self._check_links(customer.id, data.ticket_id, data.contact_id)
        require_remote_allowed(await self.standing.group_of(customer), data.bill_at_list_price)
        now = utcnow()
        for _ in range(5):
            code = new_code()
            remote = RemoteSession(
                id=new_id("rs"),
                customer_id=customer.id,
                ticket_id=data.ticket_id,
                contact_id=data.contact_id,
                computer=data.computer,
                bill_at_list_price=data.bill_at_list_price,
                code_hash=hash_code(code),
                code_expires_at=now + self.rules.session_code_lifetime,
                status="waiting",
                supporter=self._supporter(data.supporter),
                opened_by=self.principal.key_id if self.principal else None,
                created_at=now,
            )
            try:
                # The unique code hash makes a code valid once, ever: a clash draws again.
                await self.sessions.add(remote)
            except Conflict:
                continue
            return remote, code
        raise ConflictError("could not draw an unused session code; try again")

    async def get_session(self, session_id: str) -> RemoteSession:
        remote = await self.sessions.get_session(session_id)
        if remote is None:
            raise NotFound.of("remote session", session_id)
        return remote

    async def _check_throttle(self, key_id: str, now: datetime) -> JoinAttempts | None:
        attempts = await self.sessions.join_attempts(key_id)
        if attempts is not None and attempts.blocked_until and attempts.blocked_until > now:
            wait = int((attempts.blocked_until - now).total_seconds()) + 1
            raise TooManyRequests(
                "Too many wrong session codes; wait before trying again.", retry_after=wait
            )
        return attempts

    async def join_session(self, code: str) -> RemoteSession | None:
        """The customer's client joins with the code; None for a code that is wrong,
        used or expired (the failure is counted, and repeated failures slow the key down)."""
        assert self.principal is not None
        now = utcnow()
        attempts = await self._check_throttle(self.principal.key_id, now)
        remote = (
            await self.sessions.get_by_code_hash(hash_code(code)) if normalise_code(code) else None
        )
        if remote is None or remote.status != "waiting" or remote.code_expires_at <= now:
            self._count_failure(attempts, self.principal.key_id, now)
            await self.sessions.flush()
            return None
        remote.status = "active"
        remote.started_at = now
        remote.joined_by = self.principal.key_id
        if attempts is not None:
            attempts.failures = 0
            attempts.blocked_until = None
        await self.sessions.flush()
        return remote

    def _count_failure(self, attempts: JoinAttempts | None, key_id: str, now: datetime) -> None:
        if attempts is None:
            attempts = JoinAttempts(api_key_id=key_id, failures=0, window_started_at=now)
            self.sessions.add_join_attempts(attempts)
        if now - attempts.window_started_at > FAILURE_WINDOW and not attempts.blocked_until:
            attempts.failures, attempts.window_started_at = 0, now
        attempts.failures += 1
        if attempts.failures >= FREE_FAILURES:
            # Doubling waits from 30 seconds, up to an hour.
            wait = timedelta(seconds=30 * 2 ** (attempts.failures - FREE_FAILURES))
            attempts.blocked_until = now + min(wait, MAX_BLOCK)

    async def end_session(
        self, session_id: str, data: SessionEnd, *, by_customer: bool = False
    ) -> SessionLogRead:
        """End the session (a supporter, or the customer's emergency stop) and bill it.
        The code and the session give no access afterwards.

        Core throughout: one read locks the session and gives its customer's standing;
        a charge is one conditional balance update; the log, the session's end, the
        ledger entry, its audit row and the events are written in one round trip."""
        ending = await self.sessions.get_for_end(session_id)
        if ending is None:
            raise NotFound.of("remote session", session_id)
        if ending.status == "ended":
            raise SessionNotActive("the session has ended already")
        now = utcnow()
        started = ending.started_at or now
        ended_by = "customer" if by_customer else "agent"
        duration_seconds = int((now - started).total_seconds())
        session_day = self.rules.calendar.local_date(started)
        group = support_group(
            [ContractPeriod(a, b) for a, b in ending.contracts], ending.unit_balance, session_day
        )
        units = await self._units(ending.customer_id, ending.ticket_id, started, duration_seconds)
        decision = decide_billing(
            units,
            billable=data.billable,
            group=group,
            balance=ending.unit_balance,
            covered_by_contract=group == SupportGroup.CONTRACT,
            non_billable_reason=data.non_billable_reason,
            bill_at_list_price=ending.bill_at_list_price,
        )
        log_id = new_id("sl")
        created_by = self.principal.key_id if self.principal else None
        writes = Writes()
        units_charged, units_at_list_price = decision.units_charged, decision.units_at_list_price
        ledger_entry_id = None
        if decision.outcome == BillingOutcome.CHARGED and decision.units > 0:
            # The ledger's atomic debit decides the split, so concurrent billing of the
            # same account never overdraws it.
            entry = (
                await LedgerService(self.session, self.rules, actor=created_by).debit_units(
                    ending.customer_id,
                    decision.units,
                    f"session {log_id}",
                    cause_type="session",
                    cause_id=log_id,
                    writes=writes,
                )
            ).entry
            units_charged = entry.units_debited
            units_at_list_price = entry.units_billed_at_list_price
            ledger_entry_id = entry.id
        log = SessionLogRow(
            id=log_id,
            customer_id=ending.customer_id,
            ticket_id=ending.ticket_id,
            contact_id=ending.contact_id,
            computer=ending.computer,
            partner=_partner(ending.customer_name, ending.computer),
            started_at=started,
            duration_seconds=duration_seconds,
            supporter=ending.supporter,
            notes=data.notes or "",
            billable=data.billable,
            non_billable_reason=(
                decision.non_billable_reason.value if decision.non_billable_reason else None
            ),
            bill_at_list_price=ending.bill_at_list_price,
            origin="live",
            remote_session_id=ending.id,
            ended_by=ended_by,
            import_fingerprint=None,
            billing_outcome=decision.outcome.value,
            units=decision.units,
            units_charged=units_charged,
            units_at_list_price=units_at_list_price,
            units_covered=decision.units_covered,
            ledger_entry_id=ledger_entry_id,
            created_by=created_by,
            created_at=utcnow(),
        )
        read = session_log_read(log, self.rules)
        writes.insert(SESSION_LOGS, log.values())
        writes.insert(
            EVENTS,
            event_row(
                "session.ended",
                resource_type="session_log",
                resource_id=log.id,
                customer_id=log.customer_id,
                data=read.model_dump(mode="json"),
            ),
        )
        self.sessions.end_session(writes, ending.id, now, ended_by, log.id)
        await self.sessions.write(writes)
        return read

    async def _customer_unscoped(self, customer_id: str) -> Customer:
        customer = await CustomerRepository(self.session).get_by_id(customer_id)
        if customer is None:
            raise NotFound.of("customer", customer_id)
        return customer

    # Logs and billing ------------------------------------------------------------------

    async def log_session(self, data: SessionLogCreate) -> SessionLog:
        """A session held with an outside tool, logged after the fact and billed."""
        customer = await self._customer(data.customer_id)
        await self._check_links(customer.id, data.ticket_id, data.contact_id)
        return await self._log_work(
            Work(
                customer=customer,
                started_at=data.started_at,
                duration_seconds=data.duration_seconds,
                supporter=data.supporter,
                partner=data.partner,
                notes=data.notes,
                billable=data.billable,
                non_billable_reason=data.non_billable_reason,
                bill_at_list_price=data.bill_at_list_price,
                origin="logged",
                ticket_id=data.ticket_id,
                contact_id=data.contact_id,
                computer=data.computer,
            )
        )

    async def _units(
        self,
        customer_id: str,
        ticket_id: str | None,
        started_at: datetime,
        duration_seconds: int,
    ) -> int:
        duration = timedelta(seconds=duration_seconds)
        billing = self.rules.billing
        earlier: list[timedelta] = []
        if billing.merge_gap is not None and ticket_id is not None:
            # Sessions on one ticket with short breaks between them are billed as one.
            boundary = started_at
            for log in await self.sessions.recent_logs_on_ticket(
                customer_id, ticket_id, started_at - MERGE_LOOKBACK
            ):
                ended = log.started_at + timedelta(seconds=log.duration_seconds)
                if log.started_at >= started_at or boundary - ended > billing.merge_gap:
                    break
                earlier.append(timedelta(seconds=log.duration_seconds))
                boundary = log.started_at
        return units_added(earlier, duration, billing)

    async def _log_work(self, work: Work) -> SessionLog:
        customer = work.customer
        session_day = self.rules.calendar.local_date(work.started_at)
        group = await self.standing.group_of(customer, on=session_day)
        units = await self._units(
            customer.id, work.ticket_id, work.started_at, work.duration_seconds
        )
        decision = decide_billing(
            units,
            billable=work.billable,
            group=group,
            balance=customer.unit_balance,
            covered_by_contract=group == SupportGroup.CONTRACT,
            non_billable_reason=work.non_billable_reason,
            bill_at_list_price=work.bill_at_list_price,
        )
        now = utcnow()
        log = SessionLog(
            id=new_id("sl"),
            customer_id=customer.id,
            ticket_id=work.ticket_id,
            contact_id=work.contact_id,
            computer=work.computer,
            partner=work.partner,
            started_at=work.started_at,
            duration_seconds=work.duration_seconds,
            supporter=work.supporter,
            notes=work.notes,
            billable=work.billable,
            non_billable_reason=(
                decision.non_billable_reason.value if decision.non_billable_reason else None
            ),
            bill_at_list_price=work.bill_at_list_price,
            origin=work.origin,
            remote_session_id=work.remote_session_id,
            ended_by=work.ended_by,
            import_fingerprint=work.import_fingerprint,
            billing_outcome=decision.outcome.value,
            units=decision.units,
            units_charged=decision.units_charged,
            units_at_list_price=decision.units_at_list_price,
            units_covered=decision.units_covered,
            created_by=self.principal.key_id if self.principal else None,
            created_at=now,
        )
        if decision.outcome == BillingOutcome.CHARGED and decision.units > 0:
            # The ledger's atomic debit decides the split, so concurrent billing of the
            # same account never overdraws it.
            entry = (
                await LedgerService(self.session, self.rules, actor=log.created_by).debit_units(
                    customer.id,
                    decision.units,
                    f"session {log.id}",
                    cause_type="session",
                    cause_id=log.id,
                )
            ).entry
            log.units_charged = entry.units_debited
            log.units_at_list_price = entry.units_billed_at_list_price
            log.ledger_entry_id = entry.id
        await self.sessions.add(log, conflict="This connection was imported already.")
        self.events.record(
            "session.ended",
            resource_type="session_log",
            resource_id=log.id,
            customer_id=customer.id,
            data=session_log_read(log, self.rules).model_dump(mode="json"),
        )
        return log

    async def get_log(self, log_id: str) -> SessionLog:
        log = await self.sessions.get_log(log_id)
        if log is None:
            raise NotFound.of("session log", log_id)
        return log

    async def list_logs(
        self,
        params: PageParams,
        *,
        customer_id: str | None,
        starts: datetime | None,
        ends: datetime | None,
    ) -> tuple[list[SessionLog], str | None]:
        if customer_id is not None:
            await self._customer(customer_id)
        return await self.sessions.list_logs(
            params, customer_id=customer_id, starts=starts, ends=ends
        )

    # Import -------------------------------------------------------------------------

    async def import_report(
        self, customer_id: str, path: Path, *, bill_at_list_price: bool = False
    ) -> ImportResult:
        """Log and bill every good row of a connection report; rows imported before are
        skipped, bad rows reported with their line number."""
        customer = await self._customer(customer_id)
        imported = skipped = 0
        errors: list[ImportError_] = []
        zone = ZoneInfo(self.rules.calendar.time_zone)
        for item in read_report(_lines(path), zone):
            if isinstance(item, RowError):
                errors.append(ImportError_(line=item.line, msg=item.msg))
                continue
            fingerprint = item.fingerprint(customer.id)
            if await self.sessions.import_fingerprint_exists(fingerprint):
                skipped += 1
                continue
            try:
                async with self.session.begin_nested():
                    await self._log_work(
                        self._imported_work(customer, item, fingerprint, bill_at_list_price)
                    )
            except DomainError as exc:
                errors.append(ImportError_(line=item.line, msg=str(exc)))
                continue
            imported += 1
        return ImportResult(imported=imported, skipped=skipped, errors=errors)

    def _imported_work(
        self, customer: Customer, row: Connection, fingerprint: str, bill_at_list_price: bool
    ) -> Work:
        return Work(
            customer=customer,
            started_at=row.started_at,
            duration_seconds=int(row.duration.total_seconds()),
            supporter=row.user or "unknown",
            partner=row.partner or _partner(customer.name, row.computer or None),
            notes=row.notes,
            billable=row.billable,
            # A report says only "not billable": the reason an outside tool cannot give
            # is taken to be goodwill.
            non_billable_reason=None if row.billable else NonBillableReason.GOODWILL,
            bill_at_list_price=bill_at_list_price,
            origin="imported",
            computer=row.computer or None,
            import_fingerprint=fingerprint,
        )


def _partner(name: str, computer: str | None) -> str:
    return f"{name} – {computer}" if computer else name


def _lines(path: Path) -> Iterator[str]:
    """The report's lines, streamed; UTF-8 (with or without BOM), else Windows-1252,
    which German tools still write."""
    encoding = "utf-8-sig"
    try:
        with path.open(encoding=encoding, newline="") as probe:
            for _ in probe:
                pass
    except UnicodeDecodeError:
        encoding = "cp1252"
    with path.open(encoding=encoding, newline="") as handle:
        yield from handle
