"""Xero JSON -> domain records, on literal payloads."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

from connectors.xero import (
    invoice_record,
    organisation_record,
    page_floor,
    parse_xero_datetime,
    payment_record,
)

INVOICE = json.loads("""{
  "Type": "ACCREC", "InvoiceID": "243216c5-369e-4056-ac67-05388f86dc81",
  "InvoiceNumber": "INV-0042", "Contact": {"ContactID": "c1", "Name": "Ridgeway"},
  "Date": "/Date(1763942400000+0000)/", "DateString": "2025-11-24T00:00:00",
  "DueDate": "/Date(1766275200000+0000)/", "DueDateString": "2025-12-21T00:00:00",
  "CurrencyCode": "GBP", "Status": "AUTHORISED", "Total": 1200.10, "AmountDue": 200.05,
  "AmountPaid": 1000.05, "UpdatedDateUTC": "/Date(1763993045123+0000)/"
}""", parse_float=Decimal)


def test_invoice_record_keeps_money_exact_and_dates_as_calendar_dates() -> None:
    record = invoice_record(INVOICE)
    assert record.total == Decimal("1200.10") and record.amount_due == Decimal("200.05")
    assert record.amount_paid == Decimal("1000.05")
    assert record.due_date == date(2025, 12, 21) and record.issue_date == date(2025, 11, 24)
    assert record.status == "open" and record.provider_status == "AUTHORISED"
    assert record.updated_at == datetime(2025, 11, 24, 14, 4, 5, 123000, tzinfo=UTC)
    assert record.contact_provider_id == "c1"


def test_invoice_statuses_map_to_what_collections_needs() -> None:
    def status(s: str, due: str) -> str:
        return invoice_record({**INVOICE, "Status": s, "AmountDue": Decimal(due)}).status

    assert status("DRAFT", "10") == "draft"
    assert status("SUBMITTED", "10") == "draft"
    assert status("AUTHORISED", "0") == "paid"
    assert status("PAID", "0") == "paid"
    assert status("VOIDED", "0") == "voided"
    assert status("DELETED", "0") == "deleted"


def test_dates_with_and_without_offsets() -> None:
    assert parse_xero_datetime("/Date(0)/") == datetime(1970, 1, 1, tzinfo=UTC)
    assert parse_xero_datetime("/Date(1552326816230+1300)/") == datetime(
        2019, 3, 11, 17, 53, 36, 230000, tzinfo=UTC)
    assert parse_xero_datetime("2019-03-11T17:53:36") == datetime(2019, 3, 11, 17, 53, 36,
                                                                  tzinfo=UTC)
    assert parse_xero_datetime(None) is None


def test_payment_and_organisation_records() -> None:
    payment = payment_record({"PaymentID": "p1", "Date": "/Date(1763942400000+0000)/",
                              "Amount": Decimal("99.99"), "Status": "AUTHORISED",
                              "Invoice": {"InvoiceID": "i1", "CurrencyCode": "EUR"}})
    assert (payment.amount, payment.currency, payment.paid_on, payment.status) == (
        Decimal("99.99"), "EUR", date(2025, 11, 24), "active")
    org = organisation_record("t1", {"Name": "Fjellbekk Design AS", "CountryCode": "NO",
                                     "Timezone": "WEUROPESTANDARDTIME", "BaseCurrency": "NOK"})
    assert (org.timezone, org.country, org.base_currency) == ("Europe/Oslo", "NO", "NOK")
    uk = organisation_record("t2", {"CountryCode": "GB", "Timezone": "GMTSTANDARDTIME"})
    assert uk.timezone == "Europe/London"


def test_page_floor() -> None:
    assert [page_floor(n) for n in (0, 1, 1000, 1001, 50000)] == [1, 1, 1, 2, 50]
