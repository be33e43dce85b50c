"""The audit trail walks every mutating route (issue 16: "the audit trail stays complete
for Core writes").

``ROUTES`` is the table: every POST, PUT, PATCH and DELETE of the app, read from the
FastAPI app object, with the audit rows it leaves, or the reason it leaves none. A route
the table does not name fails ``test_every_mutating_route_is_in_the_table``, so a new
route cannot slip by.

``SCENARIOS`` are the walks through the HTTP API that exercise the table, one step per
request, each with the audit rows it must leave: object type, object, action, and the
fields of ``changes`` that matter with their before and after values. After every step
the test checks, on both databases:

- the step left exactly the rows it names, no more, no fewer, one per object changed;
- each row's fields and values, as named in the step;
- each row's ``changes`` against the database itself: the stored row before and after the
  step (a new object: every column that holds a value; a changed one: every column whose
  value changed), so a field changed without its audit, or audited with a wrong value,
  is found whether the step names it or not;
- the acting key's id and role, and the instant of the change;
- no secret (key hashes, API keys, webhook secrets, session codes) in any row;
- at the end, ``GET /api/v1/audit`` answers the same rows for every object touched.

Every clock the writes read stands still on a Monday in 1998, one minute further at each
step, so instants are exact and the walk's contract ticket is the oldest in the queue
whatever other tests left there. Only rows this test wrote count: the objects and audit
rows present before a walk (live tests commit to the shared test database) are ignored.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi.routing import iter_route_contexts
from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncConnection

from supportdesk.config import Settings, build_rules
from supportdesk.domain.pricing import list_price_amount, price_package
from supportdesk.kit.auth import hash_key
from supportdesk.main import create_app
from supportdesk.models import (
    ApiKey,
    AuditEntry,
    Contract,
    Customer,
    LedgerEntry,
    Ticket,
    WebhookSubscription,
)

# A Monday, 11:00 in Berlin: within business hours, and older than anything a live test
# commits with the real clock.
T0 = datetime(1998, 3, 2, 10, 0, tzinfo=UTC)
CLOCKS = (
    "supportdesk.api_keys.service",
    "supportdesk.contracts.service",
    "supportdesk.customers.service",
    "supportdesk.kit.audit",
    "supportdesk.ledger.service",
    "supportdesk.products.service",
    "supportdesk.sessions.endpoints",
    "supportdesk.sessions.service",
    "supportdesk.statements.service",
    "supportdesk.tickets.service",
    "supportdesk.webhooks.service",
)
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# The audited objects and their tables.
AUDITED_TABLES: dict[str, Table] = {
    "api_key": ApiKey.__table__,
    "contract": Contract.__table__,
    "customer": Customer.__table__,
    "ledger_entry": LedgerEntry.__table__,
    "ticket": Ticket.__table__,
    "webhook": WebhookSubscription.__table__,
}
# Secrets: never in a row, by name or by value.
SECRET_FIELDS = frozenset({"key_hash", "secret", "token", "code_hash"})
# What changes on every write: never part of a row.
BOOKKEEPING = frozenset({"updated_at", "version", "last_balance_change"})
# The prepaid balance kept beside the customer is the running sum of its ledger entries,
# changed by one conditional UPDATE with every entry (so was it on the ORM path): it is
# audited through the entry's ``change`` and ``balance_after``, never as a customer
# update. The walk checks that the entry written with it says the new balance.
THROUGH_THE_LEDGER = frozenset({("customer", "unit_balance")})

PRICES = build_rules(Settings()).price_list
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
REPORT = (
    "Benutzer;Computer;Beginn;Ende;Dauer;Notizen;Abrechenbar\n"
    "Klaus Hörner;PC Herr Horst Maier;02.03.1998 09:00;;00:20:00;Neustart;ja\n"
    "Klaus Hörner;PC Frau Maier;02.03.1998 09:30;;00:20:00;Drucker;ja\n"
).encode()


# The table ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Audited:
    """The route leaves audit rows of these kinds (object type, action)."""

    leaves: frozenset[tuple[str, str]]
    note: str


@dataclass(frozen=True)
class NoAudit:
    """The route changes no audited object; the walk asserts it leaves no row."""

    reason: str


def leaves(*kinds: str, note: str) -> Audited:
    return Audited(frozenset((kind.split(" ")[0], kind.split(" ")[1]) for kind in kinds), note)


ROUTES: dict[tuple[str, str], Audited | NoAudit] = {
    ("POST", "/api/v1/api-keys"): leaves(
        "api_key create", note="the key, without its hash or its secret"
    ),
    ("DELETE", "/api/v1/api-keys/{key_id}"): leaves(
        "api_key revoke", note="revoked_at from null to the instant; a second revoke: none"
    ),
    ("POST", "/api/v1/customers"): leaves("customer create", note="every field given"),
    ("PATCH", "/api/v1/customers/{customer_id}"): leaves(
        "customer update", note="the fields changed, before and after"
    ),
    ("POST", "/api/v1/customers/{customer_id}/contacts"): NoAudit(
        "a contact is not an audited object, and adding one changes no customer field"
    ),
    ("PUT", "/api/v1/products/{code}"): NoAudit(
        "a product is not an audited object; its latest_version reaches tickets only "
        "through the blockers derived when they are read: no stored ticket field changes"
    ),
    ("POST", "/api/v1/contracts"): leaves(
        "contract create",
        "ticket transition",
        note="the contract; the customer's tickets it no longer holds open (status, held, "
        "queue_group, the pause ended, the due time)",
    ),
    ("PATCH", "/api/v1/contracts/{contract_id}"): leaves(
        "contract update",
        "ticket update",
        note="ends_on; the customer's queued tickets move to their new group",
    ),
    ("POST", "/api/v1/tickets"): leaves(
        "ticket create", note="every field, the held status and the due time included"
    ),
    ("PATCH", "/api/v1/tickets/{ticket_id}"): leaves(
        "ticket update",
        "ticket transition",
        note="the customer-side fields changed, and the due time they move; clearing the "
        "last blocker, or the customer's answer, opens the ticket",
    ),
    ("POST", "/api/v1/tickets/{ticket_id}/transitions"): leaves(
        "ticket transition", note="status before and after, assignee, pause, first response"
    ),
    ("POST", "/api/v1/tickets/{ticket_id}/comments"): leaves(
        "ticket update",
        "ticket transition",
        note="a supporter's visible answer sets first_response_at; a customer's answer "
        "sends a ticket waiting on them back to open; an internal note: none",
    ),
    ("POST", "/api/v1/tickets/{ticket_id}/escalations"): leaves(
        "ticket transition", note="status to escalated, the pause started"
    ),
    ("POST", "/api/v1/tickets/{ticket_id}/dongle-return"): leaves(
        "ticket update", note="dongle_received_at from null to the instant"
    ),
    ("POST", "/api/v1/tickets/{ticket_id}/attachments"): leaves(
        "ticket update",
        "ticket transition",
        note="a screenshot sets has_image_screenshot and may clear the last blocker (the "
        "held ticket opens); the customer's upload answers a question (back to open); "
        "otherwise a log file changes no audited field: none",
    ),
    ("POST", "/api/v1/queue/claim"): leaves(
        "ticket transition", note="open to in_progress, assigned to the caller"
    ),
    ("POST", "/api/v1/customers/{customer_id}/ledger/entries"): leaves(
        "ledger_entry create",
        "ticket transition",
        "ticket update",
        note="the entry (units, change, balance_after, prices); when the balance leaves "
        "or reaches zero, the customer's waiting tickets are placed anew",
    ),
    ("POST", "/api/v1/remote-sessions"): NoAudit(
        "a remote session is not an audited object (its code is kept only as a hash)"
    ),
    ("POST", "/api/v1/remote-sessions/join"): NoAudit(
        "joining changes only the session (status, started_at, joined_by) and the key's "
        "count of wrong codes, neither of them audited"
    ),
    ("POST", "/api/v1/remote-sessions/{session_id}/end"): leaves(
        "ledger_entry create",
        note="the charge, when there is one (the session log itself is not audited)",
    ),
    ("POST", "/api/v1/remote-sessions/{session_id}/emergency-stop"): leaves(
        "ledger_entry create", note="the charge, by the customer's key"
    ),
    ("POST", "/api/v1/session-logs"): leaves(
        "ledger_entry create", note="the charge of a billable log; a not billable one: none"
    ),
    ("POST", "/api/v1/session-logs/import"): leaves(
        "ledger_entry create", note="one charge per imported row; a reimport: none"
    ),
    ("POST", "/api/v1/customers/{customer_id}/statements"): NoAudit(
        "a statement is not an audited object; issuing one freezes its lines and changes "
        "no ledger entry and no customer"
    ),
    ("POST", "/api/v1/webhooks"): leaves(
        "webhook create", note="url, events, active; never the secret"
    ),
    ("DELETE", "/api/v1/webhooks/{webhook_id}"): leaves(
        "webhook update",
        note="active from true to false: a subscription is deactivated, never deleted",
    ),
}


# The walks ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Ref:
    """The id (or value) the walk saved under ``name``."""

    name: str


@dataclass(frozen=True)
class When:
    """The instant of the step ``label`` (None: this step), plus ``minutes``."""

    label: str | None = None
    minutes: float = 0


NOW = When()


@dataclass(frozen=True)
class Row:
    """An audit row a step must leave; ``changes`` names the fields that matter."""

    object_type: str
    obj: str  # the walk's name of the object's id, or "new:<type>#<n>"
    action: str
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    label: str
    route: tuple[str, str]
    actor: str
    expect: tuple[Row, ...] = ()
    params: dict[str, str] = field(default_factory=dict)
    body: Any = None
    files: dict[str, tuple[str, bytes, str]] | None = None
    data: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 200
    save: dict[str, str] = field(default_factory=dict)  # name -> field of the answer
    becomes: str | None = None  # the API key created becomes an actor of this name
    claims: str | None = None  # the answer is this object
    wait: float = 1  # minutes the clock moves before the step


def ticket_body(**fields: Any) -> dict[str, Any]:
    return {
        "category": "bug_report",
        "severity": "normal",
        "subject": "Import schlägt fehl",
        "description": "Der Import bricht mit „Fehler 17“ ab.",
        **fields,
    }


COMPLETE = {
    "steps_to_reproduce": "1. Add-on öffnen 2. Import klicken",
    "environment": {"os": "Windows 10", "host_application": "ArchiCAD", "host_version": "22"},
}
TICKET = "/api/v1/tickets/{ticket_id}"
MOVE = ("POST", TICKET + "/transitions")
COMMENT = ("POST", TICKET + "/comments")
ATTACH = ("POST", TICKET + "/attachments")
LEDGER = ("POST", "/api/v1/customers/{customer_id}/ledger/entries")
PURCHASE_10 = price_package(10, PRICES)
PURCHASE_20 = price_package(20, PRICES)


def opened(paused_since: When, group: tuple[int, int]) -> dict[str, tuple[Any, Any]]:
    """The changes of a held ticket that opens: its pause ends, it joins ``group``."""
    return {
        "status": ("awaiting_customer", "open"),
        "held": (True, False),
        "queue_group": group,
        "paused_since": (paused_since, None),
    }


KEYS_CUSTOMERS_WEBHOOKS = [
    Step(
        "issue a key",
        ("POST", "/api/v1/api-keys"),
        "admin",
        body={"name": "walk temp", "role": "agent"},
        status=201,
        save={"temp_key": "id"},
        expect=(
            Row(
                "api_key",
                "temp_key",
                "create",
                {
                    "name": (None, "walk temp"),
                    "role": (None, "agent"),
                    "created_by": (None, Ref("admin")),
                    "created_at": (None, NOW),
                },
            ),
        ),
    ),
    Step(
        "revoke it",
        ("DELETE", "/api/v1/api-keys/{key_id}"),
        "admin",
        params={"key_id": "temp_key"},
        status=204,
        expect=(Row("api_key", "temp_key", "revoke", {"revoked_at": (None, NOW)}),),
    ),
    Step(
        "revoke it again: nothing changes",
        ("DELETE", "/api/v1/api-keys/{key_id}"),
        "admin",
        params={"key_id": "temp_key"},
        status=204,
    ),
    Step(
        "register a customer",
        ("POST", "/api/v1/customers"),
        "integration",
        body={
            "name": "Fa. Walter Maier GmbH",
            "external_ref": Ref("external_ref"),
            "unit_warning_levels": [4, 10],
        },
        status=201,
        save={"c": "id"},
        expect=(
            Row(
                "customer",
                "c",
                "create",
                {
                    "name": (None, "Fa. Walter Maier GmbH"),
                    "external_ref": (None, Ref("external_ref")),
                    "unit_balance": (None, 0),
                    "unit_warning_levels": (None, "10,4"),
                    "language": (None, "de"),
                    "notification_opt_outs": (None, []),
                    "created_at": (None, NOW),
                },
            ),
        ),
    ),
    Step(
        "edit the customer",
        ("PATCH", "/api/v1/customers/{customer_id}"),
        "agent",
        params={"customer_id": "c"},
        body={
            "name": "Fa. Walter Maier GmbH & Co. KG",
            "language": "en",
            "notification_opt_outs": ["low_balance"],
        },
        expect=(
            Row(
                "customer",
                "c",
                "update",
                {
                    "name": ("Fa. Walter Maier GmbH", "Fa. Walter Maier GmbH & Co. KG"),
                    "language": ("de", "en"),
                    "notification_opt_outs": ([], ["low_balance"]),
                },
            ),
        ),
    ),
    Step(
        "add a contact",
        ("POST", "/api/v1/customers/{customer_id}/contacts"),
        "agent",
        params={"customer_id": "c"},
        body={"name": "Horst Maier", "email": "horst.maier@example.com"},
        status=201,
        save={"contact": "id"},
    ),
    Step(
        "make the contact the billing contact",
        ("PATCH", "/api/v1/customers/{customer_id}"),
        "integration",
        params={"customer_id": "c"},
        body={"billing_contact_id": Ref("contact")},
        expect=(Row("customer", "c", "update", {"billing_contact_id": (None, Ref("contact"))}),),
    ),
    Step(
        "issue a key bound to the customer",
        ("POST", "/api/v1/api-keys"),
        "admin",
        body={"name": "walk add-on", "role": "customer", "customer_id": Ref("c")},
        status=201,
        becomes="customer",
        expect=(
            Row(
                "api_key",
                "customer",
                "create",
                {
                    "role": (None, "customer"),
                    "customer_id": (None, Ref("c")),
                    "created_by": (None, Ref("admin")),
                },
            ),
        ),
    ),
    Step(
        "subscribe a webhook",
        ("POST", "/api/v1/webhooks"),
        "integration",
        body={
            "url": "http://127.0.0.1:9/walk",
            "events": ["ticket.created", "ledger.low_balance"],
            "secret": Ref("webhook_secret"),
        },
        status=201,
        save={"hook": "id"},
        expect=(
            Row(
                "webhook",
                "hook",
                "create",
                {
                    "url": (None, "http://127.0.0.1:9/walk"),
                    "events": (None, ["ledger.low_balance", "ticket.created"]),
                    "active": (None, True),
                    "created_by": (None, Ref("integration")),
                    "created_at": (None, NOW),
                },
            ),
        ),
    ),
    Step(
        "unsubscribe it",
        ("DELETE", "/api/v1/webhooks/{webhook_id}"),
        "integration",
        params={"webhook_id": "hook"},
        status=204,
        expect=(Row("webhook", "hook", "update", {"active": (True, False)}),),
    ),
]

# A premium customer's ticket through comments, edits, an upload, the status machine
# and an escalation.
PREMIUM_TICKET = [
    Step(
        "register a customer",
        ("POST", "/api/v1/customers"),
        "admin",
        body={"name": "Müller & Söhne"},
        status=201,
        save={"c": "id"},
        expect=(Row("customer", "c", "create", {"name": (None, "Müller & Söhne")}),),
    ),
    Step(
        "issue a key bound to the customer",
        ("POST", "/api/v1/api-keys"),
        "admin",
        body={"name": "walk portal", "role": "customer", "customer_id": Ref("c")},
        status=201,
        becomes="customer",
        expect=(Row("api_key", "customer", "create", {"customer_id": (None, Ref("c"))}),),
    ),
    Step(
        "buy 20 units: premium",
        LEDGER,
        "integration",
        params={"customer_id": "c"},
        body={"kind": "purchase", "units": 20, "reference": "INV-7"},
        status=201,
        save={"purchase": "id"},
        expect=(
            Row(
                "ledger_entry",
                "purchase",
                "create",
                {
                    "customer_id": (None, Ref("c")),
                    "kind": (None, "purchase"),
                    "units": (None, 20),
                    "change": (None, 20),
                    "balance_after": (None, 20),
                    "unit_price": (None, PURCHASE_20.unit_price),
                    "amount": (None, PURCHASE_20.amount),
                    "reference": (None, "INV-7"),
                    "cause_type": (None, "purchase"),
                    "created_by": (None, Ref("integration")),
                    "recorded_at": (None, NOW),
                },
            ),
        ),
    ),
    Step(
        "open a ticket",
        ("POST", "/api/v1/tickets"),
        "admin",
        body=ticket_body(customer_id=Ref("c"), **COMPLETE),
        status=201,
        save={"t": "id"},
        expect=(
            Row(
                "ticket",
                "t",
                "create",
                {
                    "customer_id": (None, Ref("c")),
                    "category": (None, "bug_report"),
                    "severity": (None, "normal"),
                    "severity_rank": (None, 2),
                    "status": (None, "open"),
                    "held": (None, False),
                    "queue_group": (None, 1),
                    "env_os": (None, "Windows 10"),
                    "has_image_screenshot": (None, False),
                    "received_at": (None, NOW),
                    # Premium: four business hours.
                    "first_response_due": (None, When(minutes=240)),
                    "created_by": (None, Ref("admin")),
                },
            ),
        ),
    ),
    Step(
        "edit the severity and subject",
        ("PATCH", TICKET),
        "agent",
        params={"ticket_id": "t"},
        body={"severity": "high", "subject": "Import fails on umlauts"},
        expect=(
            Row(
                "ticket",
                "t",
                "update",
                {
                    "severity": ("normal", "high"),
                    "severity_rank": (2, 1),
                    "subject": ("Import schlägt fehl", "Import fails on umlauts"),
                },
            ),
        ),
    ),
    Step(
        "upload the screenshot: the last blocker clears, the ticket stays open",
        ATTACH,
        "admin",
        params={"ticket_id": "t"},
        files={"file": ("shot.png", PNG, "image/png")},
        data={"kind": "screenshot"},
        status=201,
        expect=(Row("ticket", "t", "update", {"has_image_screenshot": (False, True)}),),
    ),
    Step(
        "a supporter answers: the first response",
        COMMENT,
        "agent",
        params={"ticket_id": "t"},
        body={"body": "Bitte starten Sie den Import neu."},
        status=201,
        expect=(Row("ticket", "t", "update", {"first_response_at": (None, NOW)}),),
    ),
    Step(
        "an internal note changes nothing audited",
        COMMENT,
        "agent",
        params={"ticket_id": "t"},
        body={"body": "Kunde ruft oft an.", "internal": True},
        status=201,
    ),
    Step(
        "the customer comments on an open ticket: nothing audited changes",
        COMMENT,
        "customer",
        params={"ticket_id": "t"},
        body={"body": "Danke!"},
        status=201,
    ),
    Step(
        "take it",
        MOVE,
        "agent",
        params={"ticket_id": "t"},
        body={"to": "in_progress"},
        expect=(
            Row(
                "ticket",
                "t",
                "transition",
                {"status": ("open", "in_progress"), "assignee_key_id": (None, Ref("agent"))},
            ),
        ),
    ),
    Step(
        "ask the customer",
        MOVE,
        "agent",
        params={"ticket_id": "t"},
        body={"to": "awaiting_customer", "note": "Rückfrage per Telefon"},
        expect=(
            Row(
                "ticket",
                "t",
                "transition",
                {
                    "status": ("in_progress", "awaiting_customer"),
                    "paused_since": (None, NOW),
                },
            ),
        ),
    ),
    Step(
        "the customer answers: back to the queue",
        COMMENT,
        "customer",
        params={"ticket_id": "t"},
        body={"body": "Es ist Version 2.9."},
        status=201,
        wait=3,
        expect=(
            Row(
                "ticket",
                "t",
                "transition",
                {
                    "status": ("awaiting_customer", "open"),
                    "assignee_key_id": (Ref("agent"), None),
                    "paused_since": (When("ask the customer"), None),
                    # The three minutes the clock stood move the due time.
                    "first_response_due": (
                        When("open a ticket", 240),
                        When("open a ticket", 243),
                    ),
                },
            ),
        ),
    ),
    Step(
        "take it again",
        MOVE,
        "agent",
        params={"ticket_id": "t"},
        body={"to": "in_progress"},
        expect=(Row("ticket", "t", "transition", {"status": ("open", "in_progress")}),),
    ),
    Step(
        "escalate to the vendor",
        ("POST", TICKET + "/escalations"),
        "agent",
        params={"ticket_id": "t"},
        body={"vendor": "Graphisoft", "summary_en": "Import fails on umlauts."},
        status=201,
        expect=(
            Row(
                "ticket",
                "t",
                "transition",
                {"status": ("in_progress", "escalated"), "paused_since": (None, NOW)},
            ),
        ),
    ),
    Step(
        "resolve",
        MOVE,
        "agent",
        params={"ticket_id": "t"},
        body={"to": "resolved"},
        wait=2,
        expect=(
            Row(
                "ticket",
                "t",
                "transition",
                {
                    "status": ("escalated", "resolved"),
                    "paused_since": (When("escalate to the vendor"), None),
                    "first_response_due": (
                        When("open a ticket", 243),
                        When("open a ticket", 245),
                    ),
                },
            ),
        ),
    ),
    Step(
        "close",
        MOVE,
        "agent",
        params={"ticket_id": "t"},
        body={"to": "closed"},
        expect=(Row("ticket", "t", "transition", {"status": ("resolved", "closed")}),),
    ),
    Step(
        "an illegal move is refused and leaves nothing",
        MOVE,
        "agent",
        params={"ticket_id": "t"},
        body={"to": "open"},
        status=409,
    ),
]

# A standard customer's held tickets: the customer's own edit and upload clear blockers,
# and the ledger (purchase, debit to zero, reversal) moves the customer between groups.
STANDARD_TICKETS = [
    Step(
        "register a customer",
        ("POST", "/api/v1/customers"),
        "admin",
        body={"name": "Standard KG"},
        status=201,
        save={"c": "id"},
        expect=(Row("customer", "c", "create", {"name": (None, "Standard KG")}),),
    ),
    Step(
        "issue a key bound to the customer",
        ("POST", "/api/v1/api-keys"),
        "admin",
        body={"name": "walk add-on", "role": "customer", "customer_id": Ref("c")},
        status=201,
        becomes="customer",
        expect=(Row("api_key", "customer", "create", {"customer_id": (None, Ref("c"))}),),
    ),
    Step(
        "publish the add-on's latest version",
        ("PUT", "/api/v1/products/{code}"),
        "integration",
        params={"code": "product"},
        body={"name": "Walk Add-on", "latest_version": "2.10.0"},
        status=201,
    ),
    Step(
        "publish it again",
        ("PUT", "/api/v1/products/{code}"),
        "integration",
        params={"code": "product"},
        body={"name": "Walk Add-on Pro", "latest_version": "2.10.0"},
    ),
    Step(
        "the customer asks how to: held, it needs premium",
        ("POST", "/api/v1/tickets"),
        "customer",
        body=ticket_body(category="how_to"),
        status=201,
        save={"how_to": "id"},
        expect=(
            Row(
                "ticket",
                "how_to",
                "create",
                {
                    "customer_id": (None, Ref("c")),
                    "status": (None, "awaiting_customer"),
                    "held": (None, True),
                    "queue_group": (None, 2),
                    "paused_since": (None, NOW),
                    "created_by": (None, Ref("customer")),
                },
            ),
        ),
    ),
    Step(
        "a supporter files a bug report with nothing in it: held",
        ("POST", "/api/v1/tickets"),
        "agent",
        body=ticket_body(customer_id=Ref("c"), product=Ref("product"), addon_version="2.9.0"),
        status=201,
        save={"bug": "id"},
        expect=(
            Row(
                "ticket",
                "bug",
                "create",
                {
                    "status": (None, "awaiting_customer"),
                    "held": (None, True),
                    "product": (None, Ref("product")),
                    "addon_version": (None, "2.9.0"),
                    "paused_since": (None, NOW),
                    "created_by": (None, Ref("agent")),
                },
            ),
        ),
    ),
    Step(
        "the customer adds steps, environment and version: still held (screenshot)",
        ("PATCH", TICKET),
        "customer",
        params={"ticket_id": "bug"},
        body={
            "steps_to_reproduce": "1. Import",
            "environment": {"os": "Windows 11", "host_application": "ArchiCAD"},
            "addon_version": "2.10.0",
        },
        expect=(
            Row(
                "ticket",
                "bug",
                "update",
                {
                    "steps_to_reproduce": (None, "1. Import"),
                    "env_os": (None, "Windows 11"),
                    "env_host_application": (None, "ArchiCAD"),
                    "addon_version": ("2.9.0", "2.10.0"),
                },
            ),
        ),
    ),
    Step(
        "buy 10 units: premium, the how-to question opens",
        LEDGER,
        "integration",
        params={"customer_id": "c"},
        body={"kind": "purchase", "units": 10},
        status=201,
        save={"purchase": "id"},
        expect=(
            Row(
                "ledger_entry",
                "purchase",
                "create",
                {
                    "kind": (None, "purchase"),
                    "units": (None, 10),
                    "change": (None, 10),
                    "balance_after": (None, 10),
                    "unit_price": (None, PURCHASE_10.unit_price),
                    "amount": (None, PURCHASE_10.amount),
                },
            ),
            Row(
                "ticket",
                "how_to",
                "transition",
                opened(When("the customer asks how to: held, it needs premium"), (2, 1)),
            ),
            # Premium: the screenshot no longer holds the bug report.
            Row(
                "ticket",
                "bug",
                "transition",
                opened(When("a supporter files a bug report with nothing in it: held"), (2, 1)),
            ),
        ),
    ),
    Step(
        "the customer uploads the screenshot",
        ATTACH,
        "customer",
        params={"ticket_id": "bug"},
        files={"file": ("shot.png", PNG, "image/png")},
        data={"kind": "screenshot"},
        status=201,
        expect=(Row("ticket", "bug", "update", {"has_image_screenshot": (False, True)}),),
    ),
    Step(
        "a log file changes no audited field",
        ATTACH,
        "customer",
        params={"ticket_id": "bug"},
        files={"file": ("import.log", b"Fehler 17\n", "text/plain")},
        data={"kind": "log"},
        status=201,
    ),
    Step(
        "debit 4 units",
        LEDGER,
        "agent",
        params={"customer_id": "c"},
        body={"kind": "debit", "units": 4, "reference": "Telefon"},
        status=201,
        save={"debit_4": "id"},
        expect=(
            Row(
                "ledger_entry",
                "debit_4",
                "create",
                {
                    "kind": (None, "debit"),
                    "units": (None, 4),
                    "change": (None, -4),
                    "units_debited": (None, 4),
                    "units_billed_at_list_price": (None, 0),
                    "balance_after": (None, 6),
                    "reference": (None, "Telefon"),
                    "cause_type": (None, "manual"),
                    "created_by": (None, Ref("agent")),
                },
            ),
        ),
    ),
    Step(
        "debit 9 units: 6 from the balance, 3 at list price; standard again",
        LEDGER,
        "agent",
        params={"customer_id": "c"},
        body={"kind": "debit", "units": 9},
        status=201,
        save={"debit_9": "id"},
        expect=(
            Row(
                "ledger_entry",
                "debit_9",
                "create",
                {
                    "units": (None, 9),
                    "change": (None, -6),
                    "units_debited": (None, 6),
                    "units_billed_at_list_price": (None, 3),
                    "list_price_amount": (None, list_price_amount(3, PRICES)),
                    "balance_after": (None, 0),
                },
            ),
            Row(
                "ticket",
                "how_to",
                "transition",
                {
                    "status": ("open", "awaiting_customer"),
                    "held": (False, True),
                    "queue_group": (1, 2),
                    "paused_since": (None, NOW),
                },
            ),
            Row("ticket", "bug", "update", {"queue_group": (1, 2)}),
        ),
    ),
    Step(
        "reverse that debit: premium again",
        LEDGER,
        "admin",
        params={"customer_id": "c"},
        body={"kind": "reversal", "reverses": Ref("debit_9")},
        status=201,
        save={"reversal": "id"},
        expect=(
            Row(
                "ledger_entry",
                "reversal",
                "create",
                {
                    "kind": (None, "reversal"),
                    "reverses_id": (None, Ref("debit_9")),
                    "units": (None, 9),
                    "change": (None, 6),
                    "units_debited": (None, 6),
                    "units_billed_at_list_price": (None, 3),
                    "list_price_amount": (None, -list_price_amount(3, PRICES)),
                    "balance_after": (None, 6),
                    "cause_type": (None, "reversal"),
                    "cause_id": (None, Ref("debit_9")),
                    "created_by": (None, Ref("admin")),
                },
            ),
            Row(
                "ticket",
                "how_to",
                "transition",
                opened(
                    When("debit 9 units: 6 from the balance, 3 at list price; standard again"),
                    (2, 1),
                ),
            ),
            Row("ticket", "bug", "update", {"queue_group": (2, 1)}),
        ),
    ),
    Step(
        "a second reversal is refused and leaves nothing",
        LEDGER,
        "admin",
        params={"customer_id": "c"},
        body={"kind": "reversal", "reverses": Ref("debit_9")},
        status=409,
    ),
    Step(
        "a retried ticket: first",
        ("POST", "/api/v1/tickets"),
        "customer",
        body=ticket_body(category="operation", severity="low", **COMPLETE),
        headers={"Idempotency-Key": "walk-retried-ticket"},
        status=201,
        save={"retried": "id"},
        expect=(Row("ticket", "retried", "create", {"severity": (None, "low")}),),
    ),
    Step(
        "a retried ticket: the replay writes nothing",
        ("POST", "/api/v1/tickets"),
        "customer",
        body=ticket_body(category="operation", severity="low", **COMPLETE),
        headers={"Idempotency-Key": "walk-retried-ticket"},
        status=201,
        claims="retried",
    ),
]

# A contract customer: the contract opens its held ticket, which is claimed from the
# queue; a dongle comes back; the contract ends and its queued ticket moves down.
CONTRACT = [
    Step(
        "register a customer",
        ("POST", "/api/v1/customers"),
        "admin",
        body={"name": "Vertrag AG", "language": "en"},
        status=201,
        save={"c": "id"},
        expect=(Row("customer", "c", "create", {"language": (None, "en")}),),
    ),
    Step(
        "a critical how-to question: held while standard",
        ("POST", "/api/v1/tickets"),
        "admin",
        body=ticket_body(customer_id=Ref("c"), category="how_to", severity="critical"),
        status=201,
        save={"how_to": "id"},
        expect=(
            Row(
                "ticket",
                "how_to",
                "create",
                {
                    "status": (None, "awaiting_customer"),
                    "held": (None, True),
                    "severity_rank": (None, 0),
                },
            ),
        ),
    ),
    Step(
        "sign a contract: the question opens",
        ("POST", "/api/v1/contracts"),
        "integration",
        body={"customer_id": Ref("c"), "kind": "maintenance", "starts_on": "1998-01-01"},
        status=201,
        save={"contract": "id"},
        expect=(
            Row(
                "contract",
                "contract",
                "create",
                {
                    "customer_id": (None, Ref("c")),
                    "kind": (None, "maintenance"),
                    "starts_on": (None, date(1998, 1, 1)),
                    "created_at": (None, NOW),
                },
            ),
            Row(
                "ticket",
                "how_to",
                "transition",
                opened(When("a critical how-to question: held while standard"), (2, 0)),
            ),
        ),
    ),
    Step(
        "claim the head of the queue",
        ("POST", "/api/v1/queue/claim"),
        "agent",
        claims="how_to",
        expect=(
            Row(
                "ticket",
                "how_to",
                "transition",
                {"status": ("open", "in_progress"), "assignee_key_id": (None, Ref("agent"))},
            ),
        ),
    ),
    Step(
        "a dongle exchange",
        ("POST", "/api/v1/tickets"),
        "admin",
        body=ticket_body(customer_id=Ref("c"), category="hardware_exchange"),
        status=201,
        save={"dongle": "id"},
        expect=(
            Row(
                "ticket",
                "dongle",
                "create",
                {
                    "status": (None, "open"),
                    "queue_group": (None, 0),
                    # Contract: four business hours.
                    "first_response_due": (None, When(minutes=240)),
                },
            ),
        ),
    ),
    Step(
        "the dongle comes back",
        ("POST", TICKET + "/dongle-return"),
        "agent",
        params={"ticket_id": "dongle"},
        body={"received_at": "1998-03-02T08:15:00+01:00"},
        expect=(
            Row(
                "ticket",
                "dongle",
                "update",
                {"dongle_received_at": (None, datetime(1998, 3, 2, 7, 15, tzinfo=UTC))},
            ),
        ),
    ),
    Step(
        "the contract ends yesterday: the queued ticket moves to standard",
        ("PATCH", "/api/v1/contracts/{contract_id}"),
        "integration",
        params={"contract_id": "contract"},
        body={"ends_on": "1998-03-01"},
        expect=(
            Row("contract", "contract", "update", {"ends_on": (None, date(1998, 3, 1))}),
            Row("ticket", "dongle", "update", {"queue_group": (0, 2)}),
        ),
    ),
    Step(
        "resolve the question",
        MOVE,
        "agent",
        params={"ticket_id": "how_to"},
        body={"to": "resolved"},
        expect=(
            Row(
                "ticket",
                "how_to",
                "transition",
                {"status": ("in_progress", "resolved"), "first_response_at": (None, NOW)},
            ),
        ),
    ),
    Step(
        "reopening is refused now that blockers hold it",
        MOVE,
        "agent",
        params={"ticket_id": "how_to"},
        body={"to": "open"},
        status=409,
    ),
    Step(
        "close the question",
        MOVE,
        "agent",
        params={"ticket_id": "how_to"},
        body={"to": "closed"},
        expect=(Row("ticket", "how_to", "transition", {"status": ("resolved", "closed")}),),
    ),
    Step(
        "close the dongle exchange",
        MOVE,
        "agent",
        params={"ticket_id": "dongle"},
        body={"to": "closed"},
        expect=(Row("ticket", "dongle", "transition", {"status": ("open", "closed")}),),
    ),
]

# Remote sessions, session logs, an import and a statement: only charges are audited.
SESSIONS = [
    Step(
        "register a customer",
        ("POST", "/api/v1/customers"),
        "admin",
        body={"name": "Fernwartung GmbH"},
        status=201,
        save={"c": "id"},
        expect=(Row("customer", "c", "create", {"name": (None, "Fernwartung GmbH")}),),
    ),
    Step(
        "issue a key bound to the customer",
        ("POST", "/api/v1/api-keys"),
        "admin",
        body={"name": "walk client", "role": "customer", "customer_id": Ref("c")},
        status=201,
        becomes="customer",
        expect=(Row("api_key", "customer", "create", {"customer_id": (None, Ref("c"))}),),
    ),
    Step(
        "buy 20 units",
        LEDGER,
        "admin",
        params={"customer_id": "c"},
        body={"kind": "purchase", "units": 20},
        status=201,
        save={"purchase": "id"},
        expect=(Row("ledger_entry", "purchase", "create", {"balance_after": (None, 20)}),),
    ),
    Step(
        "open a session",
        ("POST", "/api/v1/remote-sessions"),
        "agent",
        body={"customer_id": Ref("c"), "computer": "PC Herr Horst Maier"},
        status=201,
        save={"session_1": "id", "code_1": "code"},
    ),
    Step(
        "the customer joins",
        ("POST", "/api/v1/remote-sessions/join"),
        "customer",
        body={"code": Ref("code_1")},
    ),
    Step(
        "the supporter ends it after 16 minutes: 2 units",
        ("POST", "/api/v1/remote-sessions/{session_id}/end"),
        "agent",
        params={"session_id": "session_1"},
        body={"notes": "Lizenzserver neu gestartet"},
        wait=16,
        save={"log_1": "id", "charge_1": "billing.ledger_entry_id"},
        expect=(
            Row(
                "ledger_entry",
                "charge_1",
                "create",
                {
                    "customer_id": (None, Ref("c")),
                    "kind": (None, "debit"),
                    "units": (None, 2),
                    "change": (None, -2),
                    "units_debited": (None, 2),
                    "balance_after": (None, 18),
                    "cause_type": (None, "session"),
                    "cause_id": (None, Ref("log_1")),
                    "created_by": (None, Ref("agent")),
                },
            ),
        ),
    ),
    Step(
        "ending it again is refused and leaves nothing",
        ("POST", "/api/v1/remote-sessions/{session_id}/end"),
        "agent",
        params={"session_id": "session_1"},
        status=409,
    ),
    Step(
        "open another session",
        ("POST", "/api/v1/remote-sessions"),
        "agent",
        body={"customer_id": Ref("c")},
        status=201,
        save={"session_2": "id", "code_2": "code"},
    ),
    Step(
        "the customer joins it",
        ("POST", "/api/v1/remote-sessions/join"),
        "customer",
        body={"code": Ref("code_2")},
    ),
    Step(
        "the customer stops it after 5 minutes: 1 unit, by the customer's key",
        ("POST", "/api/v1/remote-sessions/{session_id}/emergency-stop"),
        "customer",
        params={"session_id": "session_2"},
        wait=5,
        save={"log_2": "id", "charge_2": "billing.ledger_entry_id"},
        expect=(
            Row(
                "ledger_entry",
                "charge_2",
                "create",
                {
                    "units": (None, 1),
                    "change": (None, -1),
                    "balance_after": (None, 17),
                    "cause_id": (None, Ref("log_2")),
                    "created_by": (None, Ref("customer")),
                },
            ),
        ),
    ),
    Step(
        "a session ended as goodwill charges nothing",
        ("POST", "/api/v1/remote-sessions"),
        "agent",
        body={"customer_id": Ref("c")},
        status=201,
        save={"session_3": "id", "code_3": "code"},
    ),
    Step(
        "the customer joins the goodwill session",
        ("POST", "/api/v1/remote-sessions/join"),
        "customer",
        body={"code": Ref("code_3")},
    ),
    Step(
        "end the goodwill session",
        ("POST", "/api/v1/remote-sessions/{session_id}/end"),
        "agent",
        params={"session_id": "session_3"},
        body={"billable": False, "non_billable_reason": "goodwill"},
        wait=10,
    ),
    Step(
        "log a phone call of 30 minutes: 2 units",
        ("POST", "/api/v1/session-logs"),
        "agent",
        body={
            "customer_id": Ref("c"),
            "partner": "Fernwartung GmbH – PC Frau Maier",
            "started_at": "1998-03-02T08:00:00+00:00",
            "duration_seconds": 1800,
            "supporter": "Klaus Hörner",
            "notes": "Drucker eingerichtet",
            "billable": True,
        },
        status=201,
        save={"log_3": "id", "charge_3": "billing.ledger_entry_id"},
        expect=(
            Row(
                "ledger_entry",
                "charge_3",
                "create",
                {
                    "units": (None, 2),
                    "change": (None, -2),
                    "balance_after": (None, 15),
                    "cause_type": (None, "session"),
                    "cause_id": (None, Ref("log_3")),
                    "created_by": (None, Ref("agent")),
                },
            ),
        ),
    ),
    Step(
        "log goodwill work: nothing charged",
        ("POST", "/api/v1/session-logs"),
        "agent",
        body={
            "customer_id": Ref("c"),
            "partner": "Fernwartung GmbH",
            "started_at": "1998-03-02T08:40:00+00:00",
            "duration_seconds": 600,
            "supporter": "Klaus Hörner",
            "notes": "Kulanz",
            "billable": False,
            "non_billable_reason": "goodwill",
        },
        status=201,
    ),
    Step(
        "import a connection report of two sessions: 2 units each",
        ("POST", "/api/v1/session-logs/import"),
        "agent",
        files={"file": ("report.csv", REPORT, "text/csv")},
        data={"customer_id": Ref("c")},
        status=201,
        expect=(
            Row(
                "ledger_entry",
                "new:ledger_entry#0",
                "create",
                {"units": (None, 2), "balance_after": (None, 13), "cause_type": (None, "session")},
            ),
            Row(
                "ledger_entry",
                "new:ledger_entry#1",
                "create",
                {"units": (None, 2), "balance_after": (None, 11), "cause_type": (None, "session")},
            ),
        ),
    ),
    Step(
        "import it again: nothing new",
        ("POST", "/api/v1/session-logs/import"),
        "agent",
        files={"file": ("report.csv", REPORT, "text/csv")},
        data={"customer_id": Ref("c")},
        status=201,
    ),
    Step(
        "issue the statement",
        ("POST", "/api/v1/customers/{customer_id}/statements"),
        "admin",
        params={"customer_id": "c"},
        body={"from": "1998-03-01", "to": "1998-03-02"},
        status=201,
    ),
    Step(
        "issuing it again is refused and leaves nothing",
        ("POST", "/api/v1/customers/{customer_id}/statements"),
        "admin",
        params={"customer_id": "c"},
        body={"from": "1998-03-01", "to": "1998-03-02"},
        status=409,
    ),
]

# A standard customer's own upload or edit opens a ticket held for them: one change of
# the ticket, one audit row with every field it changed.
TWO_BUSINESS_DAYS = 2 * 24 * 60  # in minutes, from within business hours
OPENED_BY_THE_CUSTOMER = [
    Step(
        "register a customer",
        ("POST", "/api/v1/customers"),
        "admin",
        body={"name": "Kunde ohne Vertrag"},
        status=201,
        save={"c": "id"},
        expect=(Row("customer", "c", "create", {"name": (None, "Kunde ohne Vertrag")}),),
    ),
    Step(
        "issue a key bound to the customer",
        ("POST", "/api/v1/api-keys"),
        "admin",
        body={"name": "walk add-on", "role": "customer", "customer_id": Ref("c")},
        status=201,
        becomes="customer",
        expect=(Row("api_key", "customer", "create", {"customer_id": (None, Ref("c"))}),),
    ),
    Step(
        "a bug report without its screenshot: held",
        ("POST", "/api/v1/tickets"),
        "customer",
        body=ticket_body(**COMPLETE),
        status=201,
        save={"shot": "id"},
        expect=(
            Row(
                "ticket",
                "shot",
                "create",
                {
                    "status": (None, "awaiting_customer"),
                    "held": (None, True),
                    "paused_since": (None, NOW),
                    "first_response_due": (None, When(minutes=TWO_BUSINESS_DAYS)),
                },
            ),
        ),
    ),
    Step(
        "the customer uploads the screenshot: the last blocker clears, the ticket opens",
        ATTACH,
        "customer",
        params={"ticket_id": "shot"},
        files={"file": ("shot.png", PNG, "image/png")},
        data={"kind": "screenshot"},
        status=201,
        expect=(
            Row(
                "ticket",
                "shot",
                "transition",
                {
                    "has_image_screenshot": (False, True),
                    "held": (True, False),
                    "status": ("awaiting_customer", "open"),
                    "paused_since": (When("a bug report without its screenshot: held"), None),
                    # The minute the clock stood moves the due time.
                    "first_response_due": (
                        When("a bug report without its screenshot: held", TWO_BUSINESS_DAYS),
                        When("a bug report without its screenshot: held", TWO_BUSINESS_DAYS + 1),
                    ),
                },
            ),
        ),
    ),
    Step(
        "a bug report without steps or screenshot: held",
        ("POST", "/api/v1/tickets"),
        "customer",
        body=ticket_body(environment=COMPLETE["environment"]),
        status=201,
        save={"steps": "id"},
        expect=(Row("ticket", "steps", "create", {"status": (None, "awaiting_customer")}),),
    ),
    Step(
        "its screenshot: still held by the missing steps",
        ATTACH,
        "customer",
        params={"ticket_id": "steps"},
        files={"file": ("shot.png", PNG, "image/png")},
        data={"kind": "screenshot"},
        status=201,
        expect=(
            Row(
                "ticket",
                "steps",
                "update",
                {
                    "has_image_screenshot": (False, True),
                    "first_response_due": (
                        When("a bug report without steps or screenshot: held", TWO_BUSINESS_DAYS),
                        When(
                            "a bug report without steps or screenshot: held", TWO_BUSINESS_DAYS + 1
                        ),
                    ),
                },
            ),
        ),
    ),
    Step(
        "the customer adds the steps: the last blocker clears, the ticket opens",
        ("PATCH", TICKET),
        "customer",
        params={"ticket_id": "steps"},
        body={"steps_to_reproduce": "1. Import"},
        expect=(
            Row(
                "ticket",
                "steps",
                "transition",
                {
                    "steps_to_reproduce": (None, "1. Import"),
                    "held": (True, False),
                    "status": ("awaiting_customer", "open"),
                    "paused_since": (
                        When("a bug report without steps or screenshot: held"),
                        None,
                    ),
                    "first_response_due": (
                        When(
                            "a bug report without steps or screenshot: held", TWO_BUSINESS_DAYS + 1
                        ),
                        When(
                            "a bug report without steps or screenshot: held", TWO_BUSINESS_DAYS + 2
                        ),
                    ),
                },
            ),
        ),
    ),
    Step(
        "a supporter asks the customer",
        MOVE,
        "agent",
        params={"ticket_id": "steps"},
        body={"to": "awaiting_customer"},
        expect=(
            Row(
                "ticket",
                "steps",
                "transition",
                {
                    "status": ("open", "awaiting_customer"),
                    "first_response_at": (None, NOW),
                    "paused_since": (None, NOW),
                },
            ),
        ),
    ),
    Step(
        "the customer answers by editing the description: back to the queue",
        ("PATCH", TICKET),
        "customer",
        params={"ticket_id": "steps"},
        body={"description": "Es passiert nur mit Umlauten."},
        expect=(
            Row(
                "ticket",
                "steps",
                "transition",
                {
                    "description": (
                        "Der Import bricht mit „Fehler 17“ ab.",
                        "Es passiert nur mit Umlauten.",
                    ),
                    "status": ("awaiting_customer", "open"),
                    "paused_since": (When("a supporter asks the customer"), None),
                },
            ),
        ),
    ),
    Step(
        "a supporter asks the customer again",
        MOVE,
        "agent",
        params={"ticket_id": "steps"},
        body={"to": "awaiting_customer"},
        expect=(
            Row(
                "ticket",
                "steps",
                "transition",
                {"status": ("open", "awaiting_customer"), "paused_since": (None, NOW)},
            ),
        ),
    ),
    Step(
        "the customer answers with a log file: back to the queue",
        ATTACH,
        "customer",
        params={"ticket_id": "steps"},
        files={"file": ("import.log", b"Fehler 17\n", "text/plain")},
        data={"kind": "log"},
        status=201,
        expect=(
            Row(
                "ticket",
                "steps",
                "transition",
                {
                    "status": ("awaiting_customer", "open"),
                    "paused_since": (When("a supporter asks the customer again"), None),
                },
            ),
        ),
    ),
]

SCENARIOS: dict[str, list[Step]] = {
    "keys_customers_webhooks": KEYS_CUSTOMERS_WEBHOOKS,
    "premium_ticket": PREMIUM_TICKET,
    "standard_tickets": STANDARD_TICKETS,
    "contract": CONTRACT,
    "sessions": SESSIONS,
    "opened_by_the_customer": OPENED_BY_THE_CUSTOMER,
}


# Comparing ----------------------------------------------------------------------------


def same(actual: Any, expected: Any) -> bool:
    """Whether an audit row's JSON value says ``expected`` (a stored or named value)."""
    if expected is None:
        return actual is None
    if isinstance(expected, datetime):
        return isinstance(actual, str) and _instant(actual) == expected
    if isinstance(expected, date):
        return actual == expected.isoformat()
    if isinstance(expected, Decimal):
        return isinstance(actual, str) and Decimal(actual) == expected
    if isinstance(expected, bool) or isinstance(actual, bool):
        return actual is expected
    return bool(actual == expected)


def _instant(text: str) -> datetime | None:
    """An RFC 3339 instant with its offset; None for anything else (a naive one too)."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def expected_action(object_type: str, created: bool, changes: dict[str, Any]) -> str:
    if created:
        return "create"
    if "revoked_at" in changes:
        return "revoke"
    if object_type == "ticket" and "status" in changes:
        return "transition"
    return "update"


@dataclass
class Actor:
    headers: dict[str, str]
    key_id: str
    role: str


class Walk:
    """Runs a scenario's steps and checks what each leaves in the audit trail."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        connection: AsyncConnection,
        clock: list[datetime],
        actors: dict[str, Actor],
    ) -> None:
        self.client = client
        self.connection = connection
        self.clock = clock
        self.actors = actors
        self.ctx: dict[str, Any] = {name: actor.key_id for name, actor in actors.items()}
        self.when: dict[str, datetime] = {}
        self.secrets: set[str] = set()
        self.problems: list[str] = []
        self.foreign: dict[str, set[str]] = {}
        self.seen_audit: set[str] = set()
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.touched: set[tuple[str, str]] = set()

    # The database, before and after ---------------------------------------------------

    async def start(self) -> None:
        for object_type, table in AUDITED_TABLES.items():
            ids = await self.connection.scalars(select(table.c.id))
            self.foreign[object_type] = set(ids.all())
        self.seen_audit = set((await self.connection.scalars(select(AuditEntry.id))).all())
        self.objects = await self._objects()

    async def _objects(self) -> dict[tuple[str, str], dict[str, Any]]:
        """Every audited object this walk created, as stored now."""
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for object_type, table in AUDITED_TABLES.items():
            for row in (await self.connection.execute(select(table))).mappings():
                if row["id"] not in self.foreign[object_type]:
                    found[(object_type, row["id"])] = dict(row)
        return found

    async def _new_audit_rows(self) -> list[Any]:
        rows = (
            await self.connection.execute(select(AuditEntry.__table__).order_by(AuditEntry.id))
        ).all()
        new = [row for row in rows if row.id not in self.seen_audit]
        self.seen_audit.update(row.id for row in new)
        return new

    # One step --------------------------------------------------------------------------

    def resolve(self, value: Any) -> Any:
        if isinstance(value, Ref):
            return self.ctx[value.name]
        if isinstance(value, When):
            moment = self.when[value.label] if value.label is not None else self.clock[0]
            return moment + timedelta(minutes=value.minutes)
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.resolve(v) for v in value)
        return value

    async def run(self, step: Step) -> None:
        self.clock[0] += timedelta(minutes=step.wait)
        self.when[step.label] = self.clock[0]
        actor = self.actors[step.actor]
        where = f"{step.label!r} ({step.route[0]} {step.route[1]} as {step.actor})"
        url = step.route[1].format(**{k: self.ctx[v] for k, v in step.params.items()})
        body = self.resolve(step.body)
        if isinstance(body, dict) and "secret" in body:
            self.secrets.add(body["secret"])
        options: dict[str, Any] = {"headers": {**actor.headers, **step.headers}}
        if step.files is not None:
            options["files"] = step.files
            options["data"] = self.resolve(step.data)
        elif step.body is not None:
            options["json"] = body
        before = self.objects
        response = await self.client.request(step.route[0], url, **options)
        assert response.status_code == step.status, f"{where}: {response.text}"
        answer = response.json() if response.content else {}
        self._remember(step, answer)
        after = await self._objects()
        self.objects = after
        rows = await self._new_audit_rows()
        for values in after.values():
            self.secrets.update(str(values[c]) for c in SECRET_FIELDS & set(values) if values[c])
        new_ids = sorted(key for key in after if key not in before)
        for object_type in AUDITED_TABLES:
            for n, (_, object_id) in enumerate(k for k in new_ids if k[0] == object_type):
                self.ctx[f"new:{object_type}#{n}"] = object_id
        self.problems += [f"{where}: {p}" for p in self._judge(step, actor, rows, before, after)]

    def _remember(self, step: Step, answer: dict[str, Any]) -> None:
        for name, path in step.save.items():
            value: Any = answer
            for part in path.split("."):
                value = value[part]
            self.ctx[name] = value
            if path == "code":
                self.secrets.update({value, value.replace("-", "")})
        if step.becomes is not None:
            self.actors[step.becomes] = Actor(
                {"Authorization": f"Bearer {answer['key']}"}, answer["id"], answer["role"]
            )
            self.ctx[step.becomes] = answer["id"]
            self.secrets.add(answer["key"])
        if step.claims is not None:
            assert answer["id"] == self.ctx[step.claims], (step.label, answer)

    # What the step left ----------------------------------------------------------------

    def _judge(
        self,
        step: Step,
        actor: Actor,
        rows: list[Any],
        before: dict[tuple[str, str], dict[str, Any]],
        after: dict[tuple[str, str], dict[str, Any]],
    ) -> list[str]:
        problems: list[str] = []
        found = Counter((r.object_type, r.object_id, r.action) for r in rows)
        wanted = Counter((row.object_type, self.ctx[row.obj], row.action) for row in step.expect)
        if found != wanted:
            problems.append(
                f"rows left {sorted(found.elements())}, expected {sorted(wanted.elements())}"
            )
        by_object: dict[tuple[str, str], list[Any]] = {}
        for r in rows:
            by_object.setdefault((r.object_type, r.object_id), []).append(r)
            self.touched.add((r.object_type, r.object_id))
            problems += self._judge_row(actor, r)
        # Against the database: every change has its row, with its values.
        changed = self._changes_in_database(before, after)
        for key, (created, changes) in changed.items():
            mine = by_object.get(key, [])
            if not changes:
                if mine:
                    problems.append(f"{key}: rows {[r.changes for r in mine]} for no change")
                continue
            if len(mine) != 1:
                problems.append(
                    f"{key}: changed {sorted(changes)} in the database, "
                    f"{len(mine)} audit rows for it"
                )
                continue
            problems += self._judge_against_database(key, created, changes, mine[0])
        for key in by_object:
            if key not in changed:
                problems.append(f"{key}: audit rows, but the object did not change")
        problems += self._judge_balances(before, after)
        # Against the step: the values that matter.
        for row in step.expect:
            object_id = self.ctx[row.obj]
            matching = [
                r
                for r in rows
                if (r.object_type, r.object_id, r.action)
                == (row.object_type, object_id, row.action)
            ]
            if len(matching) != 1:
                continue  # reported above
            changes = matching[0].changes
            for name, (was, now) in row.changes.items():
                got = changes.get(name)
                if got is None:
                    problems.append(
                        f"{row.object_type} {row.action}: {name!r} missing from {changes}"
                    )
                    continue
                expected = (self.resolve(was), self.resolve(now))
                if not (
                    same(got.get("before"), expected[0]) and same(got.get("after"), expected[1])
                ):
                    problems.append(
                        f"{row.object_type} {row.action}: {name!r} is {got}, expected "
                        f"before={expected[0]!r} after={expected[1]!r}"
                    )
        return problems

    def _judge_row(self, actor: Actor, r: Any) -> list[str]:
        problems = []
        what = f"{r.object_type} {r.object_id} {r.action}"
        if (r.actor_key_id, r.actor_role) != (actor.key_id, actor.role):
            problems.append(
                f"{what}: actor {(r.actor_key_id, r.actor_role)}, expected "
                f"{(actor.key_id, actor.role)}"
            )
        if r.at != self.clock[0]:
            problems.append(f"{what}: at {r.at}, expected the step's instant {self.clock[0]}")
        if not isinstance(r.changes, dict):
            return [*problems, f"{what}: changes is {r.changes!r}"]
        leaked = SECRET_FIELDS & set(r.changes)
        if leaked:
            problems.append(f"{what}: secret fields {sorted(leaked)} in changes")
        text = json.dumps(r.changes, ensure_ascii=False)
        problems += [f"{what}: a secret appears in changes" for s in self.secrets if s in text]
        for name, change in r.changes.items():
            if not isinstance(change, dict) or set(change) != {"before", "after"}:
                problems.append(f"{what}: {name!r} is {change!r}, not {{before, after}}")
        return problems

    @staticmethod
    def _changes_in_database(
        before: dict[tuple[str, str], dict[str, Any]],
        after: dict[tuple[str, str], dict[str, Any]],
    ) -> dict[tuple[str, str], tuple[bool, dict[str, tuple[Any, Any]]]]:
        """What the step changed in audited objects, as an audit row should say it."""
        changed: dict[tuple[str, str], tuple[bool, dict[str, tuple[Any, Any]]]] = {}
        for key, now in after.items():
            object_type = key[0]
            was = before.get(key)
            skip = SECRET_FIELDS | BOOKKEEPING
            if was is None:
                changed[key] = (
                    True,
                    {c: (None, v) for c, v in now.items() if v is not None and c not in skip},
                )
            elif was != now:
                changed[key] = (
                    False,
                    {
                        c: (was[c], v)
                        for c, v in now.items()
                        if c not in skip
                        and (object_type, c) not in THROUGH_THE_LEDGER
                        and was[c] != v
                    },
                )
        for key, was in before.items():
            if key not in after:
                changed[key] = (False, {c: (v, None) for c, v in was.items()})
        return changed

    @staticmethod
    def _judge_against_database(
        key: tuple[str, str], created: bool, changes: dict[str, tuple[Any, Any]], row: Any
    ) -> list[str]:
        problems = []
        action = expected_action(key[0], created, changes)
        if row.action != action:
            problems.append(f"{key}: action {row.action!r}, the database says {action!r}")
        audited = row.changes if isinstance(row.changes, dict) else {}
        missing = sorted(set(changes) - set(audited))
        extra = sorted(set(audited) - set(changes))
        if missing:
            problems.append(
                f"{key}: changed in the database but not in the audit row: "
                + ", ".join(f"{c} {changes[c][0]!r} -> {changes[c][1]!r}" for c in missing)
            )
        if extra:
            problems.append(
                f"{key}: in the audit row but unchanged in the database: "
                + ", ".join(f"{c} {audited[c]}" for c in extra)
            )
        for name in sorted(set(changes) & set(audited)):
            was, now = changes[name]
            got = audited[name]
            if not (
                isinstance(got, dict)
                and same(got.get("before"), was)
                and same(got.get("after"), now)
            ):
                problems.append(
                    f"{key}: {name!r} audited as {got}, the database says "
                    f"before={was!r} after={now!r}"
                )
        return problems

    @staticmethod
    def _judge_balances(
        before: dict[tuple[str, str], dict[str, Any]],
        after: dict[tuple[str, str], dict[str, Any]],
    ) -> list[str]:
        """A balance changes only with a new ledger entry that says the new balance."""
        problems = []
        for key, now in after.items():
            was = before.get(key)
            if key[0] != "customer" or was is None or was["unit_balance"] == now["unit_balance"]:
                continue
            entries = sorted(
                (
                    values
                    for k, values in after.items()
                    if k[0] == "ledger_entry" and k not in before
                ),
                key=lambda values: values["id"],
            )
            entries = [e for e in entries if e["customer_id"] == key[1]]
            if not entries or entries[-1]["balance_after"] != now["unit_balance"]:
                problems.append(
                    f"{key}: unit_balance {was['unit_balance']} -> {now['unit_balance']} "
                    "without a new ledger entry saying it"
                )
        return problems

    # The trail as the API answers it ---------------------------------------------------

    async def check_the_api(self, headers: dict[str, str]) -> None:
        stored = (
            await self.connection.execute(select(AuditEntry.__table__).order_by(AuditEntry.id))
        ).all()
        for object_type, object_id in sorted(self.touched):
            response = await self.client.get(
                "/api/v1/audit",
                params={"object_type": object_type, "object_id": object_id, "limit": 100},
                headers=headers,
            )
            assert response.status_code == 200, response.text
            items = response.json()["items"]
            rows = [r for r in stored if (r.object_type, r.object_id) == (object_type, object_id)]
            answered = [
                (i["id"], i["actor_key_id"], i["actor_role"], i["action"], i["changes"])
                for i in items
            ]
            expected = [(r.id, r.actor_key_id, r.actor_role, r.action, r.changes) for r in rows]
            if answered != expected:
                self.problems.append(
                    f"GET /api/v1/audit for {object_type} {object_id}: {answered} != {expected}"
                )


# The tests ------------------------------------------------------------------------------


def mutating_routes() -> set[tuple[str, str]]:
    app = create_app(Settings(database_url="sqlite+aiosqlite://"))
    return {
        (method, route.path_format)
        for route in iter_route_contexts(app.routes)
        for method in route.methods or ()
        if method in MUTATING and route.path_format is not None
    }


def test_every_mutating_route_is_in_the_table() -> None:
    routes = mutating_routes()
    assert len(routes) >= 20, f"the app's routes were not found: {routes}"
    assert not routes - set(ROUTES), f"mutating routes missing from ROUTES: {routes - set(ROUTES)}"
    assert not set(ROUTES) - routes, f"ROUTES names routes the app lacks: {set(ROUTES) - routes}"


def test_the_walks_exercise_the_table() -> None:
    steps = [step for walk in SCENARIOS.values() for step in walk]
    assert {step.route for step in steps} <= set(ROUTES)
    for route, entry in ROUTES.items():
        on_route = [step for step in steps if step.route == route]
        assert any(200 <= step.status < 300 for step in on_route), f"{route} is never walked"
        if isinstance(entry, NoAudit):
            assert all(not step.expect for step in on_route), route
        else:
            kinds = {(row.object_type, row.action) for step in on_route for row in step.expect}
            assert kinds == entry.leaves, (route, kinds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[datetime]:
    now = [T0]
    for module in CLOCKS:
        monkeypatch.setattr(f"{module}.utcnow", lambda: now[0])
    return now


@pytest.mark.parametrize("scenario", list(SCENARIOS))
async def test_every_write_leaves_its_audit_rows(
    scenario: str,
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    headers_for,
    settings: Settings,
    clock: list[datetime],
) -> None:
    settings.webhooks_allow_private = True
    actors: dict[str, Actor] = {}
    for role in ("admin", "agent", "integration"):
        headers = dict(await headers_for(role))
        secret = headers["Authorization"].removeprefix("Bearer ")
        key_id = await connection.scalar(
            select(ApiKey.id).where(ApiKey.key_hash == hash_key(secret))
        )
        actors[role] = Actor(headers, str(key_id), role)
    walk = Walk(client, connection, clock, actors)
    unique = actors["admin"].key_id.removeprefix("key_").lower()
    walk.ctx.update(
        external_ref=f"walk-{unique}",
        product=f"WALK-{unique}",
        webhook_secret=f"whsec-walk-{unique}",
    )
    await walk.start()
    for step in SCENARIOS[scenario]:
        await walk.run(step)
    await walk.check_the_api(actors["admin"].headers)
    assert not walk.problems, "\n".join(walk.problems)
