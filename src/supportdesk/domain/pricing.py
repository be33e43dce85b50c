"""Prices of unit packages and of work billed at list price.

The default list (EUR per 15-minute unit): single units and packages below 10 units at
the list price of 30.00, from 10 units 28.00, from 20 units 26.00, from 50 units 24.00.
Work beyond a customer's balance is billed at the list price.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from itertools import pairwise
from typing import NamedTuple

CENT = Decimal("0.01")


def to_cents(amount: Decimal) -> Decimal:
    """Round half up to cents, as invoices do."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class PriceTier:
    """From ``min_units`` on, every unit of the package costs ``unit_price``."""

    min_units: int
    unit_price: Decimal


class PackagePrice(NamedTuple):
    unit_price: Decimal
    amount: Decimal


@dataclass(frozen=True, slots=True)
class PriceList:
    """A list price per unit and tiers for bigger packages (lower price per unit)."""

    list_price: Decimal
    tiers: tuple[PriceTier, ...] = ()
    currency: str = "EUR"

    def __post_init__(self) -> None:
        tiers = tuple(sorted(self.tiers, key=lambda tier: tier.min_units))
        if not self.list_price.is_finite() or self.list_price <= 0:
            raise ValueError(f"the list price must be above zero: {self.list_price}")
        if any(tier.min_units < 1 for tier in tiers):
            raise ValueError("a price tier starts at one unit or more")
        if any(a.min_units == b.min_units for a, b in pairwise(tiers)):
            raise ValueError("two price tiers start at the same package size")
        prices = [self.list_price, *(tier.unit_price for tier in tiers)]
        if any(not p.is_finite() or p <= 0 for p in prices):
            raise ValueError("unit prices must be above zero")
        if any(b > a for a, b in pairwise(prices)):
            raise ValueError("a bigger package cannot cost more per unit")
        object.__setattr__(self, "tiers", tiers)

    @classmethod
    def from_mapping(
        cls, list_price: Decimal, tiers: Mapping[int, Decimal], currency: str = "EUR"
    ) -> PriceList:
        """Build from ``{min_units: unit_price}``, the shape settings give."""
        return cls(list_price, tuple(PriceTier(n, Decimal(p)) for n, p in tiers.items()), currency)

    def unit_price_for(self, units: int) -> Decimal:
        """The unit price of the bracket a package of ``units`` falls in."""
        index = bisect_right(self.tiers, units, key=lambda tier: tier.min_units)
        return self.tiers[index - 1].unit_price if index else self.list_price


def default_price_list() -> PriceList:
    """EUR: 30.00 per unit; 10+ units 28.00; 20+ 26.00; 50+ 24.00."""
    return PriceList.from_mapping(
        Decimal("30.00"),
        {10: Decimal("28.00"), 20: Decimal("26.00"), 50: Decimal("24.00")},
    )


def price_package(units: int, price_list: PriceList) -> PackagePrice:
    """The whole package at its bracket's unit price: amount = units x unit price."""
    if units < 1:
        raise ValueError(f"a package holds at least one unit: {units}")
    unit_price = price_list.unit_price_for(units)
    return PackagePrice(unit_price, to_cents(unit_price * units))


def list_price_amount(units: int, price_list: PriceList) -> Decimal:
    """What ``units`` of work beyond the balance cost at list price."""
    if units < 0:
        raise ValueError(f"units cannot be negative: {units}")
    return to_cents(price_list.list_price * units)
