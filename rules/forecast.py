"""When open invoices will be paid, and so how much cash comes in each week.

The model is small enough to check by hand. Lateness is `paid_on - due_date` in days over the
paid invoices. For a customer with n paid invoices and median lateness m_c, in an organisation
whose median is m_o:

    expected lateness = w * m_c + (1 - w) * m_o,   w = n / (n + K),  K = 3

rounded half up to whole days: a customer with one paid invoice is mostly the organisation's
typical payer, one with 12 is mostly themselves. The interval is the 20th-80th percentile
spread (linear interpolation between order statistics) of the customer's own lateness when
they have at least 5 paid invoices, else the organisation's, moved to sit around the expected
value: [expected + (q20 - median), expected + (q80 - median)]. With no paid invoice anywhere,
invoices are expected on their due date.

An open invoice is expected on `due_date + expected lateness`, never before today (one already
later than that is expected any day now). The backtest predicts each paid invoice from the
invoices paid strictly before its issue date, as the model would have on the day it was
issued, and reports the mean absolute error in days, beside the error of the naive "paid on
the due date" guess.
"""

from __future__ import annotations

from bisect import insort
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from rules.credit import InvoiceHistory

SHRINK_K = 3
CUSTOMER_SPREAD_MIN = 5
LOW_QUANTILE, HIGH_QUANTILE = Decimal("0.2"), Decimal("0.8")
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


def _days(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), ROUND_HALF_UP))


@dataclass(frozen=True, slots=True)
class Lateness:
    """Expected days after the due date, with its interval and what it rests on."""

    expected: int
    low: int
    high: int
    customer_paid: int  # n: the customer's paid invoices
    weight: Decimal  # w = n / (n + K), the customer's share of the estimate


@dataclass(slots=True)
class LatenessModel:
    """Sorted lateness of the organisation and of each customer (contact id -> days)."""

    organisation: list[int] = field(default_factory=list)
    customers: dict[int | None, list[int]] = field(default_factory=dict)

    @classmethod
    def from_history(cls, invoices: Iterable[InvoiceHistory]) -> LatenessModel:
        model = cls()
        for invoice in invoices:
            model.add(invoice)
        return model

    def add(self, invoice: InvoiceHistory) -> None:
        late = invoice.days_late
        if late is None:
            return
        insort(self.organisation, late)
        insort(self.customers.setdefault(invoice.contact_id, []), late)

    def predict(self, contact_id: int | None) -> Lateness:
        own = self.customers.get(contact_id, []) if contact_id is not None else []
        if not self.organisation:
            return Lateness(0, 0, 0, 0, ZERO)
        n = len(own)
        weight = Decimal(n) / Decimal(n + SHRINK_K)
        org_median = quantile(self.organisation, Decimal("0.5"))
        centre = org_median if not own else \
            weight * quantile(own, Decimal("0.5")) + (1 - weight) * org_median
        expected = _days(centre)
        spread = own if n >= CUSTOMER_SPREAD_MIN else self.organisation
        middle = quantile(spread, Decimal("0.5"))
        low = _days(centre + quantile(spread, LOW_QUANTILE) - middle)
        high = _days(centre + quantile(spread, HIGH_QUANTILE) - middle)
        return Lateness(expected, min(low, expected), max(high, expected), n,
                        weight.quantize(Decimal("0.001"), ROUND_HALF_UP))


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
    """Each open invoice's expected pay date and interval, none before today."""
    predictions = []
    for invoice in open_invoices:
        if not invoice.is_open:
            continue
        lateness = model.predict(invoice.contact_id)

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


@dataclass(frozen=True, slots=True)
class Backtest:
    invoices: int  # paid invoices predicted
    mean_absolute_error_days: Decimal | None  # the model
    due_date_error_days: Decimal | None  # the naive guess: paid on the due date
    without_history: int  # predicted with no paid invoice before them (due date guessed)


def backtest(invoices: Iterable[InvoiceHistory]) -> Backtest:
    """Predict each paid invoice from what was paid strictly before its issue date."""
    paid = sorted((i for i in invoices if i.paid_on is not None),
                  key=lambda i: (i.paid_on, i.invoice_id))
    targets = sorted(paid, key=lambda i: (i.issue_date, i.invoice_id))
    model = LatenessModel()
    known = 0
    errors: list[int] = []
    naive: list[int] = []
    blind = 0
    for invoice in targets:
        while known < len(paid) and paid[known].paid_on < invoice.issue_date:  # type: ignore[operator]
            model.add(paid[known])
            known += 1
        if not model.organisation:
            blind += 1
        lateness = model.predict(invoice.contact_id).expected
        predicted = max(invoice.issue_date, invoice.due_date + timedelta(days=lateness))
        assert invoice.paid_on is not None
        errors.append(abs((invoice.paid_on - predicted).days))
        naive.append(abs((invoice.paid_on - invoice.due_date).days))

    def mean(values: list[int]) -> Decimal | None:
        if not values:
            return None
        return (Decimal(sum(values)) / Decimal(len(values))).quantize(Decimal("0.01"),
                                                                     ROUND_HALF_UP)

    return Backtest(invoices=len(errors), mean_absolute_error_days=mean(errors),
                    due_date_error_days=mean(naive), without_history=blind)
