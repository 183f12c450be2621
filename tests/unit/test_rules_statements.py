"""Monthly statements: aging, the text in each language, and when (and under which key) they go."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal

import pytest

from rules.calendar import OrgCalendar
from rules.messages import LOCALES
from rules.statements import (
    OpenItem,
    StatementSchedule,
    aging_bucket,
    build_statement,
    due_statement,
    render_statement,
)

AS_OF = date(2026, 11, 24)
ITEMS = [OpenItem("INV-0003", date(2026, 9, 1), date(2026, 10, 1), Decimal("120.00"), "GBP"),
         OpenItem("INV-0001", date(2026, 7, 1), date(2026, 7, 31), Decimal("80.50"), "GBP"),
         OpenItem("INV-0007", date(2026, 11, 10), date(2026, 12, 10), Decimal("40.00"), "EUR"),
         OpenItem("INV-0009", date(2026, 10, 1), date(2026, 10, 31), Decimal("0.00"), "GBP")]


def test_aging_buckets_have_inclusive_upper_bounds() -> None:
    assert [aging_bucket(d) for d in (-3, 0, 1, 30, 31, 60, 61, 90, 91)] == [
        "current", "current", "1-30", "1-30", "31-60", "31-60", "61-90", "61-90", "90+"]


def test_a_statement_lists_open_items_oldest_first_with_aging_per_currency() -> None:
    statement = build_statement("Harbour Bakery", "Dunwell Coffee", ITEMS, AS_OF, "en-GB",
                                "https://example.com/pay")
    assert [(line.item.number, line.days_overdue, line.bucket) for line in statement.lines] == [
        ("INV-0001", 116, "90+"), ("INV-0003", 54, "31-60"), ("INV-0007", 0, "current")]
    assert statement.aging == {
        "EUR": {"current": Decimal("40.00"), "1-30": 0, "31-60": 0, "61-90": 0, "90+": 0},
        "GBP": {"current": 0, "1-30": 0, "31-60": Decimal("120.00"), "61-90": 0,
                "90+": Decimal("80.50")}}
    assert statement.totals == {"EUR": Decimal("40.00"), "GBP": Decimal("200.50")}
    assert statement.period == "2026-11" and statement.language == "en"

    message = render_statement(statement)
    assert message.subject == "Statement of account from Dunwell Coffee on 24 November 2026"
    assert message.text == (
        "Hello Harbour Bakery,\n\n"
        "Here is your statement of account on 24 November 2026: every invoice that is still"
        " open with us.\n\n"
        "INV-0001: £80.50, due 31 July 2026 (116 days overdue)\n"
        "INV-0003: £120.00, due 1 October 2026 (54 days overdue)\n"
        "INV-0007: €40.00, due 10 December 2026\n\n"
        "Total EUR: €40.00\n"
        "Not yet due: €40.00; 1-30 days overdue: €0.00; 31-60 days: €0.00; 61-90 days: €0.00;"
        " over 90 days: €0.00\n\n"
        "Total GBP: £200.50\n"
        "Not yet due: £0.00; 1-30 days overdue: £0.00; 31-60 days: £120.00; 61-90 days: £0.00;"
        " over 90 days: £80.50\n\n"
        "You can pay here: https://example.com/pay\n\n"
        "If anything here does not match your records, please reply so that we can put it"
        " right.\n\n"
        "Kind regards,\nDunwell Coffee\n")
    assert '<a href="https://example.com/pay">' in message.html


def test_statements_speak_the_customers_language() -> None:
    def render(language: str):  # type: ignore[no-untyped-def]
        return render_statement(build_statement("Harbour Bakery", "Dunwell Coffee", ITEMS,
                                                AS_OF, language))

    german = render("de-AT")  # Babel puts a no-break space before the symbol
    assert german.subject == "Kontoauszug von Dunwell Coffee zum 24. November 2026"
    assert "INV-0001: 80,50\xa0£, fällig am 31. Juli 2026 (116 Tage überfällig)" in german.text
    assert "Summe GBP: 200,50\xa0£" in german.text
    assert "Hier können Sie bezahlen" not in german.text  # no link given
    assert render("no").subject == "Kontoutskrift fra Dunwell Coffee per 24. november 2026"
    assert "Razem GBP: 200,50\xa0GBP" in render("pl").text
    hebrew = render("he")
    assert hebrew.direction == "rtl" and 'dir="rtl"' in hebrew.html
    assert hebrew.subject.startswith("דף חשבון מאת Dunwell Coffee")
    for language in LOCALES:  # every shipped template renders, with and without a link
        assert "INV-0003" in render(language).text
    assert render("fr").locale == "en"


LONDON = OrgCalendar(timezone="Europe/London", country="GB")
OSLO = OrgCalendar(timezone="Europe/Oslo", country="NO")


def test_a_statement_is_due_from_its_local_moment_once_a_month() -> None:
    schedule = StatementSchedule(day_of_month=24, send_time=time(9, 0))
    before = due_statement(7, 42, "Harbour Bakery", 3, schedule, OSLO,
                           datetime(2026, 11, 24, 7, 59, tzinfo=UTC))
    assert before is None  # 08:59 in Oslo
    action = due_statement(7, 42, "Harbour Bakery", 3, schedule, OSLO,
                           datetime(2026, 11, 24, 8, 0, tzinfo=UTC))
    assert action is not None
    assert action.key == "7:contact42:statement:2026-11"
    # Filed under the customer, under no invoice of theirs.
    assert (action.kind, action.contact_id, action.invoice_id, action.channel) == (
        "statement", 42, None, "dunwell_email")
    assert action.scheduled_for == datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    assert action.reason == "Statement for 2026-11 to Harbour Bakery (3 open items)"
    assert dict(action.details) == {"period": "2026-11"}
    # Later in the month: the same key (the ledger makes it a no-op).
    later = due_statement(7, 42, "Harbour Bakery", 1, schedule, LONDON,
                          datetime(2026, 11, 30, 12, 0, tzinfo=UTC))
    assert later is not None and later.key == action.key
    # Next month, before its day: nothing; then a new key.
    assert due_statement(7, 42, "Harbour Bakery", 3, schedule, LONDON,
                         datetime(2026, 12, 23, 12, 0, tzinfo=UTC)) is None
    december = due_statement(7, 42, "Harbour Bakery", 3, schedule, LONDON,
                             datetime(2026, 12, 24, 9, 0, tzinfo=UTC))
    assert december is not None and december.key == "7:contact42:statement:2026-12"
    # Nothing open: no statement.
    assert due_statement(7, 42, "Harbour Bakery", 0, schedule, LONDON,
                         datetime(2026, 12, 24, 9, 0, tzinfo=UTC)) is None


def test_the_statement_day_exists_in_every_month() -> None:
    with pytest.raises(ValueError, match="between 1 and 28"):
        StatementSchedule(day_of_month=31)
