"""app/formatting.py: the reader's language, the book's country, currency and time zone."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal

from flask import Flask, render_template_string
from flask_babel import Babel

from app.formatting import (
    LTR_ISOLATE,
    POP_ISOLATE,
    clock_time,
    day,
    init_formatting,
    moment,
    money,
    number,
    percent,
    reader_locale,
)


@dataclass
class Book:
    country: str
    timezone: str


UK = Book("GB", "Europe/London")
US = Book("US", "America/New_York")
NORWAY = Book("NO", "Europe/Oslo")


def _request(language: str, accept: str = ""):  # type: ignore[no-untyped-def]
    app = Flask(__name__)
    Babel(app, locale_selector=lambda: language)
    return app.test_request_context("/", headers={"Accept-Language": accept or language})


def test_a_uk_book_in_english_and_in_german() -> None:
    with _request("en"):
        assert money(Decimal("1480"), "GBP", UK) == "£1,480.00"
        assert day(date(2026, 12, 7), UK) == "07/12/2026"
    with _request("de"):
        assert re.fullmatch(r"1\.480,00\s£", money(Decimal("1480"), "GBP", UK))
        assert day(date(2026, 12, 7), UK) == "07.12.2026"


def test_the_book_country_gives_the_region_else_the_browser_else_the_language() -> None:
    with _request("en", "en-US"):
        assert str(reader_locale(UK)) == "en_GB"  # the book's country first
        assert str(reader_locale(None)) == "en_US"
        assert day(date(2026, 12, 7), US) == "12/7/2026"
    with _request("de"):
        assert str(reader_locale(UK)) == "de"  # no German of Britain: German's own ways
    with _request("nb", "nb-NO"):
        assert str(reader_locale(NORWAY)) == "nb_NO"


def test_times_and_moments_are_the_book_clock() -> None:
    winter = datetime(2026, 12, 7, 23, 30, tzinfo=UTC)
    with _request("en"):
        assert clock_time(winter, UK) == "23:30"
        assert day(winter, Book("GB", "Europe/Oslo")) == "08/12/2026"  # the next day there
        assert moment(winter, UK) == "07/12/2026 23:30"
        assert clock_time(time(9, 5), UK) == "09:05"
    with _request("de"):
        assert moment(winter, UK) == "07.12.2026 23:30"


def test_numbers_and_percentages() -> None:
    with _request("en"):
        assert number(Decimal("1234.5"), UK) == "1,234.5"
        assert percent(Decimal("8.5"), UK) == "8.5%"
        assert money(Decimal("-3"), "GBP", UK) == "-£3.00"
        assert money(Decimal("12.5"), None, UK) == "12.50"
    with _request("de"):
        assert number(Decimal("1234.5"), UK) == "1.234,5"
        assert re.fullmatch(r"8,5\s%", percent(Decimal("8.5"), UK))
    with _request("pl"):
        assert re.fullmatch(r"1\s?480,00\sGBP", money(Decimal("1480"), "GBP", UK))


def test_right_to_left_values_are_isolated_left_to_right() -> None:
    with _request("he"):
        written = money(Decimal("-3"), "GBP", UK)
        assert written.startswith(LTR_ISOLATE) and written.endswith(POP_ISOLATE)
        # The minus stays in front: no right-to-left mark inside the isolate.
        assert written.strip(LTR_ISOLATE + POP_ISOLATE).startswith("-3.00")
        assert "\u200f" not in written and "\u200e" not in written
        assert day(date(2026, 12, 7), UK).strip(LTR_ISOLATE + POP_ISOLATE) == "7.12.2026"
    with _request("en"):
        assert LTR_ISOLATE not in money(Decimal("-3"), "GBP", UK)


def test_nothing_to_show_is_empty() -> None:
    with _request("en"):
        assert money(None, "GBP") == day(None) == clock_time(None) == moment(None) == ""
        assert number(None) == percent(None) == ""


def test_the_filters_take_the_book_from_the_page() -> None:
    app = Flask(__name__)
    Babel(app, locale_selector=lambda: "en")
    init_formatting(app)
    page = ("{{ amount|money('GBP') }} {{ when|day('short') }} {{ when|date }} "
            "{{ at|moment }} {{ rate|percent }}")
    with app.test_request_context("/", headers={"Accept-Language": "en-US"}):
        written = render_template_string(page, org=UK, amount=Decimal("1480"),
                                         when=date(2026, 12, 7), rate=Decimal("8"),
                                         at=datetime(2026, 7, 1, 8, 0, tzinfo=UTC))
        overview = render_template_string("{{ when|day }}", view=Overview(UK),
                                          when=date(2026, 12, 7))
    assert written == "£1,480.00 07/12/2026 07/12/2026 01/07/2026 09:00 8%"  # London's summer
    assert overview == "07/12/2026"


@dataclass
class Overview:
    org: Book
