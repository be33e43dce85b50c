"""Package prices and list prices."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supportdesk.domain import (
    PackagePrice,
    PriceList,
    PriceTier,
    default_price_list,
    list_price_amount,
    price_package,
    to_cents,
)

D = Decimal
PRICES = default_price_list()


@pytest.mark.parametrize(
    ("units", "unit_price", "amount"),
    [
        (1, "30.00", "30.00"),
        (9, "30.00", "270.00"),
        (10, "28.00", "280.00"),
        (19, "28.00", "532.00"),
        (20, "26.00", "520.00"),
        (49, "26.00", "1274.00"),
        (50, "24.00", "1200.00"),
        (400, "24.00", "9600.00"),
    ],
)
def test_default_package_prices(units: int, unit_price: str, amount: str) -> None:
    assert price_package(units, PRICES) == PackagePrice(D(unit_price), D(amount))


def test_default_list_is_in_euro_at_thirty_per_unit() -> None:
    assert PRICES.currency == "EUR"
    assert PRICES.list_price == D("30.00")
    assert list_price_amount(3, PRICES) == D("90.00")
    assert list_price_amount(0, PRICES) == D("0.00")


def test_amount_is_rounded_half_up_to_cents() -> None:
    # Banker's rounding would give 10.12 and 20.12.
    odd = PriceList(D("10.125"), (PriceTier(2, D("10.0625")),))
    assert price_package(1, odd) == PackagePrice(D("10.125"), D("10.13"))
    assert price_package(2, odd).amount == D("20.13")
    assert to_cents(D("0.125")) == D("0.13")


def test_tiers_may_be_given_in_any_order() -> None:
    prices = PriceList.from_mapping(D("30"), {50: D("24"), 10: D("28")})
    assert [tier.min_units for tier in prices.tiers] == [10, 50]


@pytest.mark.parametrize(
    ("list_price", "tiers", "message"),
    [
        (D("0"), {}, "list price"),
        (D("30"), {10: D("31")}, "more per unit"),
        (D("30"), {10: D("20"), 20: D("25")}, "more per unit"),
        (D("30"), {0: D("20")}, "one unit"),
        (D("30"), {10: D("-1")}, "above zero"),
    ],
)
def test_bad_price_lists_are_refused(
    list_price: Decimal, tiers: dict[int, Decimal], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        PriceList.from_mapping(list_price, tiers)


def test_empty_package_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one unit"):
        price_package(0, PRICES)


price_lists = st.builds(
    lambda list_cents, steps: PriceList(
        D(list_cents) / 100,
        tuple(
            PriceTier(min_units, (D(list_cents) - sum(d for _, d in steps[: i + 1])) / 100)
            for i, (min_units, _) in enumerate(steps)
        ),
    ),
    st.integers(3000, 6000),
    st.lists(
        st.tuples(st.integers(1, 500), st.integers(0, 400)), max_size=5, unique_by=lambda s: s[0]
    ).map(sorted),
)


@settings(max_examples=150, deadline=None)
@given(price_lists, st.integers(1, 1000), st.integers(1, 1000))
def test_price_per_unit_never_rises_with_package_size(prices: PriceList, a: int, b: int) -> None:
    small, big = sorted((a, b))
    assert price_package(big, prices).unit_price <= price_package(small, prices).unit_price
    assert price_package(small, prices).unit_price <= prices.list_price
    priced = price_package(big, prices)
    assert priced.amount == to_cents(priced.unit_price * big)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 1000), st.integers(1, 1000))
def test_default_price_per_unit_never_rises(a: int, b: int) -> None:
    small, big = sorted((a, b))
    assert price_package(big, PRICES).unit_price <= price_package(small, PRICES).unit_price
