"""Payment behaviour and the struggling flag on small histories worked by hand (the risk score:
test_rules_risk.py)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from rules.credit import InvoiceHistory, payment_behaviour

TODAY = date(2026, 11, 24)


def paid(n: int, due: date, late: int, total: str = "100.00", terms: int = 30) -> InvoiceHistory:
    return InvoiceHistory(invoice_id=n, issue_date=due - timedelta(days=terms), due_date=due,
                          total=Decimal(total), amount_due=Decimal(0), currency="GBP",
                          paid_on=due + timedelta(days=late), contact_id=1)


def open_invoice(n: int, due: date, amount: str, currency: str = "GBP") -> InvoiceHistory:
    return InvoiceHistory(invoice_id=n, issue_date=due - timedelta(days=30), due_date=due,
                          total=Decimal(amount), amount_due=Decimal(amount), currency=currency,
                          contact_id=1)


# Paid 2 and 4 days late early in the year, then 20, 25 and 30 days late; 500 overdue 40 days.
WORSENING = [
    paid(1, date(2026, 1, 10), 2), paid(2, date(2026, 2, 10), 4),
    paid(3, date(2026, 7, 1), 20, "200.00"), paid(4, date(2026, 8, 1), 25, "200.00"),
    paid(5, date(2026, 9, 15), 30, "400.00"), open_invoice(6, date(2026, 10, 15), "500.00"),
]


def test_a_customer_paying_later_and_later() -> None:
    behaviour = payment_behaviour(WORSENING, TODAY, broken_plans=2)
    assert behaviour.paid_count == 5 and behaviour.paid_late_count == 5
    assert behaviour.share_paid_late == Decimal(1)
    assert behaviour.mean_days_to_pay == Decimal("46.2")  # (32+34+50+55+60)/5
    # (100*32 + 100*34 + 200*50 + 200*55 + 400*60) / 1000
    assert behaviour.weighted_days_to_pay == Decimal("51.6")
    assert behaviour.mean_days_late == Decimal("16.2")
    assert behaviour.mean_days_beyond_terms == Decimal("16.2")
    assert (behaviour.trend.last_6m, behaviour.trend.prior_6m, behaviour.trend.last_12m,
            behaviour.trend.change) == (Decimal("25.0"), Decimal("3.0"), Decimal("16.2"),
                                        Decimal("22.0"))
    assert behaviour.trend.direction == "worse"
    assert behaviour.open_balance == {"GBP": Decimal("500.00")}
    assert behaviour.overdue_balance == {"GBP": Decimal("500.00")}
    assert behaviour.oldest_overdue_days == 40
    # Due in the last 90 days: 30 (paid) and 40 (open, so far); the year before: 2, 4, 20, 25.
    s = behaviour.struggling
    assert (s.flagged, s.recent_mean, s.baseline_mean, s.recent_count, s.baseline_count) == (
        True, Decimal("35.0"), Decimal("12.8"), 2, 4)



def test_a_prompt_payer() -> None:
    history = [paid(1, date(2026, 3, 1), -5), paid(2, date(2026, 6, 1), -1),
               paid(3, date(2026, 9, 1), 0), open_invoice(4, date(2026, 12, 10), "90.00")]
    behaviour = payment_behaviour(history, TODAY)
    assert behaviour.mean_days_late == Decimal("-2.0")
    assert behaviour.share_paid_late == Decimal(0)
    assert behaviour.open_balance == {"GBP": Decimal("90.00")}
    assert behaviour.overdue_balance == {} and behaviour.oldest_overdue_days == 0


def test_struggling_needs_ten_days_over_the_baseline() -> None:
    baseline = [paid(1, date(2026, 3, 1), 0), paid(2, date(2026, 4, 1), 0),
                paid(3, date(2026, 5, 1), 0)]
    flagged = payment_behaviour(
        [*baseline, paid(4, date(2026, 10, 1), 10), paid(5, date(2026, 11, 1), 10)], TODAY)
    assert flagged.struggling.flagged is True
    assert flagged.struggling.recent_mean == Decimal("10.0")
    not_yet = payment_behaviour(
        [*baseline, paid(4, date(2026, 10, 1), 10), paid(5, date(2026, 11, 1), 9)], TODAY)
    assert not_yet.struggling.flagged is False
    assert not_yet.struggling.recent_mean == Decimal("9.5")
    # One recent invoice is not a pattern.
    alone = payment_behaviour([*baseline, paid(4, date(2026, 10, 1), 40)], TODAY)
    assert (alone.struggling.flagged, alone.struggling.recent_count) == (False, 1)


def test_an_invoice_paid_after_the_day_asked_about_was_open_then() -> None:
    later = paid(1, date(2026, 11, 1), 30)  # paid 1 December
    behaviour = payment_behaviour([later], TODAY)
    assert behaviour.paid_count == 0
    assert behaviour.overdue_balance == {"GBP": Decimal("100.00")}
    assert behaviour.oldest_overdue_days == 23
