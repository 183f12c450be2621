"""The organisation's invoice list, as a collector works from it: searched, filtered, sorted
and read a page at a time by keyset (the last row's sort values, never an offset), with the
count and the totals per currency of everything the filters select.

The page's cost does not grow with the page number: each page is one indexed range read of
`per_page + 1` rows. The totals read the filtered set once, grouped by currency (summed by
the database where money is a number; on SQLite, where it is exact text, in Python).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    and_,
    case,
    cast,
    false,
    func,
    or_,
    select,
)
from sqlalchemy.orm import Session, aliased

from collect import own_documents
from collect.ledger import OPEN_STATES, ActionStatus
from store.models import Action, Contact, Invoice, InvoiceDispute, PaymentPromise

BUCKETS = ("current", "1-30", "31-60", "61-90", "90+")
STATUSES = ("open", "paid", "draft", "voided")  # or "all" (deleted ones too)
SORTS = ("attention", "due", "amount", "number", "customer", "issued")
FLAGS = ("disputed", "promised")
# The kinds an invoice's pending action can be (statements and retainer top-ups are filed under
# their customer, never an invoice).
NEXT_KINDS = ("reminder", "fee", "interest", "compensation", "discount", "plan_instalment",
              "call_task", "stop_service", "demand_letter", "agency_case", "deposit_reminder",
              "terms_change")
PER_PAGE = 25
PAGE_SIZES = (25, 50, 100)
MAX_PER_PAGE = 200
MAX_TEXT = 100
SEARCH_SORTED_ALONE = 2000  # a search with at most this many matches sorts them alone
# Actions still to run (the owner's approval included): what "next action" means in the list.
PENDING = (*OPEN_STATES, ActionStatus.AWAITING_APPROVAL)



@dataclass(frozen=True)
class InvoiceQuery:
    """What the collector asked for; every field has a safe default, so any query string
    gives a list (an unknown value is ignored, never an error)."""

    text: str = ""
    bucket: str = ""
    status: str = "open"  # the working set; "" (asked as "all"): every status
    customer_id: int | None = None  # one customer (from a link: the customer's page)
    customer_text: str = ""  # customers whose name holds it
    next_kind: str = ""
    flag: str = ""
    due_now: bool = False
    sort: str = "attention"
    descending: bool = False
    after: str | None = None
    before: str | None = None
    per_page: int = PER_PAGE

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> InvoiceQuery:
        def one_of(name: str, allowed: Sequence[str], default: str = "") -> str:
            value = (args.get(name) or "").strip()
            return value if value in allowed else default

        customer = (args.get("customer") or "").strip()
        try:
            per_page = min(max(int(args.get("per_page") or PER_PAGE), 1), MAX_PER_PAGE)
        except ValueError:
            per_page = PER_PAGE
        return cls(text=(args.get("q") or "").strip()[:MAX_TEXT],
                   bucket=one_of("bucket", BUCKETS),
                   status="" if args.get("status") == "all"
                   else one_of("status", STATUSES, "open"),
                   customer_id=int(customer) if customer.isdigit() and len(customer) < 12
                   else None,
                   customer_text=(args.get("who") or "").strip()[:MAX_TEXT],
                   next_kind=one_of("next", NEXT_KINDS), flag=one_of("flag", FLAGS),
                   due_now=args.get("due_now") == "1",
                   sort=one_of("sort", SORTS, "attention"),
                   descending=args.get("order") == "desc",
                   after=(args.get("after") or None), before=(args.get("before") or None),
                   per_page=per_page)

    def args(self, **changes: Any) -> dict[str, str]:
        """The query string of this query (with `changes`), without empty values: for links
        that keep the filters (next page, a column's sort)."""
        asked = replace(self, **changes)
        out = {"q": asked.text, "bucket": asked.bucket,
               "status": "" if asked.status == "open" else asked.status or "all",
               "customer": str(asked.customer_id) if asked.customer_id else "",
               "who": asked.customer_text,
               "next": asked.next_kind, "flag": asked.flag,
               "due_now": "1" if asked.due_now else "",
               "sort": "" if asked.sort == "attention" else asked.sort,
               "order": "desc" if asked.descending else "",
               "after": asked.after or "", "before": asked.before or "",
               "per_page": "" if asked.per_page == PER_PAGE else str(asked.per_page)}
        return {k: v for k, v in out.items() if v}

    @property
    def narrowed(self) -> bool:
        """A filter beyond the search box is set: the page shows the filters open."""
        return bool(self.bucket or self.status != "open" or self.customer_id
                    or self.customer_text or self.next_kind or self.flag or self.due_now
                    or self.sort != "attention" or self.descending
                    or self.per_page != PER_PAGE)

    @property
    def filtered(self) -> bool:
        return bool(self.text or self.bucket or self.status != "open" or self.customer_id
                    or self.customer_text
                    or self.next_kind or self.flag or self.due_now)


@dataclass(frozen=True)
class CurrencyTotal:
    currency: str
    count: int
    amount_due: Decimal
    overdue: Decimal


@dataclass(frozen=True)
class ListedInvoice:
    invoice: Invoice
    contact_name: str
    reminders_sent: int
    # The earliest action still to run, if the ledger holds one, and whether its time came.
    next_action: Action | None
    due_now: bool
    awaiting_approval: bool
    disputed: bool
    promised_by: date | None
    # A fee invoice Dunwell made: the number of the invoice it is for.
    made_for: str | None = None


@dataclass(frozen=True)
class InvoicePage:
    rows: list[ListedInvoice]
    count: int
    totals: list[CurrencyTotal]  # of the invoices the filters select, every page
    open_totals: list[CurrencyTotal]  # of every open invoice: the headline
    next_cursor: str | None
    previous_cursor: str | None
    query: InvoiceQuery
    customer_name: str | None = None  # the one customer the list is narrowed to


# ------------------------------------------------------------------------------ sort keys


@dataclass(frozen=True)
class _Key:
    """One part of a sort: its SQL expression (never NULL), how to read it off a row, and how
    to read it back from a cursor."""

    expression: Any  # a column or an expression of the select
    value: Callable[[Invoice, str], Any]
    load: Callable[[Any], Any]
    descending: bool = False
    # An empty value sorts after every other ascending (before them descending), as
    # PostgreSQL's indexes keep them: a page read backwards is a backward index scan.
    nullable: bool = False

    def loaded(self, raw: Any) -> Any:
        return None if raw is None and self.nullable else self.load(raw)


def _moment(text: Any) -> datetime:
    return datetime.fromisoformat(str(text))


def _day(text: Any) -> date:
    return date.fromisoformat(str(text))


def _keys(query: InvoiceQuery, dialect: str, contact: Any) -> list[_Key]:
    down = query.descending
    if query.sort == "due":
        keys = [_Key(Invoice.due_date, lambda i, _n: i.due_date, _day, down, True)]
    elif query.sort == "issued":
        keys = [_Key(Invoice.issue_date, lambda i, _n: i.issue_date, _day, down, True)]
    elif query.sort == "amount":
        if dialect == "sqlite":  # ordering only: SQLite keeps money as exact text
            keys = [_Key(cast(Invoice.amount_due, Float), lambda i, _n: float(i.amount_due),
                         float, down)]
        else:
            keys = [_Key(Invoice.amount_due, lambda i, _n: i.amount_due, Decimal, down)]
    elif query.sort == "number":
        keys = [_Key(Invoice.number, lambda i, _n: i.number, str, down)]
    elif query.sort == "customer":
        keys = [_Key(func.coalesce(contact.name, ""), lambda _i, n: n, str, down)]
    else:  # attention: the soonest next action first, then the longest overdue
        keys = [_Key(Invoice.next_action_at, lambda i, _n: i.next_action_at, _moment, down,
                     True),
                _Key(Invoice.due_date, lambda i, _n: i.due_date, _day, down, True)]
    return [*keys, _Key(Invoice.id, lambda i, _n: i.id, int, down)]


def _order(keys: list[_Key], backwards: bool) -> list[Any]:
    out = []
    for key in keys:
        if key.descending != backwards:
            out.append(key.expression.desc().nulls_first() if key.nullable
                       else key.expression.desc())
        else:
            out.append(key.expression.asc().nulls_last() if key.nullable
                       else key.expression.asc())
    return out


def _encode(values: list[Any]) -> str:
    def plain(v: Any) -> Any:
        if isinstance(v, datetime | date):
            return v.isoformat()
        if isinstance(v, Decimal):
            return str(v)
        return v

    text = json.dumps([plain(v) for v in values], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode(cursor: str, keys: list[_Key]) -> list[Any] | None:
    """The cursor's values, or None for one that does not fit this sort (ignored: page 1)."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(raw, list) or len(raw) != len(keys):
            return None
        return [key.loaded(v) for key, v in zip(keys, raw, strict=True)]
    except (ValueError, TypeError, binascii.Error, InvalidOperation, UnicodeDecodeError):
        return None


def _same(key: _Key, value: Any) -> ColumnElement[bool]:
    return key.expression.is_(None) if value is None else key.expression == value


def _past(key: _Key, value: Any, smaller: bool) -> ColumnElement[bool]:
    """Strictly beyond `value` in one key's order; an empty value counts as the largest."""
    if smaller:
        if value is None:
            return key.expression.is_not(None) if key.nullable else false()
        return key.expression < value
    if value is None:
        return false()
    return or_(key.expression > value, key.expression.is_(None)) if key.nullable \
        else key.expression > value


def _beyond(keys: list[_Key], values: list[Any], backwards: bool) -> ColumnElement[bool]:
    """Rows after the cursor in the sort's order (before it, backwards): the lexicographic
    comparison (a > x) or (a = x and b > y) or ..., each part in its own direction."""
    parts = []
    for n, key in enumerate(keys):
        step = _past(key, values[n], smaller=key.descending != backwards)
        parts.append(and_(*[_same(keys[m], values[m]) for m in range(n)], step))
    return or_(*parts)


# -------------------------------------------------------------------------------- filters


def _bucket_filter(bucket: str, today: date) -> ColumnElement[bool]:
    if bucket == "current":
        return or_(Invoice.due_date.is_(None), Invoice.due_date >= today)
    if bucket == "90+":
        return Invoice.due_date < today - timedelta(days=90)
    low, high = (int(n) for n in bucket.split("-"))
    return and_(Invoice.due_date < today - timedelta(days=low - 1),
                Invoice.due_date >= today - timedelta(days=high))


def _pending_action(org_id: int, now: datetime | None = None, kind: str = ""
                    ) -> ColumnElement[bool]:
    """An action of the invoice is still to run (of this kind; due by `now`: its time came).
    Asked as IN (uncorrelated), so the database reads the ledger once, not once a row."""
    where = [Action.org_id == org_id,
             Action.status.in_(OPEN_STATES if now is not None else PENDING)]
    if now is not None:
        where.append(Action.scheduled_for <= now)
    if kind:
        where.append(Action.kind == kind)
    return Invoice.id.in_(select(Action.invoice_id).where(*where))


def _amount_in(text: str) -> Decimal | None:
    cleaned = text.replace(",", "").replace(" ", "")
    for sign in "$£€":
        cleaned = cleaned.replace(sign, "")
    try:
        amount = Decimal(cleaned)
    except InvalidOperation:
        return None
    return amount if amount.is_finite() and abs(amount) < Decimal("1e15") else None


def _holding(text: str) -> str:
    """A LIKE pattern for "holds this text", its wildcards taken as characters."""
    return "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%") \
        .replace("_", "\\_") + "%"


def _named(org_id: int, text: str) -> Any:
    """The customers whose name holds the text: matched on their own (a few thousand rows),
    not joined to every invoice."""
    return select(Contact.id).where(Contact.org_id == org_id, func.lower(Contact.name).like(
        _holding(text), escape="\\"))


def _text_filter(org_id: int, text: str, dialect: str) -> ColumnElement[bool]:
    """The number or the customer's name holds the text, or the amount due or total is it."""
    pattern = _holding(text)
    named = _named(org_id, text)
    found: list[ColumnElement[bool]] = [
        func.lower(Invoice.number).like(pattern, escape="\\"), Invoice.contact_id.in_(named)]
    amount = _amount_in(text)
    if amount is not None:
        if dialect == "sqlite":  # exact text: compare as numbers, 100 finds 100.00
            found += [cast(Invoice.amount_due, Float) == float(amount),
                      cast(Invoice.total, Float) == float(amount)]
        else:
            found += [Invoice.amount_due == amount, Invoice.total == amount]
    return or_(*found)


def _filters(org_id: int, query: InvoiceQuery, today: date, now: datetime, dialect: str
             ) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if query.text:
        where.append(_text_filter(org_id, query.text, dialect))
    if query.bucket:
        where.append(_bucket_filter(query.bucket, today))
    if query.status:
        where.append(Invoice.status == query.status)
    if query.customer_id:
        where.append(Invoice.contact_id == query.customer_id)
    if query.customer_text:
        where.append(Invoice.contact_id.in_(_named(org_id, query.customer_text)))
    if query.next_kind:
        where.append(_pending_action(org_id, kind=query.next_kind))
    if query.due_now:
        where.append(_pending_action(org_id, now))
    if query.flag == "disputed":
        where.append(or_(Invoice.disputed.is_(True), Invoice.contact_id.in_(
            select(Contact.id).where(Contact.org_id == org_id, Contact.disputed.is_(True)))))
    elif query.flag == "promised":
        where.append(Invoice.id.in_(select(PaymentPromise.invoice_id).where(
            PaymentPromise.org_id == org_id, PaymentPromise.status == "open")))
    return where


# ---------------------------------------------------------------------------------- reads


def totals(session: Session, where: list[ColumnElement[bool]], dialect: str,
           today: date) -> list[CurrencyTotal]:
    """Per currency, the count and amounts due (all, and overdue) of the invoices `where`
    selects."""
    late = and_(Invoice.status == "open", Invoice.due_date < today)
    found: dict[str, list[Any]] = {}
    if dialect == "sqlite":  # money is exact text there: summed here, never as REAL
        for currency, status, due, amount in session.execute(select(
                Invoice.currency, Invoice.status, Invoice.due_date, Invoice.amount_due)
                .where(*where)):
            row = found.setdefault(currency, [0, Decimal(0), Decimal(0)])
            row[0] += 1
            row[1] += amount
            if status == "open" and due is not None and due < today:
                row[2] += amount
    else:
        for currency, count, owed, overdue in session.execute(select(
                Invoice.currency, func.count(), func.sum(Invoice.amount_due),
                func.sum(case((late, Invoice.amount_due), else_=0)))
                .where(*where).group_by(Invoice.currency)):
            found[currency] = [int(count), Decimal(owed or 0), Decimal(overdue or 0)]
    return sorted((CurrencyTotal(c, n, owed, overdue) for c, (n, owed, overdue)
                   in found.items()), key=lambda t: (-t.count, t.currency))


def open_totals(session: Session, org_id: int, today: date) -> list[CurrencyTotal]:
    """Every open invoice of the organisation, per currency: the headline figures."""
    return open_totals_of(session, org_id, session.get_bind().dialect.name, today)


def open_totals_of(session: Session, org_id: int, dialect: str, today: date
                   ) -> list[CurrencyTotal]:
    return totals(session, [Invoice.org_id == org_id, Invoice.status == "open"], dialect,
                  today)


def invoice_page(session: Session, org_id: int, query: InvoiceQuery, now: datetime,
                 today: date) -> InvoicePage:
    """One page of the organisation's invoices as `query` asks; `today` is the book's day."""
    dialect = session.get_bind().dialect.name
    contact = aliased(Contact)
    filters = _filters(org_id, query, today, now, dialect)
    where = [Invoice.org_id == org_id, *filters]
    keys = _keys(query, dialect, contact)
    backwards = query.before is not None and query.after is None
    asked = query.before if backwards else query.after
    cursor = _decode(asked, keys) if asked else None
    if cursor is None:
        backwards = False
    counted = where
    if query.text or query.customer_text:
        # A search matches few invoices, spread over the whole sort order: walking an index
        # in that order to find them would visit most of the book. Read the matches first
        # (one scan, stopped early when they are many), then sort those alone.
        matches = list(session.scalars(select(Invoice.id).where(*where)
                                       .limit(SEARCH_SORTED_ALONE + 1)))
        if len(matches) <= SEARCH_SORTED_ALONE:
            where = [Invoice.org_id == org_id, Invoice.id.in_(matches)] if matches \
                else [false()]
            counted = where  # the totals too: the matches, not the search again
    statement = select(Invoice, func.coalesce(contact.name, "")).outerjoin(
        contact, contact.id == Invoice.contact_id).where(*where)
    if cursor is not None:
        statement = statement.where(_beyond(keys, cursor, backwards))
    found = list(session.execute(statement.order_by(*_order(keys, backwards))
                                 .limit(query.per_page + 1)))
    more = len(found) > query.per_page
    found = found[:query.per_page]
    if backwards:
        found.reverse()
    pairs = [(invoice, name) for invoice, name in found]

    def cursor_of(invoice: Invoice, name: str) -> str:
        return _encode([k.value(invoice, name) for k in keys])

    # Forwards, more rows mean a next page and a cursor means a page before; backwards the
    # other way round (the page we came from is the next one).
    has_next, has_previous = (True, more) if backwards else (more, cursor is not None)
    # The headline (every open invoice) is what an unfiltered list selects: read once.
    open_totals = open_totals_of(session, org_id, dialect, today)
    found_totals = open_totals if not query.filtered else totals(session, counted, dialect,
                                                                 today)
    return InvoicePage(
        rows=_rows(session, org_id, pairs, now), count=sum(t.count for t in found_totals),
        totals=found_totals, open_totals=open_totals,
        next_cursor=cursor_of(*pairs[-1]) if pairs and has_next else None,
        previous_cursor=cursor_of(*pairs[0]) if pairs and has_previous else None,
        query=query, customer_name=session.scalar(select(Contact.name).where(
            Contact.org_id == org_id, Contact.id == query.customer_id))
        if query.customer_id else None)


def _rows(session: Session, org_id: int, pairs: list[tuple[Invoice, str]],
          now: datetime) -> list[ListedInvoice]:
    """The page's rows with what each needs beside it: a few queries for the whole page."""
    ids = [invoice.id for invoice, _ in pairs]
    if not ids:
        return []
    sent: dict[int, int] = {}
    pending: dict[int, list[Action]] = {}
    for action in session.scalars(select(Action).where(
            Action.org_id == org_id, Action.invoice_id.in_(ids),
            Action.status.in_((*PENDING, ActionStatus.DONE)))
            .order_by(Action.scheduled_for, Action.id)):
        assert action.invoice_id is not None
        if action.status == ActionStatus.DONE:
            sent[action.invoice_id] = sent.get(action.invoice_id, 0) + 1
        else:
            pending.setdefault(action.invoice_id, []).append(action)
    promised = dict(session.execute(select(PaymentPromise.invoice_id, PaymentPromise.pay_by)
                                    .where(PaymentPromise.org_id == org_id,
                                           PaymentPromise.invoice_id.in_(ids),
                                           PaymentPromise.status == "open")).all())
    disputed_contacts = set(session.scalars(select(Contact.id).where(
        Contact.org_id == org_id, Contact.disputed.is_(True),
        Contact.id.in_({i.contact_id for i, _ in pairs if i.contact_id}))))
    open_disputes = set(session.scalars(select(InvoiceDispute.invoice_id).where(
        InvoiceDispute.org_id == org_id, InvoiceDispute.invoice_id.in_(ids),
        InvoiceDispute.status == "open")))
    names = {invoice.id: name for invoice, name in pairs}
    rows = []
    for invoice, made_for in own_documents.beside_their_invoices(
            session, org_id, [invoice for invoice, _ in pairs], lambda i: i):
        waiting = pending.get(invoice.id, [])
        runnable = [a for a in waiting if a.status in OPEN_STATES]
        first = runnable[0] if runnable else (waiting[0] if waiting else None)
        rows.append(ListedInvoice(
            invoice=invoice, contact_name=names[invoice.id],
            reminders_sent=int(sent.get(invoice.id, 0)), next_action=first,
            due_now=invoice.status == "open" and any(a.scheduled_for <= now for a in runnable),
            awaiting_approval=any(a.status == ActionStatus.AWAITING_APPROVAL for a in waiting),
            disputed=invoice.disputed or invoice.id in open_disputes
            or invoice.contact_id in disputed_contacts,
            promised_by=promised.get(invoice.id), made_for=made_for))
    return rows
