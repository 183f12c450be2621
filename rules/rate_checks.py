"""Statutory rates that need a person's word: the period in force today missing from a table,
or present but unverified. An owner or admin may confirm an unverified rate for their
organisation, or choose the last verified rate instead; `confirmed_table` is the table as that
organisation's planning then reads it. Pure: the confirmations are passed in."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Literal

from rules.statutory import RatePeriod, RateTable, half_year

Choice = Literal["confirmed", "last_verified"]
Problem = Literal["missing", "unverified"]


@dataclass(frozen=True, slots=True)
class RateCheck:
    """One period of one jurisdiction that needs a row or a check."""

    jurisdiction: str
    start: date
    end: date
    problem: Problem
    rate: Decimal | None  # the unverified B2B rate, percent a year (None: missing)
    source: str
    last_verified: RatePeriod | None  # the latest verified row before it, if any


def _covering(table: RateTable, day: date) -> RatePeriod | None:
    return next((p for p in table.periods if p.covers(day)), None)


def _last_verified(table: RateTable, before: date) -> RatePeriod | None:
    earlier = [p for p in table.periods if p.effective_to < before and not p.unverified]
    return earlier[-1] if earlier else None


def check(table: RateTable, day: date) -> RateCheck | None:
    """Whether the period in force on `day` needs a row or a check (None: it is fine)."""
    period = _covering(table, day)
    if period is not None and not period.unverified:
        return None
    if period is None:
        start, end = half_year(day)
        return RateCheck(table.jurisdiction, start, end, "missing", None, "",
                         _last_verified(table, start))
    return RateCheck(table.jurisdiction, period.effective_from, period.effective_to,
                     "unverified", period.annual_rate(False), period.source,
                     _last_verified(table, period.effective_from))


def open_checks(tables: Mapping[str, RateTable], jurisdictions: Iterable[str], day: date,
                confirmations: Mapping[tuple[str, date], Choice]) -> list[RateCheck]:
    """The periods in force on `day` for these jurisdictions that still need a decision."""
    found = []
    for jurisdiction in sorted(set(jurisdictions)):
        table = tables.get(jurisdiction)
        if table is None:
            continue
        needed = check(table, day)
        if needed is not None and (jurisdiction, needed.start) not in confirmations:
            found.append(needed)
    return found


def confirmed_table(table: RateTable, confirmations: Mapping[date, Choice],
                    today: date) -> RateTable:
    """The table with an organisation's decisions applied: a confirmed unverified period is
    used as verified; the last verified rate fills a period chosen so (also a missing one)."""
    if not confirmations:
        return table
    periods = list(table.periods)
    for start, choice in confirmations.items():
        current = next((i for i, p in enumerate(periods) if p.effective_from == start), None)
        if choice == "confirmed" and current is not None:
            periods[current] = replace(periods[current], unverified=False,
                                       source=periods[current].source + " (confirmed)")
            continue
        last = _last_verified(table, start)
        if choice != "last_verified" or last is None:
            continue
        end = periods[current].effective_to if current is not None else half_year(start)[1]
        row = replace(last, effective_from=start, effective_to=end,
                      source=f"last verified rate ({last.effective_from}..{last.effective_to})"
                             " chosen by the organisation")
        if current is not None:
            periods[current] = row
        elif start <= today + timedelta(days=366):
            periods.append(row)
    periods.sort(key=lambda p: p.effective_from)
    return replace(table, periods=tuple(periods))
