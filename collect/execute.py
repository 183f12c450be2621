"""Where every planned action is carried out (reminders sent, fees written, tasks opened):
one ledger action, at most once.

The action is claimed (atomically, with a lease) before any effect; the invoice is re-read from
the provider right before writing (paid, voided or changed since planning -> skipped); every
write carries an idempotency key derived from the action key, so a retried job replays instead
of repeating; and each effect is recorded as soon as the provider confirms it (`action.result`
holds which parts are done, so a retry resumes after the last one).

Before each provider write the part is written down as `writing` (committed): a retry that
finds it knows the outcome of that write is unknown (the worker died, or the answer was lost)
and reconciles before anything new is written: the same idempotency key replays the first
answer within the provider's window, and beyond it the effect is looked up at the provider from
the moment the write began (`writing_since`): the marker in a fee line, a fee invoice, a credit
note or a note (Xero History, QuickBooks PrivateNote), and for an email the provider's own record
of the send (Xero History "Sent", QuickBooks DeliveryInfo.DeliveryTime); the re-check of the
invoice does not turn such an action into "skipped" because of a change the action itself made
(a discount that closed the invoice, a fee line that raised the amount due).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Literal, get_args

from sqlalchemy import select
from sqlalchemy.orm import Session

from collect import (
    credit_requests,
    documents,
    ledger,
    logos,
    one_off,
    outbound,
    outcomes,
    own_documents,
    portal,
    quote_deposits,
    review,
    shared_clock,
    sms,
    statements,
)
from collect.approvals import AWAITING_APPROVAL
from collect.book import calendar_for
from collect.effects import (
    UNCONFIRMED_NOTE,
    WRITING,
    Effect,
    crash_point,
    payment_link,
    send_own_email,
)
from collect.message_texts import reminder_message
from collect.observed import with_action_ids
from collect.outcomes import OUTCOME_ERRORS, Skip
from collect.plan import refresh_next_action
from connectors.base import (
    Connector,
    CreditNote,
    EditRefused,
    FeeInvoice,
    FeeLine,
    TransientError,
    effect_marker,
)
from rules.actions import ActionKind
from rules.case_file import agency_case_file
from rules.letters import demand_letter
from store.models import Action, Contact, Invoice, Organisation, Task
from sync.engine import upsert_invoices

log = logging.getLogger(__name__)

FEE_KINDS = ("fee", "interest", "compensation")
FEE_LABELS = {"fee": "Late fee", "interest": "Interest", "compensation": "Recovery costs"}


def reminder_note(action: Action, invoice: Invoice) -> str:
    if action.kind == "plan_instalment":
        details = action.details or {}
        what = (f"instalment {details.get('instalment')} of {details.get('instalments')}"
                f" reminder sent")
    elif (action.step_index or 0) < (action.step_count or 0):
        what = f"reminder {(action.step_index or 0) + 1} of {action.step_count} sent"
    else:
        what = f"repeat reminder {(action.step_index or 0) - (action.step_count or 0) + 1} sent"
    return (f"Dunwell: {what} ({action.template}, {action.channel}); "
            f"{invoice.currency} {invoice.amount_due} due {invoice.due_date}.")


@with_action_ids
def execute_action(session: Session, action: Action, connector: Connector,
                   now: datetime, owner: str, touched: set[int] | None = None) -> str:
    """Carry out one action; returns its final or current status. The invoice's next action
    time is worked out again with the outcome's commit; a caller running many of an
    organisation's actions passes `touched`, gets the invoice ids in it instead, and works
    them out once at the end (`collect.plan.refresh_next_action`)."""
    if action.status in ledger.FINAL_STATES:
        return action.status
    if action.status == AWAITING_APPROVAL:  # safe mode: only the owner's approval sends it
        log.warning("org %s action %s waits for approval; not run", action.org_id, action.key)
        return action.status
    org = session.get(Organisation, action.org_id)
    if org is not None and review.in_review(org):
        # In review nothing reaches the books or a customer: held for the owner instead.
        ledger.hold(session, action, now, f"In review, held for the owner: {action.reason}")
        session.commit()
        log.warning("org %s action %s: the organisation is in review; held, not run",
                    action.org_id, action.key)
        return action.status
    handler = HANDLERS[action.kind]
    filed: Invoice | Contact | None = None
    if handler.filed_under == "quote":
        gone = "Quote no longer exists" if org is None or \
            quote_deposits.quote_of(session, action) is None else None
    elif handler.filed_under == "contact" or action.contact_id is not None:
        filed = session.get(Contact, action.contact_id) if action.contact_id else None
        gone = "The customer no longer exists" if filed is None or org is None \
            or filed.org_id != action.org_id else None
    else:
        filed = session.get(Invoice, action.invoice_id) if action.invoice_id else None
        gone = "Invoice no longer exists" if filed is None or org is None else None
    if gone is not None:
        ledger.finish(session, action, "skipped", gone, now, result={"reason": "gone"})
        session.commit()
        return action.status
    assert org is not None
    if not ledger.claim(session, action, owner, shared_clock.now()):
        log.info("action %s is held by %s until %s; not run twice", action.key,
                 action.claimed_by, action.lease_until)
        return "held"
    crash_point("claimed")
    try:
        with ledger.fenced(session, [action], owner):
            status = _carry_out(Effect(session, action, filed, org, connector, now, owner),
                                handler, touched)
    except ledger.ClaimLost:
        session.rollback()
        log.warning("org %s invoice %s action %s: the claim passed to another worker; stopped"
                    " without writing", action.org_id, action.invoice_id, action.key)
        return "held"
    crash_point("committed")
    return status


def _carry_out(effect: Effect, handler: Handler, touched: set[int] | None) -> str:
    """The claimed action run and its outcome recorded (collect/outcomes.py), each commit
    fenced by the claim."""
    session, action, invoice = effect.session, effect.action, effect.filed_invoice
    try:
        if invoice is not None and handler.recheck:
            _recheck(effect)
        status = handler.run(effect)
    except OUTCOME_ERRORS as exc:
        # Stamped on the shared clock, as claims are: the sweeper compares an open action's
        # time with it, and a worker whose own clock runs minutes fast would otherwise hide a
        # failed action whose retry was lost (Redis flushed) for as long as its clock is ahead.
        status = outcomes.record(session, action, exc, shared_clock.now())  # or raises
        if isinstance(exc, TransientError):
            return status  # attempts spent: recorded as it stands
    if invoice is not None and touched is not None:
        touched.add(invoice.id)
    elif invoice is not None:
        refresh_next_action(session, effect.org, effect.now, [invoice.id])
    session.commit()
    return status


def _recheck(effect: Effect) -> None:
    """The invoice re-read from the provider right before any write: paid, voided or changed
    since planning, the action is skipped (a changed one is planned again)."""
    session, action, invoice = effect.session, effect.action, effect.invoice
    # No transaction stays open over a provider call that may be slow (on SQLite even a
    # reader's lock holds every other worker's commit back).
    provider_id, org_id = invoice.provider_id, invoice.org_id
    session.commit()
    current = effect.connector.invoice(provider_id)
    upsert_invoices(session, org_id, [current])
    session.commit()
    unknown = (action.result or {}).get(WRITING)
    if unknown:
        log.info("org %s invoice %s action %s: the outcome of %s is unknown; reconciling",
                 action.org_id, invoice.id, action.key, unknown)
    # A discount whose credit note may have been applied can itself have closed the invoice:
    # it is looked up by its marker before the invoice's state decides anything. A due date
    # whose write may have happened is looked up too (the invoice may be paid since).
    if current.status != "open" and not (unknown and action.kind in ("discount",
                                                                     "terms_change")):
        raise Skip(current.status,
                   f"Invoice {invoice.number} is {current.status} now; nothing done")
    if ledger.amount_changed(action, current.amount_due) and not action.result \
            and action.kind == one_off.KIND:  # its words name the amount; nobody replans it
        raise Skip(one_off.CHANGED, f"Invoice {invoice.number} changed since the one-off"
                   f" reminder was asked for ({action.planned_amount_due} ->"
                   f" {current.amount_due}); not sent")
    if ledger.amount_changed(action, current.amount_due) and not action.result:
        raise Skip(ledger.REPLAN_REASON,
                   f"Invoice {invoice.number} changed since planning "
                   f"({action.planned_amount_due} -> {current.amount_due}); planned again")


# ------------------------------------------------------------------------------ reminders


def _message(effect: Effect, tone: str | None) -> tuple[str, str, str]:
    """Subject, text and HTML of our own email, in the contact's language (the previews show
    the same, collect/message_texts.py)."""
    message = reminder_message(effect.session, effect.org, effect.invoice, tone,
                               effect.now.date(), payment_link(effect),
                               portal.portal_url(effect.session, effect.invoice.contact))
    return message.subject, message.text, message.html


def send_reminder(effect: Effect) -> str:
    """A reminder or an instalment reminder, by the channel the policy chose."""
    action, invoice = effect.action, effect.invoice
    channel = action.channel or "provider_email"
    contact = invoice.contact
    if channel == "call_task":
        return open_call_task(effect)
    if channel == "sms":  # texted, or by email with the reason recorded (collect/sms.py)
        channel = sms.send_text(effect, lambda: payment_link(effect))
    if channel in ("provider_email", "dunwell_email") and not (contact and contact.email):
        raise Skip("no_email", f"{invoice.number}: the contact has no email address")
    if channel == "provider_email" and not effect.done_part("emailed"):
        since = effect.unknown_since("emailed")
        # `since` is on the shared clock; the provider stamps the email with its own. An
        # email of this invoice within the provider's idempotency window before it is taken
        # as this write's (Connector.idempotency_window), however far the clocks are apart.
        if since is not None and effect.connector.invoice_emailed_since(
                invoice.provider_id, since - effect.connector.idempotency_window):
            log.info("org %s invoice %s action %s: the provider emailed the invoice after %s;"
                     " recorded, not sent again", action.org_id, invoice.id, action.key,
                     since.isoformat(timespec="seconds"))
            effect.record_part("emailed", "found")
        else:
            effect.begin("emailed")
            effect.connector.email_invoice(invoice.provider_id,
                                           idempotency_key=f"{effect.key}:email")
            effect.record_part("emailed")
    if channel == "dunwell_email" and not effect.done_part("emailed"):
        assert contact is not None and contact.email
        subject, text, html = _message(effect, action.tone)
        if send_own_email(effect, to=contact.email, subject=subject, text=text, html=html,
                           sender_name=effect.org.name, action_key=effect.key):
            effect.record_part("message", {"subject": subject, "text": text})
    if not effect.done_part("noted") and not _note_found(effect, f"{effect.key}:note"):
        effect.begin("noted")
        note = reminder_note(action, invoice)
        if effect.unconfirmed:
            note += f" {UNCONFIRMED_NOTE}"
        effect.connector.add_invoice_note(invoice.provider_id, note,
                                          idempotency_key=f"{effect.key}:note")
    how = {"note": "noted on the invoice", "dunwell_email": "emailed by Dunwell",
           "sms": "texted"}.get(
        channel, "emailed")
    return effect.finish_sent(action.reason or "Reminder",
                              f"{how} ({invoice.currency} {invoice.amount_due} due)", noted=True)


def _note_found(effect: Effect, idempotency_key: str) -> bool:
    """After an unknown outcome, whether the note is on the invoice already (by its marker):
    recorded as written instead of written twice. No lookup on a first attempt."""
    if effect.unknown_since("noted") is None:
        return False
    if not effect.connector.find_invoice_note(effect.invoice.provider_id, idempotency_key):
        return False
    log.info("org %s invoice %s action %s: the note is on the invoice; not written again",
             effect.action.org_id, effect.invoice.id, effect.key)
    effect.record_part("noted", "found")
    return True


def write_note(effect: Effect) -> str:
    """A collector's note, into the invoice's history in the books (Xero History & Notes,
    QuickBooks' private note) once: the marker of its key finds it after a lost answer."""
    action, invoice = effect.action, effect.invoice
    details = action.details or {}
    if not effect.done_part("noted") and not _note_found(effect, f"{effect.key}:note"):
        effect.begin("noted")
        effect.connector.add_invoice_note(
            invoice.provider_id, f"Dunwell, note by {details.get('by')}: {details.get('note')}",
            idempotency_key=f"{effect.key}:note")
        effect.record_part("noted")
    return effect.finish(f"Note written to the history of {invoice.number} in the books",
                         noted=True)


def send_one_off(effect: Effect) -> str:
    """A collector's one-off reminder (collect/one_off.py): the words fixed when it was asked
    for, by the channel chosen, once and not before its booked moment; noted on the invoice.
    A text that cannot go is not turned into an email: the collector chose the channel."""
    action, invoice = effect.action, effect.invoice
    details = action.details or {}
    if effect.now < action.scheduled_for:
        raise one_off.NotYet("booked for later", retry_after=(
            action.scheduled_for - effect.now).total_seconds())
    if action.channel == "sms":
        result = action.result or {}
        if result.get(sms.UNDELIVERED):
            raise Skip("undelivered", f"{invoice.number}: the one-off text was not delivered")
        if not effect.done_part(sms.TEXTED):
            number, reason = one_off.text_reach(effect.session, effect.org, invoice)
            if number is None:
                raise Skip(reason, f"{invoice.number}: no text ({reason.replace('_', ' ')});"
                                   " the one-off reminder was not sent")
            if not result.get(sms.BODY):
                effect.record_part(sms.BODY, str(details.get("text") or ""))
            if sms.send_text(effect, lambda: None, by_email=False) != "sms":
                why = str((action.result or {}).get(sms.FALLBACK) or "rejected")
                raise Skip(why, f"{invoice.number}: no text ({why.replace('_', ' ')}); the"
                                " one-off reminder was not sent")
    else:
        contact = invoice.contact
        if not (contact and contact.email):
            raise Skip("no_email", f"{invoice.number}: the contact has no email address")
        if not effect.done_part("emailed") and send_own_email(
                effect, to=contact.email, subject=str(details.get("subject") or ""),
                text=str(details.get("text") or ""), html=str(details.get("html") or ""),
                sender_name=effect.org.name, action_key=effect.key):
            effect.record_part("message", {"subject": details.get("subject"),
                                           "text": details.get("text")})
    if not effect.done_part("noted") and not _note_found(effect, f"{effect.key}:note"):
        effect.begin("noted")
        effect.connector.add_invoice_note(
            invoice.provider_id,
            f"Dunwell: one-off reminder sent ({action.tone}, {action.channel}), asked for by"
            f" {details.get('by')}; {invoice.currency} {invoice.amount_due} due"
            f" {invoice.due_date}." + (f" {UNCONFIRMED_NOTE}" if effect.unconfirmed else ""),
            idempotency_key=f"{effect.key}:note")
        effect.record_part("noted")
    how = "texted" if action.channel == "sms" else "emailed by Dunwell"
    return effect.finish_sent(action.reason or "One-off reminder",
                              f"{how} ({invoice.currency} {invoice.amount_due} due)", noted=True)


def open_call_task(effect: Effect) -> str:
    action, invoice = effect.action, effect.invoice
    existing = effect.session.scalar(select(Task).where(Task.action_id == action.id))
    assignee = (action.details or {}).get("assignee") or "the owner"
    if existing is None:
        contact = invoice.contact
        effect.session.add(Task(
            org_id=action.org_id, invoice_id=invoice.id, action_id=action.id, kind="call",
            assignee=str(assignee), created_at=effect.now,
            title=(f"Call {contact.name if contact else 'the customer'} about {invoice.number}:"
                   f" {invoice.currency} {invoice.amount_due} due since {invoice.due_date}")))
    return effect.finish(f"Phone call for {invoice.number} assigned to {assignee}",
                         task=True)


# ----------------------------------------------------------------------------------- money


def _fee_line(effect: Effect, amount: Decimal, label: str) -> FeeLine:
    details = effect.action.details or {}
    marker = effect_marker(effect.key)
    period = ""
    if details.get("period_start") and effect.action.kind == "interest":
        period = f" {details['period_start']} to {details['period_end']}"
    return FeeLine(description=f"{label} on {effect.invoice.number}{period} (ref {marker})",
                   amount=amount, marker=marker, account_code=details.get("account_code"),
                   item_name=details.get("item"), tax_type=details.get("tax_rate"))


def _fee_invoice(effect: Effect, line: FeeLine) -> str:
    invoice = effect.invoice
    sent_in_batch = (effect.action.result or {}).get("fee_batch_sent")
    if sent_in_batch and not effect.done_part("fee_invoice_id"):
        # A batch (collect/fee_batches.py) carried it and its answer was lost: under another
        # idempotency key than ours, so the marker is the only way to know it was made.
        assert invoice.contact_provider_id is not None
        found = effect.connector.find_fee_invoices(
            [line.marker], [invoice.contact_provider_id], date.fromisoformat(str(sent_in_batch)))
        if line.marker in found:
            effect.record_part("fee_invoice_id", found[line.marker])
    since = effect.unknown_since("fee_invoice_id")
    if since is not None and not effect.done_part("fee_invoice_id"):
        # Our own create's answer was lost: within the provider's window the key replays it,
        # past it the marker (in the Reference or PrivateNote and the line) finds the invoice.
        # It is dated the day of its attempt, in UTC: one day back covers a retry after midnight.
        assert invoice.contact_provider_id is not None
        found = effect.connector.find_fee_invoices(
            [line.marker], [invoice.contact_provider_id], since.date() - timedelta(days=1))
        if line.marker in found:
            log.info("org %s invoice %s action %s: fee invoice %s found by its marker; not made"
                     " again", effect.action.org_id, invoice.id, effect.key, found[line.marker])
            effect.record_part("fee_invoice_id", found[line.marker])
    if not effect.done_part("fee_invoice_id"):
        assert invoice.contact_provider_id is not None
        today = effect.now.date()
        effect.begin("fee_invoice_id")
        provider_id = effect.connector.create_fee_invoice(FeeInvoice(
            contact_provider_id=invoice.contact_provider_id, currency=invoice.currency,
            issue_date=today, due_date=today + timedelta(days=14),
            reference=f"Late fees on {invoice.number}", lines=(line,)),
            idempotency_key=f"{effect.key}:fee_invoice")
        effect.record_part("fee_invoice_id", provider_id)
    return str((effect.action.result or {})["fee_invoice_id"])


def charge_fee(effect: Effect) -> str:
    """A fee, interest or compensation: a line on the invoice where the provider allows it,
    otherwise (or by the rule's choice) a separate fee invoice naming the original."""
    action = effect.action
    assert action.amount is not None
    line = _fee_line(effect, action.amount, FEE_LABELS[action.kind])
    placement = (action.details or {}).get("placement", "line")
    if placement == "line" and not effect.done_part("fee_invoice_id"):
        effect.begin("line")
        try:
            effect.connector.add_fee_line(effect.invoice.provider_id, line,
                                          idempotency_key=f"{effect.key}:line")
        except EditRefused as exc:
            log.info("org %s invoice %s: %s; a fee invoice instead", action.org_id,
                     effect.invoice.id, exc)
        else:
            return effect.finish(f"{action.reason}: added to {effect.invoice.number}",
                                 placed="line", marker=line.marker)
    provider_id = _fee_invoice(effect, line)
    return effect.finish(f"{action.reason}: on a separate fee invoice", placed="fee_invoice",
                         marker=line.marker, fee_invoice_id=provider_id)


def grant_discount(effect: Effect) -> str:
    """The early-payment discount: a credit note applied to the invoice, or a discount line."""
    action, invoice = effect.action, effect.invoice
    assert action.amount is not None
    details = action.details or {}
    marker = effect_marker(action.key)
    description = (f"Early-payment discount {details.get('percent', '')} % on {invoice.number}"
                   f" (ref {marker})")
    if details.get("realise_as") == "discount_line" and not effect.done_part("credit_note_id"):
        line = FeeLine(description=description, amount=-action.amount, marker=marker,
                       account_code=details.get("account_code"),
                       item_name=details.get("item"), tax_type=details.get("tax_rate"))
        effect.begin("line")
        try:
            effect.connector.add_fee_line(invoice.provider_id, line,
                                          idempotency_key=f"{action.key}:line")
        except EditRefused:
            pass  # e.g. Xero, once a payment is on the invoice: a credit note instead
        else:
            return effect.finish(f"{action.reason}: discount line on {invoice.number}",
                                 placed="line", marker=marker)
    assert invoice.contact_provider_id is not None
    effect.begin("credit_note_id")
    credit_id = effect.connector.apply_credit_note(CreditNote(
        contact_provider_id=invoice.contact_provider_id,
        invoice_provider_id=invoice.provider_id, currency=invoice.currency,
        issue_date=effect.now.date(), amount=action.amount, description=description,
        marker=marker, account_code=details.get("account_code"),
        item_name=details.get("item"), tax_type=details.get("tax_rate")),
        idempotency_key=f"{action.key}:credit")
    # Ours: shown with the invoice, never taken for a debt (recorded with the outcome).
    own_documents.remember(effect.session, action.org_id, credit_id, invoice.id,
                           own_documents.CREDIT_NOTE)
    return effect.finish(f"{action.reason}: credit note applied", placed="credit_note",
                         marker=marker, credit_note_id=credit_id)


# ------------------------------------------------------------------------------ escalation


def stop_service(effect: Effect) -> str:
    """Flag the contact; tell the owner's system with a signed webhook if one is configured.
    An escalation's is filed under its invoice (the webhook names it), a credit hold's or
    limit's under the customer (the webhook names no invoice)."""
    action, invoice = effect.action, effect.filed_invoice
    if invoice is None:
        contact: Contact | None = effect.contact
    else:
        contact = effect.session.get(Contact, invoice.contact_id) if invoice.contact_id else None
    if contact is not None and not contact.stop_service:
        contact.stop_service, contact.stop_service_at = True, effect.now
        effect.session.commit()
    url = (action.details or {}).get("webhook_url")
    if url and not effect.done_part("webhook"):
        body = json.dumps({
            "event": "stop_service", "organisation_id": action.org_id,
            "contact": {"id": contact.id if contact else None,
                        "provider_id": contact.provider_id if contact else None,
                        "name": contact.name if contact else None},
            "invoice": None if invoice is None else {
                "id": invoice.id, "number": invoice.number,
                "amount_due": str(invoice.amount_due), "currency": invoice.currency,
                "due_date": invoice.due_date.isoformat() if invoice.due_date else None},
            "at": effect.now.isoformat()}, sort_keys=True).encode()
        effect.begin("webhook")
        # Public addresses only (SSRF), signed, bounded in time: collect/outbound.py.
        status = outbound.post_signed(url, body, action.org_id, action.key)
        effect.record_part("webhook", status)
    name = contact.name if contact else "the contact"
    return effect.finish(f"{action.reason}: {name} flagged stop-service"
                         + (" and the webhook told" if url else ""), flagged=True)


def send_demand_letter(effect: Effect) -> str:
    """The final demand: written (HTML and PDF, kept with the invoice), emailed by Dunwell with
    the PDF attached where the contact has an address, and noted on the invoice."""
    action, invoice, org = effect.action, effect.invoice, effect.org
    calendar = calendar_for(org)
    days = int((action.details or {}).get("pay_within_days", 14))
    facts = documents.letter_facts(effect.session, org, invoice, days,
                                   calendar.today(effect.now))
    link = portal.portal_url(effect.session, invoice.contact)
    letter = demand_letter(replace(facts, payment_link=payment_link(effect), portal_link=link,
                                   logo=logos.logo_for(effect.session, org.id, link)))
    stem = f"final-demand-{invoice.number or invoice.id}"
    documents.keep(effect.session, action, "demand_letter_html", f"{stem}.html",
                   "text/html", letter.html.encode(), effect.now)
    documents.keep(effect.session, action, "demand_letter_pdf", f"{stem}.pdf",
                   "application/pdf", letter.pdf, effect.now)
    contact = invoice.contact
    if contact is not None and contact.email and not effect.done_part("emailed") and \
            send_own_email(effect, to=contact.email, subject=letter.subject, text=letter.text,
                            html=letter.html, sender_name=org.name, action_key=action.key,
                            attachments=((f"{stem}.pdf", "application/pdf", letter.pdf),)):
        effect.record_part("message", {"subject": letter.subject, "text": letter.text})
    emailed = (action.result or {}).get("emailed")
    if not effect.done_part("noted") and not _note_found(effect, f"{action.key}:note"):
        effect.begin("noted")
        effect.connector.add_invoice_note(
            invoice.provider_id, f"Dunwell: final demand {'sent' if emailed else 'written'}"
            f" ({letter.subject}); pay within {days} days."
            + (f" {UNCONFIRMED_NOTE}" if effect.unconfirmed else ""),
            idempotency_key=f"{action.key}:note")
        effect.record_part("noted")
    how = "emailed with the PDF" if emailed else "written; no email address, send it by post"
    return effect.finish_sent(f"Final demand for {invoice.number}", how, written="written; ",
                              letter=True)


def open_agency_case(effect: Effect) -> str:
    """The case file for a collections agency: a ZIP kept with the invoice for the owner."""
    action, invoice = effect.action, effect.invoice
    content = agency_case_file(documents.case_facts(effect.session, effect.org, invoice,
                                                    effect.now))
    documents.keep(effect.session, action, "agency_case",
                   f"case-{invoice.number or invoice.id}.zip", "application/zip", content,
                   effect.now)
    return effect.finish(f"Collections-agency case file for {invoice.number} is ready"
                         f" ({len(content):,} bytes)", case_file=True)


@dataclass(frozen=True, slots=True)
class Handler:
    """How one kind of action is carried out, and what it is filed under: an invoice (re-read
    from the provider before the handler runs), a customer (an action of an invoice's kind
    may be one too: its `contact_id` says so) or a quote (the handler re-reads it)."""

    run: Callable[[Effect], str]
    filed_under: Literal["invoice", "contact", "quote"] = "invoice"
    # Re-read the invoice first and skip a paid or changed one; a note is written whatever
    # the invoice's state (the collector wrote it about the invoice as it is).
    recheck: bool = True


# Every kind of action, one entry each (checked below against rules.actions.ActionKind).
HANDLERS: dict[str, Handler] = {
    "reminder": Handler(send_reminder),
    "plan_instalment": Handler(send_reminder),
    "fee": Handler(charge_fee),
    "interest": Handler(charge_fee),
    "compensation": Handler(charge_fee),
    "discount": Handler(grant_discount),
    "call_task": Handler(open_call_task),
    "stop_service": Handler(stop_service),
    "demand_letter": Handler(send_demand_letter),
    "agency_case": Handler(open_agency_case),
    "statement": Handler(statements.send_statement, filed_under="contact"),
    "deposit_reminder": Handler(credit_requests.send_deposit_reminder),
    "retainer_top_up": Handler(credit_requests.send_top_up_request, filed_under="contact"),
    "terms_change": Handler(credit_requests.shorten_terms),
    "quote_deposit_reminder": Handler(quote_deposits.send_quote_deposit_reminder,
                                      filed_under="quote"),
    "note": Handler(write_note, recheck=False),
    "one_off_reminder": Handler(send_one_off),
}
assert set(HANDLERS) == set(get_args(ActionKind)), "one handler for every kind of action"
