"""Where every action is planned: `evaluate` says what is due for one invoice now, and
`next_action_at` when that will next be the case.

Both are pure functions of (invoice, ledger history, policy, calendar, now). `next_action_at`
is stored per invoice and indexed, and `evaluate` is empty for every moment before it, so the
daily run only looks at invoices whose moment has come. Nothing is done outside the policy's
sending window in the organisation's zone: a run that starts late never acts at 3 a.m.

Each concern has its own module: the ladder (rules/reminders.py), fees and interest
(rules/fees.py, rules/statutory.py), the early-payment discount (rules/discounts.py), payment
plans (rules/plans.py) and escalation (rules/escalation.py). This module decides how they
combine:
- nothing for an invoice that is not open, has nothing due, owes less than the policy's
  minimum (no fee the customer is never reminded of), or whose contact is excluded or in
  dispute;
- a discount now due closes the invoice: nothing else goes with it;
- while a payment plan is kept, only its instalment reminders go; the ladder, fees and
  escalation wait. Once broken, they resume, and fees count from the missed instalment;
- otherwise the latest due reminder, every fee period due, and the escalations due;
- an invoice already late when first chased gets the first-contact step, and its later steps
  and escalations keep their spacing from that contact (rules/reminders.contact_anchor);
- a fee rule counts lateness from its effective date only (rules/policy.LateFee);
- a pause or a dispute plans nothing while it holds, and fees and interest count none of its
  days after it (the invoice's `holds`, rules/fees.FeeDays): on resumption the ladder goes on
  from the step it had reached, and fees from the day chasing resumed;
- a document Dunwell made (a fee invoice) is never chased on its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache

from rules.actions import PlannedAction
from rules.calendar import OrgCalendar, require_aware
from rules.deposits import due_deposit_reminders, next_deposit_moment, qualifies
from rules.discounts import discount_key, due_discount
from rules.escalation import due_escalations, next_escalation_moment
from rules.fees import (
    ChargedFee,
    FeeCharge,
    FeeDays,
    FeeInvoice,
    FlatFeeRule,
    LateFeeRule,
    PercentageFeeRule,
    StatutoryCompensationRule,
    charge_day,
    due_fees,
    fee_key,
)
from rules.invoice import ZERO, InvoiceState, PastAction, PaymentPlan
from rules.plans import (
    PlanState,
    due_instalment_reminder,
    next_instalment_moment,
    plan_break_moment,
    plan_state,
)
from rules.policy import LateFee, Policy
from rules.promises import due_follow_up, resume_moment, waiting
from rules.reminders import (
    contact_anchor,
    due_reminder,
    next_reminder_moment,
    send_moment,
    step_now,
)
from rules.statutory import (
    FxRateRequired,
    NotApplicable,
    RateNotCovered,
    RateTable,
    floor_money,
    minor_unit_digits,
    refusal_facts,
    round_money,
)
from rules.validation import PolicyError

Window = tuple[datetime, datetime]
# Safety stop for the search of a sending window; any real calendar has one within a week or two.
LOOKAHEAD_DAYS = 60
ONE_OFF = (FlatFeeRule, PercentageFeeRule, StatutoryCompensationRule)
FAR_FUTURE = datetime.max.replace(tzinfo=UTC)


@dataclass(slots=True)
class Settled:
    """The ledger of one invoice, read once: which keys exist, and what they tell the planner."""

    keys: set[str] = field(default_factory=set)
    done: set[str] = field(default_factory=set)
    first_open_reminder: int = 0
    charged: list[ChargedFee] = field(default_factory=list)
    # A discount on its way (planned, running, retrying or done) closes the invoice: nothing
    # else is chased while the rest of it is being credited. Skipped or dead, chasing resumes.
    closing: bool = False
    # The invoice's first reminder in the ledger: (step, when it was planned for).
    first_reminder: tuple[int, datetime | None] | None = None


def settle(invoice: InvoiceState, history: Sequence[PastAction]) -> Settled:
    settled = Settled()
    if not history:
        return settled
    prefix = f"{invoice.org_id}:{invoice.invoice_id}:"
    reminder, fee, discount = prefix + "reminder:", prefix + "fee:", prefix + "discount"
    for past in history:
        key = past.key
        settled.keys.add(key)
        if past.status == "done":
            settled.done.add(key)
        if key == discount and past.status in ("planned", "claimed", "failed", "done"):
            settled.closing = True
        if key.startswith(reminder):
            tail = key[len(reminder):]
            if tail.isdigit():
                index = int(tail)
                settled.first_open_reminder = max(settled.first_open_reminder, index + 1)
                if settled.first_reminder is None or index < settled.first_reminder[0]:
                    settled.first_reminder = (index, past.at)
        elif key.startswith(fee):
            settled.charged.append(ChargedFee(key=key, amount=past.amount or 0))  # type: ignore[arg-type]
    return settled


# ------------------------------------------------------------------------- sending window


@lru_cache(maxsize=65536)
def _window(calendar: OrgCalendar, business_days_only: bool, day: date, send_time: object,
            hours: int) -> Window | None:
    """Sending hours of a local day, as wall times: [send_time, send_time + hours)."""
    if business_days_only and not calendar.is_business_day(day):
        return None
    start = datetime.combine(day, send_time)  # type: ignore[arg-type]
    end = start + timedelta(hours=hours)  # by the policy's rule, at most midnight
    return (calendar.at_local(day, start.time()), calendar.at_local(end.date(), end.time()))


def _window_of(day: date, policy: Policy, calendar: OrgCalendar) -> Window | None:
    return _window(calendar, policy.business_days_only, day, policy.send_time,
                   policy.send_window_hours)


def sendable(now: datetime, policy: Policy, calendar: OrgCalendar) -> bool:
    window = _window_of(calendar.today(now), policy, calendar)
    return window is not None and window[0] <= now < window[1]


def first_sendable(moment: datetime, policy: Policy, calendar: OrgCalendar) -> datetime | None:
    """The earliest moment at or after `moment` inside a sending window."""
    day = calendar.today(moment)
    for _ in range(LOOKAHEAD_DAYS):
        window = _window_of(day, policy, calendar)
        if window is not None and max(moment, window[0]) < window[1]:
            return max(moment, window[0])
        day += timedelta(days=1)
    return None


# ------------------------------------------------------------------------------- fees


def _chaseable(invoice: InvoiceState) -> bool:
    return (invoice.status == "open" and invoice.amount_due > 0 and not invoice.excluded
            and not invoice.disputed and not invoice.own_document
            and not (invoice.pause is not None and invoice.pause.until is None))


def _paused(invoice: InvoiceState, today: date) -> bool:
    """A collector paused chasing and the day it resumes has not come."""
    return invoice.pause is not None and invoice.pause.holds(today)


def _active_plan(invoice: InvoiceState) -> PaymentPlan | None:
    plan = invoice.plan
    return plan if plan is not None and plan.status == "active" and plan.instalments else None


@dataclass(frozen=True, slots=True)
class _FeeRun:
    """One fee rule as it applies to this invoice now: under which id, from which due date.

    `carried` is what the rule charged under its own id before a plan that is now broken: it
    counts against the rule's cap_percent_of_principal as the run's own charges do."""

    rule_id: str
    rule: LateFeeRule
    due_date: date
    carried: Decimal = Decimal(0)

    def charged(self, invoice: InvoiceState, settled: Settled) -> list[ChargedFee]:
        """The ledger's charges as due_fees reads them: `carried` as one more charge under the
        run's prefix, not numbered like a period, so it adds to the total and to no period."""
        if not self.carried:
            return settled.charged
        prefix = fee_key(invoice.org_id, invoice.invoice_id, self.rule_id, 0)[:-1]
        return [*settled.charged, ChargedFee(key=prefix + "before-plan", amount=self.carried)]


def _fee_runs(invoice: InvoiceState, policy: Policy, settled: Settled,
              state: PlanState | None, plan: PaymentPlan | None) -> list[_FeeRun]:
    runs = []
    for fee in policy.late_fees:
        if state is None or state.missed is None or plan is None:
            runs.extend(_looking_forward(invoice, fee))
            continue
        runs.extend(_resumed(invoice, fee, settled, plan, state.missed.due_date))
    return runs


def _looking_forward(invoice: InvoiceState, fee: LateFee) -> list[_FeeRun]:
    """The rule's run from its effective date: lateness before it is not charged. An invoice
    already late that day owes no one-off fee, and its periods (interest, repeating fees)
    start that day, as a run of their own from a due date moved back by the grace."""
    rule, since = fee.rule, fee.effective_from
    if since is None or invoice.due_date + timedelta(days=rule.grace_days + 1) >= since:
        return [_FeeRun(fee.id, rule, invoice.due_date)]
    if isinstance(rule, ONE_OFF):
        return []
    return [_FeeRun(fee.id, rule, since - timedelta(days=rule.grace_days + 1))]


def _resumed(invoice: InvoiceState, fee: LateFee, settled: Settled, plan: PaymentPlan,
             missed_due: date) -> list[_FeeRun]:
    """A broken plan: the rule starts again from the missed instalment, as a new run of periods
    (its own keys), with what it charged before the plan counting against max_charges and
    the cap; a one-off fee already charged is not charged again."""
    before = fee_key(invoice.org_id, invoice.invoice_id, fee.id, 0)[:-1]
    charges = [c for c in settled.charged if c.key.startswith(before)]
    earlier = len(charges)
    rule = fee.rule
    if isinstance(rule, ONE_OFF):
        return [] if earlier else [_FeeRun(f"{fee.id}.plan{plan.plan_id}", rule, missed_due)]
    max_charges = getattr(rule, "max_charges", None)
    if max_charges is not None:
        if earlier >= max_charges:
            return []
        rule = rule.model_copy(update={"max_charges": max_charges - earlier})
    carried = sum((Decimal(c.amount) for c in charges), Decimal(0))
    return [_FeeRun(f"{fee.id}.plan{plan.plan_id}", rule, missed_due, carried)]


@dataclass(frozen=True, slots=True)
class FeeNotCharged:
    """A fee rule that could not charge an invoice, for the owner: in English (`str`, for the
    logs) and as a code with its figures (`facts`, which a page words in its language)."""

    number: str
    rule_id: str
    error: RateNotCovered | FxRateRequired | NotApplicable | PolicyError

    def __str__(self) -> str:
        why = self.error if isinstance(self.error, PolicyError) else self.error.plain
        return f"{self.number}: fee {self.rule_id!r} not charged: {why}"

    def facts(self) -> dict[str, str]:
        found = refusal_facts(self.error)
        if found["code"] == "other":
            found["plain"] = str(self)  # a refusal without figures: its English, as stored
        return {"problem": "fee_not_charged", "number": self.number, "rule": self.rule_id,
                **found}


def _fee_invoice(invoice: InvoiceState, due_date: date) -> FeeInvoice:
    return FeeInvoice(org_id=invoice.org_id, invoice_id=invoice.invoice_id,
                      currency=invoice.currency, principal=invoice.principal,
                      due_date=due_date, payments=invoice.payments,
                      is_business=invoice.is_business, status=invoice.status,
                      holds=invoice.holds)


def _charge_day(charge: FeeCharge, invoice: InvoiceState) -> date:
    """A fee's day, or the day after interest's period: past a hold that began then."""
    if charge.kind != "interest":
        return charge.period_start
    after = charge.period_end + timedelta(days=1)
    if not invoice.holds:
        return after
    return FeeDays(charge.period_end, invoice.holds).day(after) or after


def statement_day(day: date, policy: Policy) -> date:
    """The statement day on or after `day` (the policy's day of the month, else the 1st).

    A fee placed on a statement invoice waits for it: every such fee of one contact that fell
    due in the same statement period is invoiced together, on one fee invoice, that day."""
    day_of_month = policy.statement_day or 1
    if day.day <= day_of_month:
        return day.replace(day=day_of_month)
    month = day.month % 12 + 1
    return date(day.year + (day.month == 12), month, day_of_month)


def _fee_day(charge_day: date, placement: str, policy: Policy) -> date:
    return statement_day(charge_day, policy) if placement == "statement_invoice" else charge_day


def _fee_action(invoice: InvoiceState, charge: FeeCharge, policy: Policy,
                calendar: OrgCalendar) -> PlannedAction:
    day = _fee_day(_charge_day(charge, invoice), charge.placement, policy)
    details: dict[str, object] = {
        "rule_id": charge.rule_id, "period": charge.period,
        "period_start": charge.period_start.isoformat(),
        "period_end": charge.period_end.isoformat(), "placement": charge.placement,
        "account_code": charge.account_code, "tax_rate": charge.tax_rate, "item": charge.item}
    if charge.placement == "statement_invoice":
        details["statement"] = day.isoformat()
        details["contact_id"] = invoice.contact_id
    return PlannedAction(
        key=charge.key, kind=charge.kind, invoice_id=invoice.invoice_id,
        org_id=invoice.org_id, amount=charge.amount, currency=charge.currency,
        scheduled_for=send_moment(calendar, policy.business_days_only, day, policy.send_time),
        reason=f"{charge.reason} ({invoice.number})", details=details)


def _next_charge_day(invoice: InvoiceState, run: _FeeRun, settled: Settled) -> date | None:
    """The day the rule's first uncharged period becomes chargeable, if it ever can."""
    rule = run.rule
    if ((rule.business_contacts_only and not invoice.is_business)
            or (rule.currency is not None and rule.currency != invoice.currency)):
        return None
    prefix = fee_key(invoice.org_id, invoice.invoice_id, run.rule_id, 0)[:-1]
    charged = run.charged(invoice, settled)
    periods = {int(c.key[len(prefix):]) for c in charged
               if c.key.startswith(prefix) and c.key[len(prefix):].isdigit()}
    fee_invoice = _fee_invoice(invoice, run.due_date)
    if isinstance(rule, ONE_OFF):
        return None if periods else charge_day(rule, fee_invoice, 0)
    k = 0
    while k in periods:
        k += 1
    max_charges = getattr(rule, "max_charges", None)
    if max_charges is not None and k >= max_charges:
        return None
    if rule.cap_percent_of_principal is not None:
        total = sum((c.amount for c in charged if c.key.startswith(prefix)), Decimal(0))
        # Floored, as due_fees floors it: at a cap of 3.33 of 3.333 nothing more is charged.
        if total >= floor_money(invoice.principal * rule.cap_percent_of_principal / 100,
                                invoice.currency):
            return None
    return charge_day(rule, fee_invoice, k)


# ------------------------------------------------------------------------------ planning


def evaluate(invoice: InvoiceState, history: Sequence[PastAction], policy: Policy,
             calendar: OrgCalendar, now: datetime, *,
             problems: list[FeeNotCharged] | None = None,
             tables: Mapping[str, RateTable] | None = None) -> list[PlannedAction]:
    """What is due for this invoice now. A fee that cannot be computed (a rate table without
    the period, a missing exchange rate) is left out and explained in `problems`."""
    require_aware(now)
    if not _chaseable(invoice) or not sendable(now, policy, calendar):
        return []
    if _paused(invoice, calendar.today(now)):
        return []  # no reminder and no fee before the day chasing resumes
    if waiting(invoice, calendar.today(now)):
        return []  # the customer promised a day: nothing is chased before it
    settled = settle(invoice, history)
    if settled.closing:
        return []
    follow_up = due_follow_up(invoice, settled.keys, policy, calendar, now)
    if follow_up is not None:
        return [follow_up]  # a broken promise: its own reminder first, the ladder after it
    offer = policy.early_payment_discount
    if offer is not None and discount_key(invoice) not in settled.keys:
        discount = due_discount(invoice, offer, policy, calendar, now)
        if discount is not None:
            return [discount]
    plan = _active_plan(invoice)
    state = None
    if plan is not None:
        state = plan_state(invoice, plan, policy.payment_plans.grace_days, calendar.today(now))
        if state.kept:
            reminder = due_instalment_reminder(invoice, plan, state, settled.keys, policy,
                                               calendar, now)
            return [] if reminder is None else [reminder]
    if invoice.amount_due < policy.min_amount_due:
        return []  # too small to chase: no reminder, so no fee the customer is not told of
    actions: list[PlannedAction] = []
    anchor = contact_anchor(invoice, policy, calendar, settled.first_reminder)
    reminder = due_reminder(invoice, settled.first_open_reminder, policy, calendar, now, anchor)
    if reminder is not None:
        actions.append(reminder)
    actions.extend(due_deposit_reminders(invoice, settled.keys, policy, calendar, now))
    today = calendar.today(now)
    for run in _fee_runs(invoice, policy, settled, state, plan):
        try:
            charges = due_fees(run.rule, _fee_invoice(invoice, run.due_date),
                               run.charged(invoice, settled),
                               today, rule_id=run.rule_id, tables=tables)
        except (RateNotCovered, FxRateRequired, NotApplicable, PolicyError) as exc:
            if problems is not None:  # the owner reads them: plain words, no file or option
                problems.append(FeeNotCharged(invoice.number, run.rule_id, exc))
            continue
        for charge in charges:
            action = _fee_action(invoice, charge, policy, calendar)
            if charge.placement != "statement_invoice" or action.scheduled_for <= now:
                actions.append(action)  # a fee for a statement invoice waits for its day
    if reminder is not None and reminder.details.get("first_contact"):
        # Escalation counts from the first contact too: no final demand on the first day.
        assert reminder.step_index is not None
        anchor = calendar.today(now) - timedelta(
            days=policy.reminder_steps[reminder.step_index].offset_days)
    actions.extend(due_escalations(invoice, settled.keys, settled.done, policy, calendar, now,
                                   anchor))
    return actions


# Why the next reminder cannot go now (the page words each code).
NOT_NOW = ("not_open", "excluded", "disputed", "own_document", "paused", "promised", "closing",
           "plan", "reminder_waiting", "no_step")


def reminder_now(invoice: InvoiceState, history: Sequence[PastAction], policy: Policy,
                 calendar: OrgCalendar, now: datetime, by: str) -> PlannedAction | str:
    """The next ladder step, planned for now at a collector's request, or the code (NOT_NOW)
    of why not: the same invoices the daily run would leave alone are left alone here."""
    require_aware(now)
    if invoice.status != "open" or invoice.amount_due <= 0:
        return "not_open"
    for code, applies in (("excluded", invoice.excluded), ("disputed", invoice.disputed),
                          ("own_document", invoice.own_document),
                          ("paused", _paused(invoice, calendar.today(now))),
                          ("promised", waiting(invoice, calendar.today(now))),
                          ("plan", _active_plan(invoice) is not None)):
        if applies:
            return code
    settled = settle(invoice, history)
    if settled.closing:
        return "closing"
    reminders = f"{invoice.org_id}:{invoice.invoice_id}:reminder:"
    if any(past.key.startswith(reminders) and past.status in WAITING for past in history):
        return "reminder_waiting"  # one on its way already: not a second on top of it
    step = step_now(invoice, settled.first_open_reminder, policy, calendar, now, by)
    return "no_step" if step is None else step


WAITING = ("planned", "claimed", "failed", "pending_approval")


def next_action_at(invoice: InvoiceState, history: Sequence[PastAction], policy: Policy,
                   calendar: OrgCalendar, now: datetime) -> datetime | None:
    """The first moment at or after `now` when evaluate() may return an action, if nothing
    changes; None when nothing is left to do. Stored and indexed to pick the day's work."""
    require_aware(now)
    moment = _earliest(invoice, history, policy, calendar, now)
    if moment is None:
        return None
    return first_sendable(max(moment, now), policy, calendar)


def _earliest(invoice: InvoiceState, history: Sequence[PastAction], policy: Policy,
              calendar: OrgCalendar, now: datetime) -> datetime | None:
    """The earliest moment something may fall due, before the sending window is applied."""
    if not _chaseable(invoice):
        return None
    if _paused(invoice, calendar.today(now)):
        assert invoice.pause is not None and invoice.pause.until is not None  # _chaseable
        # The ladder is asked again on the day: it goes on from the steps already taken.
        return send_moment(calendar, policy.business_days_only, invoice.pause.until,
                           policy.send_time)
    if waiting(invoice, calendar.today(now)):
        return resume_moment(invoice, policy, calendar)
    settled = settle(invoice, history)
    if settled.closing:
        return None
    if due_follow_up(invoice, settled.keys, policy, calendar, now) is not None:
        return now
    candidates: list[datetime | None] = []
    offer = policy.early_payment_discount
    if offer is not None and discount_key(invoice) not in settled.keys:
        discount = due_discount(invoice, offer, policy, calendar, FAR_FUTURE)
        if discount is not None and discount.scheduled_for <= now:
            return now  # due: it alone goes, at once
        if discount is not None:
            # Due later (a payment dated ahead): until then evaluate plans as usual.
            candidates.append(discount.scheduled_for)
    plan = _active_plan(invoice)
    state = None
    if plan is not None:
        state = plan_state(invoice, plan, policy.payment_plans.grace_days, calendar.today(now))
        if state.kept:
            candidates.append(next_instalment_moment(invoice, plan, state, settled.keys,
                                                     policy, calendar))
            candidates.append(plan_break_moment(invoice, plan, policy, calendar))
    if (state is None or not state.kept) and invoice.amount_due >= policy.min_amount_due:
        anchor = contact_anchor(invoice, policy, calendar, settled.first_reminder)
        candidates.append(next_reminder_moment(invoice, settled.first_open_reminder,
                                               policy, calendar, anchor))
        candidates.append(next_escalation_moment(invoice, settled.keys, settled.done, policy,
                                                 calendar, anchor))
        candidates.append(next_deposit_moment(invoice, settled.keys, policy, calendar, now))
        for run in _fee_runs(invoice, policy, settled, state, plan):
            day = _next_charge_day(invoice, run, settled)
            if day is not None:
                candidates.append(send_moment(calendar, policy.business_days_only,
                                              _fee_day(day, run.rule.placement, policy),
                                              policy.send_time))
    return min((c for c in candidates if c is not None), default=None)


@dataclass(slots=True)
class _PolicyMemo:
    """What a planning pass keeps per policy: the answers so far, and the capped fee rules as
    (key tail before the period, cap percent)."""

    policy: Policy  # held so that its id stays its own
    answers: dict[tuple[object, ...], datetime | None]
    caps: tuple[tuple[str, Decimal], ...]


class NextActionPlanner:
    """next_action_at for many invoices at one `now` (one planning pass), same answers, faster.

    The earliest moment of most invoices depends on few facts: the due date, whether the
    contact has an email address and is a business, the currency, whether the balance reaches
    the policy's minimum, whether each capped fee rule still has room under its cap, and the
    ledger's entries by what they are (their keys without the invoice's own prefix, and their
    status), not by which invoice they belong to. The answer is computed once per distinct
    combination and policy, and the sending window once per moment. Invoices whose answer
    depends on more (a payment plan, a promise, a pause or dispute past or present, an
    early-payment discount within reach, a deposit, a ledger entry not keyed by the invoice)
    go through next_action_at's own path.
    """

    def __init__(self, calendar: OrgCalendar, now: datetime) -> None:
        require_aware(now)
        self.calendar, self.now = calendar, now
        self._memos: dict[int, _PolicyMemo] = {}
        self._last: _PolicyMemo | None = None
        self._sendable: dict[tuple[int, datetime], datetime | None] = {}

    def _memo(self, policy: Policy) -> _PolicyMemo:
        """The policy's memo, made on first sight (the caller has found it is not the last)."""
        memo = self._memos.get(id(policy))
        if memo is None:
            caps = tuple((f"fee:{fee.id}:", fee.rule.cap_percent_of_principal)
                         for fee in policy.late_fees
                         if not isinstance(fee.rule, ONE_OFF)
                         and fee.rule.cap_percent_of_principal is not None)
            memo = self._memos[id(policy)] = _PolicyMemo(policy, {}, caps)
        self._last = memo
        return memo

    def __call__(self, invoice: InvoiceState, history: Sequence[PastAction],
                 policy: Policy) -> datetime | None:
        if not _chaseable(invoice):
            return None  # as _earliest
        if _active_plan(invoice) is not None or invoice.promise is not None \
                or invoice.pause is not None or invoice.holds \
                or (invoice.payments and self._discount_possible(invoice, policy)) \
                or (policy.deposits is not None and qualifies(invoice, policy.deposits)):
            return next_action_at(invoice, history, policy, self.calendar, self.now)
        memo = self._last
        if memo is None or memo.policy is not policy:
            memo = self._memo(policy)
        caps = memo.caps
        ledger: frozenset[tuple[str, str]] = _NO_LEDGER
        room: object = ()
        if history:
            found = self._ledger(invoice, history, caps)
            if found is None:
                return next_action_at(invoice, history, policy, self.calendar, self.now)
            ledger, charged = found
            if caps:
                room = tuple(total < floor_money(invoice.principal * cap / 100,
                                                 invoice.currency)
                             for (_, cap), total in zip(caps, charged, strict=True))
        elif caps:
            # Nothing charged: a rule has room while its floored cap is at least one minor
            # unit, that is principal * cap / 100 >= 10 ** -digits (exact, no rounding).
            least = _LEAST_CAP_PRODUCT.get(invoice.currency) \
                or _least_cap_product(invoice.currency)
            principal = invoice.principal
            room = tuple([principal * cap >= least for _, cap in caps])
        anchor = None
        if history:
            anchor = contact_anchor(invoice, policy, self.calendar,
                                    settle(invoice, history).first_reminder)
        key = (invoice.due_date, invoice.has_email, invoice.is_business, invoice.currency,
               invoice.amount_due >= policy.min_amount_due, room, ledger, anchor)
        answers = memo.answers
        moment = answers.get(key, FAR_FUTURE)
        if moment is FAR_FUTURE:
            moment = answers[key] = _earliest(invoice, history, policy, self.calendar,
                                              self.now)
        if moment is None:
            return None
        if moment < self.now:
            moment = self.now
        sendable = self._sendable
        found_at = sendable.get((id(policy), moment), FAR_FUTURE)
        if found_at is FAR_FUTURE:
            found_at = sendable[(id(policy), moment)] = first_sendable(moment, policy,
                                                                       self.calendar)
        return found_at

    @staticmethod
    def _ledger(invoice: InvoiceState, history: Sequence[PastAction],
                caps: tuple[tuple[str, Decimal], ...]
                ) -> tuple[frozenset[tuple[str, str]], list[Decimal]] | None:
        """The ledger as settle() reads it, without the invoice's prefix: (key tail, status)
        for each entry, and what each capped rule has charged (whether it still has room is
        part of the answer's key; the amounts themselves are not). None: an entry is not
        keyed by this invoice, so its meaning cannot be shared with another's."""
        prefix = f"{invoice.org_id}:{invoice.invoice_id}:"
        size = len(prefix)
        entries = []
        charged = [ZERO] * len(caps)
        for past in history:
            key = past.key
            if not key.startswith(prefix):
                return None
            tail = key[size:]
            entries.append((tail, past.status))
            if caps and tail.startswith("fee:"):
                for i, (rule_prefix, _) in enumerate(caps):
                    if tail.startswith(rule_prefix):
                        charged[i] += past.amount or 0
        return frozenset(entries), charged

    @staticmethod
    def _discount_possible(invoice: InvoiceState, policy: Policy) -> bool:
        """Whether due_discount could find anything: a balance no larger than the discount
        and a payment inside the window (its own two tests; the balance first, as a balance
        more than one whole unit above the unrounded discount cannot round down to it)."""
        offer = policy.early_payment_discount
        if offer is None or not invoice.payments or invoice.issue_date is None:
            return False
        discount = invoice.principal * offer.percent / 100
        if invoice.amount_due > discount + 1:  # far above it, whatever the currency
            return False
        if invoice.amount_due > round_money(discount, invoice.currency):
            return False
        last_day = invoice.issue_date + timedelta(days=offer.within_days)
        return any(when <= last_day for when, _ in invoice.payments)


_LEAST_CAP_PRODUCT: dict[str, Decimal] = {}
_NO_LEDGER: frozenset[tuple[str, str]] = frozenset()


def _least_cap_product(currency: str) -> Decimal:
    """100 * the currency's minor unit: the least principal * cap percent whose floored cap
    is not zero."""
    least = _LEAST_CAP_PRODUCT[currency] = Decimal(100).scaleb(-minor_unit_digits(currency))
    return least
