"""New customers on the stricter variant, and shorter terms for customers over their limit or
on hold (rules/credit.py, rules/policy.py), on small histories worked by hand."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from rules.credit import (
    InvoiceHistory,
    TermsChange,
    over_limit_since,
    paid_on_time,
    recommended_terms,
)
from rules.policy import (
    PolicyError,
    default_policy,
    is_new_customer,
    new_customer_variant,
    policy_from_json,
    policy_to_json,
)


def invoice(n: int, issued: date, amount: str, late: int | None = None,
            terms: int = 30, currency: str = "GBP") -> InvoiceHistory:
    due = issued + timedelta(days=terms)
    return InvoiceHistory(
        invoice_id=n, issue_date=issued, due_date=due, total=Decimal(amount),
        amount_due=Decimal(0) if late is not None else Decimal(amount), currency=currency,
        paid_on=None if late is None else due + timedelta(days=late), contact_id=1)


def test_paid_on_time_counts_the_due_date_itself_and_not_open_invoices() -> None:
    history = [invoice(1, date(2026, 1, 1), "100", late=-3), invoice(2, date(2026, 2, 1), "100",
               late=0), invoice(3, date(2026, 3, 1), "100", late=1),
               invoice(4, date(2026, 4, 1), "100")]
    assert paid_on_time(history) == 2


def test_a_new_customer_starts_on_the_stricter_variant_until_n_paid_on_time() -> None:
    body = policy_to_json(default_policy())
    body["new_customer_policy"] = {"paid_on_time": 2, "policy": {
        "reminder_steps": [{"offset_days": -7}, {"offset_days": 0}, {"offset_days": 3}]}}
    policy = policy_from_json(body)
    variant = new_customer_variant(policy)
    assert [s.offset_days for s in variant.reminder_steps] == [-7, 0, 3]
    assert variant.new_customer_policy is None and variant.send_time == policy.send_time
    assert [is_new_customer(policy, n) for n in (0, 1, 2, 3)] == [True, True, False, False]
    assert not is_new_customer(default_policy(), 0)  # no variant: nobody is "new"
    body["new_customer_policy"]["policy"] = {"new_customer_policy": {}}
    with pytest.raises(PolicyError, match="cannot set new_customer_policy"):
        policy_from_json(body)
    body["new_customer_policy"]["policy"] = {"send_window_hours": 99}
    with pytest.raises(PolicyError, match="send_window_hours"):
        policy_from_json(body)


OPEN = [invoice(1, date(2026, 10, 1), "400.00"), invoice(2, date(2026, 11, 2), "300.00"),
        invoice(3, date(2026, 11, 16), "500.00", terms=45),
        invoice(4, date(2026, 11, 20), "900.00", currency="EUR")]


def test_over_the_limit_from_the_invoice_that_crossed_it() -> None:
    assert over_limit_since(OPEN, Decimal("600.00"), "GBP") == date(2026, 11, 2)  # 400+300
    assert over_limit_since(OPEN, Decimal("1200.00"), "GBP") is None  # 1200 is not over
    assert over_limit_since(OPEN, None, "GBP") is None


def test_shorter_terms_for_invoices_issued_since_the_block() -> None:
    over = recommended_terms(OPEN, 7, over_limit_from=date(2026, 11, 2))
    assert over == [
        TermsChange(2, date(2026, 11, 2), date(2026, 12, 2), date(2026, 11, 9),
                    "over the credit limit"),
        TermsChange(3, date(2026, 11, 16), date(2026, 12, 31), date(2026, 11, 23),
                    "over the credit limit"),
        TermsChange(4, date(2026, 11, 20), date(2026, 12, 20), date(2026, 11, 27),
                    "over the credit limit")]
    both = recommended_terms(OPEN, 0, on_hold_since=date(2026, 11, 16),
                             over_limit_from=date(2026, 11, 2))
    assert [(c.invoice_id, c.recommended_due, c.because) for c in both] == [
        (2, date(2026, 11, 2), "over the credit limit"),
        (3, date(2026, 11, 16), "on credit hold and over the credit limit"),
        (4, date(2026, 11, 20), "on credit hold and over the credit limit")]
    # Terms already as short as asked: nothing to change; nothing blocked: nothing at all.
    assert recommended_terms(OPEN, 45, on_hold_since=date(2026, 11, 1)) == []
    assert recommended_terms(OPEN, 7) == []
