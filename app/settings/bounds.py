"""The range every number typed on a settings or customer page must fall in. Without one,
`1e26` saves and then breaks the page that shows it, and `1e999999` stores a megabyte."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from flask_babel import gettext as _

# Money columns hold 15 digits before the point; a business's amounts stay far below that.
MAX_AMOUNT = Decimal("999999999999.99")
# Days, counts and offsets: 100 years of days is more than any rule needs.
MAX_WHOLE = 36_500
MAX_TEXT_DIGITS = 20  # what is read at all: no number is longer than this


class NumberRefused(ValueError):
    """The message says what range is allowed."""


def whole_number(raw: str, low: int = -MAX_WHOLE, high: int = MAX_WHOLE) -> int:
    text = raw.strip()
    try:
        if len(text) > MAX_TEXT_DIGITS:
            raise ValueError(text)
        value = int(text)
    except ValueError:
        raise NumberRefused(_("Enter a whole number from %(low)s to %(high)s.",
                              low=low, high=high)) from None
    return within(value, low, high)


def within(value: int, low: int = -MAX_WHOLE, high: int = MAX_WHOLE) -> int:
    if not low <= value <= high:
        raise NumberRefused(_("Enter a whole number from %(low)s to %(high)s.",
                              low=low, high=high))
    return value


def amount(raw: str, places: int = 2) -> Decimal:
    """A non-negative amount of at most MAX_AMOUNT with at most `places` decimals."""
    text = raw.strip().replace(",", "")
    try:
        if len(text) > MAX_TEXT_DIGITS:
            raise InvalidOperation(text)
        value = Decimal(text)
    except InvalidOperation:
        raise NumberRefused(_("Enter an amount, such as 5000 or 5000.00.")) from None
    if not value.is_finite() or not 0 <= value <= MAX_AMOUNT:
        raise NumberRefused(_("Enter an amount from 0 to %(max)s.", max=f"{MAX_AMOUNT:,}"))
    if value.as_tuple().exponent < -places:  # type: ignore[operator]
        raise NumberRefused(_("An amount has at most two decimal places."))
    return value
