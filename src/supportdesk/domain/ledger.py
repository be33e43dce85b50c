"""Rules of the append-only unit ledger: debits, reversals and low-balance warnings."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import NamedTuple

from .errors import AlreadyReversed, InsufficientBalance, NotReversible

DEFAULT_WARNING_LEVELS: tuple[int, ...] = (4,)


class EntryKind(StrEnum):
    PURCHASE = "purchase"
    DEBIT = "debit"
    REVERSAL = "reversal"


class DebitSplit(NamedTuple):
    """A debit taken from the balance as far as it goes, the rest at list price."""

    from_prepaid: int
    at_list_price: int


def split_debit(units: int, balance: int) -> DebitSplit:
    """Split ``units`` of work: the balance never goes below zero, no unit is lost."""
    if units < 0 or balance < 0:
        raise ValueError(f"units and balance must not be negative: {units}, {balance}")
    taken = min(units, balance)
    return DebitSplit(from_prepaid=taken, at_list_price=units - taken)


def reversal_effect(
    kind: EntryKind, effect: int, balance: int, *, already_reversed: bool = False
) -> int:
    """The balance change of reversing an entry of ``kind`` whose change was ``effect``.

    A reversal undoes exactly what the entry did; it cannot be undone itself, happens
    once per entry, and cannot take back purchased units that are already used.
    """
    if kind == EntryKind.REVERSAL:
        raise NotReversible("a reversal cannot be reversed")
    if already_reversed:
        raise AlreadyReversed("this entry has been reversed already")
    if balance + (-effect) < 0:
        raise InsufficientBalance(
            f"reversing this entry takes {effect} units, the balance is {balance}"
        )
    return -effect


def warning_crossings(before: int, after: int, levels: Iterable[int]) -> tuple[int, ...]:
    """The warning levels a balance change crosses downward, highest first.

    A level is crossed when the balance was above it and is now at or below it; going
    back above and down again is a new crossing.
    """
    return tuple(sorted({level for level in levels if after <= level < before}, reverse=True))
