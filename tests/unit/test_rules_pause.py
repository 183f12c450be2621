"""A collector's pause and "send the next reminder now": a paused invoice gets no reminder
until the day chasing resumes (none at all while paused without a day), and then the ladder
goes on from the steps already taken, and fees and interest count none of the paused days (as
none of a dispute's); the next step now is the ladder's next open one, refused (with a code)
wherever the daily run would leave the invoice alone."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from rules import InvoiceState, OrgCalendar, PastAction, default_policy, evaluate, next_action_at
from rules.engine import NextActionPlanner, reminder_now
from rules.fees import DailyInterestRule, RecurringPercentageFeeRule
from rules.invoice import Hold, Instalment, Pause, PaymentPlan, Promise
from rules.policy import LateFee

UK = OrgCalendar("Europe/London", "GB")
POLICY = default_policy()  # steps at -3, 0, +7, +21 days, by the provider's email
DUE = date(2026, 11, 2)


def invoice(pause: Pause | None = None, **more: object) -> InvoiceState:
    return InvoiceState(invoice_id=7, org_id=3, number="INV-0007", status="open", due_date=DUE,
                        amount_due=Decimal("120.00"), currency="GBP", pause=pause,
                        **more)  # type: ignore[arg-type]


def at(day: date, hour: int = 10) -> datetime:
    return UK.at_local(day, time(hour))


def walk(inv: InvoiceState, start: date, days: int,
         history: list[PastAction] | None = None) -> list[tuple[date, str]]:
    history = list(history or [])
    sent = []
    for n in range(days):
        day = start + timedelta(days=n)
        for action in evaluate(inv, history, POLICY, UK, at(day)):
            history.append(PastAction(action.key, "done", at=action.scheduled_for))
            sent.append((day, action.key.split(":", 2)[2]))
    return sent


def test_nothing_is_chased_while_paused_and_the_ladder_goes_on_from_where_it_was() -> None:
    first = [PastAction("3:7:reminder:0", "done", at=at(date(2026, 10, 30)))]
    paused = invoice(Pause(date(2026, 11, 20)))
    sent = walk(paused, date(2026, 11, 1), 40, first)
    assert all(day >= date(2026, 11, 20) for day, _ in sent)
    # On the day it resumes, the step the ladder has reached (+7 days), not the first again;
    # the next one keeps its day (+21).
    assert sent == [(date(2026, 11, 20), "reminder:2"), (date(2026, 11, 23), "reminder:3")]
    moment = next_action_at(paused, first, POLICY, UK, at(date(2026, 11, 5)))
    assert moment is not None and UK.today(moment) == date(2026, 11, 20)
    planner = NextActionPlanner(UK, at(date(2026, 11, 5)))
    assert planner(paused, first, POLICY) == moment


def test_a_pause_without_a_day_holds_until_resumed() -> None:
    paused = invoice(Pause(None))
    assert walk(paused, date(2026, 10, 25), 60) == []
    assert next_action_at(paused, [], POLICY, UK, at(date(2026, 11, 5))) is None
    assert NextActionPlanner(UK, at(date(2026, 11, 5)))(paused, [], POLICY) is None
    # A pause whose day has passed holds nothing.
    assert walk(invoice(Pause(date(2026, 10, 1))), date(2026, 11, 2), 1) == [
        (date(2026, 11, 2), "reminder:1")]


def test_the_next_reminder_now_is_the_ladders_next_open_step() -> None:
    now = at(date(2026, 11, 5), 15)
    history = [PastAction("3:7:reminder:0", "done", at=at(date(2026, 10, 30))),
               PastAction("3:7:reminder:1", "done", at=at(date(2026, 11, 2)))]
    step = reminder_now(invoice(), history, POLICY, UK, now, "ann@example.com")
    assert not isinstance(step, str)
    assert (step.key, step.scheduled_for, step.step_index, step.tone) == (
        "3:7:reminder:2", now, 2, "firm")
    # Why it goes (3 days overdue), as a code a page words, beside who asked for it.
    assert step.details == {"sent_now_by": "ann@example.com",
                            "why": {"code": "overdue", "days": 3}}
    assert "ann@example.com" in step.reason
    # After it, the daily run does not send the same step again on its day.
    done = [*history, PastAction(step.key, "done", at=now)]
    assert "reminder:2" not in [key for _, key in walk(invoice(), date(2026, 11, 6), 10, done)]


def test_the_next_reminder_now_is_refused_where_the_run_would_not_chase() -> None:
    now = at(date(2026, 11, 5), 15)
    cases = {
        "not_open": replace(invoice(), status="paid"),
        "excluded": invoice(excluded=True),
        "disputed": invoice(disputed=True),
        "paused": invoice(Pause(date(2026, 11, 20))),
        "promised": invoice(promise=Promise(1, date(2026, 11, 10))),
        "plan": invoice(plan=PaymentPlan(1, (Instalment(date(2026, 11, 30),
                                                          Decimal("120.00")),))),
    }
    for code, inv in cases.items():
        assert reminder_now(inv, [], POLICY, UK, now, "ann@example.com") == code, code
    waiting = [PastAction("3:7:reminder:1", "planned", at=now)]
    assert reminder_now(invoice(), waiting, POLICY, UK, now, "a") == "reminder_waiting"
    ended = [PastAction(f"3:7:reminder:{i}", "done", at=now) for i in range(4)]
    assert reminder_now(invoice(), ended, POLICY, UK, now, "a") == "no_step"
    # No email address: an email ladder cannot reach the customer.
    assert reminder_now(invoice(has_email=False), [], POLICY, UK, now, "a") == "no_step"


# 36,500.00 at 10 % is 10.00 a day; 1 % (365.00) every 10 days; every day a sending day.
FEES = POLICY.model_copy(update={"business_days_only": False, "late_fees": (
    LateFee(id="interest", rule=DailyInterestRule(annual_rate_percent=Decimal("10"),
                                                  period_days=10)),
    LateFee(id="fee", rule=RecurringPercentageFeeRule(percent=Decimal("1"), period_days=10)))})
PAUSED_ON, RESUMED_ON = date(2026, 11, 16), date(2026, 12, 6)


def held_walk(how: str, days: int = 60, paused_on: date = PAUSED_ON,
              resumed_on: date = RESUMED_ON) -> list[tuple[date, str, object]]:
    """The daily run from the day before the due date, the invoice as the book reads it each
    day: chasing paused (until a day, or until resumed) or disputed from `paused_on`, chasing
    resumed (or the dispute resolved) on `resumed_on`, the days between a hold from then on.
    Each fee is planned for the day it is found on (none for a moment gone by), and the next
    action moment stored the evening before has woken the invoice by then."""
    base = replace(invoice(), amount_due=Decimal("36500.00"))
    history: list[PastAction] = []
    sent = []
    woken: tuple[InvoiceState, datetime | None] | None = None
    for n in range(days):
        day = date(2026, 11, 1) + timedelta(days=n)
        if day < paused_on or how == "none":
            inv = base
        elif day < resumed_on:
            holding = {"until": {"pause": Pause(resumed_on)}, "resumed": {"pause": Pause(None)},
                       "dispute": {"disputed": True}}[how]
            inv = replace(base, holds=(Hold(paused_on, resumed_on if how == "until" else None),),
                          **holding)  # type: ignore[arg-type]
        else:
            inv = replace(base, holds=(Hold(paused_on, resumed_on),))
        found = evaluate(inv, history, FEES, UK, at(day))
        if found and woken is not None and woken[0] == inv:
            # The moment stored the evening before (same invoice) wakes the run in time.
            assert woken[1] is not None and woken[1] <= at(day), (day, found)
        for action in found:
            if action.kind in ("fee", "interest"):
                assert UK.today(action.scheduled_for) == day, action
            history.append(PastAction(action.key, "done", action.amount,
                                      at=action.scheduled_for))
            sent.append((day, action.key.split(":", 2)[2], action.amount))
        moment = next_action_at(inv, history, FEES, UK, at(day, 18))
        assert NextActionPlanner(UK, at(day, 18))(inv, history, FEES) == moment
        woken = (inv, moment)
    return sent


def test_fees_and_interest_count_no_paused_day_and_resume_on_the_resume_day() -> None:
    """Due 11-02. Before the pause: the fee's periods 0 and 1 (11-03, 11-13) and interest for
    11-03..11-12. Paused 11-16..12-05 (20 days): nothing. Resumed 12-06: no backlog; interest
    period 1 counts 11-13..11-15 and 12-06..12-12 (10 days, 100.00) on 12-13, with the fee's
    period 2 (10 counted days after 11-13); then every 10 days, 20 days later than unpaused."""
    sent = held_walk("until")
    fees = [(day, key, amount) for day, key, amount in sent if key.startswith("fee:")]
    assert fees == [
        (date(2026, 11, 3), "fee:fee:0", Decimal("365.00")),
        (date(2026, 11, 13), "fee:interest:0", Decimal("100.00")),
        (date(2026, 11, 13), "fee:fee:1", Decimal("365.00")),
        (date(2026, 12, 13), "fee:interest:1", Decimal("100.00")),
        (date(2026, 12, 13), "fee:fee:2", Decimal("365.00")),
        (date(2026, 12, 23), "fee:interest:2", Decimal("100.00")),
        (date(2026, 12, 23), "fee:fee:3", Decimal("365.00"))]
    assert not [day for day, _, _ in sent if PAUSED_ON <= day < RESUMED_ON]
    # The ladder goes on on the resume day from the step it had reached: +21 fell in the
    # pause (+7 went before it).
    assert [(day, key) for day, key, _ in sent if key.startswith("reminder")] == [
        (date(2026, 11, 1), "reminder:0"), (date(2026, 11, 2), "reminder:1"),
        (date(2026, 11, 9), "reminder:2"), (date(2026, 12, 6), "reminder:3")]
    # Unpaused, the same 60 days charge 40 days more of each: the pause's 20 and 20 after.
    unpaused = [key for _, key, _ in held_walk("none") if key.startswith("fee:")]
    assert len(unpaused) == len(fees) + 4


def test_a_dispute_and_a_pause_until_resumed_hold_fees_as_a_dated_pause_does() -> None:
    dated = held_walk("until")
    assert held_walk("dispute") == dated
    assert held_walk("resumed") == dated


def test_interest_whose_period_ends_as_a_pause_begins_is_charged_on_the_resume_day() -> None:
    """Interest period 1 is 11-13..11-22; chasing paused from 11-23 to 12-12: it is charged
    (and planned) on 12-13, the day chasing resumes, with the fee's period 2 due that day."""
    sent = held_walk("until", paused_on=date(2026, 11, 23), resumed_on=date(2026, 12, 13))
    assert [(day, key) for day, key, _ in sent if key.startswith("fee:")][2:5] == [
        (date(2026, 11, 13), "fee:fee:1"), (date(2026, 12, 13), "fee:interest:1"),
        (date(2026, 12, 13), "fee:fee:2")]



def holds_walk(holds: tuple[Hold, ...], days: int = 60) -> list[tuple[date, str, object]]:
    """The daily run over `holds` as the book gives them each day (a hold not yet begun is not
    known; one not yet ended has no end), chasing stopped while any holds; the fees charged."""
    base = replace(invoice(), amount_due=Decimal("36500.00"))
    history: list[PastAction] = []
    sent = []
    for n in range(days):
        day = date(2026, 11, 1) + timedelta(days=n)
        known = tuple(h if h.end is None or h.end <= day else Hold(h.start)
                      for h in holds if h.start <= day)
        inv = replace(base, holds=known, disputed=any(h.end is None for h in known))
        for action in evaluate(inv, history, FEES, UK, at(day)):
            history.append(PastAction(action.key, "done", action.amount,
                                      at=action.scheduled_for))
            if action.kind in ("fee", "interest"):
                sent.append((day, action.key.split(":", 2)[2], action.amount))
    return sent


def test_a_customer_dispute_overlapping_an_invoice_pause_holds_its_days_once() -> None:
    """A customer disputed as a whole gives each of its invoices one more hold (collect/book.py)
    beside the invoice's own pauses and disputes: where they overlap, a day is held once, so
    the charges are those of one hold over the days of both."""
    customer = Hold(PAUSED_ON, RESUMED_ON)
    alone = holds_walk((customer,))
    assert alone == [entry for entry in held_walk("dispute") if entry[1].startswith("fee:")]
    # An invoice's pause inside the customer's dispute adds nothing.
    assert holds_walk((customer, Hold(date(2026, 11, 20), date(2026, 11, 30)))) == alone
    # One begun before it and ended inside it: held as one, from its start.
    both = holds_walk((Hold(date(2026, 11, 14), date(2026, 11, 18)), customer))
    assert both == holds_walk((Hold(date(2026, 11, 14), RESUMED_ON),)) != alone
    assert not [day for day, _, _ in both if date(2026, 11, 14) <= day < RESUMED_ON]
