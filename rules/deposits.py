"""Deposits and milestones: large invoices paid in agreed shares (30/30/40...), each an
expected payment with its own reminders.

An invoice qualifies when the policy has a `deposits` rule, the invoice is in the rule's
currency and its principal (before any fee Dunwell added) is at least the threshold. Milestone
k falls due `due_offset_days` after the issue date and asks for its share of the principal,
rounded half up to the currency's minor unit; the last takes what is left, so the shares add up
to the principal exactly. A milestone is met once the payments on the invoice, in date order,
reach its cumulative amount (the deposit plus every earlier share): the day of the payment that
got there is the day it was met.

Reminders: for each milestone not yet met, one at each of the rule's `reminder_offsets` (days
from the milestone's due day) at the policy's send time; like the ladder, only the latest one
due is sent (earlier ones missed by a late run are superseded), and none once it is met. Keys:
`<org>:<invoice>:deposit:<milestone>:<reminder>`.

Quotes (`applies_to: quotes | both`): an ACCEPTED quote (Xero Quote ACCEPTED, QuickBooks
Estimate TxnStatus Accepted) in the rule's currency whose total is at least the threshold owes
its deposit before work starts: the schedule's first milestone and any that fall due on the same
day as it (30/30/40 with offsets 0/30/60: the 30 %), as shares of the quote's total, due
`due_offset_days` after the day the quote was accepted (QuickBooks' AcceptedDate; Xero records
none, so the day the sync first saw it accepted). The later milestones belong to the invoices.

How a payment is matched to a quote, kept simple and stated here because the providers differ:
- Only payments on invoices the provider itself links to the quote count: QuickBooks lists the
  invoices made from an estimate (a deposit or progress invoice, or the final one) in the
  estimate's LinkedTxn. A deposit milestone is met once the payments on those invoices, in date
  order, reach its cumulative amount. Dunwell never guesses a link from amounts or references.
- Xero's API keeps no link between a quote and an invoice, so in Xero no payment is matched to
  a quote: its deposit is chased until the quote leaves ACCEPTED.
- A quote that leaves ACCEPTED (INVOICED / Closed, DECLINED / Rejected, DELETED) is chased no
  more. Once invoiced, what is owed is on an invoice, and the invoice policy chases it (with
  `applies_to: both`, with its own milestones) - the deposit is then not "met" but "invoiced".

Quote reminders go by Dunwell's own email (neither provider emails a quote through our
connectors), under the keys `<org>:quote<quote>:deposit:<milestone>:<reminder>`.
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from rules.actions import ActionKind, PlannedAction, action_key
from rules.calendar import OrgCalendar
from rules.invoice import InvoiceState
from rules.policy import DepositRule, Policy
from rules.reminders import send_moment
from rules.statutory import round_money

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class ExpectedPayment:
    """One milestone of one invoice: what is expected, by when, and whether it came."""

    index: int  # 0-based; 0 is the deposit when its offset is 0
    count: int  # milestones in the schedule
    percent: Decimal
    amount: Decimal
    cumulative: Decimal  # payments on the invoice must reach this
    due_date: date
    met_on: date | None = None

    @property
    def label(self) -> str:
        return "Deposit" if self.index == 0 else f"Milestone {self.index + 1} of {self.count}"


def qualifies(invoice: InvoiceState, rule: DepositRule | None) -> bool:
    return (rule is not None and rule.applies_to != "quotes" and invoice.issue_date is not None
            and invoice.currency == rule.currency and invoice.principal >= rule.threshold)


def expected_payments(invoice: InvoiceState, rule: DepositRule) -> list[ExpectedPayment]:
    """The invoice's milestones with the day each was met, if it was ([] if it does not
    qualify)."""
    if not qualifies(invoice, rule):
        return []
    assert invoice.issue_date is not None
    principal = invoice.principal
    count = len(rule.schedule)
    amounts = [round_money(principal * m.percent / 100, invoice.currency)
               for m in rule.schedule[:-1]]
    amounts.append(round_money(principal - sum(amounts, ZERO), invoice.currency))
    paid_by: list[tuple[date, Decimal]] = []
    running = ZERO
    for when, amount in sorted(invoice.payments):
        running += amount
        paid_by.append((when, running))
    result = []
    cumulative = ZERO
    for index, (milestone, amount) in enumerate(zip(rule.schedule, amounts, strict=True)):
        cumulative += amount
        met_on = next((when for when, total in paid_by if total >= cumulative), None)
        result.append(ExpectedPayment(
            index=index, count=count, percent=milestone.percent, amount=amount,
            cumulative=cumulative,
            due_date=invoice.issue_date + timedelta(days=milestone.due_offset_days),
            met_on=met_on))
    return result


def deposit_key(invoice: InvoiceState, milestone: int, reminder: int) -> str:
    return action_key(invoice.org_id, invoice.invoice_id, "deposit", milestone, reminder)


def _moment(milestone: ExpectedPayment, offset: int, policy: Policy,
            calendar: OrgCalendar) -> datetime:
    return send_moment(calendar, policy.business_days_only,
                       milestone.due_date + timedelta(days=offset), policy.send_time)


def _open_milestones(invoice: InvoiceState, policy: Policy) -> list[ExpectedPayment]:
    rule = policy.deposits
    if rule is None:
        return []
    return [m for m in expected_payments(invoice, rule) if m.met_on is None]


def _taken(invoice: InvoiceState, milestone: int, reminders: int, keys: Set[str]) -> int:
    """The last reminder of the milestone already in the ledger (-1: none)."""
    return max((r for r in range(reminders) if deposit_key(invoice, milestone, r) in keys),
               default=-1)


def due_deposit_reminders(invoice: InvoiceState, keys: Set[str], policy: Policy,
                          calendar: OrgCalendar, now: datetime) -> list[PlannedAction]:
    """For each milestone not met, the latest reminder whose moment has come and that is not
    in the ledger yet."""
    rule = policy.deposits
    if rule is None:
        return []
    actions = []
    for milestone in _open_milestones(invoice, policy):
        taken = _taken(invoice, milestone.index, len(rule.reminder_offsets), keys)
        best = None
        for r in range(taken + 1, len(rule.reminder_offsets)):
            if _moment(milestone, rule.reminder_offsets[r], policy, calendar) > now:
                break
            best = r
        if best is None:
            continue
        offset = rule.reminder_offsets[best]
        paid = sum((a for _, a in invoice.payments), ZERO)
        still = round_money(max(milestone.cumulative - paid, ZERO), invoice.currency)
        days = (calendar.today(now) - milestone.due_date).days
        unit = "day" if abs(days) == 1 else "days"
        when = ("due today" if days == 0 else f"due in {-days} {unit}" if days < 0
                else f"{days} {unit} overdue")
        actions.append(PlannedAction(
            key=deposit_key(invoice, milestone.index, best), kind="deposit_reminder",
            invoice_id=invoice.invoice_id, org_id=invoice.org_id,
            scheduled_for=_moment(milestone, offset, policy, calendar),
            reason=(f"{milestone.label} ({milestone.percent} %) of {invoice.number}:"
                    f" {invoice.currency} {still} {when}"),
            amount=still, currency=invoice.currency, channel=rule.channel,
            template="deposit", step_index=best, step_count=len(rule.reminder_offsets),
            details={"milestone": milestone.index + 1, "milestones": milestone.count,
                     "percent": str(milestone.percent), "share": str(milestone.amount),
                     "cumulative": str(milestone.cumulative),
                     "milestone_due": milestone.due_date.isoformat()}))
    return actions


def next_deposit_moment(invoice: InvoiceState, keys: Set[str], policy: Policy,
                        calendar: OrgCalendar, now: datetime) -> datetime | None:
    """The first moment after `now` a reminder of an unmet milestone falls due (one due at
    or before `now` and not planned yet counts as `now`)."""
    rule = policy.deposits
    if rule is None:
        return None
    found: list[datetime] = []
    for milestone in _open_milestones(invoice, policy):
        taken = _taken(invoice, milestone.index, len(rule.reminder_offsets), keys)
        for r in range(taken + 1, len(rule.reminder_offsets)):
            # One already due and not planned yet: evaluate() plans it now.
            found.append(max(now, _moment(milestone, rule.reminder_offsets[r], policy,
                                          calendar)))
            break
    return min(found, default=None)


# A milestone reminder in each language the ladder speaks; {label} is the deposit or the
# milestone, named as the language does.
DEPOSIT_TEXTS: dict[str, dict[str, str]] = {
    "en": {"deposit": "The deposit", "milestone": "Milestone {n} of {count}",
           "subject": "{label} on invoice {number}: {currency} {still} due {due}",
           "greeting": "Dear {name},",
           "body": "As agreed, invoice {number} is paid in {count} parts. {label} ({percent} %,"
                   " {currency} {share}) is due on {due}; {currency} {still} of it is still to"
                   " come.",
           "pay": "Pay online: {link}", "closing": "Kind regards,"},
    "de": {"deposit": "Die Anzahlung", "milestone": "Teilzahlung {n} von {count}",
           "subject": "{label} zu Rechnung {number}: {currency} {still} fällig am {due}",
           "greeting": "Sehr geehrte Damen und Herren von {name},",
           "body": "Wie vereinbart wird Rechnung {number} in {count} Teilen bezahlt. {label}"
                   " ({percent} %, {currency} {share}) ist am {due} fällig; davon stehen noch"
                   " {currency} {still} aus.",
           "pay": "Online bezahlen: {link}", "closing": "Mit freundlichen Grüßen"},
    "nb": {"deposit": "Forskuddet", "milestone": "Delbetaling {n} av {count}",
           "subject": "{label} på faktura {number}: {currency} {still} forfaller {due}",
           "greeting": "Hei {name},",
           "body": "Som avtalt betales faktura {number} i {count} deler. {label} ({percent} %,"
                   " {currency} {share}) forfaller {due}; {currency} {still} av dette gjenstår.",
           "pay": "Betal på nett: {link}", "closing": "Med vennlig hilsen"},
    "pl": {"deposit": "Zaliczka", "milestone": "Rata {n} z {count}",
           "subject": "{label} do faktury {number}: {currency} {still}, termin płatności {due}",
           "greeting": "Szanowni Państwo ({name}),",
           "body": "Zgodnie z ustaleniami faktura {number} jest płatna w {count} częściach."
                   " {label} ({percent} %, {currency} {share}) jest płatna do {due}; do zapłaty"
                   " pozostaje {currency} {still}.",
           "pay": "Zapłać online: {link}", "closing": "Z poważaniem"},
    "he": {"deposit": "המקדמה", "milestone": "תשלום {n} מתוך {count}",
           "subject": "{label} לחשבונית {number}: {currency} {still} לתשלום עד {due}",
           "greeting": "שלום {name},",
           "body": "כפי שסוכם, חשבונית {number} משולמת ב-{count} תשלומים. {label} ({percent} %,"
                   " {currency} {share}) לתשלום עד {due}; נותרו לתשלום {currency} {still}.",
           "pay": "לתשלום מקוון: {link}", "closing": "בברכה,"},
}


def deposit_message(contact_name: str, business_name: str, invoice_number: str,
                    currency: str, details: dict[str, str], still_due: Decimal,
                    payment_link: str | None = None, language: str = "en") -> tuple[str, str]:
    """Subject and text of a milestone reminder, in the contact's language (English for one
    we do not speak)."""
    words = DEPOSIT_TEXTS.get(language, DEPOSIT_TEXTS["en"])
    milestone, count = int(details["milestone"]), int(details["milestones"])
    label = words["deposit"] if milestone == 1 else words["milestone"].format(n=milestone,
                                                                              count=count)
    fields = {"label": label, "number": invoice_number, "currency": currency,
              "still": still_due, "due": details["milestone_due"], "count": count,
              "percent": details["percent"], "share": details["share"]}
    subject = words["subject"].format(**fields)
    lines = [words["greeting"].format(name=contact_name), "", words["body"].format(**fields)]
    if payment_link:
        lines += ["", words["pay"].format(link=payment_link)]
    lines += ["", words["closing"], business_name]
    return subject, "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------- quotes


@dataclass(frozen=True, slots=True)
class QuoteState:
    """What the planner knows of one quote: plain data, read from the quotes table."""

    quote_id: int
    org_id: int
    number: str
    status: str  # draft | sent | accepted | declined | invoiced | deleted
    currency: str
    total: Decimal
    accepted_on: date | None
    # Payments on the invoices the provider links to the quote, as (day, amount).
    payments: tuple[tuple[date, Decimal], ...] = ()


@dataclass(frozen=True, slots=True)
class QuoteReminder:
    """A deposit reminder of a quote, for the ledger (it has no invoice to be filed under)."""

    key: str
    quote_id: int
    org_id: int
    scheduled_for: datetime
    reason: str
    amount: Decimal
    currency: str
    channel: str
    step_index: int
    step_count: int
    details: dict[str, str]
    kind: ActionKind = "quote_deposit_reminder"


def quote_qualifies(quote: QuoteState, rule: DepositRule | None) -> bool:
    return (rule is not None and rule.applies_to in ("quotes", "both")
            and quote.status == "accepted" and quote.accepted_on is not None
            and quote.currency == rule.currency and quote.total >= rule.threshold)


def quote_milestones(rule: DepositRule) -> int:
    """How many of the schedule's milestones a quote owes before work starts: the first and
    any due on the same day as it."""
    first = rule.schedule[0].due_offset_days
    return sum(1 for m in rule.schedule if m.due_offset_days == first)


def quote_expected_payments(quote: QuoteState, rule: DepositRule) -> list[ExpectedPayment]:
    """The quote's deposit milestone(s) with the day each was met ([] if it does not
    qualify). `count` is the whole schedule's, so labels read as on an invoice."""
    if not quote_qualifies(quote, rule):
        return []
    assert quote.accepted_on is not None
    paid_by: list[tuple[date, Decimal]] = []
    running = ZERO
    for when, amount in sorted(quote.payments):
        running += amount
        paid_by.append((when, running))
    result = []
    cumulative = ZERO
    for index, milestone in enumerate(rule.schedule[:quote_milestones(rule)]):
        amount = round_money(quote.total * milestone.percent / 100, quote.currency)
        cumulative += amount
        met_on = next((when for when, total in paid_by if total >= cumulative), None)
        result.append(ExpectedPayment(
            index=index, count=len(rule.schedule), percent=milestone.percent, amount=amount,
            cumulative=cumulative,
            due_date=quote.accepted_on + timedelta(days=milestone.due_offset_days),
            met_on=met_on))
    return result


def quote_deposit_key(quote: QuoteState, milestone: int, reminder: int) -> str:
    return f"{quote.org_id}:quote{quote.quote_id}:deposit:{milestone}:{reminder}"


def due_quote_deposit_reminders(quote: QuoteState, keys: Set[str], policy: Policy,
                                calendar: OrgCalendar, now: datetime) -> list[QuoteReminder]:
    """For each deposit milestone of the quote not met, the latest reminder whose moment has
    come and that is not in the ledger yet (as for invoices)."""
    rule = policy.deposits
    if rule is None:
        return []
    steps = len(rule.reminder_offsets)
    paid = sum((a for _, a in quote.payments), ZERO)
    found = []
    for milestone in quote_expected_payments(quote, rule):
        if milestone.met_on is not None:
            continue
        taken = max((r for r in range(steps)
                     if quote_deposit_key(quote, milestone.index, r) in keys), default=-1)
        best = None
        for r in range(taken + 1, steps):
            if _moment(milestone, rule.reminder_offsets[r], policy, calendar) > now:
                break
            best = r
        if best is None:
            continue
        still = round_money(max(milestone.cumulative - paid, ZERO), quote.currency)
        found.append(QuoteReminder(
            key=quote_deposit_key(quote, milestone.index, best), quote_id=quote.quote_id,
            org_id=quote.org_id,
            scheduled_for=_moment(milestone, rule.reminder_offsets[best], policy, calendar),
            reason=(f"{milestone.label} ({milestone.percent} %) of quote {quote.number}:"
                    f" {quote.currency} {still} due {milestone.due_date.isoformat()}"),
            amount=still, currency=quote.currency, channel="dunwell_email",
            step_index=best, step_count=steps,
            details={"quote_id": str(quote.quote_id), "milestone": str(milestone.index + 1),
                     "milestones": str(milestone.count), "percent": str(milestone.percent),
                     "share": str(milestone.amount), "cumulative": str(milestone.cumulative),
                     "milestone_due": milestone.due_date.isoformat()}))
    return found


# A quote's deposit reminder in each language the ladder speaks.
QUOTE_DEPOSIT_TEXTS: dict[str, dict[str, str]] = {
    "en": {"subject": "{label} for quote {number}: {currency} {still} due {due}",
           "body": "Thank you for accepting quote {number}. As agreed, {label_lower} ({percent} %,"
                   " {currency} {share}) is due on {due}, before work starts; {currency}"
                   " {still} of it is still to come."},
    "de": {"subject": "{label} zu Angebot {number}: {currency} {still} fällig am {due}",
           "body": "Vielen Dank für die Annahme von Angebot {number}. Wie vereinbart ist"
                   " {label_lower} ({percent} %, {currency} {share}) vor Beginn der Arbeiten am"
                   " {due} fällig; davon stehen noch {currency} {still} aus."},
    "nb": {"subject": "{label} for tilbud {number}: {currency} {still} forfaller {due}",
           "body": "Takk for at du godtok tilbud {number}. Som avtalt forfaller {label_lower}"
                   " ({percent} %, {currency} {share}) {due}, før arbeidet starter; {currency}"
                   " {still} av dette gjenstår."},
    "pl": {"subject": "{label} do oferty {number}: {currency} {still}, termin płatności {due}",
           "body": "Dziękujemy za przyjęcie oferty {number}. Zgodnie z ustaleniami"
                   " {label_lower} ({percent} %, {currency} {share}) jest płatna do {due}, przed"
                   " rozpoczęciem prac; do zapłaty pozostaje {currency} {still}."},
    "he": {"subject": "{label} להצעת מחיר {number}: {currency} {still} לתשלום עד {due}",
           "body": "תודה שאישרתם את הצעת המחיר {number}. כפי שסוכם, {label_lower} ({percent} %,"
                   " {currency} {share}) לתשלום עד {due}, לפני תחילת העבודה; נותרו לתשלום"
                   " {currency} {still}."},
}


def quote_deposit_message(contact_name: str, business_name: str, quote_number: str,
                          currency: str, details: dict[str, str], still_due: Decimal,
                          language: str = "en") -> tuple[str, str]:
    """Subject and text of a quote's deposit reminder, in the contact's language (English for
    one we do not speak)."""
    language = language if language in QUOTE_DEPOSIT_TEXTS else "en"
    words, common = QUOTE_DEPOSIT_TEXTS[language], DEPOSIT_TEXTS[language]
    milestone, count = int(details["milestone"]), int(details["milestones"])
    label = common["deposit"] if milestone == 1 else common["milestone"].format(n=milestone,
                                                                               count=count)
    # Mid-sentence: "the deposit", "die Anzahlung"; a German noun keeps its capital.
    lower = label if language == "de" and milestone > 1 else label[:1].lower() + label[1:]
    fields = {"label": label, "label_lower": lower, "number": quote_number,
              "currency": currency, "still": still_due, "due": details["milestone_due"],
              "percent": details["percent"], "share": details["share"]}
    lines = [common["greeting"].format(name=contact_name), "", words["body"].format(**fields),
             "", common["closing"], business_name]
    return words["subject"].format(**fields), "\n".join(lines) + "\n"
