"""Use cases of the prepaid-unit ledger: buy, debit, reverse, read the balance."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from supportdesk.config import BusinessRules
from supportdesk.customers.repository import CustomerRepository
from supportdesk.customers.service import stored_warning_levels, warning_levels_of
from supportdesk.domain.errors import InsufficientBalance
from supportdesk.domain.ledger import EntryKind, reversal_effect, split_debit, warning_crossings
from supportdesk.domain.pricing import list_price_amount, price_package
from supportdesk.errors import NotFound
from supportdesk.events.service import EVENTS, EventRecorder, event_row
from supportdesk.kit.audit import audit_row, creation_changes
from supportdesk.kit.clock import utcnow
from supportdesk.kit.ids import new_id
from supportdesk.kit.pagination import PageParams
from supportdesk.kit.repository import Writes, table_of
from supportdesk.ledger.repository import ENTRY_COLUMNS, Applied, LedgerEntryRow, LedgerRepository
from supportdesk.ledger.schemas import LedgerEntryRead, entry_read
from supportdesk.metrics.service import DEBITS
from supportdesk.models import AuditEntry, Customer, LedgerEntry

LEDGER_ENTRIES = table_of(LedgerEntry)
AUDIT_LOG = table_of(AuditEntry)


@dataclass(frozen=True, slots=True)
class Recorded:
    """A new ledger entry and its answer, validated once."""

    entry: LedgerEntryRow
    read: LedgerEntryRead


@dataclass(frozen=True)
class Balance:
    customer_id: str
    balance: int
    warning_levels: tuple[int, ...]
    as_of: datetime | None

    @property
    def warning_threshold(self) -> int:
        return max(self.warning_levels, default=0)

    @property
    def low(self) -> bool:
        return bool(self.warning_levels) and self.balance <= self.warning_threshold


def low_balance_warnings(
    customer_id: str, entry_id: str, change: int, balance_after: int, levels: Sequence[int]
) -> list[dict[str, Any]]:
    """The data of each ``ledger.low_balance`` a balance change gives: one per warning
    level crossed on the way down (none when the balance went up)."""
    if change >= 0:
        return []
    return [
        {
            "customer_id": customer_id,
            "balance": balance_after,
            "level": level,
            "warning_threshold": max(levels),
            "entry_id": entry_id,
        }
        for level in warning_crossings(balance_after - change, balance_after, levels)
    ]


class LedgerService:
    def __init__(
        self,
        session: AsyncSession,
        rules: BusinessRules,
        *,
        scope: str | None = None,
        actor: str | None = None,
    ) -> None:
        self.session = session
        self.rules = rules
        self.actor = actor
        self.ledger = LedgerRepository(session, scope)
        self.customers = CustomerRepository(session, scope)
        self.events = EventRecorder(session)

    async def _customer(self, customer_id: str) -> Customer:
        customer = await self.customers.get_by_id(customer_id)
        if customer is None:
            raise NotFound.of("customer", customer_id)
        return customer

    def _entry(self, customer_id: str, kind: EntryKind, balance_after: int) -> LedgerEntry:
        now = utcnow()
        return LedgerEntry(
            id=new_id("led"),
            customer_id=customer_id,
            kind=kind.value,
            units_debited=0,
            units_billed_at_list_price=0,
            currency=self.rules.price_list.currency,
            balance_after=balance_after,
            recorded_at=now,
            effective_at=now,
            created_by=self.actor,
        )

    async def _standing_may_change(self, entry: LedgerEntry | LedgerEntryRow) -> None:
        """Units running out or topped up from zero move the customer's waiting tickets."""
        before = entry.balance_after - entry.change
        if (before > 0) != (entry.balance_after > 0):
            # Imported here: tickets depend on the ledger's customers, not the reverse.
            from supportdesk.tickets.service import TicketService

            await TicketService(self.session, self.rules).refresh_customer(entry.customer_id)

    async def _record(self, entry: LedgerEntry, customer: Customer) -> LedgerEntry:
        if entry.reverses_id is None:
            # Ids are unique by construction: no savepoint, so the customer row, locked by
            # the balance update, is held for as few round trips as possible.
            self.ledger.add_entry(entry)
        else:
            # The unique index on reverses_id is what makes "at most once" hold under
            # concurrency; its refusal becomes a 409.
            await self.ledger.add(entry, conflict=f"entry {entry.reverses_id} is reversed already")
        self.events.record(
            "ledger.entry_created",
            resource_type="ledger_entry",
            resource_id=entry.id,
            customer_id=entry.customer_id,
            data=entry_read(entry).model_dump(mode="json"),
        )
        self._warn_if_low(entry, customer)
        await self._standing_may_change(entry)
        return entry

    def _warn_if_low(self, entry: LedgerEntry, customer: Customer) -> None:
        """Whatever took the balance down (a debit, a reversed purchase): one warning per
        level crossed on the way."""
        levels = warning_levels_of(customer, self.rules)
        for data in low_balance_warnings(
            entry.customer_id, entry.id, entry.change, entry.balance_after, levels
        ):
            self.events.record(
                "ledger.low_balance",
                resource_type="customer",
                resource_id=customer.id,
                customer_id=customer.id,
                data=data,
            )

    async def get_balance(self, customer_id: str, as_of: datetime | None = None) -> Balance:
        customer = await self._customer(customer_id)
        balance = (
            customer.unit_balance
            if as_of is None
            else await self.ledger.balance_as_of(customer_id, as_of)
        )
        return Balance(customer_id, balance, warning_levels_of(customer, self.rules), as_of)

    def _new_entry(
        self, customer_id: str, kind: EntryKind, units: int, applied: Applied
    ) -> dict[str, Any]:
        now = utcnow()
        return {
            "id": new_id("led"),
            "customer_id": customer_id,
            "kind": kind.value,
            "units": units,
            "change": applied.change,
            "units_debited": 0,
            "units_billed_at_list_price": 0,
            "unit_price": None,
            "amount": None,
            "list_price_amount": None,
            "currency": self.rules.price_list.currency,
            "reverses_id": None,
            "reference": None,
            "cause_type": "",
            "cause_id": None,
            "balance_after": applied.balance_after,
            "recorded_at": now,
            "effective_at": now,
            "created_by": self.actor,
        }

    async def _write_entry(
        self, values: dict[str, Any], applied: Applied, writes: Writes | None
    ) -> Recorded:
        """The entry, its audit row, its event and any low-balance warnings: one round
        trip (or the caller's, with ``writes``). The same rows the ORM path writes."""
        entry = LedgerEntryRow(**values)
        read = entry_read(entry)
        batch = Writes() if writes is None else writes
        batch.insert(LEDGER_ENTRIES, values)
        changes = creation_changes(ENTRY_COLUMNS, values)
        batch.insert(AUDIT_LOG, audit_row("create", "ledger_entry", entry.id, changes))
        events = [
            event_row(
                "ledger.entry_created",
                resource_type="ledger_entry",
                resource_id=entry.id,
                customer_id=entry.customer_id,
                data=read.model_dump(mode="json"),
            )
        ]
        levels = stored_warning_levels(applied.warning_levels, self.rules)
        events += [
            event_row(
                "ledger.low_balance",
                resource_type="customer",
                resource_id=entry.customer_id,
                customer_id=entry.customer_id,
                data=data,
            )
            for data in low_balance_warnings(
                entry.customer_id, entry.id, entry.change, entry.balance_after, levels
            )
        ]
        batch.insert(EVENTS, *events)
        if writes is None:
            await self.ledger.write(batch)
        await self._standing_may_change(entry)
        return Recorded(entry, read)

    async def buy_units(
        self, customer_id: str, units: int, reference: str | None = None
    ) -> Recorded:
        """A package of units, priced at its bracket of the tiered price list: the credit
        in one statement, the entry with its audit row and event in a second."""
        price = price_package(units, self.rules.price_list)
        applied = await self.ledger.credit(customer_id, units)
        if applied is None:
            raise NotFound.of("customer", customer_id)
        values = self._new_entry(customer_id, EntryKind.PURCHASE, units, applied)
        values["unit_price"], values["amount"] = price.unit_price, price.amount
        values["reference"] = reference
        values["cause_type"], values["cause_id"] = "purchase", reference
        return await self._write_entry(values, applied, None)

    async def debit_units(
        self,
        customer_id: str,
        units: int,
        reference: str | None = None,
        *,
        cause_type: str = "manual",
        cause_id: str | None = None,
        effective_at: datetime | None = None,
        writes: Writes | None = None,
    ) -> Recorded:
        """Take ``units`` from the balance as far as it goes; the rest is billed at list price.

        One atomic update applies the debit and reports what it took, so concurrent
        debits never overdraw and never lose a unit; warnings fire once per level crossed.
        With ``writes``, the entry's rows join the caller's round trip.
        """
        applied = await self.ledger.take(customer_id, units)
        if applied is None:
            raise NotFound.of("customer", customer_id)
        split = split_debit(units, applied.balance_after - applied.change)
        values = self._new_entry(customer_id, EntryKind.DEBIT, units, applied)
        values["units_debited"] = split.from_prepaid
        values["units_billed_at_list_price"] = split.at_list_price
        values["list_price_amount"] = list_price_amount(split.at_list_price, self.rules.price_list)
        values["reference"] = reference
        values["cause_type"], values["cause_id"] = cause_type, cause_id or reference
        if effective_at is not None:
            values["effective_at"] = effective_at
        recorded = await self._write_entry(values, applied, writes)
        DEBITS.inc()
        return recorded

    async def reverse_entry(
        self, customer_id: str, entry_id: str, reference: str | None = None
    ) -> LedgerEntry:
        """Undo exactly what one entry did, once; purchased units already used stay used."""
        customer = await self._customer(customer_id)
        target = await self.ledger.get_entry(customer_id, entry_id)
        if target is None:
            raise NotFound.of("ledger entry", entry_id)
        already = await self.ledger.get_reversal_of(entry_id) is not None
        balance = await self.ledger.balance(customer_id) or 0
        change = reversal_effect(
            EntryKind(target.kind), target.change, balance, already_reversed=already
        )
        # The read above gives a clear error; the conditional update is the guard.
        applied = (
            await self.ledger.remove_units(customer_id, -change)
            if change < 0
            else await self.ledger.add_units(customer_id, change)
        )
        if applied is None:
            raise InsufficientBalance(
                f"reversing this entry takes {-change} units; the balance no longer holds them"
            )
        entry = self._entry(customer_id, EntryKind.REVERSAL, applied[0])
        entry.units, entry.change = target.units, applied[1]
        entry.units_debited = target.units_debited
        entry.units_billed_at_list_price = target.units_billed_at_list_price
        entry.unit_price = target.unit_price
        entry.amount = _negated(target.amount)
        entry.list_price_amount = _negated(target.list_price_amount)
        entry.reverses_id = target.id
        entry.reference = reference
        entry.cause_type, entry.cause_id = "reversal", target.id
        return await self._record(entry, customer)

    async def get_entry(self, customer_id: str, entry_id: str) -> LedgerEntry:
        await self._customer(customer_id)
        entry = await self.ledger.get_entry(customer_id, entry_id)
        if entry is None:
            raise NotFound.of("ledger entry", entry_id)
        return entry

    async def list_entries(
        self, customer_id: str, params: PageParams
    ) -> tuple[list[LedgerEntry], str | None]:
        await self._customer(customer_id)
        return await self.ledger.list_for_customer(customer_id, params)


def _negated(amount: Decimal | None) -> Decimal | None:
    return None if amount is None else -amount
