"""Use cases of tickets: open, edit, move, comment, escalate, attach, and keep them placed.

A ticket's ``support_group`` and ``blockers`` follow the customer's standing *now*, so
they are derived whenever a ticket is read. The status is stored; it changes by itself
when blockers clear (an upload, an edit, a purchase, a contract) and by supporters
through the status machine of the domain core.
"""

from __future__ import annotations

import logging
import mimetypes
import os
import re
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from pydantic_core import to_jsonable_python
from sqlalchemy.ext.asyncio import AsyncSession

from supportdesk.config import BusinessRules, Settings
from supportdesk.db import ReadConnect
from supportdesk.domain.calendar import Interval
from supportdesk.domain.errors import NotApplicable, RuleViolation
from supportdesk.domain.files import sniff_image
from supportdesk.domain.groups import Severity, group_of
from supportdesk.domain.sla import SlaState
from supportdesk.domain.tickets import (
    TicketCategory,
    TicketStatus,
    check_appointments,
    check_closable,
    check_escalation,
    check_transition,
    initial_status,
    move_status,
)
from supportdesk.errors import (
    BusinessRuleViolation,
    ContentMissing,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
)
from supportdesk.events.service import EVENTS, event_row
from supportdesk.kit.audit import audit_row, creation_changes
from supportdesk.kit.auth import Principal, Role
from supportdesk.kit.clock import utcnow
from supportdesk.kit.etag import require_match
from supportdesk.kit.ids import new_id
from supportdesk.kit.pagination import PageParams
from supportdesk.kit.repository import Writes, table_of
from supportdesk.kit.uploads import ReceivedFile
from supportdesk.models import Attachment, Comment, Escalation
from supportdesk.tickets.changes import (
    AUDIT_LOG,
    TICKET_COLUMNS,
    TICKETS,
    TicketChange,
    ticket_event,
)
from supportdesk.tickets.repository import (
    QueueKey,
    ReadRow,
    TicketReadRepository,
    TicketRecord,
    TicketRepository,
)
from supportdesk.tickets.schemas import (
    Appointment,
    CommentCreate,
    EscalationCreate,
    TicketCreate,
    TicketUpdate,
)
from supportdesk.tickets.views import Derived, derive, derive_row

T = TypeVar("T")

# How often a change read without a lock is tried before it waits for the ticket's lock
# instead: each miss means another change was written in between, and on a ticket that
# busy the lock's queue is the fairer way through.
GUARDED_ATTEMPTS = 2

COMMENTS = table_of(Comment)
ATTACHMENTS = table_of(Attachment)
ESCALATIONS = table_of(Escalation)
# What an edit replaces as it is given (and the product, with its latest version).
_EDITABLE = (
    "subject",
    "description",
    "steps_to_reproduce",
    "addon_version",
    "concept",
    "concept_en",
)

_SAFE_TYPE = re.compile(r"^[\w.+-]+/[\w.+-]+$")
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\]")
# The bidi controls that make a name read otherwise than it is ("invoice\u202egpj.exe").
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")


def _appointments(items: Sequence[Appointment] | None) -> list[dict[str, str]]:
    return [
        {"starts_at": a.starts_at.isoformat(), "ends_at": a.ends_at.isoformat()}
        for a in items or ()
    ]


def _intervals(stored: list[dict[str, str]]) -> list[Interval]:
    return [
        (datetime.fromisoformat(a["starts_at"]), datetime.fromisoformat(a["ends_at"]))
        for a in stored
    ]


logger = logging.getLogger(__name__)


class TicketReader:
    """The hot reads of tickets: one Core statement for the rows and what their views
    need, each view derived once, no ORM object and no unit of work."""

    def __init__(
        self, connect: ReadConnect, rules: BusinessRules, principal: Principal | None
    ) -> None:
        self.rules = rules
        self.by_customer = principal is not None and principal.role is Role.customer
        scope = principal.customer_scope if principal else None
        self.tickets = TicketReadRepository(connect, scope)

    def _views(self, rows: list[ReadRow], now: datetime) -> list[tuple[TicketRecord, Derived]]:
        rules = self.rules
        return [(row.record, derive_row(row, rules, now)) for row in rows]

    async def get_ticket(self, ticket_id: str) -> tuple[TicketRecord, Derived]:
        now = utcnow()
        row = await self.tickets.read_by_id(ticket_id, self.rules.calendar.local_date(now))
        if row is None:
            raise NotFound.of("ticket", ticket_id)
        return row.record, derive_row(row, self.rules, now)

    async def list_tickets(
        self,
        params: PageParams,
        *,
        status: TicketStatus | None = None,
        customer_id: str | None = None,
        category: TicketCategory | None = None,
        severity: Severity | None = None,
        q: str | None = None,
    ) -> tuple[list[tuple[TicketRecord, Derived]], str | None]:
        now = utcnow()
        rows, next_cursor = await self.tickets.read_page(
            params,
            self.rules.calendar.local_date(now),
            status=status.value if status else None,
            customer_id=customer_id,
            category=category.value if category else None,
            severity=severity.value if severity else None,
            q=q,
            # A customer finds its tickets by what it can read, never by internal notes.
            include_internal=not self.by_customer,
        )
        # Another customer's id in a filter is as unknown as one that does not exist. A
        # ticket found proves its customer visible: only an empty page asks.
        if (
            customer_id is not None
            and not rows
            and not await self.tickets.customer_visible(customer_id)
        ):
            raise NotFound.of("customer", customer_id)
        return self._views(rows, now), next_cursor

    async def queue_page(
        self, limit: int, after: QueueKey | None
    ) -> tuple[list[tuple[TicketRecord, Derived]], QueueKey | None]:
        """Open tickets in working order, and the key of the last one when more follow."""
        now = utcnow()
        rows = await self.tickets.read_queue_page(
            limit + 1, after, self.rules.calendar.local_date(now)
        )
        more = len(rows) > limit
        rows = rows[:limit]
        last = rows[-1].queue_key if more and rows else None
        return self._views(rows, now), last


class TicketService:
    def __init__(
        self,
        session: AsyncSession,
        rules: BusinessRules,
        *,
        principal: Principal | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.rules = rules
        self.principal = principal
        self.settings = settings
        self.tickets = TicketRepository(session, principal.customer_scope if principal else None)

    # Use cases ---------------------------------------------------------------------

    async def _visible(self, ticket_id: str) -> str:
        """The ticket's customer, when the caller may see the ticket."""
        customer_id = await self.tickets.customer_of(ticket_id)
        if customer_id is None:
            raise NotFound.of("ticket", ticket_id)
        return customer_id

    async def open_ticket(self, data: TicketCreate) -> tuple[TicketRecord, Derived]:
        """A new ticket: held for the customer while blockers hold it, else queued.

        Core throughout: one read of the customer's standing, the product's latest
        version and the contact; one write of the ticket, its audit row and its event."""
        customer_id = data.customer_id or (
            self.principal.customer_scope if self.principal else None
        )
        if customer_id is None:
            raise InvalidInput("customer_id is required.", loc=["body", "customer_id"])
        rules = self.rules
        calendar = rules.calendar
        now = utcnow()
        around = await self.tickets.read_for_new(
            customer_id, data.contact_id, data.product, calendar.local_date(now)
        )
        if around is None:
            raise NotFound.of("customer", customer_id)
        if data.contact_id is not None and not around.contact_found:
            raise NotFound.of("contact", data.contact_id)
        category = TicketCategory(data.category)
        appointments = _appointments(data.proposed_appointments)
        check_appointments(category, _intervals(appointments), rules.installation_calendar)
        env = data.environment
        severity = Severity(data.severity)
        values: dict[str, Any] = {
            "id": new_id("tkt"),
            "customer_id": customer_id,
            "contact_id": data.contact_id,
            "category": category.value,
            "severity": severity.value,
            "severity_rank": severity.rank,
            "queue_group": 2,
            "status": TicketStatus.OPEN.value,
            "subject": data.subject,
            "description": data.description,
            "steps_to_reproduce": data.steps_to_reproduce,
            "product": data.product,
            "addon_version": data.addon_version,
            "env_os": env.os if env else None,
            "env_host_application": env.host_application if env else None,
            "env_host_version": env.host_version if env else None,
            "env_database_server": env.database_server if env else None,
            "env_extra": dict(env.extra or {}) if env else {},
            "concept": data.concept,
            "concept_en": data.concept_en,
            "proposed_appointments": appointments,
            "dongle_received_at": None,
            "has_image_screenshot": False,
            "has_database_backup": False,
            "held": False,
            "assignee_key_id": None,
            "received_at": now,
            "next_business_window": None if calendar.is_open(now) else calendar.next_opening(now),
            "first_response_at": None,
            "first_response_due": now,
            "paused_since": None,
            "sla_at_risk_notified_at": None,
            "sla_breached_notified_at": None,
            "created_by": self.principal.key_id if self.principal else None,
            "updated_at": now,
            "version": 1,
        }
        group = group_of(around.contract_valid, around.unit_balance)
        latest = around.latest_version

        def view_now() -> tuple[TicketRecord, Derived]:
            record = TicketRecord._make([values[name] for name in TicketRecord._fields])
            return record, derive(record, group, latest, [], rules, now)

        record, view = view_now()
        if view.held:
            # Held from the start: the ticket waits for the customer and its clock stands.
            move = move_status(TicketStatus.OPEN, None, initial_status(True), now)
            assert move is not None
            values.update(move.changes, held=True)
            record, view = view_now()
        values["first_response_due"] = view.first_response_due
        values["queue_group"] = view.support_group.rank
        writes = Writes()
        writes.insert(TICKETS, values)
        changes = creation_changes(TICKET_COLUMNS, values)
        writes.insert(AUDIT_LOG, audit_row("create", "ticket", record.id, changes))
        writes.insert(EVENTS, ticket_event("ticket.created", record, view))
        await self.tickets.write(writes)
        return record, view

    @property
    def _by_customer(self) -> bool:
        return self.principal is not None and self.principal.role is Role.customer

    async def update_ticket(
        self, ticket_id: str, data: TicketUpdate, *, if_match: str | None = None
    ) -> tuple[TicketRecord, Derived]:
        """Customer-side edits; blockers are recomputed and the ticket placed anew. The
        ticket is locked while ``If-Match`` is checked against its stored version."""
        now = utcnow()
        change = await self._change(ticket_id, now)
        require_match(if_match, change.id, change.get("updated_at"))
        before = change.view(self.rules, now)
        given = data.model_dump(exclude_unset=True)
        if "environment" in given:
            env = data.environment
            if env is None:
                change.set(
                    env_os=None,
                    env_host_application=None,
                    env_host_version=None,
                    env_database_server=None,
                    env_extra={},
                )
            else:
                for name in env.model_fields_set:
                    value = getattr(env, name)
                    if name == "extra":
                        change.set(env_extra=dict(value or {}))
                    else:
                        change.set(**{f"env_{name}": value})
        if "proposed_appointments" in given:
            change.set(proposed_appointments=_appointments(data.proposed_appointments))
        change.set(**{name: given[name] for name in _EDITABLE if name in given})
        if "product" in given and given["product"] != change.before["product"]:
            # Blockers compare the version given with the new product's latest.
            latest = await self.tickets.latest_version_of(given["product"])
            change.name_product(given["product"], latest)
        if data.severity is not None:
            severity = Severity(data.severity)
            change.set(severity=severity.value, severity_rank=severity.rank)
        check_appointments(
            TicketCategory(change.get("category")),
            _intervals(change.get("proposed_appointments") or []),
            self.rules.installation_calendar,
        )
        change.touch(now)
        view = change.settle(before, self.rules, now, customer_answered=self._by_customer)
        await self.tickets.write(change.writes())
        return change.record(), view

    async def _change(self, ticket_id: str, now: datetime, *, locked: bool = True) -> TicketChange:
        """The ticket, locked for this transaction, to be changed through Core; with
        ``locked=False`` read without a lock, for a change guarded by its version."""
        read = self.tickets.read_for_change if locked else self.tickets.read_unlocked
        row = await read(ticket_id, self.rules.calendar.local_date(now))
        if row is None:
            raise NotFound.of("ticket", ticket_id)
        return TicketChange(row)

    async def _guarded_change(
        self, ticket_id: str, state: Callable[[TicketChange, datetime], T]
    ) -> T:
        """A change of one ticket as one statement: the ticket read without a lock,
        ``state`` stating the change (or refusing it), and the change written only if
        the ticket is still at the version read; else read and stated again. On
        PostgreSQL outside a transaction begun before, the read and the write are two
        round trips, with no BEGIN and COMMIT, the write atomic on its own.

        After ``GUARDED_ATTEMPTS`` misses the change is made as every other one is: the
        ticket read locked, in a transaction, then written. It waits for the changes
        before it and always gets through; none is refused for being contended."""
        for _ in range(GUARDED_ATTEMPTS):
            now = utcnow()
            change = await self._change(ticket_id, now, locked=False)
            outcome = state(change, now)
            if await self.tickets.write(change.writes(guarded=True)):
                return outcome
        now = utcnow()
        change = await self._change(ticket_id, now)
        outcome = state(change, now)
        await self.tickets.write(change.writes())
        return outcome

    async def move_ticket(
        self, ticket_id: str, to: TicketStatus, note: str | None
    ) -> tuple[TicketRecord, Derived]:
        """A supporter's move through the status machine: one read, one write."""

        def state(change: TicketChange, now: datetime) -> tuple[TicketRecord, Derived]:
            self._check_move(change, to, now)
            self._apply_change(change, to, now)
            if note:
                change.rows.insert(COMMENTS, self._comment_row(change.id, note, True, now))
            return self._state_move(change, now)

        return await self._guarded_change(ticket_id, state)

    def _check_move(self, change: TicketChange, to: TicketStatus, now: datetime) -> None:
        before = change.view(self.rules, now)
        check_transition(change.status, to, held=before.held, blockers=before.blockers)
        category = TicketCategory(change.get("category"))
        if to == TicketStatus.CLOSED:
            check_closable(category, change.get("dongle_received_at") is not None)
        if to == TicketStatus.ESCALATED:
            check_escalation(category, change.get("concept"), change.get("concept_en"))

    def _apply_change(self, change: TicketChange, to: TicketStatus, now: datetime) -> None:
        change.move(to, now)
        if to == TicketStatus.IN_PROGRESS and self.principal is not None:
            change.set(assignee_key_id=self.principal.key_id)
        if to in (TicketStatus.AWAITING_CUSTOMER, TicketStatus.RESOLVED):
            # Asking the customer or giving a solution is the first response.
            change.set(first_response_at=change.get("first_response_at") or now)
        change.touch(now)

    def _state_move(self, change: TicketChange, now: datetime) -> tuple[TicketRecord, Derived]:
        """The moved ticket placed anew and its event: the ticket and its view."""
        previous = TicketStatus(change.before["status"])
        view = change.view(self.rules, now)
        change.place(view)
        change.publish("ticket.status_changed", view, previous_status=previous.value)
        return change.record(), view

    async def _write_move(
        self, change: TicketChange, now: datetime, writes: Writes | None = None
    ) -> tuple[TicketRecord, Derived]:
        moved = self._state_move(change, now)
        await self.tickets.write(change.writes(writes))
        return moved

    def _comment_row(
        self, ticket_id: str, body: str, internal: bool, now: datetime
    ) -> dict[str, Any]:
        return {
            "id": new_id("cmt"),
            "ticket_id": ticket_id,
            "body": body,
            "internal": internal,
            "author_key_id": self.principal.key_id if self.principal else None,
            "author_role": self.principal.role.value if self.principal else "system",
            "created_at": now,
        }

    async def add_comment(self, ticket_id: str, data: CommentCreate) -> dict[str, Any]:
        """A comment; a supporter's visible answer is a first response, a customer's
        answer sends a ticket waiting on them back to the queue. One read, one write."""
        return await self._guarded_change(
            ticket_id, lambda change, now: self._state_comment(change, data, now)
        )

    def _state_comment(
        self, change: TicketChange, data: CommentCreate, now: datetime
    ) -> dict[str, Any]:
        before = change.view(self.rules, now)
        comment = self._comment_row(change.id, data.body, data.internal, now)
        change.rows.insert(COMMENTS, comment)
        if self._by_customer:
            change.settle(before, self.rules, now, customer_answered=True)
        elif not data.internal:
            change.set(first_response_at=change.get("first_response_at") or now)
            change.place(change.view(self.rules, now))
        change.touch(now)
        if not data.internal:
            # Internal notes stay inside the desk: no event, so no webhook and no mail.
            change.events.append(
                event_row(
                    "ticket.commented",
                    resource_type="ticket",
                    resource_id=change.id,
                    customer_id=change.get("customer_id"),
                    data=to_jsonable_python(comment),
                )
            )
        return comment

    async def list_comments(
        self, ticket_id: str, params: PageParams
    ) -> tuple[list[Comment], str | None]:
        await self._visible(ticket_id)
        return await self.tickets.list_comments(
            ticket_id, params, include_internal=not self._by_customer
        )

    async def escalate(
        self, ticket_id: str, data: EscalationCreate
    ) -> tuple[Escalation, tuple[TicketRecord, Derived]]:
        """Report the problem to the vendor, with an English summary; the ticket waits
        on the vendor, whose next business window is shown in both time zones."""
        now = utcnow()
        change = await self._change(ticket_id, now)
        self._check_move(change, TicketStatus.ESCALATED, now)
        escalation = Escalation(
            id=new_id("esc"),
            ticket_id=change.id,
            vendor=data.vendor,
            summary_en=data.summary_en,
            vendor_window_opens_at=self.rules.vendor_calendar.next_opening(now),
            created_by=self.principal.key_id if self.principal else None,
            created_at=now,
        )
        change.rows.insert(ESCALATIONS, {c.key: getattr(escalation, c.key) for c in ESCALATIONS.c})
        self._apply_change(change, TicketStatus.ESCALATED, now)
        return escalation, await self._write_move(change, now)

    async def list_escalations(
        self, ticket_id: str, params: PageParams
    ) -> tuple[list[Escalation], str | None]:
        await self._visible(ticket_id)
        return await self.tickets.list_escalations(ticket_id, params)

    async def record_dongle_return(
        self, ticket_id: str, received_at: datetime | None
    ) -> tuple[TicketRecord, Derived]:
        """The defective dongle of a hardware exchange is back (at ``received_at``, else
        now): the ticket may be closed from now on."""
        now = utcnow()
        change = await self._change(ticket_id, now)
        if change.get("category") != TicketCategory.HARDWARE_EXCHANGE:
            raise NotApplicable("only a hardware_exchange ticket has a dongle to return")
        change.set(dongle_received_at=received_at or now)
        change.touch(now)
        await self.tickets.write(change.writes())
        return change.record(), change.view(self.rules, now)

    # Attachments ----------------------------------------------------------------------

    def _storage(self) -> Path:
        if self.settings is None:
            raise RuntimeError("attachments need the settings")
        return Path(self.settings.attachments_dir)

    def upload_folder(self) -> Path:
        """Where uploads are received: on the same disk as the files they become."""
        return self._storage() / "incoming"

    def kind_limit(self, kind: str | None, loc: str = "body") -> int:
        """The most bytes an attachment of ``kind`` may have; the largest of all kinds
        while the kind is not known yet."""
        assert self.settings is not None
        limits = self.settings.attachment_max_bytes
        if kind is None:
            return max(limits.values())
        if kind not in limits:
            raise InvalidInput(
                f"Unknown attachment kind {kind!r}; one of {', '.join(sorted(limits))}.",
                loc=[loc, "kind"],
            )
        return limits[kind]

    async def _quota_left(self, customer_id: str) -> int:
        assert self.settings is not None
        used = await self.tickets.attachment_bytes_of_customer(customer_id)
        return self.settings.attachment_quota_bytes - used

    async def prepare_upload(self, ticket_id: str, kind: str | None) -> int:
        """Before a file streams: the caller may attach to this ticket, the kind (when
        given first) is known, and the customer's quota has room. The most bytes the
        file may have."""
        assert self.settings is not None
        customer_id = await self._visible(ticket_id)
        limit = self.kind_limit(kind, loc="query")
        left = await self._quota_left(customer_id)
        if left <= 0:
            raise PayloadTooLarge(
                "The customer's attachment quota "
                f"({self.settings.attachment_quota_bytes} bytes) is used up."
            )
        return min(limit, left)

    async def attach_file(self, ticket_id: str, kind: str, received: ReceivedFile) -> Attachment:
        """Keep an uploaded file: within its kind's size and the customer's quota, a
        screenshot only if its bytes are an image. A screenshot or a backup can clear
        blockers."""
        assert self.settings is not None
        now = utcnow()
        change = await self._change(ticket_id, now)
        limit = self.kind_limit(kind)
        if received.size > limit:
            raise PayloadTooLarge(f"A {kind} may be at most {limit} bytes.")
        if received.size > await self._quota_left(change.get("customer_id")):
            raise PayloadTooLarge(
                "The file does not fit into the customer's attachment quota "
                f"({self.settings.attachment_quota_bytes} bytes)."
            )
        image_type = sniff_image(received.head)
        if kind == "screenshot" and image_type is None:
            raise BusinessRuleViolation("A screenshot must be a PNG, JPEG, GIF or WebP image.")
        before = change.view(self.rules, now)
        attachment = Attachment(
            id=new_id("att"),
            ticket_id=change.id,
            kind=kind,
            filename=safe_filename(received.filename),
            content_type=_content_type(image_type, received),
            size=received.size,
            sha256=received.sha256,
            storage_key=f"{change.id}/{new_id('blob')}",
            uploaded_by=self.principal.key_id if self.principal else None,
            created_at=now,
        )
        target = self._storage() / attachment.storage_key
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(received.path, target)
        try:
            change.rows.insert(
                ATTACHMENTS, {c.key: getattr(attachment, c.key) for c in ATTACHMENTS.c}
            )
            if kind == "screenshot":
                change.set(has_image_screenshot=True)
            if kind == "database_backup":
                change.set(has_database_backup=True)
            change.touch(now)
            change.settle(before, self.rules, now, customer_answered=self._by_customer)
            await self.tickets.write(change.writes())
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        return attachment

    async def list_attachments(
        self, ticket_id: str, params: PageParams
    ) -> tuple[list[Attachment], str | None]:
        await self._visible(ticket_id)
        return await self.tickets.list_attachments(ticket_id, params)

    async def attachment_file(self, ticket_id: str, attachment_id: str) -> tuple[Attachment, Path]:
        await self._visible(ticket_id)
        attachment = await self.tickets.get_attachment(ticket_id, attachment_id)
        if attachment is None:
            raise NotFound.of("attachment", attachment_id)
        path = self._storage() / attachment.storage_key
        if not path.is_file():
            # The row outlived its bytes (a restore without the attachments folder, a
            # file removed by hand): an operator's matter, told plainly, not a crash.
            logger.error("attachment %s has no file at %s", attachment.id, path)
            raise ContentMissing(
                f"The content of attachment {attachment.id} is missing from the server's "
                "storage; the operator has been told in the log."
            )
        return attachment, path

    # The queue ---------------------------------------------------------------------

    async def claim_next(self, max_held_skips: int) -> tuple[TicketRecord, Derived] | None:
        """Take the first ticket of the queue for the caller; two claimers never get the
        same one. A ticket that blockers hold by now (the customer's standing changed
        since it was queued) is held instead and passed over, up to ``max_held_skips``."""
        now = utcnow()
        today = self.rules.calendar.local_date(now)
        passed_over: list[str] = []
        for _ in range(max_held_skips):
            row = await self.tickets.read_queue_head(passed_over, today)
            if row is None:
                return None
            change = TicketChange(row)
            view = change.view(self.rules, now)
            if not view.held:
                self._apply_change(change, TicketStatus.IN_PROGRESS, now)
                return await self._write_move(change, now)
            change.settle(view, self.rules, now, customer_answered=False)
            change.touch(now)
            await self.tickets.write(change.writes())
            passed_over.append(change.id)
        return None

    # Keeping tickets placed as the customer's standing changes ---------------------------

    async def refresh_customer(self, customer_id: str) -> None:
        """Re-place the customer's held and queued tickets after its standing changed
        (a purchase, units running out, a contract starting or ending)."""
        await self._refresh([customer_id])

    async def _refresh(self, customer_ids: Sequence[str]) -> None:
        """The customers' held and queued tickets placed anew: one read of them, locked,
        with what their views need; one write of every change."""
        if not customer_ids:
            return
        now = utcnow()
        rows = await self.tickets.read_waiting(customer_ids, self.rules.calendar.local_date(now))
        writes = Writes()
        for row in rows:
            change = TicketChange(row)
            change.replace(self.rules, now)
            change.writes(writes)
        if writes.parts:
            await self.tickets.write(writes)

    async def sweep_sla(self, horizon: timedelta = timedelta(days=7), limit: int = 1000) -> int:
        """Announce tickets that became at risk or breached, once each (a periodic sweep:
        time alone moves a ticket into these states). One read of the candidates with
        what their views need, the claims, one write of the events."""
        now = utcnow()
        today = self.rules.calendar.local_date(now)
        rows = await self.tickets.awaiting_first_response(now + horizon, limit, today)
        views = [(row, derive_row(row, self.rules, now)) for row in rows]
        breached = [row.record.id for row, view in views if view.sla_state == SlaState.BREACHED]
        at_risk = [
            row.record.id
            for row, view in views
            if view.sla_state == SlaState.AT_RISK and not row.at_risk_announced
        ]
        # Claimed in the database before anything is published: another worker or replica
        # sweeping at the same moment announces only what it claimed itself.
        claimed = {
            "ticket.sla_breached": await self.tickets.claim_sla_notices(breached, True, now),
            "ticket.sla_at_risk": await self.tickets.claim_sla_notices(at_risk, False, now),
        }
        events = [
            ticket_event(event_type, row.record, view)
            for event_type, ids in claimed.items()
            for row, view in views
            if row.record.id in ids
        ]
        if events:
            writes = Writes()
            writes.insert(EVENTS, *events)
            await self.tickets.write(writes)
        return len(events)

    async def refresh_turning_contracts(self) -> int:
        """Re-place the tickets of customers whose contracts start or end with today's
        date; run now and then, so the queue follows the calendar by itself."""
        today = self.rules.calendar.local_date(utcnow())
        customer_ids = await self.tickets.customers_whose_contracts_turn(today)
        await self._refresh(customer_ids)
        return len(customer_ids)


# Types a browser shows without running anything; every other stored file is served as
# application/octet-stream.
INERT_TYPES = (
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/pdf",
    "text/plain",
)


def served_type(content_type: str) -> str:
    """The type an attachment is served as: its own when inert, else a plain download."""
    return content_type if content_type in INERT_TYPES else "application/octet-stream"


def safe_filename(name: str) -> str:
    """A stored or served file name: no path, no control characters, no bidi controls."""
    name = _BIDI_CONTROLS.sub("", name)
    cleaned = _UNSAFE_NAME.sub("_", os.path.basename(name.replace("\\", "/"))).strip()
    return (cleaned or "upload")[:255]


def _content_type(image_type: str | None, received: ReceivedFile) -> str:
    """Images by their bytes; other files by what was declared or their name, but never
    as an image they are not."""
    if image_type is not None:
        return image_type
    declared = received.declared_type.split(";")[0].strip().lower()
    if declared and _SAFE_TYPE.match(declared) and not declared.startswith("image/"):
        return declared
    guessed, _ = mimetypes.guess_type(received.filename)
    if guessed and not guessed.startswith("image/"):
        return guessed
    return "application/octet-stream"


__all__ = [
    "INERT_TYPES",
    "RuleViolation",
    "TicketReader",
    "TicketService",
    "safe_filename",
    "served_type",
]
