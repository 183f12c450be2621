"""Retainer balances and top-up requests (rules/retainers.py), worked by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from rules import OrgCalendar, default_policy
from rules.retainers import (
    RetainerInvoice,
    RetainerTerms,
    TopUp,
    due_top_up,
    retainer_balance,
    retainer_history,
    top_up_message,
)

UK = OrgCalendar("Europe/London", "GB", "ENG")
TERMS = RetainerTerms(currency="GBP", threshold=Decimal("500.00"),
                      top_up_to=Decimal("2000.00"), started_on=date(2026, 10, 1))
INVOICES = [
    RetainerInvoice(11, "R-1", date(2026, 10, 15), Decimal("800.00"), "GBP"),
    RetainerInvoice(12, "R-2", date(2026, 11, 1), Decimal("900.00"), "GBP"),
    RetainerInvoice(13, "R-0", date(2026, 9, 30), Decimal("100.00"), "GBP"),  # before the start
    RetainerInvoice(14, "R-USD", date(2026, 10, 20), Decimal("50.00"), "USD"),  # not its currency
]
TUESDAY_10AM = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def test_invoices_draw_the_balance_down() -> None:
    entries = retainer_history(TERMS, [TopUp(date(2026, 10, 1), Decimal("2000.00"))], INVOICES)
    assert [(e.day, e.kind, e.amount, e.balance, e.number) for e in entries] == [
        (date(2026, 10, 1), "top_up", Decimal("2000.00"), Decimal("2000.00"), None),
        (date(2026, 10, 15), "drawdown", Decimal("-800.00"), Decimal("1200.00"), "R-1"),
        (date(2026, 11, 1), "drawdown", Decimal("-900.00"), Decimal("300.00"), "R-2")]
    assert retainer_balance(entries) == Decimal("300.00")
    assert retainer_balance([]) == Decimal(0)


def test_a_top_up_the_same_day_comes_first_and_the_balance_never_goes_below_zero() -> None:
    entries = retainer_history(
        TERMS, [TopUp(date(2026, 10, 1), Decimal("2000.00")),
                TopUp(date(2026, 11, 20), Decimal("1700.00"))],
        [*INVOICES, RetainerInvoice(15, "R-3", date(2026, 11, 20), Decimal("2500.00"), "GBP")])
    assert [(e.kind, e.amount, e.balance) for e in entries[-2:]] == [
        ("top_up", Decimal("1700.00"), Decimal("2000.00")),
        ("drawdown", Decimal("-2000.00"), Decimal("0.00"))]
    with pytest.raises(ValueError, match="positive"):
        retainer_history(TERMS, [TopUp(date(2026, 10, 1), Decimal("-1"))], [])
    with pytest.raises(ValueError, match="more than its threshold"):
        RetainerTerms("GBP", Decimal("500"), Decimal("500"), date(2026, 10, 1))


def test_a_top_up_request_below_the_threshold_once_per_top_up_received() -> None:
    entries = retainer_history(TERMS, [TopUp(date(2026, 10, 1), Decimal("2000.00"))], INVOICES)
    action = due_top_up(1, 5, "Acme Ltd", TERMS, 1, entries, default_policy(), UK,
                        TUESDAY_10AM)
    assert action is not None
    assert (action.key, action.kind, action.contact_id, action.invoice_id, action.amount,
            action.currency) == ("1:contact5:retainer_top_up:1", "retainer_top_up", 5, None,
                                 Decimal("1700.00"), "GBP")
    assert action.reason == ("Retainer top-up for Acme Ltd: balance GBP 300.00 below"
                             " GBP 500.00; asking for GBP 1700.00")
    # Outside the sending window (20:00), or above the threshold: nothing.
    evening = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)
    assert due_top_up(1, 5, "Acme Ltd", TERMS, 1, entries, default_policy(), UK,
                      evening) is None
    assert due_top_up(1, 5, "Acme Ltd", TERMS, 1, entries[:2], default_policy(), UK,
                      TUESDAY_10AM) is None


def test_the_top_up_message() -> None:
    subject, text = top_up_message("Acme Ltd", "Harbour Coffee", "GBP", {
        "balance": "300.00", "threshold": "500.00", "top_up_to": "2000.00"},
        Decimal("1700.00"))
    assert subject == "Please top up your retainer with Harbour Coffee: GBP 1700.00"
    assert text == ("Dear Acme Ltd,\n\nYour retainer with Harbour Coffee stands at GBP 300.00,"
                    " below the agreed GBP 500.00.\nPlease pay in GBP 1700.00 to bring it back"
                    " to GBP 2000.00.\n\nKind regards,\nHarbour Coffee\n")


def test_the_top_up_message_in_the_contacts_language() -> None:
    details = {"balance": "300.00", "threshold": "500.00", "top_up_to": "2000.00"}
    subject, text = top_up_message("Fjord AS", "Harbour Coffee", "NOK", details,
                                   Decimal("1700.00"), "nb")
    assert subject == "Vennligst fyll på forskuddet ditt hos Harbour Coffee: NOK 1700.00"
    assert text == ("Hei Fjord AS,\n\nForskuddet ditt hos Harbour Coffee er nå NOK 300.00, under"
                    " avtalte NOK 500.00.\nVennligst betal inn NOK 1700.00 for å bringe det"
                    " tilbake til NOK 2000.00.\n\nMed vennlig hilsen\nHarbour Coffee\n")
    for language in ("de", "pl", "he"):
        subject, text = top_up_message("A", "B", "EUR", details, Decimal("1700.00"), language)
        assert "EUR 1700.00" in subject and "EUR 300.00" in text and "EUR 2000.00" in text
