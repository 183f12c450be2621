"""The pure rules of card payments: ways to pay per currency, minor units, surcharges."""

from __future__ import annotations

from decimal import Decimal

import pytest

from rules.card_payments import from_minor, payment_method_types, surcharge_allowed, to_minor


def test_card_everywhere_and_the_local_ways_of_the_currency() -> None:
    assert payment_method_types("gbp") == ("card",)
    assert payment_method_types("EUR") == ("card", "ideal", "bancontact", "eps")
    assert payment_method_types("PLN")[0] == "card" and "blik" in payment_method_types("PLN")


@pytest.mark.parametrize(("amount", "currency", "minor"), [
    (Decimal("12.34"), "EUR", 1234), (Decimal("1500"), "JPY", 1500),
    (Decimal("1.005"), "KWD", 1005), (Decimal("0.10"), "gbp", 10)])
def test_minor_units_both_ways(amount: Decimal, currency: str, minor: int) -> None:
    assert to_minor(amount, currency) == minor
    assert from_minor(minor, currency) == amount


def test_a_fraction_of_the_minor_unit_is_refused() -> None:
    with pytest.raises(ValueError):
        to_minor(Decimal("12.345"), "EUR")


def test_no_surcharge_for_consumers_in_the_eea_and_the_uk() -> None:
    for country in ("GB", "DE", "PL", "NO", "IE"):
        assert not surcharge_allowed(country, customer_is_business=False)
        assert surcharge_allowed(country, customer_is_business=True)
    assert surcharge_allowed("US", customer_is_business=False)
    assert not surcharge_allowed(None, customer_is_business=True)  # unknown: the strictest
