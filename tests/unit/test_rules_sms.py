"""The SMS channel's pure rules: numbers, segments, texts, quiet hours and replies."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time
from decimal import Decimal

import pytest

from rules.messages import SAMPLE
from rules.sms import (
    may_text_at,
    next_text_moment,
    number_for,
    reply_keyword,
    segments_of,
    sms_text,
    window_of,
    zones_for,
)

# phonenumbers' own example numbers, no real person's.
GB_MOBILE, GB_LANDLINE = "07400 123456", "0121 234 5678"


def test_mobile_first_then_phone_in_e164() -> None:
    assert number_for(GB_MOBILE, GB_LANDLINE, "GB").e164 == "+447400123456"
    assert number_for(None, GB_MOBILE, "gb").e164 == "+447400123456"
    assert number_for(GB_LANDLINE, GB_MOBILE, "GB").e164 == "+447400123456"
    assert number_for("+49 1512 3456789", None, "GB").e164 == "+4915123456789"
    assert number_for("512 345 678", None, "PL").e164 == "+48512345678"
    assert number_for("050-234-5678", None, "IL").e164 == "+972502345678"
    assert number_for("(201) 555-0123", None, "US").e164 == "+12015550123"  # mobile or fixed


@pytest.mark.parametrize(("mobile", "phone", "country", "reason"), [
    (None, None, "GB", "no_number"), ("", " ", "GB", "no_number"),
    ("call me", None, "GB", "unparseable"), ("12", None, "GB", "unparseable"),
    ("07400 123456", None, None, "unparseable"),  # national, and no country to read it in
    (None, GB_LANDLINE, "GB", "not_mobile"), (None, "030 123456", "DE", "not_mobile"),
    ("abc", GB_LANDLINE, "GB", "unparseable"),  # the mobile's reason, the more telling
])
def test_no_text_for_landlines_and_unparseable_numbers(mobile: str | None, phone: str | None,
                                                       country: str | None,
                                                       reason: str) -> None:
    found = number_for(mobile, phone, country)
    assert (found.e164, found.reason) == (None, reason)


def test_segments_gsm7_and_ucs2() -> None:
    assert segments_of("a" * 160).segments == 1 and segments_of("a" * 161).segments == 2
    assert segments_of("a" * 306).segments == 2 and segments_of("a" * 307).segments == 3
    assert segments_of("€" * 80).segments == 1  # the extension table counts twice
    assert (segments_of("ą" * 70).encoding, segments_of("ą" * 71).segments) == ("UCS-2", 2)
    assert segments_of("😀" * 35).segments == 1 and segments_of("😀" * 36).segments == 2
    assert segments_of("x" * 161).cost(Decimal("0.05")) == Decimal("0.10")
    assert segments_of("x").cost(None) is None


@pytest.mark.parametrize(("language", "encoding"), [
    ("en", "GSM-7"), ("de", "GSM-7"), ("nb", "GSM-7"), ("pl", "UCS-2"), ("he", "UCS-2")])
@pytest.mark.parametrize("tone", ["friendly", "firm", "final"])
def test_texts_in_five_languages_carry_the_link_and_count(language: str, encoding: str,
                                                          tone: str) -> None:
    context = replace(SAMPLE, locale=language, currency="GBP")
    text = sms_text(context, tone)
    assert "INV-0042" in text and SAMPLE.payment_link in text and "\n" not in text
    counted = segments_of(text)
    assert counted.encoding == encoding and counted.characters == len(text)
    if encoding == "UCS-2":
        units = len(text.encode("utf-16-le")) // 2
        assert counted.segments == (1 if units <= 70 else -(-units // 67)) > 1
    assert "INV-0042" in sms_text(replace(context, payment_link=None), tone)


def test_polish_diacritics_change_the_count() -> None:
    plain = "Faktura INV-1 na kwote 100 zl jest nieoplacona od 12 dni. " * 2
    accented = "Faktura INV-1 na kwotę 100 zł jest nieopłacona od 12 dni. " * 2
    assert segments_of(plain).segments == 1 and segments_of(accented).segments == 2


def test_the_window_is_cut_to_the_laws_hours() -> None:
    assert window_of(time(9), 8) == (time(9), time(17))
    assert window_of(time(0), 24) == (time(8), time(21))
    assert window_of(time(6), 16) == (time(8), time(21))


def test_quiet_hours_follow_the_customers_zone() -> None:
    # 10:00 UTC on a Tuesday: 10:00 in London, 05:00 in New York, 21:00 in Sydney.
    moment = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    london = zones_for("+447400123456", "Europe/London")
    assert may_text_at(moment, london, time(9), 8, "GB")
    new_york = zones_for("+12015550123", None)
    assert new_york == ("America/New_York",)
    assert not may_text_at(moment, new_york, time(9), 8, "US")
    assert next_text_moment(moment, new_york, time(9), 8, "US") == \
        datetime(2026, 11, 24, 14, 0, tzinfo=UTC)  # 09:00 in New York
    sydney = ("Australia/Sydney",)
    assert not may_text_at(moment, sydney, time(0), 24, "AU")  # 21:00 there: past the law's
    # An Australian mobile spans Perth to Lord Howe: the hours must hold in every zone.
    australia = zones_for("+61412345678", None)
    assert len(australia) > 1
    noon_sydney = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)  # 12:00 Sydney, 09:00 Perth
    assert may_text_at(noon_sydney, australia, time(0), 24, "AU") is False  # Cocos: 07:30
    assert next_text_moment(noon_sydney, australia, time(0), 24, "AU") is not None
    # Inside the hours a text goes at once, not at the next quarter hour.
    inside = datetime(2026, 11, 24, 15, 7, 30, tzinfo=UTC)  # 10:07:30 in New York
    assert next_text_moment(inside, new_york, time(9), 8, "US") == inside


def test_no_texts_on_public_holidays_or_weekends() -> None:
    boxing_day = datetime(2026, 12, 26, 11, 0, tzinfo=UTC)  # a Saturday too
    christmas = datetime(2026, 12, 25, 11, 0, tzinfo=UTC)  # a Friday
    london = ("Europe/London",)
    assert not may_text_at(christmas, london, time(9), 8, "GB")
    assert not may_text_at(boxing_day, london, time(9), 8, "GB")
    assert next_text_moment(christmas, london, time(9), 8, "GB") == \
        datetime(2026, 12, 29, 9, 0, tzinfo=UTC)  # Monday 28th is the Boxing Day substitute
    nationalfeiertag = datetime(2026, 10, 3, 9, 0, tzinfo=UTC)
    assert not may_text_at(nationalfeiertag, ("Europe/Berlin",), time(9), 8, "DE")


@pytest.mark.parametrize(("body", "meaning"), [
    ("STOP", "opt_out"), (" stop ", "opt_out"), ("Stop.", "opt_out"), ("unsubscribe", "opt_out"),
    ("STOPP", "opt_out"), ("Abmelden", "opt_out"), ("avslutt", "opt_out"),
    ("REZYGNACJA", "opt_out"), ("Wypisz", "opt_out"), ("עצור", "opt_out"), ("הסר", "opt_out"),
    ("START", "opt_in"), ("unstop", "opt_in"), ("Tak", "opt_in"), ("התחל", "opt_in"),
    ("Nie mam teraz pieniędzy", None), ("I will pay on Friday, stop texting", None), ("", None),
])
def test_replies(body: str, meaning: str | None) -> None:
    assert reply_keyword(body) == meaning


def test_an_alphanumeric_sender_only_where_the_country_takes_one() -> None:
    from rules.sms import sender_for

    assert sender_for("Harbour", "+15005550006", "GB") == "Harbour"
    assert sender_for("Harbour", "+15005550006", "US") == "+15005550006"
    assert sender_for("Harbour", "", "CA") is None
    assert sender_for("+447400123456", "", "US") == "+447400123456"


def test_weekends_follow_the_organisation_holidays_never() -> None:
    saturday = datetime(2026, 11, 28, 11, 0, tzinfo=UTC)
    christmas = datetime(2026, 12, 25, 11, 0, tzinfo=UTC)
    london = ("Europe/London",)
    assert not may_text_at(saturday, london, time(9), 8, "GB")
    assert may_text_at(saturday, london, time(9), 8, "GB", weekdays_only=False)
    assert not may_text_at(christmas, london, time(9), 8, "GB", weekdays_only=False)
    assert not may_text_at(saturday.replace(hour=22), london, time(0), 24, "GB",
                           weekdays_only=False)
