"""Deposits and milestones (rules/deposits.py) on invoices worked by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from rules import OrgCalendar, PastAction, default_policy, evaluate, next_action_at
from rules.deposits import (
    deposit_message,
    due_deposit_reminders,
    expected_payments,
    next_deposit_moment,
    qualifies,
)
from rules.invoice import InvoiceState
from rules.policy import DepositRule, Milestone, PolicyError, policy_from_json, policy_to_json

UK = OrgCalendar("Europe/London", "GB", "ENG")
RULE = DepositRule(threshold=Decimal("5000"), currency="GBP", schedule=(
    Milestone(percent=Decimal(30)), Milestone(percent=Decimal(30), due_offset_days=30),
    Milestone(percent=Decimal(40), due_offset_days=60)))
POLICY = default_policy().model_copy(update={"deposits": RULE})


def invoice(payments: tuple[tuple[date, Decimal], ...] = (), total: str = "10000.00",
            currency: str = "GBP") -> InvoiceState:
    paid = sum((a for _, a in payments), Decimal(0))
    return InvoiceState(invoice_id=7, org_id=1, number="INV-7", status="open",
                        issue_date=date(2026, 11, 2), due_date=date(2026, 12, 31),
                        total=Decimal(total), amount_due=Decimal(total) - paid,
                        currency=currency, payments=payments)


PAID = ((date(2026, 11, 5), Decimal("2000.00")), (date(2026, 11, 10), Decimal("1500.00")))


def test_a_30_30_40_schedule_and_the_day_the_deposit_was_met() -> None:
    rows = [(m.label, m.amount, m.cumulative, m.due_date, m.met_on)
            for m in expected_payments(invoice(PAID), RULE)]
    assert rows == [
        ("Deposit", Decimal("3000.00"), Decimal("3000.00"), date(2026, 11, 2),
         date(2026, 11, 10)),
        ("Milestone 2 of 3", Decimal("3000.00"), Decimal("6000.00"), date(2026, 12, 2), None),
        ("Milestone 3 of 3", Decimal("4000.00"), Decimal("10000.00"), date(2027, 1, 1), None)]


def test_thirds_add_up_to_the_principal_and_small_or_foreign_invoices_do_not_qualify() -> None:
    thirds = DepositRule(threshold=Decimal("100"), currency="GBP", schedule=(
        Milestone(percent=Decimal("33.3333")), Milestone(percent=Decimal("33.3333")),
        Milestone(percent=Decimal("33.3334"))))
    assert [m.amount for m in expected_payments(invoice(total="100.00"), thirds)] == [
        Decimal("33.33"), Decimal("33.33"), Decimal("33.34")]
    assert not qualifies(invoice(total="4999.99"), RULE)
    assert not qualifies(invoice(currency="EUR"), RULE)
    assert expected_payments(invoice(total="4999.99"), RULE) == []


def test_the_latest_reminder_due_for_each_unmet_milestone() -> None:
    # Milestone 2 is due Wed 2 December: reminders Mon 30 Nov (29th is a Sunday), Wed 2 Dec,
    # Mon 7 Dec (5th is a Saturday), at 09:00 London (= UTC in winter).
    now = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
    state = invoice(PAID)
    [action] = due_deposit_reminders(state, set(), POLICY, UK, now)
    assert (action.key, action.kind, action.amount, action.scheduled_for) == (
        "1:7:deposit:1:1", "deposit_reminder", Decimal("2500.00"),
        datetime(2026, 12, 2, 9, 0, tzinfo=UTC))
    assert action.reason == "Milestone 2 of 3 (30 %) of INV-7: GBP 2500.00 1 day overdue"
    assert action.details["cumulative"] == "6000.00"
    # Once planned, the next one is Monday's; milestone 3's first is 29 December.
    keys = {action.key}
    assert due_deposit_reminders(state, keys, POLICY, UK, now) == []
    assert next_deposit_moment(state, keys, POLICY, UK, now) == datetime(2026, 12, 7, 9, 0,
                                                                          tzinfo=UTC)
    # Milestone 2 met by a payment: nothing more for it; milestone 3 is next.
    met = invoice((*PAID, (date(2026, 12, 3), Decimal("2500.00"))))
    assert due_deposit_reminders(met, set(), POLICY, UK, now) == []
    assert next_deposit_moment(met, set(), POLICY, UK, now) == datetime(2026, 12, 29, 9, 0,
                                                                         tzinfo=UTC)


def test_the_engine_plans_deposit_reminders_beside_the_ladder() -> None:
    now = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
    state = invoice(PAID)
    kinds = [(a.kind, a.key) for a in evaluate(state, [], POLICY, UK, now)]
    assert kinds == [("deposit_reminder", "1:7:deposit:1:1")]
    history = [PastAction(key="1:7:deposit:1:1", status="done")]
    assert next_action_at(state, history, POLICY, UK, now) == datetime(2026, 12, 7, 9, 0,
                                                                        tzinfo=UTC)
    # Without the rule, the ladder's first step (28 December, 3 days before the due date).
    assert next_action_at(state, [], default_policy(), UK, now) == datetime(
        2026, 12, 29, 9, 0, tzinfo=UTC)


def test_the_rule_is_checked_when_saved() -> None:
    body = policy_to_json(default_policy())
    body["deposits"] = {"threshold": "5000", "currency": "GBP",
                        "schedule": [{"percent": "30"}, {"percent": "60"}]}
    with pytest.raises(PolicyError, match="must add up to 100, not 90"):
        policy_from_json(body)
    body["deposits"]["schedule"] = [{"percent": "50", "due_offset_days": 30},
                                    {"percent": "50", "due_offset_days": 0}]
    with pytest.raises(PolicyError, match="in the order they fall due"):
        policy_from_json(body)
    body["deposits"]["schedule"] = [{"percent": "50"}, {"percent": "50",
                                                        "due_offset_days": 30}]
    assert policy_from_json(body).deposits == DepositRule(
        threshold=Decimal("5000"), currency="GBP", schedule=(
            Milestone(percent=Decimal(50)), Milestone(percent=Decimal(50), due_offset_days=30)))


def test_the_milestone_message() -> None:
    subject, text = deposit_message(
        "Acme Ltd", "Harbour Coffee", "INV-7", "GBP",
        {"milestone": "2", "milestones": "3", "percent": "30", "share": "3000.00",
         "milestone_due": "2026-12-02"}, Decimal("2500.00"), "https://pay.example/7")
    assert subject == "Milestone 2 of 3 on invoice INV-7: GBP 2500.00 due 2026-12-02"
    assert text == (
        "Dear Acme Ltd,\n\nAs agreed, invoice INV-7 is paid in 3 parts. Milestone 2 of 3"
        " (30 %, GBP 3000.00) is due on 2026-12-02; GBP 2500.00 of it is still to come.\n\n"
        "Pay online: https://pay.example/7\n\nKind regards,\nHarbour Coffee\n")


def test_the_milestone_message_in_the_contacts_language() -> None:
    details = {"milestone": "1", "milestones": "3", "percent": "30", "share": "3000.00",
               "milestone_due": "2026-12-02"}
    subject, text = deposit_message("Acme GmbH", "Harbour Coffee", "INV-7", "EUR", details,
                                    Decimal("3000.00"), None, "de")
    assert subject == "Die Anzahlung zu Rechnung INV-7: EUR 3000.00 fällig am 2026-12-02"
    assert text == (
        "Sehr geehrte Damen und Herren von Acme GmbH,\n\nWie vereinbart wird Rechnung INV-7 in"
        " 3 Teilen bezahlt. Die Anzahlung (30 %, EUR 3000.00) ist am 2026-12-02 fällig; davon"
        " stehen noch EUR 3000.00 aus.\n\nMit freundlichen Grüßen\nHarbour Coffee\n")
    assert {language: deposit_message("A", "B", "INV-7", "PLN", details, Decimal("1"), None,
                                      language)[0].split(" ")[0]
            for language in ("en", "nb", "pl", "he", "xx")} == {
        "en": "The", "nb": "Forskuddet", "pl": "Zaliczka", "he": "המקדמה", "xx": "The"}
