"""Totals of a customer's statement for one period."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from .billing import BillingDecision
from .ledger import EntryKind
from .pricing import PriceList, to_cents


@dataclass(frozen=True, slots=True)
class StatementEntry:
    """A ledger entry of the period, as the statement needs it.

    ``units`` is the entry's signed change of the balance. ``units_at_list_price`` is
    the part of a debit billed at list price (negative on the reversal of such a debit),
    ``amount`` what a purchase cost (negative on its reversal). A reversal names the
    kind of entry it undoes in ``reverses``.
    """

    kind: EntryKind
    units: int
    units_at_list_price: int = 0
    amount: Decimal = Decimal(0)
    reverses: EntryKind | None = None

    def __post_init__(self) -> None:
        if (self.kind == EntryKind.REVERSAL) != (self.reverses is not None):
            raise ValueError("a reversal, and only a reversal, names the kind it undoes")
        if self.reverses == EntryKind.REVERSAL:
            raise ValueError("a reversal cannot undo a reversal")

    @property
    def counts_as(self) -> EntryKind:
        """A reversal counts against the kind it undoes."""
        return self.reverses if self.reverses is not None else self.kind


@dataclass(frozen=True, slots=True)
class StatementTotals:
    opening_balance: int
    closing_balance: int
    units_purchased: int
    amount_purchased: Decimal
    units_used: int
    units_at_list_price: int
    units_covered: int
    amount_due: Decimal
    currency: str


def statement_totals(
    opening_balance: int,
    entries: Iterable[StatementEntry],
    sessions: Iterable[BillingDecision],
    price_list: PriceList,
) -> StatementTotals:
    """Sum up a period: ``entries`` and ``sessions`` are those inside it.

    Units at list price are counted from the ledger's debits (every billed session
    writes one, with zero prepaid units when the balance is empty), so a session is
    never counted twice; ``sessions`` add what contracts covered.
    """
    if opening_balance < 0:
        raise ValueError(f"a balance is never negative: {opening_balance}")
    closing = opening_balance
    purchased = used = at_list_price = 0
    amount_purchased = Decimal(0)
    for entry in entries:
        closing += entry.units
        if entry.counts_as == EntryKind.PURCHASE:
            purchased += entry.units
            amount_purchased += entry.amount
        else:
            used -= entry.units
            at_list_price += entry.units_at_list_price
    if closing < 0:
        raise ValueError(f"the entries take the balance below zero: {closing}")
    covered = sum(decision.units_covered for decision in sessions)
    return StatementTotals(
        opening_balance=opening_balance,
        closing_balance=closing,
        units_purchased=purchased,
        amount_purchased=to_cents(amount_purchased),
        units_used=used,
        units_at_list_price=at_list_price,
        units_covered=covered,
        # Negative when a reversal credits list-price work billed in an earlier period.
        amount_due=to_cents(price_list.list_price * at_list_price),
        currency=price_list.currency,
    )
