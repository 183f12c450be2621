"""Paying an invoice by card from the portal: the ways to pay Stripe Checkout offers per
currency, minor units, and whether a card surcharge may be asked.

Surcharges: the EU's second Payment Services Directive (2015/2366, art. 62(4)) bans them for
consumer cards and payment methods covered by the Interchange Fee Regulation, and the UK's
Consumer Rights (Payment Surcharges) Regulations 2012 (as amended in 2018) ban them for
consumers; Norway (EEA) applies PSD2 too. Dunwell asks none where the law forbids it; where the
law does not, none either unless the business sets one (a percentage, none by default), and
never more than accepting the card costs the business (the laws that allow a surcharge cap it
at the cost: the EU and UK for business cards, Australia's "reasonable cost", the card
schemes' rules in the US). The cost is Stripe's standard card pricing by currency below.
UNVERIFIED: the pricing is Stripe's published standard rate for domestic cards (searched:
"Stripe pricing standard card EEA UK US"); a business with negotiated rates pays less, so the
cap can only be higher than its true cost by that difference. US states that ban surcharges
are not told apart: the business's country is all Dunwell knows.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

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


# Stripe's standard pricing for a domestic card: percent of the amount, plus a fixed part in
# minor units (see the module's docstring).
CARD_COST: dict[str, tuple[Decimal, int]] = {
    "EUR": (Decimal("1.5"), 25), "GBP": (Decimal("1.5"), 20),
}
DEFAULT_CARD_COST = (Decimal("2.9"), 30)
MAX_SURCHARGE_PERCENT = Decimal("10")  # what an owner may set at all (the cost caps it lower)


def card_cost(amount: Decimal, currency: str) -> Decimal:
    """What accepting a card payment of `amount` costs the business, in the currency."""
    percent, fixed = CARD_COST.get(currency.upper(), DEFAULT_CARD_COST)
    return _round(amount * percent / 100 + from_minor(fixed, currency), currency)


def card_surcharge(amount: Decimal, currency: str, percent: Decimal | None,
                   business_country: str | None, customer_is_business: bool) -> Decimal:
    """The surcharge a card payment of `amount` carries: none unless the business set a
    percentage and the law allows one for this customer; never above the card's cost."""
    if not percent or percent <= 0 or amount <= 0:
        return Decimal(0)
    if not surcharge_allowed(business_country, customer_is_business):
        return Decimal(0)
    asked = _round(amount * min(percent, MAX_SURCHARGE_PERCENT) / 100, currency)
    return min(asked, card_cost(amount, currency))


def _round(amount: Decimal, currency: str) -> Decimal:
    digits = minor_unit_digits(currency.upper())
    return amount.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
