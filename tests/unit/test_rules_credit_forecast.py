"""Predicted pay dates and the 13-week cash-in forecast, worked by hand (the backtest:
test_rules_risk.py)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from rules.credit import InvoiceHistory
from rules.forecast import (
    Lateness,
    LatenessModel,
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


def test_lateness_is_the_median_of_the_customer_and_the_organisation_mixed() -> None:
    # Organisation: 0, 10, 12, 14, 16, 18, 20. Customer 1 (n = 6, w = 6/8): P(<= 14) = 3/6 x 3/4
    # + 4/7 x 1/4 = 29/56 >= 1/2, P(<= 13) = 5/14: median 14; 20% at 12, 80% at 18.
    assert MODEL.predict(1) == Lateness(14, 12, 18, 6, Decimal("0.750"))
    # Customer 2 (one invoice paid on time, w = 1/3): P(<= 0) = 1/3 + 1/7 x 2/3 = 3/7 < 1/2,
    # P(<= 10) = 1/3 + 2/7 x 2/3 = 11/21: median 10, mostly the organisation's typical payer.
    assert MODEL.predict(2) == Lateness(10, 0, 16, 1, Decimal("0.333"))
    # A new customer is the organisation's typical payer.
    assert MODEL.predict(3) == Lateness(14, 10, 18, 0, Decimal("0.000"))
    assert LatenessModel().predict(1) == Lateness(0, 0, 0, 0, Decimal(0))


def test_what_is_known_conditions_the_prediction() -> None:
    # Not paid 19 days after the due date: of customer 1's and the organisation's lateness only
    # 20 is that late.
    assert MODEL.predict(1, 19) == Lateness(20, 20, 20, 6, Decimal("0.750"))
    # Later than anyone ever paid: a week after the earliest day, within two.
    assert MODEL.predict(1, 103) == Lateness(110, 103, 117, 6, Decimal("0.750"))
    # A bound before anything was ever paid changes nothing.
    assert MODEL.predict(1, -30) == MODEL.predict(1)
    assert LatenessModel().predict(1, 40) == Lateness(40, 40, 40, 0, Decimal(0))


def test_a_customer_is_judged_by_their_last_paid_invoices() -> None:
    # On time six times, then 40 days late six times: the median of all is 20, the last six
    # say 40 (the organisation is this customer alone: P(<= 0) = 1/4 x 1/2 < 1/2).
    def invoice(n: int, late: int) -> InvoiceHistory:
        due = date(2025, 1, 1) + timedelta(days=30 * n)
        return InvoiceHistory(n, due - timedelta(days=30), due, Decimal("10.00"), Decimal(0),
                              "GBP", due + timedelta(days=late), 1)

    model = LatenessModel.from_history([invoice(n, 0 if n < 6 else 40) for n in range(12)])
    assert model.recent(1) == [40] * 6
    assert model.customer_median(1) == 20
    assert model.predict(1) == Lateness(40, 40, 40, 6, Decimal("0.750"))


def test_pay_dates_and_the_weekly_cash_in() -> None:
    invoices = [open_invoice(21, 1, date(2026, 11, 20), "1000.00"),
                open_invoice(22, 2, date(2026, 12, 1), "200.00"),
                open_invoice(23, 3, date(2026, 10, 1), "300.00", "EUR"),
                open_invoice(24, 3, date(2027, 3, 1), "50.00")]
    predictions = predict_pay_dates(invoices, MODEL, TODAY)
    assert [(p.invoice_id, p.expected, p.earliest, p.latest) for p in predictions] == [
        # Four days overdue: paid at least 4 days late, which changes little for customer 1.
        (21, date(2026, 12, 4), date(2026, 12, 2), date(2026, 12, 8)),
        (22, date(2026, 12, 11), date(2026, 12, 1), date(2026, 12, 17)),
        # 54 days overdue, later than anyone ever paid: in a week, never before today.
        (23, date(2026, 12, 1), TODAY, date(2026, 12, 8)),
        (24, date(2027, 3, 15), date(2027, 3, 11), date(2027, 3, 19)),
    ]
    forecast = cash_in_forecast(predictions, TODAY)
    assert len(forecast.weeks) == 13
    assert forecast.weeks[0].starts == date(2026, 11, 23)
    assert forecast.weeks[12].ends == date(2027, 2, 21)
    assert [(w.starts, dict(w.amounts), w.invoices) for w in forecast.weeks[:3]] == [
        (date(2026, 11, 23), {}, 0),
        (date(2026, 11, 30), {"EUR": Decimal("300.00"), "GBP": Decimal("1000.00")}, 2),
        (date(2026, 12, 7), {"GBP": Decimal("200.00")}, 1),
    ]
    assert all(not w.amounts and w.invoices == 0 for w in forecast.weeks[3:])
    assert forecast.later == {"GBP": Decimal("50.00")}
