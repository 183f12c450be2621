"""Hostile and malformed input at the edges: the policy schema, the connectors' reading of
provider answers, and the webhook endpoints. Each answers with its own clear error and writes
nothing half; no other exception escapes."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from connectors import quickbooks, xero
from connectors.base import ConnectorError, InvoiceRecord, MalformedAnswer
from rules.policy import Policy, PolicyError, policy_from_json

JSON_LEAF = (st.none() | st.booleans() | st.integers(-10**30, 10**30)
             | st.decimals(allow_nan=True, allow_infinity=True) | st.text(max_size=40)
             | st.sampled_from(["", "NaN", "-Infinity", "1e999999", "-5.00", "2026-02-30",
                                "/Date(99999999999999999+0000)/", "/Date(-1)/", "GBP", "XXX",
                                "ZZZ", "usd", "2026-11-24T25:00:00", "0x10"]))
JSON = st.recursive(JSON_LEAF, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=20)

POLICY_KEYS = ["version", "reminder_steps", "late_fees", "send_time", "send_window_hours",
               "business_days_only", "minimum_amount", "early_payment_discount",
               "payment_plans", "escalation", "repeat", "language", "offset_days", "channel",
               "tone", "template", "rule", "kind", "amount", "percent", "grace_days", "id",
               "stop_service", "webhook_url", "after_days", "annual_rate_percent"]
POLICY_LIKE = st.recursive(
    JSON_LEAF, lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.sampled_from(POLICY_KEYS), inner, max_size=6), max_leaves=25)


@settings(max_examples=400, deadline=None)
@given(st.one_of(JSON, POLICY_LIKE, st.text(max_size=200)))
@example({"version": Decimal("sNaN")})  # once raised decimal.InvalidOperation when compared
def test_any_json_is_a_policy_or_a_policy_error(data: Any) -> None:
    try:
        policy = policy_from_json(data if isinstance(data, dict | str) else json.dumps(
            data, default=str))
    except PolicyError as exc:
        assert str(exc)  # says what is wrong
    else:
        assert isinstance(policy, Policy)


XERO_INVOICE = {
    "Type": "ACCREC", "InvoiceID": "243216c5", "InvoiceNumber": "INV-0042",
    "Contact": {"ContactID": "c1", "Name": "Ridgeway"}, "Date": "/Date(1763942400000+0000)/",
    "DateString": "2025-11-24T00:00:00", "DueDate": "/Date(1766275200000+0000)/",
    "DueDateString": "2025-12-21T00:00:00", "CurrencyCode": "GBP", "Status": "AUTHORISED",
    "Total": Decimal("1200.10"), "AmountDue": Decimal("200.05"),
    "AmountPaid": Decimal("1000.05"), "UpdatedDateUTC": "/Date(1763993045123+0000)/"}
XERO_CONTACT = {"ContactID": "c1", "Name": "Ridgeway", "EmailAddress": "a@example.com",
                "IsCustomer": True, "ContactStatus": "ACTIVE",
                "UpdatedDateUTC": "/Date(1763993045123+0000)/"}
XERO_PAYMENT = {"PaymentID": "p1", "Invoice": {"InvoiceID": "243216c5", "CurrencyCode": "GBP"},
                "Amount": Decimal("10.00"), "Date": "/Date(1763942400000+0000)/",
                "Status": "AUTHORISED", "UpdatedDateUTC": "/Date(1763993045123+0000)/"}
QBO_INVOICE = {
    "Id": "130", "SyncToken": "3", "DocNumber": "1037", "TxnDate": "2026-10-01",
    "DueDate": "2026-10-31", "CustomerRef": {"value": "58", "name": "Amy's"},
    "CurrencyRef": {"value": "USD"}, "TotalAmt": Decimal("362.07"),
    "Balance": Decimal("100.01"), "PrivateNote": "",
    "MetaData": {"LastUpdatedTime": "2026-11-03T16:15:22-08:00"}}
QBO_CUSTOMER = {"Id": "58", "DisplayName": "Amy's", "PrimaryEmailAddr": {"Address": "a@b.c"},
                "Active": True, "MetaData": {"LastUpdatedTime": "2026-11-03T16:15:22-08:00"}}
QBO_PAYMENT = {"Id": "9", "TotalAmt": Decimal("10"), "TxnDate": "2026-10-05",
               "CurrencyRef": {"value": "USD"},
               "Line": [{"Amount": Decimal("10"), "LinkedTxn": [{"TxnId": "130",
                                                                 "TxnType": "Invoice"}]}],
               "MetaData": {"LastUpdatedTime": "2026-11-03T16:15:22-08:00"}}

PARSERS = {
    "xero invoice": (xero.invoice_record, XERO_INVOICE),
    "xero contact": (xero.contact_record, XERO_CONTACT),
    "xero payment": (xero.payment_record, XERO_PAYMENT),
    "quickbooks invoice": (quickbooks.invoice_record, QBO_INVOICE),
    "quickbooks customer": (quickbooks.contact_record, QBO_CUSTOMER),
    "quickbooks payment": (quickbooks.payment_records, QBO_PAYMENT),
}


@st.composite
def mangled(draw: st.DrawFn, valid: dict[str, Any]) -> Any:
    """A real record with fields dropped and others replaced by anything JSON can hold; or no
    record at all."""
    if draw(st.integers(0, 19)) == 0:
        return draw(JSON)
    record = dict(valid)
    for key in draw(st.lists(st.sampled_from(sorted(valid)), max_size=4, unique=True)):
        del record[key]
    for key in draw(st.lists(st.sampled_from(sorted(valid)), max_size=4, unique=True)):
        record[key] = draw(JSON)
    return record


@pytest.mark.parametrize("name", sorted(PARSERS))
@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_mangled_provider_record_is_a_record_or_a_typed_error(name: str, data: Any) -> None:
    parse, valid = PARSERS[name]
    raw = data.draw(mangled(valid))
    try:
        parsed = parse(raw)
    except ConnectorError as exc:
        assert str(exc)
        return
    for record in parsed if isinstance(parsed, list) else [parsed]:
        assert record.provider_id
        if isinstance(record, InvoiceRecord):
            assert record.amount_due.is_finite() and record.amount_due >= 0
            assert record.currency == "" or len(record.currency) == 3


@pytest.mark.parametrize("parse, valid, change, message", [
    (xero.invoice_record, XERO_INVOICE, {"InvoiceID": None}, "Xero invoice could not be read"),
    (xero.invoice_record, XERO_INVOICE, {"AmountDue": Decimal("-5")}, "negative"),
    (xero.invoice_record, XERO_INVOICE, {"Total": "NaN"}, "total is not a number"),
    (xero.invoice_record, XERO_INVOICE, {"CurrencyCode": "ZZZ"}, "unknown currency 'ZZZ'"),
    (xero.invoice_record, XERO_INVOICE, {"DueDateString": "2026-02-30"},
     "ValueError: day is out of range for month"),
    (xero.invoice_record, XERO_INVOICE, {"Contact": "c1"}, "AttributeError"),
    (xero.invoice_record, XERO_INVOICE, {"Total": "twelve"}, "InvalidOperation"),
    (xero.payment_record, XERO_PAYMENT, {"Date": "/Date(99999999999999999+0000)/"},
     "Xero payment could not be read"),
    (quickbooks.invoice_record, QBO_INVOICE, {"Balance": Decimal("-1")}, "negative"),
    (quickbooks.invoice_record, QBO_INVOICE, {"CurrencyRef": {"value": "usd"}},
     "unknown currency 'usd'"),
    (quickbooks.invoice_record, QBO_INVOICE, {"TxnDate": 20261001}, "TypeError"),
    (quickbooks.payment_records, QBO_PAYMENT, {"Line": [{"LinkedTxn": "130"}]},
     "QuickBooks payment could not be read"),
    (quickbooks.contact_record, QBO_CUSTOMER, {"Id": None, "PrimaryEmailAddr": []},
     "QuickBooks contact could not be read"),
])
def test_each_kind_of_bad_answer_has_a_clear_typed_error(parse, valid, change,  # type: ignore[no-untyped-def]
                                                         message: str) -> None:
    raw = {k: v for k, v in {**valid, **change}.items() if v is not None}
    with pytest.raises(MalformedAnswer, match=message.replace("(", r"\(")):
        parse(raw)


def test_a_missing_due_date_is_read_as_none_not_guessed() -> None:
    raw = {k: v for k, v in XERO_INVOICE.items() if k not in ("DueDate", "DueDateString")}
    assert xero.invoice_record(raw).due_date is None
    raw_qbo = {k: v for k, v in QBO_INVOICE.items() if k != "DueDate"}
    assert quickbooks.invoice_record(raw_qbo).due_date is None


def test_a_huge_page_with_one_bad_record_fails_whole_before_anything_is_handed_on() -> None:
    """Pages are parsed whole (a list) before the sync writes them: one bad record stops the
    page, so nothing of it is half-written."""
    page = [{**QBO_INVOICE, "Id": str(i)} for i in range(20_000)]
    page[-1] = {**QBO_INVOICE, "Id": "bad", "TotalAmt": "lots"}
    with pytest.raises(MalformedAnswer, match="QuickBooks invoice could not be read"):
        [quickbooks.invoice_record(raw) for raw in page]  # how the connector reads a page


# -- webhooks --------------------------------------------------------------------------------


def _count_events(app) -> int:  # type: ignore[no-untyped-def]
    from sqlalchemy import func, select

    from store.db import db
    from store.models import WebhookEvent

    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(WebhookEvent)) or 0


WEBHOOK_KEYS = {"xero": "fuzz-xero-key", "quickbooks": "fuzz-intuit-verifier"}


@pytest.mark.db
@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(provider=st.sampled_from(["xero", "quickbooks"]),
       body=st.one_of(st.binary(max_size=300), JSON.map(lambda v: json.dumps(
           v, default=str).encode()), st.builds(lambda events: json.dumps(
               {"events": events, "eventNotifications": events}, default=str).encode(),
               st.lists(st.dictionaries(st.sampled_from(
                   ["resourceId", "tenantId", "eventCategory", "eventType", "eventDateUtc",
                    "realmId", "dataChangeEvent", "entities", "name", "id", "operation",
                    "lastUpdated", "resourceUrl", "tenantType", "sequence"]), JSON,
                   max_size=8), max_size=3))),
       signed=st.booleans())
def test_webhooks_answer_hostile_bodies_with_401_or_400_and_store_nothing(
        app, provider: str, body: bytes, signed: bool) -> None:  # type: ignore[no-untyped-def]
    from app.webhooks.services import SIGNATURE_HEADERS
    from connectors.webhooks import signature

    app.config.update(XERO_WEBHOOK_KEY=WEBHOOK_KEYS["xero"],
                      QUICKBOOKS_WEBHOOK_VERIFIER=WEBHOOK_KEYS["quickbooks"])
    before = _count_events(app)
    headers = {SIGNATURE_HEADERS[provider]: signature(WEBHOOK_KEYS[provider], body)
               if signed else "c2lnbmF0dXJl"}
    answer = app.test_client().post(f"/webhooks/{provider}", data=body, headers=headers,
                                    content_type="application/json")
    if not signed:
        assert answer.status_code == 401
    else:
        assert answer.status_code in (200, 400), answer.get_data(as_text=True)[:300]
        if answer.status_code == 400:
            assert json.loads(answer.get_data())["error"]
    if answer.status_code != 200:
        assert _count_events(app) == before
