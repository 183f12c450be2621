"""A collector's pause and "send the next reminder now": a paused invoice gets no reminder
until the day chasing resumes (none at all while paused without a day), and then the ladder
goes on from the steps already taken; the next step now is the ladder's next open one, refused
(with a code) wherever the daily run would leave the invoice alone."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from rules import InvoiceState, OrgCalendar, PastAction, default_policy, evaluate, next_action_at
from rules.engine import NextActionPlanner, reminder_now
from rules.invoice import Instalment, Pause, PaymentPlan, Promise

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
    assert step.details == {"sent_now_by": "ann@example.com"}
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
