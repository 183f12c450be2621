"""Paying an invoice by card from the portal: the ways to pay Stripe Checkout offers per
currency, minor units, and whether a card surcharge may be asked.

Surcharges: the EU's second Payment Services Directive (2015/2366, art. 62(4)) bans them for
consumer cards and payment methods covered by the Interchange Fee Regulation, and the UK's
Consumer Rights (Payment Surcharges) Regulations 2012 (as amended in 2018) ban them for
consumers; Norway (EEA) applies PSD2 too. Dunwell asks none where the law forbids it; where the
law does not, none either unless the business sets one (which it cannot yet: no surcharge is
ever added today, and this rule is the gate any future setting must pass).
"""

from __future__ import annotations

from decimal import Decimal

from rules.statutory import minor_unit_digits

# Stripe Checkout's immediate local methods by currency besides card (Stripe's "payment
# methods by currency" table). Debits that settle days later (SEPA, Bacs, ACH) are left out:
# an invoice is settled in the books when the money is there, and these never say so at once.
LOCAL_METHODS: dict[str, tuple[str, ...]] = {
    "EUR": ("ideal", "bancontact", "eps"),
    "PLN": ("blik", "p24"),
}

EEA_AND_UK = frozenset({
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT",
    "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE",  # EU
    "IS", "LI", "NO",  # EEA
    "GB",  # UK
})


def payment_method_types(currency: str) -> tuple[str, ...]:
    """Card everywhere, then the local methods of the currency."""
    return ("card", *LOCAL_METHODS.get(currency.upper(), ()))


def to_minor(amount: Decimal, currency: str) -> int:
    """Decimal money to the integer of minor units Stripe counts (12.34 EUR -> 1234)."""
    scaled = amount.scaleb(minor_unit_digits(currency.upper()))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} {currency} has more digits than the currency's minor unit")
    return int(scaled)


def from_minor(amount: int, currency: str) -> Decimal:
    digits = minor_unit_digits(currency.upper())
    return Decimal(amount).scaleb(-digits).quantize(Decimal(1).scaleb(-digits))


def surcharge_allowed(business_country: str | None, customer_is_business: bool) -> bool:
    """May a card surcharge be asked at all? Never of a consumer in the EEA or the UK; a
    business country we do not know is treated as the strictest."""
    country = (business_country or "").upper()
    if not country:
        return False
    if country in EEA_AND_UK:
        return customer_is_business
    return True
