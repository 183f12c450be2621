"""The range every number typed on a settings or customer page must fall in. Without one,
`1e26` saves and then breaks the page that shows it, and `1e999999` stores a megabyte."""

from __future__ import annotations

from decimal import Decimal

from flask_babel import gettext as _

# Money columns hold 15 digits before the point; a business's amounts stay far below that.
MAX_AMOUNT = Decimal("999999999999.99")
# Days, counts and offsets: 100 years of days is more than any rule needs.
MAX_WHOLE = 36_500
MAX_TEXT_DIGITS = 20  # what is read as a number at all: none in range is longer


class NumberRefused(ValueError):
    """The message says what range is allowed."""


def whole_number(raw: str, low: int = -MAX_WHOLE, high: int = MAX_WHOLE) -> int:
    text = raw.strip()
    try:
        value = int(text) if len(text) <= MAX_TEXT_DIGITS else None
    except ValueError:
        raise NumberRefused(_("Enter a whole number.")) from None
    if value is None:  # digits beyond any range: not worth reading
        raise NumberRefused(_("Enter a whole number from %(low)s to %(high)s.",
                              low=low, high=high))
    return within(value, low, high)


def day_offsets(raw: str) -> list[int]:
    """"-3, 0, 3": whole numbers of days separated by commas, each within ±MAX_WHOLE."""
    offsets = []
    for part in filter(None, (p.strip() for p in raw.split(","))):
        try:
            offsets.append(whole_number(part))
        except NumberRefused:
            if part.lstrip("+-").isdigit():
                raise NumberRefused(_(
                    "Give whole numbers of days separated by commas, each from %(low)s to "
                    "%(high)s.", low=-MAX_WHOLE, high=MAX_WHOLE)) from None
            raise NumberRefused(_("Give whole numbers of days separated by commas.")) from None
    return offsets


def within(value: int, low: int = -MAX_WHOLE, high: int = MAX_WHOLE) -> int:
    if not low <= value <= high:
        raise NumberRefused(_("Enter a whole number from %(low)s to %(high)s.",
                              low=low, high=high))
    return value


def too_large(value: Decimal) -> bool:
    """Beyond any amount a business has (infinite and NaN included)."""
    return not value.is_finite() or abs(value) > MAX_AMOUNT


def amount_ceiling_message() -> str:
    return _("Enter an amount from 0 to %(max)s.", max=f"{MAX_AMOUNT:,}")
