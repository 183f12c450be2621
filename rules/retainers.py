"""Retainers: money a customer pays in advance, drawn down by their invoices, topped up on
request when it runs low.

The balance is never stored: it is worked out from the top-ups the owner recorded and the
customer's invoices in the retainer's currency issued on or after the day it started, so it
always follows the synced books. Entries go in date order (a top-up before an invoice of the
same day); each invoice draws its total, or what is left if that is less (the balance never goes
below zero; the rest of such an invoice is owed as usual).

When the balance is below the threshold, one top-up request asks for what brings it back to
`top_up_to`. Its key counts the top-ups received so far
(`<org>:contact<id>:retainer_top_up:<n>`): one request per time the money runs low, a new one
only after the customer has paid in again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from rules.actions import PlannedAction, contact_key
from rules.calendar import OrgCalendar
from rules.engine import sendable
from rules.policy import Policy
from rules.statutory import round_money

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class RetainerTerms:
    currency: str
    threshold: Decimal  # below this, ask for a top-up
    top_up_to: Decimal  # the balance a top-up restores
    started_on: date

    def __post_init__(self) -> None:
        if self.threshold < 0 or self.top_up_to <= self.threshold:
            raise ValueError("a retainer tops up to more than its threshold, which is"
                             " zero or more")


@dataclass(frozen=True, slots=True)
class TopUp:
    received_on: date
    amount: Decimal


@dataclass(frozen=True, slots=True)
class RetainerInvoice:
    invoice_id: int
    number: str
    issue_date: date
    total: Decimal
    currency: str


@dataclass(frozen=True, slots=True)
class RetainerEntry:
    day: date
    kind: Literal["top_up", "drawdown"]
    amount: Decimal  # positive in, negative out
    balance: Decimal  # after this entry
    invoice_id: int | None = None
    number: str | None = None


def retainer_history(terms: RetainerTerms, top_ups: Iterable[TopUp],
                     invoices: Iterable[RetainerInvoice]) -> list[RetainerEntry]:
    """Every movement of the retainer in date order, with the balance after each."""
    events: list[tuple[date, int, int, TopUp | RetainerInvoice]] = []
    for n, top_up in enumerate(top_ups):
        if top_up.amount <= 0:
            raise ValueError("a top-up is a positive amount")
        events.append((top_up.received_on, 0, n, top_up))
    for invoice in invoices:
        if invoice.currency == terms.currency and invoice.issue_date >= terms.started_on:
            events.append((invoice.issue_date, 1, invoice.invoice_id, invoice))
    balance = ZERO
    entries = []
    for day, _, _, event in sorted(events, key=lambda e: e[:3]):
        if isinstance(event, TopUp):
            balance += event.amount
            entries.append(RetainerEntry(day, "top_up", event.amount, balance))
            continue
        drawn = min(event.total, balance)
        balance -= drawn
        entries.append(RetainerEntry(day, "drawdown", -drawn, balance, event.invoice_id,
                                     event.number))
    return entries


def retainer_balance(entries: Iterable[RetainerEntry]) -> Decimal:
    """The balance after the last movement (zero before any)."""
    found = list(entries)
    return found[-1].balance if found else ZERO


def top_up_key(org_id: int, contact_id: int, received: int) -> str:
    return contact_key(org_id, contact_id, "retainer_top_up", received)


def due_top_up(org_id: int, contact_id: int, contact_name: str, terms: RetainerTerms,
               top_ups_received: int, entries: Iterable[RetainerEntry], policy: Policy,
               calendar: OrgCalendar, now: datetime) -> PlannedAction | None:
    """The top-up request, when the balance is below the threshold inside a sending window:
    filed under the customer, whether or not anything of theirs is open."""
    balance = retainer_balance(entries)
    if balance >= terms.threshold or not sendable(now, policy, calendar):
        return None
    # Rounded to the currency's minor unit at the last step (amounts may come with more).
    balance = round_money(balance, terms.currency)
    threshold = round_money(terms.threshold, terms.currency)
    asked = round_money(terms.top_up_to - balance, terms.currency)
    return PlannedAction(
        key=top_up_key(org_id, contact_id, top_ups_received), kind="retainer_top_up",
        invoice_id=None, contact_id=contact_id, org_id=org_id, scheduled_for=now,
        reason=(f"Retainer top-up for {contact_name}: balance {terms.currency} {balance}"
                f" below {terms.currency} {threshold}; asking for"
                f" {terms.currency} {asked}"),
        amount=asked, currency=terms.currency, channel="dunwell_email",
        template="retainer_top_up",
        details={"balance": str(balance),
                 "threshold": str(threshold),
                 "top_up_to": str(round_money(terms.top_up_to, terms.currency))})


# A top-up request in each language the ladder speaks.
TOP_UP_TEXTS: dict[str, dict[str, str]] = {
    "en": {"subject": "Please top up your retainer with {business}: {currency} {asked}",
           "greeting": "Dear {name},",
           "balance": "Your retainer with {business} stands at {currency} {balance}, below the"
                      " agreed {currency} {threshold}.",
           "ask": "Please pay in {currency} {asked} to bring it back to {currency} {top_up_to}.",
           "closing": "Kind regards,"},
    "de": {"subject": "Bitte füllen Sie Ihr Guthaben bei {business} auf: {currency} {asked}",
           "greeting": "Sehr geehrte Damen und Herren von {name},",
           "balance": "Ihr Vorschussguthaben bei {business} beträgt {currency} {balance} und liegt"
                      " damit unter den vereinbarten {currency} {threshold}.",
           "ask": "Bitte zahlen Sie {currency} {asked} ein, um es wieder auf {currency}"
                  " {top_up_to} zu bringen.",
           "closing": "Mit freundlichen Grüßen"},
    "nb": {"subject": "Vennligst fyll på forskuddet ditt hos {business}: {currency} {asked}",
           "greeting": "Hei {name},",
           "balance": "Forskuddet ditt hos {business} er nå {currency} {balance}, under avtalte"
                      " {currency} {threshold}.",
           "ask": "Vennligst betal inn {currency} {asked} for å bringe det tilbake til {currency}"
                  " {top_up_to}.",
           "closing": "Med vennlig hilsen"},
    "pl": {"subject": "Prosimy o uzupełnienie zaliczki w {business}: {currency} {asked}",
           "greeting": "Szanowni Państwo ({name}),",
           "balance": "Saldo Państwa zaliczki w {business} wynosi {currency} {balance}, poniżej"
                      " uzgodnionych {currency} {threshold}.",
           "ask": "Prosimy o wpłatę {currency} {asked}, aby przywrócić saldo do {currency}"
                  " {top_up_to}.",
           "closing": "Z poważaniem"},
    "he": {"subject": "נא להשלים את יתרת המקדמה אצל {business}: {currency} {asked}",
           "greeting": "שלום {name},",
           "balance": "יתרת המקדמה שלך אצל {business} עומדת על {currency} {balance}, מתחת"
                      " ל-{currency} {threshold} שסוכמו.",
           "ask": "נא להפקיד {currency} {asked} כדי להחזיר אותה ל-{currency} {top_up_to}.",
           "closing": "בברכה,"},
}


def top_up_message(contact_name: str, business_name: str, currency: str,
                   details: dict[str, str], asked: Decimal,
                   language: str = "en") -> tuple[str, str]:
    """Subject and text of a top-up request, in the contact's language (English for one we
    do not speak)."""
    words = TOP_UP_TEXTS.get(language, TOP_UP_TEXTS["en"])
    fields = {"business": business_name, "currency": currency, "asked": asked,
              "balance": details["balance"], "threshold": details["threshold"],
              "top_up_to": details["top_up_to"]}
    subject = words["subject"].format(**fields)
    text = "\n".join([
        words["greeting"].format(name=contact_name), "", words["balance"].format(**fields),
        words["ask"].format(**fields), "", words["closing"], business_name]) + "\n"
    return subject, text
