"""A customer's promise to pay (the portal): chasing waits for the day; broken, it is followed
up once in the firm tone, and the ladder goes on after it."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from rules import InvoiceState, OrgCalendar, default_policy, evaluate, next_action_at
from rules.engine import NextActionPlanner
from rules.invoice import Promise
from rules.promises import follow_up_key, promise_kept
from tests.unit.test_rules_pause import at, walk  # the same day-by-day walk

UK = OrgCalendar("Europe/London", "GB")
POLICY = default_policy()
DUE = date(2026, 11, 2)
PROMISED = date(2026, 11, 20)


def invoice(promise: Promise | None = None) -> InvoiceState:
    return InvoiceState(invoice_id=7, org_id=3, number="INV-0007", status="open", due_date=DUE,
                        amount_due=Decimal("120.00"), currency="GBP", promise=promise)


def test_nothing_is_chased_until_the_promised_day() -> None:
    waiting = invoice(Promise(1, PROMISED))
    assert evaluate(waiting, [], POLICY, UK, at(date(2026, 11, 10))) == []
    assert evaluate(waiting, [], POLICY, UK, at(PROMISED)) == []
    moment = next_action_at(waiting, [], POLICY, UK, at(date(2026, 11, 10)))
    assert moment is not None and UK.today(moment) == date(2026, 11, 23)  # Saturday 21 -> Monday
    # The planner's shared answers take the promise's own path.
    planner = NextActionPlanner(UK, at(date(2026, 11, 10)))
    assert planner(waiting, [], POLICY) == moment


def test_a_broken_promise_is_followed_up_once_then_the_ladder_resumes() -> None:
    sent = walk(invoice(Promise(1, PROMISED)), date(2026, 11, 10), 40)
    assert sent[0] == (date(2026, 11, 23), "promise1:follow_up")
    assert [key for _, key in sent].count("promise1:follow_up") == 1
    assert all(day >= date(2026, 11, 23) for day, _ in sent)
    assert len(sent) > 1  # the ladder goes on after the follow-up
    follow = evaluate(invoice(Promise(1, PROMISED)), [], POLICY, UK, at(date(2026, 11, 23)))
    assert follow[0].tone == "firm" and follow[0].details["broken_promise"] is True
    assert follow[0].key == follow_up_key(invoice(Promise(1, PROMISED)), Promise(1, PROMISED))


def test_a_kept_promise_has_no_follow_up() -> None:
    kept = invoice(Promise(1, PROMISED, kept=True))
    assert not any("promise" in key for _, key in walk(kept, date(2026, 11, 10), 40))
    assert promise_kept(Decimal("50"), Decimal("50"), Decimal("70"))
    assert not promise_kept(Decimal("49.99"), Decimal("50"), Decimal("70"))
    assert promise_kept(Decimal("0"), Decimal("50"), Decimal("0"))
