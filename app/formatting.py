"""Money, dates, times, numbers and percentages as the reader's language writes them, in the
book's currency and time zone: the one place a page turns a value into text.

The locale is the interface language with a region: the book's country where the language has
a variant for it (a UK book read in English is en_GB: 07/12/2026 and £1,480.00), else the
region the reader's browser names for that language, else the language's own defaults (a UK
book read in German: 07.12.2026 and 1.480,00 £). Moments are shown in the book's time zone.

One date format everywhere: the day in digits with a four-digit year, as the locale orders
them. A moment is that date and the time of day.

In a right-to-left language each value is wrapped in Unicode's left-to-right isolate
(U+2066 ... U+2069), the plain-text twin of `<bdi dir="ltr">`: a value sits in Hebrew text
as one unit and "-3" never shows as "3-". That works in options, SVG text and flash messages,
where markup cannot go.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, tzinfo
from decimal import Decimal
from functools import lru_cache
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import DateTimePattern, format_datetime, format_time, match_skeleton
from babel.numbers import format_currency, format_decimal, format_percent
from flask import Flask, has_request_context, request
from flask_babel import get_locale
from jinja2 import pass_context
from jinja2.runtime import Context

from store import clock

RIGHT_TO_LEFT = frozenset({"he"})
LTR_ISOLATE, POP_ISOLATE = "\u2066", "\u2069"
DATE_SKELETON = "yMMdd"


class Book(Protocol):
    """What formatting needs of an organisation: where it is and its clock."""

    country: str
    timezone: str


def language_code(code: str) -> str:
    """Browsers say 'no' or 'nn' for Norwegian, 'iw' for Hebrew: our codes are nb and he."""
    code = code.lower()
    return {"no": "nb", "nn": "nb", "iw": "he"}.get(code, code)


def reader_language() -> str:
    locale = get_locale() if has_request_context() else None
    return locale.language if locale is not None else "en"


def _region_locale(language: str, region: str | None) -> Locale | None:
    if not region or len(region) != 2 or not region.isalpha():
        return None
    try:
        return Locale(language, region.upper())
    except (ValueError, UnknownLocaleError):
        return None


def reader_locale(book: Book | None = None, language: str | None = None) -> Locale:
    """The reader's language, with the book's country as region where the language has one
    for it, else the region the browser names for that language, else no region."""
    language = language or reader_language()
    found = _region_locale(language, getattr(book, "country", None))
    if found is None and has_request_context():
        for tag, _quality in request.accept_languages:
            parts = tag.replace("-", "_").split("_")
            if len(parts) == 2 and language_code(parts[0]) == language:
                found = _region_locale(language, parts[1])
                if found is not None:
                    break
    return found or Locale.parse(language)


def book_zone(book: Book | None) -> tzinfo | None:
    zone = getattr(book, "timezone", None)
    try:
        return ZoneInfo(zone) if zone else None
    except (ValueError, KeyError):
        return None


# CLDR's Hebrew patterns put right-to-left marks around the sign and the currency; inside a
# left-to-right isolate they would turn "-3.00" into "3.00-" again.
DIRECTION_MARKS = dict.fromkeys(map(ord, "\u200e\u200f\u061c"))


def _isolated(text: str, locale: Locale) -> str:
    if locale.language in RIGHT_TO_LEFT and text:
        return f"{LTR_ISOLATE}{text.translate(DIRECTION_MARKS)}{POP_ISOLATE}"
    return text


def money(amount: Decimal | float | int | None, currency: str | None = None,
          book: Book | None = None, language: str | None = None) -> str:
    """1480 in GBP: £1,480.00 in British English, 1.480,00 £ in German. Without a currency,
    the number with two decimals."""
    if amount is None:
        return ""
    locale = reader_locale(book, language)
    if not currency:
        text = format_decimal(amount, format="#,##0.00", locale=locale)
    else:
        text = format_currency(amount, currency.upper(), locale=locale)
    return _isolated(text, locale)


def number(value: Decimal | float | int | None, book: Book | None = None,
           language: str | None = None) -> str:
    """1234.5: 1,234.5 in English, 1.234,5 in German."""
    if value is None:
        return ""
    locale = reader_locale(book, language)
    return _isolated(format_decimal(value, locale=locale), locale)


def percent(value: Decimal | float | int | None, book: Book | None = None,
            language: str | None = None) -> str:
    """A figure in percent (8.5 for 8.5 %): 8.5% in English, 8,5 % in German."""
    if value is None:
        return ""
    locale = reader_locale(book, language)
    text = format_percent(Decimal(str(value)) / 100, locale=locale, decimal_quantization=False)
    return _isolated(text, locale)


@lru_cache(maxsize=128)
def _date_pattern(locale_id: str) -> str:
    """The locale's pattern for the one date skeleton: what Babel's format_skeleton looks up
    on every call (a millisecond each, a hundred times on a page), found once per locale."""
    skeletons = Locale.parse(locale_id).datetime_skeletons
    found = DATE_SKELETON if DATE_SKELETON in skeletons else \
        match_skeleton(DATE_SKELETON, skeletons) or DATE_SKELETON
    pattern = skeletons[found]
    return pattern.pattern if isinstance(pattern, DateTimePattern) else str(pattern)


def _date_text(value: date, locale: Locale) -> str:
    """format_skeleton(DATE_SKELETON, value, locale), with the pattern cached."""
    return format_datetime(value, _date_pattern(str(locale)), None, locale)


def _local(moment: datetime, book: Book | None) -> datetime:
    zone = book_zone(book)
    if zone is None:
        return moment
    if moment.tzinfo is None:  # stored naive: UTC
        moment = moment.replace(tzinfo=ZoneInfo("UTC"))
    return moment.astimezone(zone)


def day(value: date | datetime | None, book: Book | None = None,
        language: str | None = None) -> str:
    """The day: 07/12/2026 in British English, 07.12.2026 in German. A moment is first moved
    into the book's time zone, so the day is the book's."""
    if value is None:
        return ""
    locale = reader_locale(book, language)
    if isinstance(value, datetime):
        value = _local(value, book).date()
    return _isolated(_date_text(value, locale), locale)


def clock_time(value: datetime | time | None, book: Book | None = None,
               language: str | None = None) -> str:
    """The time of day in the book's zone: 09:00 in British English, 9:00 AM in American."""
    if value is None:
        return ""
    locale = reader_locale(book, language)
    if isinstance(value, datetime):
        value = _local(value, book).timetz()
    return _isolated(format_time(value, "short", locale=locale), locale)


def moment(value: datetime | None, book: Book | None = None,
           language: str | None = None) -> str:
    """Day and time in the book's zone: 07/12/2026 09:00."""
    if value is None:
        return ""
    locale = reader_locale(book, language)
    local = _local(value, book)
    text = (f"{_date_text(local.date(), locale)} "
            f"{format_time(local.timetz(), 'short', locale=locale)}")
    return _isolated(text, locale)


def is_past(value: datetime | None) -> bool:
    """Whether a moment has come (by the app's clock): an action planned for it goes out as
    soon as it may, so pages say "when approved", not a day gone by."""
    if value is None:
        return False
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo("UTC"))
    return value <= clock.now()


def _book(context: Context) -> Book | None:
    """The organisation a page is about: `org`, or the overview's `view.org`."""
    org = context.get("org")
    if org is None:
        org = getattr(context.get("view"), "org", None)
    return org if hasattr(org, "timezone") else None


def _with_book(function: Callable[..., str]) -> Callable[..., str]:
    """A Jinja filter of `function`, given the page's book."""

    @pass_context
    def page_filter(context: Context, value: Any, *args: Any) -> str:
        return function(value, *args, book=_book(context))

    return page_filter


def _day_of_any_style(value: Any, _style: str | None = None, *, book: Book | None) -> str:
    """`day` and `date`; a style argument from older templates is accepted and ignored:
    there is one date format."""
    return day(value, book)


def init_formatting(app: Flask) -> None:
    on_day = _with_book(_day_of_any_style)
    app.jinja_env.filters.update(money=_with_book(money), number=_with_book(number),
                                 percent=_with_book(percent), day=on_day, date=on_day,
                                 time=_with_book(clock_time), moment=_with_book(moment))
    app.jinja_env.globals["is_past"] = is_past
