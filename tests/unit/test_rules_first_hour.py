"""The owner's first hour in rules/: a late invoice's first message is the first contact and
the ladder keeps its spacing from it; fee rules look forward from their effective date; a
fee invoice Dunwell made is never chased on its own."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, time, timedelta
from decimal import Decimal
from typing import Any

import pytest

from rules import (
    InvoiceState,
    OrgCalendar,
    PastAction,
    Policy,
    PolicyError,
    default_policy,
    evaluate,
    next_action_at,
    policy_from_json,
    policy_to_json,
)
from rules.fees import DailyInterestRule, FlatFeeRule
from rules.policy import (
    CallTask,
    DemandLetter,
    Escalation,
    FirstContact,
    LateFee,
    dated_new_rules,
    first_contact_index,
    looking_forward,
)

D = Decimal
UK = OrgCalendar("Europe/London", "GB", "ENG")
POLICY = default_policy()  # -3 friendly, 0 friendly, +7 firm, +21 final; 09:00, 8 hours
TODAY = date(2026, 11, 24)  # a Tuesday


def invoice(due: date, **changes: Any) -> InvoiceState:
    base: dict[str, Any] = {
        "invoice_id": 7, "org_id": 3, "number": "INV-0007", "status": "open",
        "due_date": due, "amount_due": D("1000.00"), "currency": "GBP"}
    return InvoiceState(**{**base, **changes})


def at(day: date, hour: int = 10) -> Any:
    return UK.at_local(day, time(hour))


def walk(inv: InvoiceState, policy: Policy, start: date, days: int) -> list[tuple[date, str,
                                                                                  str | None]]:
    """The daily run at 10:00 for `days` days; the ledger records each action as planned."""
    history: list[PastAction] = []
    sent = []
    for n in range(days):
        day = start + timedelta(days=n)
        for action in evaluate(inv, history, policy, UK, at(day)):
            history.append(PastAction(action.key, "done", action.amount, action.scheduled_for))
            sent.append((day, action.key.split(":", 2)[2], action.tone))
    return sent


def test_an_invoice_84_days_overdue_gets_the_first_contact_then_the_ladder_at_its_spacing(
        ) -> None:
    inv = invoice(TODAY - timedelta(days=84))
    sent = walk(inv, POLICY, TODAY, 40)
    # The first contact is the first step after the due date (+7), friendly, not "final";
    # the last step (+21) follows 14 days later, as the ladder spaces them; nothing else.
    assert sent == [(TODAY, "reminder:2", "friendly"),
                    (TODAY + timedelta(days=14), "reminder:3", "final")]


def test_the_first_contact_step_and_tone_are_the_policys_choice() -> None:
    policy = POLICY.model_copy(update={"first_contact": FirstContact(step=2, tone="firm")})
    inv = invoice(TODAY - timedelta(days=84))
    assert first_contact_index(policy) == 1
    # Step 2 (due date) first, then +7 a week later and +21 a fortnight after that.
    assert walk(inv, policy, TODAY, 40) == [
        (TODAY, "reminder:1", "firm"), (TODAY + timedelta(days=7), "reminder:2", "firm"),
        (TODAY + timedelta(days=21), "reminder:3", "final")]


def test_a_day_late_is_a_missed_day_not_a_first_contact() -> None:
    # Due yesterday, nothing sent: the step due (the due-date reminder) goes, as before.
    [action] = evaluate(invoice(TODAY - timedelta(days=1)), [], POLICY, UK, at(TODAY))
    assert action.key == "3:7:reminder:1" and "first_contact" not in action.details


def test_escalation_counts_from_the_first_contact_never_a_final_demand_first() -> None:
    policy = POLICY.model_copy(update={"escalation": Escalation(
        call_task=CallTask(after_days=30, assignee="Accounts"),
        demand_letter=DemandLetter(after_days=60))})
    inv = invoice(TODAY - timedelta(days=84))
    sent = walk(inv, policy, TODAY, 60)
    assert sent[0] == (TODAY, "reminder:2", "friendly")
    kinds = {key: day for day, key, _ in sent}
    # The contact stands for day +7 of the ladder: the call 23 days later, the letter 53 (on
    # the next business day: the 53rd is a Saturday).
    assert kinds["call_task"] == TODAY + timedelta(days=23)
    assert kinds["demand_letter"] == UK.next_business_day(TODAY + timedelta(days=53)) \
        == date(2027, 1, 18)


def test_pre_existing_lateness_is_charged_nothing_unless_opted_in() -> None:
    flat = LateFee(id="late", rule=FlatFeeRule(amount=D("40.00"), grace_days=30))
    interest = LateFee(id="interest", rule=DailyInterestRule(annual_rate_percent=D("8"),
                                                             period_days=30))
    policy = POLICY.model_copy(update={"late_fees": (flat, interest)})
    forward = looking_forward(policy, TODAY)
    assert {f.effective_from for f in forward.late_fees} == {TODAY}
    late = invoice(TODAY - timedelta(days=84))
    history = [PastAction("3:7:reminder:2", "done", None, at(TODAY))]

    def charges(p: Policy, days: int) -> list[tuple[str, Decimal | None]]:
        found = []
        for n in range(days):
            for action in evaluate(late, history, p, UK, at(TODAY + timedelta(days=n))):
                if action.kind != "reminder":
                    found.append((action.key, action.amount))
                    history.append(PastAction(action.key, "done", action.amount,
                                              action.scheduled_for))
        return found

    # Looking forward: no flat fee (its lateness began before today); interest only for the
    # 30 days from today, charged once that period has ended.
    assert charges(forward, 29) == []
    history[:] = history[:1]
    assert charges(forward, 32) == [("3:7:fee:interest:0", D("6.58"))]  # 1000 * 8% * 30/365
    # Opted in for both rules: the flat fee and the interest since the due date, today.
    history[:] = history[:1]
    opted = looking_forward(policy, TODAY, frozenset({"late", "interest"}))
    got = dict(charges(opted, 1))
    assert got["3:7:fee:late:0"] == D("40.00") and "3:7:fee:interest:0" in got


def test_lateness_after_the_effective_date_is_charged_as_before() -> None:
    flat = LateFee(id="late", rule=FlatFeeRule(amount=D("40.00"), grace_days=30),
                   effective_from=TODAY)
    policy = POLICY.model_copy(update={"late_fees": (flat,)})
    due_soon = invoice(TODAY + timedelta(days=2))
    fees = [(day, key) for day, key, _ in walk(due_soon, policy, TODAY, 40)
            if key.startswith("fee")]
    # Day 31 after the due date is Sunday 27 December; Monday is a bank holiday.
    assert fees == [(UK.next_business_day(due_soon.due_date + timedelta(days=31)),
                     "fee:late:0")] == [(date(2026, 12, 29), "fee:late:0")]


def test_a_fee_invoice_dunwell_made_is_never_chased_on_its_own() -> None:
    flat = LateFee(id="late", rule=FlatFeeRule(amount=D("40.00"), grace_days=0))
    policy = POLICY.model_copy(update={"late_fees": (flat,)})
    ours = invoice(TODAY - timedelta(days=84), own_document=True)
    assert walk(ours, policy, TODAY - timedelta(days=90), 120) == []
    assert next_action_at(ours, [], policy, UK, at(TODAY)) is None
    # The same invoice, not ours, would be reminded and fined.
    assert walk(replace_own(ours), policy, TODAY, 1)


def replace_own(inv: InvoiceState) -> InvoiceState:
    return replace(inv, own_document=False)


def test_rules_added_once_live_are_dated_and_kept_rules_keep_their_date() -> None:
    kept = LateFee(id="late", rule=FlatFeeRule(amount=D("40.00")), effective_from=date(2026, 1, 5))
    before = POLICY.model_copy(update={"late_fees": (kept,)})
    added = LateFee(id="interest", rule=DailyInterestRule(annual_rate_percent=D("8")))
    after = dated_new_rules(POLICY.model_copy(update={"late_fees": (kept, added)}), before, TODAY)
    assert [(f.id, f.effective_from) for f in after.late_fees] == [
        ("late", date(2026, 1, 5)), ("interest", TODAY)]


def test_stored_bodies_read_and_write_as_before_and_bad_first_contacts_are_refused() -> None:
    body = policy_to_json(POLICY.model_copy(update={"late_fees": (
        LateFee(id="late", rule=FlatFeeRule(amount=D("40.00"))),)}))
    assert "first_contact" not in body and "effective_from" not in body["late_fees"][0]
    dated = policy_to_json(looking_forward(policy_from_json(body), TODAY))
    assert dated["late_fees"][0]["effective_from"] == TODAY.isoformat()
    assert policy_from_json(dated) == looking_forward(policy_from_json(body), TODAY)
    with pytest.raises(PolicyError, match="first_contact step 9"):
        policy_from_json({**body, "first_contact": {"step": 9}})
