"""QuickBooks answers to records, and the query builder, pinned on literal values."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

from connectors.quickbooks import (
    _json,
    contact_record,
    invoice_record,
    organisation_record,
    payment_records,
    qbo_timestamp,
    quote,
    request_id,
    select,
)


def answer(text: str) -> dict:  # type: ignore[type-arg]
    return json.loads(text, parse_float=Decimal)


INVOICE = answer("""{
  "Id": "130", "SyncToken": "3", "DocNumber": "1037", "TxnDate": "2026-10-01",
  "DueDate": "2026-10-31", "CustomerRef": {"value": "58", "name": "Amy's Bird Sanctuary"},
  "CurrencyRef": {"value": "USD", "name": "United States Dollar"},
  "TotalAmt": 362.07, "Balance": 100.01, "PrivateNote": "",
  "MetaData": {"CreateTime": "2026-10-01T09:00:00-07:00",
               "LastUpdatedTime": "2026-11-03T16:15:22-08:00"}}""")


def test_an_open_invoice_becomes_a_record_with_exact_money_and_utc_time() -> None:
    record = invoice_record(INVOICE)
    assert record.provider_id == "130" and record.number == "1037"
    assert record.contact_provider_id == "58" and record.currency == "USD"
    assert record.issue_date == date(2026, 10, 1) and record.due_date == date(2026, 10, 31)
    assert (record.total, record.amount_due, record.amount_paid) == (
        Decimal("362.07"), Decimal("100.01"), Decimal("262.06"))
    assert record.status == "open" and record.provider_status == "Open"
    assert record.updated_at == datetime(2026, 11, 4, 0, 15, 22, tzinfo=UTC)


def test_paid_voided_and_deleted_invoices() -> None:
    assert invoice_record({**INVOICE, "Balance": 0}).status == "paid"
    voided = {**INVOICE, "TotalAmt": 0, "Balance": 0, "PrivateNote": "Voided"}
    assert invoice_record(voided).status == "voided"
    # A zero invoice that was never voided is simply settled.
    assert invoice_record({**INVOICE, "TotalAmt": 0, "Balance": 0}).status == "paid"
    deleted = invoice_record({"domain": "QBO", "status": "Deleted", "Id": "130",
                              "MetaData": {"LastUpdatedTime": "2026-11-05T10:00:00-08:00"}})
    assert (deleted.status, deleted.number, deleted.provider_id) == ("deleted", "", "130")


def test_a_payment_over_two_invoices_is_two_allocations_and_a_deletion_its_bare_id() -> None:
    raw = answer("""{"Id": "77", "TxnDate": "2026-11-02", "TotalAmt": 150.00,
      "CurrencyRef": {"value": "USD"},
      "Line": [{"Amount": 100.00, "LinkedTxn": [{"TxnId": "130", "TxnType": "Invoice"}]},
               {"Amount": 50.00, "LinkedTxn": [{"TxnId": "131", "TxnType": "Invoice"}]},
               {"Amount": 5.00, "LinkedTxn": [{"TxnId": "9", "TxnType": "CreditMemo"}]}],
      "MetaData": {"LastUpdatedTime": "2026-11-02T08:00:00-08:00"}}""")
    records = payment_records(raw)
    assert [(r.provider_id, r.invoice_provider_id, r.amount) for r in records] == [
        ("77:130", "130", Decimal("100.00")), ("77:131", "131", Decimal("50.00"))]
    assert records[0].paid_on == date(2026, 11, 2) and records[0].currency == "USD"
    gone = payment_records({"status": "Deleted", "Id": "77", "domain": "QBO",
                            "MetaData": {"LastUpdatedTime": "2026-11-03T08:00:00-08:00"}})
    assert [(r.provider_id, r.invoice_provider_id, r.status) for r in gone] == [
        ("77", None, "deleted")]


def test_customers_and_the_company() -> None:
    customer = contact_record({"Id": "58", "DisplayName": "Amy's Bird Sanctuary",
                               "PrimaryEmailAddr": {"Address": "birds@example.com"},
                               "Active": False})
    assert (customer.name, customer.email, customer.archived) == (
        "Amy's Bird Sanctuary", "birds@example.com", True)
    org = organisation_record("9130", {"CompanyName": "Craig's", "Country": "US",
                                       "DefaultTimeZone": "America/Los_Angeles"},
                              {"CurrencyPrefs": {"HomeCurrency": {"value": "USD"}}})
    assert (org.name, org.country, org.timezone, org.base_currency) == (
        "Craig's", "US", "America/Los_Angeles", "USD")
    uk = organisation_record("1", {"CompanyName": "K", "Country": "UK",
                                   "DefaultTimeZone": "Not/AZone"}, {})
    assert (uk.country, uk.timezone) == ("GB", "Europe/London")


def test_the_query_builder_output_is_literal_and_escapes_quotes() -> None:
    since = datetime(2026, 11, 24, 10, 0, 5, tzinfo=UTC)
    assert select("Invoice", (f"MetaData.LastUpdatedTime >= {quote(qbo_timestamp(since))}",),
                  "MetaData.LastUpdatedTime", 1001) == (
        "SELECT * FROM Invoice WHERE MetaData.LastUpdatedTime >= '2026-11-24T10:00:05+00:00' "
        "ORDERBY MetaData.LastUpdatedTime STARTPOSITION 1001 MAXRESULTS 1000")
    hostile = "Bob's ' OR '1'='1"
    assert select("Item", (f"Name = {quote(hostile)}",)) == (
        "SELECT * FROM Item WHERE Name = 'Bob\\'s \\' OR \\'1\\'=\\'1' "
        "STARTPOSITION 1 MAXRESULTS 1000")


def test_request_ids_fit_in_fifty_characters_and_stay_stable() -> None:
    assert request_id("12:345:reminder:2:email") == "12:345:reminder:2:email"
    long_key = "123456:98765432:fee:statutory-interest-de-b2b:17:line"
    assert len(long_key) > 50
    assert request_id(long_key) == request_id(long_key) and len(request_id(long_key)) == 50


def test_request_bodies_carry_money_exactly() -> None:
    body = _json({"Line": [{"Amount": Decimal("0.10") + Decimal("0.20"), "Qty": 1}],
                  "Note": "a \"quoted\" word"})
    assert body == '{"Line":[{"Amount":0.30,"Qty":1}],"Note":"a \\"quoted\\" word"}'
