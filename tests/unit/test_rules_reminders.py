from __future__ import annotations

import time as wall
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from rules import (
    InvoiceState,
    OrgCalendar,
    PastAction,
    default_policy,
    evaluate,
    next_action_at,
)

UK = OrgCalendar("Europe/London", "GB")
POLICY = default_policy()  # steps -3, 0, +7, +21 at 09:00 local, 8-hour window


def invoice(due: date, **changes: object) -> InvoiceState:
    base = {"invoice_id": 7, "org_id": 3, "number": "INV-0007", "status": "open",
            "due_date": due, "amount_due": Decimal("120.00"), "currency": "GBP"}
    return InvoiceState(**{**base, **changes})  # type: ignore[arg-type]


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return UK.at_local(day, datetime.min.time().replace(hour=hour, minute=minute))


def walk(inv: InvoiceState, start: date, days: int) -> list[tuple[date, int]]:
    """Run the 10:00 job every day, recording what was sent; the ledger grows as it goes."""
    history: list[PastAction] = []
    sent = []
    for n in range(days):
        day = start + timedelta(days=n)
        for action in evaluate(inv, history, POLICY, UK, at(day, 10)):
            history.append(PastAction(action.key, "done"))
            sent.append((day, action.step_index))
    return sent


def test_the_ladder_walked_day_by_day() -> None:
    # Due Wednesday 2 December 2026: -3 is Sunday 29 Nov -> Monday 30 Nov; +7 Wed 9 Dec;
    # +21 Wed 23 Dec.
    sent = walk(invoice(date(2026, 12, 2)), date(2026, 11, 20), 60)
    assert sent == [(date(2026, 11, 30), 0), (date(2026, 12, 2), 1), (date(2026, 12, 9), 2),
                    (date(2026, 12, 23), 3)]


def test_christmas_moves_a_step_to_the_next_business_day() -> None:
    # Due Friday 18 Dec: +7 is Friday 25 Dec (holiday), 26-27 weekend, 28 substitute holiday.
    sent = walk(invoice(date(2026, 12, 18)), date(2026, 12, 10), 40)
    assert (date(2026, 12, 29), 2) in sent
    assert all(UK.is_business_day(day) for day, _ in sent)


def test_the_send_window() -> None:
    inv = invoice(date(2026, 11, 24))
    day = date(2026, 11, 24)
    assert evaluate(inv, [], POLICY, UK, at(day, 3)) == []
    assert evaluate(inv, [], POLICY, UK, at(day, 8, 59)) == []
    assert [a.step_index for a in evaluate(inv, [], POLICY, UK, at(day, 9))] == [1]
    assert [a.step_index for a in evaluate(inv, [], POLICY, UK, at(day, 16, 59))] == [1]
    assert evaluate(inv, [], POLICY, UK, at(day, 17, 30)) == []


def test_a_newly_synced_overdue_invoice_gets_one_reminder_not_four() -> None:
    inv = invoice(date(2026, 10, 1))
    actions = evaluate(inv, [], POLICY, UK, at(date(2026, 11, 24), 10))
    assert [(a.step_index, a.template, a.key) for a in actions] == [
        (3, "overdue_2", "3:7:reminder:3")]
    later = [PastAction("3:7:reminder:3", "done")]
    assert next_action_at(inv, later, POLICY, UK, at(date(2026, 11, 24), 10)) is None
    # a later step already in the ledger supersedes earlier, unsent ones
    assert evaluate(inv, [PastAction("3:7:reminder:2", "done")], POLICY, UK,
                    at(date(2026, 11, 24), 10))[0].step_index == 3


def test_nothing_for_invoices_that_must_not_be_chased() -> None:
    now = at(date(2026, 11, 24), 10)
    due = date(2026, 11, 20)
    for inv in (invoice(due, status="paid"), invoice(due, status="draft"),
                invoice(due, status="voided"), invoice(due, amount_due=Decimal("0.00")),
                invoice(due, amount_due=Decimal("0.009")), invoice(due, has_email=False)):
        assert evaluate(inv, [], POLICY, UK, now) == []
        assert next_action_at(inv, [], POLICY, UK, now) is None


def test_keys_are_deterministic() -> None:
    now = at(date(2026, 11, 24), 10)
    first = evaluate(invoice(date(2026, 11, 24)), [], POLICY, UK, now)
    second = evaluate(invoice(date(2026, 11, 24)), [], POLICY, UK, now)
    assert first == second and first[0].key == "3:7:reminder:1"
    assert first[0].scheduled_for == datetime(2026, 11, 24, 9, tzinfo=UTC)


def test_next_action_at_values() -> None:
    inv = invoice(date(2026, 12, 2))
    # Before the first step: its moment, Monday 30 Nov 09:00 GMT.
    assert next_action_at(inv, [], POLICY, UK, at(date(2026, 11, 20), 10)) == datetime(
        2026, 11, 30, 9, tzinfo=UTC)
    # Due now but after today's window: tomorrow's window start.
    assert next_action_at(inv, [], POLICY, UK, at(date(2026, 11, 30), 18)) == datetime(
        2026, 12, 1, 9, tzinfo=UTC)
    # Due and inside the window: now.
    now = at(date(2026, 11, 30), 11)
    assert next_action_at(inv, [], POLICY, UK, now) == now


def test_evaluate_is_empty_before_next_action_at_stepping_hourly() -> None:
    for due in (date(2026, 12, 2), date(2026, 12, 18), date(2026, 11, 1)):
        inv = invoice(due)
        history: list[PastAction] = []
        now = datetime(2026, 11, 15, 0, tzinfo=UTC)
        end = now + timedelta(days=60)
        while now < end:
            expected = next_action_at(inv, history, POLICY, UK, now)
            actions = evaluate(inv, history, POLICY, UK, now)
            if expected is None or now < expected:
                assert actions == [], (due, now, expected)
            else:
                assert actions, (due, now, expected)
                history.append(PastAction(actions[0].key, "done"))
            now += timedelta(hours=1)


def test_planning_speed_figure(capsys) -> None:  # type: ignore[no-untyped-def]
    invoices = [invoice(date(2026, 9, 1) + timedelta(days=n % 120), invoice_id=n)
                for n in range(100_000)]
    now = at(date(2026, 11, 24), 10)
    started = wall.perf_counter()
    planned = sum(len(evaluate(i, [], POLICY, UK, now)) for i in invoices)
    elapsed = wall.perf_counter() - started
    with capsys.disabled():
        print(f"\nplanned {planned} actions over 100,000 invoices in {elapsed:.2f} s")
    assert planned > 0
