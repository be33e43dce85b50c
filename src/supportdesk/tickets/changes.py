"""A change to one ticket through Core: what it was, what it becomes, and every row that
goes with it, written in one round trip.

A use case reads the ticket once (``TicketRepository.read_for_change``: locked, with
what its view needs; or many at once, ``read_waiting``; or, for a comment or a move
through the status machine, ``read_unlocked``, the change then guarded by the version
read: ``TicketService._guarded_change``), then states the change here:
new values, a status move (which starts or ends a pause), the ticket placed anew,
events. ``writes()`` gives the ``UPDATE`` of only the columns whose values changed (the
version counted up, as by every write of the row), the pause, the audit row of what changed
(before and after, as the ORM's flush hook records it) and the events, for one
``Repository.write``. No ORM object, no unit of work, no read of what is already known.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic_core import to_jsonable_python

from supportdesk.config import BusinessRules
from supportdesk.domain.tickets import (
    TicketStatus,
    move_status,
    status_after_blockers_change,
    status_after_customer_answer,
)
from supportdesk.events.service import EVENTS, event_row
from supportdesk.kit.audit import audit_row, update_action, update_changes
from supportdesk.kit.repository import Writes, table_of
from supportdesk.models import AuditEntry, Ticket, TicketPause
from supportdesk.tickets.repository import ChangeRow, TicketRecord, ticket_update
from supportdesk.tickets.views import Derived, answer, derive, group_now

TICKETS = table_of(Ticket)
TICKET_COLUMNS = tuple(column.key for column in TICKETS.columns)
PAUSES = table_of(TicketPause)
AUDIT_LOG = table_of(AuditEntry)


def ticket_event(
    event_type: str, record: TicketRecord, view: Derived, **extra: object
) -> dict[str, Any]:
    """A ticket's event: the ticket as the answer shows it, and ``extra``."""
    data: dict[str, Any] = to_jsonable_python(answer(record, view))
    if extra:
        data = {**data, **extra}
    return event_row(
        event_type,
        resource_type="ticket",
        resource_id=record.id,
        customer_id=record.customer_id,
        data=data,
    )


class TicketChange:
    """One ticket's change, stated step by step and written at once."""

    __slots__ = ("_record", "before", "changed", "events", "group", "latest", "pauses", "rows")

    def __init__(self, row: ChangeRow) -> None:
        self.before: dict[str, Any] = {**row.record._asdict(), **row.placement._asdict()}
        self._record = row.record
        self.group = group_now(row.around)
        self.latest = row.around.latest_version
        self.pauses = list(row.around.pauses)
        self.changed: dict[str, Any] = {}
        self.rows = Writes()
        self.events: list[dict[str, Any]] = []

    @property
    def id(self) -> str:
        return self._record.id

    def get(self, name: str) -> Any:
        return self.changed[name] if name in self.changed else self.before[name]

    def set(self, **values: Any) -> None:
        self.changed.update(values)

    def name_product(self, code: str | None, latest_version: str | None) -> None:
        """Another product (or none), with its latest version from the catalogue."""
        self.set(product=code)
        self.latest = latest_version

    @property
    def status(self) -> TicketStatus:
        return TicketStatus(self.get("status"))

    def record(self) -> TicketRecord:
        """The ticket's values now."""
        fields = TicketRecord._fields
        return self._record._replace(**{k: v for k, v in self.changed.items() if k in fields})

    def view(self, rules: BusinessRules, now: datetime) -> Derived:
        return derive(self.record(), self.group, self.latest, self.pauses, rules, now)

    def move(self, to: TicketStatus, now: datetime) -> bool:
        """Set the status; a pause that ends with it is written and counts from now on."""
        move = move_status(self.status, self.get("paused_since"), to, now)
        if move is None:
            return False
        if move.ended_pause is not None:
            started, ended = move.ended_pause
            self.rows.insert(
                PAUSES, {"ticket_id": self.id, "started_at": started, "ended_at": ended}
            )
            self.pauses.append(move.ended_pause)
        self.changed.update(move.changes)
        return True

    def place(self, view: Derived) -> None:
        """Keep the stored copies of what is derived: the due time and the queue group."""
        self.set(first_response_due=view.first_response_due, queue_group=view.support_group.rank)

    def touch(self, now: datetime) -> None:
        """A new version of the ticket: ``updated_at`` (its ETag) and ``version`` move."""
        self.set(updated_at=now)

    def publish(self, event_type: str, view: Derived, **extra: object) -> None:
        self.events.append(ticket_event(event_type, self.record(), view, **extra))

    def settle(
        self, before: Derived, rules: BusinessRules, now: datetime, *, customer_answered: bool
    ) -> Derived:
        """Place the ticket after its facts changed: blockers clearing open it, new ones
        hold it, a customer's answer sends it back to the queue."""
        view = self.view(rules, now)
        status = status_after_blockers_change(self.status, self.get("held"), view.held)
        self.set(held=view.held)
        if customer_answered:
            status = status_after_customer_answer(status, view.held)
        previous = self.status
        if self.move(status, now):
            view = self.view(rules, now)
            self.publish("ticket.status_changed", view, previous_status=previous.value)
        if before.blockers and not view.blockers:
            self.publish("ticket.blockers_cleared", view)
        self.place(view)
        return view

    def replace(self, rules: BusinessRules, now: datetime) -> Derived:
        """Place the ticket anew after its customer's standing changed (a purchase, units
        running out, a contract starting or ending): blockers that hold it now take it
        out of the queue, blockers that no longer hold put it back."""
        view = self.view(rules, now)
        status = status_after_blockers_change(self.status, self.get("held"), view.held)
        self.set(held=view.held)
        previous = self.status
        self.place(view)
        if not self.move(status, now):
            return view
        self.touch(now)
        view = self.view(rules, now)
        self.place(view)
        self.publish("ticket.status_changed", view, previous_status=previous.value)
        if not view.blockers:
            self.publish("ticket.blockers_cleared", view)
        return view

    def writes(self, writes: Writes | None = None, *, guarded: bool = False) -> Writes:
        """The rows of the change (into ``writes``, if given): the ticket's update, its
        pause, its audit row and its events. ``guarded``: the update is the guard of the
        batch, changing the ticket only while it is at the version read, and the other
        rows are written only with it (``Repository.write``)."""
        batch = writes if writes is not None else Writes()
        batch.extend(self.rows)
        before = self.before
        changed = {
            name: value
            for name, value in self.changed.items()
            if name == "updated_at" or before[name] != value
        }
        if changed:
            names = tuple(sorted(changed))
            params = {f"u_{name}": value for name, value in changed.items()}
            params["u_id"] = self.id
            if guarded:
                params["g_version"] = before["version"]
            batch.update(ticket_update(names, guarded=guarded), params, guard=guarded)
            changes = update_changes(TICKET_COLUMNS, before, changed)
            if changes:
                action = update_action("ticket", changes)
                batch.insert(AUDIT_LOG, audit_row(action, "ticket", self.id, changes))
        elif guarded:
            raise ValueError("a guarded change writes the ticket (touch it)")
        if self.events:
            batch.insert(EVENTS, *self.events)
        return batch
