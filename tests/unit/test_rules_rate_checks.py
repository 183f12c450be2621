"""Statutory rates that need a person's word (rules/rate_checks.py): which periods, and the
table as an organisation's decision makes it."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from rules.rate_checks import check, confirmed_table, open_checks
from rules.statutory import RatePeriod, RateTable, RateUnverified

D = Decimal
H1 = RatePeriod(date(2026, 1, 1), date(2026, 6, 30), D("4"), D("8"), None, "bank", False)
H2 = RatePeriod(date(2026, 7, 1), date(2026, 12, 31), D("3.75"), D("8"), None, "news", True)
GB = RateTable(jurisdiction="GB", title="t", currency="GBP", reference_rate_name="base",
               day_count="actual/365", b2b_only=True, b2b_only_reason="b2b",
               periods=(H1, H2), compensation=None, reminder_fee_caps=(), origin="t/gb.json")
TODAY = date(2026, 12, 6)


def test_the_unverified_period_in_force_is_named_with_its_rate_and_the_last_verified() -> None:
    found = check(GB, TODAY)
    assert found is not None
    assert (found.jurisdiction, found.start, found.end, found.problem, found.rate) == (
        "GB", date(2026, 7, 1), date(2026, 12, 31), "unverified", D("11.75"))
    assert found.last_verified == H1
    assert check(GB, date(2026, 3, 1)) is None  # verified
    missing = check(GB, date(2027, 2, 1))
    assert missing is not None and missing.problem == "missing"
    assert (missing.start, missing.end) == (date(2027, 1, 1), date(2027, 6, 30))


def test_a_decision_closes_the_check_and_makes_the_rate_usable() -> None:
    assert [c.start for c in open_checks({"GB": GB}, ["GB"], TODAY, {})] == [date(2026, 7, 1)]
    assert open_checks({"GB": GB}, ["GB"], TODAY, {("GB", date(2026, 7, 1)): "confirmed"}) == []
    with pytest.raises(RateUnverified):
        GB.rate_periods(date(2026, 7, 1), date(2026, 7, 31), allow_unverified=False)
    confirmed = confirmed_table(GB, {date(2026, 7, 1): "confirmed"}, TODAY)
    [(_, _, row)] = confirmed.rate_periods(date(2026, 7, 1), date(2026, 7, 31),
                                           allow_unverified=False)
    assert row.annual_rate(False) == D("11.75")
    last = confirmed_table(GB, {date(2026, 7, 1): "last_verified"}, TODAY)
    [(_, _, row)] = last.rate_periods(date(2026, 7, 1), date(2026, 7, 31),
                                      allow_unverified=False)
    assert row.annual_rate(False) == D("12") and "last verified" in row.source
    # The last verified rate may fill a missing period too.
    filled = confirmed_table(GB, {date(2027, 1, 1): "last_verified"}, TODAY)
    [(_, _, row)] = filled.rate_periods(date(2027, 1, 1), date(2027, 1, 31),
                                        allow_unverified=False)
    assert row.annual_rate(False) == D("12")
    assert confirmed_table(GB, {}, TODAY) is GB
