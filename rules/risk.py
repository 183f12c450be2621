"""A customer's risk score (0-100) that ranks by what is overdue now, and the walk-forward
backtest that measures it and the pay-date model (rules/forecast.py) against the baselines.

The score adds capped parts, each with the numbers that explain it (`RiskReason`: a kind and
its numbers, worded in the reader's language by the app):

| part | points |
|---|---|
| age of the oldest overdue invoice | 40 x min(days, 90) / 90 |
| overdue amount: r = overdue / the organisation's median invoice, summed | 20 x r / (r + 1) |
| habit: expected days late of the next invoice (rules/forecast.py) | 15 x min(days, 45) / 45 |
| share of the last 12 paid invoices paid more than 30 days late | 10 x share |
| broken payment plans and promises | 5 each, at most 10 |
| open disputes | 5 |

Current overdue debt and its age can reach 60 of the 100 points, the whole history 40, so a
customer 103 days overdue is never "low risk" for having paid well before. Each part is rounded
half up on its own and none of the history parts looks at the open invoices, so more overdue
money or an older overdue invoice never lowers the score (tests/unit/test_rules_risk.py holds
that property).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any

from rules.credit import InvoiceHistory
from rules.forecast import LatenessModel
from rules.statutory import round_money

ZERO = Decimal(0)
AGE_POINTS, AGE_FULL_DAYS = 40, 90
AMOUNT_POINTS = 20
HABIT_POINTS, HABIT_FULL_DAYS = 15, 45
LATE_SHARE_POINTS, LATE_SHARE_WINDOW = 10, 12
BROKEN_EACH, BROKEN_POINTS = 5, 10
DISPUTE_POINTS = 5
VERY_LATE_DAYS = 30  # "paid more than 30 days late": what the score is meant to foresee


class ReasonKind(StrEnum):
    OVERDUE = "overdue"  # days (the oldest), amounts (per currency)
    HABIT = "habit"  # days expected late (negative: early), count (paid invoices it rests on)
    VERY_LATE = "very_late"  # count of the last `of` paid invoices paid > 30 days late
    BROKEN = "broken"  # plans, promises
    DISPUTED = "disputed"  # count of open disputes
    NO_HISTORY = "no_history"  # no paid invoice yet


@dataclass(frozen=True, slots=True)
class RiskReason:
    kind: ReasonKind
    points: int
    days: int = 0
    count: int = 0
    of: int = 0
    plans: int = 0
    promises: int = 0
    amounts: tuple[tuple[str, Decimal], ...] = ()

    def as_json(self) -> dict[str, object]:
        found: dict[str, object] = {"kind": self.kind.value, "points": self.points}
        for name in ("days", "count", "of", "plans", "promises"):
            if getattr(self, name):
                found[name] = getattr(self, name)
        if self.amounts:
            found["amounts"] = {currency: str(round_money(amount, currency))
                                for currency, amount in self.amounts}
        return found


@dataclass(frozen=True, slots=True)
class Risk:
    score: int  # 0-100, higher is riskier
    reasons: tuple[RiskReason, ...]  # the overdue debt first, then the history

    @property
    def points(self) -> dict[str, int]:
        return {r.kind.value: r.points for r in self.reasons if r.points}


@dataclass(frozen=True, slots=True)
class CustomerFacts:
    """What the score reads of one customer, as of `today`."""

    today: date
    open_invoices: Sequence[InvoiceHistory]  # open on `today`
    habit_days: int | None  # expected days late of their next invoice (None: no paid invoice)
    habit_count: int  # the customer's paid invoices the habit rests on
    recent_lateness: Sequence[int]  # days late of their last paid invoices, oldest first
    broken_plans: int = 0
    broken_promises: int = 0
    open_disputes: int = 0


def _whole(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), ROUND_HALF_UP))


def overdue_of(open_invoices: Iterable[InvoiceHistory], today: date
               ) -> tuple[int, dict[str, Decimal]]:
    """Days the oldest overdue invoice is past due, and the overdue balance per currency."""
    oldest = 0
    amounts: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for invoice in open_invoices:
        if invoice.is_open and invoice.due_date < today:
            oldest = max(oldest, (today - invoice.due_date).days)
            amounts[invoice.currency] += invoice.amount_due
    return oldest, dict(sorted(amounts.items()))


def typical_invoice(invoices: Iterable[InvoiceHistory]) -> dict[str, Decimal]:
    """Currency -> the median invoice total: the yardstick of "a lot overdue"."""
    totals: dict[str, list[Decimal]] = defaultdict(list)
    for invoice in invoices:
        if invoice.total > 0:
            totals[invoice.currency].append(invoice.total)
    found = {}
    for currency, values in totals.items():
        values.sort()
        found[currency] = values[len(values) // 2]
    return found


def risk_of(facts: CustomerFacts, typical: Mapping[str, Decimal]) -> Risk:
    """The score and, for each part, the numbers that explain it."""
    reasons: list[RiskReason] = []
    days, amounts = overdue_of(facts.open_invoices, facts.today)
    if days:
        ratio = sum((amount / typical[currency] if typical.get(currency) else Decimal(1)
                     for currency, amount in amounts.items()), ZERO)
        age = _whole(Decimal(AGE_POINTS * min(days, AGE_FULL_DAYS)) / AGE_FULL_DAYS)
        size = _whole(AMOUNT_POINTS * ratio / (ratio + 1))
        reasons.append(RiskReason(ReasonKind.OVERDUE, age + size, days=days,
                                  amounts=tuple(amounts.items())))
    if facts.habit_days is None or not facts.habit_count:
        reasons.append(RiskReason(ReasonKind.NO_HISTORY, 0))
    else:
        late = min(max(facts.habit_days, 0), HABIT_FULL_DAYS)
        reasons.append(RiskReason(ReasonKind.HABIT,
                                  _whole(Decimal(HABIT_POINTS * late) / HABIT_FULL_DAYS),
                                  days=facts.habit_days, count=facts.habit_count))
    window = list(facts.recent_lateness)[-LATE_SHARE_WINDOW:]
    very_late = sum(1 for d in window if d > VERY_LATE_DAYS)
    if very_late:
        reasons.append(RiskReason(ReasonKind.VERY_LATE,
                                  _whole(Decimal(LATE_SHARE_POINTS * very_late) / len(window)),
                                  count=very_late, of=len(window)))
    if facts.broken_plans or facts.broken_promises:
        reasons.append(RiskReason(
            ReasonKind.BROKEN,
            min(BROKEN_POINTS, BROKEN_EACH * (facts.broken_plans + facts.broken_promises)),
            plans=facts.broken_plans, promises=facts.broken_promises))
    if facts.open_disputes:
        reasons.append(RiskReason(ReasonKind.DISPUTED, DISPUTE_POINTS,
                                  count=facts.open_disputes))
    return Risk(min(100, sum(r.points for r in reasons)), tuple(reasons))


def customer_facts(model: LatenessModel, contact_id: int | None,
                   invoices: Iterable[InvoiceHistory], today: date, *, broken_plans: int = 0,
                   broken_promises: int = 0, open_disputes: int = 0) -> CustomerFacts:
    """The score's inputs for one customer from the organisation's model (built from what was
    paid by `today`) and the customer's invoices (an invoice paid after `today` was open)."""
    open_now = []
    for i in invoices:
        if i.issue_date > today or not (i.is_open or (i.paid_on is not None and i.paid_on > today)):
            continue
        open_now.append(i if i.paid_on is None else InvoiceHistory(
            i.invoice_id, i.issue_date, i.due_date, i.total, i.total, i.currency, None,
            i.contact_id))
    paid = model.customers.get(contact_id, []) if contact_id is not None else []
    habit = model.predict(contact_id) if paid else None
    return CustomerFacts(
        today=today, open_invoices=open_now,
        habit_days=habit.expected if habit else None, habit_count=len(paid),
        recent_lateness=[late for _day, _id, late in paid][-LATE_SHARE_WINDOW:],
        broken_plans=broken_plans, broken_promises=broken_promises, open_disputes=open_disputes)


# ------------------------------------------------------------------------------- backtest


def auc(scored: Iterable[tuple[float | int, bool]]) -> float | None:
    """The area under the ROC curve: the chance that a positive outranks a negative (ties count
    half); None without both."""
    pairs = sorted(scored, key=lambda p: p[0])
    positives = sum(1 for _s, label in pairs if label)
    negatives = len(pairs) - positives
    if not positives or not negatives:
        return None
    rank_sum = 0.0
    n = 0
    while n < len(pairs):  # ranks, ties given their mean rank
        m = n
        while m < len(pairs) and pairs[m][0] == pairs[n][0]:
            m += 1
        mean_rank = (n + 1 + m) / 2
        rank_sum += mean_rank * sum(1 for _s, label in pairs[n:m] if label)
        n = m
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


@dataclass(frozen=True, slots=True)
class Errors:
    """Absolute pay-date errors in days over the predictions made."""

    mean: Decimal | None
    median: Decimal | None

    @classmethod
    def of(cls, errors: Sequence[int]) -> Errors:
        if not errors:
            return cls(None, None)
        ordered = sorted(errors)
        middle = len(ordered) // 2
        median = Decimal(ordered[middle]) if len(ordered) % 2 else \
            Decimal(ordered[middle - 1] + ordered[middle]) / 2
        hundredth = Decimal("0.01")
        return cls((Decimal(sum(ordered)) / len(ordered)).quantize(hundredth, ROUND_HALF_UP),
                   median.quantize(hundredth, ROUND_HALF_UP))

    def as_json(self) -> dict[str, str | None]:
        return {"mean": None if self.mean is None else str(self.mean),
                "median": None if self.median is None else str(self.median)}

    @classmethod
    def from_json(cls, figures: Mapping[str, str | None]) -> Errors:
        mean, median = figures.get("mean"), figures.get("median")
        return cls(None if mean is None else Decimal(mean),
                   None if median is None else Decimal(median))


@dataclass(frozen=True, slots=True)
class Backtest:
    cutoffs: int  # cut-off dates walked
    predictions: int  # (cut-off, open invoice) pairs whose pay date is known: errors over these
    model: Errors
    due_date: Errors  # baseline: paid on the due date
    customer_median: Errors  # baseline: due date + the customer's median lateness
    # The same two, moved to the day after the cut-off when they fall before it (the invoice
    # was known to be unpaid then): stronger baselines, the model must beat them too.
    due_date_after_cutoff: Errors
    customer_median_after_cutoff: Errors
    scored: int  # (cut-off, open invoice) pairs whose "> 30 days late" is known: AUC over these
    very_late: int  # of which paid more than 30 days late (or not at all by then)
    auc: float | None  # of the customer's score at the cut-off for "paid > 30 days late"

    @property
    def beats_baselines(self) -> bool:
        m = self.model.mean
        others = [e.mean for e in (self.due_date, self.customer_median,
                                   self.due_date_after_cutoff, self.customer_median_after_cutoff)]
        return m is not None and all(o is not None and m < o for o in others)

    def as_json(self) -> dict[str, object]:
        return {"cutoffs": self.cutoffs, "predictions": self.predictions,
                "model_error_days": self.model.as_json(),
                "due_date_error_days": self.due_date.as_json(),
                "customer_median_error_days": self.customer_median.as_json(),
                "due_date_after_cutoff_error_days": self.due_date_after_cutoff.as_json(),
                "customer_median_after_cutoff_error_days":
                    self.customer_median_after_cutoff.as_json(),
                "scored": self.scored, "very_late": self.very_late,
                "auc_very_late": None if self.auc is None else round(self.auc, 3)}

    @classmethod
    def from_json(cls, figures: Mapping[str, Any]) -> Backtest:
        """The figures `as_json` wrote (the AUC to three places)."""
        return cls(cutoffs=int(figures["cutoffs"]), predictions=int(figures["predictions"]),
                   model=Errors.from_json(figures["model_error_days"]),
                   due_date=Errors.from_json(figures["due_date_error_days"]),
                   customer_median=Errors.from_json(figures["customer_median_error_days"]),
                   due_date_after_cutoff=Errors.from_json(
                       figures["due_date_after_cutoff_error_days"]),
                   customer_median_after_cutoff=Errors.from_json(
                       figures["customer_median_after_cutoff_error_days"]),
                   scored=int(figures["scored"]), very_late=int(figures["very_late"]),
                   auc=figures["auc_very_late"])


def cutoff_dates(invoices: Sequence[InvoiceHistory], end: date, step_days: int = 30,
                 warm_up_days: int = 90) -> list[date]:
    """Every `step_days` from `warm_up_days` after the first issue date, up to `end`."""
    if not invoices:
        return []
    day = min(i.issue_date for i in invoices) + timedelta(days=warm_up_days)
    found = []
    while day < end:
        found.append(day)
        day += timedelta(days=step_days)
    return found


def backtest(invoices: Iterable[InvoiceHistory], end: date, *, step_days: int = 30,
             warm_up_days: int = 90) -> Backtest:
    """Walk forward: at each cut-off, predict each open invoice's pay date and score its
    customer from what was known that day (invoices issued and payments made by then), then
    compare with what happened by `end` (the day the books were read).

    Pay-date errors are over the open invoices paid by `end` (one never paid has no pay date to
    compare). "Paid more than 30 days late" is known for an invoice paid by `end`, or still open
    on `end` more than 30 days past due; only invoices not yet 30 days late at the cut-off are
    scored, so the score is judged on what it had to foresee."""
    books = sorted((i for i in invoices if i.paid_on is not None or i.is_open),
                   key=lambda i: (i.issue_date, i.invoice_id))
    paid = sorted((i for i in books if i.paid_on is not None),
                  key=lambda i: (i.paid_on, i.invoice_id))  # type: ignore[arg-type,return-value]
    cutoffs = cutoff_dates(books, end, step_days, warm_up_days)
    typical = typical_invoice(books)
    model = LatenessModel()
    known = 0
    errors: list[int] = []
    due_errors: list[int] = []
    median_errors: list[int] = []
    due_clipped: list[int] = []
    median_clipped: list[int] = []
    scored: list[tuple[int, bool]] = []
    issue_days = [i.issue_date for i in books]
    for cutoff in cutoffs:
        while known < len(paid) and paid[known].paid_on <= cutoff:  # type: ignore[operator]
            model.add(paid[known])
            known += 1
        issued = books[:bisect_right(issue_days, cutoff)]
        open_then = [i for i in issued if i.paid_on is None or i.paid_on > cutoff]
        by_contact: dict[int | None, list[InvoiceHistory]] = defaultdict(list)
        for invoice in open_then:
            by_contact[invoice.contact_id].append(invoice)
        for contact_id, own in by_contact.items():
            risk = risk_of(customer_facts(model, contact_id, own, cutoff), typical)
            own_median = model.customer_median(contact_id)
            for invoice in own:
                floor = (cutoff - invoice.due_date).days + 1  # not paid by the cut-off
                if invoice.paid_on is not None:
                    late = invoice.days_late
                    assert late is not None
                    predicted = model.predict(contact_id, floor).expected
                    errors.append(abs(late - predicted))
                    due_errors.append(abs(late))
                    median_errors.append(abs(late - (own_median or 0)))
                    due_clipped.append(abs(late - max(0, floor)))
                    median_clipped.append(abs(late - max(own_median or 0, floor)))
                if floor > VERY_LATE_DAYS:
                    continue
                if invoice.paid_on is not None:
                    scored.append((risk.score, invoice.days_late > VERY_LATE_DAYS))  # type: ignore[operator]
                elif (end - invoice.due_date).days > VERY_LATE_DAYS:
                    scored.append((risk.score, True))
    return Backtest(cutoffs=len(cutoffs), predictions=len(errors), model=Errors.of(errors),
                    due_date=Errors.of(due_errors), customer_median=Errors.of(median_errors),
                    due_date_after_cutoff=Errors.of(due_clipped),
                    customer_median_after_cutoff=Errors.of(median_clipped),
                    scored=len(scored), very_late=sum(1 for _s, label in scored if label),
                    auc=auc(scored))

