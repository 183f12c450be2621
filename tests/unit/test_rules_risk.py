"""The risk score (rules/risk.py): overdue debt and its age dominate and never lower it; the
walk-forward backtest beats both baselines on books with per-customer habits."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from rules.credit import InvoiceHistory
from rules.forecast import LatenessModel
from rules.risk import (
    CustomerFacts,
    ReasonKind,
    RiskReason,
    auc,
    backtest,
    customer_facts,
    risk_of,
    typical_invoice,
)
from sandboxes.habits import Habit, habit_book

TODAY = date(2026, 11, 24)
TYPICAL = {"GBP": Decimal("1000.00")}


def open_invoice(n: int, days_overdue: int, amount: str, currency: str = "GBP",
                 contact: int = 1) -> InvoiceHistory:
    due = TODAY - timedelta(days=days_overdue)
    return InvoiceHistory(n, due - timedelta(days=30), due, Decimal(amount), Decimal(amount),
                          currency, None, contact)


def paid(n: int, late: int, contact: int = 1, months_ago: int = 6) -> InvoiceHistory:
    due = TODAY - timedelta(days=30 * months_ago)
    return InvoiceHistory(n, due - timedelta(days=30), due, Decimal("1000.00"), Decimal(0),
                          "GBP", due + timedelta(days=late), contact)


def test_a_customer_103_days_overdue_is_high_risk_whatever_they_did_before() -> None:
    # The user's report: 103 days overdue scored 15/100 with "-15 days late" expected. Paid
    # early twelve times, now one typical invoice 103 days overdue: 40 (age, full at 90 days)
    # + 10 (r = 1: 20 x 1/2) and nothing for the habit.
    history = [paid(n, -15, months_ago=n + 4) for n in range(12)]
    model = LatenessModel.from_history(history)
    facts = customer_facts(model, 1, [*history, open_invoice(20, 103, "1000.00")], TODAY)
    risk = risk_of(facts, TYPICAL)
    assert risk.score == 50
    assert risk.reasons[0] == RiskReason(ReasonKind.OVERDUE, 50, days=103,
                                         amounts=(("GBP", Decimal("1000.00")),))
    assert risk.reasons[1] == RiskReason(ReasonKind.HABIT, 0, days=-15, count=12)
    assert risk.points == {"overdue": 50}
    # The same customer with nothing overdue: no risk.
    calm = risk_of(customer_facts(model, 1, history, TODAY), TYPICAL)
    assert (calm.score, calm.points) == (0, {})
    # The pay-date model expects it no earlier than today.
    assert model.predict(1, 103).expected >= 103


def test_each_part_worked_by_hand() -> None:
    facts = CustomerFacts(
        today=TODAY,
        open_invoices=[open_invoice(1, 45, "2000.00"), open_invoice(2, 10, "500.00", "EUR"),
                       open_invoice(3, -5, "9999.00")],
        habit_days=30, habit_count=8, recent_lateness=[0, 10, 35, 40, 31, 20, 60, 5],
        broken_plans=1, broken_promises=2, open_disputes=1)
    risk = risk_of(facts, {"GBP": Decimal("1000.00"), "EUR": Decimal("250.00")})
    # Age 45 days: 40 x 45/90 = 20; r = 2000/1000 + 500/250 = 4: 20 x 4/5 = 16.
    # Habit 30 days: 15 x 30/45 = 10. Paid > 30 days late: 4 of 8: 5. Broken 3 x 5, at most
    # 10. A dispute: 5.
    assert risk.points == {"overdue": 36, "habit": 10, "very_late": 5, "broken": 10,
                           "disputed": 5}
    assert risk.score == 66
    assert risk.reasons[0].amounts == (("EUR", Decimal("500.00")), ("GBP", Decimal("2000.00")))
    assert [r.as_json() for r in risk.reasons][2:] == [
        {"kind": "very_late", "points": 5, "count": 4, "of": 8},
        {"kind": "broken", "points": 10, "plans": 1, "promises": 2},
        {"kind": "disputed", "points": 5, "count": 1}]


def test_no_history_and_nothing_overdue_scores_nothing() -> None:
    model = LatenessModel.from_history([paid(1, 3, contact=2)])
    risk = risk_of(customer_facts(model, 1, [open_invoice(1, -10, "50.00")], TODAY), TYPICAL)
    assert (risk.score, risk.reasons) == (0, (RiskReason(ReasonKind.NO_HISTORY, 0),))


def test_an_invoice_paid_after_the_day_asked_about_was_open_then() -> None:
    later = paid(1, 40, months_ago=1)  # due 25 October, paid 4 December
    model = LatenessModel()
    facts = customer_facts(model, 1, [later], TODAY)
    assert [i.invoice_id for i in facts.open_invoices] == [1]
    assert facts.open_invoices[0].amount_due == Decimal("1000.00")
    assert risk_of(facts, TYPICAL).reasons[0].days == 30


overdue_invoices = st.lists(
    st.tuples(st.integers(-60, 400), st.integers(1, 500_000), st.sampled_from(["GBP", "EUR"])),
    min_size=0, max_size=6)
histories = st.lists(st.integers(-20, 120), min_size=0, max_size=15)


@settings(max_examples=300, deadline=None)
@given(overdue_invoices, histories, st.integers(0, 3), st.integers(0, 3), st.integers(0, 2),
       st.data())
def test_more_overdue_or_older_never_lowers_the_risk(invoices, lateness, plans, promises,  # type: ignore[no-untyped-def]
                                                     disputes, data) -> None:
    history = [paid(100 + n, late, months_ago=n + 3) for n, late in enumerate(lateness)]
    model = LatenessModel.from_history([*history, paid(999, 5, contact=2)])
    typical = {"GBP": Decimal("800.00"), "EUR": Decimal("1200.00")}

    def score(rows: list[tuple[int, int, str]]) -> int:
        own = [open_invoice(n, days, f"{cents / 100:.2f}", currency)
               for n, (days, cents, currency) in enumerate(rows)]
        facts = customer_facts(model, 1, [*history, *own], TODAY, broken_plans=plans,
                               broken_promises=promises, open_disputes=disputes)
        return risk_of(facts, typical).score

    before = score(invoices)
    assert 0 <= before <= 100
    grown = list(invoices)
    if grown:
        n = data.draw(st.integers(0, len(grown) - 1))
        days, cents, currency = grown[n]
        grown[n] = (days + data.draw(st.integers(0, 200)),
                    cents + data.draw(st.integers(0, 1_000_000)), currency)
        assert score(grown) >= before  # older and larger
    added = data.draw(st.tuples(st.integers(1, 400), st.integers(1, 500_000),
                                st.sampled_from(["GBP", "EUR"])))
    assert score([*invoices, added]) >= before  # one more invoice overdue


def test_auc_counts_ties_as_half() -> None:
    assert auc([(3, True), (2, False), (1, False)]) == 1.0
    assert auc([(1, True), (2, False)]) == 0.0
    assert auc([(1, True), (1, False)]) == 0.5
    assert auc([(2, True), (1, True), (1, False), (0, False)]) == 0.875
    assert auc([(1, True)]) is None


def test_the_backtest_only_sees_what_was_known_at_each_cutoff() -> None:
    # One customer: an invoice paid 10 days late before the cut-off, one open at the cut-off
    # and paid 20 days late after it. At the cut-off (90 days after the first issue) the model
    # knows only the first: it predicts 10 days late for the second, 10 days off; the due date
    # is 20 off, the customer's median (10) 10 off.
    first = InvoiceHistory(1, date(2026, 1, 1), date(2026, 1, 31), Decimal("100.00"),
                           Decimal(0), "GBP", date(2026, 2, 10), 1)
    second = InvoiceHistory(2, date(2026, 3, 1), date(2026, 3, 31), Decimal("100.00"),
                            Decimal(0), "GBP", date(2026, 4, 20), 1)
    result = backtest([first, second], date(2026, 4, 25))
    assert (result.cutoffs, result.predictions) == (1, 1)
    assert (result.model.mean, result.due_date.mean, result.customer_median.mean) == (
        Decimal("10.00"), Decimal("20.00"), Decimal("10.00"))
    assert result.scored == 1 and result.very_late == 0 and result.auc is None


def test_the_generator_is_seeded_and_has_every_habit() -> None:
    book = habit_book(7, customers=40)
    assert book == habit_book(7, customers=40)
    assert book != habit_book(8, customers=40)
    assert {p.habit for p in book.payers.values()} == set(Habit)
    assert all(i.paid_on is None or i.paid_on <= book.end for i in book.invoices)
    stopped = [p.contact_id for p in book.payers.values() if p.habit is Habit.STOPS]
    for contact_id in stopped:  # nothing due after they stopped was ever paid
        payer = book.payers[contact_id]
        assert payer.stops_on is not None
        assert not any(i.paid_on for i in book.invoices
                       if i.contact_id == contact_id and i.due_date >= payer.stops_on)
    assert typical_invoice(book.invoices)["GBP"] > 0


# The thresholds the model must clear on a seed that was not used to tune it (seeds 1-3 were).
AUC_THRESHOLD = 0.85


def test_the_model_beats_both_baselines_and_the_score_ranks() -> None:
    book = habit_book(11)
    result = backtest(book.invoices, book.end)
    assert result.cutoffs >= 20 and result.predictions > 1000 and result.scored > 1000
    assert result.beats_baselines, result.as_json()
    assert result.model.mean is not None and result.customer_median.mean is not None
    assert result.model.mean < result.customer_median_after_cutoff.mean  # type: ignore[operator]
    assert result.auc is not None and result.auc > AUC_THRESHOLD, result.as_json()
