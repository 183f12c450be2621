"""Policy engine on one organisation's book of N invoices: next_action_at, the daily run, memory.

Run: `.venv/bin/python -m benchmarks.policy_engine [--invoices N] [--seed S]` (default
1,000,000 invoices). Prints one JSON object. Everything runs in this process, in one thread
(one core), with the garbage collector's view of the generated book frozen (`gc.freeze()`), as
a worker reading its batches would not rescan them. It is not pinned to a CPU: on a shared
machine a pinned process cannot move off a busy core.

The book is synthetic but shaped like a real one, and deterministic (seeded `random.Random`):
every invoice open, in GBP; due dates spread over the 120 days before `now` and the 60 after;
amounts 50-20,000 (log-uniform); ~30 % with 1-2 part payments; ~10 % with 1-4 ledger entries
(the latest reminder keys, the flat fee, interest periods, a call task, as the ledger would hold
them); ~2 % on a payment plan (some kept, some broken); ~0.3 % paid all but the early-payment
discount in time; 0.5 % excluded, 0.5 % disputed, 2 % without an email address, 10 % consumers.
The policy is a realistic one: ladder -3/0/7/21/45 then weekly up to 8 repeats, a flat fee of
40 after 30 days' grace, 8 % p.a. daily interest per 30-day period capped at 25 % of the
principal, 2/10 early-payment discount, escalation call task (30) / demand letter (60) /
agency case (90), business days only, 09:00-17:00 in the GB (England) calendar. `now` is fixed
(Wednesday 4 March 2026, 10:00 Europe/London) so every run plans the same work.

What it measures (each figure is the median of 3 timed passes after one warm-up pass, the
headline's of `--passes`, default 5; `--next-action-only`, as `make bench` runs it, measures 1.
and 3. and checks the reference in one pass):
1. `next_action`: next_action_at over every invoice, through one NextActionPlanner for the pass
   (as collect/plan.py does) -> invoices/s. Target >= 200,000/s. `reference_invoices_per_second`
   is next_action_at called invoice by invoice; the two must agree on every invoice.
2. `daily_run`: what collect/plan.py does each day. The stored next_action_at values of pass 1 are
   put in a sorted index (as the database's ix_invoices_org_id_next_action_at; building it is
   not timed, the database maintains it on write); the run finds the invoices with
   next_action_at <= now by bisection and evaluates only those. Reported: how many were due,
   the run's time and invoices/s, `full_evaluate` (evaluate over all N, for comparison) and the
   ratio of the two times. `full_cycle` adds what plan_org does next: re-storing each due
   invoice's next_action_at with the planned actions appended to its history.
   The target "cost proportional to due invoices" is met when the index picks exactly the
   work: no invoice with something to do is missed (`missed`, must be 0; checked against the
   full evaluate) and few picked invoices have nothing to do (`idle_wakeups`, at most 5 % of
   the due). The run's time then follows the due count, not N: `ratio_to_full_evaluate` sits
   above `due_fraction` only because an invoice with actions due costs more to evaluate (it
   builds them) than one with nothing due.
   This book has no ledger for ~90 % of its invoices, so most overdue ones have a step due and
   `due_fraction` is high (~0.65); in a steady state the ledger holds yesterday's steps and the
   due share is a few percent. `still_due_after_run` counts invoices whose re-stored
   next_action_at is still <= now after the run planned their actions (each is picked again by
   the next run): not part of the target; it shows a step evaluate held back behind another
   one planned in the same run (a reminder behind an early-payment discount, for one).
3. `memory`: tracemalloc's peak during one extra, untimed pass (tracing slows Python down) of
   next_action_at and of the daily run -- what the pass allocates beyond the book -- and the
   process's ru_maxrss (the book included), in MiB; `book_rss_mib` is the growth of the
   resident set while the book was generated.

How to read it: `targets` says which goals are met; `next_action.invoices_per_second` is the
headline. Timings move by 5-10 % between runs, more on a busy machine (`load_average_1min`);
compare runs on one quiet machine.
"""

from __future__ import annotations

import argparse
import bisect
import gc
import json
import math
import os
import platform
import random
import resource
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from rules import NextActionPlanner, OrgCalendar, Policy, evaluate, next_action_at
from rules.actions import action_key, reminder_key
from rules.fees import DailyInterestRule, FlatFeeRule, fee_key
from rules.invoice import Instalment, InvoiceState, PastAction, PaymentPlan
from rules.policy import (
    AgencyCase,
    CallTask,
    DemandLetter,
    EarlyPaymentDiscount,
    Escalation,
    LateFee,
    ReminderStep,
    Repeat,
)
from rules.reminders import step_day

ORG_ID = 1
CALENDAR = OrgCalendar("Europe/London", "GB", "ENG")
NOW = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)  # 10:00 in London (GMT in March)
TODAY = NOW.date()
TIMED_PASSES = 3  # the daily run and the passes beside it; the headline takes --passes
TARGET_NEXT_ACTION_PER_SECOND = 200_000
MAX_IDLE_SHARE = 0.05
MIB = 1024 * 1024
CENT = Decimal("0.01")


def realistic_policy() -> Policy:
    return Policy(
        reminder_steps=(
            ReminderStep(offset_days=-3, template="friendly_before"),
            ReminderStep(offset_days=0, template="due_today"),
            ReminderStep(offset_days=7, template="overdue_1", tone="firm"),
            ReminderStep(offset_days=21, template="overdue_2", tone="firm"),
            ReminderStep(offset_days=45, template="overdue_3", tone="final"),
        ),
        repeat=Repeat(every_days=7, max_times=8),
        late_fees=(
            LateFee(id="late_fee", rule=FlatFeeRule(amount=Decimal(40), grace_days=30)),
            LateFee(id="interest", rule=DailyInterestRule(
                annual_rate_percent=Decimal(8), period_days=30,
                cap_percent_of_principal=Decimal(25))),
        ),
        early_payment_discount=EarlyPaymentDiscount(percent=Decimal(2), within_days=10),
        escalation=Escalation(
            call_task=CallTask(after_days=30, assignee="Credit control"),
            demand_letter=DemandLetter(after_days=60),
            agency_case=AgencyCase(after_days=90),
        ),
    )


# ----------------------------------------------------------------------------- the book


def _money(cents: int) -> Decimal:
    return Decimal(cents) * CENT


def _past_events(invoice: InvoiceState, policy: Policy) -> list[tuple[date, PastAction]]:
    """What the ledger could hold by today, dated: reminders, fee and interest periods, a call."""
    events: list[tuple[date, PastAction]] = []
    org, number = invoice.org_id, invoice.invoice_id
    index = 0
    while True:
        day = step_day(invoice, policy, index)
        if day is None or day >= TODAY:
            break
        events.append((day, PastAction(reminder_key(org, number, index), "done")))
        index += 1
    due = invoice.due_date
    if due + timedelta(days=31) < TODAY:
        events.append((due + timedelta(days=31),
                       PastAction(fee_key(org, number, "late_fee", 0), "done", Decimal(40))))
    period = 0
    while due + timedelta(days=1 + (period + 1) * 30) < TODAY:
        # 8 % p.a. on the principal for 30 days, as the rule would have charged it.
        amount = (invoice.principal * 8 * 30 / 36500).quantize(CENT)
        events.append((due + timedelta(days=1 + (period + 1) * 30),
                       PastAction(fee_key(org, number, "interest", period), "done", amount)))
        period += 1
    if due + timedelta(days=30) < TODAY:
        events.append((due + timedelta(days=30),
                       PastAction(action_key(org, number, "call_task"), "done")))
    events.sort(key=lambda event: event[0])
    return events


def _plan(rng: random.Random, total: int, paid_cents: int, due: date
          ) -> tuple[PaymentPlan, list[tuple[date, Decimal]]]:
    """A plan agreed on the balance: 3-6 monthly instalments; those due so far paid on time
    (80 %) or the plan broken at one of them."""
    count = rng.randint(3, 6)
    balance = total - paid_cents
    share = balance // count
    amounts = [share] * (count - 1) + [balance - share * (count - 1)]
    first = max(due, TODAY - timedelta(days=rng.randint(0, 75)))
    instalments = tuple(Instalment(first + timedelta(days=30 * k), _money(a))
                        for k, a in enumerate(amounts))
    payments = []
    keeps = rng.random() < 0.8
    for instalment in instalments:
        if instalment.due_date >= TODAY or not keeps:
            break
        payments.append((instalment.due_date - timedelta(days=rng.randint(0, 3)),
                         instalment.amount))
    plan = PaymentPlan(plan_id=rng.randint(1, 10**6), instalments=instalments,
                       paid_before=_money(paid_cents))
    return plan, payments


def build_book(n: int, seed: int, policy: Policy
               ) -> tuple[list[InvoiceState], list[tuple[PastAction, ...]]]:
    rng = random.Random(seed)
    invoices: list[InvoiceState] = []
    histories: list[tuple[PastAction, ...]] = []
    low, high = math.log(50), math.log(20_000)
    for i in range(n):
        due = TODAY + timedelta(days=rng.randint(-120, 60))
        terms = rng.choices((30, 14, 60), weights=(7, 2, 1))[0]
        issue = min(due - timedelta(days=terms), TODAY - timedelta(days=rng.randint(0, 5)))
        total = round(math.exp(rng.uniform(low, high)) * 100)
        payments: list[tuple[date, Decimal]] = []
        paid = 0
        plan = None
        roll = rng.random()
        if roll < 0.003:
            # Paid all but the 2 % discount within the 10 days: the discount is due.
            issue = TODAY - timedelta(days=rng.randint(2, 30))
            due = issue + timedelta(days=30)
            paid = total - (total * 2 + 50) // 100
            payments.append((issue + timedelta(days=rng.randint(0, 10)), _money(paid)))
        elif roll < 0.303:
            for _ in range(rng.randint(1, 2)):
                span = max((TODAY - issue).days, 0)
                part = round((total - paid) * rng.uniform(0.1, 0.5))
                if part <= 0:
                    break
                payments.append((issue + timedelta(days=rng.randint(0, span)), _money(part)))
                paid += part
        if rng.random() < 0.02:
            plan, plan_payments = _plan(rng, total, paid, due)
            for day, amount in plan_payments:
                payments.append((day, amount))
                paid += int(amount / CENT)
        invoice = InvoiceState(
            invoice_id=i + 1, org_id=ORG_ID, number=f"INV-{i + 1:07d}", status="open",
            due_date=due, amount_due=_money(total - paid), currency="GBP",
            has_email=rng.random() >= 0.02, issue_date=issue, total=_money(total),
            payments=tuple(payments), is_business=rng.random() >= 0.1,
            excluded=rng.random() < 0.005, disputed=rng.random() < 0.005, plan=plan,
            contact_id=rng.randint(1, 5_000))
        history: tuple[PastAction, ...] = ()
        if rng.random() < 0.10:
            events = _past_events(invoice, policy)
            if events:
                kept = events[-rng.randint(1, 4):]
                history = tuple(action for _, action in kept)
        invoices.append(invoice)
        histories.append(history)
    return invoices, histories


# ----------------------------------------------------------------------------- passes


Book = tuple[list[InvoiceState], list[tuple[PastAction, ...]]]


def pass_next_action(book: Book, policy: Policy) -> list[datetime | None]:
    """As collect/plan.py stores it: one NextActionPlanner for the pass."""
    invoices, histories = book
    planner = NextActionPlanner(CALENDAR, NOW)
    return [planner(invoice, history, policy)
            for invoice, history in zip(invoices, histories, strict=True)]


def pass_next_action_reference(book: Book, policy: Policy) -> list[datetime | None]:
    """next_action_at itself, invoice by invoice: the planner must give the same answers."""
    invoices, histories = book
    return [next_action_at(invoice, history, policy, CALENDAR, NOW)
            for invoice, history in zip(invoices, histories, strict=True)]


def pass_full_evaluate(book: Book, policy: Policy) -> list[int]:
    invoices, histories = book
    counts = []
    for invoice, history in zip(invoices, histories, strict=True):
        problems: list[str] = []
        counts.append(len(evaluate(invoice, history, policy, CALENDAR, NOW,
                                   problems=problems)))
    return counts


class NextActionIndex:
    """Stored next_action_at values in order, as the database's index keeps them."""

    def __init__(self, stored: Sequence[datetime | None]) -> None:
        rows = sorted((moment, i) for i, moment in enumerate(stored) if moment is not None)
        self.moments = [moment for moment, _ in rows]
        self.order = [i for _, i in rows]

    def due(self, now: datetime) -> list[int]:
        return self.order[:bisect.bisect_right(self.moments, now)]


def pass_daily_run(book: Book, policy: Policy, index: NextActionIndex) -> dict[int, int]:
    """Select through the index, evaluate the due: planned actions per due invoice."""
    invoices, histories = book
    planned = {}
    for i in index.due(NOW):
        problems: list[str] = []
        planned[i] = len(evaluate(invoices[i], histories[i], policy, CALENDAR, NOW,
                                  problems=problems))
    return planned


def pass_full_cycle(book: Book, policy: Policy, index: NextActionIndex
                    ) -> dict[int, datetime | None]:
    """The daily run as plan_org does it: evaluate, add the planned actions to the history,
    store the invoice's new next_action_at."""
    invoices, histories = book
    restored = {}
    for i in index.due(NOW):
        invoice, history = invoices[i], histories[i]
        problems: list[str] = []
        actions = evaluate(invoice, history, policy, CALENDAR, NOW, problems=problems)
        if actions:
            history = (*history, *(PastAction(a.key, "planned", a.amount) for a in actions))
        restored[i] = next_action_at(invoice, history, policy, CALENDAR, NOW)
    return restored


def timed(run: Callable[[], Any], passes: int = TIMED_PASSES) -> tuple[float, Any]:
    """Median seconds of `passes` after one warm-up, and the warm-up's result."""
    gc.collect()
    result = run()
    seconds = []
    for _ in range(passes):
        gc.collect()
        started = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), result


def traced_peak(run: Callable[[], Any]) -> float:
    gc.collect()
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1] / MIB
    finally:
        tracemalloc.stop()


def _load() -> float | None:
    """Other work on the machine skews the figures: this says how much there was."""
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def _machine() -> dict[str, Any]:
    return {"python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "cores": os.cpu_count(), "load_average_1min": _load(), "platform": sys.platform}


def resident_mib() -> float:
    """The current resident set (Linux); 0 where /proc is not there."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
    except OSError:
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / MIB


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--invoices", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=20260304)
    parser.add_argument("--passes", type=int, default=5,
                        help="timed passes of next_action_at (the median is reported)")
    parser.add_argument("--next-action-only", action="store_true",
                        help="next_action_at, its check against the reference (one pass) "
                             "and its memory; not the daily run (make bench: the daily run "
                             "is plan_daily's, on the database)")
    args = parser.parse_args(argv)
    n = args.invoices
    policy = realistic_policy()

    rss_before = resident_mib()
    started = time.perf_counter()
    book = build_book(n, args.seed, policy)
    generation_seconds = time.perf_counter() - started
    gc.collect()
    book_rss_mib = resident_mib() - rss_before
    gc.freeze()

    next_seconds, stored = timed(lambda: pass_next_action(book, policy), args.passes)
    if args.next_action_only:
        started = time.perf_counter()
        reference = pass_next_action_reference(book, policy)
        reference_seconds = time.perf_counter() - started
    else:
        reference_seconds, reference = timed(lambda: pass_next_action_reference(book, policy))
    if reference != stored:
        raise SystemExit("NextActionPlanner and next_action_at disagree on this book")
    next_rate = n / next_seconds
    next_action = {
        "median_seconds": round(next_seconds, 3), "passes": args.passes,
        "invoices_per_second": round(next_rate),
        "with_no_next_action": sum(1 for moment in stored if moment is None),
        "reference_invoices_per_second": round(n / reference_seconds),
        "speedup_over_reference": round(reference_seconds / next_seconds, 2)}
    headline = {"target": TARGET_NEXT_ACTION_PER_SECOND, "actual": round(next_rate),
                "met": next_rate >= TARGET_NEXT_ACTION_PER_SECOND}
    if args.next_action_only:
        print(json.dumps({
            "benchmark": "policy_engine", "invoices": n, "seed": args.seed,
            "now": NOW.isoformat(), "generation_seconds": round(generation_seconds, 2),
            "next_action": next_action,
            "memory": {"book_rss_mib": round(book_rss_mib, 1),
                       "next_action_pass_peak_mib": round(traced_peak(
                           lambda: pass_next_action(book, policy)), 1),
                       "ru_maxrss_mib": round(
                           resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)},
            "daily_run": "not run (--next-action-only)",
            "targets": {"next_action_invoices_per_second": headline},
            "machine": _machine()}))
        return
    full_seconds, counts = timed(lambda: pass_full_evaluate(book, policy))
    index = NextActionIndex(stored)
    daily_seconds, planned = timed(lambda: pass_daily_run(book, policy, index))
    cycle_seconds, restored = timed(lambda: pass_full_cycle(book, policy, index))

    due = len(planned)
    with_work = {i for i, count in enumerate(counts) if count}
    missed = len(with_work - planned.keys())
    idle = sum(1 for count in planned.values() if count == 0)
    still_due = sum(1 for moment in restored.values() if moment is not None and moment <= NOW)

    memory = {
        "book_rss_mib": round(book_rss_mib, 1),
        "next_action_pass_peak_mib": round(traced_peak(
            lambda: pass_next_action(book, policy)), 1),
        "daily_run_peak_mib": round(traced_peak(
            lambda: pass_daily_run(book, policy, index)), 1),
        # Linux reports KiB.
        "ru_maxrss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }

    proportional = missed == 0 and idle <= MAX_IDLE_SHARE * max(due, 1)
    print(json.dumps({
        "benchmark": "policy_engine",
        "invoices": n,
        "seed": args.seed,
        "now": NOW.isoformat(),
        "calendar": {"timezone": CALENDAR.timezone, "country": CALENDAR.country,
                     "subdivision": CALENDAR.subdivision},
        "timed_passes": TIMED_PASSES,
        "generation_seconds": round(generation_seconds, 2),
        "next_action": next_action,
        "daily_run": {
            "due": due,
            "due_fraction": round(due / n, 4),
            "median_seconds": round(daily_seconds, 3),
            "due_invoices_per_second": round(due / daily_seconds) if daily_seconds else None,
            "actions_planned": sum(planned.values()),
            "full_evaluate_seconds": round(full_seconds, 3),
            "full_evaluate_invoices_per_second": round(n / full_seconds),
            "ratio_to_full_evaluate": round(daily_seconds / full_seconds, 4),
            "missed": missed,
            "idle_wakeups": idle,
            "full_cycle_seconds": round(cycle_seconds, 3),
            "still_due_after_run": still_due,
        },
        "memory": memory,
        "targets": {
            "next_action_invoices_per_second": headline,
            "daily_run_cost_proportional_to_due": {
                "target": "missed == 0 and idle_wakeups <= 5 % of due",
                "missed": missed, "idle_wakeups": idle,
                "met": proportional},
        },
        "machine": _machine(),
    }))


if __name__ == "__main__":
    main()
