"""What happened, in the reader's language: the activity log and the ledger's actions are
stored as a kind with parameters (`AuditEvent.data`, an action's own columns) and worded here,
when a page is shown, from one table of translatable texts per kind.

`render_event(event)` is the one call a page makes. An event whose kind has no text here, or
whose data lacks a parameter its text names (rows written before the kind carried its
parameters), is shown as stored: `AuditEvent.message`, the English sentence kept beside the
data for that purpose.

Parameters are stored plainly (ids, ISO dates, amounts as strings with their currency, counts,
codes) and formatted for the reader by app/formatting.py: a German page reads 1.480,00 £ and
07.12.2026, a Hebrew page the same values isolated left to right.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from flask import Flask
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString

from app.formatting import Book, _with_book, day, money, number
from app.languages import status_label
from rules import PlannedAction
from store.models import Action

__all__ = ["ACTION_KINDS", "CHANNELS", "EVENT_TEXTS", "SKIP_REASONS", "action_label",
           "channel_label", "describe_action", "render_event", "skip_reason"]


class Event(Protocol):
    kind: str
    message: str
    data: dict[str, Any] | None


# Every kind of action (rules.actions.ActionKind), as an owner calls it.
ACTION_KINDS: dict[str, LazyString] = {
    "reminder": _l("Reminder"), "fee": _l("Late fee"), "interest": _l("Interest"),
    "compensation": _l("Recovery compensation"), "discount": _l("Early-payment discount"),
    "plan_instalment": _l("Payment plan instalment reminder"), "call_task": _l("Call task"),
    "stop_service": _l("Stop-service signal"), "demand_letter": _l("Letter of demand"),
    "agency_case": _l("Collection agency case"), "statement": _l("Statement"),
    "deposit_reminder": _l("Deposit reminder"), "retainer_top_up": _l("Retainer top-up request"),
    "terms_change": _l("Shorter payment terms"),
    "quote_deposit_reminder": _l("Quote deposit reminder"), "note": _l("Note"),
}

# How an action reaches the customer (or the collector), as the settings page names each.
CHANNELS: dict[str, LazyString] = {
    "provider_email": _l("Provider's invoice email"), "dunwell_email": _l("Dunwell email"),
    "note": _l("Note only"), "call_task": _l("Phone call task"),
    "sms": _l("Text message (SMS)"),
}


# The tones of a reminder's text, as the settings page names them.
TONES: dict[str, LazyString] = {"friendly": _l("Friendly"), "firm": _l("Firm"),
                                "final": _l("Final")}


def tone_label(tone: str | None) -> str:
    label = TONES.get(tone or "")
    return str(label) if label is not None else (tone or "")


def channel_label(channel: str | None) -> str:
    label = CHANNELS.get(channel or "")
    return str(label) if label is not None else (channel or "").replace("_", " ")


# Why an action was not carried out (`result["reason"]`, collect/outcomes.Skip's codes).
SKIP_REASONS: dict[str, LazyString] = {
    "changed": _l("the invoice changed; it is planned again"),
    "paid": _l("the invoice is paid"), "voided": _l("the invoice is voided"),
    "deleted": _l("the invoice was deleted"), "draft": _l("the invoice is a draft again"),
    "gone": _l("it is no longer in the books"),
    "no_email": _l("the contact has no email address"),
    "channel": _l("statements go by Dunwell's email only"),
    "nothing_open": _l("the customer has nothing open"),
    "met": _l("the deposit is met or no longer asked"),
    "released": _l("the customer is no longer on hold"),
    "already_shorter": _l("the invoice is already due sooner"),
    "rejected": _l("the books refused it"), "rejected_by_owner": _l("the owner rejected it"),
    "accepted": _l("the quote was accepted"), "declined": _l("the quote was declined"),
    "expired": _l("it waited too long for approval"),
}


# Why a reminder did not go by text (collect/sms.py).
SMS_REASONS: dict[str, LazyString] = {
    "no_number": _l("no phone number in the books"),
    "unparseable": _l("the number in the books cannot be read"),
    "not_mobile": _l("the number is not a mobile"), "opted_out": _l("replied STOP"),
    "undelivered": _l("the earlier text was not delivered"),
    "sms_not_set_up": _l("texts are not set up"),
    "sender_not_allowed": _l("the sender is not allowed for this number"),
}


# Why shorter terms are recommended (rules/credit.py's triggers, joined by "and").
TERMS_BECAUSE: dict[str, LazyString] = {
    "on credit hold": _l("on credit hold"), "over the credit limit": _l("over the credit limit"),
    "on credit hold and over the credit limit": _l("on credit hold and over the credit limit"),
}


def action_label(kind: str | None) -> str:
    label = ACTION_KINDS.get(kind or "")
    return str(label) if label is not None else (kind or "").replace("_", " ")


def skip_reason(code: str | None) -> str | None:
    label = SKIP_REASONS.get(code or "")
    return None if label is None else str(label)


def _as_day(value: Any) -> date:
    if isinstance(value, date):
        return value
    return datetime.fromisoformat(str(value)).date() if "T" in str(value) \
        else date.fromisoformat(str(value))


def _as_amount(value: Any) -> Decimal:
    amount = Decimal(str(value))
    if not amount.is_finite():
        raise InvalidOperation(value)
    return amount


@dataclass(frozen=True)
class EventText:
    """One kind's text. `variant` picks one of `texts` from the data (on/off, with or without
    a count); `days`, `amounts` (amount key -> currency key), `counts` and `labels` (key ->
    the function that words a stored code) say how each parameter is formatted."""

    texts: Mapping[Any, LazyString]
    variant: Callable[[Mapping[str, Any]], Any] = lambda data: None
    days: tuple[str, ...] = ()
    amounts: Mapping[str, str] = field(default_factory=dict)
    counts: tuple[str, ...] = ()
    labels: Mapping[str, Callable[[Any], str]] = field(default_factory=dict)

    def render(self, data: Mapping[str, Any], book: Book | None) -> str:
        template = self.texts[self.variant(data)]
        params: dict[str, str] = {k: "" if v is None else str(v) for k, v in data.items()}
        # A parameter missing from the data is missing from the text too (KeyError below).
        for key in self.days:
            if data.get(key) is not None:
                params[key] = day(_as_day(data[key]), book)
        for key, currency in self.amounts.items():
            if data.get(key) is not None:
                params[key] = money(_as_amount(data[key]), data.get(currency), book)
        for key in self.counts:
            if data.get(key) is not None:
                params[key] = number(int(data[key]), book)
        for key, word in self.labels.items():
            if key in data:
                params[key] = word(data[key])
        return str(template) % params


def _one(text: LazyString, **how: Any) -> EventText:
    return EventText({None: text}, **how)


def _skipped(code: Any) -> str:
    found = skip_reason(code)
    if found is None:
        raise KeyError(code)  # a code with no words: the stored sentence says it
    return found


@dataclass
class _StoredAction:
    """An action as its event's parameters describe it (collect.ledger.about)."""

    kind: str
    reason: str | None
    amount: Decimal | None
    currency: str | None
    step_index: int | None
    step_count: int | None
    details: dict[str, Any] | None


def _kind_of(data: Mapping[str, Any]) -> str:
    """The action's kind: stored as `action`, else the third part of its key."""
    kind = data.get("action_kind") or data.get("action") or str(data["key"]).split(":")[2]
    if kind not in ACTION_KINDS:
        raise KeyError(kind)
    return str(kind)


def _action_of(data: Mapping[str, Any], book: Book | None) -> str:
    amount = data.get("amount")
    return describe_action(_StoredAction(
        _kind_of(data), None, None if amount is None else _as_amount(amount),
        data.get("currency"), data.get("step"), data.get("steps"), None), book)


SENT_KINDS = frozenset({"reminder", "plan_instalment", "deposit_reminder", "statement",
                        "quote_deposit_reminder", "retainer_top_up", "demand_letter"})


def _done_variant(data: Mapping[str, Any]) -> str:
    """How a done action is said: a message emailed or texted, a fee charged, a discount
    credited, anything else done."""
    kind = _kind_of(data)
    if kind in SENT_KINDS:
        channel = str(data.get("channel") or "")
        return "texted" if "sms" in channel else "emailed" if "email" in channel else "sent"
    return {"fee": "charged", "interest": "charged", "compensation": "charged",
            "discount": "credited"}.get(kind, "done")


def _with_action(text: LazyString, **how: Any) -> EventText:
    """An action's event: the action is described first (`%(action)s`)."""
    return _ActionText({None: text}, **how)


class _ActionText(EventText):
    def render(self, data: Mapping[str, Any], book: Book | None) -> str:
        # The amount is part of the action's description, not a parameter of its own.
        return super().render({**data, "action_kind": _kind_of(data),
                               "action": _action_of(data, book)}, book)


_CHOICES = {"confirmed": _l("confirmed"), "last_verified": _l("the last verified rate")}

EVENT_TEXTS: dict[str, EventText] = {
    # Connecting and leaving.
    "connected": _one(_l("%(by)s connected %(provider)s organisation %(tenant)s")),
    "disconnected": _one(_l("Disconnected from %(provider)s; the synced data will be deleted "
                            "after %(purge_after)s unless the organisation is reconnected"),
                         days=("purge_after",)),
    "deletion_cancelled": _one(_l("Reconnected within the grace period: the synced data is "
                                  "kept")),
    "deletion_requested": _one(_l("%(by)s asked for the synced data to be deleted now")),
    "data_deleted": _one(_l("Synced data deleted after the disconnect: invoices %(invoices)s, "
                            "contacts %(contacts)s, payments %(payments)s, actions "
                            "%(actions)s. This activity log is kept."),
                         counts=("invoices", "contacts", "payments", "actions")),
    "needs_reconnect": _one(_l("%(provider)s no longer accepts Dunwell's access to %(tenant)s; "
                               "reminders and fees are paused until an owner reconnects it.")),
    "connection_lost": _one(_l("%(provider)s refused Dunwell; reconnect to resume.")),
    "daily_limit": _one(_l("%(provider)s's daily API limit for this organisation is spent; the "
                           "remaining reminders wait and go out when it refills.")),
    # Syncing.
    "sync_done": EventText(
        {"full": _l("Full sync: invoices %(invoices)s, contacts %(contacts)s, payments "
                    "%(payments)s, read in %(api_calls)s API calls"),
         "incremental": _l("Incremental sync: invoices %(invoices)s, contacts %(contacts)s, "
                           "payments %(payments)s, read in %(api_calls)s API calls")},
        variant=lambda data: data["mode"],
        counts=("invoices", "contacts", "payments", "api_calls")),
    "sync_failed": _one(_l("Sync failed: %(error)s")),
    "reconcile": EventText(
        {(False, False): _l("Nightly reconcile: nothing missed"),
         (True, False): _l("Nightly reconcile: changes webhooks missed: %(missed)s"),
         (True, True): _l("Nightly reconcile: changes webhooks missed: %(missed)s (invoices "
                          "%(missed_invoices)s)")},
        variant=lambda data: (bool(data["missed"]),
                              bool(data["missed"] and data.get("missed_invoices"))),
        counts=("missed",),
        labels={"missed_invoices": lambda numbers: ", ".join(map(str, numbers[:10]))}),
    # Members.
    "invited": _one(_l("%(by)s invited a new %(role)s"), labels={"role": status_label}),
    "invitation_revoked": _one(_l("%(by)s withdrew the invitation of %(email)s")),
    "joined": _one(_l("%(by)s joined as %(role)s"), labels={"role": status_label}),
    "role_changed": _one(_l("%(changer)s changed %(member)s from %(from)s to %(to)s"),
                         labels={"from": status_label, "to": status_label}),
    "member_removed": EventText(
        {False: _l("%(remover)s removed %(member)s (%(role)s)"),
         True: _l("%(remover)s removed %(member)s (%(role)s); API tokens they made revoked: "
                  "%(tokens)s")},
        variant=lambda data: bool(data["revoked_tokens"]),
        labels={"role": status_label, "tokens": lambda ids: str(len(ids))}),
    "api_token": _one(_l("%(by)s made API token %(name)s")),
    # Settings.
    "policy_saved": _one(_l("Collection policy version %(version)s saved by %(by)s")),
    "contact_settings": _one(_l("Collection settings changed for contact %(contact_id)s")),
    "rate_confirmed": _one(_l("%(by)s decided the %(jurisdiction)s statutory rate for %(from)s "
                              "to %(to)s: %(choice)s"),
                           days=("from", "to"), labels={"choice": lambda c: str(_CHOICES[c])}),
    "sender_verified": _one(_l("%(by)s set up the sender (%(where)s); a test reached the mail "
                               "server")),
    "went_live": EventText(
        {(False, None): _l("%(by)s went live"),
         (True, None): _l("%(by)s went live with approvals"),
         (False, True): _l("%(by)s went live; fees count lateness from the due date, as "
                           "chosen"),
         (True, True): _l("%(by)s went live with approvals; fees count lateness from the due "
                          "date, as chosen"),
         (False, False): _l("%(by)s went live; fees count lateness from %(fees_from)s on"),
         (True, False): _l("%(by)s went live with approvals; fees count lateness from "
                           "%(fees_from)s on")},
        variant=lambda data: (bool(data["approvals"]),
                              None if not data["fees"] else bool(data["charge_earlier"])),
        days=("fees_from",)),
    "safe_mode": EventText(
        {"on": _l("Safe mode turned on by %(by)s"),
         "off": _l("Safe mode turned off by %(by)s"),
         "off_waiting": _l("Safe mode turned off by %(by)s; actions still waiting for "
                           "approval: %(waiting)s")},
        variant=lambda data: "on" if data["on"] else "off_waiting" if data["waiting"]
        else "off", counts=("waiting",)),
    "template_saved": _one(_l("Reminder text (%(language)s, %(tone)s) saved by %(by)s")),
    "template_reset": _one(_l("Reminder text (%(language)s, %(tone)s) reset to the default by "
                              "%(by)s")),
    "template_test": _one(_l("Test of the %(tone)s reminder text (%(language)s) sent to "
                             "%(by)s")),
    "card_payments_settings": EventText(
        {(True, False): _l("Card payments in the portal on"),
         (False, False): _l("Card payments in the portal off"),
         (True, True): _l("Card payments in the portal on (Stripe keys replaced)"),
         (False, True): _l("Card payments in the portal off (Stripe keys replaced)")},
        variant=lambda data: (bool(data["enabled"]), bool(data["keys_replaced"]))),
    "portal_limits": _one(_l("Plan requests in the portal: up to %(instalments)s instalments "
                             "within %(days)s days"), counts=("instalments", "days")),
    "portal_link_rotated": _one(_l("Portal link of %(contact)s replaced; older links no longer "
                                   "work")),
    "logo_uploaded": _one(_l("The business's logo was uploaded")),
    "logo_removed": _one(_l("The business's logo was removed")),
    # Invoices and customers.
    "payment_plan": _one(_l("Payment plan for %(number)s: %(instalments)s instalments from "
                            "%(first)s to %(last)s; late fees wait while it is kept"),
                         days=("first", "last"), counts=("instalments",)),
    "terms_recommended": _one(_l("%(contact)s is %(because)s: give this invoice %(days)s "
                                 "days (due %(recommended_due)s instead of %(due_date)s); "
                                 "change it in the books"),
                              days=("recommended_due", "due_date"), counts=("days",),
                              labels={"because": lambda why: str(TERMS_BECAUSE[why])}),
    "promise_recorded": _one(_l("Promise to pay %(amount)s of %(number)s by %(pay_by)s recorded "
                                "by %(by)s"), days=("pay_by",), amounts={"amount": "currency"}),
    "dispute_marked": _one(_l("%(number)s marked disputed by %(by)s: %(reason)s")),
    "note": _one(_l("Note by %(by)s on %(number)s: %(note)s")),
    "paused": EventText(
        {True: _l("Chasing of %(number)s paused by %(by)s until %(until)s: %(reason)s"),
         False: _l("Chasing of %(number)s paused by %(by)s until resumed: %(reason)s")},
        variant=lambda data: data["until"] is not None, days=("until",)),
    "resumed": _one(_l("Chasing of %(number)s resumed by %(by)s")),
    "reminder_requested": _one(_l("Reminder step %(step)s for %(number)s asked for now by "
                                  "%(by)s"), counts=("step",)),
    "task_done": EventText(
        {False: _l("%(title)s: done by %(by)s"),
         True: _l("%(title)s: done by %(by)s. Note: %(note)s")},
        variant=lambda data: bool(data["note"])),
    "review_run": _one(_l("In review: today's run would have done %(counts)s; nothing was "
                          "sent or written to the books"),
                       labels={"counts": lambda counts: ", ".join(
                           f"{action_label(kind)}: {n}" for kind, n in sorted(counts.items()))
                           or "—"}),
    # The customer, in the portal.
    "promise_made": _one(_l("%(contact)s promised to pay %(amount)s of %(number)s by "
                            "%(pay_by)s; reminders wait until then"),
                         days=("pay_by",), amounts={"amount": "currency"}),
    "promise_kept": _one(_l("Promise to pay %(number)s by %(pay_by)s: kept"), days=("pay_by",)),
    "promise_broken": _one(_l("Promise to pay %(number)s by %(pay_by)s: broken; a follow-up "
                              "goes out"), days=("pay_by",)),
    "dispute_opened": _one(_l("%(contact)s disputes %(number)s: reminders and fees stop until "
                              "it is resolved")),
    "dispute_resolved": _one(_l("Dispute of %(number)s resolved; chasing resumes")),
    "plan_requested": _one(_l("%(contact)s asks to pay %(number)s in %(instalments)s "
                              "instalments every %(every_days)s days from %(first_on)s; "
                              "waiting for the owner"),
                           days=("first_on",), counts=("instalments", "every_days")),
    "plan_request_approved": _one(_l("Plan request for %(number)s approved")),
    "plan_request_declined": _one(_l("Plan request for %(number)s declined")),
    # Card payments.
    "card_payment_started": _one(_l("%(contact)s started paying %(number)s by card (%(amount)s)"),
                                 amounts={"amount": "currency"}),
    "card_payment_received": _one(_l("Card payment of %(amount)s received; it is booked in the "
                                     "books as a payment"), amounts={"amount": "currency"}),
    "card_payment_failed": _one(_l("A card payment of %(amount)s failed: %(failure)s"),
                                amounts={"amount": "currency"}),
    "card_payment_refunded": _one(_l("%(amount)s of a card payment refunded through Stripe; the "
                                     "books' payment stays until the refund is recorded there"),
                                  amounts={"amount": "currency"}),
    "card_payment_not_booked": _one(_l("A card payment of %(amount)s could not be booked in the "
                                       "books: %(refused)s. Book it there by hand (or refund "
                                       "it)."), amounts={"amount": "currency"}),
    "card_payment_booked": _one(_l("Card payment of %(amount)s booked in the books on "
                                   "%(number)s"), amounts={"amount": "currency"}),
    # Texts.
    "sms_fallback": _one(_l("%(number)s: no text (%(reason)s); the reminder goes by email"),
                         labels={"reason": lambda code: str(SMS_REASONS[code])}),
    "sms_opt_out": _one(_l("%(masked)s replied %(keyword)s: no more texts to this number")),
    "sms_opt_in": _one(_l("%(masked)s replied %(keyword)s: texts may go to it again")),
    # The ledger's actions.
    "action_planned": _with_action(_l("Planned: %(action)s")),
    "action_replanned": _with_action(_l("Planned again: %(action)s")),
    "action_awaiting": _with_action(_l("%(action)s waits for approval")),
    "action_approved": _with_action(_l("%(action)s approved by %(by)s")),
    "action_done": _ActionText(
        {"emailed": _l("%(action)s emailed"), "texted": _l("%(action)s texted"),
         "sent": _l("%(action)s sent"), "charged": _l("%(action)s charged"),
         "credited": _l("%(action)s credited"), "done": _l("%(action)s done")},
        variant=_done_variant),
    "action_skipped": _with_action(_l("%(action)s not carried out: %(reason)s"),
                                   labels={"reason": _skipped}),
    "action_failed": _with_action(_l("%(action)s failed; it will be tried again: %(error)s")),
    "action_dead": _with_action(_l("%(action)s given up; it needs the owner: %(error)s")),
}


def render_event(event: Event, book: Book | None = None) -> str:
    """The event in the reader's language, or as stored when it cannot be worded."""
    text = EVENT_TEXTS.get(event.kind)
    if text is None or event.data is None:
        return event.message
    try:
        return text.render(event.data, book)
    except (KeyError, IndexError, ValueError, TypeError, InvalidOperation, AttributeError):
        return event.message


def describe_action(action: Action | PlannedAction | _StoredAction,
                    book: Book | None = None) -> str:
    """What an action is, in the reader's language: its kind, the reminder's step, the
    amount of a money action. `Action.reason` (English, from rules/) only where the action's
    kind is one this table does not know."""
    if action.kind not in ACTION_KINDS:
        return action.reason or action.kind.replace("_", " ")
    label = action_label(action.kind)
    if action.kind == "reminder" and action.step_index is not None:
        if (getattr(action, "details", None) or {}).get("first_contact") and action.step_count:
            # The first reminder of an invoice already overdue when it came in (rules/
            # reminders.first_contact): the owner must see it is not the ladder's later step.
            step, steps = number(action.step_index + 1, book), number(action.step_count, book)
            tone = getattr(action, "tone", None)
            if tone:
                return _("First contact (%(tone)s tone): reminder %(step)s of %(steps)s",
                         tone=tone_label(tone), step=step, steps=steps)
            return _("First contact: reminder %(step)s of %(steps)s", step=step, steps=steps)
        if action.step_count and action.step_index < action.step_count:
            return _("Reminder %(step)s of %(steps)s", step=number(action.step_index + 1, book),
                     steps=number(action.step_count, book))
        return _("Repeat reminder")
    if action.amount is not None and action.kind in ("fee", "interest", "compensation",
                                                     "discount"):
        return _("%(action)s of %(amount)s", action=label,
                 amount=money(abs(action.amount), action.currency, book))
    return label


def init_events(app: Flask) -> None:
    """`{{ event|event_text }}` and `{{ action|action_text }}`, in the page's book."""
    app.jinja_env.filters.update(event_text=_with_book(render_event),
                                 action_text=_with_book(describe_action),
                                 channel_text=channel_label, action_kind=action_label,
                                 tone_text=tone_label)
