"""Late fees and interest an owner's policy adds to overdue invoices.

Rules are pydantic models, validated once when the policy is read; `due_fees` then works on
plain Decimals and dates, so computing one invoice costs microseconds.

Every charge belongs to a numbered period and carries a key that is stable forever,
`{org_id}:{invoice_id}:fee:{rule_id}:{period}`: the ledger holds it once, and a period whose key
is already in `charged` is never offered again. For that to be safe a period's figure must
never change after it could first be charged, so `due_fees` only reads days before `as_of`
(`as_of` is today, and a payment dated today may still arrive):

- The grace ends at the end of due_date + grace_days; day S = due_date + grace_days + 1 is the
  first day anything can be charged, and interest accrues from S (not from the due date: a
  grace period is a promise that paying within it costs nothing).
- One-off fees (flat, percentage, compensation) are period 0, charged from day S on the balance
  left at the end of day S - 1.
- Repeating fees (recurring_percentage, reminder_fee) charge period K on day S + K*N, on the
  balance left at the end of the day before.
- Interest (daily_interest, statutory_interest) for period K covers the days
  [S + K*N, S + (K+1)*N), and is charged only once the period has ended, from day
  S + (K+1)*N: whole periods only, so a figure never changes after it is charged. An invoice
  paid in full mid-period is no longer open, and its last partial period is not charged.
- Interest is simple, actual/365, on the unpaid balance of each day; a payment reduces the base
  from its own date (see rules/statutory.py, which the statutory kinds use directly).
- Days inside a hold (chasing paused by a collector, or the invoice in dispute: the invoice's
  `holds`) do not count: the rule's clock stops on them (`FeeDays`). The grace, the periods
  and their charge days are counted in days outside every hold, so no interest accrues for a
  held day, no fee falls due on one, and a period a hold interrupted goes on from the day the
  hold ended (the day chasing resumed), not charged at once. A hold is only ever added or
  ended from its own day on, so the days before today, and with them every figure that could
  already be charged, never change.
- Each charge is rounded half-up to the currency's minor unit, then raised to `minimum` (only
  when there is something to charge, and never above a reminder fee's legal_cap), lowered to
  `maximum` (rounded down: a limit, like the cap; a maximum that leaves nothing charges
  nothing), and lowered to fit `cap_percent_of_principal` of the principal (rounded down)
  across every charge of the rule, the ledger's included; once the cap is reached the rule
  charges nothing more.

Amounts in a rule (flat amount, minimum, maximum) are in the rule's `currency`; a rule without
one takes them in the invoice's currency, and a rule with one leaves invoices in other
currencies alone (a fixed amount does not convert itself).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, localcontext
from itertools import pairwise
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from rules.invoice import Hold, InvoiceStatus
from rules.statutory import (
    DECIMAL_CONTEXT,
    FxRates,
    PrincipalEvents,
    RateTable,
    floor_money,
    format_money,
    outstanding_runs,
    rate_table,
    reminder_fee_cap,
    round_money,
    statutory_compensation,
    statutory_interest,
)
from rules.validation import PolicyError, StrictBool, StrictInt, describe

__all__ = [
    "ChargedFee",
    "DailyInterestRule",
    "FeeCharge",
    "FeeDays",
    "FeeInvoice",
    "FlatFeeRule",
    "LateFeeRule",
    "PercentageFeeRule",
    "RecurringPercentageFeeRule",
    "ReminderFeeRule",
    "StatutoryCompensationRule",
    "StatutoryInterestRule",
    "charge_day",
    "due_fees",
    "fee_key",
    "fee_rule_from_json",
    "norwegian_reminder_fees",
]

MAX_GRACE_DAYS = 365
MAX_PERIOD_DAYS = 366
HUNDRED = Decimal(100)
INTEREST_DIVISOR = Decimal(36500)  # percent, actual/365
ZERO = Decimal(0)
RULE_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def _exact(value: Any) -> Any:
    # A float is already inexact; "0.10" must stay 0.10 on the way to somebody's invoice.
    if isinstance(value, float | bool):
        raise ValueError("give amounts and rates as strings ('12.50') or integers, not"
                         f" {type(value).__name__}s")
    return value


def _printable(value: str) -> str:
    if not value.isprintable():
        raise ValueError("must not contain control characters")
    return value


ExactDecimal = Annotated[Decimal, BeforeValidator(_exact), Field(allow_inf_nan=False)]
Amount = Annotated[ExactDecimal, Field(ge=0, max_digits=18, decimal_places=4)]
Percent = Annotated[ExactDecimal, Field(gt=0, le=100, decimal_places=6)]
CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
Jurisdiction = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
# Where the fee is booked (account code, tax rate, item): the provider checks them; we only
# keep out what could never be one.
BookingText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                               max_length=100),
                        AfterValidator(_printable)]
Placement = Literal["line", "separate_invoice", "statement_invoice"]
PeriodDays = Annotated[StrictInt, Field(ge=1, le=MAX_PERIOD_DAYS)]
MaxCharges = Annotated[StrictInt, Field(ge=1, le=1000)]


class _LateFeeRuleBase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    grace_days: StrictInt = Field(default=0, ge=0, le=MAX_GRACE_DAYS)
    minimum: Amount | None = None
    maximum: Amount | None = None
    cap_percent_of_principal: Percent | None = None
    business_contacts_only: StrictBool = False
    currency: CurrencyCode | None = None
    account_code: BookingText | None = None
    tax_rate: BookingText | None = None
    item: BookingText | None = None
    # statement_invoice: one fee invoice per contact per statement period (see engine)
    placement: Placement = "line"

    @model_validator(mode="after")
    def _minimum_below_maximum(self) -> _LateFeeRuleBase:
        if (self.minimum is not None and self.maximum is not None
                and self.minimum > self.maximum):
            raise ValueError(f"minimum {self.minimum} is above maximum {self.maximum}")
        return self


class FlatFeeRule(_LateFeeRuleBase):
    """A fixed amount, once."""

    kind: Literal["flat"] = "flat"
    amount: Annotated[Amount, Field(gt=0)]


class PercentageFeeRule(_LateFeeRuleBase):
    """A percentage of the balance left when the grace ends, once."""

    kind: Literal["percentage"] = "percentage"
    percent: Percent


class RecurringPercentageFeeRule(_LateFeeRuleBase):
    """A percentage of the balance, again every period_days while it stays unpaid."""

    kind: Literal["recurring_percentage"] = "recurring_percentage"
    percent: Percent
    period_days: PeriodDays = 30
    max_charges: MaxCharges | None = None


class DailyInterestRule(_LateFeeRuleBase):
    """Simple interest at an agreed annual rate, charged per whole period."""

    kind: Literal["daily_interest"] = "daily_interest"
    annual_rate_percent: Percent
    period_days: PeriodDays = 30
    max_charges: MaxCharges | None = None


class StatutoryInterestRule(_LateFeeRuleBase):
    """The interest the law gives (rules/statutory.py), charged per whole period.

    Consumers get the consumer rate where the law has one, and nothing where the law is for
    business debts only; `business_contacts_only` leaves consumers out everywhere.
    """

    kind: Literal["statutory_interest"] = "statutory_interest"
    jurisdiction: Jurisdiction
    period_days: PeriodDays = 30
    max_charges: MaxCharges | None = None
    allow_unverified: StrictBool = False


class StatutoryCompensationRule(_LateFeeRuleBase):
    """The fixed recovery compensation the law gives (GB £40-£100, EU €40...), once."""

    kind: Literal["statutory_compensation"] = "statutory_compensation"
    jurisdiction: Jurisdiction
    allow_unverified: StrictBool = False


class ReminderFeeRule(_LateFeeRuleBase):
    """A fee that goes with a reminder, every period_days, at most max_charges times.

    With `legal_cap` the fee never exceeds the maximum the law allows on the day it is charged
    (Norway's purregebyr, dated in rules/rates/no.json); without an `amount` it is that maximum.
    The reminder itself is the ladder's business (rules/reminders.py): this rule says when a fee
    may go with one.
    """

    kind: Literal["reminder_fee"] = "reminder_fee"
    amount: Annotated[Amount, Field(gt=0)] | None = None
    legal_cap: Jurisdiction | None = None
    period_days: PeriodDays = 14
    max_charges: MaxCharges | None = None
    allow_unverified: StrictBool = False

    @model_validator(mode="after")
    def _amount_or_cap(self) -> ReminderFeeRule:
        if self.amount is None and self.legal_cap is None:
            raise ValueError("give an amount, a legal_cap, or both")
        if self.legal_cap is not None and self.currency is None:
            raise ValueError("a legal_cap is in one currency: set currency to it (NOK for NO)")
        return self


LateFeeRule = Annotated[
    FlatFeeRule | PercentageFeeRule | RecurringPercentageFeeRule | DailyInterestRule
    | StatutoryInterestRule | StatutoryCompensationRule | ReminderFeeRule,
    Field(discriminator="kind"),
]
_RULE = TypeAdapter(LateFeeRule)


def fee_rule_from_json(data: Mapping[str, Any]) -> LateFeeRule:
    """Read one stored or submitted rule; every problem becomes one PolicyError naming fields."""
    try:
        return _RULE.validate_python(data)
    except ValidationError as exc:
        raise PolicyError(describe(exc, "rule")) from exc


def norwegian_reminder_fees(amount: Decimal | None = None) -> tuple[ReminderFeeRule, ...]:
    """Purregebyr: at most two fee-bearing reminders, 14 days apart, capped by the dated maximum.

    The first may go no earlier than 14 days after the due date; with grace_days=14 it falls on
    due date + 15, a day later than the earliest reading, so no way of counting makes it early.
    Fourteen days between fees also gives each reminder the 14 days to pay the law asks for.
    """
    return (ReminderFeeRule(amount=amount, legal_cap="NO", currency="NOK", grace_days=14,
                            period_days=14, max_charges=2),)


# ----------------------------------------------------------------------------- computation


@dataclass(frozen=True, slots=True)
class FeeInvoice:
    """What fee rules need to know about one invoice, as the database holds it."""

    org_id: int
    invoice_id: int
    currency: str
    principal: Decimal  # the invoice total before any late fee: fees are never charged on fees
    due_date: date
    payments: tuple[tuple[date, Decimal], ...] = ()  # (payment date, amount), any order
    is_business: bool = True
    status: InvoiceStatus = "open"
    holds: tuple[Hold, ...] = ()  # paused or disputed days: nothing accrues on them


class FeeDays:
    """The days a fee rule counts for one invoice: every day after the due date but those
    inside a hold. A rule's schedule (grace, periods) is laid out in counted days, as if the
    held days were not there; `day` turns a position on that schedule back into the calendar
    day it falls on."""

    __slots__ = ("holds",)

    def __init__(self, after: date, holds: Sequence[Hold]) -> None:
        merged: list[tuple[date, date | None]] = []
        for hold in sorted(holds, key=lambda h: h.start):
            start = max(hold.start, after + timedelta(days=1))
            end = hold.end
            if end is not None and end <= start:
                continue  # ended before the due date, or the day it began
            if merged and (merged[-1][1] is None or start <= merged[-1][1]):
                last_start, last_end = merged[-1]
                merged[-1] = (last_start, None if end is None or last_end is None
                              else max(last_end, end))
                continue
            merged.append((start, end))
        self.holds = tuple(merged)

    def day(self, counted: date) -> date | None:
        """The calendar day of the schedule's day `counted` (the day it would be with no
        hold), moved on past every hold before it: always a day outside the holds. None:
        it falls in a hold that has not ended."""
        day = counted
        for start, end in self.holds:
            if start > day:
                break
            if end is None:
                return None
            day += end - start
        return day

    def reached(self, as_of: date) -> date:
        """The latest schedule day whose calendar day is as_of or earlier."""
        held = 0
        for start, end in self.holds:
            if start > as_of:
                break
            last = as_of if end is None else min(as_of, end - timedelta(days=1))
            held += (last - start).days + 1
        return as_of - timedelta(days=held)

    def runs(self, first: date, last: date) -> list[tuple[date, date]]:
        """first..last (calendar days, both inclusive) without the held days, as runs."""
        runs: list[tuple[date, date]] = []
        for start, end in self.holds:
            if first > last:
                break
            if end is not None and end <= first:
                continue
            if start > last:
                break
            if start > first:
                runs.append((first, start - timedelta(days=1)))
            if end is None:
                return runs
            first = end
        if first <= last:
            runs.append((first, last))
        return runs


@dataclass(frozen=True, slots=True)
class ChargedFee:
    """A charge the ledger already holds for the invoice (in any state)."""

    key: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class FeeCharge:
    """A charge to write to the ledger; its key makes writing it twice a no-op."""

    key: str
    rule_id: str
    kind: Literal["fee", "interest", "compensation"]
    amount: Decimal  # rounded half-up to the currency's minor unit
    currency: str
    period: int
    period_start: date  # first day counted (for a fee: the day it became due)
    period_end: date  # last day counted, inclusive
    reason: str
    placement: Placement
    account_code: str | None
    tax_rate: str | None
    item: str | None


def fee_key(org_id: int, invoice_id: int, rule_id: str, period: int) -> str:
    """Stable forever: the ledger's uniqueness and the provider's idempotency rest on it."""
    return f"{org_id}:{invoice_id}:fee:{rule_id}:{period}"


def _balance_at_end_of(invoice: FeeInvoice, day: date) -> Decimal:
    paid = sum((amount for when, amount in invoice.payments if when <= day), ZERO)
    return max(invoice.principal - paid, ZERO)


def _pct(value: Decimal) -> str:
    return f"{value.normalize():f}"


def _grace(invoice: FeeInvoice, grace_days: int) -> str:
    if grace_days == 0:
        return f"unpaid after the due date {invoice.due_date}"
    return f"unpaid {grace_days} days after the due date {invoice.due_date}"


# A period's exact amount and its reason; None: nothing to charge for it.
_Figure = tuple[Decimal, str] | None


def _periods_due(rule: LateFeeRule, start: date, as_of: date) -> tuple[int, int, bool]:
    """How many periods are due by as_of, their length, and whether they are interest."""
    elapsed = (as_of - start).days
    if elapsed < 0:
        return 0, 1, False
    if isinstance(rule, FlatFeeRule | PercentageFeeRule | StatutoryCompensationRule):
        return 1, 1, False
    if isinstance(rule, RecurringPercentageFeeRule | ReminderFeeRule):
        count, interest = elapsed // rule.period_days + 1, False
    else:
        count, interest = elapsed // rule.period_days, True
    if rule.max_charges is not None:
        count = min(count, rule.max_charges)
    return count, rule.period_days, interest


def _not_counted(first: date, last: date, counted: Sequence[tuple[date, date]]) -> str:
    """The reason's note of the held days inside first..last, if there are any."""
    held = (last - first).days + 1 - sum((b - a).days + 1 for a, b in counted)
    if not held:
        return ""
    gaps = [(a + timedelta(days=1), b - timedelta(days=1))
            for (_, a), (b, _) in pairwise(counted)]
    where = ", ".join(f"{a}..{b}" for a, b in gaps)
    return f"; {held} day{'s' if held != 1 else ''} paused or in dispute not counted ({where})"


def _figure(rule: LateFeeRule, invoice: FeeInvoice, period: int, first: date, last: date,
            tables: Mapping[str, RateTable] | None, fx: FxRates | None,
            days: FeeDays | None = None) -> _Figure:
    currency = invoice.currency
    counted = [(first, last)] if days is None else days.runs(first, last)
    if isinstance(rule, DailyInterestRule):
        exact = ZERO
        for counted_first, counted_last in counted:
            for run_first, run_last, base in outstanding_runs(
                    invoice.principal, invoice.payments, counted_first, counted_last):
                exact += base * rule.annual_rate_percent * ((run_last - run_first).days + 1)
        exact /= INTEREST_DIVISOR
        number = sum((b - a).days + 1 for a, b in counted)
        return exact, (
            f"Interest {_pct(rule.annual_rate_percent)} % p.a. on the unpaid balance"
            f" ({format_money(_balance_at_end_of(invoice, last), currency)} at the end) for"
            f" {number} days ({first}..{last}){_not_counted(first, last, counted)}")
    if isinstance(rule, StatutoryInterestRule):
        quotes = [statutory_interest(
            rule.jurisdiction, PrincipalEvents(invoice.principal, currency, invoice.payments),
            counted_first - timedelta(days=1), counted_last, b2c=not invoice.is_business,
            allow_unverified=rule.allow_unverified, tables=tables)
            for counted_first, counted_last in counted]
        if len(quotes) == 1:
            return quotes[0].exact_total, quotes[0].reason
        return sum((q.exact_total for q in quotes), ZERO), (
            "; ".join(q.reason for q in quotes) + _not_counted(first, last, counted))
    # Fees: on the balance left at the end of the day before the fee falls due.
    balance = _balance_at_end_of(invoice, first - timedelta(days=1))
    if balance <= 0:
        return None
    if isinstance(rule, FlatFeeRule):
        return rule.amount, (f"Late fee {format_money(rule.amount, currency)}:"
                             f" {_grace(invoice, rule.grace_days)}")
    if isinstance(rule, PercentageFeeRule | RecurringPercentageFeeRule):
        which = "" if isinstance(rule, PercentageFeeRule) else f", period {period + 1}"
        return balance * rule.percent / HUNDRED, (
            f"Late fee {_pct(rule.percent)} % of the overdue balance"
            f" {format_money(balance, currency)}{which}: {_grace(invoice, rule.grace_days)}")
    if isinstance(rule, StatutoryCompensationRule):
        compensation = statutory_compensation(
            rule.jurisdiction, invoice.principal, currency, invoice.due_date,
            b2c=not invoice.is_business, fx=fx, in_currency=currency,
            allow_unverified=rule.allow_unverified, tables=tables)
        return None if compensation is None else (compensation.amount, compensation.reason)
    # ReminderFeeRule
    amount, note = rule.amount, ""
    if rule.legal_cap is not None:
        cap, cap_currency = reminder_fee_cap(rule.legal_cap, first,
                                             allow_unverified=rule.allow_unverified,
                                             tables=tables)
        if cap_currency != currency:
            raise PolicyError(f"the {rule.legal_cap} reminder-fee maximum is in {cap_currency},"
                              f" not {currency}: set the rule's currency to {cap_currency}")
        if amount is None or amount > cap:
            amount, note = cap, f", the {rule.legal_cap} legal maximum on {first}"
    assert amount is not None
    count = f" of {rule.max_charges}" if rule.max_charges is not None else ""
    return amount, (f"Reminder fee {format_money(amount, currency)} (fee-bearing reminder"
                    f" {period + 1}{count}{note}): {_grace(invoice, rule.grace_days)}")


def _kind(rule: LateFeeRule) -> Literal["fee", "interest", "compensation"]:
    if isinstance(rule, DailyInterestRule | StatutoryInterestRule):
        return "interest"
    if isinstance(rule, StatutoryCompensationRule):
        return "compensation"
    return "fee"


def _law_gives_nothing(rule: LateFeeRule, invoice: FeeInvoice,
                       tables: Mapping[str, RateTable] | None) -> bool:
    """A consumer under a business-only law: statutory interest or compensation is nil."""
    if invoice.is_business:
        return False
    if isinstance(rule, StatutoryInterestRule):
        return rate_table(rule.jurisdiction, tables).b2b_only
    if isinstance(rule, StatutoryCompensationRule):
        scheme = rate_table(rule.jurisdiction, tables).compensation
        return scheme is None or scheme.b2b_only
    return False


def charge_day(rule: LateFeeRule, invoice: FeeInvoice, period: int) -> date | None:
    """The calendar day the rule's `period` becomes chargeable (a fee on its day, interest
    on the day after its period ends), past the invoice's holds; None: in a hold that has
    not ended."""
    start = invoice.due_date + timedelta(days=rule.grace_days + 1)
    if not isinstance(rule, FlatFeeRule | PercentageFeeRule | StatutoryCompensationRule):
        interest = isinstance(rule, DailyInterestRule | StatutoryInterestRule)
        start += timedelta(days=(period + 1 if interest else period) * rule.period_days)
    if not invoice.holds:
        return start
    return FeeDays(invoice.due_date, invoice.holds).day(start)


def due_fees(rule: LateFeeRule, invoice: FeeInvoice, charged: Sequence[ChargedFee],
             as_of: date, *, rule_id: str, tables: Mapping[str, RateTable] | None = None,
             fx: FxRates | None = None) -> list[FeeCharge]:
    """The charges of `rule` due on `as_of` that the ledger (`charged`) does not hold yet.

    Pure: the same arguments give the same charges. Refuses (RateNotCovered, FxRateRequired)
    rather than guess a statutory figure; `fx` is for compensation in another currency.
    """
    if not RULE_ID.fullmatch(rule_id):
        raise ValueError(f"rule_id {rule_id!r} must be 1 to 64 of A-Z, a-z, 0-9, '_', '.', '-'")
    if (invoice.status != "open"
            or (rule.business_contacts_only and not invoice.is_business)
            or (rule.currency is not None and rule.currency != invoice.currency)):
        return []
    start = invoice.due_date + timedelta(days=rule.grace_days + 1)
    days = FeeDays(invoice.due_date, invoice.holds) if invoice.holds else None
    count, length, interest = _periods_due(rule, start,
                                           as_of if days is None else days.reached(as_of))
    if count == 0 or _law_gives_nothing(rule, invoice, tables):
        return []

    prefix = fee_key(invoice.org_id, invoice.invoice_id, rule_id, 0)[:-1]
    done: set[int] = set()
    total = ZERO
    for past in charged:
        if past.key.startswith(prefix):
            total += past.amount
            tail = past.key[len(prefix):]
            if tail.isascii() and tail.isdigit():
                done.add(int(tail))
    if len(done) >= count and all(k in done for k in range(count)):
        return []

    currency = invoice.currency
    cap = None
    if rule.cap_percent_of_principal is not None:
        cap = floor_money(invoice.principal * rule.cap_percent_of_principal / HUNDRED, currency)
    minimum = None if rule.minimum is None else round_money(rule.minimum, currency)
    maximum = None if rule.maximum is None else floor_money(rule.maximum, currency)
    kind = _kind(rule)
    charges: list[FeeCharge] = []
    with localcontext(DECIMAL_CONTEXT):
        for period in range(count):
            if period in done:
                continue
            if cap is not None and total >= cap:
                break
            first = start + timedelta(days=period * length)
            last = first + timedelta(days=length - 1) if interest else first
            if days is not None:  # the schedule's days as calendar days, past the holds
                moved_first, moved_last = days.day(first), days.day(last)
                assert moved_first is not None and moved_last is not None  # due by as_of
                first, last = moved_first, moved_last
            figure = _figure(rule, invoice, period, first, last, tables, fx, days)
            if figure is None:
                continue
            amount = round_money(figure[0], currency)
            if amount <= 0:
                continue
            reason = figure[1]
            floor = minimum
            if (floor is not None and amount < floor and isinstance(rule, ReminderFeeRule)
                    and rule.legal_cap is not None):
                # A minimum never lifts a fee above what the law allows.
                floor = min(floor, floor_money(reminder_fee_cap(
                    rule.legal_cap, first, allow_unverified=rule.allow_unverified,
                    tables=tables)[0], currency))
            if floor is not None and amount < floor:
                to = "the minimum" if floor == minimum else "the legal maximum (below the minimum)"
                reason += f"; raised from {format_money(amount, currency)} to {to}"
                amount = floor
            if maximum is not None and amount > maximum:
                reason += f"; lowered from {format_money(amount, currency)} to the maximum"
                amount = maximum
                if amount <= 0:
                    continue
            if cap is not None and total + amount > cap:
                reason += (f"; lowered from {format_money(amount, currency)} to stay within"
                           f" {_pct(rule.cap_percent_of_principal or ZERO)} % of the principal"
                           f" ({format_money(cap, currency)} in all)")
                amount = cap - total
            total += amount
            charges.append(FeeCharge(
                key=prefix + str(period), rule_id=rule_id, kind=kind, amount=amount,
                currency=currency, period=period, period_start=first, period_end=last,
                reason=reason, placement=rule.placement, account_code=rule.account_code,
                tax_rate=rule.tax_rate, item=rule.item))
    return charges
