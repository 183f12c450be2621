"""Predicted pay dates, the 13-week cash-in forecast and the backtest, worked by hand."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from rules.credit import InvoiceHistory
from rules.forecast import (
    Lateness,
    LatenessModel,
    backtest,
    cash_in_forecast,
    predict_pay_dates,
    quantile,
)

TODAY = date(2026, 11, 24)  # a Tuesday


def paid(n: int, contact: int, late: int) -> InvoiceHistory:
    due = date(2026, 6, 1)
    return InvoiceHistory(n, due - timedelta(days=30), due, Decimal("10.00"), Decimal(0), "GBP",
                          due + timedelta(days=late), contact)


def open_invoice(n: int, contact: int, due: date, amount: str,
                 currency: str = "GBP") -> InvoiceHistory:
    return InvoiceHistory(n, due - timedelta(days=30), due, Decimal(amount), Decimal(amount),
                          currency, None, contact)


# Customer 1 pays 10..20 days late (six invoices), customer 2 once on time; customer 3 is new.
MODEL = LatenessModel.from_history(
    [paid(n, 1, late) for n, late in enumerate([10, 12, 14, 16, 18, 20])] + [paid(9, 2, 0)])


def test_quantiles_interpolate_between_order_statistics() -> None:
    assert quantile([0, 10, 12, 14, 16, 18, 20], Decimal("0.2")) == Decimal("10.4")
    assert quantile([0, 10, 12, 14, 16, 18, 20], Decimal("0.8")) == Decimal("17.6")
    assert quantile([10, 20], Decimal("0.5")) == Decimal(15)
    assert quantile([7], Decimal("0.8")) == Decimal(7)


def test_lateness_is_shrunk_toward_the_organisation() -> None:
    # Organisation median 14. Customer 1: median 15, w = 6/9: 14.67 -> 15; own spread 12..18
    # around 15 -> 11.67..17.67.
    assert MODEL.predict(1) == Lateness(15, 12, 18, 6, Decimal("0.667"))
    # Customer 2: median 0, w = 1/4: 10.5 -> 11; the organisation's spread 10.4..17.6 around 14.
    assert MODEL.predict(2) == Lateness(11, 7, 14, 1, Decimal("0.250"))
    # A new customer is the organisation's typical payer.
    assert MODEL.predict(3) == Lateness(14, 10, 18, 0, Decimal("0.000"))
    assert LatenessModel().predict(1) == Lateness(0, 0, 0, 0, Decimal(0))


def test_pay_dates_and_the_weekly_cash_in() -> None:
    invoices = [open_invoice(21, 1, date(2026, 11, 20), "1000.00"),
                open_invoice(22, 2, date(2026, 12, 1), "200.00"),
                open_invoice(23, 3, date(2026, 10, 1), "300.00", "EUR"),
                open_invoice(24, 3, date(2027, 3, 1), "50.00")]
    predictions = predict_pay_dates(invoices, MODEL, TODAY)
    assert [(p.invoice_id, p.expected, p.earliest, p.latest) for p in predictions] == [
        (21, date(2026, 12, 5), date(2026, 12, 2), date(2026, 12, 8)),
        (22, date(2026, 12, 12), date(2026, 12, 8), date(2026, 12, 15)),
        # Already later than expected: any day now.
        (23, TODAY, TODAY, TODAY),
        (24, date(2027, 3, 15), date(2027, 3, 11), date(2027, 3, 19)),
    ]
    forecast = cash_in_forecast(predictions, TODAY)
    assert len(forecast.weeks) == 13
    assert forecast.weeks[0].starts == date(2026, 11, 23)
    assert forecast.weeks[12].ends == date(2027, 2, 21)
    assert [(w.starts, dict(w.amounts), w.invoices) for w in forecast.weeks[:3]] == [
        (date(2026, 11, 23), {"EUR": Decimal("300.00")}, 1),
        (date(2026, 11, 30), {"GBP": Decimal("1000.00")}, 1),
        (date(2026, 12, 7), {"GBP": Decimal("200.00")}, 1),
    ]
    assert all(not w.amounts and w.invoices == 0 for w in forecast.weeks[3:])
    assert forecast.later == {"GBP": Decimal("50.00")}


def test_the_backtest_only_sees_what_was_paid_before_each_issue_date() -> None:
    def invoice(n: int, contact: int, issued: date, late: int) -> InvoiceHistory:
        due = issued + timedelta(days=30)
        return InvoiceHistory(n, issued, due, Decimal("1"), Decimal(0), "GBP",
                              due + timedelta(days=late), contact)

    result = backtest([
        invoice(1, 1, date(2026, 1, 1), 10),   # nothing known: due date, 10 days off
        invoice(2, 2, date(2026, 2, 1), 0),    # invoice 1 not paid yet (10 Feb): exact
        invoice(3, 1, date(2026, 3, 1), 20),   # knows 10 (own, org): predicts 10, off by 10
        invoice(4, 1, date(2026, 5, 1), 30),   # own 10, 20 (w 0.4, median 15), org 10: 12 -> 18
    ])
    assert result.invoices == 4
    assert result.mean_absolute_error_days == Decimal("9.50")
    assert result.due_date_error_days == Decimal("15.00")
    assert result.without_history == 2
    assert backtest([]).mean_absolute_error_days is None
