"""Statutory late-payment interest and fixed compensation, read from dated rate tables.

The law moves the reference rate every half-year. A statutory figure computed from a rate we do
not hold would be a guess printed on somebody's invoice, so every rate is a dated row, a day no
row covers refuses with `RateNotCovered` (naming the file and the half-year to add), and a row
marked unverified (a single source, or derived) is used only when the caller passes
`allow_unverified=True`; otherwise it refuses with `RateUnverified`, a `RateNotCovered`. The
messages are for whoever keeps the tables; each refusal's `plain` says the same to an owner,
with no file or option in it, and its fields (jurisdiction, period, rate) let a page say it in
the reader's language.

One JSON file per jurisdiction (`rules/rates/gb.json`, `eu.json`, `de.json`, `pl.json`,
`no.json`): each country moves its rate on its own calendar and is confirmed from its own
sources, so adding Germany's next half-year touches one small file, the error can name that
file, and an operator's directory given to `load_tables()` adds or replaces jurisdictions one
file at a time, without a code change.

File format (keys not listed are refused, so a typo cannot silently drop a rate; numbers are
strings or JSON integers, and JSON decimals are read as Decimal, never as floats)::

    {
      "format": 1,
      "jurisdiction": "DE",                 key callers pass (upper case)
      "title": "BGB §§ 247, 286, 288",      for people
      "currency": "EUR",                    currency of "reminder_fee_caps"
      "reference_rate_name": "base",        label in reasons: "DE B2B: base 1.27 % + 9"
      "fixing": "...", "notes": "...",      optional, for people
      "day_count": "actual/365",            the one convention supported
      "day_count_why": "...",               one line: why this convention here
      "b2b_only": false,                    true: consumers refused with "b2b_only_reason"
      "b2b_only_reason": "...",             required when b2b_only is true
      "margin_b2b": "9",                    percentage points over the reference rate,
      "margin_b2c": "5",                      defaults for the rows; margin_b2c null if b2b_only
      "periods": [                          sorted, not overlapping; gaps refuse
        {"from": "2025-07-01", "to": "2025-12-31",     both inclusive
         "reference_rate": "1.27",          or "rate": the total B2B rate as published
                                            (Norway), the reference derived as rate - margin_b2b
         "margin_b2b": "9", "margin_b2c": "5",         optional overrides of the defaults
         "source": "where the figure comes from", "unverified": false}
      ],
      "compensation": {                     optional: fixed recovery compensation per debt
        "b2b_only": true, "b2b_only_reason": "...",
        "threshold_currency": "PLN",        currency of the band limits (only with limits)
        "currency": "EUR",                  currency of the amounts
        "periods": [{"from": null, "to": null,         null: open-ended (fixed in statute)
                     "bands": [{"at_most": "5000", "amount": "40"},
                               {"below": "50000", "amount": "70"}, {"amount": "100"}],
                     "source": "...", "unverified": false}]
      },
      "reminder_fee_caps": [                optional: legal maximum of a reminder fee
        {"from": "2024-01-01", "to": "2024-12-31", "amount": "35", "source": "...",
         "unverified": false}
      ]
    }

Conventions (the same for every jurisdiction):
- Day count actual/365: each day late accrues 1/365 of the annual rate, leap years included.
  Each file says in one line why (`day_count_why`).
- Interest accrues for each day from the day after the due date up to and including `as_of`:
  due 1 March, as of 31 March is 30 days.
- A payment reduces the base from its payment date: the paid part accrues up to the day before
  it was paid, so an invoice paid in full on its due date + 1 owes no interest. `as_of` is the
  end of a day: a payment dated `as_of` counts.
- The accrual is split at every rate-period boundary and every payment; each segment keeps full
  precision, and only the total is rounded, half-up, to the currency's minor unit.
- Fixed compensation is looked up on the first day of default (the day after the due date), and
  converted only with an exchange rate the caller supplies, rounded half-up to the minor unit.
"""

from __future__ import annotations

import bisect
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import (
    ROUND_FLOOR,
    ROUND_HALF_UP,
    Context,
    Decimal,
    InvalidOperation,
    localcontext,
)
from functools import lru_cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

__all__ = [
    "DECIMAL_CONTEXT",
    "Compensation",
    "CompensationBand",
    "CompensationPeriod",
    "CompensationTable",
    "DatedAmount",
    "FxRateRequired",
    "FxRates",
    "InterestQuote",
    "InterestSegment",
    "NotApplicable",
    "PrincipalEvents",
    "RateNotCovered",
    "RatePeriod",
    "RateTable",
    "RateTableError",
    "RateUnverified",
    "default_tables",
    "floor_money",
    "format_money",
    "load_tables",
    "minor_unit_digits",
    "outstanding_runs",
    "rate_table",
    "reminder_fee_cap",
    "round_money",
    "statutory_compensation",
    "statutory_interest",
]

DAYS_PER_YEAR = Decimal(365)
HUNDRED = Decimal(100)
ZERO = Decimal(0)
# Far beyond any amount times any rate; local, so a caller's decimal context cannot change a
# figure.
DECIMAL_CONTEXT = Context(prec=34)
FORMAT_VERSION = 1
SUPPORTED_DAY_COUNTS = frozenset({"actual/365"})

# ISO 4217 minor units that are not 2; every other currency has cents.
_MINOR_UNITS: Mapping[str, int] = MappingProxyType({
    **dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF",
                     "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
})
_QUANTA = {digits: Decimal(1).scaleb(-digits) for digits in (0, 1, 2, 3, 4)}

# (base currency, quote currency) -> price of one base unit in the quote currency:
# {("EUR", "PLN"): Decimal("4.2692")} is the EUR/PLN rate, 1 EUR = 4.2692 PLN.
FxRates = Mapping[tuple[str, str], Decimal]


Figure = Literal["interest", "compensation", "reminder_fee_cap"]
_FIGURE_WORDS: Mapping[str, str] = MappingProxyType({
    "interest": "statutory interest rate", "compensation": "statutory compensation",
    "reminder_fee_cap": "reminder-fee maximum"})


class RateNotCovered(ValueError):
    """No usable figure for a period: the table must be extended.

    The message is for whoever keeps the tables: it names the file and the period to add.
    `plain` says the same to an owner, without files or options, and the fields let a page say
    it in the reader's language."""

    def __init__(self, message: str, *, jurisdiction: str, start: date, end: date,
                 figure: Figure = "interest") -> None:
        super().__init__(message)
        self.jurisdiction, self.start, self.end, self.figure = jurisdiction, start, end, figure

    @property
    def plain(self) -> str:
        return (f"There is no {self.jurisdiction} {_FIGURE_WORDS[self.figure]} for"
                f" {self.start}..{self.end} yet, so nothing is charged for it.")


class RateUnverified(RateNotCovered):
    """The row exists but rests on one source; usable only with allow_unverified=True, or
    once an owner confirmed it for their organisation (rules/rate_checks.py)."""

    def __init__(self, message: str, *, jurisdiction: str, start: date, end: date,
                 figure: Figure = "interest", rate: Decimal | None = None,
                 source: str = "") -> None:
        super().__init__(message, jurisdiction=jurisdiction, start=start, end=end,
                         figure=figure)
        self.rate, self.source = rate, source  # interest: the B2B rate, percent a year

    @property
    def plain(self) -> str:
        words = _FIGURE_WORDS[self.figure]
        rate = ("" if self.rate is None or self.figure != "interest"
                else f" ({_percent(self.rate)} % a year for business debts)")
        then = (": nothing is charged at that rate until an owner or admin confirms it or"
                " chooses the last verified rate" if self.figure == "interest"
                else ", so it is not used")
        return (f"The {self.jurisdiction} {words} for {self.start}..{self.end}{rate} is not yet"
                f" confirmed by a second source{then}.")


class NotApplicable(ValueError):
    """The law does not give this: a consumer under a business-only law, an unknown country.

    For an unknown country `known` lists the tables there are; `plain` leaves out how an
    operator would add one."""

    def __init__(self, message: str, *, jurisdiction: str = "",
                 known: tuple[str, ...] | None = None) -> None:
        super().__init__(message)
        self.jurisdiction, self.known = jurisdiction, known

    @property
    def plain(self) -> str:
        if self.known is None:
            return str(self)
        others = f" (there are for {', '.join(self.known)})" if self.known else ""
        return f"There are no statutory rates for {self.jurisdiction}{others}."


class FxRateRequired(ValueError):
    """A figure in another currency is needed and the caller gave no rate; we never guess one.
    """

    def __init__(self, message: str, *, why: str = "", source: str = "",
                 target: str = "") -> None:
        super().__init__(message)
        self.why, self.source, self.target = why, source, target

    @property
    def plain(self) -> str:
        if not self.source:
            return str(self)
        return (f"{self.why}: that needs the {self.source}/{self.target} exchange rate, and"
                " no rate is guessed.")


def refusal_facts(exc: Exception) -> dict[str, str]:
    """A refusal above as a code and its figures (ISO days, the rate a decimal string), for a
    page to word in the reader's language; `plain` is the English of the same."""
    if isinstance(exc, RateNotCovered):
        facts = {"code": "rate_unverified" if isinstance(exc, RateUnverified)
                 else "rate_missing", "jurisdiction": exc.jurisdiction,
                 "start": exc.start.isoformat(), "end": exc.end.isoformat(),
                 "figure": exc.figure}
        if isinstance(exc, RateUnverified) and exc.rate is not None:
            facts["rate"] = str(exc.rate)
        return facts
    if isinstance(exc, NotApplicable) and exc.known is not None:
        return {"code": "no_rates", "jurisdiction": exc.jurisdiction,
                "known": ", ".join(exc.known)}
    if isinstance(exc, FxRateRequired) and exc.source:
        return {"code": "fx_rate", "source": exc.source, "target": exc.target}
    return {"code": "other"}


class RateTableError(ValueError):
    """A rate file that cannot be read as a table; the message names the file and the row."""


def minor_unit_digits(currency: str) -> int:
    return _MINOR_UNITS.get(currency, 2)


def round_money(amount: Decimal, currency: str) -> Decimal:
    """Half-up to the currency's minor unit: the one rounding applied to anything charged."""
    return amount.quantize(_QUANTA[minor_unit_digits(currency)], rounding=ROUND_HALF_UP,
                           context=DECIMAL_CONTEXT)


def floor_money(amount: Decimal, currency: str) -> Decimal:
    """Down to the minor unit: for limits, which rounding must never push up."""
    return amount.quantize(_QUANTA[minor_unit_digits(currency)], rounding=ROUND_FLOOR,
                           context=DECIMAL_CONTEXT)


def format_money(amount: Decimal, currency: str) -> str:
    return f"{round_money(amount, currency):,.{minor_unit_digits(currency)}f} {currency}"


def _percent(value: Decimal) -> str:
    """A rate with at least two decimals (12.50), more only when it has them (3.625)."""
    exponent = value.normalize().as_tuple().exponent
    places = max(2, -exponent) if isinstance(exponent, int) else 2
    return f"{value:.{places}f}"


def _points(value: Decimal) -> str:
    """A margin as the law states it: "9", "8.5"."""
    text = f"{value.normalize():f}"
    return text


def half_year(day: date) -> tuple[date, date]:
    """The half-year around `day`: the period of the shipped tables' rows."""
    if day.month <= 6:
        return date(day.year, 1, 1), date(day.year, 6, 30)
    return date(day.year, 7, 1), date(day.year, 12, 31)


# ----------------------------------------------------------------------------- tables


@dataclass(frozen=True, slots=True)
class RatePeriod:
    """One row of a table: the reference rate and the margins in force from..to (inclusive)."""

    effective_from: date
    effective_to: date
    reference_rate: Decimal  # percent per year
    margin_b2b: Decimal  # percentage points
    margin_b2c: Decimal | None  # None: the law gives consumers nothing
    source: str
    unverified: bool

    def annual_rate(self, b2c: bool) -> Decimal:
        margin = self.margin_b2c if b2c else self.margin_b2b
        if margin is None:
            raise NotApplicable(
                f"no consumer margin for {self.effective_from}..{self.effective_to}")
        return self.reference_rate + margin

    def covers(self, day: date) -> bool:
        return self.effective_from <= day <= self.effective_to


@dataclass(frozen=True, slots=True)
class DatedAmount:
    """A fixed amount in force from..to (inclusive); open ends are None."""

    effective_from: date | None
    effective_to: date | None
    amount: Decimal
    source: str
    unverified: bool

    def covers(self, day: date) -> bool:
        return ((self.effective_from is None or self.effective_from <= day)
                and (self.effective_to is None or day <= self.effective_to))


@dataclass(frozen=True, slots=True)
class CompensationBand:
    """Debts below `below` (exclusive) or up to `at_most` (inclusive); neither: the rest."""

    amount: Decimal
    below: Decimal | None = None
    at_most: Decimal | None = None

    def holds(self, debt: Decimal) -> bool:
        if self.below is not None:
            return debt < self.below
        if self.at_most is not None:
            return debt <= self.at_most
        return True


def _describe_band(bands: Sequence[CompensationBand], index: int, currency: str | None) -> str:
    """The band in words, its lower limit being the one before it: 'debt of at least ...'."""
    if currency is None or len(bands) == 1:
        return "any debt"
    band, parts = bands[index], []
    if index > 0:
        before = bands[index - 1]
        if before.below is not None:
            parts.append(f"at least {format_money(before.below, currency)}")
        elif before.at_most is not None:
            parts.append(f"above {format_money(before.at_most, currency)}")
    if band.below is not None:
        parts.append(f"below {format_money(band.below, currency)}")
    elif band.at_most is not None:
        parts.append(f"up to {format_money(band.at_most, currency)}")
    return "debt of " + " and ".join(parts)


@dataclass(frozen=True, slots=True)
class CompensationPeriod:
    effective_from: date | None
    effective_to: date | None
    bands: tuple[CompensationBand, ...]
    source: str
    unverified: bool

    def covers(self, day: date) -> bool:
        return ((self.effective_from is None or self.effective_from <= day)
                and (self.effective_to is None or day <= self.effective_to))


@dataclass(frozen=True, slots=True)
class CompensationTable:
    currency: str  # of the amounts
    threshold_currency: str | None  # of the band limits; None when there are no limits
    b2b_only: bool
    b2b_only_reason: str
    periods: tuple[CompensationPeriod, ...]


@dataclass(frozen=True, slots=True)
class RateTable:
    """Everything the law of one jurisdiction gives, as dated rows; read from one JSON file."""

    jurisdiction: str
    title: str
    currency: str
    reference_rate_name: str
    day_count: str
    b2b_only: bool
    b2b_only_reason: str
    periods: tuple[RatePeriod, ...]
    compensation: CompensationTable | None
    reminder_fee_caps: tuple[DatedAmount, ...]
    origin: str  # the file, as an operator would look for it: "rules/rates/de.json"
    _starts: tuple[date, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_starts", tuple(p.effective_from for p in self.periods))

    @classmethod
    def load(cls, path: str | os.PathLike[str] | Traversable,
             origin: str | None = None) -> RateTable:
        """Read and check one table file; every problem is a RateTableError naming the file."""
        where = origin or str(path)
        source: Traversable = Path(path) if isinstance(path, str | os.PathLike) else path
        try:
            text = source.read_text(encoding="utf-8")
        except OSError as exc:
            raise RateTableError(f"{where}: cannot read: {exc}") from exc
        try:
            data = json.loads(text, parse_float=Decimal)
        except json.JSONDecodeError as exc:
            raise RateTableError(f"{where}: not valid JSON: {exc.msg} at line {exc.lineno}"
                                 f" column {exc.colno}") from exc
        return _parse_table(data, where)

    @property
    def covered(self) -> str:
        """Covered dates as gapless runs, so an error shows at a glance where the holes are."""
        runs: list[list[date]] = []
        for p in self.periods:
            if runs and runs[-1][1] + timedelta(days=1) == p.effective_from:
                runs[-1][1] = p.effective_to
            else:
                runs.append([p.effective_from, p.effective_to])
        return ", ".join(f"{a}..{b}" for a, b in runs) or "no dates"

    def rate_periods(self, first: date, last: date, *, allow_unverified: bool
                     ) -> list[tuple[date, date, RatePeriod]]:
        """The rows covering every day first..last, clipped to it; refuses at the first gap."""
        starts = self._starts
        found: list[tuple[date, date, RatePeriod]] = []
        day = first
        while day <= last:
            index = bisect.bisect_right(starts, day) - 1
            period = self.periods[index] if index >= 0 else None
            if period is None or not period.covers(day):
                raise self._not_covered(day)
            if period.unverified and not allow_unverified:
                raise RateUnverified(
                    f"The {self.jurisdiction} statutory rate for {period.effective_from}.."
                    f"{period.effective_to} ({_percent(period.annual_rate(False))} % B2B) is"
                    f" unverified ({period.source}). Confirm it against a second source and set"
                    f' "unverified": false in {self.origin}, or pass allow_unverified=True.',
                    jurisdiction=self.jurisdiction, start=period.effective_from,
                    end=period.effective_to, rate=period.annual_rate(False),
                    source=period.source)
            end = min(period.effective_to, last)
            found.append((day, end, period))
            day = end + timedelta(days=1)
        return found

    def _not_covered(self, day: date) -> RateNotCovered:
        start, end = half_year(day)
        following = [p.effective_from for p in self.periods if p.effective_from > day]
        if following:
            end = min(end, following[0] - timedelta(days=1))
        earlier = [p.effective_to for p in self.periods if p.effective_to < day]
        if earlier:
            start = max(start, earlier[-1] + timedelta(days=1))
        return RateNotCovered(
            f"No {self.jurisdiction} statutory rate for {day} (the table covers"
            f" {self.covered}): add a row for {start}..{end} to {self.origin}.",
            jurisdiction=self.jurisdiction, start=start, end=end)


_TABLE_KEYS = frozenset({
    "format", "jurisdiction", "title", "currency", "reference_rate_name", "fixing", "notes",
    "day_count", "day_count_why", "b2b_only", "b2b_only_reason", "margin_b2b", "margin_b2c",
    "periods", "compensation", "reminder_fee_caps"})
_PERIOD_KEYS = frozenset({"from", "to", "reference_rate", "rate", "margin_b2b", "margin_b2c",
                          "source", "unverified"})
_COMPENSATION_KEYS = frozenset({"b2b_only", "b2b_only_reason", "threshold_currency", "currency",
                                "periods"})
_COMPENSATION_PERIOD_KEYS = frozenset({"from", "to", "bands", "source", "unverified"})
_BAND_KEYS = frozenset({"below", "at_most", "amount"})
_AMOUNT_KEYS = frozenset({"from", "to", "amount", "source", "unverified"})


class _Reader:
    """Reads one file's values, each error naming the file and the place in it."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, place: str, message: str) -> RateTableError:
        return RateTableError(f"{self.where}: {place}: {message}")

    def obj(self, value: Any, place: str, keys: frozenset[str],
            required: Iterable[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(place, "must be a JSON object")
        unknown = sorted(set(value) - keys)
        if unknown:
            raise self.fail(place, f"unknown key(s) {', '.join(unknown)}")
        missing = [key for key in required if key not in value]
        if missing:
            raise self.fail(place, f"missing key(s) {', '.join(missing)}")
        return value

    def text(self, value: Any, place: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(place, "must be a non-empty string")
        return value.strip()

    def currency(self, value: Any, place: str) -> str:
        text = self.text(value, place)
        if len(text) != 3 or not text.isascii() or not text.isalpha() or not text.isupper():
            raise self.fail(place, f"{text!r} is not an ISO 4217 code such as 'EUR'")
        return text

    def flag(self, value: Any, place: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(place, "must be true or false")
        return value

    def number(self, value: Any, place: str, *, positive: bool = False) -> Decimal:
        # bool is an int: a `true` where a rate belongs is a mistake, not 1.
        if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
            raise self.fail(place, 'must be a decimal number, written as a string ("1.27")')
        try:
            number = Decimal(value.strip() if isinstance(value, str) else value)
        except InvalidOperation:
            raise self.fail(place, f"{value!r} is not a decimal number") from None
        if not number.is_finite() or number < 0 or (positive and number == 0):
            raise self.fail(place, f"{value!r} must be a finite number"
                                   f" {'above' if positive else 'of at least'} 0")
        return number

    def day(self, value: Any, place: str, *, open_end: bool = False) -> date | None:
        if value is None and open_end:
            return None
        if not isinstance(value, str):
            raise self.fail(place, "must be a date written as YYYY-MM-DD")
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise self.fail(place, f"{value!r} is not a date written as YYYY-MM-DD") from None

    def span(self, row: dict[str, Any], place: str, *, open_end: bool = False
             ) -> tuple[date | None, date | None]:
        start = self.day(row.get("from"), f"{place}.from", open_end=open_end)
        end = self.day(row.get("to"), f"{place}.to", open_end=open_end)
        if start is not None and end is not None and end < start:
            raise self.fail(place, f"ends ({end}) before it starts ({start})")
        return start, end


def _no_overlap(reader: _Reader, place: str,
                spans: Sequence[tuple[date | None, date | None]]) -> None:
    for n in range(1, len(spans)):
        before, after = spans[n - 1][1], spans[n][0]
        if before is None or after is None or after <= before:
            raise reader.fail(f"{place}[{n}]", "rows must be in date order and not overlap")


def _parse_table(data: Any, where: str) -> RateTable:
    r = _Reader(where)
    top = r.obj(data, "table", _TABLE_KEYS,
                ("format", "jurisdiction", "title", "currency", "reference_rate_name",
                 "day_count", "day_count_why", "b2b_only", "margin_b2b", "periods"))
    if top["format"] != FORMAT_VERSION:
        raise r.fail("format", f"expected {FORMAT_VERSION}, found {top['format']!r}")
    jurisdiction = r.text(top["jurisdiction"], "jurisdiction").upper()
    day_count = r.text(top["day_count"], "day_count")
    if day_count not in SUPPORTED_DAY_COUNTS:
        raise r.fail("day_count", f"{day_count!r} is not supported; use 'actual/365'")
    r.text(top["day_count_why"], "day_count_why")
    b2b_only = r.flag(top["b2b_only"], "b2b_only")
    reason = r.text(top["b2b_only_reason"], "b2b_only_reason") if b2b_only else ""
    default_b2b = r.number(top["margin_b2b"], "margin_b2b")
    default_b2c = (None if top.get("margin_b2c") is None
                   else r.number(top["margin_b2c"], "margin_b2c"))
    if not isinstance(top["periods"], list):
        raise r.fail("periods", "must be a list of rows")
    periods = []
    for n, raw in enumerate(top["periods"]):
        place = f"periods[{n}]"
        row = r.obj(raw, place, _PERIOD_KEYS, ("from", "to", "source", "unverified"))
        start, end = r.span(row, place)
        assert start is not None and end is not None  # no open ends for rates
        margin_b2b = (r.number(row["margin_b2b"], f"{place}.margin_b2b")
                      if "margin_b2b" in row else default_b2b)
        margin_b2c = default_b2c
        if "margin_b2c" in row:
            margin_b2c = (None if row["margin_b2c"] is None
                          else r.number(row["margin_b2c"], f"{place}.margin_b2c"))
        if ("reference_rate" in row) == ("rate" in row):
            raise r.fail(place, 'give exactly one of "reference_rate" or "rate"')
        if "rate" in row:
            reference = r.number(row["rate"], f"{place}.rate") - margin_b2b
            if reference < 0:
                raise r.fail(f"{place}.rate", "is below the margin")
        else:
            reference = r.number(row["reference_rate"], f"{place}.reference_rate")
        if b2b_only and margin_b2c is not None:
            raise r.fail(place, "a business-only table has no consumer margin (margin_b2c)")
        if not b2b_only and margin_b2c is None:
            raise r.fail(place, "margin_b2c is required unless the table is b2b_only")
        periods.append(RatePeriod(
            effective_from=start, effective_to=end, reference_rate=reference,
            margin_b2b=margin_b2b, margin_b2c=margin_b2c,
            source=r.text(row["source"], f"{place}.source"),
            unverified=r.flag(row["unverified"], f"{place}.unverified")))
    _no_overlap(r, "periods", [(p.effective_from, p.effective_to) for p in periods])
    caps = []
    for n, raw in enumerate(top.get("reminder_fee_caps") or ()):
        place = f"reminder_fee_caps[{n}]"
        row = r.obj(raw, place, _AMOUNT_KEYS, ("from", "to", "amount", "source", "unverified"))
        start, end = r.span(row, place, open_end=True)
        caps.append(DatedAmount(start, end, r.number(row["amount"], f"{place}.amount"),
                                r.text(row["source"], f"{place}.source"),
                                r.flag(row["unverified"], f"{place}.unverified")))
    _no_overlap(r, "reminder_fee_caps", [(c.effective_from, c.effective_to) for c in caps])
    return RateTable(
        jurisdiction=jurisdiction, title=r.text(top["title"], "title"),
        currency=r.currency(top["currency"], "currency"),
        reference_rate_name=r.text(top["reference_rate_name"], "reference_rate_name"),
        day_count=day_count, b2b_only=b2b_only, b2b_only_reason=reason,
        periods=tuple(periods),
        compensation=(None if top.get("compensation") is None
                      else _parse_compensation(r, top["compensation"])),
        reminder_fee_caps=tuple(caps), origin=where)


def _parse_compensation(r: _Reader, raw: Any) -> CompensationTable:
    top = r.obj(raw, "compensation", _COMPENSATION_KEYS, ("b2b_only", "currency", "periods"))
    b2b_only = r.flag(top["b2b_only"], "compensation.b2b_only")
    reason = (r.text(top.get("b2b_only_reason"), "compensation.b2b_only_reason")
              if b2b_only else "")
    threshold_currency = (None if top.get("threshold_currency") is None
                          else r.currency(top["threshold_currency"],
                                          "compensation.threshold_currency"))
    if not isinstance(top["periods"], list):
        raise r.fail("compensation.periods", "must be a list of rows")
    periods = []
    for n, raw_row in enumerate(top["periods"]):
        place = f"compensation.periods[{n}]"
        row = r.obj(raw_row, place, _COMPENSATION_PERIOD_KEYS,
                    ("from", "to", "bands", "source", "unverified"))
        start, end = r.span(row, place, open_end=True)
        if not isinstance(row["bands"], list) or not row["bands"]:
            raise r.fail(f"{place}.bands", "must be a non-empty list")
        bands = []
        for m, raw_band in enumerate(row["bands"]):
            where = f"{place}.bands[{m}]"
            band = r.obj(raw_band, where, _BAND_KEYS, ("amount",))
            if "below" in band and "at_most" in band:
                raise r.fail(where, 'give at most one of "below" or "at_most"')
            last = m == len(row["bands"]) - 1
            if last == ("below" in band or "at_most" in band):
                raise r.fail(where, "every band but the last needs a limit; the last has none")
            bands.append(CompensationBand(
                amount=r.number(band["amount"], f"{where}.amount", positive=True),
                below=r.number(band["below"], f"{where}.below") if "below" in band else None,
                at_most=(r.number(band["at_most"], f"{where}.at_most")
                         if "at_most" in band else None)))
        if len(bands) > 1 and threshold_currency is None:
            raise r.fail("compensation", "bands with limits need a threshold_currency")
        periods.append(CompensationPeriod(start, end, tuple(bands),
                                          r.text(row["source"], f"{place}.source"),
                                          r.flag(row["unverified"], f"{place}.unverified")))
    _no_overlap(r, "compensation.periods", [(p.effective_from, p.effective_to) for p in periods])
    return CompensationTable(
        currency=r.currency(top["currency"], "compensation.currency"),
        threshold_currency=threshold_currency, b2b_only=b2b_only, b2b_only_reason=reason,
        periods=tuple(periods))


def load_tables(directory: str | os.PathLike[str] | Traversable,
                origin: str | None = None) -> Mapping[str, RateTable]:
    """Every `*.json` table in a directory, keyed by jurisdiction.

    An operator extends or corrects rates by pointing this at a copy of `rules/rates` and
    passing the result as `tables=`; no code changes. `origin` is how error messages name the
    directory (default: the path).
    """
    folder: Traversable = (Path(directory) if isinstance(directory, str | os.PathLike)
                           else directory)
    prefix = origin if origin is not None else str(directory)
    tables: dict[str, RateTable] = {}
    for entry in sorted(folder.iterdir(), key=lambda item: item.name):
        if not entry.name.endswith(".json") or not entry.is_file():
            continue
        table = RateTable.load(entry, origin=f"{prefix.rstrip('/')}/{entry.name}")
        if table.jurisdiction in tables:
            raise RateTableError(f"{table.origin}: jurisdiction {table.jurisdiction} is also"
                                 f" in {tables[table.jurisdiction].origin}")
        tables[table.jurisdiction] = table
    return MappingProxyType(tables)


@lru_cache(maxsize=1)
def default_tables() -> Mapping[str, RateTable]:
    """The tables shipped in `rules/rates`, read once per process."""
    return load_tables(files("rules").joinpath("rates"), origin="rules/rates")


def rate_table(jurisdiction: str, tables: Mapping[str, RateTable] | None = None) -> RateTable:
    known = default_tables() if tables is None else tables
    table = known.get(jurisdiction.strip().upper())
    if table is None:
        raise NotApplicable(
            f"No statutory table for jurisdiction {jurisdiction!r} (known: "
            f"{', '.join(sorted(known)) or 'none'}): add rules/rates/"
            f"{jurisdiction.strip().lower()}.json or pass tables= with one.",
            jurisdiction=jurisdiction.strip().upper(), known=tuple(sorted(known)))
    return table


# ----------------------------------------------------------------------------- interest


@dataclass(frozen=True, slots=True)
class PrincipalEvents:
    """The debt and what was paid against it: (payment date, amount) in any order."""

    amount: Decimal
    currency: str
    payments: tuple[tuple[date, Decimal], ...] = ()


def outstanding_runs(amount: Decimal, payments: Iterable[tuple[date, Decimal]],
                     first: date, last: date) -> list[tuple[date, date, Decimal]]:
    """The unpaid balance over first..last as (from, to, balance) runs, both ends inclusive.

    A payment counts from its own date (the paid part stops accruing that day), and the
    balance never goes below zero however much was paid.
    """
    if last < first:
        return []
    later: dict[date, Decimal] = {}
    balance = amount
    for day, paid in payments:
        if day <= first:
            balance -= paid
        elif day <= last:
            later[day] = later.get(day, ZERO) + paid
    runs: list[tuple[date, date, Decimal]] = []
    start = first
    for day in sorted(later):
        runs.append((start, day - timedelta(days=1), max(balance, ZERO)))
        balance -= later[day]
        start = day
    runs.append((start, last, max(balance, ZERO)))
    return runs


@dataclass(frozen=True, slots=True)
class InterestSegment:
    """Days first_day..last_day (inclusive) at one base and one rate; amount unrounded."""

    first_day: date
    last_day: date
    days: int
    base: Decimal
    annual_rate: Decimal  # percent
    period: RatePeriod  # the table row the rate comes from
    amount: Decimal  # full precision: rounding happens once, on the total


@dataclass(frozen=True, slots=True)
class InterestQuote:
    jurisdiction: str
    currency: str
    b2c: bool
    total: Decimal  # rounded half-up to the currency's minor unit
    exact_total: Decimal  # the unrounded sum of the segments
    segments: tuple[InterestSegment, ...]
    reason: str


def _label(table: RateTable, period: RatePeriod, b2c: bool) -> str:
    margin = period.margin_b2c if b2c else period.margin_b2b
    assert margin is not None
    who = "consumer" if b2c else "B2B"
    return (f"{_percent(period.reference_rate + margin)} % p.a. ({table.jurisdiction} {who}:"
            f" {table.reference_rate_name} {_percent(period.reference_rate)} %"
            f" + {_points(margin)})")


def statutory_interest(jurisdiction: str, principal_events: PrincipalEvents, due_date: date,
                       as_of: date, *, b2c: bool = False, allow_unverified: bool = False,
                       tables: Mapping[str, RateTable] | None = None) -> InterestQuote:
    """Simple statutory interest from the day after `due_date` up to and including `as_of`.

    Refuses (RateNotCovered / RateUnverified) for any day with a balance and no usable row;
    days with nothing owed need no rate. Consumers under a business-only law: NotApplicable.
    """
    table = rate_table(jurisdiction, tables)
    if b2c and table.b2b_only:
        raise NotApplicable(f"{table.jurisdiction}: {table.b2b_only_reason}; no statutory"
                            " interest for a consumer debt")
    currency = principal_events.currency
    segments: list[InterestSegment] = []
    first, last = due_date + timedelta(days=1), as_of
    with localcontext(DECIMAL_CONTEXT):
        for run_first, run_last, base in outstanding_runs(
                principal_events.amount, principal_events.payments, first, last):
            if base <= 0:
                continue
            for seg_first, seg_last, period in table.rate_periods(
                    run_first, run_last, allow_unverified=allow_unverified):
                rate = period.annual_rate(b2c)
                days = (seg_last - seg_first).days + 1
                segments.append(InterestSegment(
                    first_day=seg_first, last_day=seg_last, days=days, base=base,
                    annual_rate=rate, period=period,
                    amount=base * rate * days / (HUNDRED * DAYS_PER_YEAR)))
        exact = sum((s.amount for s in segments), ZERO)
    total = round_money(exact, currency)
    if segments:
        parts = "; ".join(
            f"{_label(table, s.period, b2c)} on {format_money(s.base, currency)} for"
            f" {s.days} day{'s' if s.days != 1 else ''} ({s.first_day}..{s.last_day})"
            for s in segments)
        reason = f"Interest {parts} = {format_money(total, currency)}"
    else:
        reason = f"No {table.jurisdiction} statutory interest: nothing overdue by {as_of}"
    return InterestQuote(jurisdiction=table.jurisdiction, currency=currency, b2c=b2c,
                         total=total, exact_total=exact, segments=tuple(segments),
                         reason=reason)


# ----------------------------------------------------------------------------- compensation


@dataclass(frozen=True, slots=True)
class Compensation:
    """The fixed sum the law gives for a late debt, in the currency it was asked for."""

    jurisdiction: str
    amount: Decimal  # in `currency`, rounded half-up to its minor unit
    currency: str
    statutory_amount: Decimal  # as the law states it, in statutory_currency
    statutory_currency: str
    fx_rate: Decimal | None  # statutory_currency -> currency, when converted
    band: str
    source: str
    unverified: bool
    reason: str


def _convert(amount: Decimal, source: str, target: str, fx: FxRates | None,
             why: str) -> tuple[Decimal, Decimal | None]:
    """amount in `target`, and the rate used (None when no conversion was needed)."""
    if source == target:
        return amount, None
    rate = None if fx is None else fx.get((source, target))
    if rate is not None:
        converted, used = amount * rate, rate
    else:
        inverse = None if fx is None else fx.get((target, source))
        if inverse is None:
            raise FxRateRequired(f"{why}: pass fx={{({source!r}, {target!r}): rate}} (the"
                                 f" {source}/{target} rate; no rate is guessed)",
                                 why=why, source=source, target=target)
        converted, used = amount / inverse, 1 / inverse
    if not used.is_finite() or used <= 0:
        raise FxRateRequired(f"{why}: the {source}/{target} rate must be above 0")
    return converted, used


def statutory_compensation(jurisdiction: str, debt_amount: Decimal, currency: str,
                           due_date: date, *, b2c: bool = False, fx: FxRates | None = None,
                           in_currency: str | None = None,
                           allow_unverified: bool = False,
                           tables: Mapping[str, RateTable] | None = None
                           ) -> Compensation | None:
    """The fixed compensation for a late debt; None when there is no debt or no such sum.

    The band is chosen on the debt in the law's threshold currency, so a debt in another
    currency needs its rate in `fx`. The result is in `in_currency` (default: the law's own
    currency, e.g. EUR in Poland); asking for another currency also needs its rate. For PL the
    rate is the NBP EUR/PLN rate of the last working day of the month before the due date; the
    caller looks it up, since it depends on the day and we do not fetch it.
    """
    table = rate_table(jurisdiction, tables)
    scheme = table.compensation
    if scheme is None or debt_amount <= 0:
        return None
    if b2c and scheme.b2b_only:
        raise NotApplicable(f"{table.jurisdiction}: {scheme.b2b_only_reason}; no compensation"
                            " for a consumer debt")
    day = due_date + timedelta(days=1)  # the first day of default
    period = next((p for p in scheme.periods if p.covers(day)), None)
    if period is None:
        raise RateNotCovered(
            f"No {table.jurisdiction} compensation amount for {day} (a debt due {due_date}):"
            f" add a compensation row for {day.year}-01-01..{day.year}-12-31 to"
            f" {table.origin}.", jurisdiction=table.jurisdiction,
            start=date(day.year, 1, 1), end=date(day.year, 12, 31), figure="compensation")
    if period.unverified and not allow_unverified:
        raise RateUnverified(
            f"The {table.jurisdiction} compensation for {day} is unverified ({period.source}):"
            f' confirm it and set "unverified": false in {table.origin}, or pass'
            " allow_unverified=True.", jurisdiction=table.jurisdiction,
            start=period.effective_from or day, end=period.effective_to or day,
            figure="compensation", source=period.source)
    with localcontext(DECIMAL_CONTEXT):
        threshold_currency = scheme.threshold_currency or currency
        measured = debt_amount
        if len(period.bands) > 1:
            measured, _ = _convert(
                debt_amount, currency, threshold_currency, fx,
                f"{table.jurisdiction} compensation bands are in {threshold_currency} and the"
                f" debt is in {currency}")
        index = next(n for n, b in enumerate(period.bands) if b.holds(measured))
        band = period.bands[index]
        target = in_currency or scheme.currency
        converted, rate = _convert(
            band.amount, scheme.currency, target, fx,
            f"{table.jurisdiction} compensation is {format_money(band.amount, scheme.currency)}"
            f" and was asked for in {target}")
    amount = round_money(converted, target)
    described = _describe_band(period.bands, index, scheme.threshold_currency)
    reason = (f"{table.jurisdiction} statutory compensation"
              f" {format_money(band.amount, scheme.currency)}"
              f" ({described}; debt"
              f" {format_money(debt_amount, currency)})")
    if rate is not None:
        reason += f" = {format_money(amount, target)} at {scheme.currency}/{target} {rate}"
    return Compensation(
        jurisdiction=table.jurisdiction, amount=amount, currency=target,
        statutory_amount=band.amount, statutory_currency=scheme.currency, fx_rate=rate,
        band=described, source=period.source,
        unverified=period.unverified, reason=reason)


def reminder_fee_cap(jurisdiction: str, on: date, *, allow_unverified: bool = False,
                     tables: Mapping[str, RateTable] | None = None) -> tuple[Decimal, str]:
    """The legal maximum of a reminder fee sent on `on`, and its currency (Norway's purregebyr).
    """
    table = rate_table(jurisdiction, tables)
    row = next((c for c in table.reminder_fee_caps if c.covers(on)), None)
    if row is None:
        raise RateNotCovered(
            f"No {table.jurisdiction} reminder-fee maximum for {on}: add a reminder_fee_caps"
            f" row for {on.year}-01-01..{on.year}-12-31 to {table.origin}.",
            jurisdiction=table.jurisdiction, start=date(on.year, 1, 1),
            end=date(on.year, 12, 31), figure="reminder_fee_cap")
    if row.unverified and not allow_unverified:
        raise RateUnverified(
            f"The {table.jurisdiction} reminder-fee maximum for {on} is unverified"
            f' ({row.source}): confirm it and set "unverified": false in {table.origin}, or'
            " pass allow_unverified=True.", jurisdiction=table.jurisdiction,
            start=row.effective_from or on, end=row.effective_to or on,
            figure="reminder_fee_cap", source=row.source)
    return row.amount, table.currency
