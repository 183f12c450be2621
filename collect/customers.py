"""Credit control for one organisation, computed from the synced books on every call.

The database side of rules/credit.py, rules/forecast.py and rules/risk.py: invoices (open and
paid, with the day the last payment settled each) are read in bulk and handed over as plain
records, so the figures always follow the latest sync. Only the backtest, which costs a model
per monthly cut-off, is cached (in Redis, for the day). Every query is scoped by the
organisation.

For other pages (the dashboard): `customer_credit`, `struggling_customers`,
`cash_in_forecast`, `open_pay_dates`, `backtest_org`, `credit_position`.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from redis.exceptions import RedisError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from collect import ledger, own_documents, portal
from collect.book import calendar_for, plan_record
from collect.providers import redis_client
from rules import (
    InvoiceState,
    PlannedAction,
    Policy,
    default_policy,
    policy_from_json,
)
from rules.credit import (
    InvoiceHistory,
    PaymentBehaviour,
    TermsChange,
    over_limit_since,
    payment_behaviour,
    recommended_terms,
)
from rules.forecast import (
    CashForecast,
    Lateness,
    LatenessModel,
    PayDate,
    predict_pay_dates,
)
from rules.forecast import cash_in_forecast as weekly_cash_in
from rules.messages import language_of
from rules.plans import plan_state
from rules.retainers import (
    RetainerEntry,
    RetainerInvoice,
    RetainerTerms,
    TopUp,
    retainer_balance,
    retainer_history,
)
from rules.risk import Backtest, Risk, backtest, customer_facts, risk_of, typical_invoice
from rules.signals import TRIGGERS, PastSignal, SignalCause, signal_key, signal_planned
from rules.statements import OpenItem, Statement, build_statement
from store.models import (
    Action,
    Contact,
    CreditSettings,
    Invoice,
    Organisation,
    Payment,
    Quote,
    QuoteDeposit,
    Retainer,
    RetainerTopUp,
)
from store.models import ExpectedPayment as ExpectedPaymentRow
from store.models import PaymentPlan as PlanRow
from store.models import Policy as PolicyRow

log = logging.getLogger(__name__)

BATCH = 1000


class CreditRefused(ValueError):
    """A credit-control change that cannot be made; the message says why, for the owner."""


def org_today(org: Organisation, now: datetime) -> date:
    return calendar_for(org).today(now)


def invoice_histories(session: Session, org: Organisation) -> list[InvoiceHistory]:
    """Every open or paid invoice of the organisation with its dates; a paid one carries the
    day of its last payment (paid without a recorded payment, e.g. by a credit note: left out
    of lateness, as nobody knows when the money came)."""
    rows = session.execute(
        select(Invoice.id, Invoice.contact_id, Invoice.issue_date, Invoice.due_date,
               Invoice.total, Invoice.amount_due, Invoice.currency, Invoice.status)
        .where(Invoice.org_id == org.id, Invoice.status.in_(("open", "paid")),
               Invoice.due_date.is_not(None)).order_by(Invoice.id)).all()
    last_paid: dict[int, date] = {}
    paid_ids = [row.id for row in rows if row.status == "paid"]
    for start in range(0, len(paid_ids), BATCH):
        chunk = paid_ids[start:start + BATCH]
        for invoice_id, day in session.execute(
                select(Payment.invoice_id, func.max(Payment.paid_on))
                .where(Payment.org_id == org.id, Payment.invoice_id.in_(chunk),
                       Payment.status == "active")
                .group_by(Payment.invoice_id)):
            if day is not None and invoice_id is not None:  # not None: IN (chunk)
                last_paid[invoice_id] = day
    histories = []
    for row in rows:
        paid_on = last_paid.get(row.id) if row.status == "paid" else None
        if row.status == "paid" and paid_on is None:
            continue
        histories.append(InvoiceHistory(
            invoice_id=row.id, issue_date=row.issue_date or row.due_date,
            due_date=row.due_date, total=row.total,
            amount_due=Decimal(0) if row.status == "paid" else row.amount_due,
            currency=row.currency, paid_on=paid_on, contact_id=row.contact_id))
    return histories


def broken_plans(session: Session, org: Organisation, today: date) -> dict[int, int]:
    """Contact id -> payment plans broken: an active plan missed today, or a replaced plan
    that was already missed on the day its successor was agreed."""
    row = session.scalar(select(PolicyRow).where(PolicyRow.org_id == org.id))
    grace = (policy_from_json(row.body) if row else default_policy()).payment_plans.grace_days
    plans = session.scalars(select(PlanRow).where(PlanRow.org_id == org.id)
                            .order_by(PlanRow.invoice_id, PlanRow.created_at, PlanRow.id)).all()
    if not plans:
        return {}
    invoice_ids = sorted({p.invoice_id for p in plans})
    invoices = {i.id: i for i in session.scalars(
        select(Invoice).where(Invoice.org_id == org.id, Invoice.id.in_(invoice_ids)))}
    payments: dict[int, list[tuple[date, Decimal]]] = defaultdict(list)
    for invoice_id, paid_on, amount in session.execute(
            select(Payment.invoice_id, Payment.paid_on, Payment.amount)
            .where(Payment.org_id == org.id, Payment.invoice_id.in_(invoice_ids),
                   Payment.status == "active")):
        if paid_on is not None and invoice_id is not None:  # not None: IN (invoice_ids)
            payments[invoice_id].append((paid_on, amount))
    counts: dict[int, int] = defaultdict(int)
    for n, plan in enumerate(plans):
        invoice = invoices.get(plan.invoice_id)
        if invoice is None or invoice.contact_id is None or invoice.due_date is None:
            continue
        successor = plans[n + 1] if n + 1 < len(plans) and \
            plans[n + 1].invoice_id == plan.invoice_id else None
        if plan.status != "active" and successor is None:
            continue
        until = org_today(org, successor.created_at) if successor else today
        state = InvoiceState(
            invoice_id=invoice.id, org_id=org.id, number=invoice.number, status="open",
            due_date=invoice.due_date, amount_due=invoice.amount_due,
            currency=invoice.currency, payments=tuple(sorted(payments[invoice.id])))
        if not plan_state(state, plan_record(plan), grace, until).kept:
            counts[invoice.contact_id] += 1
    return dict(counts)


def credit_settings(session: Session, org: Organisation) -> CreditSettings:
    """The organisation's settings row (made, unsaved defaults, when there is none yet)."""
    settings = session.scalar(select(CreditSettings).where(CreditSettings.org_id == org.id))
    if settings is None:
        settings = CreditSettings(org_id=org.id, default_credit_limit=None,
                                  stop_service_on_hold=False, statement_day=None,
                                  statement_time="09:00", statement_channel="dunwell_email")
    return settings


@dataclass(frozen=True)
class CreditPosition:
    """A customer's exposure against their limit, in the organisation's base currency
    (balances in other currencies are shown beside it, not converted)."""

    currency: str
    limit: Decimal | None  # the contact's own, else the organisation's default
    limit_is_default: bool
    exposure: Decimal  # open balance in the base currency
    other_currencies: dict[str, Decimal]
    on_hold: bool
    hold_reason: str | None

    @property
    def over_limit(self) -> bool:
        return self.limit is not None and self.exposure > self.limit

    @property
    def blocked(self) -> bool:
        return self.on_hold or self.over_limit

    @property
    def banner(self) -> str | None:
        if self.on_hold:
            return "On credit hold" + (f": {self.hold_reason}" if self.hold_reason else "")
        if self.over_limit:
            return (f"Over the credit limit: {self.currency} {self.exposure:,.2f} open against"
                    f" a limit of {self.currency} {self.limit:,.2f}")
        return None


def credit_position(org: Organisation, contact: Contact, behaviour: PaymentBehaviour,
                    settings: CreditSettings) -> CreditPosition:
    own = contact.credit_limit
    limit = own if own is not None else settings.default_credit_limit
    balances = dict(behaviour.open_balance)
    exposure = balances.pop(org.base_currency, Decimal(0))
    return CreditPosition(currency=org.base_currency, limit=limit,
                          limit_is_default=own is None and limit is not None,
                          exposure=exposure, other_currencies=balances,
                          on_hold=contact.on_hold, hold_reason=contact.hold_reason)


@dataclass(frozen=True)
class CustomerCredit:
    contact: Contact
    behaviour: PaymentBehaviour
    risk: Risk
    lateness: Lateness  # predicted for their next invoice
    position: CreditPosition

    @property
    def struggling(self) -> bool:
        return self.behaviour.struggling.flagged

    def as_json(self) -> dict[str, object]:
        b, p = self.behaviour, self.position
        return {
            "contact_id": self.contact.id, "name": self.contact.name,
            "score": self.risk.score, "reasons": [r.as_json() for r in self.risk.reasons],
            "points": self.risk.points, "struggling": self.struggling,
            "predicted_days_late": self.lateness.expected,
            "predicted_days_late_interval": [self.lateness.low, self.lateness.high],
            "paid_invoices": b.paid_count, "paid_late": b.paid_late_count,
            "mean_days_to_pay": _text(b.mean_days_to_pay),
            "weighted_days_to_pay": _text(b.weighted_days_to_pay),
            "mean_days_late": _text(b.mean_days_late),
            "mean_days_beyond_terms": _text(b.mean_days_beyond_terms),
            "trend_last_6m": _text(b.trend.last_6m), "trend_prior_6m": _text(b.trend.prior_6m),
            "trend_last_12m": _text(b.trend.last_12m), "trend": b.trend.direction,
            "broken_plans": b.broken_plans,
            "open_balance": {c: str(a) for c, a in sorted(b.open_balance.items())},
            "overdue_balance": {c: str(a) for c, a in sorted(b.overdue_balance.items())},
            "oldest_overdue_days": b.oldest_overdue_days,
            "credit_limit": _text(p.limit), "over_limit": p.over_limit, "on_hold": p.on_hold,
        }


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def open_disputes(session: Session, org: Organisation) -> dict[int, int]:
    """Contact id -> open invoices in dispute, for the risk score."""
    return {contact_id: count for contact_id, count in session.execute(
        select(Invoice.contact_id, func.count()).where(
            Invoice.org_id == org.id, Invoice.status == "open", Invoice.disputed.is_(True))
        .group_by(Invoice.contact_id)) if contact_id is not None}


def customer_credit(session: Session, org: Organisation, now: datetime,
                    contact_ids: set[int] | None = None,
                    histories: list[InvoiceHistory] | None = None) -> list[CustomerCredit]:
    """Every customer with an open or paid invoice (or only `contact_ids`), riskiest first."""
    today = org_today(org, now)
    if histories is None:
        histories = invoice_histories(session, org)
    model = LatenessModel.from_history(histories)
    typical = typical_invoice(histories)
    by_contact: dict[int, list[InvoiceHistory]] = defaultdict(list)
    for history in histories:
        if history.contact_id is not None:
            by_contact[history.contact_id].append(history)
    wanted = set(by_contact) if contact_ids is None else contact_ids
    contacts = session.scalars(select(Contact).where(
        Contact.org_id == org.id, Contact.id.in_(sorted(wanted)))).all() if wanted else []
    broken = broken_plans(session, org, today)
    promises = portal.broken_promises(session, org.id)  # recorded by the planner
    disputes = open_disputes(session, org)
    settings = credit_settings(session, org)
    result = []
    for contact in contacts:
        own = by_contact.get(contact.id, [])
        plans, promised = broken.get(contact.id, 0), promises.get(contact.id, 0)
        behaviour = payment_behaviour(own, today, broken_plans=plans, broken_promises=promised)
        facts = customer_facts(model, contact.id, own, today, broken_plans=plans,
                               broken_promises=promised,
                               open_disputes=disputes.get(contact.id, 0))
        result.append(CustomerCredit(
            contact=contact, behaviour=behaviour, risk=risk_of(facts, typical),
            lateness=model.predict(contact.id),
            position=credit_position(org, contact, behaviour, settings)))
    result.sort(key=lambda c: (-c.risk.score, c.contact.name, c.contact.id))
    return result


def struggling_customers(session: Session, org: Organisation,
                         now: datetime) -> list[CustomerCredit]:
    """Customers markedly worse lately than their own baseline (rules/credit.py), riskiest
    first: trouble seen before the invoices are badly overdue."""
    return [c for c in customer_credit(session, org, now) if c.struggling]


def open_pay_dates(session: Session, org: Organisation, now: datetime,
                   contact_id: int | None = None,
                   histories: list[InvoiceHistory] | None = None) -> list[PayDate]:
    """Expected pay date (and interval) of each open invoice, by the organisation's model."""
    if histories is None:
        histories = invoice_histories(session, org)
    model = LatenessModel.from_history(histories)
    return predict_pay_dates(
        [h for h in histories if h.is_open and (contact_id is None or h.contact_id == contact_id)],
        model, org_today(org, now))


def listed_pay_dates(session: Session, org: Organisation, now: datetime, contact_id: int
                     ) -> list[tuple[PayDate, Invoice, str | None]]:
    """A customer's open invoices with their expected pay dates, as their page lists them:
    each fee invoice Dunwell made right after the invoice it is for, with that one's number
    (collect/own_documents.py)."""
    dates = open_pay_dates(session, org, now, contact_id)
    invoices = {i.id: i for i in session.scalars(select(Invoice).where(
        Invoice.org_id == org.id, Invoice.id.in_([d.invoice_id for d in dates])))}
    return [(d, invoices[d.invoice_id], made_for) for d, made_for in
            own_documents.beside_their_invoices(session, org.id, dates,
                                                lambda d: invoices[d.invoice_id])]


def cash_in_forecast(session: Session, org: Organisation, now: datetime) -> CashForecast:
    """Expected cash in for each of the next 13 weeks (Monday to Sunday), by currency."""
    return weekly_cash_in(open_pay_dates(session, org, now), org_today(org, now))


BACKTEST_CACHE_SECONDS = 2 * 24 * 3600


def _fingerprint(histories: list[InvoiceHistory], today: date) -> str:
    """What the cached backtest stands for: the day (the walk ends today) and the order of
    magnitude of the paid invoices (a new book's figure is redone as its history arrives,
    a busy one's not at every payment)."""
    paid = sum(1 for h in histories if h.paid_on is not None)
    return f"{today.isoformat()}:{paid.bit_length()}"


def backtest_org(session: Session, org: Organisation, now: datetime,
                 histories: list[InvoiceHistory] | None = None) -> Backtest:
    """The walk-forward backtest of the organisation's own books (rules/risk.py), up to today.

    It costs a model per monthly cut-off (about a second of CPU per 4,000 invoices), so its
    figures are kept in Redis and recomputed once a day, or sooner when the number of paid
    invoices doubles; without Redis it is computed each time."""
    if histories is None:
        histories = invoice_histories(session, org)
    today = org_today(org, now)
    key = f"dunwell:risk-backtest:{org.id}"
    fingerprint = _fingerprint(histories, today)
    try:
        redis = redis_client()
        cached = redis.get(key)
        if cached:
            stored = json.loads(cached)
            if stored.get("fingerprint") == fingerprint:
                return Backtest.from_json(stored["figures"])
    except RedisError:
        log.warning("org %s: the backtest cache is unreachable; computing it", org.id)
        return backtest(histories, today)
    result = backtest(histories, today)
    try:
        redis.set(key, json.dumps({"fingerprint": fingerprint, "figures": result.as_json()}),
                  ex=BACKTEST_CACHE_SECONDS)
    except RedisError:
        log.warning("org %s: the backtest could not be cached", org.id)
    return result


# --------------------------------------------------------------------- limits and holds


def contact_of(session: Session, org: Organisation, contact_id: int) -> Contact:
    contact = session.scalar(select(Contact).where(Contact.org_id == org.id,
                                                   Contact.id == contact_id))
    if contact is None:
        raise CreditRefused(f"no customer {contact_id} in this organisation")
    return contact


def _limit(value: Decimal | None) -> Decimal | None:
    if value is None:
        return None
    if not value.is_finite() or value < 0:
        raise CreditRefused("a credit limit is a positive amount, or none")
    if value.as_tuple().exponent < -2:  # type: ignore[operator]
        raise CreditRefused("a credit limit has at most two decimal places")
    return value


def set_credit_limit(session: Session, contact: Contact, limit: Decimal | None) -> None:
    """The customer's own limit (None: the organisation's default applies)."""
    contact.credit_limit = _limit(limit)
    log.info("org %s contact %s: credit limit %s", contact.org_id, contact.id,
             "cleared" if limit is None else "set")


def set_default_credit_limit(session: Session, org: Organisation,
                             limit: Decimal | None) -> CreditSettings:
    settings = credit_settings(session, org)
    settings.default_credit_limit = _limit(limit)
    session.add(settings)
    return settings


def put_on_hold(session: Session, contact: Contact, reason: str, now: datetime) -> None:
    reason = " ".join(reason.split())
    if not reason:
        raise CreditRefused("say why the customer is on hold")
    if len(reason) > 500:
        raise CreditRefused("a hold reason has at most 500 characters")
    if not contact.on_hold:
        contact.on_hold_at = now
    contact.on_hold, contact.hold_reason = True, reason
    log.info("org %s contact %s: put on credit hold", contact.org_id, contact.id)


def release_hold(session: Session, contact: Contact) -> None:
    contact.on_hold, contact.hold_reason, contact.on_hold_at = False, None, None
    log.info("org %s contact %s: credit hold released", contact.org_id, contact.id)


def open_invoices(session: Session, org: Organisation, contact: Contact) -> list[Invoice]:
    """The contact's open invoices with something due, oldest due first. (Amounts are compared
    here, not in SQL: SQLite keeps money as exact text, which does not compare as numbers.)"""
    return [i for i in session.scalars(
        select(Invoice).where(Invoice.org_id == org.id, Invoice.contact_id == contact.id,
                              Invoice.status == "open", Invoice.due_date.is_not(None))
        .order_by(Invoice.due_date, Invoice.id)) if i.amount_due > 0]


def signal_hold(session: Session, org: Organisation, contact: Contact,
                now: datetime) -> Action | None:
    """Plan the stop-service signal for a hold, if the organisation asked for it; the caller
    commits and enqueues it. Holding twice signals once (the key names the hold's first day)."""
    settings = credit_settings(session, org)
    if not (settings.stop_service_on_hold and contact.on_hold):
        return None
    return signal_stop_service(session, org, contact, "hold",
                               org_today(org, contact.on_hold_at or now),
                               f"{contact.name} is on credit hold ({contact.hold_reason})",
                               settings.stop_service_webhook_url, now)


def signal_stop_service(session: Session, org: Organisation, contact: Contact,
                        cause: SignalCause, since: date, reason: str, webhook_url: str | None,
                        now: datetime) -> Action | None:
    """The escalation's own stop-service action (collect/execute.py flags the customer and
    sends the signed webhook), filed under the customer, once per hold or stretch over the
    limit that began `since` (rules/signals.py); None if it is in the ledger already."""
    past = [PastSignal(key, org_today(org, created_at), status in WAITING)
            for key, status, created_at in session.execute(
                select(Action.key, Action.status, Action.created_at).where(
                    Action.org_id == org.id, Action.contact_id == contact.id,
                    Action.kind == "stop_service"))]
    if signal_planned(org.id, contact.id, cause, since, past):
        return None
    planned = PlannedAction(
        key=signal_key(org.id, contact.id, cause, since), kind="stop_service",
        invoice_id=None, contact_id=contact.id, org_id=org.id, scheduled_for=now,
        reason=reason, details={"webhook_url": webhook_url, "trigger": TRIGGERS[cause]})
    return ledger.record_planned(session, planned, None, now)


def customer_actions(session: Session, org: Organisation, contact: Contact,
                     limit: int = 50) -> list[Action]:
    """The customer's own actions (statements, top-up requests, stop-service signals), the
    newest first, for their page."""
    return list(session.scalars(select(Action).where(
        Action.org_id == org.id, Action.contact_id == contact.id)
        .order_by(Action.scheduled_for.desc(), Action.id.desc()).limit(limit)))


# --------------------------------------------------------------------------- statements


def statement_language(session: Session, org: Organisation, contact: Contact) -> str:
    """The contact's own language, else the policy's language for contacts without one."""
    if contact.language:
        return language_of(contact.language)
    row = session.scalar(select(PolicyRow).where(PolicyRow.org_id == org.id))
    return (policy_from_json(row.body) if row else default_policy()).language


def statement_for(session: Session, org: Organisation, contact: Contact, now: datetime,
                  payment_link: str | None = None) -> Statement:
    """The contact's statement as of today in the organisation's zone."""
    items = [OpenItem(i.number or str(i.id), i.issue_date, i.due_date, i.amount_due, i.currency)
             for i in open_invoices(session, org, contact) if i.due_date is not None]
    return build_statement(contact.name, org.name, items, org_today(org, now),
                           statement_language(session, org, contact), payment_link)


# ------------------------------------------------------------------- retainers, deposits


def retainer_of(session: Session, org: Organisation, contact: Contact) -> Retainer | None:
    return session.scalar(select(Retainer).where(Retainer.org_id == org.id,
                                                 Retainer.contact_id == contact.id))


def retainer_terms(retainer: Retainer) -> RetainerTerms:
    return RetainerTerms(currency=retainer.currency, threshold=retainer.threshold,
                         top_up_to=retainer.top_up_to, started_on=retainer.started_on)


def _top_ups(session: Session, retainer: Retainer) -> list[RetainerTopUp]:
    return list(session.scalars(select(RetainerTopUp).where(
        RetainerTopUp.org_id == retainer.org_id, RetainerTopUp.retainer_id == retainer.id)
        .order_by(RetainerTopUp.received_on, RetainerTopUp.id)))


def retainer_entries(session: Session, retainer: Retainer) -> list[RetainerEntry]:
    """The retainer's movements from the recorded top-ups and the synced invoices."""
    invoices = [RetainerInvoice(row.id, row.number or str(row.id), row.issue_date, row.total,
                                row.currency)
                for row in session.execute(
                    select(Invoice.id, Invoice.number, Invoice.issue_date, Invoice.total,
                           Invoice.currency)
                    .where(Invoice.org_id == retainer.org_id,
                           Invoice.contact_id == retainer.contact_id,
                           Invoice.status.in_(("open", "paid")),
                           Invoice.issue_date.is_not(None),
                           Invoice.issue_date >= retainer.started_on))]
    return retainer_history(retainer_terms(retainer),
                            [TopUp(t.received_on, t.amount) for t in _top_ups(session, retainer)],
                            invoices)


def _amount(value: Decimal | None, what: str) -> Decimal:
    if value is None or not value.is_finite() or value < 0:
        raise CreditRefused(f"{what} is an amount of zero or more")
    if value.as_tuple().exponent < -2:  # type: ignore[operator]
        raise CreditRefused(f"{what} has at most two decimal places")
    return value


def set_retainer(session: Session, org: Organisation, contact: Contact, *,
                 threshold: Decimal | None, top_up_to: Decimal | None, started_on: date,
                 currency: str | None = None) -> Retainer:
    """Start (or change) the customer's retainer; its invoices from `started_on` draw on it."""
    low, high = _amount(threshold, "the threshold"), _amount(top_up_to, "the top-up level")
    if high <= low:
        raise CreditRefused("a retainer tops up to more than its threshold")
    currency = (currency or org.base_currency).upper()
    if len(currency) != 3 or not currency.isalpha():
        raise CreditRefused(f"{currency!r} is not a currency code")
    retainer = retainer_of(session, org, contact)
    if retainer is None:
        retainer = Retainer(org_id=org.id, contact_id=contact.id)
        session.add(retainer)
    retainer.currency, retainer.threshold, retainer.top_up_to = currency, low, high
    retainer.started_on = started_on
    session.flush()
    log.info("org %s contact %s: retainer set", org.id, contact.id)
    return retainer


def record_top_up(session: Session, org: Organisation, contact: Contact, amount: Decimal | None,
                  received_on: date) -> RetainerTopUp:
    retainer = retainer_of(session, org, contact)
    if retainer is None:
        raise CreditRefused("this customer has no retainer")
    value = _amount(amount, "a top-up")
    if value == 0:
        raise CreditRefused("a top-up is more than zero")
    top_up = RetainerTopUp(org_id=org.id, retainer_id=retainer.id, amount=value,
                           received_on=received_on)
    session.add(top_up)
    session.flush()
    log.info("org %s contact %s: retainer top-up recorded", org.id, contact.id)
    return top_up


@dataclass(frozen=True)
class RetainerView:
    retainer: Retainer
    entries: list[RetainerEntry]
    balance: Decimal

    @property
    def low(self) -> bool:
        return self.balance < self.retainer.threshold


def retainer_view(session: Session, org: Organisation, contact: Contact) -> RetainerView | None:
    retainer = retainer_of(session, org, contact)
    if retainer is None:
        return None
    entries = retainer_entries(session, retainer)
    return RetainerView(retainer, entries, retainer_balance(entries))


def expected_payments_of(session: Session, org: Organisation,
                         contact: Contact) -> list[tuple[ExpectedPaymentRow, str]]:
    """The customer's milestones as the last planning pass recorded them, with the invoice
    number, by invoice and milestone."""
    return [(row, number or str(row.invoice_id)) for row, number in session.execute(
        select(ExpectedPaymentRow, Invoice.number)
        .join(Invoice, Invoice.id == ExpectedPaymentRow.invoice_id)
        .where(ExpectedPaymentRow.org_id == org.id, ExpectedPaymentRow.contact_id == contact.id)
        .order_by(ExpectedPaymentRow.invoice_id, ExpectedPaymentRow.milestone))]


def quote_deposits_of(session: Session, org: Organisation,
                      contact: Contact) -> list[tuple[QuoteDeposit, str, bool]]:
    """The customer's quote deposits as the last planning pass recorded them, with the quote's
    number and whether it has been invoiced since (its deposit is then chased on the invoice),
    by quote and milestone."""
    return [(row, number or str(row.quote_id), status == "invoiced")
            for row, number, status in session.execute(
                select(QuoteDeposit, Quote.number, Quote.status)
                .join(Quote, Quote.id == QuoteDeposit.quote_id)
                .where(QuoteDeposit.org_id == org.id, QuoteDeposit.contact_id == contact.id,
                       Quote.org_id == org.id)
                .order_by(QuoteDeposit.quote_id, QuoteDeposit.milestone))]


def policy_of_org(session: Session, org: Organisation) -> Policy:
    row = session.scalar(select(PolicyRow).where(PolicyRow.org_id == org.id))
    return policy_from_json(row.body) if row else default_policy()


def terms_changes(org: Organisation, contact: Contact, histories: list[InvoiceHistory],
                  position: CreditPosition, policy: Policy) -> list[TermsChange]:
    """The shorter terms the policy recommends for the customer's new invoices while blocked."""
    rule = policy.terms_on_hold
    if rule is None or not position.blocked:
        return []
    hold_since = org_today(org, contact.on_hold_at) \
        if contact.on_hold and contact.on_hold_at and rule.when != "over_limit" else None
    over_from = over_limit_since(histories, position.limit, position.currency) \
        if rule.when != "on_hold" else None
    return recommended_terms(histories, rule.due_in_days, on_hold_since=hold_since,
                             over_limit_from=over_from)


def contact_terms_changes(session: Session, org: Organisation, credit: CustomerCredit,
                          ) -> list[TermsChange]:
    histories = [h for h in invoice_histories(session, org)
                 if h.contact_id == credit.contact.id and h.is_open]
    return terms_changes(org, credit.contact, histories, credit.position,
                         policy_of_org(session, org))


@dataclass(frozen=True)
class TermsWritten:
    """One shorter due date written back (or on its way) for the customer page."""

    number: str
    was: str
    due: str
    because: str
    state: str  # done | waiting | refused


WAITING = ("planned", "claimed", "failed", "pending_approval")  # in the ledger, not run yet


def terms_write_back(session: Session, org: Organisation) -> bool:
    """Whether the policy writes shorter terms into the books (else they are recommended)."""
    rule = policy_of_org(session, org).terms_on_hold
    return rule is not None and rule.apply == "write_back"


def contact_terms_written(session: Session, org: Organisation, contact: Contact,
                          ) -> list[TermsWritten]:
    """The customer's `terms_change` actions: written, waiting in the ledger, or refused by
    the books (skipped for another reason, e.g. paid meanwhile, they are left out)."""
    found = []
    for action, number in session.execute(
            select(Action, Invoice.number).join(Invoice, Invoice.id == Action.invoice_id)
            .where(Action.org_id == org.id, Action.kind == "terms_change",
                   Invoice.org_id == org.id, Invoice.contact_id == contact.id)
            .order_by(Action.created_at, Action.id)):
        details = action.details or {}
        reason = (action.result or {}).get("reason")
        if action.status == "done":
            state = "done"
        elif action.status in WAITING:
            state = "waiting"
        elif action.status == "dead" or reason == "rejected":
            state = "refused"
        else:
            continue
        found.append(TermsWritten(number or str(action.invoice_id), str(details.get("was", "")),
                                  str(details.get("due_date", "")),
                                  str(details.get("because", "")), state))
    return found


# ----------------------------------------------------------------------- dashboard panel


CHART_WIDTH, CHART_HEIGHT, CHART_TOP = 520, 140, 20


@dataclass(frozen=True)
class ForecastBar:
    starts: date
    amount: Decimal
    invoices: int
    x: int
    y: int
    height: int


def dashboard_credit(session: Session, org: Organisation, now: datetime) -> dict[str, object]:
    """The context of customers/_dashboard_credit.html: struggling customers, the 13-week
    cash-in forecast (in the base currency, bars scaled to the largest week) and the
    backtest of the pay-date model and the risk score on the organisation's own books."""
    histories = invoice_histories(session, org)
    customers = customer_credit(session, org, now, histories=histories)
    forecast = weekly_cash_in(open_pay_dates(session, org, now, histories=histories),
                              org_today(org, now))
    currency = org.base_currency
    amounts = [week.amounts.get(currency, Decimal(0)) for week in forecast.weeks]
    top = max(amounts, default=Decimal(0))
    step = CHART_WIDTH // max(len(amounts), 1)
    bars = []
    for n, (week, amount) in enumerate(zip(forecast.weeks, amounts, strict=True)):
        height = 0 if top <= 0 else int(amount / top * CHART_HEIGHT)
        bars.append(ForecastBar(week.starts, amount, week.invoices, n * step + 4,
                                CHART_TOP + CHART_HEIGHT - height, height))
    return {"credit_struggling": [c for c in customers if c.struggling],
            "credit_blocked": [c for c in customers if c.position.blocked],
            "credit_forecast": forecast, "credit_forecast_bars": bars,
            "credit_forecast_currency": currency, "credit_bar_width": step - 8,
            "credit_chart_width": CHART_WIDTH, "credit_chart_height": CHART_TOP + CHART_HEIGHT + 30,
            "credit_backtest": backtest_org(session, org, now, histories)}
