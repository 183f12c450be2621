"""The papers escalation produces, assembled from the database: the final demand letter and
the collections-agency case file. rules/letters.py and rules/case_file.py write them; this
module only gathers the facts."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from collect.book import calendar_for, policy_for
from rules.calendar import OrgCalendar
from rules.case_file import (
    CaseAction,
    CaseFacts,
    CaseFee,
    CaseInvoice,
    CaseMessage,
    CaseParty,
    CasePayment,
)
from rules.letters import LetterFacts, LetterInvoice, charge_description
from rules.messages import language_of
from rules.policy import policy_to_json
from store.models import Action, Document, Invoice, Organisation, Payment

FEE_KINDS = ("fee", "interest", "compensation")
# The law a final demand may name, by the organisation's country.
STATUTORY_BASIS = {
    "GB": "Late Payment of Commercial Debts (Interest) Act 1998",
    "DE": "§ 286, § 288 BGB",
    "PL": "ustawa z dnia 8 marca 2013 r. o przeciwdziałaniu nadmiernym opóźnieniom"
          " w transakcjach handlowych",
    "NO": "forsinkelsesrenteloven og inkassoloven § 9",
}


def _fees(session: Session, invoice: Invoice) -> list[Action]:
    return list(session.scalars(select(Action).where(
        Action.invoice_id == invoice.id, Action.kind.in_(FEE_KINDS), Action.status == "done")
        .order_by(Action.finished_at, Action.id)))


def _period(action: Action) -> tuple[date, date] | None:
    """The days a fee or interest charge covers, as the rules stored them."""
    details = action.details or {}
    start, end = details.get("period_start"), details.get("period_end")
    if not (start and end):
        return None
    return date.fromisoformat(str(start)), date.fromisoformat(str(end))


def letter_facts(session: Session, org: Organisation, invoice: Invoice, days_to_pay: int,
                 today: date) -> LetterFacts:
    contact = invoice.contact
    assert invoice.due_date is not None
    language = language_of(contact.language if contact else None)
    charges = tuple((charge_description(a.kind, language, invoice.currency, _period(a)), a.amount)
                    for a in _fees(session, invoice)
                    if a.amount is not None and (a.result or {}).get("placed") != "line")
    return LetterFacts(
        business_name=org.name, business_address=(), signature=org.name,
        customer_name=contact.name if contact else invoice.number, customer_address=(),
        language=language,
        invoices=(LetterInvoice(
            number=invoice.number or invoice.provider_id,
            issue_date=invoice.issue_date or invoice.due_date, due_date=invoice.due_date,
            total=invoice.total, amount_due=invoice.amount_due, currency=invoice.currency),),
        charges=charges,
        total_due=invoice.amount_due + sum((c[1] for c in charges), Decimal(0)),
        letter_date=today, days_to_pay=days_to_pay, jurisdiction=org.country,
        statutory_basis=STATUTORY_BASIS.get(org.country))


def _statements_while_open(session: Session, invoice: Invoice,
                           calendar: OrgCalendar) -> list[Action]:
    """The customer's statements sent since the invoice was issued: each listed it while it
    was open, so the agency sees them beside the invoice's own reminders."""
    if invoice.contact_id is None:
        return []
    since = invoice.issue_date or invoice.due_date
    return [action for action in session.scalars(select(Action).where(
        Action.org_id == invoice.org_id, Action.contact_id == invoice.contact_id,
        Action.kind == "statement", Action.status == "done"))
        if since is None or action.finished_at is None
        or calendar.today(action.finished_at) >= since]


def case_facts(session: Session, org: Organisation, invoice: Invoice, now: datetime
               ) -> CaseFacts:
    contact = invoice.contact
    calendar = calendar_for(org)
    assert invoice.due_date is not None
    actions = sorted([*session.scalars(select(Action).where(Action.invoice_id == invoice.id)),
                      *_statements_while_open(session, invoice, calendar)],
                     key=lambda a: (a.scheduled_for, a.id))
    payments = session.scalars(select(Payment).where(
        Payment.invoice_id == invoice.id, Payment.status == "active")).all()
    letter = session.scalar(select(Document.content).where(
        Document.invoice_id == invoice.id, Document.kind == "demand_letter_pdf").limit(1))
    messages = []
    for action in actions:
        if action.status != "done" or action.kind not in (
                "reminder", "plan_instalment", "demand_letter", "statement"):
            continue
        sent = (action.result or {}).get("message") or {}
        messages.append(CaseMessage(
            sent_at=action.finished_at or action.updated_at, kind=action.kind,
            channel=action.channel or "provider_email",
            recipient=(contact.email or "") if contact else "",
            subject=sent.get("subject") or (action.reason or action.kind),
            text=sent.get("text") or (action.reason or "")))
    return CaseFacts(
        case_date=calendar.today(now), time_zone=org.timezone,
        creditor=CaseParty(name=org.name),
        debtor=CaseParty(name=contact.name if contact else "",
                         email=(contact.email or "") if contact else ""),
        invoice=CaseInvoice(
            number=invoice.number or invoice.provider_id,
            issue_date=invoice.issue_date or invoice.due_date, due_date=invoice.due_date,
            currency=invoice.currency, total=invoice.total, amount_paid=invoice.amount_paid,
            amount_due=invoice.amount_due, reference=invoice.provider_id),
        policy=policy_to_json(policy_for(session, org)),
        payments=tuple(CasePayment(paid_on=p.paid_on, amount=p.amount,
                                   reference=p.provider_id)
                       for p in payments if p.paid_on is not None),
        fees=tuple(CaseFee(
            charged_on=calendar.today(a.finished_at or now), kind=a.kind,
            period_start=date.fromisoformat((a.details or {}).get("period_start")
                                            or invoice.due_date.isoformat()),
            period_end=date.fromisoformat((a.details or {}).get("period_end")
                                          or invoice.due_date.isoformat()),
            amount=a.amount, reason=a.reason or "")
            for a in _fees(session, invoice) if a.amount is not None),
        messages=tuple(messages),
        timeline=tuple(CaseAction(at=a.finished_at or a.updated_at or a.created_at,
                                  kind=a.kind, status=a.status, message=a.reason or "")
                       for a in actions),
        demand_letter_pdf=letter)


def keep(session: Session, action: Action, kind: str, filename: str, content_type: str,
         content: bytes, now: datetime) -> Document:
    """Store a produced file once per action (a retry finds it)."""
    found = session.scalar(select(Document).where(Document.action_id == action.id,
                                                  Document.filename == filename))
    if found is not None:
        return found
    document = Document(org_id=action.org_id, invoice_id=action.invoice_id,
                        action_id=action.id, kind=kind, filename=filename,
                        content_type=content_type, content=content, created_at=now)
    session.add(document)
    session.commit()
    return document

