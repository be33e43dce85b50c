"""What the golden-file tests (``test_*_golden_e2e.py``, ``test_ticket_read_bytes_e2e.py``)
share: normalising captured answers (ids differ on every run, and instants too unless
the test froze the clocks), frozen clocks, and stored rows as text."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any

import pytest
from sqlalchemy import Table

# The modules whose clock the ticket writes and reads, and the standing they read, use.
CLOCKS = (
    "supportdesk.tickets.service",
    "supportdesk.customers.service",
    "supportdesk.contracts.service",
    "supportdesk.ledger.service",
)


def freeze_clocks(monkeypatch: pytest.MonkeyPatch, start: datetime) -> Callable[[datetime], None]:
    """Stand every clock of ``CLOCKS`` still at ``start``; the function returned moves
    them all to another instant."""
    clock = [start]
    for module in CLOCKS:
        monkeypatch.setattr(f"{module}.utcnow", lambda: clock[0])

    def at(moment: datetime) -> None:
        clock[0] = moment

    return at


def stored_row(table: Table, row: Sequence[Any]) -> str:
    """A stored row as JSON, its columns in table order, instants in ISO form."""
    values = {
        column.name: value.isoformat() if isinstance(value, datetime | date) else value
        for column, value in zip(table.columns, row, strict=True)
    }
    return json.dumps(values, ensure_ascii=False)


ID = re.compile(r"\b[a-z]{2,4}_[0-9A-Z]{26}\b")
INSTANT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?")
KEY_ID = re.compile(r"\bkey_[0-9A-Za-z]+\b")


class Normaliser:
    """Ids become ``<id n>`` in order of first appearance; instants become ``<instant>``,
    unless ``instants=False`` keeps them (a test whose every captured instant comes from
    a frozen clock)."""

    def __init__(self, *, instants: bool = True) -> None:
        self.ids: dict[str, str] = {}
        self.instants = instants

    def _id(self, match: re.Match[str]) -> str:
        return self.ids.setdefault(match.group(0), f"<id {len(self.ids) + 1}>")

    def __call__(self, text: str) -> str:
        text = ID.sub(self._id, KEY_ID.sub(self._id, text))
        return INSTANT.sub("<instant>", text) if self.instants else text
