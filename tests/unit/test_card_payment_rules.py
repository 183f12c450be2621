"""The pure rules of card payments: ways to pay per currency, minor units, surcharges."""

from __future__ import annotations

from decimal import Decimal

import pytest

from rules.card_payments import (
    card_cost,
    card_surcharge,
    from_minor,
    payment_method_types,
    surcharge_allowed,
    to_minor,
)


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


def test_a_surcharge_only_where_set_and_allowed_and_never_above_the_cost() -> None:
    hundred = Decimal("100.00")
    # None by default, whatever the law allows.
    assert card_surcharge(hundred, "USD", None, "US", customer_is_business=False) == 0
    assert card_surcharge(hundred, "USD", Decimal("0"), "US", customer_is_business=True) == 0
    # Refused for consumers in the EU, the EEA and the UK; allowed for their businesses.
    for country in ("DE", "PL", "NO", "GB"):
        assert card_surcharge(hundred, "EUR", Decimal("1"), country, False) == 0
    assert card_surcharge(hundred, "EUR", Decimal("1"), "DE", True) == Decimal("1.00")
    # Capped at what the card costs: 1.5 % + 0.20 GBP, 2.9 % + 0.30 USD.
    assert card_cost(hundred, "GBP") == Decimal("1.70")
    assert card_surcharge(hundred, "GBP", Decimal("4"), "GB", True) == Decimal("1.70")
    assert card_surcharge(hundred, "USD", Decimal("2"), "US", False) == Decimal("2.00")
    assert card_surcharge(hundred, "USD", Decimal("5"), "US", False) == Decimal("3.20")
    # Rounded half up in the currency's minor unit (JPY has none).
    assert card_surcharge(Decimal("1005"), "JPY", Decimal("1"), "JP", False) == Decimal("10")
    assert card_surcharge(Decimal("10.50"), "USD", Decimal("1"), "US", False) == Decimal("0.11")
    # A country Dunwell does not know: none.
    assert card_surcharge(hundred, "USD", Decimal("2"), None, True) == 0
