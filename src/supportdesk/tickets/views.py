"""What a ticket looks like now, derived once per request from plain values.

Tickets, the queue and the events share it: ``derive`` turns a ticket's stored values
and its surroundings (the customer's standing today, the product's latest version, the
pauses) into its support group, blockers, due time and SLA state by asking the domain
core; ``render`` turns a ticket and its view into the answer's JSON bytes, exactly as
``TicketRead`` would serialize them, without building and validating a model per item
(the values come from the database, which only ever held validated ones).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pydantic_core
from pydantic import TypeAdapter

from supportdesk.config import BusinessRules
from supportdesk.domain.blockers import Blocker, TicketFacts, compute_blockers, holds
from supportdesk.domain.calendar import Interval
from supportdesk.domain.groups import Severity, SupportGroup, group_of
from supportdesk.domain.sla import SlaState, first_response_due, sla_state
from supportdesk.domain.tickets import TicketCategory
from supportdesk.tickets.repository import ReadRow, Surroundings, TicketRecord, WatchedRow
from supportdesk.tickets.schemas import AppointmentRead


@dataclass(frozen=True, slots=True)
class Derived:
    """What follows from a ticket and the customer's standing now."""

    support_group: SupportGroup
    blockers: tuple[Blocker, ...]
    held: bool
    first_response_due: datetime
    sla_state: SlaState


def derive(
    t: TicketRecord,
    group: SupportGroup,
    latest_version: str | None,
    pauses: list[Interval],
    rules: BusinessRules,
    now: datetime,
) -> Derived:
    """The view of one ticket at ``now``; ``pauses`` are the ended ones."""
    facts = TicketFacts(
        category=TicketCategory(t.category),
        os=t.env_os,
        host_application=t.env_host_application,
        product=t.product,
        addon_version=t.addon_version,
        latest_version=latest_version,
        steps_to_reproduce=t.steps_to_reproduce,
        has_image_screenshot=t.has_image_screenshot,
        has_database_backup=t.has_database_backup,
    )
    blockers = compute_blockers(facts, group)
    due = _due(t, group, pauses, rules)
    if t.paused_since is not None:
        # The running pause counts up to now: the due time moves while the clock stands,
        # unless it fell due before the pause began (then the pause cannot move it).
        pauses = [*pauses, (t.paused_since, max(now, t.paused_since))]
        if due >= t.paused_since:
            severity = Severity(t.severity)
            due = first_response_due(
                t.received_at, group, severity, rules.calendar, rules.sla_targets, pauses
            )
    calendar = rules.calendar
    if t.first_response_at is not None:
        state = SlaState.ON_TRACK if t.first_response_at <= due else SlaState.BREACHED
    else:
        state = sla_state(
            now,
            t.received_at,
            due,
            t.paused_since is not None,
            calendar,
            pauses,
            rules.at_risk_ratio,
        )
    return Derived(group, blockers, holds(blockers, group), due, state)


# Due times by the stored values they depend on (the ended pauses), per rules object: a
# page read again and again derives the same ones.
_DueKey = tuple[datetime, SupportGroup, str, tuple[Interval, ...]]
_DUE_MEMO: dict[int, tuple[BusinessRules, dict[_DueKey, datetime]]] = {}
_DUE_MEMO_SIZE = 50_000


def _due(
    t: TicketRecord, group: SupportGroup, pauses: list[Interval], rules: BusinessRules
) -> datetime:
    entry = _DUE_MEMO.get(id(rules))
    if entry is None or entry[0] is not rules:
        if len(_DUE_MEMO) > 8:
            _DUE_MEMO.clear()
        entry = _DUE_MEMO[id(rules)] = (rules, {})
    memo = entry[1]
    key = (t.received_at, group, t.severity, tuple(pauses))
    due = memo.get(key)
    if due is None:
        if len(memo) >= _DUE_MEMO_SIZE:
            memo.clear()
        severity = Severity(t.severity)
        due = memo[key] = first_response_due(
            t.received_at, group, severity, rules.calendar, rules.sla_targets, pauses
        )
    return due


def group_now(around: Surroundings) -> SupportGroup:
    return group_of(around.contract_valid, around.unit_balance)


def derive_row(row: ReadRow | WatchedRow, rules: BusinessRules, now: datetime) -> Derived:
    around = row.around
    return derive(row.record, group_now(around), around.latest_version, around.pauses, rules, now)


_APPOINTMENTS: TypeAdapter[list[AppointmentRead]] = TypeAdapter(list[AppointmentRead])


def answer(t: TicketRecord, view: Derived) -> dict[str, Any]:
    """The fields of ``TicketRead`` in its order, as values its serializer writes alike."""
    appointments = t.proposed_appointments
    return {
        "id": t.id,
        "customer_id": t.customer_id,
        "contact_id": t.contact_id,
        "category": t.category,
        "severity": t.severity,
        "status": t.status,
        "subject": t.subject,
        "description": t.description,
        "steps_to_reproduce": t.steps_to_reproduce,
        "product": t.product,
        "addon_version": t.addon_version,
        "environment": {
            "os": t.env_os,
            "host_application": t.env_host_application,
            "host_version": t.env_host_version,
            "database_server": t.env_database_server,
            "extra": t.env_extra or {},
        },
        # Plain texts: the serializer writes an enum member as its value too, slower.
        "support_group": view.support_group.value,
        "blockers": [blocker.value for blocker in view.blockers],
        "held": view.held,
        "received_at": t.received_at,
        "first_response_due": view.first_response_due,
        "first_response_at": t.first_response_at,
        "sla_state": view.sla_state.value,
        "next_business_window": t.next_business_window,
        "concept": t.concept,
        "concept_en": t.concept_en,
        # Stored as offset texts; the answer writes instants as the model does (``Z``).
        "proposed_appointments": _APPOINTMENTS.validate_python(appointments)
        if appointments
        else [],
        "dongle_received_at": t.dongle_received_at,
        "assignee_key_id": t.assignee_key_id,
        "updated_at": t.updated_at,
    }


def render(value: Any) -> bytes:
    """JSON bytes as FastAPI writes a response model (pydantic's serializer, compact)."""
    return pydantic_core.to_json(value)


def render_page(items: list[dict[str, Any]], next_cursor: str | None) -> bytes:
    return render({"items": items, "next_cursor": next_cursor})
