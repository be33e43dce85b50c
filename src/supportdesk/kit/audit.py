"""The audit trail: every change to audited objects, with the acting key, recorded in
the same flush (and so the same transaction) as the change itself.

One ORM hook sees what each flush inserts, updates and deletes, so no use case can
forget to audit. The acting key comes from a context variable set when the request is
authenticated; background work is recorded as ``system``. Secrets never appear.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session, UOWTransaction

from supportdesk.kit.clock import utcnow
from supportdesk.kit.ids import new_id

current_actor: ContextVar[tuple[str, str] | None] = ContextVar("current_actor", default=None)

# Fields that change on every write or hold secrets: never part of an audit entry.
UNAUDITED = frozenset(
    {"key_hash", "secret", "code_hash", "token", "updated_at", "version", "last_balance_change"}
)
_installed = False


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list | dict | str | int | float | bool) or value is None:
        return value
    return str(value)


def _audited_types() -> dict[type, str]:
    from supportdesk.models import (
        ApiKey,
        Contract,
        Customer,
        LedgerEntry,
        Ticket,
        WebhookSubscription,
    )

    return {
        Ticket: "ticket",
        Contract: "contract",
        LedgerEntry: "ledger_entry",
        ApiKey: "api_key",
        WebhookSubscription: "webhook",
        Customer: "customer",
    }


def _changes(obj: Any, action: str) -> dict[str, dict[str, Any]]:
    state = inspect(obj)
    changes: dict[str, dict[str, Any]] = {}
    for attr in state.mapper.column_attrs:
        name = attr.key
        if name in UNAUDITED:
            continue
        history = state.attrs[name].history
        if action == "create":
            value = getattr(obj, name)
            if value is not None:
                changes[name] = {"before": None, "after": _plain(value)}
        elif action == "delete":
            changes[name] = {"before": _plain(getattr(obj, name)), "after": None}
        elif history.has_changes():
            before = history.deleted[0] if history.deleted else None
            after = history.added[0] if history.added else None
            if before != after:
                changes[name] = {"before": _plain(before), "after": _plain(after)}
    return changes


def update_action(object_type: str, changes: Mapping[str, Any]) -> str:
    """What an update of an audited object is called in the trail."""
    if "revoked_at" in changes:
        return "revoke"
    if "status" in changes and object_type == "ticket":
        return "transition"
    return "update"


def _action(obj: Any, kind: str, changes: dict[str, dict[str, Any]]) -> str:
    if kind != "update":
        return kind
    return update_action(_audited_types().get(type(obj), ""), changes)


def _record(session: Session, _context: UOWTransaction, _instances: object) -> None:
    from supportdesk.models import AuditEntry

    types = _audited_types()
    actor = current_actor.get()
    now = utcnow()
    found: list[tuple[Any, str]] = [(o, "create") for o in session.new]
    found += [(o, "update") for o in session.dirty if session.is_modified(o)]
    found += [(o, "delete") for o in session.deleted]
    for obj, kind in found:
        object_type = types.get(type(obj))
        if object_type is None:
            continue
        changes = _changes(obj, kind)
        if kind == "update" and not changes:
            continue
        identity = inspect(obj).mapper.primary_key_from_instance(obj)
        session.add(
            AuditEntry(
                id=new_id("aud"),
                at=now,
                actor_key_id=actor[0] if actor else None,
                actor_role=actor[1] if actor else "system",
                action=_action(obj, kind, changes),
                object_type=object_type,
                object_id=str(identity[0]),
                changes=changes,
            )
        )


def install_audit() -> None:
    """Hook the trail into every ORM session (once per process)."""
    global _installed
    if not _installed:
        event.listen(Session, "before_flush", _record)
        _installed = True


def creation_changes(columns: Iterable[str], values: Mapping[str, Any]) -> dict[str, Any]:
    """What the flush hook records for a new row, for a row written by a Core ``INSERT``
    (which no ORM hook sees): every audited column that holds a value, in column order."""
    return {
        name: {"before": None, "after": _plain(values[name])}
        for name in columns
        if name not in UNAUDITED and values.get(name) is not None
    }


def update_changes(
    columns: Iterable[str], before: Mapping[str, Any], after: Mapping[str, Any]
) -> dict[str, Any]:
    """What the flush hook records for a row changed by a Core ``UPDATE``: every audited
    column given in ``after`` whose value differs from ``before``, in column order."""
    return {
        name: {"before": _plain(before[name]), "after": _plain(after[name])}
        for name in columns
        if name in after and name not in UNAUDITED and before[name] != after[name]
    }


def audit_row(
    action: str, object_type: str, object_id: str, changes: dict[str, Any]
) -> dict[str, Any]:
    """The audit row of a change written through Core, with the acting key, exactly as the
    flush hook would have written it."""
    actor = current_actor.get()
    return {
        "id": new_id("aud"),
        "at": utcnow(),
        "actor_key_id": actor[0] if actor else None,
        "actor_role": actor[1] if actor else "system",
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "changes": changes,
    }
