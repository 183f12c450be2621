"""The statutory-interest calculator on the organisation's pages: the figures of `dunwell fees
quote` (app/fees_cli.py), from the rate tables as this organisation's planning reads them (its
owners' confirmations applied), told in the reader's language. A refusal is explained in plain
words: a period whose rate is not confirmed names the period and how an owner or admin confirms
it in Dunwell, never a file or a command-line option (those are for `dunwell rates status`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from flask_babel import gettext as _
from sqlalchemy.orm import Session

from app.events import statutory_refusal
from app.fees_cli import LARGEST_AMOUNT_DIGITS, Quote, compute
from app.formatting import day
from app.setup import rates
from collect.book import rate_tables_for
from rules.statutory import (
    FxRateRequired,
    NotApplicable,
    PrincipalEvents,
    RateNotCovered,
    RateUnverified,
    minor_unit_digits,
    refusal_facts,
)
from store.models import Organisation


@dataclass(frozen=True)
class Asked:
    """The calculator's form as the reader filled it in (text, shown back as it was)."""

    jurisdiction: str
    amount: str
    currency: str
    due: str
    as_of: str
    b2c: bool

    @classmethod
    def from_args(cls, args: Mapping[str, str], org: Organisation) -> Asked:
        return cls(jurisdiction=args.get("jurisdiction", org.country),
                   amount=args.get("amount", ""),
                   currency=args.get("currency", org.base_currency),
                   due=args.get("due", ""), as_of=args.get("as_of", ""),
                   b2c=args.get("b2c") == "on")

    @property
    def complete(self) -> bool:
        return bool(self.jurisdiction and self.amount and self.currency and self.due
                    and self.as_of)


@dataclass(frozen=True)
class Answer:
    quote: Quote | None = None
    compensation_note: str | None = None  # why there is no fixed compensation
    refusal: str | None = None


def _no_compensation(q: Quote, org: Organisation) -> str | None:
    """Why there is no fixed compensation, in the reader's language."""
    if q.compensation is not None:
        return None
    scheme = q.table.compensation
    if scheme is None:
        return _("%(jurisdiction)s law gives no fixed compensation.",
                 jurisdiction=q.table.jurisdiction)
    if q.b2c and scheme.b2b_only:
        return _("%(jurisdiction)s law gives no fixed compensation on a consumer's debt.",
                 jurisdiction=q.table.jurisdiction)
    return _("The debt is not late on %(day)s, so there is no compensation.",
             day=day(q.as_of, org))


class Refused(ValueError):
    """Bad input, in the reader's language."""


def _amount(text: str, currency: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise Refused(_("Enter the amount as digits, like 10000 or 2500.50, without thousands"
                        " separators.")) from None
    if not value.is_finite() or value <= 0:
        raise Refused(_("Enter an amount above 0."))
    if value.adjusted() >= LARGEST_AMOUNT_DIGITS:
        raise Refused(_("That amount is too large to be a debt."))
    digits = minor_unit_digits(currency)
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > digits:
        raise Refused(_("An amount in %(currency)s has at most %(digits)s decimals.",
                        currency=currency, digits=digits))
    return value.quantize(Decimal(1).scaleb(-digits))


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise Refused(_("Enter the dates as full dates, such as 2026-03-31.")) from None


def explain(exc: Exception, asked_b2c: bool, org: Organisation) -> str:
    """A refusal of rules/statutory.py in the reader's language, without files or options:
    worded as the activity log words it (app/events.statutory_refusal), but for what only the
    calculator's reader can do about it."""
    facts = refusal_facts(exc)
    if facts["code"] in ("rate_missing", "rate_unverified", "no_rates"):
        return statutory_refusal(facts, org)
    if isinstance(exc, FxRateRequired):
        return _("The compensation depends on the debt in %(target)s, and the calculator does"
                 " not guess the %(source)s/%(target)s exchange rate: enter the debt in"
                 " %(target)s.", source=exc.source, target=exc.target)
    if isinstance(exc, NotApplicable) and asked_b2c:
        return _("This law gives statutory interest and compensation on business debts"
                 " only, not on a consumer's debt.")
    return _("The law's tables cannot answer this.")


def calculate(session: Session, org: Organisation, asked: Asked, now: datetime) -> Answer:
    """The quote, or why there is none."""
    jurisdiction = asked.jurisdiction.strip().upper()
    currency = asked.currency.strip().upper()
    try:
        if len(currency) != 3 or not currency.isalpha():
            raise Refused(_("Give a three-letter currency code, such as GBP."))
        debt = PrincipalEvents(_amount(asked.amount, currency), currency, ())
        due, as_of = _day(asked.due), _day(asked.as_of)
    except Refused as bad_input:
        return Answer(refusal=str(bad_input))
    try:
        found = compute(jurisdiction, debt, due, as_of, b2c=asked.b2c, fx={},
                        allow_unverified=False, tables=rate_tables_for(session, org))
    except (RateNotCovered, NotApplicable, FxRateRequired) as exc:
        return Answer(refusal=_refusal(session, org, exc, asked.b2c, now))
    return Answer(quote=found, compensation_note=_no_compensation(found, org))


def _refusal(session: Session, org: Organisation, exc: Exception, b2c: bool,
             now: datetime) -> str:
    """Why, and for a period waiting for a decision, where an owner or admin makes it."""
    message = explain(exc, b2c, org)
    if isinstance(exc, RateNotCovered) and any(
            (c.jurisdiction, c.start) == (exc.jurisdiction, exc.start)
            for c in rates.rate_checks(session, org, now)):
        return message + " " + _("An owner or admin can confirm the rate, or choose the last"
                                 " verified rate, in the notice above.")
    if isinstance(exc, RateUnverified) and exc.figure == "interest":
        return message + " " + _("Once your policy charges %(jurisdiction)s statutory"
                                 " interest, an owner or admin confirms the rate in Dunwell's"
                                 " notice on the settings page, or chooses the last verified"
                                 " rate.", jurisdiction=exc.jurisdiction)
    return message

