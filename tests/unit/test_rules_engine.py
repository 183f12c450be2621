"""The planner as a whole (rules/engine.py): how the ladder, repeats, channels, fees, the
early-payment discount, payment plans and escalation combine, walked day by day."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules import (
    ContactOverrides,
    Instalment,
    InvoiceState,
    NextActionPlanner,
    OrgCalendar,
    PastAction,
    PaymentPlan,
    PlannedAction,
    Policy,
    PolicyError,
    ReminderStep,
    contact_overrides_from_json,
    default_policy,
    evaluate,
    next_action_at,
    policy_from_json,
    policy_to_json,
    with_contact_overrides,
)
from rules.engine import FeeNotCharged, statement_day
from rules.fees import (
    DailyInterestRule,
    FlatFeeRule,
    LateFeeRule,
    PercentageFeeRule,
    RecurringPercentageFeeRule,
    StatutoryInterestRule,
)
from rules.policy import (
    AgencyCase,
    CallTask,
    DemandLetter,
    EarlyPaymentDiscount,
    Escalation,
    LateFee,
    PlanReminders,
    Repeat,
    StopService,
)
from rules.statutory import RatePeriod, RateTable, floor_money

D = Decimal
UK = OrgCalendar("Europe/London", "GB", "ENG")
ISRAEL = OrgCalendar("Asia/Jerusalem", "IL")
LADDER = default_policy().reminder_steps  # -3, 0, +7, +21 at 09:00 local, 8-hour window
POLICY = Policy(reminder_steps=LADDER)
FLAT = LateFee(id="late", rule=FlatFeeRule(amount=D("25.00"), grace_days=7))
INTEREST = LateFee(id="interest",
                   rule=DailyInterestRule(annual_rate_percent=D("8"), period_days=30))


def invoice(due: date, **changes: Any) -> InvoiceState:
    base: dict[str, Any] = {
        "invoice_id": 7, "org_id": 3, "number": "INV-0007", "status": "open",
        "due_date": due, "amount_due": D("120.00"), "currency": "GBP"}
    return InvoiceState(**{**base, **changes})


def at(day: date, hour: int = 10, minute: int = 0, calendar: OrgCalendar = UK) -> datetime:
    return calendar.at_local(day, time(hour, minute))


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def policy(**changes: Any) -> Policy:
    return Policy(**{"reminder_steps": LADDER, **changes})


def as_of(inv: InvoiceState, day: date) -> InvoiceState:
    """The invoice as a sync on `day` sees it: only the payments made by then."""
    if not inv.payments:
        return inv
    payments = tuple((when, amount) for when, amount in inv.payments if when <= day)
    due = max(inv.principal - sum((amount for _, amount in payments), D(0)), D(0))
    status = "paid" if inv.status == "open" and due == 0 else inv.status
    return replace(inv, payments=payments, amount_due=due, status=status,
                   total=inv.principal)


def walk(inv: InvoiceState, start: date, days: int, pol: Policy, *,
         history: Sequence[PastAction] = (), calendar: OrgCalendar = UK,
         hour: int = 10) -> list[tuple[date, PlannedAction]]:
    """Run the job once a day at `hour` local, the invoice as synced that day; what it plans
    goes into the ledger as done."""
    ledger = list(history)
    sent = []
    for n in range(days):
        day = start + timedelta(days=n)
        now = at(day, hour, calendar=calendar)
        for action in evaluate(as_of(inv, day), ledger, pol, calendar, now):
            ledger.append(PastAction(action.key, "done", action.amount))
            sent.append((day, action))
    return sent


def keys(sent: Sequence[tuple[date, PlannedAction]]) -> list[tuple[date, str]]:
    return [(day, action.key) for day, action in sent]


def done(*keys: str) -> list[PastAction]:
    return [PastAction(key, "done") for key in keys]


# ------------------------------------------------------------------------------ repeats

DUE = date(2026, 12, 2)  # a Wednesday: the ladder runs 30 Nov, 2 Dec, 9 Dec, 23 Dec
LADDER_SENT = [(date(2026, 11, 30), "3:7:reminder:0"), (date(2026, 12, 2), "3:7:reminder:1"),
               (date(2026, 12, 9), "3:7:reminder:2"), (date(2026, 12, 23), "3:7:reminder:3")]


def test_an_endless_weekly_repeat_follows_the_ladder() -> None:
    sent = walk(invoice(DUE), date(2026, 11, 20), 70, policy(repeat=Repeat(every_days=7)))
    assert keys(sent) == [
        *LADDER_SENT, (date(2026, 12, 30), "3:7:reminder:4"), (date(2027, 1, 6), "3:7:reminder:5"),
        (date(2027, 1, 13), "3:7:reminder:6"), (date(2027, 1, 20), "3:7:reminder:7"),
        (date(2027, 1, 27), "3:7:reminder:8")]
    fifth = sent[8][1]
    assert fifth == PlannedAction(
        key="3:7:reminder:8", kind="reminder", invoice_id=7, org_id=3,
        scheduled_for=utc(2027, 1, 27, 9),
        reason="Repeat reminder 5 (provider_email, firm): INV-0007 56 days overdue",
        amount=D("120.00"), currency="GBP", step_index=8, step_count=4, template="reminder",
        channel="provider_email", tone="firm", details={"why": {"code": "overdue", "days": 56}})
    # Endless: the sixth is next, on 3 Feb.
    history = [PastAction(action.key, "done") for _, action in sent]
    assert next_action_at(invoice(DUE), history, policy(repeat=Repeat(every_days=7)), UK,
                          at(date(2027, 1, 27))) == utc(2027, 2, 3, 9)


def test_a_repeat_with_max_times_stops_after_that_many() -> None:
    pol = policy(repeat=Repeat(every_days=7, max_times=2))
    sent = walk(invoice(DUE), date(2026, 11, 20), 120, pol)
    assert keys(sent) == [*LADDER_SENT, (date(2026, 12, 30), "3:7:reminder:4"),
                          (date(2027, 1, 6), "3:7:reminder:5")]
    history = [PastAction(action.key, "done") for _, action in sent]
    assert next_action_at(invoice(DUE), history, pol, UK, at(date(2027, 1, 6))) is None


def test_a_statement_day_repeat_lands_on_the_next_business_day() -> None:
    # The 1st of each month after the last step (23 Dec): Friday 1 Jan 2027 is New Year's Day,
    # so Monday 4 Jan; Saturday 1 May 2027 and Monday 3 May (Early May bank holiday): 4 May.
    pol = policy(repeat=Repeat(day_of_month=1, template="statement", channel="dunwell_email"))
    sent = walk(invoice(DUE), date(2026, 11, 20), 200, pol)
    assert keys(sent) == [
        *LADDER_SENT, (date(2027, 1, 4), "3:7:reminder:4"), (date(2027, 2, 1), "3:7:reminder:5"),
        (date(2027, 3, 1), "3:7:reminder:6"), (date(2027, 4, 1), "3:7:reminder:7"),
        (date(2027, 5, 4), "3:7:reminder:8"), (date(2027, 6, 1), "3:7:reminder:9")]
    assert [a.scheduled_for for _, a in sent[4:]] == [
        utc(2027, 1, 4, 9), utc(2027, 2, 1, 9), utc(2027, 3, 1, 9),
        utc(2027, 4, 1, 8), utc(2027, 5, 4, 8), utc(2027, 6, 1, 8)]  # 09:00 BST from April
    assert {(a.template, a.channel, a.tone) for _, a in sent[4:]} == {
        ("statement", "dunwell_email", "firm")}
    # A statement day after the last step's day in the same month starts that month.
    late = invoice(date(2026, 11, 1))  # the last step on 22 Nov
    assert keys(walk(late, date(2026, 11, 23), 40, policy(repeat=Repeat(day_of_month=28)),
                     history=done("3:7:reminder:3"))) == [
        (date(2026, 11, 30), "3:7:reminder:4"),  # Saturday 28 Nov -> Monday 30 Nov
        (date(2026, 12, 29), "3:7:reminder:5")]  # Monday 28 Dec is a substitute holiday


def test_a_run_down_for_a_month_sends_only_the_latest_repeat_once() -> None:
    pol = policy(repeat=Repeat(day_of_month=1))
    history = done(*(key for _, key in LADDER_SENT), "3:7:reminder:4")  # 4 Jan went
    # Down from 2 Jan to 2 March: 1 Feb and 1 March are both due; only 1 March goes.
    now = at(date(2027, 3, 2))
    [action] = evaluate(invoice(DUE), history, pol, UK, now)
    assert (action.key, action.step_index, action.scheduled_for) == (
        "3:7:reminder:6", 6, utc(2027, 3, 1, 9))
    assert action.reason == "Repeat reminder 3 (provider_email, firm): INV-0007 90 days overdue"
    history.append(PastAction(action.key, "done"))
    assert evaluate(invoice(DUE), history, pol, UK, now + timedelta(hours=1)) == []
    # Repeat 2 (1 Feb) is superseded for good; the next is 1 April, 09:00 BST.
    assert next_action_at(invoice(DUE), history, pol, UK, now) == utc(2027, 4, 1, 8)
    assert keys(walk(invoice(DUE), date(2027, 3, 2), 40, pol, history=history)) == [
        (date(2027, 4, 1), "3:7:reminder:7")]


# ----------------------------------------------------------------------------- channels

MIXED = (ReminderStep(offset_days=-3, template="soon", channel="provider_email"),
         ReminderStep(offset_days=0, template="due_note", channel="note", tone="friendly"),
         ReminderStep(offset_days=7, template="overdue_mail", channel="dunwell_email",
                      tone="firm"),
         ReminderStep(offset_days=14, template="ring_them", channel="call_task", tone="final"))


def test_a_contact_without_email_gets_only_notes_and_call_tasks() -> None:
    pol = Policy(reminder_steps=MIXED, repeat=Repeat(every_days=14, channel="note",
                                                     template="still_open", max_times=2))
    sent = walk(invoice(DUE, has_email=False), date(2026, 11, 20), 90, pol)
    assert [(day, a.key, a.channel, a.template, a.tone) for day, a in sent] == [
        (date(2026, 12, 2), "3:7:reminder:1", "note", "due_note", "friendly"),
        (date(2026, 12, 16), "3:7:reminder:3", "call_task", "ring_them", "final"),
        (date(2026, 12, 30), "3:7:reminder:4", "note", "still_open", "firm"),
        (date(2027, 1, 13), "3:7:reminder:5", "note", "still_open", "firm")]
    assert sent[1][1].reason == "Reminder 4 of 4 (call_task, final): INV-0007 14 days overdue"
    # With an email address every step goes, each with its own template and tone.
    sent = walk(invoice(DUE), date(2026, 11, 20), 45, pol)
    assert [(a.step_index, a.channel, a.template, a.tone) for _, a in sent] == [
        (0, "provider_email", "soon", "friendly"), (1, "note", "due_note", "friendly"),
        (2, "dunwell_email", "overdue_mail", "firm"), (3, "call_task", "ring_them", "final"),
        (4, "note", "still_open", "firm")]


def test_without_email_an_email_repeat_never_goes_and_nothing_is_promised() -> None:
    pol = Policy(reminder_steps=MIXED, repeat=Repeat(every_days=7))
    inv = invoice(DUE, has_email=False)
    history = done("3:7:reminder:3")
    assert walk(inv, date(2026, 12, 17), 60, pol, history=history) == []
    assert next_action_at(inv, history, pol, UK, at(date(2026, 12, 17))) is None


# ------------------------------------------------------------------- nothing to chase


@pytest.mark.parametrize("changes", [
    {"status": "draft"}, {"status": "paid", "amount_due": D("0.00")},
    {"status": "voided"}, {"excluded": True}, {"disputed": True},
    {"amount_due": D("0.00")},
])
def test_nothing_at_all_for_an_invoice_that_is_not_to_be_chased(changes: dict[str, Any]) -> None:
    pol = policy(late_fees=(FLAT, INTEREST), repeat=Repeat(every_days=7),
                 escalation=Escalation(call_task=CallTask(after_days=10, assignee="Ann")))
    inv = invoice(date(2026, 9, 1), **changes)
    assert walk(inv, date(2026, 8, 20), 150, pol) == []
    assert next_action_at(inv, [], pol, UK, at(date(2026, 8, 20))) is None


def test_below_min_amount_due_nothing_is_chased_not_even_a_fee() -> None:
    # A fee the customer is never reminded of would be a surprise: below the minimum, nothing.
    pol = policy(min_amount_due=D("50.00"), late_fees=(FLAT,),
                 escalation=Escalation(call_task=CallTask(after_days=10, assignee="Ann")))
    small = invoice(DUE, amount_due=D("49.99"))
    assert keys(walk(small, date(2026, 11, 20), 60, pol)) == []
    assert next_action_at(small, [], pol, UK, at(date(2026, 12, 10))) is None
    at_the_minimum = invoice(DUE, amount_due=D("50.00"))
    assert keys(walk(at_the_minimum, date(2026, 11, 20), 60, pol)) == [
        *LADDER_SENT[:3], (date(2026, 12, 10), "3:7:fee:late:0"),
        (date(2026, 12, 14), "3:7:call_task"), LADDER_SENT[3]]


# --------------------------------------------------------------------------------- fees


def test_a_flat_fee_is_planned_once_on_the_day_after_the_grace() -> None:
    pol = policy(late_fees=(FLAT,))
    sent = walk(invoice(DUE), date(2026, 11, 20), 90, pol)
    assert keys(sent) == [*LADDER_SENT[:3], (date(2026, 12, 10), "3:7:fee:late:0"),
                          LADDER_SENT[3]]
    fee = sent[3][1]
    assert fee == PlannedAction(
        key="3:7:fee:late:0", kind="fee", invoice_id=7, org_id=3,
        scheduled_for=utc(2026, 12, 10, 9),
        reason="Late fee 25.00 GBP: unpaid 7 days after the due date 2026-12-02 (INV-0007)",
        amount=D("25.00"), currency="GBP",
        details={"rule_id": "late", "period": 0, "period_start": "2026-12-10",
                 "period_end": "2026-12-10", "placement": "line", "account_code": None,
                 "tax_rate": None, "item": None})


def test_a_fee_falling_on_a_holiday_goes_on_the_next_business_day() -> None:
    # Due Thursday 17 Dec: due + 8 is Friday 25 Dec; then the weekend and Monday 28 Dec's
    # substitute Boxing Day: Tuesday 29 Dec at 09:00.
    sent = walk(invoice(date(2026, 12, 17)), date(2026, 12, 18), 90, policy(late_fees=(FLAT,)))
    fees = [(day, a.key, a.scheduled_for) for day, a in sent if a.kind == "fee"]
    assert fees == [(date(2026, 12, 29), "3:7:fee:late:0", utc(2026, 12, 29, 9))]


def test_daily_interest_is_charged_per_whole_period() -> None:
    # 1,000.00 due Monday 2 Nov 2026, 8 % p.a., 30-day periods from 3 Nov; 400.00 paid 17 Jan.
    # Period 2 (2..31 Jan): 15 days on 1,000 and 15 on 600 = 24,000 x 8 / 36,500 = 5.26.
    # Period 3 (1 Feb..2 Mar) on 600: 600 x 8 x 30 / 36,500 = 3.945... -> 3.95.
    inv = invoice(date(2026, 11, 2), amount_due=D("600.00"), total=D("1000.00"),
                  payments=((date(2027, 1, 17), D("400.00")),))
    sent = walk(inv, date(2026, 11, 3), 125, policy(late_fees=(INTEREST,)))
    interest = [(day, a.key, a.amount, a.scheduled_for) for day, a in sent if a.kind != "reminder"]
    assert interest == [
        (date(2026, 12, 3), "3:7:fee:interest:0", D("6.58"), utc(2026, 12, 3, 9)),
        # 2 Jan 2027 is a Saturday: Monday 4 Jan.
        (date(2027, 1, 4), "3:7:fee:interest:1", D("6.58"), utc(2027, 1, 4, 9)),
        (date(2027, 2, 1), "3:7:fee:interest:2", D("5.26"), utc(2027, 2, 1, 9)),
        (date(2027, 3, 3), "3:7:fee:interest:3", D("3.95"), utc(2027, 3, 3, 9))]
    assert [a.reason for _, a in sent if a.key == "3:7:fee:interest:2"] == [
        "Interest 8 % p.a. on the unpaid balance (600.00 GBP at the end) for 30 days"
        " (2027-01-02..2027-01-31) (INV-0007)"]
    assert all(a.kind == "interest" and a.details["rule_id"] == "interest"
               for _, a in sent if a.kind != "reminder")


# A GB table of our own, so that rows added to rules/rates/gb.json do not move the figures.
GB_2026_H1 = MappingProxyType({"GB": RateTable(
    jurisdiction="GB", title="test", currency="GBP", reference_rate_name="test rate",
    day_count="actual/365", b2b_only=True, b2b_only_reason="business debts only",
    periods=(RatePeriod(date(2026, 1, 1), date(2026, 6, 30), D("4"), D("8"), None, "test",
                        False),),
    compensation=None, reminder_fee_caps=(), origin="test/gb.json")})
STATUTORY = LateFee(id="statutory", rule=StatutoryInterestRule(jurisdiction="GB"))


def test_statutory_interest_through_the_planner() -> None:
    # 1,000.00 due Thursday 1 Jan 2026: 12 % for 2..31 Jan = 9.863... -> 9.86, on 1 Feb (Sun)
    # -> Monday 2 Feb.
    inv = invoice(date(2026, 1, 1), amount_due=D("1000.00"))
    history = done("3:7:reminder:3")
    now = at(date(2026, 2, 2))
    [charge] = evaluate(inv, history, policy(late_fees=(STATUTORY,)), UK, now,
                        tables=GB_2026_H1)
    assert (charge.key, charge.kind, charge.amount, charge.scheduled_for, charge.reason) == (
        "3:7:fee:statutory:0", "interest", D("9.86"), utc(2026, 2, 2, 9),
        "Interest 12.00 % p.a. (GB B2B: test rate 4.00 % + 8) on 1,000.00 GBP for 30 days"
        " (2026-01-02..2026-01-31) = 9.86 GBP (INV-0007)")


def test_a_statutory_rule_without_a_rate_is_explained_and_the_reminder_still_goes() -> None:
    pol = policy(late_fees=(STATUTORY,))
    problems: list[FeeNotCharged] = []
    actions = evaluate(invoice(date(2026, 11, 2)), [], pol, UK, at(date(2026, 12, 9)),
                       problems=problems, tables=GB_2026_H1)
    # Late when first chased: the first contact (step 3), not the step its lateness reaches.
    assert [a.key for a in actions] == ["3:7:reminder:2"]
    assert list(map(str, problems)) == [
        "INV-0007: fee 'statutory' not charged: There is no GB statutory interest rate for"
        " 2026-07-01..2026-12-31 yet, so nothing is charged for it."]
    # The same as a code and its figures, which a page words in the reader's language.
    assert [p.facts() for p in problems] == [
        {"problem": "fee_not_charged", "number": "INV-0007", "rule": "statutory",
         "code": "rate_missing", "jurisdiction": "GB", "start": "2026-07-01",
         "end": "2026-12-31", "figure": "interest"}]
    # Without a list to report into, the fee is still left out quietly.
    assert evaluate(invoice(date(2026, 11, 2)), [], pol, UK, at(date(2026, 12, 9)),
                    tables=GB_2026_H1) == actions


def test_a_statutory_rule_without_its_table_is_explained_not_raised() -> None:
    # Saving such a policy is refused (rules/policy.py), but a policy stored before, or tables
    # passed without the jurisdiction, must not stop the reminders.
    problems: list[FeeNotCharged] = []
    actions = evaluate(invoice(date(2026, 11, 2)), [], policy(late_fees=(STATUTORY,)), UK,
                       at(date(2026, 12, 9)), problems=problems, tables=MappingProxyType({}))
    assert [a.key for a in actions] == ["3:7:reminder:2"]  # the first contact
    assert list(map(str, problems)) == [
        "INV-0007: fee 'statutory' not charged: There are no statutory rates for GB."]
    assert problems[0].facts()["code"] == "no_rates"


# ----------------------------------------------------------------- early-payment discount

TWO_TEN = EarlyPaymentDiscount(percent=D("2"), within_days=10)


def discounted(*payments: tuple[date, str], **changes: Any) -> InvoiceState:
    paid = sum((D(amount) for _, amount in payments), D(0))
    base: dict[str, Any] = {
        "issue_date": date(2026, 11, 1), "total": D("1000.00"),
        "amount_due": D("1000.00") - paid,
        "payments": tuple((day, D(amount)) for day, amount in payments)}
    return invoice(date(2026, 12, 1), **{**base, **changes})


def test_paid_less_the_discount_within_ten_days_gets_one_discount_and_nothing_else() -> None:
    pol = policy(early_payment_discount=TWO_TEN, late_fees=(FLAT,))
    inv = discounted((date(2026, 11, 11), "980.00"))
    discount = PlannedAction(
        key="3:7:discount", kind="discount", invoice_id=7, org_id=3,
        scheduled_for=utc(2026, 11, 11, 9), amount=D("20.00"), currency="GBP",
        reason="Early-payment discount 2 % on INV-0007: paid 980.00 GBP of 1,000.00 GBP by"
               " 2026-11-11 (10 days after issue); crediting 20.00 GBP",
        details={"realise_as": "credit_note", "percent": "2", "account_code": None,
                 "item": None, "tax_rate": None})
    assert evaluate(inv, [], pol, UK, at(date(2026, 11, 11))) == [discount]
    assert next_action_at(inv, [], pol, UK, at(date(2026, 11, 11), 7)) == utc(2026, 11, 11, 9)
    # Synced late, with the ladder and the fee due too: still the discount alone.
    assert evaluate(inv, [], pol, UK, at(date(2026, 12, 10))) == [discount]
    # Once in the ledger it is not offered again.
    assert evaluate(inv, done("3:7:discount"), pol, UK, at(date(2026, 11, 11), 11)) == []


@pytest.mark.parametrize(("status", "closed"), [
    ("planned", True), ("claimed", True), ("failed", True), ("done", True),
    ("skipped", False), ("dead", False)])
def test_a_discount_on_its_way_closes_the_invoice_until_it_is_given_up(
        status: str, closed: bool) -> None:
    # The balance left is about to be credited: no reminder or fee for it meanwhile. Should
    # the provider refuse the credit (skipped) or the action give up (dead), chasing resumes.
    pol = policy(early_payment_discount=TWO_TEN, late_fees=(FLAT,))
    inv = discounted((date(2026, 11, 11), "980.00"))
    history = [PastAction("3:7:discount", status, D("20.00"))]
    later = at(date(2026, 12, 10))
    planned = evaluate(inv, history, pol, UK, later)
    if closed:
        assert planned == [] and next_action_at(inv, history, pol, UK, later) is None
    else:
        assert {a.key for a in planned} == {"3:7:reminder:2", "3:7:fee:late:0"}


def test_paid_less_the_discount_a_day_late_gets_no_discount_and_is_chased() -> None:
    pol = policy(early_payment_discount=TWO_TEN)
    inv = discounted((date(2026, 11, 12), "980.00"))
    assert evaluate(inv, [], pol, UK, at(date(2026, 11, 12))) == []
    sent = walk(inv, date(2026, 11, 12), 60, pol)
    assert [(day, a.key, a.amount) for day, a in sent] == [
        (date(2026, 11, 30), "3:7:reminder:0", D("20.00")),  # -3 is Saturday 28 Nov: Monday
        (date(2026, 12, 1), "3:7:reminder:1", D("20.00")),
        (date(2026, 12, 8), "3:7:reminder:2", D("20.00")),
        (date(2026, 12, 22), "3:7:reminder:3", D("20.00"))]
    assert sent[0][1].reason == (
        "Reminder 1 of 4 (provider_email, friendly): INV-0007 due in 1 day")


def test_paid_in_full_within_ten_days_gets_nothing() -> None:
    pol = policy(early_payment_discount=TWO_TEN)
    inv = discounted((date(2026, 11, 11), "1000.00"), status="paid")
    assert walk(inv, date(2026, 11, 11), 60, pol) == []
    assert next_action_at(inv, [], pol, UK, at(date(2026, 11, 11))) is None


# -------------------------------------------------------------------------- payment plans

PLAN = PaymentPlan(plan_id=5, instalments=(
    Instalment(date(2026, 11, 2), D("300.00")), Instalment(date(2026, 12, 1), D("300.00")),
    Instalment(date(2027, 1, 4), D("300.00"))))
BEFORE_THE_PLAN = done("3:7:reminder:0", "3:7:reminder:1", "3:7:reminder:2")


def planned(*payments: tuple[date, str]) -> InvoiceState:
    """900.00 due Thursday 1 Oct 2026, three instalments of 300.00 agreed on 20 Oct."""
    return invoice(date(2026, 10, 1), total=D("900.00"), amount_due=D("900.00"), plan=PLAN,
                   payments=tuple((day, D(amount)) for day, amount in payments))


def test_a_kept_plan_sends_only_instalment_reminders_then_a_missed_one_breaks_it() -> None:
    pol = policy(late_fees=(FLAT, INTEREST))
    history = [*BEFORE_THE_PLAN, PastAction("3:7:fee:late:0", "done", D("25.00"))]
    inv = planned((date(2026, 11, 4), "300.00"))  # the first paid, late but within the grace
    sent = walk(inv, date(2026, 10, 21), 80, pol, history=history)
    assert [(day, a.key, a.kind, a.amount) for day, a in sent] == [
        # Kept: the ladder (22 Oct), the interest (1 Nov, 1 Dec) and everything else wait.
        (date(2026, 10, 30), "3:7:plan5:0:0", "plan_instalment", D("300.00")),
        (date(2026, 11, 2), "3:7:plan5:0:1", "plan_instalment", D("300.00")),
        # Paid on 4 Nov: the +3 of the first is not sent; the second's -3 is Saturday 28 Nov.
        (date(2026, 11, 30), "3:7:plan5:1:0", "plan_instalment", D("300.00")),
        (date(2026, 12, 1), "3:7:plan5:1:1", "plan_instalment", D("300.00")),
        (date(2026, 12, 4), "3:7:plan5:1:2", "plan_instalment", D("300.00")),
        # Unpaid by the end of 4 Dec (1 Dec + 3 days' grace): broken from Saturday 5 Dec, so
        # Monday: the ladder resumes with its latest step; the flat fee went before the plan.
        (date(2026, 12, 7), "3:7:reminder:3", "reminder", D("600.00")),
        # Interest from the missed instalment's due date: 2..31 Dec on 600.00, 8 % p.a.:
        # 600 x 8 x 30 / 36,500 = 3.945... -> 3.95, charged on the first business day after.
        (date(2027, 1, 4), "3:7:fee:interest.plan5:0", "interest", D("3.95"))]
    reminder = sent[3][1]
    assert (reminder.reason, reminder.scheduled_for, reminder.step_index, reminder.template,
            reminder.details) == (
        "Instalment 2 of 3 of the payment plan for INV-0007: 300.00 GBP due 2026-12-01",
        utc(2026, 12, 1, 9), 1, "instalment",
        {"plan_id": 5, "instalment": 2, "instalments": 3, "instalment_due": "2026-12-01"})
    interest = sent[-1][1]
    assert interest.details["rule_id"] == "interest.plan5"
    assert (interest.details["period_start"], interest.details["period_end"]) == (
        "2026-12-02", "2026-12-31")
    # While kept, the planner does not wake for the fees it holds back.
    kept = as_of(inv, date(2026, 11, 5))
    so_far = history + done(*(a.key for _, a in sent[:2]))
    assert next_action_at(kept, so_far, pol, UK, at(date(2026, 11, 5))) == utc(2026, 11, 30, 9)


def test_a_flat_fee_not_charged_before_the_plan_is_charged_from_the_missed_instalment() -> None:
    pol = policy(late_fees=(FLAT,))
    inv = planned((date(2026, 11, 2), "300.00"))
    sent = walk(inv, date(2026, 12, 5), 30, pol, history=BEFORE_THE_PLAN)
    assert [(day, a.key, a.amount, a.scheduled_for) for day, a in sent] == [
        (date(2026, 12, 7), "3:7:reminder:3", D("600.00"), utc(2026, 10, 22, 8)),
        # 1 Dec + 7 days' grace: from Wednesday 9 Dec.
        (date(2026, 12, 9), "3:7:fee:late.plan5:0", D("25.00"), utc(2026, 12, 9, 9))]
    assert sent[1][1].reason == (
        "Late fee 25.00 GBP: unpaid 7 days after the due date 2026-12-01 (INV-0007)")


def test_a_plan_kept_to_the_end_never_breaks() -> None:
    pol = policy(late_fees=(FLAT, INTEREST))
    # Each paid a day late, within the grace.
    inv = planned((date(2026, 11, 3), "300.00"), (date(2026, 12, 2), "300.00"),
                  (date(2027, 1, 5), "300.00"))
    sent = walk(inv, date(2026, 10, 21), 120, pol, history=BEFORE_THE_PLAN)
    assert keys(sent) == [
        (date(2026, 10, 30), "3:7:plan5:0:0"), (date(2026, 11, 2), "3:7:plan5:0:1"),
        (date(2026, 11, 30), "3:7:plan5:1:0"), (date(2026, 12, 1), "3:7:plan5:1:1"),
        # The third's -3 (Friday 1 Jan, a holiday) and 0 both fall on Monday 4 Jan: one goes.
        (date(2027, 1, 4), "3:7:plan5:2:1")]
    assert next_action_at(as_of(inv, date(2027, 1, 5)), [], pol, UK,
                          at(date(2027, 1, 5))) is None


def test_a_payment_dated_after_the_grace_breaks_the_plan_on_time() -> None:
    # The first instalment (2 Nov, 3 days' grace) is paid with a payment dated Friday 6 Nov,
    # entered ahead: too late, the plan breaks on 6 Nov, and the planner says so in advance.
    pol = policy(late_fees=(INTEREST,))
    inv = planned((date(2026, 11, 6), "300.00"))
    now = at(date(2026, 11, 2))
    assert evaluate(inv, BEFORE_THE_PLAN, pol, UK, now) == []  # covered: no instalment reminder
    assert next_action_at(inv, BEFORE_THE_PLAN, pol, UK, now) == utc(2026, 11, 6, 9)
    assert [a.key for a in evaluate(inv, BEFORE_THE_PLAN, pol, UK, at(date(2026, 11, 6)))] == [
        "3:7:reminder:3"]


def test_a_cancelled_plan_is_ignored() -> None:
    pol = policy(late_fees=(FLAT,))
    inv = replace(planned(), plan=replace(PLAN, status="cancelled"))
    assert keys(walk(inv, date(2026, 10, 21), 10, pol, history=BEFORE_THE_PLAN)) == [
        (date(2026, 10, 21), "3:7:fee:late:0"), (date(2026, 10, 22), "3:7:reminder:3")]


# ----------------------------------------------------------------------------- escalation

ESCALATION = Escalation(
    call_task=CallTask(after_days=10, assignee="Ann Smith"),
    stop_service=StopService(after_days=20, webhook_url="https://hooks.example.com/stop"),
    demand_letter=DemandLetter(after_days=30),
    agency_case=AgencyCase(after_days=25))  # before the letter: it waits for it


def overdue(days: int) -> dict[str, str | int]:
    """An escalation step's reason as a code and its figures (120.00 GBP unpaid)."""
    return {"code": "overdue_unpaid", "days": days, "amount": "120.00", "currency": "GBP"}


def test_escalation_steps_go_once_each_at_their_days() -> None:
    # Due Monday 2 Nov 2026: +10 Thursday 12 Nov, +20 Sunday 22 Nov -> Monday 23 Nov,
    # +30 Wednesday 2 Dec; the agency case (+25) waits until the letter is done.
    pol = Policy(reminder_steps=(ReminderStep(offset_days=0),), escalation=ESCALATION)
    sent = walk(invoice(date(2026, 11, 2)), date(2026, 11, 1), 90, pol)
    assert [(day, a.key, a.scheduled_for, a.details) for day, a in sent if a.kind != "reminder"
            ] == [
        (date(2026, 11, 12), "3:7:call_task", utc(2026, 11, 12, 9),
         {"assignee": "Ann Smith", "why": overdue(10)}),
        (date(2026, 11, 23), "3:7:stop_service", utc(2026, 11, 23, 9),
         {"webhook_url": "https://hooks.example.com/stop", "why": overdue(20)}),
        (date(2026, 12, 2), "3:7:demand_letter", utc(2026, 12, 2, 9),
         {"pay_within_days": 14, "why": overdue(30)}),
        (date(2026, 12, 3), "3:7:agency_case", utc(2026, 11, 27, 9), {"why": overdue(25)})]
    assert sent[1][1].reason == (
        "Call task: INV-0007 is 10+ days overdue with 120.00 GBP unpaid")
    assert [a.kind for _, a in sent[1:]] == [
        "call_task", "stop_service", "demand_letter", "agency_case"]


@pytest.mark.parametrize("status", ["planned", "claimed", "failed", "skipped"])
def test_the_agency_case_waits_for_a_demand_letter_that_is_done(status: str) -> None:
    pol = Policy(reminder_steps=(ReminderStep(offset_days=0),), escalation=ESCALATION)
    inv = invoice(date(2026, 11, 2))
    history = done("3:7:reminder:0", "3:7:call_task", "3:7:stop_service")
    now = at(date(2026, 12, 10))
    waiting = [*history, PastAction("3:7:demand_letter", status)]
    assert evaluate(inv, waiting, pol, UK, now) == []
    assert next_action_at(inv, waiting, pol, UK, now) is None
    letter_done = [*history, PastAction("3:7:demand_letter", "done")]
    [case] = evaluate(inv, letter_done, pol, UK, now)
    assert (case.key, case.kind, case.amount, case.reason) == (
        "3:7:agency_case", "agency_case", D("120.00"),
        "Agency case: INV-0007 is 25+ days overdue with 120.00 GBP unpaid")
    # Before the letter is planned only the letter is due: the case waits for it.
    assert [a.key for a in evaluate(inv, history, pol, UK, now)] == ["3:7:demand_letter"]


# ------------------------------------------------- found by walking (see the property below)


def test_a_broken_plan_does_not_reset_a_rule_cap() -> None:
    # 2 % of the balance every 30 days, at most 5 % of 900.00 = 45.00 in all; 18.00 was
    # charged before the plan, so after it breaks only 27.00 is left: 12.00, 12.00, 3.00.
    monthly = LateFee(id="monthly", rule=RecurringPercentageFeeRule(
        percent=D("2"), period_days=30, cap_percent_of_principal=D("5")))
    pol = policy(late_fees=(monthly,))
    history = [*BEFORE_THE_PLAN, PastAction("3:7:fee:monthly:0", "done", D("18.00"))]
    inv = planned((date(2026, 11, 2), "300.00"))
    sent = walk(inv, date(2026, 12, 5), 120, pol, history=history)
    assert [(day, a.key, a.amount) for day, a in sent if a.kind == "fee"] == [
        (date(2026, 12, 7), "3:7:fee:monthly.plan5:0", D("12.00")),
        (date(2027, 1, 4), "3:7:fee:monthly.plan5:1", D("12.00")),
        (date(2027, 2, 1), "3:7:fee:monthly.plan5:2", D("3.00"))]
    assert sent[-1][1].reason == (
        "Late fee 2 % of the overdue balance 600.00 GBP, period 3: unpaid after the due date"
        " 2026-12-01; lowered from 12.00 GBP to stay within 5 % of the principal (45.00 GBP in"
        " all) (INV-0007)")
    everything = history + [PastAction(a.key, "done", a.amount) for _, a in sent]
    assert next_action_at(as_of(inv, date(2027, 2, 2)), everything, pol, UK,
                          at(date(2027, 2, 2))) is None


def test_a_cap_reached_to_the_penny_leaves_nothing_to_wake_for() -> None:
    # 10 % of 33.33 is 3.333, floored to 3.33: 1.67 + 1.66 and the rule is done.
    capped = LateFee(id="daily", rule=RecurringPercentageFeeRule(
        percent=D("5"), period_days=1, cap_percent_of_principal=D("10")))
    pol = policy(late_fees=(capped,))
    inv = invoice(date(2026, 11, 2), amount_due=D("33.33"))
    history = done("3:7:reminder:3")
    sent = walk(inv, date(2026, 11, 2), 30, pol, history=history)
    assert [(day, a.key, a.amount) for day, a in sent] == [
        (date(2026, 11, 3), "3:7:fee:daily:0", D("1.67")),
        (date(2026, 11, 4), "3:7:fee:daily:1", D("1.66"))]
    history += [PastAction(a.key, "done", a.amount) for _, a in sent]
    assert next_action_at(inv, history, pol, UK, at(date(2026, 11, 4))) is None


def test_a_payment_dated_ahead_does_not_hold_back_what_is_due_before_it() -> None:
    # 980.00 entered on 2 Nov, dated Thursday 5 Nov; the invoice is due 2 Nov.
    pol = policy(early_payment_discount=TWO_TEN)
    inv = discounted((date(2026, 11, 5), "980.00"), due_date=date(2026, 11, 2))
    now = at(date(2026, 11, 2))
    assert next_action_at(inv, [], pol, UK, now) == now
    [reminder] = evaluate(inv, [], pol, UK, now)
    assert (reminder.key, reminder.amount) == ("3:7:reminder:1", D("20.00"))
    history = done(reminder.key)
    assert next_action_at(inv, history, pol, UK, now) == utc(2026, 11, 5, 9)
    assert [a.key for a in evaluate(inv, history, pol, UK, at(date(2026, 11, 5)))] == [
        "3:7:discount"]


# ----------------------------------------------------------------------------- properties

CHANNELS = ("provider_email", "dunwell_email", "note", "call_task")
TONES = ("friendly", "firm", "final")


def cents(low: int, high: int) -> st.SearchStrategy[Decimal]:
    return st.integers(low, high).map(lambda n: D(n).scaleb(-2))


def tenths(low: int, high: int) -> st.SearchStrategy[Decimal]:
    return st.integers(low, high).map(lambda n: D(n).scaleb(-1))


@st.composite
def ladders(draw: st.DrawFn) -> tuple[ReminderStep, ...]:
    offsets = sorted(draw(st.lists(st.integers(-10, 45), min_size=1, max_size=4, unique=True)))
    return tuple(ReminderStep(offset_days=offset, channel=draw(st.sampled_from(CHANNELS)),
                              tone=draw(st.sampled_from(TONES))) for offset in offsets)


REPEATS = st.one_of(
    st.none(),
    st.builds(Repeat, every_days=st.integers(1, 30),
              max_times=st.none() | st.integers(1, 5), channel=st.sampled_from(CHANNELS)),
    st.builds(Repeat, day_of_month=st.integers(1, 28),
              max_times=st.none() | st.integers(1, 5), channel=st.sampled_from(CHANNELS)))


@st.composite
def fee_rules(draw: st.DrawFn) -> LateFeeRule:
    common: dict[str, Any] = {
        "grace_days": draw(st.integers(0, 20)),
        "cap_percent_of_principal": draw(st.none() | tenths(5, 200)),
        "minimum": draw(st.none() | cents(50, 500)),
        "maximum": draw(st.none() | cents(500, 5000))}
    periodic: dict[str, Any] = {"period_days": draw(st.integers(1, 30)),
                                "max_charges": draw(st.none() | st.integers(1, 6))}
    common["placement"] = draw(st.sampled_from(("line", "line", "statement_invoice")))
    kind = draw(st.sampled_from(("flat", "percentage", "recurring", "interest")))
    if kind == "flat":
        return FlatFeeRule(amount=draw(cents(100, 10_000)), **common)
    if kind == "percentage":
        return PercentageFeeRule(percent=draw(tenths(1, 100)), **common)
    if kind == "recurring":
        return RecurringPercentageFeeRule(percent=draw(tenths(1, 50)), **common, **periodic)
    return DailyInterestRule(annual_rate_percent=draw(tenths(10, 250)), **common, **periodic)


ESCALATIONS = st.builds(
    Escalation,
    call_task=st.none() | st.builds(CallTask, after_days=st.integers(0, 90),
                                    assignee=st.just("Ann")),
    stop_service=st.none() | st.builds(StopService, after_days=st.integers(0, 90),
                                       webhook_url=st.just("https://hooks.example.com/s")),
    demand_letter=st.none() | st.builds(DemandLetter, after_days=st.integers(0, 90)),
    agency_case=st.none() | st.builds(AgencyCase, after_days=st.integers(0, 90)))


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    if draw(st.booleans()):
        send_time, hours = time(0), 24
    else:
        hour = draw(st.integers(0, 16))
        send_time, hours = time(hour, draw(st.sampled_from((0, 30)))), draw(st.integers(1, 7))
    fees = draw(st.lists(fee_rules(), max_size=3))
    return Policy(
        reminder_steps=draw(ladders()), repeat=draw(REPEATS), send_time=send_time,
        send_window_hours=hours, business_days_only=draw(st.booleans()),
        min_amount_due=draw(st.sampled_from((D("0.01"), D("0"), D("50.00"), D("400.00")))),
        statement_day=draw(st.none() | st.integers(1, 28)),
        late_fees=tuple(LateFee(id=f"f{n}", rule=rule) for n, rule in enumerate(fees)),
        early_payment_discount=draw(st.none() | st.builds(
            EarlyPaymentDiscount, percent=tenths(5, 50), within_days=st.integers(0, 20))),
        payment_plans=PlanReminders(grace_days=draw(st.integers(0, 5)),
                                    channel=draw(st.sampled_from(CHANNELS))),
        escalation=draw(ESCALATIONS))


@dataclass(frozen=True)
class Scenario:
    """One invoice's life: payments arrive on their dates, a plan may be agreed on a day."""

    policy: Policy
    calendar: OrgCalendar
    base: InvoiceState  # total, due and issue dates; payments and plan come in over time
    payments: tuple[tuple[date, Decimal], ...]
    plan: PaymentPlan | None
    plan_from: date
    start: date
    days: int
    minutes_into_window: int
    known_ahead: int  # a payment can be entered a few days before the date it carries

    def invoice_on(self, day: date, ledger: Sequence[PastAction]) -> InvoiceState:
        """What a sync on `day` reads: the payments entered so far, the plan once agreed, the
        fees Dunwell added to the balance, and a realised discount that closed the invoice."""
        total = self.base.principal
        known = [(when, amount) for when, amount in self.payments
                 if when <= day + timedelta(days=self.known_ahead)]
        paid = sum((amount for _, amount in known), D(0))
        fees = sum((p.amount or D(0) for p in ledger if ":fee:" in p.key), D(0))
        due = max(total + fees - paid, D(0))
        if any(p.key.endswith(":discount") for p in ledger):
            due = D(0)
        return replace(self.base, total=total, amount_due=due,
                       status="open" if due > 0 else "paid",
                       payments=tuple(known),
                       plan=self.plan if day >= self.plan_from else None)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    pol = draw(policies())
    due = date(2025, 12, 1) + timedelta(days=draw(st.integers(0, 420)))
    issue = due - timedelta(days=draw(st.integers(0, 45)))
    total = draw(cents(1000, 500_000))
    payments: list[tuple[date, Decimal]] = [
        (issue + timedelta(days=draw(st.integers(0, 150))),
         (total * draw(st.integers(5, 100)) / 100).quantize(D("0.01")))
        for _ in range(draw(st.integers(0, 3)))]
    offer = pol.early_payment_discount
    if offer is not None and draw(st.booleans()):  # pays all but the discount, maybe in time
        discount = (total * offer.percent / 100).quantize(D("0.01"))
        payments.append((issue + timedelta(days=offer.within_days + draw(st.integers(-3, 2))),
                         total - discount))
    plan, plan_from = None, date.max
    if draw(st.booleans()):
        plan_from = issue + timedelta(days=draw(st.integers(0, 60)))
        paid_before = sum((a for w, a in payments if w < plan_from), D(0))
        left = total - paid_before
        count = draw(st.integers(1, 4))
        if left > count:
            first = plan_from + timedelta(days=draw(st.integers(1, 20)))
            gap = draw(st.integers(7, 35))
            part = (left / count).quantize(D("0.01"))
            instalments = tuple(
                Instalment(first + timedelta(days=n * gap),
                           part if n < count - 1 else left - part * (count - 1))
                for n in range(count))
            plan = PaymentPlan(plan_id=draw(st.integers(1, 9)), instalments=instalments,
                               paid_before=paid_before)
            for instalment in instalments:  # kept, late, or missed
                delay = draw(st.none() | st.integers(-3, 6))
                if delay is not None:
                    payments.append((instalment.due_date + timedelta(days=delay),
                                     instalment.amount))
    payments.sort()
    base = InvoiceState(
        invoice_id=7, org_id=3, number="INV-0007", status="open", due_date=due,
        amount_due=total, currency="GBP", has_email=draw(st.booleans()), issue_date=issue,
        total=total, is_business=draw(st.booleans()))
    hours = pol.send_window_hours
    return Scenario(
        policy=pol, calendar=draw(st.sampled_from((UK, ISRAEL))), base=base,
        payments=tuple(payments), plan=plan, plan_from=plan_from, start=issue,
        days=draw(st.integers(60, 150)),
        minutes_into_window=draw(st.integers(0, hours * 60 - 1)),
        known_ahead=draw(st.sampled_from((0, 0, 0, 3))))


def window(pol: Policy, calendar: OrgCalendar, day: date) -> tuple[datetime, datetime] | None:
    """The sending window of a local day, worked out here independently of the engine."""
    if pol.business_days_only and not calendar.is_business_day(day):
        return None
    start = datetime.combine(day, pol.send_time)
    end = start + timedelta(hours=pol.send_window_hours)
    return (calendar.at_local(day, pol.send_time), calendar.at_local(end.date(), end.time()))


PROPERTY = settings(max_examples=150, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(scenarios())
def test_walking_any_invoice_day_by_day_keeps_the_planner_promises(scn: Scenario) -> None:
    pol, calendar = scn.policy, scn.calendar
    ledger: list[PastAction] = []
    planned: set[str] = set()
    promised: datetime | None = None
    seen: InvoiceState | None = None
    for n in range(scn.days):
        day = scn.start + timedelta(days=n)
        inv = scn.invoice_on(day, ledger)
        if inv != seen:  # a sync at midnight changed the invoice: the promise is renewed
            midnight = calendar.at_local(day, time(0))
            promised = next_action_at(inv, ledger, pol, calendar, midnight)
            seen = inv
        start = calendar.at_local(day, pol.send_time)
        moments = sorted(now for now in {
            start, start + timedelta(minutes=scn.minutes_into_window),
            start - timedelta(minutes=1), start + timedelta(hours=pol.send_window_hours)}
            if calendar.today(now) == day)  # just outside the window too, on the same day
        for now in moments:
            inv = scn.invoice_on(day, ledger)
            actions = evaluate(inv, ledger, pol, calendar, now)
            # (c) never early: nothing before the moment promised at the previous step.
            if promised is None or now < promised:
                assert actions == [], (now, promised, actions)
            # (b) a paid invoice gets nothing, now or later.
            if inv.status != "open":
                assert actions == []
                assert next_action_at(inv, ledger, pol, calendar, now) is None
            # (d) all due, all inside the sending window in the organisation's local time.
            hours = window(pol, calendar, calendar.today(now))
            for action in actions:
                assert action.scheduled_for <= now
                assert hours is not None and hours[0] <= now < hours[1], (now, hours)
            # (a) no key is ever planned twice.
            keys = [action.key for action in actions]
            assert len(set(keys)) == len(keys) and not planned & set(keys), keys
            planned.update(keys)
            ledger.extend(PastAction(a.key, "done", a.amount, a.scheduled_for) for a in actions)
            promised = next_action_at(scn.invoice_on(day, ledger), ledger, pol, calendar, now)
            assert promised is None or promised >= now
            # Without fee rules it is exact too: inside the window, "now" means something is
            # due. (A fee period that rounds to nothing is never charged and keeps the
            # invoice awake: see rules/fees.py.)
            if not pol.late_fees and not actions and hours and hours[0] <= now < hours[1]:
                assert promised != now, (now, inv, ledger)
    # (e) a capped rule never charges more than its cap, before and after a broken plan.
    charged = {p.key: p.amount or D(0) for p in ledger}
    for fee in pol.late_fees:
        cap = fee.rule.cap_percent_of_principal
        if cap is None:
            continue
        total = sum((amount for key, amount in charged.items()
                     if key.startswith((f"3:7:fee:{fee.id}:", f"3:7:fee:{fee.id}.plan"))),
                    D(0))
        assert total <= floor_money(scn.base.principal * cap / 100, "GBP"), (fee, total)



# ------------------------------------------------------------------ policy validation (v2)

BASE = policy_to_json(POLICY)


@pytest.mark.parametrize(("change", "message"), [
    ({"repeat": {"every_days": 7, "day_of_month": 1}},
     "repeat: give either every_days or day_of_month"),
    ({"repeat": {"template": "statement"}}, "repeat: give either every_days or day_of_month"),
    ({"repeat": {"every_days": 0}}, "repeat.every_days: Input should be greater than or equal"
                                    " to 1"),
    ({"repeat": {"day_of_month": 29}}, "repeat.day_of_month: Input should be less than or equal"
                                       " to 28"),
    ({"repeat": {"every_days": 7, "max_times": 0}},
     "repeat.max_times: Input should be greater than or equal to 1"),
    ({"late_fees": [{"id": "late", "rule": {"kind": "flat", "amount": "25"}},
                    {"id": "late", "rule": {"kind": "percentage", "percent": "2"}}]},
     "late_fees: two late fees have the id 'late'"),
    ({"late_fees": [{"id": "late", "rule": {"kind": "flat", "amount": "-5"}}]},
     "late_fees.0.rule.flat.amount: Input should be greater than or equal to 0"),
    ({"late_fees": [{"id": "ok", "rule": {"kind": "flat", "amount": "5"}},
                    {"id": "late", "rule": {"kind": "flat", "amount": 2.5}}]},
     "late_fees.1.rule.flat.amount: give amounts and rates as strings ('12.50') or integers,"
     " not floats"),
    ({"late_fees": [{"id": "i", "rule": {"kind": "daily_interest",
                                         "annual_rate_percent": "8", "period_days": 0}}]},
     "late_fees.0.rule.daily_interest.period_days: Input should be greater than or equal to 1"),
    ({"late_fees": [{"id": "bad id", "rule": {"kind": "flat", "amount": "5"}}]},
     "late_fees.0.id: id 'bad id' must be 1 to 64 of A-Z, a-z, 0-9, '_', '.', '-'"),
    ({"late_fees": [{"id": "x", "rule": {"kind": "bogus"}}]},
     "late_fees.0.rule: Input tag 'bogus' found using 'kind' does not match any of the"
     " expected tags"),
    ({"early_payment_discount": {"percent": "60", "within_days": 10}},
     "early_payment_discount.percent: Input should be less than or equal to 50"),
    ({"payment_plans": {"offsets": [3, 0]}}, "payment_plans.offsets: offsets must be strictly"
                                             " increasing"),
    ({"escalation": {"call_task": {"after_days": 5, "assignee": ""}}},
     "escalation.call_task.assignee: String should have at least 1 character"),
    ({"escalation": {"stop_service": {"after_days": 5, "webhook_url": "ftp://x"}}},
     "escalation.stop_service.webhook_url: URL scheme should be 'http' or 'https'"),
])
def test_bad_v2_sections_are_refused_with_the_field_named(change: dict[str, Any],
                                                          message: str) -> None:
    with pytest.raises(PolicyError) as caught:
        policy_from_json({**BASE, **change})
    assert str(caught.value).startswith(message)


def test_v2_sections_round_trip() -> None:
    pol = policy(repeat=Repeat(day_of_month=1, max_times=3), late_fees=(FLAT, INTEREST),
                 early_payment_discount=TWO_TEN, escalation=ESCALATION)
    assert policy_from_json(policy_to_json(pol)) == pol


@pytest.mark.parametrize(("overrides", "message"), [
    ({"policy": {"colour": "red"}}, "policy: cannot override colour"),
    ({"policy": {"version": 1}}, "policy: cannot override version"),
    ({"policy": {"zeta": 1, "version": 2, "alpha": 1}},
     "policy: cannot override alpha, version, zeta"),
    ({"excluded": 1}, "excluded: Input should be a valid boolean"),
])
def test_contact_overrides_of_unknown_sections_or_the_version_are_refused(
        overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyError) as caught:
        contact_overrides_from_json(overrides)
    assert str(caught.value) == message


def test_contact_overrides_replace_whole_sections() -> None:
    pol = policy(late_fees=(FLAT, INTEREST), repeat=Repeat(every_days=7),
                 escalation=ESCALATION)
    overrides = contact_overrides_from_json({"policy": {
        "late_fees": [], "repeat": {"day_of_month": 15, "channel": "note"}}})
    assert overrides == ContactOverrides(policy={
        "late_fees": [], "repeat": {"day_of_month": 15, "channel": "note"}})
    mine = with_contact_overrides(pol, overrides)
    assert mine == pol.model_copy(update={
        "late_fees": (), "repeat": Repeat(day_of_month=15, channel="note")})
    # A section is replaced whole, not merged: escalation without a call task has none.
    mine = with_contact_overrides(pol, contact_overrides_from_json(
        {"policy": {"escalation": {"demand_letter": {"after_days": 40}}}}))
    assert mine.escalation == Escalation(demand_letter=DemandLetter(after_days=40))
    assert with_contact_overrides(pol, ContactOverrides()) is pol
    # What a section holds is checked when it is applied, naming the field.
    with pytest.raises(PolicyError) as caught:
        with_contact_overrides(pol, contact_overrides_from_json(
            {"policy": {"repeat": {"every_days": 0}}}))
    assert str(caught.value) == "repeat.every_days: Input should be greater than or equal to 1"


@st.composite
def books(draw: st.DrawFn) -> tuple[Policy, OrgCalendar, datetime, list[InvoiceState]]:
    """Many invoices under one policy at one moment, crowded onto a few due dates, so that
    invoices differing only in what the plain case must not ignore share a memo entry."""
    pol = draw(policies())
    calendar = draw(st.sampled_from((UK, ISRAEL)))
    today = date(2026, 1, 1) + timedelta(days=draw(st.integers(0, 400)))
    now = calendar.at_local(today, time(draw(st.integers(0, 23)), draw(st.integers(0, 59))))
    due_dates = [today + timedelta(days=d)
                 for d in draw(st.lists(st.integers(-120, 40), min_size=1, max_size=4))]
    invoices = []
    for n in range(draw(st.integers(5, 40))):
        currency = draw(st.sampled_from(("GBP", "GBP", "JPY", "EUR")))
        total = draw(st.sampled_from((D("0.01"), D("0.35"), D("3"), D("49.99"), D("50"),
                                      D("401"), D("12000"))))
        due = draw(st.sampled_from(due_dates))
        issue = due - timedelta(days=draw(st.integers(0, 40)))
        payments = tuple(sorted(
            (issue + timedelta(days=draw(st.integers(0, 90))), D("0.01"))
            for _ in range(draw(st.integers(0, 2)))))
        paid = sum((a for _, a in payments), D(0))
        invoices.append(InvoiceState(
            invoice_id=n + 1, org_id=3, number=f"INV-{n + 1}", status="open",
            due_date=due, amount_due=max(total - paid, D("0.01")), currency=currency,
            has_email=draw(st.booleans()), issue_date=draw(st.none() | st.just(issue)),
            total=total, payments=payments, is_business=draw(st.booleans()),
            excluded=draw(st.booleans()) and draw(st.booleans()),
            disputed=draw(st.booleans()) and draw(st.booleans())))
    return pol, calendar, now, invoices


LEDGER_STATUSES = ("planned", "claimed", "done", "skipped", "failed", "dead")


@st.composite
def ledger_shapes(draw: st.DrawFn, pol: Policy) -> list[tuple[str, str, Decimal | None]]:
    """A ledger as key tails (what follows "org:invoice:"), statuses and amounts: reminders,
    fee periods with what they charged, escalations, the discount, and now and then an entry
    keyed by another invoice."""
    tails = [f"reminder:{n}" for n in range(4)] + ["call_task", "stop_service",
                                                    "demand_letter", "agency_case", "discount"]
    tails += [f"fee:{fee.id}:{k}" for fee in pol.late_fees for k in range(3)]
    chosen = draw(st.lists(st.sampled_from(tails), unique=True, max_size=6))
    shape: list[tuple[str, str, Decimal | None]] = [
        (tail, draw(st.sampled_from(LEDGER_STATUSES)),
         draw(st.sampled_from((D("0.01"), D("1.50"), D("40"), D("900")))) if tail.startswith(
             "fee:") else None) for tail in chosen]
    if draw(st.integers(0, 9)) == 0:
        shape.append(("!other-invoice", "done", None))
    return shape


def twins(shape: list[tuple[str, str, Decimal | None]]
          ) -> list[list[tuple[str, str, Decimal | None]]]:
    """The same keys with other statuses, and with other amounts: what the planner must not
    mistake for the shape itself."""
    statuses = [(tail, LEDGER_STATUSES[(LEDGER_STATUSES.index(status) + shift) % 6], amount)
                for shift in (1, 2) for tail, status, amount in shape]
    amounts = [(tail, status, None if amount is None else amount * 1000 + D("0.01"))
               for tail, status, amount in shape]
    return [statuses[:len(shape)], statuses[len(shape):], amounts]


@PROPERTY
@given(books(), st.data())
def test_the_planner_of_a_pass_gives_next_action_ats_own_answers(
        book: tuple[Policy, OrgCalendar, datetime, list[InvoiceState]], data: st.DataObject
) -> None:
    """Ledgers of a few shapes shared between invoices (as a real book's are: invoices at the
    same step), so that the planner's answers for one are reused for another."""
    pol, calendar, now, invoices = book
    drawn = data.draw(st.lists(ledger_shapes(pol), min_size=1, max_size=3))
    shapes = [[], *drawn, *(twin for shape in drawn for twin in twins(shape))]
    planner = NextActionPlanner(calendar, now)
    for inv in invoices:
        shape = shapes[data.draw(st.integers(0, len(shapes) - 1))]
        ledger = [PastAction(f"3:{inv.invoice_id + 1000}:reminder:0" if tail[0] == "!"
                             else f"3:{inv.invoice_id}:{tail}", status, amount)
                  for tail, status, amount in shape]
        assert planner(inv, ledger, pol) == next_action_at(inv, ledger, pol, calendar, now), (
            inv, ledger)


def test_the_planner_tells_a_principal_too_small_for_the_cap_from_one_that_is_not() -> None:
    pol = policy(late_fees=(LateFee(id="interest", rule=DailyInterestRule(
        annual_rate_percent=D(8), period_days=30, grace_days=0,
        cap_percent_of_principal=D(1))),))
    now = at(date(2026, 12, 2))
    planner = NextActionPlanner(UK, now)
    # No email address: no reminder can go, so the interest period alone wakes the invoice.
    tiny = invoice(DUE, amount_due=D("0.99"), total=D("0.99"), has_email=False)  # 1 %: 0.00
    big = invoice(DUE, amount_due=D("1.00"), total=D("1.00"), has_email=False)  # 1 %: 0.01
    for inv in (big, tiny, big):
        assert planner(inv, [], pol) == next_action_at(inv, [], pol, UK, now)
    assert planner(tiny, [], pol) is None
    assert planner(big, [], pol) == utc(2027, 1, 4, 9)  # 2 Jan + 30 days' period, Monday 9:00


def test_the_planner_tells_a_fee_rule_at_its_cap_from_one_below_it() -> None:
    """Same ledger keys and statuses, different amounts charged: 10 % of 1,000.00 is a cap
    of 100.00. Periods 0 and 1 are in the ledger; with 99.98 charged period 2 (1 Feb to 2 Mar,
    charged the day after, Wednesday 3 Mar 2027) still goes; with 100.00 charged the cap is
    reached and, with no email address for reminders, nothing is left."""
    pol = policy(late_fees=(LateFee(id="interest", rule=DailyInterestRule(
        annual_rate_percent=D(8), period_days=30, grace_days=0,
        cap_percent_of_principal=D(10))),))
    now = at(date(2027, 1, 5))
    planner = NextActionPlanner(UK, now)
    inv = invoice(DUE, amount_due=D("1000.00"), total=D("1000.00"), has_email=False)

    def ledger(charged: str) -> list[PastAction]:
        return [PastAction(f"3:7:fee:interest:{k}", "done", D(charged) / 2) for k in (0, 1)]

    for charged in ("99.98", "100.00", "99.98"):
        assert planner(inv, ledger(charged), pol) == next_action_at(
            inv, ledger(charged), pol, UK, now)
    assert planner(inv, ledger("100.00"), pol) is None
    assert planner(inv, ledger("99.98"), pol) == utc(2027, 3, 3, 9)


def test_a_fee_for_a_statement_invoice_waits_for_the_statement_day() -> None:
    """Flat fee due the day after 2 Dec; the statement day is the 5th, a Saturday in December
    2026, so it goes on Monday 7 Dec at 09:00 with the contact's other statement fees."""
    pol = policy(statement_day=5, late_fees=(LateFee(id="late", rule=FlatFeeRule(
        amount=D(40), placement="statement_invoice")),))
    inv = invoice(DUE, has_email=False, contact_id=9)  # no email: no reminder in the way
    assert evaluate(inv, [], pol, UK, at(date(2026, 12, 4))) == []
    assert next_action_at(inv, [], pol, UK, at(date(2026, 12, 4))) == utc(2026, 12, 7, 9)
    [fee] = evaluate(inv, [], pol, UK, at(date(2026, 12, 7)))
    assert (fee.key, fee.amount, fee.scheduled_for) == ("3:7:fee:late:0", D(40),
                                                        utc(2026, 12, 7, 9))
    assert (fee.details["statement"], fee.details["contact_id"],
            fee.details["placement"]) == ("2026-12-05", 9, "statement_invoice")


def test_the_statement_day_is_the_next_one_on_or_after_the_day() -> None:
    pol = policy(statement_day=28)
    assert statement_day(date(2026, 12, 28), pol) == date(2026, 12, 28)
    assert statement_day(date(2026, 12, 29), pol) == date(2027, 1, 28)
    assert statement_day(date(2026, 2, 1), policy()) == date(2026, 2, 1)  # the 1st by default
    assert statement_day(date(2026, 2, 2), policy()) == date(2026, 3, 1)
