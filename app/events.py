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

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from flask import Flask
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_babel.speaklater import LazyString
from markupsafe import Markup

from app.formatting import (
    LTR_ISOLATE,
    POP_ISOLATE,
    Book,
    _with_book,
    day,
    money,
    number,
    percent,
)
from app.languages import status_label
from rules import PlannedAction
from store.models import Action

__all__ = ["ACTION_KINDS", "CHANNELS", "ERROR_CLASSES", "EVENT_TEXTS", "SKIP_REASONS",
           "action_label", "action_reason", "channel_label", "describe_action",
           "provider_error", "render_event", "render_event_html", "skip_reason", "task_title"]


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
    "one_off_reminder": _l("One-off reminder"),
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
    "changed_since_asked": _l("the invoice changed since it was asked for; ask again if it "
                              "should still go"),
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


# What failed, by the class of the failure (connectors.base.error_class); the provider's own
# message is shown after it as a detail, in the provider's language.
ERROR_CLASSES: dict[str, LazyString] = {
    "revoked": _l("the books no longer accept Dunwell's access; reconnect the organisation"),
    "configuration": _l("the books refused Dunwell's access; an owner must reconnect or "
                        "allow it"),
    "daily_limit": _l("the books' daily limit of requests is spent"),
    "rate_limited": _l("the books asked Dunwell to slow down"),
    "transient": _l("the books did not answer in time or had an error of their own"),
    "not_found": _l("the books no longer have it"),
    "edit_refused": _l("the books do not let this invoice be changed"),
    "rejected": _l("the books refused it"),
    "malformed": _l("the books' answer could not be read"),
    "other": _l("something unexpected went wrong"),
}


def provider_error(code: str | None) -> str:
    """A failure's class in the reader's words ("other" for a code this table lacks)."""
    return str(ERROR_CLASSES.get(code or "other", ERROR_CLASSES["other"]))


def quoted_detail(text: Any, markup: bool = False) -> str:
    """The provider's own message, quoted after the reader's sentence and isolated left to
    right (it is the provider's English): `<bdi dir="ltr" lang="en">` on a page, Unicode's
    isolate in plain text."""
    detail = str(text or "").strip()
    if not detail:
        return ""
    if markup:
        return Markup('<q class="detail"><bdi dir="ltr" lang="en">{}</bdi></q>').format(detail)
    return f"\u201c{LTR_ISOLATE}{detail}{POP_ISOLATE}\u201d"


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
    the function that words a stored code) say how each parameter is formatted. `details`
    are the provider's own words, quoted after the sentence (quoted_detail). `parse` reads
    the parameters out of a row stored as an English sentence before the kind carried them
    (a match of the regular expression, its named groups, then `parsed` on them)."""

    texts: Mapping[Any, LazyString]
    variant: Callable[[Mapping[str, Any]], Any] = lambda data: None
    days: tuple[str, ...] = ()
    amounts: Mapping[str, str] = field(default_factory=dict)
    counts: tuple[str, ...] = ()
    labels: Mapping[str, Callable[[Any], str]] = field(default_factory=dict)
    details: tuple[str, ...] = ()
    parse: re.Pattern[str] | None = None
    parsed: Callable[[dict[str, Any]], dict[str, Any]] = lambda found: found

    def from_message(self, message: str) -> dict[str, Any] | None:
        """The parameters of a sentence stored before the kind carried them, if it parses."""
        found = self.parse.fullmatch(message) if self.parse is not None else None
        return None if found is None else self.parsed(
            {k: v for k, v in found.groupdict().items() if v is not None})

    def render(self, data: Mapping[str, Any], book: Book | None, markup: bool = False) -> str:
        template = self.texts[self.variant(data)]
        params: dict[str, Any] = {k: "" if v is None else str(v) for k, v in data.items()}
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
        for key in self.details:
            params[key] = quoted_detail(data.get(key), markup)
        if markup:
            return Markup.escape(str(template)) % params
        return str(template) % params


def _one(text: LazyString, **how: Any) -> EventText:
    return EventText({None: text}, **how)


def _skipped(code: Any) -> str:
    found = skip_reason(code)
    if found is None and code in SMS_REASONS:  # a one-off text that could not go
        found = str(SMS_REASONS[code])
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


SENT_KINDS = frozenset({"reminder", "one_off_reminder", "plan_instalment", "deposit_reminder",
                        "statement", "quote_deposit_reminder", "retainer_top_up",
                        "demand_letter"})


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
    def render(self, data: Mapping[str, Any], book: Book | None, markup: bool = False) -> str:
        # The amount is part of the action's description, not a parameter of its own.
        return super().render({**data, "action_kind": _kind_of(data),
                               "action": _action_of(data, book)}, book, markup)


# A phone-call task's title as collect/execute.open_call_task stores it (the parameters of
# the sentence, read back at display time for old and new tasks alike).
CALL_TITLE = re.compile(r"Call (?P<contact>.+) about (?P<number>.+?): (?P<currency>[A-Z]{3}) "
                        r"(?P<amount>-?[\d.]+) due since (?P<due>\d{4}-\d{2}-\d{2})")
NO_CONTACT = "the customer"  # the stored title's words for an invoice without a contact


def call_title(title: str, book: Book | None = None) -> str:
    """A call task's title in the reader's language; a title of another shape as stored."""
    found = CALL_TITLE.fullmatch(title or "")
    if found is None:
        return title
    values = {"number": found["number"],
              "amount": money(_as_amount(found["amount"]), found["currency"], book),
              "due": day(date.fromisoformat(found["due"]), book)}
    if found["contact"] == NO_CONTACT:
        return _("Call the customer about %(number)s: %(amount)s due since %(due)s", **values)
    return _("Call %(contact)s about %(number)s: %(amount)s due since %(due)s",
             contact=found["contact"], **values)


class _Task(Protocol):
    kind: str
    title: str


def task_title(task: _Task, book: Book | None = None) -> str:
    """A task's title for the reader: a phone call's worded in their language."""
    return call_title(task.title, book) if task.kind == "call" else task.title


class _TaskDoneText(EventText):
    def render(self, data: Mapping[str, Any], book: Book | None, markup: bool = False) -> str:
        return super().render({**data, "title": call_title(str(data["title"]), book)}, book,
                              markup)


def statutory_refusal(facts: Mapping[str, Any], book: Book | None = None) -> str:
    """Why the law's tables gave no figure (rules.statutory.refusal_facts: a code and its
    figures) in the reader's words; KeyError for a refusal without figures."""
    code = facts["code"]
    if code in ("rate_missing", "rate_unverified"):
        period = {"jurisdiction": facts["jurisdiction"],
                  "start": day(_as_day(facts["start"]), book),
                  "end": day(_as_day(facts["end"]), book)}
        interest = facts["figure"] == "interest"
        if code == "rate_unverified" and interest:
            rate = facts.get("rate")
            return _("The %(jurisdiction)s statutory interest rate for %(start)s to %(end)s,"
                     " %(rate)s a year for business debts, is not yet confirmed by a second"
                     " source, so Dunwell does not use it.",
                     rate=percent(None if rate is None else _as_amount(rate), book), **period)
        if code == "rate_unverified":
            return _("The %(jurisdiction)s statutory compensation for %(start)s to %(end)s is"
                     " not yet confirmed by a second source, so Dunwell does not use it.",
                     **period)
        if interest:
            return _("Dunwell has no %(jurisdiction)s statutory interest rate for %(start)s to"
                     " %(end)s yet, so it cannot work out interest for those days.", **period)
        return _("Dunwell has no %(jurisdiction)s statutory compensation for %(start)s to"
                 " %(end)s yet.", **period)
    if code == "no_rates":
        return _("Dunwell has no statutory rates for %(jurisdiction)s. It has them for"
                 " %(known)s.", jurisdiction=facts["jurisdiction"], known=facts["known"])
    if code == "fx_rate":
        return _("The compensation depends on the debt in %(target)s, and Dunwell does not"
                 " guess the %(source)s/%(target)s exchange rate.",
                 source=facts["source"], target=facts["target"])
    raise KeyError(code)


class _ProblemText(EventText):
    """What the planner could not do (collect/plan._report_problems), its refusal worded."""

    def render(self, data: Mapping[str, Any], book: Book | None, markup: bool = False) -> str:
        return super().render({**data, "why": statutory_refusal(data, book)}, book, markup)


# The English of rules.statutory's `plain` refusals inside a needs_attention row stored
# before the row carried its figures.
_FIGURES = {"statutory interest rate": "interest", "statutory compensation": "compensation",
            "reminder-fee maximum": "reminder_fee_cap"}
_NOT_CHARGED = re.compile(
    r"(?P<number>.+?): fee '(?P<rule>[^']*)' not charged: (?:There is no (?P<jurisdiction>"
    r"[A-Z]{2}) (?P<words>[a-z -]+?) for (?P<start>[\d-]{10})\.\.(?P<end>[\d-]{10}) yet, so "
    r"nothing is charged for it\.|The (?P<j2>[A-Z]{2}) (?P<w2>[a-z -]+?) for (?P<s2>[\d-]{10})"
    r"\.\.(?P<e2>[\d-]{10})(?: \((?P<rate>[\d.]+) % a year for business debts\))? is not yet "
    r"confirmed by a second source.*)")


def _not_charged(found: dict[str, Any]) -> dict[str, Any]:
    if "j2" in found:
        return {"number": found["number"], "rule": found["rule"], "code": "rate_unverified",
                "jurisdiction": found["j2"], "figure": _FIGURES[found["w2"]],
                "start": found["s2"], "end": found["e2"],
                **({"rate": found["rate"]} if "rate" in found else {})}
    return {"number": found["number"], "rule": found["rule"], "code": "rate_missing",
            "jurisdiction": found["jurisdiction"], "figure": _FIGURES[found["words"]],
            "start": found["start"], "end": found["end"]}


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
    "sync_failed": EventText(
        {True: _l("Sync failed: %(error_class)s. %(error)s"),
         False: _l("Sync failed. %(error)s")},  # stored before failures were classed
        variant=lambda data: "error_class" in data, labels={"error_class": provider_error},
        details=("error",)),
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
    "customer_disputed": EventText(
        {True: _l("%(contact)s marked disputed by %(by)s: no reminders, fees or interest until "
                  "the mark is cleared"),
         False: _l("Dispute of %(contact)s cleared by %(by)s: chasing resumes, and fees count "
                   "from today")},
        variant=lambda data: bool(data["disputed"])),
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
    "one_off_requested": EventText(
        {False: _l("One-off reminder for %(number)s (%(channel)s, %(tone)s tone) asked for by "
                   "%(by)s; it goes out now"),
         True: _l("One-off reminder for %(number)s (%(channel)s, %(tone)s tone) asked for by "
                  "%(by)s; outside the allowed hours, it goes out on %(send_day)s at "
                  "%(send_time)s (%(zone)s)")},
        variant=lambda data: bool(data["later"]), days=("send_day",),
        labels={"channel": channel_label, "tone": tone_label}),
    "reminder_requested": _one(_l("Reminder step %(step)s for %(number)s asked for now by "
                                  "%(by)s"), counts=("step",)),
    "task_done": _TaskDoneText(
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
                                amounts={"amount": "currency"}, details=("failure",)),
    "card_payment_refunded": EventText(
        {False: _l("%(amount)s of a card payment refunded through Stripe; the books' payment "
                   "stays until the refund is recorded there"),
         True: _l("%(amount)s of a card payment refunded through Stripe; the books' payment is "
                  "taken off the invoice, which is chased again")},
        variant=lambda data: bool(data["taken_off"]), amounts={"amount": "currency"},
        parse=re.compile(r"(?P<currency>[A-Z]{3}) (?P<amount>-?[\d.]+) of a card payment "
                         r"refunded through Stripe; (?P<then>.*)"),
        parsed=lambda found: {**found, "taken_off": found.pop("then").startswith(
            "the books' payment is taken off")}),
    "card_payment_not_booked": _one(_l("A card payment of %(amount)s could not be booked in the "
                                       "books: %(refused)s. Book it there by hand (or refund "
                                       "it)."), amounts={"amount": "currency"},
                                    details=("refused",)),
    "card_payment_booked": EventText(
        {None: _l("Card payment of %(amount)s booked in the books on %(number)s"),
         "booked": _l("Card payment of %(amount)s booked in the books on %(number)s, with "
                      "Stripe's fee of %(fee)s as a bank fee"),
         "refused": _l("Card payment of %(amount)s booked in the books on %(number)s; its fee "
                       "of %(fee)s was not booked: %(fee_refused)s")},
        variant=lambda data: None if not data.get("fee") else
        "refused" if data.get("fee_refused") else "booked",
        amounts={"amount": "currency", "fee": "currency"}, details=("fee_refused",),
        parse=re.compile(r"Card payment of (?P<currency>[A-Z]{3}) (?P<amount>-?[\d.]+) booked "
                         r"in the books on (?P<number>.+?)(?:, with Stripe's fee of [A-Z]{3} "
                         r"(?P<fee>[\d.]+) as a bank fee|; its fee of [A-Z]{3} "
                         r"(?P<refused_fee>[\d.]+) was not booked: (?P<fee_refused>.*))?"),
        parsed=lambda found: {**found, "fee": found.get("fee") or found.get("refused_fee")}),
    # What the planner could not do.
    "needs_attention": _ProblemText(
        {None: _l("%(number)s: the fee %(rule)s was not charged. %(why)s")},
        parse=_NOT_CHARGED, parsed=_not_charged),
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
    "action_skipped": _ActionText(
        {False: _l("%(action)s not carried out: %(reason)s"),
         True: _l("%(action)s not carried out: %(reason)s. %(error)s")},
        variant=lambda data: bool(data.get("error")), labels={"reason": _skipped},
        details=("error",)),
    # A failure's class in the reader's words, the provider's message after it; rows stored
    # before failures were classed show only the message.
    "action_failed": _ActionText(
        {True: _l("%(action)s failed; it will be tried again: %(error_class)s. %(error)s"),
         False: _l("%(action)s failed; it will be tried again. %(error)s")},
        variant=lambda data: "error_class" in data, labels={"error_class": provider_error},
        details=("error",)),
    "action_dead": _ActionText(
        {True: _l("%(action)s given up; it needs the owner: %(error_class)s. %(error)s"),
         False: _l("%(action)s given up; it needs the owner. %(error)s")},
        variant=lambda data: "error_class" in data, labels={"error_class": provider_error},
        details=("error",)),
}


_UNWORDED = (KeyError, IndexError, ValueError, TypeError, InvalidOperation, AttributeError)


def render_event(event: Event, book: Book | None = None, markup: bool = False) -> str:
    """The event in the reader's language, or as stored when it cannot be worded: from its
    data, else from the parameters its stored sentence parses into (rows written before the
    kind carried them), else the sentence itself."""
    text = EVENT_TEXTS.get(event.kind)
    if text is None:
        return event.message
    if event.data is not None:
        try:
            return text.render(event.data, book, markup)
        except _UNWORDED:
            pass
    parsed = text.from_message(event.message or "")
    if parsed is None:
        return event.message
    try:
        return text.render({**(event.data or {}), **parsed}, book, markup)
    except _UNWORDED:
        return event.message


def render_event_html(event: Event, book: Book | None = None) -> str:
    """render_event for a page: the provider's own words quoted in an isolated `<bdi>`."""
    return render_event(event, book, markup=True)


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


# The kinds whose reasons rules/ give as a code with its figures (`details["why"]`): the
# reminders, the promise follow-up and the escalation steps; and those whose figures rules/
# give in their details (an instalment, a deposit's milestone, a retainer's balance, a fee's
# rule and an interest's period, a discount's percentage).
REASONED_KINDS = frozenset({"reminder", "call_task", "stop_service", "demand_letter",
                            "agency_case", "plan_instalment", "deposit_reminder",
                            "quote_deposit_reminder", "retainer_top_up", "fee", "interest",
                            "compensation", "discount"})
# Their English reasons as rules/ wrote them before the codes, read back where they parse.
_REMINDER_REASON = re.compile(
    r"(?:First contact, reminder \d+ of \d+|Reminder \d+ of \d+|Repeat reminder \d+) "
    r"\([^)]*\): .+? (?:(?P<today>due today)|due in (?P<due_in>\d+) days?|"
    r"(?P<overdue>\d+) days? overdue)(?:; sent now at the request of (?P<by>.+))?")
_ESCALATION_REASON = re.compile(
    r"[A-Z][a-z ]+: .+ is (?P<days>\d+)\+ days overdue with (?P<amount>-?[\d,]+(?:\.\d+)?) "
    r"(?P<currency>[A-Z]{3}) unpaid")
_PROMISE_REASON = re.compile(r"Promise broken: .+ was promised to be paid by "
                             r"(?P<pay_by>\d{4}-\d{2}-\d{2})")


def _why_of(reason: str) -> dict[str, Any] | None:
    """The code and figures of an English reason stored before rules/ gave them."""
    if found := _REMINDER_REASON.fullmatch(reason):
        why: dict[str, Any] = (
            {"code": "due_today", "days": 0} if found["today"] else
            {"code": "due_in", "days": int(found["due_in"])} if found["due_in"] else
            {"code": "overdue", "days": int(found["overdue"])})
        return {**why, **({"by": found["by"]} if found["by"] else {})}
    if found := _ESCALATION_REASON.fullmatch(reason):
        return {"code": "overdue_unpaid", "days": int(found["days"]),
                "amount": found["amount"].replace(",", ""), "currency": found["currency"]}
    if found := _PROMISE_REASON.fullmatch(reason):
        return {"code": "promise_broken", "pay_by": found["pay_by"]}
    return None


def _why_in_details(action: Action | PlannedAction) -> dict[str, Any] | None:
    """The figures an instalment, a deposit's milestone, a retainer's top-up, a fee or a
    discount carries."""
    details, kind = action.details or {}, action.kind
    if kind == "plan_instalment" and "instalment_due" in details:
        return {"code": "instalment", "number": details["instalment"],
                "of": details["instalments"], "due": details["instalment_due"]}
    if kind in ("deposit_reminder", "quote_deposit_reminder") and "milestone_due" in details:
        return {"code": "milestone", "number": details["milestone"],
                "of": details["milestones"], "percent": details["percent"],
                "due": details["milestone_due"]}
    if kind == "retainer_top_up" and "balance" in details:
        return {"code": "retainer_low", "balance": details["balance"],
                "threshold": details["threshold"], "currency": action.currency}
    if kind == "interest" and "rule_id" in details and "period_start" in details:
        return {"code": "interest_period", "rule": details["rule_id"],
                "start": details["period_start"], "end": details["period_end"]}
    if kind in ("fee", "compensation") and "rule_id" in details:
        return {"code": "fee_rule", "rule": details["rule_id"]}
    if kind == "discount" and "percent" in details:
        return {"code": "early_payment", "percent": details["percent"]}
    return None


def _why_text(why: Mapping[str, Any], book: Book | None) -> str:
    code = why["code"]
    if code == "instalment":
        return _("instalment %(number)s of %(of)s, due %(due)s",
                 number=number(int(why["number"]), book), of=number(int(why["of"]), book),
                 due=day(_as_day(why["due"]), book))
    if code == "milestone":
        return _("deposit %(number)s of %(of)s (%(percent)s), due %(due)s",
                 number=number(int(why["number"]), book), of=number(int(why["of"]), book),
                 percent=percent(_as_amount(why["percent"]), book),
                 due=day(_as_day(why["due"]), book))
    if code == "interest_period":
        return _("%(start)s to %(end)s, charged by the policy's rule %(rule)s",
                 start=day(_as_day(why["start"]), book), end=day(_as_day(why["end"]), book),
                 rule=why["rule"])
    if code == "fee_rule":
        return _("charged by the policy's rule %(rule)s", rule=why["rule"])
    if code == "early_payment":
        return _("%(percent)s off for paying early",
                 percent=percent(_as_amount(why["percent"]), book))
    if code == "retainer_low":
        currency = why.get("currency")
        return _("the retainer's balance of %(balance)s is below %(threshold)s",
                 balance=money(_as_amount(why["balance"]), currency, book),
                 threshold=money(_as_amount(why["threshold"]), currency, book))
    if code == "due_today":
        return _("due today")
    if code == "due_in":
        return ngettext("due in %(num)d day", "due in %(num)d days", int(why["days"]))
    if code == "overdue":
        return ngettext("%(num)d day overdue", "%(num)d days overdue", int(why["days"]))
    if code == "overdue_unpaid":
        return ngettext("%(num)d day or more overdue, %(amount)s unpaid",
                        "%(num)d days or more overdue, %(amount)s unpaid", int(why["days"]),
                        amount=money(_as_amount(why["amount"]), why.get("currency"), book))
    if code == "promise_broken":
        return _("the customer's promise to pay by %(pay_by)s was broken",
                 pay_by=day(_as_day(why["pay_by"]), book))
    raise KeyError(code)


def action_reason(action: Action | PlannedAction, book: Book | None = None) -> str:
    """Why an action goes, in the reader's language: from the code and figures rules/ gave
    (`details["why"]`), else from its English reason where that parses (an action planned
    before the codes), else the reason as stored. Empty for a kind whose reasons rules/ do
    not yet give as codes (the page shows its description only)."""
    if action.kind not in REASONED_KINDS:
        return ""
    details = action.details or {}
    why = details.get("why") or _why_in_details(action) or _why_of(action.reason or "")
    if not why:
        return action.reason or ""
    try:
        text = _why_text(why, book)
    except (KeyError, ValueError, TypeError, InvalidOperation):
        return action.reason or ""
    by = details.get("sent_now_by") or why.get("by")
    return _("%(why)s; sent now at the request of %(by)s", why=text, by=by) if by else text


def init_events(app: Flask) -> None:
    """`{{ event|event_text }}` and `{{ action|action_text }}`, in the page's book."""
    app.jinja_env.filters.update(event_text=_with_book(render_event_html),
                                 task_title=_with_book(task_title),
                                 action_reason=_with_book(action_reason),
                                 action_text=_with_book(describe_action),
                                 channel_text=channel_label, action_kind=action_label,
                                 tone_text=tone_label,
                                 provider_detail=lambda text: quoted_detail(text, True))
    app.jinja_env.globals["provider_error"] = provider_error
