from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import cache, lru_cache
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules.fees import (
    ChargedFee,
    DailyInterestRule,
    FeeCharge,
    FeeDays,
    FeeInvoice,
    LateFeeRule,
    ReminderFeeRule,
    StatutoryInterestRule,
    due_fees,
    fee_key,
    fee_rule_from_json,
    norwegian_reminder_fees,
)
from rules.invoice import Hold, InvoiceStatus
from rules.statutory import (
    CompensationBand,
    CompensationPeriod,
    CompensationTable,
    DatedAmount,
    FxRateRequired,
    NotApplicable,
    PrincipalEvents,
    RateNotCovered,
    RatePeriod,
    RateTable,
    RateUnverified,
    floor_money,
    minor_unit_digits,
    reminder_fee_cap,
    round_money,
    statutory_interest,
)
from rules.validation import PolicyError

D = Decimal
DAY = timedelta(days=1)
PLN = {("EUR", "PLN"): D("4.2692")}


def invoice(principal: str, currency: str = "EUR", due: date = date(2026, 1, 1),
            *payments: tuple[date, str], business: bool = True,
            status: InvoiceStatus = "open") -> FeeInvoice:
    return FeeInvoice(org_id=7, invoice_id=42, currency=currency, principal=D(principal),
                      due_date=due, payments=tuple((day, D(paid)) for day, paid in payments),
                      is_business=business, status=status)


def rule(**data: Any) -> LateFeeRule:
    return fee_rule_from_json(data)


def fees(fee_rule: LateFeeRule, inv: FeeInvoice, as_of: date,
         charged: Sequence[ChargedFee] = (), rule_id: str = "late", **kw: Any
         ) -> list[FeeCharge]:
    return due_fees(fee_rule, inv, charged, as_of, rule_id=rule_id, **kw)


def amounts(charges: Sequence[FeeCharge]) -> list[Decimal]:
    return [c.amount for c in charges]


def spans(charges: Sequence[FeeCharge]) -> list[tuple[int, date, date, Decimal]]:
    return [(c.period, c.period_start, c.period_end, c.amount) for c in charges]


def ledger(charges: Sequence[FeeCharge]) -> list[ChargedFee]:
    return [ChargedFee(c.key, c.amount) for c in charges]


# ----------------------------------------------------------------------------- flat


def test_flat_fee_is_charged_once_from_the_day_after_the_grace() -> None:
    """EUR 1,000 due 2026-01-01, 7 days' grace: the grace ends with 01-08, the fee is due 01-09."""
    flat = rule(kind="flat", amount="25", grace_days=7)
    inv = invoice("1000")
    assert fees(flat, inv, date(2026, 1, 8)) == []
    [charge] = fees(flat, inv, date(2026, 1, 9))
    assert charge == FeeCharge(
        key="7:42:fee:late:0", rule_id="late", kind="fee", amount=D("25.00"), currency="EUR",
        period=0, period_start=date(2026, 1, 9), period_end=date(2026, 1, 9),
        reason="Late fee 25.00 EUR: unpaid 7 days after the due date 2026-01-01",
        placement="line", account_code=None, tax_rate=None, item=None)
    # Once, however long it stays unpaid; never again once in the ledger.
    assert fees(flat, inv, date(2027, 1, 1)) == [charge]
    assert fees(flat, inv, date(2027, 1, 1), ledger([charge])) == []
    without_grace = rule(kind="flat", amount="25")
    assert fees(without_grace, inv, date(2026, 1, 1)) == []
    assert [c.reason for c in fees(without_grace, inv, date(2026, 1, 2))] == [
        "Late fee 25.00 EUR: unpaid after the due date 2026-01-01"]


def test_flat_fee_nothing_when_paid_before_the_grace_ends() -> None:
    flat = rule(kind="flat", amount="25", grace_days=7)
    day = date(2026, 1, 20)
    # Paid on the last day of grace: the balance at the end of it is nil.
    assert fees(flat, invoice("1000", "EUR", date(2026, 1, 1), (date(2026, 1, 8), "1000")),
                day) == []
    # Paid in two parts, the last on the due date: nil as well.
    assert fees(flat, invoice("1000", "EUR", date(2026, 1, 1), (date(2025, 12, 20), "600"),
                              (date(2026, 1, 1), "400")), day) == []
    # Paid on the first chargeable day: too late, the grace was over.
    assert amounts(fees(flat, invoice("1000", "EUR", date(2026, 1, 1),
                                      (date(2026, 1, 9), "1000")), day)) == [D("25.00")]
    # A part payment does not change a flat fee.
    assert amounts(fees(flat, invoice("1000", "EUR", date(2026, 1, 1),
                                      (date(2026, 1, 5), "990")), day)) == [D("25.00")]
    for status in ("paid", "voided", "draft", "deleted"):
        assert fees(flat, invoice("1000", status=status), day) == []


def test_a_flat_amount_is_rounded_to_the_invoice_currency() -> None:
    """A rule without a currency takes its amount in the invoice's: JPY has no minor unit."""
    flat = rule(kind="flat", amount="500.5")
    assert amounts(fees(flat, invoice("100000", "JPY"), date(2026, 1, 2))) == [D("501")]
    assert amounts(fees(flat, invoice("1000", "KWD"), date(2026, 1, 2))) == [D("500.500")]


# ----------------------------------------------------------------------------- percentage


def test_percentage_fee_of_the_balance_left_at_the_end_of_the_grace() -> None:
    """EUR 1,234.56 due 2026-03-31, 10 days' grace: charged 04-11 on the balance of 04-10.

    1,234.56 EUR x 2.5 % = 30.864 -> 30.86; after 234.56 paid on 04-10: 1,000.00 x 2.5 % = 25.00
    """
    pct = rule(kind="percentage", percent="2.5", grace_days=10)
    due, as_of = date(2026, 3, 31), date(2026, 5, 31)
    assert fees(pct, invoice("1234.56", "EUR", due), date(2026, 4, 10)) == []
    [charge] = fees(pct, invoice("1234.56", "EUR", due), as_of)
    assert (charge.amount, charge.period_start, charge.kind) == (D("30.86"), date(2026, 4, 11),
                                                                 "fee")
    assert charge.reason == ("Late fee 2.5 % of the overdue balance 1,234.56 EUR: unpaid 10 days"
                             " after the due date 2026-03-31")
    part = invoice("1234.56", "EUR", due, (date(2026, 4, 10), "234.56"))
    [lowered] = fees(pct, part, as_of)
    assert lowered.amount == D("25.00")
    assert "of the overdue balance 1,000.00 EUR" in lowered.reason
    # A payment on the day the fee falls due does not count: the grace was over.
    late = invoice("1234.56", "EUR", due, (date(2026, 4, 11), "234.56"))
    assert amounts(fees(pct, late, as_of)) == [D("30.86")]


# ----------------------------------------------------------------------------- recurring


def test_recurring_percentage_period_k_on_day_s_plus_k_n_up_to_max_charges() -> None:
    """EUR 2,000 due 2026-01-31, 1.5 % every 30 days, at most 3: S = 02-01.

    period 0 on 02-01: 2,000 x 1.5 % = 30.00
    period 1 on 03-03 (02-01 + 30), after 500 paid on 03-02: 1,500 x 1.5 % = 22.50
    period 2 on 04-02 (02-01 + 60): 22.50; no period 3 (max_charges)
    """
    recurring = rule(kind="recurring_percentage", percent="1.5", period_days=30, max_charges=3)
    inv = invoice("2000", "EUR", date(2026, 1, 31), (date(2026, 3, 2), "500"))
    assert fees(recurring, inv, date(2026, 1, 31)) == []
    assert spans(fees(recurring, inv, date(2026, 3, 2))) == [
        (0, date(2026, 2, 1), date(2026, 2, 1), D("30.00"))]
    assert spans(fees(recurring, inv, date(2026, 3, 3))) == [
        (0, date(2026, 2, 1), date(2026, 2, 1), D("30.00")),
        (1, date(2026, 3, 3), date(2026, 3, 3), D("22.50"))]
    everything = fees(recurring, inv, date(2027, 12, 31))
    assert spans(everything) == [
        (0, date(2026, 2, 1), date(2026, 2, 1), D("30.00")),
        (1, date(2026, 3, 3), date(2026, 3, 3), D("22.50")),
        (2, date(2026, 4, 2), date(2026, 4, 2), D("22.50"))]
    assert [c.key for c in everything] == ["7:42:fee:late:0", "7:42:fee:late:1",
                                           "7:42:fee:late:2"]
    assert everything[1].reason == ("Late fee 1.5 % of the overdue balance 1,500.00 EUR,"
                                    " period 2: unpaid after the due date 2026-01-31")
    # Without max_charges it goes on: period 11 on 02-01 + 330 days = 2026-12-29.
    endless = rule(kind="recurring_percentage", percent="1.5", period_days=30)
    assert fees(endless, inv, date(2026, 12, 29))[-1].period == 11
    # Paid in full before period 1: nothing more.
    paid = invoice("2000", "EUR", date(2026, 1, 31), (date(2026, 3, 2), "2000"))
    assert amounts(fees(recurring, paid, date(2027, 1, 1))) == [D("30.00")]


# ----------------------------------------------------------------------------- daily interest


def test_daily_interest_charges_each_whole_period_once_it_has_ended() -> None:
    """1,000.00 EUR x 10.27 % x 31 / 365 = 8.7224657... -> 8.72 for 2026-01-02..02-01.

    Due 2026-01-01, no grace, 31-day periods: period 0 is 01-02..02-01, charged from 02-02.
    """
    interest = rule(kind="daily_interest", annual_rate_percent="10.27", period_days=31)
    inv = invoice("1000")
    assert fees(interest, inv, date(2026, 2, 1)) == []
    [charge] = fees(interest, inv, date(2026, 2, 2))
    assert (charge.kind, charge.amount, charge.period_start, charge.period_end) == (
        "interest", D("8.72"), date(2026, 1, 2), date(2026, 2, 1))
    assert charge.reason == ("Interest 10.27 % p.a. on the unpaid balance (1,000.00 EUR at the"
                             " end) for 31 days (2026-01-02..2026-02-01)")
    # Period 1 (02-02..03-04) ends with 03-04: not on 03-04, from 03-05.
    assert len(fees(interest, inv, date(2026, 3, 4))) == 1
    assert spans(fees(interest, inv, date(2026, 3, 5)))[1] == (
        1, date(2026, 2, 2), date(2026, 3, 4), D("8.72"))


def test_daily_interest_part_payment_reduces_the_base_from_its_date() -> None:
    """EUR 1,000 due 2026-01-01 at 10.27 %, 31-day periods, 400 paid on 2026-01-11.

    period 0: 1,000.00 EUR x 10.27 % x  9 / 365 = 2.5323287 (01-02..01-10)
            +   600.00 EUR x 10.27 % x 22 / 365 = 3.7140822 (01-11..02-01)
            = 6.2464109 -> 6.25
    period 1:   600.00 EUR x 10.27 % x 31 / 365 = 5.2334794 -> 5.23 (02-02..03-04)
    """
    interest = rule(kind="daily_interest", annual_rate_percent="10.27", period_days=31)
    inv = invoice("1000", "EUR", date(2026, 1, 1), (date(2026, 1, 11), "400"))
    charges = fees(interest, inv, date(2026, 3, 5))
    assert amounts(charges) == [D("6.25"), D("5.23")]
    assert "(600.00 EUR at the end) for 31 days (2026-01-02..2026-02-01)" in charges[0].reason


def test_daily_interest_stops_when_paid_and_the_last_partial_period_is_not_charged() -> None:
    """The rest (600) paid on 2026-02-20: period 1 counts 02-02..02-19 only.

    period 1: 600.00 EUR x 10.27 % x 18 / 365 = 3.0387945... -> 3.04; nothing after.
    """
    interest = rule(kind="daily_interest", annual_rate_percent="10.27", period_days=31)
    paid = invoice("1000", "EUR", date(2026, 1, 1), (date(2026, 1, 11), "400"),
                   (date(2026, 2, 20), "600"))
    assert amounts(fees(interest, paid, date(2026, 12, 31))) == [D("6.25"), D("3.04")]
    # Paid in full mid-period: once the books say "paid", the partial period is not charged.
    settled = replace(paid, status="paid")
    assert fees(interest, settled, date(2026, 3, 5)) == []
    # Still open on 03-04, the last day of period 1: only period 0 has ended.
    assert amounts(fees(interest, paid, date(2026, 3, 4))) == [D("6.25")]


def test_daily_interest_accrues_from_the_end_of_the_grace_not_the_due_date() -> None:
    """EUR 36,500 at 10 % is 10.00 EUR a day. Due 2026-01-01, 14 days' grace, 10-day periods:
    S = 01-16, period 0 is 01-16..01-25 = 10 days x 10.00 = 100.00, charged from 01-26."""
    interest = rule(kind="daily_interest", annual_rate_percent="10", period_days=10,
                    grace_days=14, max_charges=2)
    inv = invoice("36500")
    assert fees(interest, inv, date(2026, 1, 25)) == []
    assert spans(fees(interest, inv, date(2026, 3, 1))) == [
        (0, date(2026, 1, 16), date(2026, 1, 25), D("100.00")),
        (1, date(2026, 1, 26), date(2026, 2, 4), D("100.00"))]
    assert fees(interest, inv, date(2026, 3, 1))[0].reason.endswith(
        "for 10 days (2026-01-16..2026-01-25)")


# ----------------------------------------------------------------------------- holds


def test_a_hold_stops_the_rules_clock_and_resumption_charges_no_backlog() -> None:
    """EUR 36,500 due 2026-01-01: 10 % interest is 10.00 EUR a day, 10-day periods; a 1 % fee
    (365.00) every 10 days. Chasing paused 01-16, resumed 02-05: 20 days held.

    interest period 0: 01-02..01-11, charged 01-12 (before the pause): 100.00
    interest period 1: 01-12..01-15 and 02-05..02-10 (10 days counted), charged 02-11: 100.00
    fee periods 0 and 1 on 01-02 and 01-12; period 2, 10 counted days after 01-12, on 02-11
    (not 01-22, inside the pause), period 3 on 02-21 (not 02-01).
    """
    interest = rule(kind="daily_interest", annual_rate_percent="10", period_days=10)
    recurring = rule(kind="recurring_percentage", percent="1", period_days=10)
    held = replace(invoice("36500"), holds=(Hold(date(2026, 1, 16), date(2026, 2, 5)),))
    # Without the hold, the day chasing resumes would carry every period it covered.
    assert len(fees(interest, invoice("36500"), date(2026, 2, 5))) == 3
    assert len(fees(recurring, invoice("36500"), date(2026, 2, 5))) == 4
    # With it: only what accrued before the pause, on the resume day.
    assert spans(fees(interest, held, date(2026, 2, 5))) == [
        (0, date(2026, 1, 2), date(2026, 1, 11), D("100.00"))]
    assert spans(fees(recurring, held, date(2026, 2, 10))) == [
        (0, date(2026, 1, 2), date(2026, 1, 2), D("365.00")),
        (1, date(2026, 1, 12), date(2026, 1, 12), D("365.00"))]
    later = fees(interest, held, date(2026, 2, 11))
    assert spans(later) == [(0, date(2026, 1, 2), date(2026, 1, 11), D("100.00")),
                            (1, date(2026, 1, 12), date(2026, 2, 10), D("100.00"))]
    assert later[1].reason == (
        "Interest 10 % p.a. on the unpaid balance (36,500.00 EUR at the end) for 10 days"
        " (2026-01-12..2026-02-10); 20 days paused or in dispute not counted"
        " (2026-01-16..2026-02-04)")
    assert [(c.period, c.period_start) for c in fees(recurring, held, date(2026, 3, 1))] == [
        (0, date(2026, 1, 2)), (1, date(2026, 1, 12)), (2, date(2026, 2, 11)),
        (3, date(2026, 2, 21))]
    # A hold not ended yet: nothing falls due after its first day.
    holding = replace(invoice("36500"), holds=(Hold(date(2026, 1, 16)),))
    assert [c.period for c in fees(interest, holding, date(2026, 12, 31))] == [0]
    assert [c.period for c in fees(recurring, holding, date(2026, 12, 31))] == [0, 1]


def test_a_hold_inside_the_grace_moves_the_first_charge_by_its_length() -> None:
    """Flat fee after 14 days' grace (due 01-01: on 01-16); a dispute 01-05..01-15 (10 days)
    moves it to 01-26, on the balance left at the end of 01-25."""
    flat = rule(kind="flat", amount="25", grace_days=14)
    held = replace(invoice("1000", "EUR", date(2026, 1, 1), (date(2026, 1, 20), "400")),
                   holds=(Hold(date(2026, 1, 5), date(2026, 1, 15)),))
    assert fees(flat, held, date(2026, 1, 25)) == []
    assert spans(fees(flat, held, date(2026, 1, 26))) == [
        (0, date(2026, 1, 26), date(2026, 1, 26), D("25.00"))]
    paid = replace(held, payments=((date(2026, 1, 20), D("1000")),))
    assert fees(flat, paid, date(2026, 2, 28)) == []  # paid within the moved grace


def test_holds_that_overlap_or_touch_count_once_and_days_before_the_due_date_not_at_all() -> None:
    days = FeeDays(date(2026, 1, 1), (
        Hold(date(2026, 1, 20), date(2026, 1, 25)), Hold(date(2025, 12, 20), date(2026, 1, 4)),
        Hold(date(2026, 1, 10), date(2026, 1, 15)), Hold(date(2026, 1, 12), date(2026, 1, 20)),
        Hold(date(2026, 2, 1), date(2026, 2, 1))))
    # Held: 01-02..01-03 (before the due date not counted), 01-10..01-24 (three holds, one run).
    assert days.holds == ((date(2026, 1, 2), date(2026, 1, 4)),
                          (date(2026, 1, 10), date(2026, 1, 25)))
    assert days.day(date(2026, 1, 2)) == date(2026, 1, 4)
    assert days.day(date(2026, 1, 7)) == date(2026, 1, 9)
    assert days.day(date(2026, 1, 8)) == date(2026, 1, 25)
    assert days.reached(date(2026, 1, 24)) == date(2026, 1, 7)
    assert days.reached(date(2026, 1, 25)) == date(2026, 1, 8)
    assert days.runs(date(2026, 1, 1), date(2026, 1, 31)) == [
        (date(2026, 1, 1), date(2026, 1, 1)), (date(2026, 1, 4), date(2026, 1, 9)),
        (date(2026, 1, 25), date(2026, 1, 31))]


def test_statutory_interest_across_a_hold_is_the_sum_of_the_days_either_side() -> None:
    tables = synthetic_tables("EUR")
    interest = rule(kind="statutory_interest", jurisdiction="ZZ", period_days=30)
    held = replace(invoice("10000", "EUR", date(2026, 6, 1)),
                   holds=(Hold(date(2026, 6, 21), date(2026, 7, 11)),))
    # 30 days counted: 06-02..06-20 (19) and 07-11..07-21 (11); charged from 07-22.
    assert fees(interest, held, date(2026, 7, 21), tables=tables) == []
    [charge] = fees(interest, held, date(2026, 7, 22), tables=tables)
    assert (charge.period_start, charge.period_end) == (date(2026, 6, 2), date(2026, 7, 21))
    events = PrincipalEvents(D("10000"), "EUR")
    before = statutory_interest("ZZ", events, date(2026, 6, 1), date(2026, 6, 20),
                                tables=tables)
    after = statutory_interest("ZZ", events, date(2026, 7, 10), date(2026, 7, 21),
                               tables=tables)
    assert charge.amount == round_money(before.exact_total + after.exact_total, "EUR")
    assert charge.reason.startswith(before.reason)
    assert charge.reason.endswith("; 20 days paused or in dispute not counted"
                                  " (2026-06-21..2026-07-10)")


# ----------------------------------------------------------------------------- statutory


def test_statutory_interest_gb_is_base_rate_plus_8_for_businesses_only() -> None:
    """GBP 10,000 due 2024-01-31, 30-day periods: 02-01..03-01 (Feb 2024 has 29 days).

    10,000.00 GBP x (5.25 + 8) % x 30 / 365 = 1,325 x 30 / 365 = 108.9041095... -> 108.90
    """
    statutory = rule(kind="statutory_interest", jurisdiction="GB", period_days=30)
    inv = invoice("10000", "GBP", date(2024, 1, 31))
    charges = fees(statutory, inv, date(2024, 4, 1))
    assert spans(charges) == [(0, date(2024, 2, 1), date(2024, 3, 1), D("108.90")),
                              (1, date(2024, 3, 2), date(2024, 3, 31), D("108.90"))]
    assert charges[0].kind == "interest"
    assert charges[0].reason == (
        "Interest 13.25 % p.a. (GB B2B: BoE base rate 5.25 % + 8) on 10,000.00 GBP for 30 days"
        " (2024-02-01..2024-03-01) = 108.90 GBP")
    # The Act is for business debts: a consumer gets nothing, without an error.
    assert fees(statutory, replace(inv, is_business=False), date(2024, 4, 1)) == []


def test_statutory_interest_gb_refuses_an_uncovered_or_unverified_half_year() -> None:
    uncovered = rule(kind="statutory_interest", jurisdiction="GB", period_days=30)
    with pytest.raises(RateNotCovered, match=re.escape("add a row for 2023-07-01..2023-12-31")):
        fees(uncovered, invoice("1000", "GBP", date(2023, 12, 15)), date(2024, 2, 1))
    inv = invoice("10000", "GBP", date(2026, 9, 30))
    with pytest.raises(RateUnverified):
        fees(uncovered, inv, date(2026, 11, 1))
    allowed = rule(kind="statutory_interest", jurisdiction="GB", period_days=31,
                   allow_unverified=True)
    # 10,000 x 11.75 % x 31 / 365 = 99.7945205... -> 99.79 (10-01..10-31)
    assert amounts(fees(allowed, inv, date(2026, 11, 1))) == [D("99.79")]


def test_statutory_interest_de_business_is_base_plus_9_and_consumer_base_plus_5() -> None:
    """EUR 1,000 due 2026-01-01, 31-day periods: 01-02..02-01.

    B2B      1,000.00 EUR x (1.27 + 9) % x 31 / 365 = 8.7224657... -> 8.72
    consumer 1,000.00 EUR x (1.27 + 5) % x 31 / 365 = 5.3252054... -> 5.33
    """
    statutory = rule(kind="statutory_interest", jurisdiction="DE", period_days=31)
    business = fees(statutory, invoice("1000"), date(2026, 2, 2))
    consumer = fees(statutory, invoice("1000", business=False), date(2026, 2, 2))
    assert amounts(business) == [D("8.72")]
    assert amounts(consumer) == [D("5.33")]
    assert business[0].reason.startswith("Interest 10.27 % p.a. (DE B2B: base 1.27 % + 9)")
    assert consumer[0].reason == ("Interest 6.27 % p.a. (DE consumer: base 1.27 % + 5) on"
                                  " 1,000.00 EUR for 31 days (2026-01-02..2026-02-01) = 5.33 EUR")
    only_business = rule(kind="statutory_interest", jurisdiction="DE", period_days=31,
                         business_contacts_only=True)
    assert fees(only_business, invoice("1000", business=False), date(2026, 2, 2)) == []
    # The table ends with 2026-06-30: a period running past it refuses rather than guess.
    with pytest.raises(RateNotCovered, match=re.escape("rules/rates/de.json")):
        fees(statutory, invoice("1000", "EUR", date(2026, 6, 1)), date(2026, 7, 3))


def test_statutory_interest_pl_across_a_rate_boundary_and_no_consumers() -> None:
    """PLN 20,000 due 2024-05-15, one 92-day period 05-16..08-15, 15.75 % in both halves:
    20,000 x 15.75 % x (46 + 46) / 365 = 793.9726027... -> 793.97 (rounded once)."""
    statutory = rule(kind="statutory_interest", jurisdiction="PL", period_days=92)
    inv = invoice("20000", "PLN", date(2024, 5, 15))
    assert fees(statutory, inv, date(2024, 8, 15)) == []
    [charge] = fees(statutory, inv, date(2024, 8, 16))
    assert (charge.amount, charge.period_end) == (D("793.97"), date(2024, 8, 15))
    assert charge.reason.count("15.75 % p.a. (PL B2B: NBP reference rate 5.75 % + 10)") == 2
    assert fees(statutory, replace(inv, is_business=False), date(2024, 8, 16)) == []


def test_statutory_interest_no_same_rate_for_consumers() -> None:
    """NOK 100,000 due 2025-01-31, 30-day periods: 02-01..03-02.

    100,000.00 NOK x 12.50 % x 30 / 365 = 1,027.3972602... -> 1,027.40
    """
    statutory = rule(kind="statutory_interest", jurisdiction="NO", period_days=30)
    inv = invoice("100000", "NOK", date(2025, 1, 31))
    assert amounts(fees(statutory, inv, date(2025, 3, 3))) == [D("1027.40")]
    assert amounts(fees(statutory, replace(inv, is_business=False), date(2025, 3, 3))) == [
        D("1027.40")]
    assert fees(statutory, inv, date(2025, 3, 3))[0].reason.endswith("= 1,027.40 NOK")


def test_statutory_interest_eu_generic() -> None:
    """EUR 5,000 due 2026-02-28: 5,000 x 10.15 % x 30 / 365 = 41.7123287... -> 41.71."""
    statutory = rule(kind="statutory_interest", jurisdiction="EU", period_days=30)
    inv = invoice("5000", "EUR", date(2026, 2, 28))
    [charge] = fees(statutory, inv, date(2026, 3, 31))
    assert (charge.amount, charge.period_start, charge.period_end) == (
        D("41.71"), date(2026, 3, 1), date(2026, 3, 30))
    assert "(EU B2B: ECB MRO 2.15 % + 8)" in charge.reason
    assert fees(statutory, replace(inv, is_business=False), date(2026, 3, 31)) == []


# ----------------------------------------------------------------------------- compensation


@pytest.mark.parametrize(("principal", "expected"), [
    ("999.99", "40.00"), ("1000.00", "70.00"), ("9999.99", "70.00"), ("10000.00", "100.00"),
])
def test_statutory_compensation_gb_by_debt_size(principal: str, expected: str) -> None:
    compensation = rule(kind="statutory_compensation", jurisdiction="GB", grace_days=3)
    inv = invoice(principal, "GBP", date(2026, 3, 1))
    assert fees(compensation, inv, date(2026, 3, 4)) == []
    [charge] = fees(compensation, inv, date(2026, 3, 5))
    assert (charge.kind, charge.amount, charge.currency, charge.key) == (
        "compensation", D(expected), "GBP", "7:42:fee:late:0")
    assert fees(compensation, inv, date(2026, 12, 1), ledger([charge])) == []
    assert fees(compensation, replace(inv, is_business=False), date(2026, 3, 5)) == []


def test_statutory_compensation_gb_reason() -> None:
    compensation = rule(kind="statutory_compensation", jurisdiction="GB")
    [charge] = fees(compensation, invoice("1000", "GBP"), date(2026, 1, 2))
    assert charge.reason == ("GB statutory compensation 70.00 GBP (debt of at least 1,000.00"
                             " GBP and below 10,000.00 GBP; debt 1,000.00 GBP)")


def test_statutory_compensation_de_and_eu_are_40_euros_for_businesses() -> None:
    for jurisdiction in ("DE", "EU"):
        compensation = rule(kind="statutory_compensation", jurisdiction=jurisdiction)
        assert amounts(fees(compensation, invoice("12.50"), date(2026, 1, 2))) == [D("40.00")]
        assert fees(compensation, invoice("12.50", business=False), date(2026, 1, 2)) == []
    [charge] = fees(rule(kind="statutory_compensation", jurisdiction="DE"), invoice("12.50"),
                    date(2026, 1, 2))
    assert charge.reason == "DE statutory compensation 40.00 EUR (any debt; debt 12.50 EUR)"


@pytest.mark.parametrize(("principal", "expected"), [
    ("5000.00", "170.77"),  # EUR 40 x 4.2692 = 170.768
    ("5000.01", "298.84"),  # EUR 70 x 4.2692 = 298.844
    ("50000.00", "426.92"),  # EUR 100 x 4.2692
])
def test_statutory_compensation_pl_in_pln_at_the_callers_rate(principal: str,
                                                             expected: str) -> None:
    """Bands in PLN, amounts in EUR: a PLN invoice is charged the EUR sum at fx EUR/PLN."""
    compensation = rule(kind="statutory_compensation", jurisdiction="PL")
    inv = invoice(principal, "PLN", date(2024, 3, 31))
    [charge] = fees(compensation, inv, date(2024, 4, 1), fx=PLN)
    assert (charge.amount, charge.currency) == (D(expected), "PLN")
    assert charge.reason.endswith(f" = {charge.amount:,} PLN at EUR/PLN 4.2692")
    with pytest.raises(FxRateRequired, match=re.escape("pass fx={('EUR', 'PLN'): rate}")):
        fees(compensation, inv, date(2024, 4, 1))


def test_statutory_compensation_pl_for_a_euro_invoice_is_banded_in_pln() -> None:
    """EUR 1,171.17 x 4.2692 = PLN 4,999.96: EUR 40; EUR 1,171.18 = PLN 5,000.0017: EUR 70."""
    compensation = rule(kind="statutory_compensation", jurisdiction="PL")
    low = fees(compensation, invoice("1171.17", "EUR", date(2024, 3, 31)), date(2024, 4, 1),
               fx=PLN)
    high = fees(compensation, invoice("1171.18", "EUR", date(2024, 3, 31)), date(2024, 4, 1),
                fx=PLN)
    assert amounts(low) + amounts(high) == [D("40.00"), D("70.00")]
    assert fees(compensation, invoice("1171.18", "EUR", date(2024, 3, 31), business=False),
                date(2024, 4, 1), fx=PLN) == []


def test_a_jurisdiction_without_a_table_is_refused_naming_the_known_ones() -> None:
    for data in ({"kind": "statutory_interest", "jurisdiction": "US"},
                 {"kind": "statutory_compensation", "jurisdiction": "US"},
                 {"kind": "reminder_fee", "legal_cap": "US", "currency": "USD"}):
        with pytest.raises(NotApplicable, match=re.escape("'US' (known: DE, EU, GB, NO, PL)")):
            fees(fee_rule_from_json(data), invoice("1000", "USD"), date(2026, 6, 1))


def test_statutory_compensation_not_when_paid_before_the_grace_ends() -> None:
    compensation = rule(kind="statutory_compensation", jurisdiction="DE", grace_days=5)
    paid = invoice("500", "EUR", date(2026, 1, 1), (date(2026, 1, 6), "500"))
    assert fees(compensation, paid, date(2026, 2, 1)) == []


# ----------------------------------------------------------------------------- reminder fee


def test_norwegian_reminder_fees_two_fees_14_days_apart_at_the_dated_maximum() -> None:
    """NOK 1,000 due 2024-03-01: the first fee no earlier than 14 days after it (03-16), the
    second 14 days later (03-30), none after; each at most NOK 35 (no.json, 2024)."""
    [preset] = norwegian_reminder_fees()
    assert (preset.grace_days, preset.period_days, preset.max_charges, preset.currency,
            preset.legal_cap, preset.amount) == (14, 14, 2, "NOK", "NO", None)
    inv = invoice("1000", "NOK", date(2024, 3, 1))
    assert fees(preset, inv, date(2024, 3, 15)) == []
    assert spans(fees(preset, inv, date(2024, 3, 29))) == [
        (0, date(2024, 3, 16), date(2024, 3, 16), D("35.00"))]
    charges = fees(preset, inv, date(2024, 12, 31))
    assert spans(charges) == [(0, date(2024, 3, 16), date(2024, 3, 16), D("35.00")),
                              (1, date(2024, 3, 30), date(2024, 3, 30), D("35.00"))]
    assert charges[0].reason == (
        "Reminder fee 35.00 NOK (fee-bearing reminder 1 of 2, the NO legal maximum on"
        " 2024-03-16): unpaid 14 days after the due date 2024-03-01")
    assert fees(preset, inv, date(2024, 12, 31), ledger(charges)) == []
    # Paid before the second: only the first.
    paid = invoice("1000", "NOK", date(2024, 3, 1), (date(2024, 3, 29), "1000"))
    assert amounts(fees(preset, paid, date(2024, 12, 31))) == [D("35.00")]


def test_norwegian_reminder_fee_amount_below_and_above_the_cap() -> None:
    inv = invoice("1000", "NOK", date(2024, 3, 1))
    [lower] = norwegian_reminder_fees(D("20"))
    [higher] = norwegian_reminder_fees(D("50"))
    assert amounts(fees(lower, inv, date(2024, 4, 1))) == [D("20.00"), D("20.00")]
    assert fees(lower, inv, date(2024, 4, 1))[0].reason == (
        "Reminder fee 20.00 NOK (fee-bearing reminder 1 of 2): unpaid 14 days after the due"
        " date 2024-03-01")
    assert amounts(fees(higher, inv, date(2024, 4, 1))) == [D("35.00"), D("35.00")]
    # In NOK only: an invoice in another currency is left alone.
    assert fees(lower, invoice("1000", "EUR", date(2024, 3, 1)), date(2024, 4, 1)) == []


def test_a_minimum_never_lifts_a_reminder_fee_above_the_legal_maximum() -> None:
    """NOK 35 is the 2024 purregebyr maximum: a minimum of 50 must not make it 50."""
    inv = invoice("1000", "NOK", date(2024, 3, 1))
    at_cap = rule(kind="reminder_fee", legal_cap="NO", currency="NOK", minimum="50",
                  grace_days=14, period_days=14, max_charges=2)
    assert amounts(fees(at_cap, inv, date(2024, 4, 1))) == [D("35.00"), D("35.00")]
    low = rule(kind="reminder_fee", amount="20", legal_cap="NO", currency="NOK", minimum="50",
               grace_days=14, period_days=14, max_charges=1)
    [charge] = fees(low, inv, date(2024, 4, 1))
    assert charge.amount == D("35.00")
    assert charge.reason.endswith("; raised from 20.00 NOK to the legal maximum (below the"
                                  " minimum)")
    within = rule(kind="reminder_fee", amount="20", legal_cap="NO", currency="NOK",
                  minimum="30", grace_days=14, period_days=14, max_charges=1)
    [charge] = fees(within, inv, date(2024, 4, 1))
    assert charge.amount == D("30.00")
    assert charge.reason.endswith("; raised from 20.00 NOK to the minimum")


def test_norwegian_reminder_fee_refuses_a_day_without_a_dated_maximum() -> None:
    """no.json holds the 2024 maximum only: a fee falling due in 2025 refuses."""
    [preset] = norwegian_reminder_fees()
    inv = invoice("1000", "NOK", date(2024, 12, 10))
    first = fees(preset, inv, date(2024, 12, 31))
    assert spans(first) == [(0, date(2024, 12, 25), date(2024, 12, 25), D("35.00"))]
    with pytest.raises(RateNotCovered, match=re.escape("2025-01-01..2025-12-31 to"
                                                       " rules/rates/no.json")):
        fees(preset, inv, date(2025, 1, 8), ledger(first))


# ----------------------------------------------------------------------------- limits


def test_minimum_raises_a_small_charge_but_not_nothing() -> None:
    """EUR 300 x 1 % = 3.00, raised to the minimum 10.00; a paid invoice is not raised."""
    pct = rule(kind="percentage", percent="1", minimum="10")
    [charge] = fees(pct, invoice("300"), date(2026, 1, 2))
    assert charge.amount == D("10.00")
    assert charge.reason.endswith("; raised from 3.00 EUR to the minimum")
    paid = invoice("300", "EUR", date(2026, 1, 1), (date(2026, 1, 1), "300"))
    assert fees(pct, paid, date(2026, 1, 2)) == []


def test_maximum_lowers_a_large_charge() -> None:
    """EUR 100,000 x 1 % = 1,000.00, lowered to the maximum 50.00."""
    pct = rule(kind="percentage", percent="1", maximum="50")
    [charge] = fees(pct, invoice("100000"), date(2026, 1, 2))
    assert charge.amount == D("50.00")
    assert charge.reason.endswith("; lowered from 1,000.00 EUR to the maximum")


def test_a_maximum_finer_than_the_currency_is_never_exceeded() -> None:
    """Rounding a limit must not push it up: a maximum of 10.005 EUR allows 10.00, not 10.01;
    99.5 JPY allows 99; a maximum of 0 charges nothing (no 0.00 line on an invoice)."""
    flat = rule(kind="flat", amount="20", maximum="10.005")
    assert amounts(fees(flat, invoice("1000"), date(2026, 1, 2))) == [D("10.00")]
    yen = rule(kind="flat", amount="500", maximum="99.5")
    assert amounts(fees(yen, invoice("100000", "JPY"), date(2026, 1, 2))) == [D("99")]
    assert fees(rule(kind="flat", amount="20", maximum="0"), invoice("1000"),
                date(2026, 1, 2)) == []


def test_cap_percent_of_principal_across_every_charge_of_the_rule() -> None:
    """EUR 1,000, 5 % every 30 days, capped at 12 % (120.00): 50.00, 50.00, then 20.00, then
    nothing more, however long it stays unpaid."""
    capped = rule(kind="recurring_percentage", percent="5", period_days=30,
                  cap_percent_of_principal="12")
    inv = invoice("1000")
    charges = fees(capped, inv, date(2027, 1, 1))
    assert spans(charges) == [(0, date(2026, 1, 2), date(2026, 1, 2), D("50.00")),
                              (1, date(2026, 2, 1), date(2026, 2, 1), D("50.00")),
                              (2, date(2026, 3, 3), date(2026, 3, 3), D("20.00"))]
    assert charges[2].reason == (
        "Late fee 5 % of the overdue balance 1,000.00 EUR, period 3: unpaid after the due date"
        " 2026-01-01; lowered from 50.00 EUR to stay within 12 % of the principal (120.00 EUR"
        " in all)")
    assert fees(capped, inv, date(2027, 1, 1), ledger(charges)) == []
    # The ledger's own figures count, whatever they were.
    assert amounts(fees(capped, inv, date(2026, 2, 1),
                        [ChargedFee("7:42:fee:late:0", D("100.00"))])) == [D("20.00")]
    assert fees(capped, inv, date(2026, 6, 1),
                [ChargedFee("7:42:fee:late:0", D("120.00"))]) == []


def test_the_cap_is_rounded_down() -> None:
    """JPY 999 x 10 % = 99.9 -> a cap of 99 JPY, never 100."""
    capped = rule(kind="flat", amount="500", cap_percent_of_principal="10")
    [charge] = fees(capped, invoice("999", "JPY"), date(2026, 1, 2))
    assert charge.amount == D("99")
    assert charge.reason.endswith("to stay within 10 % of the principal (99 JPY in all)")


def test_business_contacts_only() -> None:
    flat = rule(kind="flat", amount="25", business_contacts_only=True)
    assert fees(flat, invoice("1000", business=False), date(2026, 1, 2)) == []
    assert amounts(fees(flat, invoice("1000"), date(2026, 1, 2))) == [D("25.00")]
    # Without the flag a consumer is charged a contractual fee like anybody else.
    assert amounts(fees(rule(kind="flat", amount="25"), invoice("1000", business=False),
                        date(2026, 1, 2))) == [D("25.00")]


def test_a_rule_in_one_currency_leaves_other_currencies_alone() -> None:
    flat = rule(kind="flat", amount="25", currency="GBP")
    assert fees(flat, invoice("1000", "EUR"), date(2026, 1, 2)) == []
    assert amounts(fees(flat, invoice("1000", "GBP"), date(2026, 1, 2))) == [D("25.00")]


@pytest.mark.parametrize("rule_id", ["", "late fee", "late:fee", "a" * 65, "caf\u00e9",
                                     "late\n"])
def test_a_bad_rule_id_is_refused(rule_id: str) -> None:
    with pytest.raises(ValueError, match="must be 1 to 64 of"):
        fees(rule(kind="flat", amount="25"), invoice("1000"), date(2026, 1, 2), rule_id=rule_id)


def test_a_good_rule_id_is_in_the_key() -> None:
    for rule_id in ("late-fee_1.v2", "a" * 64):
        [charge] = fees(rule(kind="flat", amount="25"), invoice("1000"), date(2026, 1, 2),
                        rule_id=rule_id)
        assert (charge.key, charge.rule_id) == (f"7:42:fee:{rule_id}:0", rule_id)


# ----------------------------------------------------------------------------- keys


def test_fee_key_format() -> None:
    assert fee_key(7, 42, "late-fee.v2", 3) == "7:42:fee:late-fee.v2:3"
    assert fee_key(1, 2, "x", 0) == "1:2:fee:x:0"


def test_a_charged_period_is_never_offered_again() -> None:
    interest = rule(kind="daily_interest", annual_rate_percent="10", period_days=10)
    inv = invoice("36500")
    as_of = date(2026, 2, 11)  # periods 0..3 have ended
    assert [c.period for c in fees(interest, inv, as_of)] == [0, 1, 2, 3]
    charged = [ChargedFee("7:42:fee:late:0", D("100.00")), ChargedFee("7:42:fee:late:2", D("1"))]
    assert [c.key for c in fees(interest, inv, as_of, charged)] == ["7:42:fee:late:1",
                                                                    "7:42:fee:late:3"]
    # Other invoices' and other rules' keys are not this rule's.
    others = [ChargedFee("7:43:fee:late:0", D("1")), ChargedFee("7:42:fee:late2:0", D("1")),
              ChargedFee("8:42:fee:late:0", D("1")), ChargedFee("7:42:fee:lat:1", D("1"))]
    assert [c.period for c in fees(interest, inv, as_of, others)] == [0, 1, 2, 3]


def test_due_fees_on_consecutive_days_never_offers_a_key_twice() -> None:
    inv = invoice("5000", "EUR", date(2026, 1, 1), (date(2026, 1, 20), "1000"),
                  (date(2026, 3, 1), "1500"))
    for fee_rule in (rule(kind="flat", amount="25", grace_days=5),
                     rule(kind="percentage", percent="2"),
                     rule(kind="recurring_percentage", percent="1", period_days=7),
                     rule(kind="daily_interest", annual_rate_percent="9.5", period_days=5),
                     rule(kind="statutory_interest", jurisdiction="DE", period_days=3),
                     rule(kind="statutory_compensation", jurisdiction="DE")):
        charged: list[ChargedFee] = []
        offered: list[tuple[date, int]] = []
        day = date(2025, 12, 25)
        while day <= date(2026, 6, 30):
            for charge in fees(fee_rule, inv, day, charged):
                assert charge.key not in {c.key for c in charged}
                charged.append(ChargedFee(charge.key, charge.amount))
                offered.append((day, charge.period))
            day += DAY
        # Each period is offered on the very day it becomes chargeable, in order.
        assert [period for _, period in offered] == list(range(len(offered)))
        assert offered
        first = offered[0][0]
        if isinstance(fee_rule, DailyInterestRule | StatutoryInterestRule):
            length = fee_rule.period_days
            assert [d for d, _ in offered] == [first + k * length * DAY
                                               for k in range(len(offered))]


def test_a_periods_figure_does_not_change_after_it_becomes_chargeable() -> None:
    """Every later day gives the same figure for it, and so do payments dated that day or later
    (a payment dated today may still arrive: the figure must not depend on it)."""
    base = invoice("5000", "EUR", date(2026, 1, 1), (date(2026, 1, 20), "1000"))
    for fee_rule in (rule(kind="percentage", percent="2", grace_days=3),
                     rule(kind="recurring_percentage", percent="1", period_days=7),
                     rule(kind="daily_interest", annual_rate_percent="9.5", period_days=5),
                     rule(kind="statutory_interest", jurisdiction="DE", period_days=9),
                     rule(kind="daily_interest", annual_rate_percent="9.5", period_days=7,
                          cap_percent_of_principal="0.5", minimum="3")):
        first_seen: dict[str, FeeCharge] = {}
        day = date(2026, 1, 1)
        while day <= date(2026, 4, 30):
            for charge in fees(fee_rule, base, day):
                seen = first_seen.setdefault(charge.key, charge)
                assert (charge.amount, charge.reason) == (seen.amount, seen.reason)
                if seen is charge:  # first chargeable today: later payments change nothing
                    later = replace(base, payments=(*base.payments, (day, D("2000")),
                                                    (day + 3 * DAY, D("2000"))))
                    again = {c.key: c for c in fees(fee_rule, later, day + 40 * DAY)}
                    assert (again[charge.key].amount, again[charge.key].reason) == (
                        charge.amount, charge.reason)
            day += DAY
        assert first_seen


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(("data", "message"), [
    ({"kind": "flat", "amount": 12.5},
     "flat.amount: give amounts and rates as strings ('12.50') or integers, not floats"),
    ({"kind": "daily_interest", "annual_rate_percent": 8.0},
     "daily_interest.annual_rate_percent: give amounts and rates as strings"),
    ({"kind": "flat", "amount": "5", "maximum": 2.5}, "flat.maximum: give amounts"),
    ({"kind": "flat", "amount": "-5"}, "flat.amount: Input should be greater than"),
    ({"kind": "percentage", "percent": "5", "minimum": "-1"},
     "percentage.minimum: Input should be greater than or equal to 0"),
    ({"kind": "percentage", "percent": "-1"}, "percentage.percent: Input should be greater"),
    ({"kind": "flat", "amount": "5", "minimum": "10", "maximum": "5"},
     "flat: minimum 10 is above maximum 5"),
    ({"kind": "late"}, "rule: Input tag 'late' found using 'kind' does not match"),
    ({"amount": "5"}, "rule: Unable to extract tag using discriminator 'kind'"),
    ({"kind": "flat", "amount": "5", "colour": "red"},
     "flat.colour: Extra inputs are not permitted"),
    ({"kind": "flat", "amount": "5", "grace_days": True},
     "flat.grace_days: Input should be a valid integer"),
    ({"kind": "flat", "amount": "NaN"}, "flat.amount: Input should be a finite number"),
    ({"kind": "flat", "amount": "1.23456"},
     "flat.amount: Decimal input should have no more than 4 decimal places"),
    ({"kind": "recurring_percentage", "percent": "5", "period_days": 0},
     "recurring_percentage.period_days: Input should be greater than or equal to 1"),
    ({"kind": "reminder_fee"}, "reminder_fee: give an amount, a legal_cap, or both"),
    ({"kind": "reminder_fee", "legal_cap": "NO"},
     "reminder_fee: a legal_cap is in one currency: set currency to it"),
])
def test_fee_rule_from_json_refuses_naming_the_field(data: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyError) as error:
        fee_rule_from_json(data)
    assert str(error.value).startswith(message)


def test_fee_rule_from_json_reads_exact_decimals() -> None:
    read = fee_rule_from_json({"kind": "daily_interest", "annual_rate_percent": "8.125",
                               "minimum": 5, "maximum": "12.50"})
    assert isinstance(read, DailyInterestRule)
    assert (read.annual_rate_percent, read.minimum, read.maximum, read.period_days) == (
        D("8.125"), D("5"), D("12.50"), 30)


# ----------------------------------------------------------------------------- properties

CURRENCIES = ("EUR", "JPY", "GBP", "KWD")
INTEREST_KINDS = ("daily_interest", "statutory_interest")
FIRST_DUE, LAST_DUE = date(2020, 1, 1), date(2029, 6, 30)
HORIZON = 400
FEW = settings(max_examples=200, deadline=None, database=None,
               suppress_health_check=[HealthCheck.too_slow])


@cache
def synthetic_tables(currency: str) -> Mapping[str, RateTable]:
    """A made-up jurisdiction "ZZ" covering 2019-2032 in `currency`, its rate moving every
    half-year, so statutory kinds run over any date the properties pick."""
    periods = []
    for year in range(2019, 2033):
        for half, (start, end) in enumerate(((date(year, 1, 1), date(year, 6, 30)),
                                             (date(year, 7, 1), date(year, 12, 31)))):
            periods.append(RatePeriod(start, end, D(year % 7) + D(half) / 4, D("8"), D("5"),
                                      "test figure", False))
    compensation = CompensationTable(
        currency=currency, threshold_currency=currency, b2b_only=False, b2b_only_reason="",
        periods=(CompensationPeriod(None, None, (CompensationBand(D("40"), below=D("1000")),
                                                 CompensationBand(D("70.125"))),
                                    "test figure", False),))
    caps = tuple(DatedAmount(date(year, 1, 1), date(year, 12, 31), D(30 + year % 5), "test",
                             False) for year in range(2019, 2033))
    table = RateTable(jurisdiction="ZZ", title="test", currency=currency,
                      reference_rate_name="test rate", day_count="actual/365", b2b_only=False,
                      b2b_only_reason="", periods=tuple(periods), compensation=compensation,
                      reminder_fee_caps=caps, origin="test/zz.json")
    return MappingProxyType({"ZZ": table})


def scaled(low: int, high: int, places: int) -> st.SearchStrategy[Decimal]:
    return st.integers(low, high).map(lambda n: D(n).scaleb(-places))


# Built once: hypothesis spends more time building strategies than running due_fees.
KINDS = st.sampled_from(("flat", "percentage", "recurring_percentage", "daily_interest",
                         "statutory_interest", "statutory_compensation", "reminder_fee"))
PRINCIPALS = {currency: scaled(1, 10**9, minor_unit_digits(currency))
              for currency in CURRENCIES}
PAYMENTS = st.lists(st.tuples(st.integers(-20, HORIZON + 20), st.integers(1, 1000)),
                    max_size=4)  # (day offset from the due date, thousandths of the principal)
PERCENTS = scaled(1, 30_000, 3).map(str)
AMOUNTS = scaled(1, 10**7, 4).map(str)
# Small limits with four decimals too: finer than the currency, and below the charges.
LIMITS = st.lists(scaled(0, 10**6, 4) | scaled(0, 2000, 4), min_size=2, max_size=2).map(sorted)
CAPS = scaled(1, 100_000_000, 6).map(str)
OFFSETS = st.lists(st.integers(-5, HORIZON - 1), max_size=20, unique=True).map(sorted)
# Pauses and disputes: (first day's offset from the due date, days held; None: not ended).
HOLDS = st.lists(st.tuples(st.integers(-15, HORIZON), st.integers(0, 60) | st.none()),
                 max_size=3)


@st.composite
def fee_cases(draw: st.DrawFn, kinds: Sequence[str] | None = None, limits: bool = True
              ) -> tuple[LateFeeRule, FeeInvoice, list[int]]:
    """A rule, an invoice it may apply to (payments dated anywhere in the horizon), and the
    day offsets from the due date on which due_fees runs (always ending with HORIZON)."""
    currency = draw(st.sampled_from(CURRENCIES))
    principal = draw(PRINCIPALS[currency])
    due = FIRST_DUE + draw(st.integers(0, (LAST_DUE - FIRST_DUE).days)) * DAY
    payments = tuple(
        (due + offset * DAY, max(floor_money(principal * share / 1000, currency),
                                 D(1).scaleb(-minor_unit_digits(currency))))
        for offset, share in draw(PAYMENTS))
    holds = tuple(Hold(due + first * DAY, None if length is None else due + (first + length) * DAY)
                  for first, length in draw(HOLDS)) if draw(st.booleans()) else ()
    inv = FeeInvoice(org_id=draw(st.integers(1, 99)), invoice_id=draw(st.integers(1, 9999)),
                     currency=currency, principal=principal, due_date=due, payments=payments,
                     is_business=draw(st.booleans()), holds=holds)
    kind = draw(st.sampled_from(kinds) if kinds else KINDS)
    data: dict[str, Any] = {"kind": kind, "grace_days": draw(st.integers(0, 60))}
    if kind in ("flat", "reminder_fee"):
        data["amount"] = draw(AMOUNTS)
    if kind in ("percentage", "recurring_percentage"):
        data["percent"] = draw(PERCENTS)
    if kind == "daily_interest":
        data["annual_rate_percent"] = draw(PERCENTS)
    if kind in ("statutory_interest", "statutory_compensation"):
        data["jurisdiction"] = "ZZ"
    if kind in ("recurring_percentage", "reminder_fee", *INTEREST_KINDS):
        data["period_days"] = draw(st.integers(1, 45))
        data["max_charges"] = draw(st.none() | st.integers(1, 20))
    if kind == "reminder_fee" and draw(st.booleans()):
        data["legal_cap"] = "ZZ"
        data["currency"] = currency
        if draw(st.booleans()):
            del data["amount"]
    elif draw(st.integers(0, 9)) == 0:
        data["currency"] = draw(st.sampled_from(CURRENCIES))
    if limits:
        low, high = draw(LIMITS)
        if draw(st.booleans()):
            data["minimum"] = str(low)
        if draw(st.booleans()):
            data["maximum"] = str(high)
        if draw(st.booleans()):
            data["cap_percent_of_principal"] = draw(CAPS)
    data["business_contacts_only"] = draw(st.booleans())
    return fee_rule_from_json(data), inv, [*draw(OFFSETS), HORIZON]


def known_on(inv: FeeInvoice, day: date) -> FeeInvoice:
    """The invoice as the books show it on `day`: payments dated later have not happened, a
    hold begun later is not known, and one holding on `day` has not ended yet."""
    return replace(inv, payments=tuple(p for p in inv.payments if p[0] <= day),
                   holds=tuple(Hold(h.start, h.end if h.end is not None and h.end <= day
                                    else None) for h in inv.holds if h.start <= day))


def held(inv: FeeInvoice, day: date) -> bool:
    """Whether no fee may accrue on `day`: after the due date, inside a pause or dispute."""
    return day > inv.due_date and any(h.start <= day and (h.end is None or day < h.end)
                                      for h in inv.holds)


@lru_cache(maxsize=64)
def schedule(inv: FeeInvoice) -> tuple[date, ...]:
    """The oracle's schedule: the days after the due date outside every hold, in order, up
    to well past the last day the properties run on."""
    days = (inv.due_date + n * DAY for n in range(1, HORIZON + 200))
    return tuple(day for day in days if not held(inv, day))


def counted_days(inv: FeeInvoice, after: int, count: int) -> list[date]:
    """From the (after + 1)-th day of the schedule, `count` days (fewer: beyond the list)."""
    return list(schedule(inv)[after:after + count])


def simulate(fee_rule: LateFeeRule, inv: FeeInvoice, offsets: Sequence[int]
             ) -> list[tuple[date, FeeCharge]]:
    """Run the rule on each day, writing what it offers to the ledger, as the jobs do."""
    tables = synthetic_tables(inv.currency)
    charged: list[ChargedFee] = []
    offered: list[tuple[date, FeeCharge]] = []
    for offset in offsets:
        day = inv.due_date + offset * DAY
        for charge in due_fees(fee_rule, known_on(inv, day), charged, day, rule_id="r.1",
                               tables=tables):
            offered.append((day, charge))
            charged.append(ChargedFee(charge.key, charge.amount))
    return offered


@FEW
@given(fee_cases())
def test_property_no_key_is_ever_offered_twice(
        case: tuple[LateFeeRule, FeeInvoice, list[int]]) -> None:
    fee_rule, inv, offsets = case
    offered = simulate(fee_rule, inv, offsets)
    keys = [charge.key for _, charge in offered]
    assert len(keys) == len(set(keys))
    for day, charge in offered:
        assert charge.key == fee_key(inv.org_id, inv.invoice_id, "r.1", charge.period)
        assert charge.amount > 0
        # Never before it is chargeable: a fee on its day, interest once its period ended.
        chargeable = (charge.period_end + DAY if charge.kind == "interest"
                      else charge.period_start)
        assert chargeable <= day
        assert charge.period_start > inv.due_date + fee_rule.grace_days * DAY
    max_charges = getattr(fee_rule, "max_charges", None)
    if max_charges is not None:
        assert len(offered) <= max_charges


@FEW
@given(fee_cases(), st.sampled_from(("paid", "voided", "draft", "deleted")))
def test_property_a_paid_voided_or_draft_invoice_gets_nothing(
        case: tuple[LateFeeRule, FeeInvoice, list[int]], status: InvoiceStatus) -> None:
    fee_rule, inv, offsets = case
    closed = replace(inv, status=status)
    assert simulate(fee_rule, closed, offsets) == []


@FEW
@given(fee_cases())
def test_property_cap_and_maximum_are_never_exceeded(
        case: tuple[LateFeeRule, FeeInvoice, list[int]]) -> None:
    fee_rule, inv, offsets = case
    offered = [charge for _, charge in simulate(fee_rule, inv, offsets)]
    total = sum((charge.amount for charge in offered), D(0))
    if fee_rule.cap_percent_of_principal is not None:
        assert total <= inv.principal * fee_rule.cap_percent_of_principal / 100
        assert total <= floor_money(inv.principal * fee_rule.cap_percent_of_principal / 100,
                                    inv.currency)
    for charge in offered:
        if fee_rule.maximum is not None:
            assert charge.amount <= fee_rule.maximum
        if isinstance(fee_rule, ReminderFeeRule) and fee_rule.legal_cap is not None:
            assert charge.amount <= reminder_fee_cap("ZZ", charge.period_start,
                                                     tables=synthetic_tables(inv.currency))[0]
        if fee_rule.minimum is not None and "lowered" not in charge.reason:
            floor = round_money(fee_rule.minimum, inv.currency)
            if isinstance(fee_rule, ReminderFeeRule) and fee_rule.legal_cap is not None:
                # A minimum never lifts a fee above what the law allows (its reason says so).
                floor = min(floor, floor_money(reminder_fee_cap(
                    "ZZ", charge.period_start, tables=synthetic_tables(inv.currency))[0],
                    inv.currency))
            assert charge.amount >= floor


@FEW
@given(fee_cases(kinds=INTEREST_KINDS))
def test_property_interest_charged_by_day_d_grows_with_d_and_waits_for_a_whole_period(
        case: tuple[LateFeeRule, FeeInvoice, list[int]]) -> None:
    fee_rule, inv, offsets = case
    assert isinstance(fee_rule, DailyInterestRule | StatutoryInterestRule)
    tables = synthetic_tables(inv.currency)
    first_charge_day = inv.due_date + (fee_rule.grace_days + 1 + fee_rule.period_days) * DAY
    offered = simulate(fee_rule, inv, offsets)
    previous = D(0)
    for offset in offsets:
        day = inv.due_date + offset * DAY
        # Fresh, with the full payment history: payments after `day` change nothing by then.
        total = sum((c.amount for c in due_fees(fee_rule, inv, [], day, rule_id="r.1",
                                                tables=tables)), D(0))
        assert total >= previous
        if day < first_charge_day:
            assert total == 0
        # The same as what the day-by-day run has written to the ledger by then.
        assert total == sum((c.amount for when, c in offered if when <= day), D(0))
        previous = total


@FEW
@given(fee_cases())
def test_property_every_amount_is_in_the_currency_minor_unit(
        case: tuple[LateFeeRule, FeeInvoice, list[int]]) -> None:
    fee_rule, inv, offsets = case
    for _, charge in simulate(fee_rule, inv, offsets):
        assert charge.currency == inv.currency
        assert charge.amount.as_tuple().exponent == -minor_unit_digits(inv.currency)
        assert charge.amount == charge.amount.quantize(D(1).scaleb(
            -minor_unit_digits(inv.currency)))


@FEW
@given(fee_cases())
def test_property_a_charge_is_the_same_whenever_and_whatever_is_paid_later(
        case: tuple[LateFeeRule, FeeInvoice, list[int]]) -> None:
    """What the day-by-day run (knowing only payments made so far) offered is exactly what
    one run on the last day, knowing every payment, gives for the same periods."""
    fee_rule, inv, offsets = case
    offered = {charge.key: charge for _, charge in simulate(fee_rule, inv, offsets)}
    last_day = inv.due_date + offsets[-1] * DAY
    fresh = {charge.key: charge
             for charge in due_fees(fee_rule, inv, [], last_day, rule_id="r.1",
                                    tables=synthetic_tables(inv.currency))}
    assert offered == fresh


def day_by_day_interest(inv: FeeInvoice, percent: Decimal, first: date, last: date
                        ) -> Decimal:
    """The oracle: each day's unpaid balance (payments count from their own date) x rate / 365,
    summed over the period's days outside every hold, rounded half-up once."""
    exact = D(0)
    day = first
    while day <= last:
        if not held(inv, day):
            paid = sum((amount for when, amount in inv.payments if when <= day), D(0))
            exact += max(inv.principal - paid, D(0)) * percent / 100 / 365
        day += DAY
    quantum = D(1).scaleb(-minor_unit_digits(inv.currency))
    return exact.quantize(quantum, rounding=ROUND_HALF_UP)


@FEW
@given(fee_cases(kinds=("daily_interest",), limits=False))
def test_property_daily_interest_matches_a_day_by_day_sum(
        case: tuple[LateFeeRule, FeeInvoice, list[int]]) -> None:
    fee_rule, inv, _ = case
    assert isinstance(fee_rule, DailyInterestRule)
    last_day = inv.due_date + HORIZON * DAY
    charges = due_fees(fee_rule, inv, [], last_day, rule_id="r.1")
    length, grace = fee_rule.period_days, fee_rule.grace_days
    for charge in charges:
        assert charge.amount == day_by_day_interest(inv, fee_rule.annual_rate_percent,
                                                    charge.period_start, charge.period_end)
        # The period is its own days outside the holds: from the schedule's oracle.
        days = counted_days(inv, grace + charge.period * length, length)
        assert (charge.period_start, charge.period_end) == (days[0], days[-1])
        if not inv.holds:
            assert (charge.period_end - charge.period_start).days + 1 == length
    if not (fee_rule.business_contacts_only and not inv.is_business) and (
            fee_rule.currency in (None, inv.currency)):
        # Period k is charged on the first counted day after its own: by last_day or not.
        whole = 0
        while True:
            after = counted_days(inv, grace + (whole + 1) * length, 1)
            if not after or after[0] > last_day:
                break
            whole += 1
        if fee_rule.max_charges is not None:
            whole = min(whole, fee_rule.max_charges)
        expected = []
        for k in range(whole):
            days = counted_days(inv, grace + k * length, length)
            if day_by_day_interest(inv, fee_rule.annual_rate_percent, days[0], days[-1]) > 0:
                expected.append(k)
        assert [c.period for c in charges] == expected


@FEW
@given(fee_cases(), st.lists(st.tuples(st.integers(-15, HORIZON), st.integers(1, 60)),
                             min_size=1, max_size=3))
def test_property_nothing_accrues_inside_a_hold(
        case: tuple[LateFeeRule, FeeInvoice, list[int]], extra: list[tuple[int, int]]) -> None:
    """Whatever the rule, with pauses and disputes on the invoice: no fee falls due on a held
    day, interest counts none of them, every period is charged on the first day outside the
    holds after its own days (or its day, for a fee), once, and the schedule is the one the
    rule has with no hold, laid out in the days outside them."""
    fee_rule, inv, offsets = case
    inv = replace(inv, holds=(*inv.holds, *(Hold(inv.due_date + a * DAY,
                                                 inv.due_date + (a + n) * DAY)
                                            for a, n in extra)))
    offered = simulate(fee_rule, inv, offsets)
    grace = fee_rule.grace_days
    one_off = not hasattr(fee_rule, "period_days")
    length = 1 if one_off else fee_rule.period_days  # type: ignore[union-attr]
    for day, charge in offered:
        assert not held(inv, charge.period_start) and not held(inv, charge.period_end)
        if charge.kind == "interest":
            days = counted_days(inv, grace + charge.period * length, length + 1)
            assert (charge.period_start, charge.period_end) == (days[0], days[-2])
            assert days[-1] <= day  # charged once its period ended, on a counted day
        else:
            [due_on] = counted_days(inv, grace + (0 if one_off else charge.period * length), 1)
            assert charge.period_start == due_on <= day
    keys = [charge.key for _, charge in offered]
    assert len(keys) == len(set(keys))
