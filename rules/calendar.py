"""The organisation's calendar: its zone, its business days, its public holidays."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

# Countries whose weekend is not Saturday and Sunday (Monday = 0).
WEEKENDS = {"IL": frozenset({4, 5})}
DEFAULT_WEEKEND = frozenset({5, 6})


@lru_cache(maxsize=4096)
def _holidays(country: str, year: int) -> frozenset[date]:
    try:
        return frozenset(holidays.country_holidays(country, years=year).keys())
    except NotImplementedError:
        return frozenset()


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


@dataclass(frozen=True)
class OrgCalendar:
    timezone: str
    country: str

    def __post_init__(self) -> None:
        _zone(self.timezone)

    @property
    def zone(self) -> ZoneInfo:
        return _zone(self.timezone)

    def today(self, now: datetime) -> date:
        if now.tzinfo is None:
            raise ValueError("now must be an aware datetime")
        return now.astimezone(self.zone).date()

    def is_business_day(self, d: date) -> bool:
        if d.weekday() in WEEKENDS.get(self.country, DEFAULT_WEEKEND):
            return False
        return d not in _holidays(self.country, d.year)

    def next_business_day(self, d: date) -> date:
        for _ in range(60):
            if self.is_business_day(d):
                return d
            d += timedelta(days=1)
        raise ValueError(f"no business day within 60 days of {d} in {self.country}")

    def at_local(self, d: date, t: time) -> datetime:
        """UTC moment of wall time t on d. PEP 495 fold=0: a wall time skipped by a DST
        change moves forward by the gap; a repeated one is taken the first time it happens."""
        return datetime.combine(d, t, tzinfo=self.zone).astimezone(UTC)
