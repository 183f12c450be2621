"""When open invoices will be paid, and so how much cash comes in each week.

Lateness is `paid_on - due_date` in days over paid invoices. A customer's lateness is predicted
from a mixture of two empirical distributions: their own last `RECENT` paid invoices (so a
customer who is getting worse is followed) with weight w = n / (n + K), K = 2, and the
organisation's paid invoices with weight 1 - w. A customer with one paid invoice is mostly the
organisation's typical payer, one with 12 is mostly themselves.

What is already known conditions the prediction: an open invoice cannot be paid before
`earliest` (today for the pages; the day after the cut-off in a backtest), so the prediction is
the median of the mixture restricted to lateness >= earliest - due (an invoice 103 days overdue
is predicted from the customers and invoices that were at least that late, never before
today). The interval is that conditional distribution's 20th-80th percentiles. When nobody was
ever that late, it is expected `TAIL_DAYS` after `earliest`. With no paid invoice anywhere,
invoices are expected on their due date (or `earliest`, if later).

The median minimises the mean absolute error, the figure the backtest (rules/risk.py) reports
beside the two baselines: "paid on the due date" and "due date + the customer's median
lateness".
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from rules.credit import InvoiceHistory

SHRINK_K = 2
RECENT = 6  # a customer's own distribution: their last RECENT paid invoices
TAIL_DAYS = 7
LOW_QUANTILE, MEDIAN, HIGH_QUANTILE = Fraction(1, 5), Fraction(1, 2), Fraction(4, 5)
FORECAST_WEEKS = 13
ZERO = Decimal(0)


def quantile(ordered: Sequence[int], q: Decimal) -> Decimal:
    """Linear interpolation between order statistics (numpy's default) of sorted values."""
    if not ordered:
        raise ValueError("the quantile of no values")
    position = q * (len(ordered) - 1)
    below = int(position)
    fraction = position - below
    if below + 1 >= len(ordered):
        return Decimal(ordered[-1])
    return Decimal(ordered[below]) + (Decimal(ordered[below + 1]) - Decimal(ordered[below])) \
        * fraction


def median_days(values: Iterable[int]) -> int | None:
    """The median, rounded half up to whole days (None for no values)."""
    ordered = sorted(values)
    if not ordered:
        return None
    return int(quantile(ordered, Decimal("0.5")).quantize(Decimal(1), ROUND_HALF_UP))


@dataclass(frozen=True, slots=True)
class Lateness:
    """Expected days after the due date, with its interval and what it rests on."""

    expected: int
    low: int
    high: int
    customer_paid: int  # n: the customer's paid invoices the estimate uses (at most RECENT)
    weight: Decimal  # w = n / (n + K), the customer's share of the estimate


@dataclass(frozen=True, slots=True)
class _Mixture:
    own: Sequence[int]  # sorted
    org: Sequence[int]  # sorted
    weight: Fraction

    def below(self, days: int) -> Fraction:
        """P(lateness < days)."""
        mass = Fraction(0)
        if self.own:
            mass += self.weight * Fraction(bisect_left(self.own, days), len(self.own))
        if self.org:
            mass += (1 - self.weight) * Fraction(bisect_left(self.org, days), len(self.org))
        return mass

    def at_most(self, days: int) -> Fraction:
        return self.below(days + 1)

    def quantile_from(self, floor: int, q: Fraction) -> int | None:
        """The q-quantile of lateness given lateness >= floor (None: no mass there)."""
        before = self.below(floor)
        if before >= 1:
            return None
        target = before + (1 - before) * q
        low = floor
        high = max(floor, self.own[-1] if self.own else floor, self.org[-1] if self.org else floor)
        while low < high:  # the smallest day whose cumulative mass reaches the target
            middle = (low + high) // 2
            if self.at_most(middle) >= target:
                high = middle
            else:
                low = middle + 1
        return low


@dataclass(slots=True)
class LatenessModel:
    """Sorted lateness of the organisation, and each customer's in the order they paid."""

    organisation: list[int] = field(default_factory=list)
    customers: dict[int | None, list[tuple[date, int, int]]] = field(default_factory=dict)

    @classmethod
    def from_history(cls, invoices: Iterable[InvoiceHistory]) -> LatenessModel:
        model = cls()
        for invoice in invoices:
            model.add(invoice)
        return model

    def add(self, invoice: InvoiceHistory) -> None:
        late = invoice.days_late
        if late is None or invoice.paid_on is None:
            return
        insort(self.organisation, late)
        insort(self.customers.setdefault(invoice.contact_id, []),
               (invoice.paid_on, invoice.invoice_id, late))

    def recent(self, contact_id: int | None) -> list[int]:
        """The customer's lateness on their last RECENT paid invoices, sorted."""
        if contact_id is None:
            return []
        return sorted(late for _day, _id, late in self.customers.get(contact_id, [])[-RECENT:])

    def customer_median(self, contact_id: int | None) -> int | None:
        """The median of all the customer's paid lateness (the baseline the model must beat)."""
        if contact_id is None:
            return None
        return median_days(late for _day, _id, late in self.customers.get(contact_id, []))

    def predict(self, contact_id: int | None, floor: int | None = None) -> Lateness:
        """Expected lateness of the customer's invoice, given it is paid `floor` days after its
        due date or later (None: nothing known yet)."""
        own = self.recent(contact_id)
        n = len(own)
        weight = Fraction(n, n + SHRINK_K)
        shown_weight = (Decimal(n) / Decimal(n + SHRINK_K)).quantize(Decimal("0.001"),
                                                                      ROUND_HALF_UP)
        if not self.organisation:
            day = max(0, floor or 0)
            return Lateness(day, day, day, n, shown_weight)
        mixture = _Mixture(own, self.organisation, weight)
        start = min(own[0] if own else self.organisation[0], self.organisation[0])
        if floor is not None:
            start = max(start, floor)
        expected = mixture.quantile_from(start, MEDIAN)
        if expected is None:  # nobody was ever this late: some time after the earliest day
            day = start + TAIL_DAYS
            return Lateness(day, start, start + 2 * TAIL_DAYS, n, shown_weight)
        low = mixture.quantile_from(start, LOW_QUANTILE)
        high = mixture.quantile_from(start, HIGH_QUANTILE)
        assert low is not None and high is not None
        return Lateness(expected, low, high, n, shown_weight)


@dataclass(frozen=True, slots=True)
class PayDate:
    invoice_id: int
    contact_id: int | None
    amount_due: Decimal
    currency: str
    due_date: date
    lateness: Lateness
    expected: date
    earliest: date
    latest: date


def predict_pay_dates(open_invoices: Iterable[InvoiceHistory], model: LatenessModel,
                      today: date) -> list[PayDate]:
    """Each open invoice's expected pay date and interval, none before today: an open invoice
    is paid today at the earliest, which conditions its prediction."""
    predictions = []
    for invoice in open_invoices:
        if not invoice.is_open:
            continue
        lateness = model.predict(invoice.contact_id, (today - invoice.due_date).days)

        def on(days: int, due: date = invoice.due_date) -> date:
            return max(today, due + timedelta(days=days))

        predictions.append(PayDate(
            invoice_id=invoice.invoice_id, contact_id=invoice.contact_id,
            amount_due=invoice.amount_due, currency=invoice.currency,
            due_date=invoice.due_date, lateness=lateness, expected=on(lateness.expected),
            earliest=on(lateness.low), latest=on(lateness.high)))
    return predictions


@dataclass(frozen=True, slots=True)
class WeekCashIn:
    starts: date  # a Monday
    amounts: Mapping[str, Decimal]  # currency -> expected cash in
    invoices: int

    @property
    def ends(self) -> date:
        return self.starts + timedelta(days=6)


@dataclass(frozen=True, slots=True)
class CashForecast:
    weeks: tuple[WeekCashIn, ...]
    later: Mapping[str, Decimal]  # expected after the last week


def cash_in_forecast(predictions: Iterable[PayDate], today: date,
                     weeks: int = FORECAST_WEEKS) -> CashForecast:
    """Open balances summed by the week (Monday to Sunday) of their expected pay date; the
    first week is the one holding today."""
    first = today - timedelta(days=today.weekday())
    amounts: list[dict[str, Decimal]] = [{} for _ in range(weeks)]
    counts = [0] * weeks
    later: dict[str, Decimal] = {}
    for prediction in predictions:
        index = (prediction.expected - first).days // 7
        bucket = amounts[index] if index < weeks else later
        bucket[prediction.currency] = bucket.get(prediction.currency, ZERO) \
            + prediction.amount_due
        if index < weeks:
            counts[index] += 1
    return CashForecast(
        weeks=tuple(WeekCashIn(first + timedelta(weeks=n), dict(sorted(amounts[n].items())),
                               counts[n]) for n in range(weeks)),
        later=dict(sorted(later.items())))
