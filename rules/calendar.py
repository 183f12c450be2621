"""The organisation's calendar: its zone, its business days, its public holidays.

Lookups are memoised in module-level caches of pure functions, keyed by plain values, so planning
a million invoices computes each holiday table, business day and local moment once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

SATURDAY_SUNDAY = frozenset({5, 6})  # date.weekday(): Monday is 0
# Far more than any run of weekend plus holidays anywhere; a safety stop, not a rule.
LONGEST_BREAK_DAYS = 60


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError) as exc:
        raise ValueError(f"unknown time zone {name!r}: expected an IANA name such as"
                         " 'Europe/London'") from exc


@lru_cache(maxsize=512)
def _weekend(country: str) -> frozenset[int]:
    """The `holidays` package knows which countries rest on Friday and Saturday (IL, SA, EG...)."""
    try:
        return frozenset(holidays.country_holidays(country).weekend)
    except NotImplementedError:
        return SATURDAY_SUNDAY


@lru_cache(maxsize=512)
def _subdivisions(country: str) -> frozenset[str] | None:
    """Codes `holidays` accepts for the country; None when it does not know the country."""
    known = holidays.list_supported_countries(include_aliases=True).get(country)
    return None if known is None else frozenset(known)


@lru_cache(maxsize=4096)
def _holidays(country: str, subdivision: str | None, year: int) -> frozenset[date]:
    try:
        return frozenset(holidays.country_holidays(country, subdiv=subdivision, years=year))
    except NotImplementedError:
        return frozenset()


def _is_business_day(country: str, subdivision: str | None, d: date) -> bool:
    return (d.weekday() not in _weekend(country)
            and d not in _holidays(country, subdivision, d.year))


@lru_cache(maxsize=65536)
def _next_business_day(country: str, subdivision: str | None, d: date) -> date:
    for _ in range(LONGEST_BREAK_DAYS):
        if _is_business_day(country, subdivision, d):
            return d
        d += timedelta(days=1)
    raise ValueError(f"no business day within {LONGEST_BREAK_DAYS} days of {d} in {country}")


@lru_cache(maxsize=65536)
def _at_local(timezone: str, d: date, t: time) -> datetime:
    # fold=0 (PEP 495): a wall time skipped by a DST change lands after the gap, and a repeated
    # one is taken the first time it happens. Any offset on t is ignored: the zone decides.
    wall = datetime.combine(d, t.replace(tzinfo=None, fold=0))
    return wall.replace(tzinfo=_zone(timezone)).astimezone(UTC)


@lru_cache(maxsize=4096)
def _today(timezone: str, now: datetime) -> date:
    """The local date of `now` in the zone (a planning pass asks it of the same moments
    hundreds of thousands of times). Equal moments in different zones share the answer."""
    require_aware(now)
    return now.astimezone(_zone(timezone)).date()


def require_aware(moment: datetime) -> None:
    """A naive datetime is ambiguous across zones; refuse it rather than guess."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment.isoformat()} must be an aware datetime (with a time zone)")


@dataclass(frozen=True)
class OrgCalendar:
    """Where and when an organisation does business; frozen and hashable, so cheap to share."""

    timezone: str  # IANA name
    country: str  # ISO 3166-1 alpha-2; unknown to `holidays` means weekends only
    # ISO 3166-2 part as `holidays` names it ("ENG", "CA"). Without it only nationwide holidays
    # count: for GB that leaves out Easter Monday and the August bank holiday (not Scottish).
    subdivision: str | None = None

    def __post_init__(self) -> None:
        _zone(self.timezone)
        # Providers send "gb" as readily as "GB"; `holidays` only knows the latter.
        object.__setattr__(self, "country", self.country.strip().upper())
        if self.subdivision is not None:
            object.__setattr__(self, "subdivision", self.subdivision.strip().upper())
            known = _subdivisions(self.country)
            if known is not None and self.subdivision not in known:
                raise ValueError(f"unknown subdivision {self.subdivision!r} of {self.country}:"
                                 f" expected one of {', '.join(sorted(known))}")

    @property
    def zone(self) -> ZoneInfo:
        return _zone(self.timezone)

    @property
    def weekend(self) -> frozenset[int]:
        return _weekend(self.country)

    def today(self, now: datetime) -> date:
        return _today(self.timezone, now)

    def is_business_day(self, d: date) -> bool:
        return _is_business_day(self.country, self.subdivision, d)

    def next_business_day(self, d: date) -> date:
        return _next_business_day(self.country, self.subdivision, d)

    def at_local(self, d: date, t: time) -> datetime:
        """Aware UTC moment of wall time t on d in the organisation's zone (DST-correct)."""
        return _at_local(self.timezone, d, t)
