"""`dunwell fees quote`: what the law gives on one late debt, from the dated rate tables.

Statutory interest (each rate segment with its dates, days, rate and the table row it comes
from) and the fixed recovery compensation, computed by rules/statutory.py exactly as late-fee
rules charge them. Needs no app, database or network, so it answers before a policy uses a
jurisdiction, and it refuses in one line (exit status 2) where the tables cannot answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import click

from rules.statutory import (
    Compensation,
    FxRateRequired,
    FxRates,
    InterestQuote,
    NotApplicable,
    PrincipalEvents,
    RateNotCovered,
    RateTable,
    RateTableError,
    default_tables,
    format_money,
    load_tables,
    minor_unit_digits,
    rate_table,
    statutory_compensation,
    statutory_interest,
)

CURRENCY = re.compile(r"[A-Z]{3}")
FX = re.compile(r"([A-Za-z]{3})/([A-Za-z]{3})=(.+)")
# Far above any invoice; a figure this size is a typo, not a debt.
LARGEST_AMOUNT_DIGITS = 15


class QuoteRefused(click.ClickException):
    """One line on stderr ("Error: ..."), exit status 2: bad input or a figure the law's tables
    cannot give. Never a traceback."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


@dataclass(frozen=True, slots=True)
class Quote:
    table: RateTable
    debt: PrincipalEvents
    due: date
    as_of: date
    b2c: bool
    interest: InterestQuote
    compensation: Compensation | None
    compensation_note: str | None

    @property
    def total(self) -> Decimal | None:
        """Interest plus compensation, when both are in the debt's currency."""
        if self.compensation is None:
            return self.interest.total
        if self.compensation.currency != self.debt.currency:
            return None
        return self.interest.total + self.compensation.amount


# ----------------------------------------------------------------------------- input


def _amount(text: str, what: str, currency: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise QuoteRefused(f"{what} {text!r} is not an amount: write it like 10000 or"
                           " 2500.50 (no thousands separators)") from None
    if not value.is_finite() or value <= 0:
        raise QuoteRefused(f"{what} {text!r} must be an amount above 0")
    if value.adjusted() >= LARGEST_AMOUNT_DIGITS:
        raise QuoteRefused(f"{what} {text!r} is too large to be a debt")
    digits = minor_unit_digits(currency)
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > digits:
        raise QuoteRefused(f"{what} {text!r} has more decimals than {currency} has"
                           f" ({digits})")
    return value.quantize(Decimal(1).scaleb(-digits))


def _day(text: str, what: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise QuoteRefused(f"{what} {text!r} is not a date written as YYYY-MM-DD") from None


def _payment(text: str, currency: str) -> tuple[date, Decimal]:
    day, sep, amount = text.partition(":")
    if not sep:
        raise QuoteRefused(f"--paid {text!r} must be DATE:AMOUNT, such as 2026-02-01:2500.00")
    return _day(day, "--paid date"), _amount(amount, "--paid amount", currency)


def _fx(pairs: tuple[str, ...]) -> FxRates:
    rates: dict[tuple[str, str], Decimal] = {}
    for text in pairs:
        match = FX.fullmatch(text.strip())
        if match is None:
            raise QuoteRefused(f"--fx {text!r} must be BASE/QUOTE=RATE, such as"
                               " EUR/PLN=4.2692 (1 EUR = 4.2692 PLN)")
        base, quote = match.group(1).upper(), match.group(2).upper()
        rates[(base, quote)] = _positive_rate(match.group(3), text)
    return rates


def _positive_rate(text: str, option: str) -> Decimal:
    try:
        rate = Decimal(text.strip())
    except InvalidOperation:
        rate = Decimal(0)
    if not rate.is_finite() or rate <= 0:
        raise QuoteRefused(f"--fx {option!r}: the rate must be a number above 0")
    return rate


def _tables(rates_dir: Path | None) -> Mapping[str, RateTable]:
    """The shipped tables, with an operator's directory adding or replacing jurisdictions."""
    if rates_dir is None:
        return default_tables()
    return {**default_tables(), **load_tables(rates_dir)}


# ----------------------------------------------------------------------------- the quote


def _balance_after(debt: PrincipalEvents, day: date) -> Decimal:
    paid = sum((amount for when, amount in debt.payments if when <= day), Decimal(0))
    return debt.amount - paid


def _compensation(table: RateTable, debt: PrincipalEvents, due: date, as_of: date, b2c: bool,
                  fx: FxRates, allow_unverified: bool, tables: Mapping[str, RateTable]
                  ) -> tuple[Compensation | None, str | None]:
    """The fixed sum, or why there is none. As a late-fee rule charges it: on the debt's full
    amount, in the debt's currency when --fx gives the rate, else in the law's own."""
    scheme = table.compensation
    if scheme is None:
        return None, f"{table.jurisdiction} law gives no fixed compensation"
    if b2c and scheme.b2b_only:
        return None, f"none for a consumer debt: {scheme.b2b_only_reason}"
    if as_of <= due:
        return None, f"not late on {as_of}: due {due}"
    if _balance_after(debt, due) <= 0:
        return None, f"paid in full by the due date {due}"
    law = scheme.currency
    convert = (debt.currency, law) in fx or (law, debt.currency) in fx
    compensation = statutory_compensation(
        table.jurisdiction, debt.amount, debt.currency, due, b2c=b2c, fx=fx,
        in_currency=debt.currency if convert else None, allow_unverified=allow_unverified,
        tables=tables)
    return compensation, None


# rules/statutory.py words its advice for Python callers; here the same advice names options.
_ADVICE = (
    (re.compile(r"pass fx=\{\('(\w{3})', '(\w{3})'\): rate\}"), r"give --fx \1/\2=RATE"),
    (re.compile(r"pass allow_unverified=True"), "give --allow-unverified"),
    (re.compile(r"pass tables= with one"), "give --rates-dir with one"),
)


def _as_options(message: str) -> str:
    for pattern, advice in _ADVICE:
        message = pattern.sub(advice, message)
    return message


def compute(jurisdiction: str, debt: PrincipalEvents, due: date, as_of: date, *, b2c: bool,
            fx: FxRates, allow_unverified: bool, tables: Mapping[str, RateTable]) -> Quote:
    """Both figures; refuses with rules/statutory.py's own refusals (RateNotCovered,
    NotApplicable, FxRateRequired), which a page words for its reader."""
    table = rate_table(jurisdiction, tables)
    interest = statutory_interest(table.jurisdiction, debt, due, as_of, b2c=b2c,
                                  allow_unverified=allow_unverified, tables=tables)
    compensation, note = _compensation(table, debt, due, as_of, b2c, fx, allow_unverified,
                                       tables)
    return Quote(table=table, debt=debt, due=due, as_of=as_of, b2c=b2c, interest=interest,
                 compensation=compensation, compensation_note=note)


def quote(jurisdiction: str, debt: PrincipalEvents, due: date, as_of: date, *, b2c: bool,
          fx: FxRates, allow_unverified: bool, tables: Mapping[str, RateTable]) -> Quote:
    """Both figures, or QuoteRefused with the tables' own explanation (for the operator: the
    file to extend, the option to give)."""
    try:
        return compute(jurisdiction, debt, due, as_of, b2c=b2c, fx=fx,
                       allow_unverified=allow_unverified, tables=tables)
    except (RateNotCovered, NotApplicable, FxRateRequired) as exc:
        raise QuoteRefused(_as_options(str(exc))) from None


# ----------------------------------------------------------------------------- output


def _text(value: Decimal) -> str:
    return f"{value.normalize():f}"


def quote_to_json(q: Quote) -> dict[str, Any]:
    """Decimals as strings (exact), dates as ISO 8601."""
    table, debt = q.table, q.debt
    segments = []
    for s in q.interest.segments:
        margin = s.period.margin_b2c if q.b2c else s.period.margin_b2b
        segments.append({
            "from": s.first_day.isoformat(), "to": s.last_day.isoformat(), "days": s.days,
            "base": str(s.base), "annual_rate": _text(s.annual_rate),
            "reference_rate_name": table.reference_rate_name,
            "reference_rate": _text(s.period.reference_rate),
            "margin": None if margin is None else _text(margin),
            "rate_period": {"from": s.period.effective_from.isoformat(),
                            "to": s.period.effective_to.isoformat(),
                            "source": s.period.source, "unverified": s.period.unverified},
            "exact_amount": str(s.amount)})
    c = q.compensation
    total = q.total
    return {
        "jurisdiction": table.jurisdiction,
        "law": table.title,
        "b2c": q.b2c,
        "debt": {"amount": str(debt.amount), "currency": debt.currency,
                 "due": q.due.isoformat(),
                 "payments": [{"date": day.isoformat(), "amount": str(amount)}
                              for day, amount in sorted(debt.payments)]},
        "as_of": q.as_of.isoformat(),
        "interest": {"total": str(q.interest.total), "currency": debt.currency,
                     "exact_total": str(q.interest.exact_total), "day_count": table.day_count,
                     "segments": segments, "reason": q.interest.reason},
        "compensation": None if c is None else {
            "amount": str(c.amount), "currency": c.currency, "band": c.band,
            "statutory_amount": str(c.statutory_amount),
            "statutory_currency": c.statutory_currency,
            "fx_rate": None if c.fx_rate is None else str(c.fx_rate),
            "source": c.source, "unverified": c.unverified, "reason": c.reason},
        "compensation_note": q.compensation_note,
        "total": None if total is None else str(total),
    }


def quote_lines(q: Quote) -> list[str]:
    table, debt = q.table, q.debt
    who = "consumer debt" if q.b2c else "business debt"
    lines = [f"{table.jurisdiction} statutory interest ({table.title}), {who}",
             f"  {format_money(debt.amount, debt.currency)} due {q.due}, as of {q.as_of}"]
    lines += [f"  paid {format_money(amount, debt.currency)} on {day}"
              for day, amount in sorted(debt.payments)]
    sources: dict[tuple[date, date], str] = {}
    for s in q.interest.segments:
        p = s.period
        margin = (p.margin_b2c if q.b2c else p.margin_b2b) or Decimal(0)
        lines.append(
            f"  {s.first_day}..{s.last_day} {s.days:>4} days on"
            f" {format_money(s.base, debt.currency)} at {_text(s.annual_rate)} % p.a."
            f" ({table.reference_rate_name} {_text(p.reference_rate)} % + {_text(margin)},"
            f" rate of {p.effective_from}..{p.effective_to})"
            f"  {format_money(s.amount, debt.currency)}")
        flag = " [UNVERIFIED]" if p.unverified else ""
        sources[(p.effective_from, p.effective_to)] = f"{p.source}{flag}"
    if not q.interest.segments:
        lines.append(f"  {q.interest.reason}")
    lines += [f"  rate {start}..{end}: {source}" for (start, end), source in sources.items()]
    lines.append(f"interest: {format_money(q.interest.total, debt.currency)}"
                 " (actual/365, rounded once on the total)")
    c = q.compensation
    if c is None:
        lines.append(f"compensation: none ({q.compensation_note})")
    else:
        fx = "" if c.fx_rate is None else (
            f", {format_money(c.statutory_amount, c.statutory_currency)} at"
            f" {c.statutory_currency}/{c.currency} {_text(round(c.fx_rate, 8))}")
        flag = " [UNVERIFIED]" if c.unverified else ""
        lines.append(f"compensation: {format_money(c.amount, c.currency)} ({c.band}{fx})")
        lines.append(f"  {c.source}{flag}")
    total = q.total
    if total is not None:
        lines.append(f"total: {format_money(total, debt.currency)}")
    return lines


# ----------------------------------------------------------------------------- commands


@click.group("fees", help="Late fees and the law's figures.")
def fees_group() -> None:
    pass


@fees_group.command("quote")
@click.option("--jurisdiction", required=True, help="GB, EU, DE, PL, NO (rules/rates/*.json).")
@click.option("--amount", required=True, help="The debt, e.g. 10000 or 10000.00.")
@click.option("--currency", required=True, help="ISO 4217 code of the debt, e.g. GBP.")
@click.option("--due", required=True, help="Due date, YYYY-MM-DD.")
@click.option("--as-of", "as_of", required=True,
              help="Last day counted (inclusive), YYYY-MM-DD.")
@click.option("--b2c", is_flag=True, help="The debtor is a consumer.")
@click.option("--paid", "paid", multiple=True, metavar="DATE:AMOUNT",
              help="A payment (repeatable); it stops interest on its part from its date.")
@click.option("--fx", "fx", multiple=True, metavar="BASE/QUOTE=RATE",
              help="An exchange rate (repeatable) for compensation in another currency.")
@click.option("--allow-unverified", is_flag=True,
              help="Use table rows marked unverified (they are flagged in the output).")
@click.option("--rates-dir", type=click.Path(path_type=Path), default=None,
              help="A directory of rate files adding to or replacing the shipped ones.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def quote_command(jurisdiction: str, amount: str, currency: str, due: str, as_of: str,
                  b2c: bool, paid: tuple[str, ...], fx: tuple[str, ...],
                  allow_unverified: bool, rates_dir: Path | None, as_json: bool) -> None:
    """Statutory interest and fixed compensation on a late debt.

    Interest runs from the day after --due up to and including --as-of (actual/365), split at
    every payment and every change of rate; compensation is the fixed sum for the debt's band.
    """
    currency = currency.strip().upper()
    if not CURRENCY.fullmatch(currency):
        raise QuoteRefused(f"--currency {currency!r} is not an ISO 4217 code such as GBP")
    debt = PrincipalEvents(_amount(amount, "--amount", currency), currency,
                           tuple(_payment(text, currency) for text in paid))
    due_day, as_of_day = _day(due, "--due"), _day(as_of, "--as-of")
    try:
        tables = _tables(rates_dir)
    except RateTableError as exc:
        raise QuoteRefused(str(exc)) from None
    except OSError as exc:
        raise QuoteRefused(f"--rates-dir {str(rates_dir)!r}: {exc.strerror or exc}") from None
    result = quote(jurisdiction.strip().upper(), debt, due_day, as_of_day, b2c=b2c,
                   fx=_fx(fx), allow_unverified=allow_unverified, tables=tables)
    if as_json:
        click.echo(json.dumps(quote_to_json(result), indent=2))
        return
    for line in quote_lines(result):
        click.echo(line)
