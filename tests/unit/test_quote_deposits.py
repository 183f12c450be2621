"""Deposits on quotes (rules/deposits.py) and the quote records of both connectors."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from connectors import quickbooks, xero
from connectors.base import MalformedAnswer
from rules import OrgCalendar, default_policy
from rules.deposits import (
    QuoteState,
    due_quote_deposit_reminders,
    qualifies,
    quote_deposit_message,
    quote_expected_payments,
    quote_milestones,
    quote_qualifies,
)
from rules.invoice import InvoiceState
from rules.policy import DepositRule, Milestone, policy_from_json, policy_to_json

UK = OrgCalendar("Europe/London", "GB", "ENG")
SCHEDULE = (Milestone(percent=Decimal(30)), Milestone(percent=Decimal(30), due_offset_days=30),
            Milestone(percent=Decimal(40), due_offset_days=60))
RULE = DepositRule(threshold=Decimal("5000"), currency="GBP", schedule=SCHEDULE,
                   reminder_offsets=(0, 7), applies_to="quotes")
POLICY = default_policy().model_copy(update={"deposits": RULE})


def quote(status: str = "accepted", total: str = "11400.00", currency: str = "GBP",
          payments: tuple[tuple[date, Decimal], ...] = ()) -> QuoteState:
    return QuoteState(quote_id=3, org_id=1, number="QU-0001", status=status, currency=currency,
                      total=Decimal(total), accepted_on=date(2026, 11, 23), payments=payments)


def test_an_accepted_quote_owes_its_first_milestone_before_work_starts() -> None:
    [deposit] = quote_expected_payments(quote(), RULE)
    assert (deposit.index, deposit.count, deposit.percent, deposit.amount, deposit.cumulative,
            deposit.due_date, deposit.met_on, deposit.label) == (
        0, 3, Decimal(30), Decimal("3420.00"), Decimal("3420.00"), date(2026, 11, 23), None,
        "Deposit")


def test_milestones_due_on_the_same_day_as_the_first_are_all_owed_up_front() -> None:
    rule = RULE.model_copy(update={"schedule": (
        Milestone(percent=Decimal(20)), Milestone(percent=Decimal(10)),
        Milestone(percent=Decimal(70), due_offset_days=45))})
    assert quote_milestones(rule) == 2
    assert [(m.amount, m.cumulative) for m in quote_expected_payments(quote(), rule)] == [
        (Decimal("2280.00"), Decimal("2280.00")), (Decimal("1140.00"), Decimal("3420.00"))]


@pytest.mark.parametrize(("status", "total", "currency"), [
    ("sent", "11400.00", "GBP"), ("declined", "11400.00", "GBP"), ("invoiced", "11400.00", "GBP"),
    ("deleted", "11400.00", "GBP"), ("draft", "11400.00", "GBP"),
    ("accepted", "4999.99", "GBP"), ("accepted", "11400.00", "EUR")])
def test_only_accepted_quotes_at_or_above_the_threshold_in_its_currency(
        status: str, total: str, currency: str) -> None:
    assert not quote_qualifies(quote(status, total, currency), RULE)
    assert quote_expected_payments(quote(status, total, currency), RULE) == []
    assert quote_qualifies(quote("accepted", "5000.00"), RULE)


def test_applies_to_picks_invoices_quotes_or_both_and_invoices_stay_the_default() -> None:
    invoice = InvoiceState(invoice_id=7, org_id=1, number="INV-7", status="open",
                           issue_date=date(2026, 11, 2), due_date=date(2026, 12, 31),
                           total=Decimal("10000.00"), amount_due=Decimal("10000.00"),
                           currency="GBP")
    invoices_only = RULE.model_copy(update={"applies_to": "invoices"})
    both = RULE.model_copy(update={"applies_to": "both"})
    assert (qualifies(invoice, RULE), qualifies(invoice, invoices_only), qualifies(invoice, both)
            ) == (False, True, True)
    assert (quote_qualifies(quote(), RULE), quote_qualifies(quote(), invoices_only),
            quote_qualifies(quote(), both)) == (True, False, True)
    stored = {"threshold": "5000", "currency": "GBP", "schedule": [{"percent": "100"}]}
    policy = policy_from_json({**policy_to_json(default_policy()), "deposits": stored})
    assert policy.deposits is not None and policy.deposits.applies_to == "invoices"
    assert "applies_to" not in policy_to_json(policy)["deposits"]  # stored as before
    assert policy_to_json(default_policy().model_copy(update={"deposits": both}))[
        "deposits"]["applies_to"] == "both"
    with pytest.raises(Exception, match="applies_to"):
        policy_from_json({**policy_to_json(default_policy()),
                          "deposits": {**stored, "applies_to": "orders"}})


def test_payments_on_linked_invoices_meet_the_deposit_on_the_day_they_reach_it() -> None:
    paid = ((date(2026, 11, 25), Decimal("2000.00")), (date(2026, 11, 27), Decimal("1420.00")))
    [deposit] = quote_expected_payments(quote(payments=paid), RULE)
    assert deposit.met_on == date(2026, 11, 27)
    [short] = quote_expected_payments(quote(payments=paid[:1]), RULE)
    assert short.met_on is None


def test_reminders_fall_due_at_the_send_time_once_each_and_stop_when_met() -> None:
    before = datetime(2026, 11, 23, 8, 59, tzinfo=UTC)
    at = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    assert due_quote_deposit_reminders(quote(), set(), POLICY, UK, before) == []
    [first] = due_quote_deposit_reminders(quote(), set(), POLICY, UK, at)
    assert (first.key, first.kind, first.quote_id, first.scheduled_for, first.reason,
            first.amount, first.currency, first.channel, first.step_index,
            first.step_count) == (
        "1:quote3:deposit:0:0", "quote_deposit_reminder", 3,
        datetime(2026, 11, 23, 9, 0, tzinfo=UTC),
        "Deposit (30 %) of quote QU-0001: GBP 3420.00 due 2026-11-23", Decimal("3420.00"),
        "GBP", "dunwell_email", 0, 2)
    assert first.details == {"quote_id": "3", "milestone": "1", "milestones": "3",
                             "percent": "30", "share": "3420.00", "cumulative": "3420.00",
                             "milestone_due": "2026-11-23"}
    assert due_quote_deposit_reminders(quote(), {first.key}, POLICY, UK, at) == []
    week = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    [second] = due_quote_deposit_reminders(quote(), {first.key}, POLICY, UK, week)
    assert (second.key, second.amount) == ("1:quote3:deposit:0:1", Decimal("3420.00"))
    part = ((date(2026, 11, 26), Decimal("1000.00")),)
    [rest] = due_quote_deposit_reminders(quote(payments=part), {first.key}, POLICY, UK, week)
    assert rest.amount == Decimal("2420.00")
    met = ((date(2026, 11, 26), Decimal("3420.00")),)
    assert due_quote_deposit_reminders(quote(payments=met), {first.key}, POLICY, UK, week) == []
    assert due_quote_deposit_reminders(quote("invoiced"), set(), POLICY, UK, week) == []


@pytest.mark.parametrize(("language", "subject", "phrase"), [
    ("en", "The deposit for quote QU-0001: GBP 3420.00 due 2026-11-23",
     "As agreed, the deposit (30 %, GBP 3420.00) is due on 2026-11-23, before work starts"),
    ("de", "Die Anzahlung zu Angebot QU-0001: GBP 3420.00 fällig am 2026-11-23",
     "Wie vereinbart ist die Anzahlung (30 %, GBP 3420.00) vor Beginn der Arbeiten"),
    ("nb", "Forskuddet for tilbud QU-0001: GBP 3420.00 forfaller 2026-11-23",
     "Som avtalt forfaller forskuddet (30 %, GBP 3420.00) 2026-11-23, før arbeidet starter"),
    ("pl", "Zaliczka do oferty QU-0001: GBP 3420.00, termin płatności 2026-11-23",
     "Zgodnie z ustaleniami zaliczka (30 %, GBP 3420.00) jest płatna do 2026-11-23"),
    ("he", "המקדמה להצעת מחיר QU-0001: GBP 3420.00 לתשלום עד 2026-11-23",
     "כפי שסוכם, המקדמה (30 %, GBP 3420.00) לתשלום עד 2026-11-23"),
    ("fr", "The deposit for quote QU-0001: GBP 3420.00 due 2026-11-23", "before work starts"),
])
def test_the_reminder_speaks_the_contacts_language(language: str, subject: str,
                                                   phrase: str) -> None:
    [step] = due_quote_deposit_reminders(quote(), set(), POLICY, UK,
                                         datetime(2026, 11, 24, 10, 0, tzinfo=UTC))
    got_subject, text = quote_deposit_message("Harbour Bakery", "Dunwell Demo Ltd", "QU-0001",
                                              "GBP", step.details, step.amount, language)
    assert got_subject == subject
    assert phrase in text and text.endswith("Dunwell Demo Ltd\n")


def test_xero_quotes_are_read_in_every_status() -> None:
    raw = {"QuoteID": "be59294f-2a9c-4cee-8c64-0f0ddbc1883a", "QuoteNumber": "QU-0001",
           "Contact": {"ContactID": "060816db-0ed7-44de-ab58-8fee9316fcd5", "Name": "Adam"},
           "Date": "/Date(1571875200000)/", "DateString": "2019-10-24T00:00:00",
           "ExpiryDate": "/Date(1571961600000)/", "Status": "ACCEPTED", "CurrencyCode": "AUD",
           "SubTotal": Decimal("17.96"), "TotalTax": Decimal("2.69"), "Total": Decimal("20.65"),
           "UpdatedDateUTC": "/Date(1571869373890)/"}
    record = xero.quote_record(raw)
    assert (record.provider_id, record.number, record.contact_provider_id, record.currency,
            record.issue_date, record.expiry_date, record.total, record.status,
            record.provider_status, record.accepted_on, record.invoice_provider_ids,
            record.updated_at) == (
        "be59294f-2a9c-4cee-8c64-0f0ddbc1883a", "QU-0001",
        "060816db-0ed7-44de-ab58-8fee9316fcd5", "AUD", date(2019, 10, 24),
        date(2019, 10, 25), Decimal("20.65"), "accepted", "ACCEPTED", None, (),
        datetime(2019, 10, 23, 22, 22, 53, 890000, tzinfo=UTC))
    assert [xero.quote_record({**raw, "Status": s}).status for s in
            ("DRAFT", "SENT", "DECLINED", "INVOICED", "DELETED")] == [
        "draft", "sent", "declined", "invoiced", "deleted"]
    with pytest.raises(MalformedAnswer, match="Xero quote could not be read"):
        xero.quote_record({**raw, "Status": "WON"})
    with pytest.raises(MalformedAnswer, match="the total is not a positive number"):
        xero.quote_record({**raw, "Total": Decimal("-1")})


def test_quickbooks_estimates_are_read_with_acceptance_and_linked_invoices() -> None:
    raw = {"Id": "152", "DocNumber": "5001", "TxnDate": "2026-11-18",
           "ExpirationDate": "2026-12-18", "TxnStatus": "Accepted",
           "AcceptedDate": "2026-11-20", "AcceptedBy": "Amy's Bird Sanctuary",
           "CustomerRef": {"value": "1", "name": "Amy's Bird Sanctuary"},
           "CurrencyRef": {"value": "USD", "name": "United States Dollar"},
           "TotalAmt": Decimal("3000.00"),
           "LinkedTxn": [{"TxnId": "171", "TxnType": "Invoice"}],
           "MetaData": {"LastUpdatedTime": "2026-11-20T09:14:00-08:00"}}
    record = quickbooks.quote_record(raw)
    assert (record.provider_id, record.number, record.contact_provider_id, record.currency,
            record.issue_date, record.expiry_date, record.total, record.status,
            record.provider_status, record.accepted_on, record.invoice_provider_ids,
            record.updated_at) == (
        "152", "5001", "1", "USD", date(2026, 11, 18), date(2026, 12, 18),
        Decimal("3000.00"), "accepted", "Accepted", date(2026, 11, 20), ("171",),
        datetime(2026, 11, 20, 17, 14, tzinfo=UTC))
    assert [quickbooks.quote_record({**raw, "TxnStatus": s}).status for s in
            ("Pending", "Closed", "Rejected")] == ["sent", "invoiced", "declined"]
    gone = quickbooks.quote_record({"Id": "152", "status": "Deleted", "domain": "QBO",
                                    "MetaData": {"LastUpdatedTime": "2026-11-21T10:00:00Z"}})
    assert (gone.status, gone.number) == ("deleted", "")
    with pytest.raises(MalformedAnswer, match="QuickBooks quote could not be read"):
        quickbooks.quote_record({**raw, "TxnStatus": "Converted"})
