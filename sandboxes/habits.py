"""Books whose customers pay by habit: seeded, for the risk backtest's tests, its benchmark and
the demo's sandboxes.

Each customer has one habit: `prompt` (pays from a few days early to on the due date),
`steady` (always about the same number of days late, 5 to 45), `erratic` (anywhere from early
to two months late), `worsening` (a few days later each month, from on time to months late)
or `stops` (pays like a steady payer, then from some day on pays nothing). The same seed gives
the same books.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum

from rules.credit import InvoiceHistory

CENT = Decimal("0.01")


class Habit(StrEnum):
    PROMPT = "prompt"
    STEADY = "steady"
    ERRATIC = "erratic"
    WORSENING = "worsening"
    STOPS = "stops"


# The share of customers with each habit, in this order (cumulative draw).
MIX = ((Habit.PROMPT, 0.3), (Habit.STEADY, 0.25), (Habit.ERRATIC, 0.2),
       (Habit.WORSENING, 0.13), (Habit.STOPS, 0.12))


@dataclass(frozen=True, slots=True)
class Payer:
    """One customer's habit and its parameters."""

    contact_id: int
    habit: Habit
    centre: int  # typical days late (steady, and stops before stopping)
    spread: int  # days either side
    stops_on: date | None  # stops: invoices due from this day are never paid
    worsens_by: Decimal  # worsening: days later per month since `since`
    since: date

    def lateness(self, rng: random.Random, due: date) -> int | None:
        """Days after the due date this invoice is paid (None: never)."""
        if self.habit is Habit.PROMPT:
            return rng.randint(-5, 0) if rng.random() < 0.9 else rng.randint(1, 6)
        if self.habit is Habit.ERRATIC:
            return rng.choice((rng.randint(-3, 5), rng.randint(5, 30), rng.randint(30, 75)))
        if self.habit is Habit.WORSENING:
            drift = int(self.worsens_by * (due - self.since).days / 30)
            return max(-2, drift + rng.randint(-self.spread, self.spread))
        if self.habit is Habit.STOPS and self.stops_on is not None and due >= self.stops_on:
            return None
        return max(-5, self.centre + rng.randint(-self.spread, self.spread))


def payer(rng: random.Random, contact_id: int, start: date, end: date,
          habit: Habit | None = None) -> Payer:
    """A customer's habit drawn from `MIX` (or the one given), with its parameters."""
    roll, drawn = rng.random(), Habit.STEADY
    for candidate, share in MIX:
        if roll < share:
            drawn = candidate
            break
        roll -= share
    habit = drawn if habit is None else habit
    span = (end - start).days
    return Payer(contact_id=contact_id, habit=habit, centre=rng.randint(5, 45),
                 spread=rng.randint(1, 5),
                 stops_on=start + timedelta(days=rng.randint(span // 2, span - 30))
                 if habit is Habit.STOPS else None,
                 worsens_by=Decimal(rng.randint(15, 40)) / 10, since=start)


@dataclass(frozen=True, slots=True)
class HabitBook:
    """Invoices as of `end` (paid after `end`: open then), and each customer's habit."""

    end: date
    invoices: tuple[InvoiceHistory, ...]
    payers: dict[int, Payer]


def habit_book(seed: int, *, customers: int = 60, months: int = 24, end: date = date(2026, 11, 24),
               currency: str = "GBP") -> HabitBook:
    """`customers` customers invoiced one to three times a month for `months` months up to
    `end`, each paying by their habit; the same seed, the same book."""
    rng = random.Random(f"habits-{seed}")
    start = end - timedelta(days=months * 30)
    payers = {n: payer(rng, n, start, end) for n in range(1, customers + 1)}
    invoices: list[InvoiceHistory] = []
    for contact_id, who in payers.items():
        terms = rng.choice((14, 30, 30, 30))
        size = rng.randint(2, 40) * 50
        day = start + timedelta(days=rng.randint(0, 20))
        while day < end - timedelta(days=1):
            due = day + timedelta(days=terms)
            total = (Decimal(size) * Decimal(rng.randint(60, 140)) / 100).quantize(CENT)
            late = who.lateness(rng, due)
            paid_on = None if late is None else max(day, due + timedelta(days=late))
            if paid_on is not None and paid_on > end:
                paid_on = None
            invoices.append(InvoiceHistory(
                invoice_id=len(invoices) + 1, issue_date=day, due_date=due, total=total,
                amount_due=Decimal(0) if paid_on is not None else total, currency=currency,
                paid_on=paid_on, contact_id=contact_id))
            day += timedelta(days=rng.randint(8, 30))
    return HabitBook(end=end, invoices=tuple(invoices), payers=payers)
