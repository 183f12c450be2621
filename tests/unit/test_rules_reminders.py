from __future__ import annotations

import time as wall
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest

from rules import (
    InvoiceState,
    OrgCalendar,
    PastAction,
    PlannedAction,
    Policy,
    ReminderStep,
    default_policy,
    evaluate,
    next_action_at,
    reminder_key,
    scheduled_moment,
)

UK = OrgCalendar("Europe/London", "GB")
ISRAEL = OrgCalendar("Asia/Jerusalem", "IL")
POLICY = default_policy()  # steps -3, 0, +7, +21 at 09:00 local, 8-hour window
ANY_HOUR = Policy(reminder_steps=POLICY.reminder_steps, send_time=time(0),
                  send_window_hours=24, business_days_only=False)


def invoice(due: date, **changes: object) -> InvoiceState:
    base: dict[str, object] = {
        "invoice_id": 7, "org_id": 3, "number": "INV-0007", "status": "open",
        "due_date": due, "amount_due": Decimal("120.00"), "currency": "GBP"}
    return InvoiceState(**{**base, **changes})  # type: ignore[arg-type]


def at(day: date, hour: int, minute: int = 0, calendar: OrgCalendar = UK) -> datetime:
    return calendar.at_local(day, time(hour, minute))


def walk(inv: InvoiceState, start: date, days: int, *, policy: Policy = POLICY,
         calendar: OrgCalendar = UK, hour: int = 10) -> list[tuple[date, int]]:
    """Run the job once a day at `hour` local, recording what was sent; the ledger grows."""
    history: list[PastAction] = []
    sent = []
    for n in range(days):
        day = start + timedelta(days=n)
        for action in evaluate(inv, history, policy, calendar, at(day, hour, calendar=calendar)):
            history.append(PastAction(action.key, "done"))
            sent.append((day, action.step_index))
    return sent


def test_the_ladder_walked_day_by_day() -> None:
    # Due Wednesday 2 December 2026: -3 is Sunday 29 Nov -> Monday 30 Nov; 0 Wed 2 Dec;
    # +7 Wed 9 Dec; +21 Wed 23 Dec.
    assert walk(invoice(date(2026, 12, 2)), date(2026, 11, 20), 60) == [
        (date(2026, 11, 30), 0), (date(2026, 12, 2), 1), (date(2026, 12, 9), 2),
        (date(2026, 12, 23), 3)]


def test_the_ladder_walked_hour_by_hour_sends_each_step_once_at_the_send_time() -> None:
    inv = invoice(date(2026, 12, 2))
    history: list[PastAction] = []
    sent: list[datetime] = []
    now = datetime(2026, 11, 20, tzinfo=UTC)
    for _ in range(60 * 24):
        for action in evaluate(inv, history, POLICY, UK, now):
            history.append(PastAction(action.key, "done"))
            sent.append(now)
        now += timedelta(hours=1)
    assert sent == [datetime(2026, 11, 30, 9, tzinfo=UTC), datetime(2026, 12, 2, 9, tzinfo=UTC),
                    datetime(2026, 12, 9, 9, tzinfo=UTC), datetime(2026, 12, 23, 9, tzinfo=UTC)]


def test_christmas_moves_a_step_to_the_next_business_day() -> None:
    # Due Friday 18 Dec: +7 is Friday 25 Dec (holiday), 26-27 weekend, 28 substitute holiday;
    # +21 is Friday 8 January 2027.
    assert walk(invoice(date(2026, 12, 18)), date(2026, 12, 10), 40) == [
        (date(2026, 12, 15), 0), (date(2026, 12, 18), 1), (date(2026, 12, 29), 2),
        (date(2027, 1, 8), 3)]


def test_israel_sends_on_sunday_not_friday() -> None:
    # Due Monday 30 Nov 2026: -3 is Friday 27 Nov -> Sunday 29 Nov.
    assert walk(invoice(date(2026, 11, 30)), date(2026, 11, 20), 40, calendar=ISRAEL) == [
        (date(2026, 11, 29), 0), (date(2026, 11, 30), 1), (date(2026, 12, 7), 2),
        (date(2026, 12, 21), 3)]
    step = POLICY.reminder_steps[0]
    assert scheduled_moment(invoice(date(2026, 11, 30)), step, POLICY, ISRAEL) == datetime(
        2026, 11, 29, 7, tzinfo=UTC)  # 09:00 in Jerusalem, UTC+2 in winter


def test_without_business_days_only_a_step_lands_on_the_weekend() -> None:
    policy = Policy(reminder_steps=POLICY.reminder_steps, business_days_only=False)
    assert walk(invoice(date(2026, 12, 2)), date(2026, 11, 20), 60, policy=policy) == [
        (date(2026, 11, 29), 0), (date(2026, 12, 2), 1), (date(2026, 12, 9), 2),
        (date(2026, 12, 23), 3)]


def test_send_time_follows_summer_time() -> None:
    # Due Monday 30 March 2026, the day after the clocks go forward.
    inv = invoice(date(2026, 3, 30))
    moments = [scheduled_moment(inv, step, POLICY, UK) for step in POLICY.reminder_steps]
    assert moments == [datetime(2026, 3, 27, 9, tzinfo=UTC), datetime(2026, 3, 30, 8, tzinfo=UTC),
                       datetime(2026, 4, 6, 8, tzinfo=UTC),  # Easter Monday: not UK-wide
                       datetime(2026, 4, 20, 8, tzinfo=UTC)]
    # Due Monday 26 October, the day after they go back.
    inv = invoice(date(2026, 10, 26))
    assert scheduled_moment(inv, POLICY.reminder_steps[0], POLICY, UK) == datetime(
        2026, 10, 23, 8, tzinfo=UTC)
    assert scheduled_moment(inv, POLICY.reminder_steps[1], POLICY, UK) == datetime(
        2026, 10, 26, 9, tzinfo=UTC)


def test_the_send_window() -> None:
    inv = invoice(date(2026, 11, 24))
    day = date(2026, 11, 24)
    assert evaluate(inv, [], POLICY, UK, at(day, 3)) == []
    assert evaluate(inv, [], POLICY, UK, at(day, 8, 59)) == []
    assert [a.step_index for a in evaluate(inv, [], POLICY, UK, at(day, 9))] == [1]
    assert [a.step_index for a in evaluate(inv, [], POLICY, UK, at(day, 16, 59))] == [1]
    assert evaluate(inv, [], POLICY, UK, at(day, 17)) == []
    assert evaluate(inv, [], POLICY, UK, at(day, 17, 30)) == []
    assert evaluate(inv, [], POLICY, UK, at(day, 23, 59)) == []
    # The next morning it is still due (nothing was sent), inside the window.
    assert evaluate(inv, [], POLICY, UK, at(day + timedelta(days=1), 3)) == []
    assert [a.step_index for a in evaluate(inv, [], POLICY, UK,
                                           at(day + timedelta(days=1), 9))] == [1]


def test_nothing_is_sent_at_the_weekend_or_on_a_holiday_even_when_due() -> None:
    inv = invoice(date(2026, 11, 24))
    assert evaluate(inv, [], POLICY, UK, at(date(2026, 11, 28), 10)) == []  # Saturday
    assert evaluate(inv, [], POLICY, UK, at(date(2026, 11, 29), 10)) == []  # Sunday
    assert evaluate(invoice(date(2026, 12, 21)), [], POLICY, UK,
                    at(date(2026, 12, 25), 10)) == []  # Christmas
    assert [a.step_index for a in evaluate(inv, [], POLICY, UK,
                                           at(date(2026, 11, 30), 10))] == [1]


def test_a_whole_day_window_sends_at_any_hour() -> None:
    inv = invoice(date(2026, 11, 28))  # a Saturday
    sent = [PastAction("3:7:reminder:0", "done")]
    assert evaluate(inv, sent, ANY_HOUR, UK, at(date(2026, 11, 27), 23, 59)) == []
    [action] = evaluate(inv, sent, ANY_HOUR, UK, at(date(2026, 11, 28), 0))
    assert action.step_index == 1 and action.scheduled_for == datetime(2026, 11, 28, tzinfo=UTC)
    assert evaluate(inv, sent, ANY_HOUR, UK, at(date(2026, 11, 28), 3)) == [action]
    assert evaluate(inv, sent, ANY_HOUR, UK, at(date(2026, 11, 28), 23, 59)) == [action]


def test_a_newly_synced_overdue_invoice_gets_one_reminder_not_four() -> None:
    # 54 days late when first chased: one message, and it is the first contact (the first step
    # after the due date, friendly), never the final step its lateness would reach.
    inv = invoice(date(2026, 10, 1))
    now = at(date(2026, 11, 24), 10)
    assert evaluate(inv, [], POLICY, UK, now) == [PlannedAction(
        key="3:7:reminder:2", kind="reminder", invoice_id=7, org_id=3, step_index=2,
        step_count=4, template="overdue_1", channel="provider_email", tone="friendly",
        amount=Decimal("120.00"), currency="GBP",
        reason="First contact, reminder 3 of 4 (provider_email, friendly): INV-0007 54 days"
               " overdue", scheduled_for=now,
        details={"first_contact": True, "why": {"code": "overdue", "days": 54}})]
    done = [PastAction("3:7:reminder:2", "done", at=now)]
    assert evaluate(inv, done, POLICY, UK, now) == []
    # The last step follows at the ladder's spacing from the contact: +21 - +7 = 14 days.
    assert next_action_at(inv, done, POLICY, UK, now) == at(date(2026, 12, 8), 9)


def test_missed_days_are_superseded_by_the_latest_due_step() -> None:
    # The job was down from 27 Nov to 3 Dec: steps 0 (30 Nov) and 1 (2 Dec) are both due.
    inv = invoice(date(2026, 12, 2))
    [action] = evaluate(inv, [], POLICY, UK, at(date(2026, 12, 3), 10))
    assert (action.step_index, action.scheduled_for) == (1, datetime(2026, 12, 2, 9, tzinfo=UTC))
    history = [PastAction(action.key, "done")]
    # Step 0 is never sent afterwards; the next is step 2 on 9 Dec.
    assert next_action_at(inv, history, POLICY, UK, at(date(2026, 12, 3), 10)) == datetime(
        2026, 12, 9, 9, tzinfo=UTC)


def test_a_later_step_in_the_ledger_in_any_state_settles_the_earlier_ones() -> None:
    inv = invoice(date(2026, 12, 2))
    now = at(date(2026, 12, 1), 10)  # step 0 is due, step 1 not yet
    assert [a.step_index for a in evaluate(inv, [], POLICY, UK, now)] == [0]
    for status in ("planned", "claimed", "done", "skipped", "failed", "dead"):
        history = [PastAction("3:7:reminder:1", status)]
        assert evaluate(inv, history, POLICY, UK, now) == []
        assert next_action_at(inv, history, POLICY, UK, now) == datetime(
            2026, 12, 9, 9, tzinfo=UTC)
    # The ledger's entries for other invoices and other kinds do not count.
    others = [PastAction("3:8:reminder:1", "done"), PastAction("4:7:reminder:1", "done"),
              PastAction("3:7:late_fee:1", "done")]
    assert [a.step_index for a in evaluate(inv, others, POLICY, UK, now)] == [0]


def test_nothing_for_invoices_that_must_not_be_chased() -> None:
    now = at(date(2026, 11, 24), 10)
    due = date(2026, 11, 20)
    assert evaluate(invoice(due), [], POLICY, UK, now) != []
    for inv in (invoice(due, status="paid"), invoice(due, status="draft"),
                invoice(due, status="voided"), invoice(due, status="deleted"),
                invoice(due, amount_due=Decimal("0.00")),
                invoice(due, amount_due=Decimal("0.009")),
                invoice(due, amount_due=Decimal("-5.00")),
                invoice(due, has_email=False)):
        assert evaluate(inv, [], POLICY, UK, now) == []
        assert next_action_at(inv, [], POLICY, UK, now) is None


def test_the_minimum_amount_is_inclusive_and_zero_is_never_chased() -> None:
    now = at(date(2026, 11, 24), 10)
    due = date(2026, 11, 20)
    policy = Policy(reminder_steps=POLICY.reminder_steps, min_amount_due=Decimal("5.00"))
    assert evaluate(invoice(due, amount_due=Decimal("4.99")), [], policy, UK, now) == []
    assert evaluate(invoice(due, amount_due=Decimal("5")), [], policy, UK, now) != []
    free = Policy(reminder_steps=POLICY.reminder_steps, min_amount_due=Decimal("0"))
    assert evaluate(invoice(due, amount_due=Decimal("0")), [], free, UK, now) == []


def test_keys_are_deterministic() -> None:
    assert reminder_key(3, 7, 2) == "3:7:reminder:2"
    now = at(date(2026, 11, 24), 10)
    first = evaluate(invoice(date(2026, 11, 24)), [], POLICY, UK, now)
    second = evaluate(invoice(date(2026, 11, 24)), [], POLICY, UK, now + timedelta(hours=2))
    assert first == second
    assert first[0].key == "3:7:reminder:1"
    assert first[0].scheduled_for == datetime(2026, 11, 24, 9, tzinfo=UTC)


def test_next_action_at_values() -> None:
    inv = invoice(date(2026, 12, 2))
    # Before the first step: its moment, Monday 30 Nov 09:00 GMT.
    assert next_action_at(inv, [], POLICY, UK, at(date(2026, 11, 20), 10)) == datetime(
        2026, 11, 30, 9, tzinfo=UTC)
    # Due now but after today's window: tomorrow's window start.
    assert next_action_at(inv, [], POLICY, UK, at(date(2026, 11, 30), 18)) == datetime(
        2026, 12, 1, 9, tzinfo=UTC)
    # Due now but before today's window: today's window start.
    assert next_action_at(inv, [], POLICY, UK, at(date(2026, 12, 1), 3)) == datetime(
        2026, 12, 1, 9, tzinfo=UTC)
    # Due and inside the window: now.
    now = at(date(2026, 11, 30), 11)
    assert next_action_at(inv, [], POLICY, UK, now) == now
    # Due on Friday evening: Monday morning.
    late = invoice(date(2026, 11, 27))
    assert next_action_at(late, [PastAction("3:7:reminder:0", "done")], POLICY, UK,
                          at(date(2026, 11, 27), 18)) == datetime(2026, 11, 30, 9, tzinfo=UTC)
    # Due over Christmas: Tuesday 29 Dec.
    assert next_action_at(invoice(date(2026, 12, 24)), [PastAction("3:7:reminder:0", "done")],
                          POLICY, UK, at(date(2026, 12, 24), 18)) == datetime(
        2026, 12, 29, 9, tzinfo=UTC)
    # Across the clock change: Monday 30 March at 09:00 BST.
    assert next_action_at(invoice(date(2026, 3, 27)), [PastAction("3:7:reminder:0", "done")],
                          POLICY, UK, at(date(2026, 3, 27), 18)) == datetime(
        2026, 3, 30, 8, tzinfo=UTC)


def test_naive_now_is_refused() -> None:
    inv = invoice(date(2026, 12, 2))
    with pytest.raises(ValueError, match="aware"):
        evaluate(inv, [], POLICY, UK, datetime(2026, 12, 2, 10))
    with pytest.raises(ValueError, match="aware"):
        next_action_at(inv, [], POLICY, UK, datetime(2026, 12, 2, 10))


# A window that DST can empty: 01:00 + 1 hour does not exist in London on 29 March 2026.
NIGHT = Policy(reminder_steps=(ReminderStep(offset_days=0), ReminderStep(offset_days=1)),
               send_time=time(1), send_window_hours=1, business_days_only=False)


@pytest.mark.parametrize(("calendar", "policy", "dues"), [
    (UK, POLICY, (date(2026, 12, 2), date(2026, 12, 18), date(2026, 11, 1))),
    (ISRAEL, POLICY, (date(2026, 11, 30), date(2026, 9, 10))),
    (UK, ANY_HOUR, (date(2026, 12, 5),)),
    (UK, NIGHT, (date(2026, 3, 28), date(2026, 3, 29), date(2026, 10, 24))),
])
def test_evaluate_is_empty_before_next_action_at_stepping_hourly(
        calendar: OrgCalendar, policy: Policy, dues: tuple[date, ...]) -> None:
    for due in dues:
        inv = invoice(due)
        history: list[PastAction] = []
        start = datetime.combine(due - timedelta(days=30), time(), tzinfo=UTC)
        promised = next_action_at(inv, history, policy, calendar, start)
        sends = 0
        for hour in range(60 * 24):
            now = start + timedelta(hours=hour)
            expected = next_action_at(inv, history, policy, calendar, now)
            actions = evaluate(inv, history, policy, calendar, now)
            assert expected is None or expected >= now
            # The value stored at the last send still holds: nothing before it.
            if promised is None or now < promised:
                assert actions == [], (due, now, promised)
            # And it is exact: something is due precisely when next_action_at says "now".
            assert bool(actions) == (expected == now), (due, now, expected)
            if actions:
                assert actions[0].scheduled_for <= now
                history.append(PastAction(actions[0].key, "done"))
                promised = next_action_at(inv, history, policy, calendar, now)
                sends += 1
        assert sends >= 1


def test_the_dst_gap_empties_a_night_window_and_planning_agrees() -> None:
    inv = invoice(date(2026, 3, 29))
    # On 29 March 01:00-02:00 does not exist; the step waits for 01:00 on 30 March.
    assert next_action_at(inv, [], NIGHT, UK, datetime(2026, 3, 28, 12, tzinfo=UTC)) == datetime(
        2026, 3, 30, 0, tzinfo=UTC)
    assert [a.step_index for a in evaluate(inv, [], NIGHT, UK,
                                           datetime(2026, 3, 30, 0, tzinfo=UTC))] == [1]


def test_planning_speed_figure(capsys: pytest.CaptureFixture[str]) -> None:
    invoices = [invoice(date(2026, 9, 1) + timedelta(days=n % 120), invoice_id=n)
                for n in range(100_000)]
    now = at(date(2026, 11, 24), 10)
    started = wall.perf_counter()
    planned = sum(len(evaluate(i, [], POLICY, UK, now)) for i in invoices)
    evaluated = wall.perf_counter() - started
    started = wall.perf_counter()
    scheduled = sum(next_action_at(i, [], POLICY, UK, now) is not None for i in invoices)
    nexts = wall.perf_counter() - started
    with capsys.disabled():
        print(f"\n100,000 invoices: evaluate {evaluated:.2f} s ({planned} planned),"
              f" next_action_at {nexts:.2f} s")
    assert planned == 73_344
    assert scheduled == 100_000
