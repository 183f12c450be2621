"""How each customer pays: lateness, its trend, broken plans, what is overdue now, and a risk
score in words an owner can check by hand.

Everything is a pure function of the customer's invoices (with the date each was paid in
full), a few counts the database side supplies, and `today` (a calendar date in the
organisation's zone). Lateness of a paid invoice is `paid_on - due_date` in days (negative:
paid early). Means are exact Decimals, shown to one decimal place.

The risk score that ranks customers by what is overdue now is in rules/risk.py.

Trend: mean lateness of invoices paid in the last 6 months (183 days) minus that of invoices
paid in the 6 months before (183-365 days ago); both windows need at least `TREND_MIN`
invoices. Getting worse at +5 days or more, improving at -5 or less.

Struggling (markedly worse, flagged before the debt is bad): over invoices due in the last 90
days, the mean lateness (paid ones: paid_on - due; open ones: days overdue so far, a lower
bound) is at least `STRUGGLING_MIN_DAYS` and exceeds the customer's baseline by at least
`STRUGGLING_MARGIN_DAYS`, where the baseline is the mean lateness of invoices due in the 365
days before that window (paid ones; open ones by days overdue so far). The recent window
needs 2 invoices and the baseline 3, so one bad week of a new customer is not "struggling".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

ZERO = Decimal(0)
TENTH = Decimal("0.1")
HALF_YEAR_DAYS = 183
YEAR_DAYS = 365
TREND_MIN = 2
TREND_DAYS = Decimal(5)
RECENT_DAYS = 90
BASELINE_DAYS = 365
RECENT_MIN = 2
BASELINE_MIN = 3
STRUGGLING_MARGIN_DAYS = Decimal(10)
STRUGGLING_MIN_DAYS = Decimal(7)


@dataclass(frozen=True, slots=True)
class InvoiceHistory:
    """One customer invoice as credit control sees it.

    `paid_on` is the day the last payment settled it in full, None while it is open.
    `amount_due` is the open balance today (zero when paid)."""

    invoice_id: int
    issue_date: date
    due_date: date
    total: Decimal
    amount_due: Decimal
    currency: str
    paid_on: date | None = None
    contact_id: int | None = None

    @property
    def is_open(self) -> bool:
        return self.paid_on is None and self.amount_due > 0

    @property
    def days_late(self) -> int | None:
        """Days paid after the due date (negative: early); None while open."""
        return None if self.paid_on is None else (self.paid_on - self.due_date).days


@dataclass(frozen=True, slots=True)
class Trend:
    last_6m: Decimal | None  # mean lateness of invoices paid in the last 183 days
    prior_6m: Decimal | None  # ... paid 183-365 days ago
    last_12m: Decimal | None  # ... paid in the last 365 days
    change: Decimal | None  # last_6m - prior_6m, when both windows hold TREND_MIN invoices

    @property
    def direction(self) -> str:
        if self.change is None:
            return "unknown"
        if self.change >= TREND_DAYS:
            return "worse"
        if self.change <= -TREND_DAYS:
            return "better"
        return "steady"


@dataclass(frozen=True, slots=True)
class Struggling:
    flagged: bool
    recent_mean: Decimal | None  # lateness over invoices due in the last 90 days
    baseline_mean: Decimal | None  # ... due in the 365 days before that
    recent_count: int
    baseline_count: int


@dataclass(frozen=True, slots=True)
class PaymentBehaviour:
    """What a customer's history says, as of `today`."""

    today: date
    paid_count: int
    paid_late_count: int
    mean_days_to_pay: Decimal | None  # issue -> paid
    weighted_days_to_pay: Decimal | None  # the same, weighted by invoice total
    mean_days_late: Decimal | None  # due -> paid, signed
    mean_days_beyond_terms: Decimal | None  # max(0, due -> paid)
    trend: Trend
    struggling: Struggling
    broken_plans: int
    broken_promises: int
    open_balance: dict[str, Decimal]  # currency -> open balance (exposure)
    overdue_balance: dict[str, Decimal]  # currency -> balance of invoices past due
    oldest_overdue_days: int  # 0 when nothing is overdue

    @property
    def share_paid_late(self) -> Decimal | None:
        if not self.paid_count:
            return None
        return Decimal(self.paid_late_count) / Decimal(self.paid_count)


def _mean(values: Sequence[int | Decimal]) -> Decimal | None:
    if not values:
        return None
    return sum((Decimal(v) for v in values), ZERO) / Decimal(len(values))


def tenths(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.quantize(TENTH, ROUND_HALF_UP)


def whole(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), ROUND_HALF_UP))


def _lateness_so_far(invoice: InvoiceHistory, today: date) -> int | None:
    """Paid: days late. Open and past due: days overdue so far (it will be at least that)."""
    if invoice.paid_on is not None:
        return invoice.days_late
    if invoice.amount_due > 0 and invoice.due_date < today:
        return (today - invoice.due_date).days
    return None


def trend_of(paid: Sequence[InvoiceHistory], today: date) -> Trend:
    def window(newest: int, oldest: int) -> list[int]:
        return [i.days_late for i in paid if i.paid_on is not None and i.days_late is not None
                and newest <= (today - i.paid_on).days < oldest]

    last, prior, year = window(0, HALF_YEAR_DAYS), window(HALF_YEAR_DAYS, YEAR_DAYS), \
        window(0, YEAR_DAYS)
    change = None
    if len(last) >= TREND_MIN and len(prior) >= TREND_MIN:
        change = tenths(_mean(last)) - tenths(_mean(prior))  # type: ignore[operator]
    return Trend(last_6m=tenths(_mean(last)), prior_6m=tenths(_mean(prior)),
                 last_12m=tenths(_mean(year)), change=change)


def struggling_of(invoices: Sequence[InvoiceHistory], today: date) -> Struggling:
    recent_from = today - timedelta(days=RECENT_DAYS)
    baseline_from = recent_from - timedelta(days=BASELINE_DAYS)
    recent: list[int] = []
    baseline: list[int] = []
    for invoice in invoices:
        late = _lateness_so_far(invoice, today)
        if late is None or invoice.due_date > today:
            continue
        if invoice.due_date > recent_from:
            recent.append(late)
        elif invoice.due_date > baseline_from:
            baseline.append(late)
    recent_mean, baseline_mean = tenths(_mean(recent)), tenths(_mean(baseline))
    flagged = (len(recent) >= RECENT_MIN and len(baseline) >= BASELINE_MIN
               and recent_mean is not None and baseline_mean is not None
               and recent_mean >= STRUGGLING_MIN_DAYS
               and recent_mean - baseline_mean >= STRUGGLING_MARGIN_DAYS)
    return Struggling(flagged=flagged, recent_mean=recent_mean, baseline_mean=baseline_mean,
                      recent_count=len(recent), baseline_count=len(baseline))


def payment_behaviour(invoices: Iterable[InvoiceHistory], today: date, *,
                      broken_plans: int = 0, broken_promises: int = 0) -> PaymentBehaviour:
    """One customer's behaviour from all their invoices (paid and open) as of `today`.

    Invoices paid after `today` are treated as open on `today` (so a backtest can ask about
    the past)."""
    history = []
    for invoice in invoices:
        if invoice.paid_on is not None and invoice.paid_on > today:
            invoice = InvoiceHistory(invoice.invoice_id, invoice.issue_date, invoice.due_date,
                                     invoice.total, invoice.total, invoice.currency, None,
                                     invoice.contact_id)
        history.append(invoice)
    paid = [i for i in history if i.paid_on is not None]
    late = [i.days_late for i in paid if i.days_late is not None]
    to_pay = [(i.paid_on - i.issue_date).days for i in paid if i.paid_on is not None]
    weight = sum((i.total for i in paid), ZERO)
    weighted = None
    if paid and weight > 0:
        weighted = sum((i.total * (i.paid_on - i.issue_date).days for i in paid
                        if i.paid_on is not None), ZERO) / weight
    open_balance: dict[str, Decimal] = {}
    overdue: dict[str, Decimal] = {}
    oldest = 0
    for invoice in history:
        if not invoice.is_open:
            continue
        open_balance[invoice.currency] = open_balance.get(invoice.currency, ZERO) \
            + invoice.amount_due
        if invoice.due_date < today:
            overdue[invoice.currency] = overdue.get(invoice.currency, ZERO) + invoice.amount_due
            oldest = max(oldest, (today - invoice.due_date).days)
    return PaymentBehaviour(
        today=today, paid_count=len(paid), paid_late_count=sum(1 for d in late if d > 0),
        mean_days_to_pay=tenths(_mean(to_pay)), weighted_days_to_pay=tenths(weighted),
        mean_days_late=tenths(_mean(late)),
        mean_days_beyond_terms=tenths(_mean([max(0, d) for d in late])),
        trend=trend_of(paid, today), struggling=struggling_of(history, today),
        broken_plans=broken_plans, broken_promises=broken_promises,
        open_balance=open_balance, overdue_balance=overdue, oldest_overdue_days=oldest)


# ------------------------------------------------------------- new customers and terms


def paid_on_time(invoices: Iterable[InvoiceHistory]) -> int:
    """Invoices paid in full on or before their due date: what a new customer must reach to
    leave the stricter policy variant."""
    return sum(1 for i in invoices if i.days_late is not None and i.days_late <= 0)


def over_limit_since(open_invoices: Iterable[InvoiceHistory], limit: Decimal | None,
                     currency: str) -> date | None:
    """The issue date of the invoice that took the open balance over the limit, adding the
    open invoices in the order they were issued (None: not over it)."""
    if limit is None:
        return None
    running = ZERO
    for invoice in sorted((i for i in open_invoices if i.is_open and i.currency == currency),
                          key=lambda i: (i.issue_date, i.invoice_id)):
        running += invoice.amount_due
        if running > limit:
            return invoice.issue_date
    return None


@dataclass(frozen=True, slots=True)
class TermsChange:
    """A new invoice whose terms are longer than a blocked customer should get."""

    invoice_id: int
    issue_date: date
    due_date: date
    recommended_due: date
    because: str


def recommended_terms(open_invoices: Iterable[InvoiceHistory], due_in_days: int, *,
                      on_hold_since: date | None = None,
                      over_limit_from: date | None = None) -> list[TermsChange]:
    """Open invoices issued since the customer went on hold or over the limit, whose due
    date lies beyond `issue date + due_in_days` (0: due on receipt), with the date to give
    them instead. The caller passes only the triggers the policy asks about."""
    triggers = [(day, why) for day, why in ((on_hold_since, "on credit hold"),
                                            (over_limit_from, "over the credit limit"))
                if day is not None]
    if not triggers:
        return []
    changes = []
    for invoice in sorted(open_invoices, key=lambda i: (i.issue_date, i.invoice_id)):
        if not invoice.is_open:
            continue
        reasons = [why for day, why in triggers if invoice.issue_date >= day]
        recommended = invoice.issue_date + timedelta(days=due_in_days)
        if reasons and recommended < invoice.due_date:
            changes.append(TermsChange(invoice.invoice_id, invoice.issue_date,
                                       invoice.due_date, recommended, " and ".join(reasons)))
    return changes


def terms_change_key(org_id: int, invoice_id: int, new_due: date) -> str:
    """The ledger key of one shortening: the invoice and the day it becomes due, so planning
    again (or the same change asked for twice) is one write, and a later, different change
    is another."""
    return f"{org_id}:{invoice_id}:terms_change:{new_due.isoformat()}"


TermsVerdict = Literal["write", "done", "already_shorter", "not_open"]


def terms_verdict(status: str, due_date: date | None, new_due: date, *,
                  write_unknown: bool = False) -> TermsVerdict:
    """Right before writing, what to do with the invoice as it is now: only an open invoice
    due later than `new_due` is shortened; terms are never lengthened. Due on `new_due`
    already after a write whose answer was lost is that write, done."""
    if due_date == new_due and write_unknown:
        return "done"
    if status != "open":
        return "not_open"
    if due_date is None or due_date <= new_due:
        return "already_shorter"  # (no due date: nothing to shorten)
    return "write"
