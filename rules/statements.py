"""The monthly customer statement: every open item with its age, totals per currency, in the
customer's language, and when it is due to go.

A statement goes once per customer per calendar month (its key is `<org>:contact<id>:
statement:<YYYY-MM>`), from the moment the owner chose (day of month, local time) on; only a
customer with something open gets one. Amounts and dates are formatted by Babel for the
customer's locale before the template sees them, so a statement in several currencies reads
right in each. Shipped texts live in `rules/templates/statements/<language>.txt`, starting
with a `Subject:` line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from functools import cache
from pathlib import Path

from babel.dates import format_date
from babel.numbers import format_currency
from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from rules.actions import PlannedAction, contact_key
from rules.calendar import OrgCalendar
from rules.messages import LOCALES, RIGHT_TO_LEFT, Message, language_of
from rules.messages import _html as message_html

BUCKETS = ("current", "1-30", "31-60", "61-90", "90+")
TEMPLATE_DIR = Path(__file__).with_name("templates") / "statements"
ZERO = Decimal(0)


def aging_bucket(days_overdue: int) -> str:
    if days_overdue <= 0:
        return "current"
    if days_overdue <= 30:
        return "1-30"
    if days_overdue <= 60:
        return "31-60"
    if days_overdue <= 90:
        return "61-90"
    return "90+"


@dataclass(frozen=True, slots=True)
class OpenItem:
    number: str
    issue_date: date | None
    due_date: date
    amount_due: Decimal
    currency: str


@dataclass(frozen=True, slots=True)
class StatementLine:
    item: OpenItem
    days_overdue: int
    bucket: str


@dataclass(frozen=True, slots=True)
class Statement:
    contact_name: str
    business_name: str
    as_of: date
    language: str
    lines: tuple[StatementLine, ...]
    # currency -> bucket -> amount (every bucket present, zero where nothing is in it)
    aging: dict[str, dict[str, Decimal]] = field(default_factory=dict)
    payment_link: str | None = None

    @property
    def totals(self) -> dict[str, Decimal]:
        return {currency: sum(buckets.values(), ZERO)
                for currency, buckets in self.aging.items()}

    @property
    def period(self) -> str:
        return statement_period(self.as_of)


def statement_period(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def build_statement(contact_name: str, business_name: str, items: Iterable[OpenItem],
                    as_of: date, language: str | None = None,
                    payment_link: str | None = None) -> Statement:
    """Open items oldest due first, each aged on `as_of` (a date in the organisation's zone)."""
    lines = []
    aging: dict[str, dict[str, Decimal]] = {}
    for item in sorted(items, key=lambda i: (i.due_date, i.number)):
        if item.amount_due <= 0:
            continue
        days = (as_of - item.due_date).days
        bucket = aging_bucket(days)
        lines.append(StatementLine(item, max(days, 0), bucket))
        buckets = aging.setdefault(item.currency, dict.fromkeys(BUCKETS, ZERO))
        buckets[bucket] += item.amount_due
    return Statement(contact_name=contact_name, business_name=business_name, as_of=as_of,
                     language=language_of(language), lines=tuple(lines),
                     aging=dict(sorted(aging.items())), payment_link=payment_link)


@cache
def shipped_statement_template(language: str) -> str:
    return (TEMPLATE_DIR / f"{language_of(language)}.txt").read_text(encoding="utf-8")


def render_statement(statement: Statement) -> Message:
    """Subject, text and HTML of the statement in the customer's language."""
    language = statement.language
    locale = LOCALES[language]

    def money(amount: Decimal, currency: str) -> str:
        return format_currency(amount, currency, locale=locale)

    def day(value: date | None) -> str:
        return "" if value is None else format_date(value, format="long", locale=locale)

    values = {
        "contact_name": statement.contact_name, "business_name": statement.business_name,
        "as_of": day(statement.as_of), "payment_link": statement.payment_link,
        "lines": [{"number": line.item.number, "issued": day(line.item.issue_date),
                   "due": day(line.item.due_date), "days_overdue": line.days_overdue,
                   "amount": money(line.item.amount_due, line.item.currency),
                   "bucket": line.bucket} for line in statement.lines],
        "aging": [{"currency": currency, "total": money(sum(buckets.values(), ZERO), currency),
                   "buckets": {name: money(amount, currency)
                               for name, amount in buckets.items()}}
                  for currency, buckets in statement.aging.items()],
    }
    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False,
                                        keep_trailing_newline=True, trim_blocks=True)
    source = shipped_statement_template(language)
    first, _, body = source.lstrip("\n").partition("\n")
    subject = " ".join(env.from_string(first.removeprefix("Subject:")).render(values).split())
    text = re.sub(r"\n{3,}", "\n\n", env.from_string(body.lstrip("\n")).render(values))
    text = text.strip() + "\n"
    direction = "rtl" if language in RIGHT_TO_LEFT else "ltr"
    return Message(subject=subject, text=text, html=message_html(text, language, direction),
                   locale=language, direction=direction)


# ----------------------------------------------------------------------------- planning


@dataclass(frozen=True, slots=True)
class StatementSchedule:
    """When statements go: a day of the month (1-28, so every month has it) at a local time."""

    day_of_month: int
    send_time: time = time(9, 0)
    channel: str = "dunwell_email"

    def __post_init__(self) -> None:
        if not 1 <= self.day_of_month <= 28:
            raise ValueError("the statement day is between 1 and 28 (every month has it)")


def statement_key(org_id: int, contact_id: int, period: str) -> str:
    """One statement per customer per month."""
    return contact_key(org_id, contact_id, "statement", period)


def statement_moment(schedule: StatementSchedule, calendar: OrgCalendar,
                     day: date) -> datetime:
    """This month's sending moment (aware UTC) for the month holding `day`."""
    return calendar.at_local(day.replace(day=schedule.day_of_month), schedule.send_time)


def due_statement(org_id: int, contact_id: int, contact_name: str, open_items: int,
                  schedule: StatementSchedule, calendar: OrgCalendar,
                  now: datetime) -> PlannedAction | None:
    """This month's statement for one customer, once its moment has come: filed under the
    customer (the executor builds it from the books as they are when it goes)."""
    if open_items <= 0:
        return None
    today = calendar.today(now)
    moment = statement_moment(schedule, calendar, today)
    if now < moment:
        return None
    period = statement_period(today)
    return PlannedAction(
        key=statement_key(org_id, contact_id, period), kind="statement",
        invoice_id=None, contact_id=contact_id, org_id=org_id, scheduled_for=moment,
        reason=f"Statement for {period} to {contact_name} ({open_items} open item"
               f"{'' if open_items == 1 else 's'})",
        channel=schedule.channel, template="statement",
        details={"period": period})
