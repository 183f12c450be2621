"""Card payments from the portal through the organisation's own Stripe account, booked in the
books exactly once.

1. The customer presses Pay by card: a CardPayment row is committed, then a Checkout Session
   is opened for it (idempotency key of the row), and the customer goes to Stripe's page.
2. Stripe's webhooks are verified (connectors/stripe) and stored as ProcessorEvent rows, unique
   per event id, before anything acts on them: a replay is a no-op, and an event stored by a
   worker that then died is applied by the next job (or the next delivery of any event).
3. Applying an event asks Stripe for the payment as it stands now (the event only says where
   to look), so events arriving twice or out of order converge on the same row: paid once,
   a failure recorded only while nothing succeeded, refunds only ever growing.
4. A paid row is booked in the books by `book`: the row is claimed with a lease (one
   conditional UPDATE, committed), the provider is written with an idempotency key made of
   the processor's payment id, and the payment carries its marker so a retry after a lost
   answer (or a worker killed between the write and the commit) finds it instead of booking a
   second one. The processor's payment id is unique on the row: one payment, one booking.
5. A refund is recorded and shown on the invoice's activity. When the organisation asks for it
   and the payment is refunded in full, `unbook` takes the books' payment off the invoice once
   (claimed like a booking; the connector reads the payment first, so a retry after a lost
   answer removes nothing twice): the invoice owes again, its next action is worked out again,
   and it is chased as any unpaid invoice. A partial refund leaves the books' payment as it is
   and tells the owner: only they know whether the customer still owes the rest (goods returned
   call for a credit note, a goodwill gesture for nothing at all).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from flask import current_app
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from collect import shared_clock
from collect.effects import crash_point
from collect.ledger import audit
from collect.plan import refresh_next_action
from collect.vault import token_vault
from connectors.base import (
    BankFee,
    Connector,
    NotFound,
    ProviderRejected,
    ReceivedPayment,
    effect_marker,
)
from connectors.stripe import CheckoutOrder, EventNotice, StripeProcessor
from rules.card_payments import card_surcharge, from_minor, payment_method_types, to_minor
from store.models import (
    CardPayment,
    CardPaymentSettings,
    Contact,
    Invoice,
    Organisation,
    ProcessorEvent,
)
from sync.engine import upsert_invoices

log = logging.getLogger(__name__)

# A booking worker that died gives the row up after this (two minutes; the chaos benchmark
# shortens it, as it does the ledger's lease).
LEASE = timedelta(seconds=float(os.environ.get("DUNWELL_CARD_LEASE_SECONDS", "120")))
# What the webhook endpoint made for an organisation listens to (the rest is not ours).
EVENTS = ("checkout.session.completed", "checkout.session.async_payment_succeeded",
          "checkout.session.async_payment_failed", "checkout.session.expired",
          "payment_intent.succeeded", "payment_intent.payment_failed", "charge.refunded")
EVENT_BATCH = 200


class CardPaymentRefused(ValueError):
    """The portal cannot take a card payment now; `code` names why (the page words it)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class BookingHeld(RuntimeError):
    """Another worker holds the row's booking claim: try again once its lease has passed."""


# ------------------------------------------------------------------------------- settings


def settings_of(session: Session, org_id: int) -> CardPaymentSettings | None:
    return session.scalar(select(CardPaymentSettings).where(
        CardPaymentSettings.org_id == org_id))


def ready(row: CardPaymentSettings | None) -> bool:
    return bool(row is not None and row.enabled and row.secret_key_enc
                and row.webhook_secret_enc)


@dataclass(frozen=True)
class CardChoice:
    enabled: bool
    secret_key: str | None  # None: keep the saved one
    webhook_secret: str | None
    account_code: str | None
    book_fees: bool
    surcharge_percent: Decimal | None = None  # None: no surcharge
    refunds_in_books: bool = False  # a full refund takes the books' payment off the invoice


def save_settings(session: Session, org: Organisation, choice: CardChoice,
                  now: datetime, webhook_url: str | None = None) -> CardPaymentSettings:
    """Save the choice. A new secret key with no webhook secret given makes the account's
    webhook endpoint at `webhook_url` through Stripe's API and keeps its signing secret (the
    connector's errors reach the caller, and nothing is saved)."""
    row = settings_of(session, org.id)
    if row is None:
        row = CardPaymentSettings(org_id=org.id, enabled=False, book_fees=False)
        session.add(row)
    vault = token_vault()
    if choice.secret_key:
        row.secret_key_enc = vault.encrypt(choice.secret_key)
    if choice.webhook_secret:
        row.webhook_secret_enc = vault.encrypt(choice.webhook_secret)
    elif choice.secret_key and webhook_url:
        _endpoint_id, secret = processor_for(row).create_webhook_endpoint(webhook_url, EVENTS)
        row.webhook_secret_enc = vault.encrypt(secret)
    row.enabled, row.account_code, row.book_fees = (choice.enabled, choice.account_code,
                                                    choice.book_fees)
    row.surcharge_percent = choice.surcharge_percent
    row.refunds_in_books = choice.refunds_in_books
    audit(session, org.id, "card_payments_settings",
          "Card payments in the portal " + ("on" if choice.enabled else "off")
          + (" (Stripe keys replaced)" if choice.secret_key or choice.webhook_secret else ""),
          at=now, data={"enabled": choice.enabled,
                        "keys_replaced": bool(choice.secret_key or choice.webhook_secret)})
    return row


def processor_for(row: CardPaymentSettings) -> StripeProcessor:
    if not row.secret_key_enc:
        raise CardPaymentRefused("card_unavailable")
    return StripeProcessor(token_vault().decrypt(row.secret_key_enc),
                           current_app.config.get("STRIPE_API_BASE") or None)


def webhook_secret(row: CardPaymentSettings) -> str | None:
    return token_vault().decrypt(row.webhook_secret_enc) if row.webhook_secret_enc else None


# ---------------------------------------------------------------------------- checkout


def surcharge_for(session: Session, contact: Contact, invoice: Invoice,
                  settings: CardPaymentSettings | None = None) -> Decimal:
    """The card surcharge paying the invoice's amount due by card carries: the organisation's
    percentage where the law of its country allows one for this customer, capped at the cost
    (rules/card_payments.py); zero otherwise."""
    settings = settings if settings is not None else settings_of(session, invoice.org_id)
    if settings is None or not settings.surcharge_percent:
        return Decimal(0)
    org = session.get(Organisation, invoice.org_id)
    return card_surcharge(invoice.amount_due, invoice.currency, settings.surcharge_percent,
                          org.country if org else None, contact.is_business)


def new_card_payment(session: Session, contact: Contact, invoice: Invoice,
                     now: datetime) -> CardPayment:
    """The row a Checkout Session is opened for (the caller commits it first), with the
    surcharge the customer was shown."""
    settings = settings_of(session, invoice.org_id)
    if not ready(settings):
        raise CardPaymentRefused("card_unavailable")
    surcharge = surcharge_for(session, contact, invoice, settings)
    row = CardPayment(org_id=invoice.org_id, invoice_id=invoice.id, contact_id=contact.id,
                      currency=invoice.currency, amount=invoice.amount_due,
                      surcharge=surcharge or None, status="open",
                      created_at=now, updated_at=now)
    session.add(row)
    session.flush()
    return row


def open_checkout(session: Session, row: CardPayment, contact: Contact, invoice: Invoice,
                  success_url: str, cancel_url: str, locale: str | None, now: datetime) -> str:
    """Stripe's page for the row; the caller commits the session id it gets."""
    settings = settings_of(session, row.org_id)
    if settings is None or not ready(settings):
        raise CardPaymentRefused("card_unavailable")
    ids = {"dunwell_org": str(row.org_id), "dunwell_invoice": str(invoice.id),
           "dunwell_card_payment": str(row.id)}
    surcharge = row.surcharge or Decimal(0)
    description = f"Invoice {invoice.number}" + (
        f" (with a card surcharge of {row.currency} {surcharge})" if surcharge else "")
    started = processor_for(settings).create_checkout(CheckoutOrder(
        currency=row.currency, amount_minor=to_minor(row.amount + surcharge, row.currency),
        description=description, reference=f"{row.org_id}:{row.id}",
        payment_method_types=payment_method_types(row.currency), success_url=success_url,
        cancel_url=cancel_url, metadata=ids, customer_email=contact.email or None,
        locale=locale), idempotency_key=f"dunwell-checkout-{row.org_id}-{row.id}")
    row.session_id = started.session_id
    audit(session, row.org_id, "card_payment_started",
          f"{contact.name} started paying {invoice.number} by card "
          f"({row.currency} {row.amount})", at=now, invoice_id=invoice.id,
          data={"card_payment_id": row.id, "contact": contact.name, "number": invoice.number,
                "amount": str(row.amount), "currency": row.currency})
    return started.url


def latest_by_invoice(session: Session, invoice_ids: list[int]) -> dict[int, CardPayment]:
    """Each invoice's latest card payment that got further than an open page."""
    if not invoice_ids:
        return {}
    found: dict[int, CardPayment] = {}
    for row in session.scalars(select(CardPayment).where(
            CardPayment.invoice_id.in_(invoice_ids),
            CardPayment.status.in_(("paid", "failed"))).order_by(CardPayment.id)):
        if row.invoice_id is not None:
            found[row.invoice_id] = row
    return found


# ------------------------------------------------------------------------------ webhooks


def record_event(session: Session, org_id: int, notice: EventNotice, now: datetime) -> bool:
    """Store the event once; True while it still waits to be applied (a new one, or a replay
    of one a dead worker never applied)."""
    existing = session.scalar(select(ProcessorEvent).where(
        ProcessorEvent.org_id == org_id, ProcessorEvent.event_id == notice.event_id))
    if existing is not None:
        return existing.processed_at is None
    try:
        with session.begin_nested():
            session.add(ProcessorEvent(org_id=org_id, event_id=notice.event_id,
                                       kind=notice.kind[:64], object_id=notice.object_id,
                                       received_at=now))
    except IntegrityError:  # the same event, stored by a concurrent delivery
        return True
    return True


def pending_events(session: Session, org_id: int) -> list[ProcessorEvent]:
    return list(session.scalars(select(ProcessorEvent).where(
        ProcessorEvent.org_id == org_id, ProcessorEvent.processed_at.is_(None))
        .order_by(ProcessorEvent.id).limit(EVENT_BATCH)))


def _row_by_metadata(session: Session, org_id: int, metadata: dict[str, str]
                     ) -> CardPayment | None:
    try:
        row_id = int(metadata.get("dunwell_card_payment", ""))
    except ValueError:
        return None
    row = session.get(CardPayment, row_id)
    return row if row is not None and row.org_id == org_id else None


def _row_for(session: Session, org_id: int, event: ProcessorEvent,
             processor: StripeProcessor) -> CardPayment | None:
    """The card payment an event is about, found by the ids Stripe gave us."""
    object_id = event.object_id
    if object_id.startswith("cs_"):
        row = session.scalar(select(CardPayment).where(CardPayment.org_id == org_id,
                                                       CardPayment.session_id == object_id))
        if row is None:
            row = _row_by_metadata(session, org_id, processor.checkout(object_id).metadata)
            if row is not None and row.session_id is None:
                row.session_id = object_id  # the answer to open_checkout was lost
        return row
    payment_id: str | None = object_id
    if object_id.startswith(("ch_", "py_")):
        payment_id = processor.charge_payment_id(object_id)
    elif not object_id.startswith("pi_"):
        return None
    if payment_id is None:
        return None
    row = session.scalar(select(CardPayment).where(CardPayment.org_id == org_id,
                                                   CardPayment.payment_id == payment_id))
    if row is None:
        row = _row_by_metadata(session, org_id, processor.payment(payment_id).metadata)
    return row


def reconcile(session: Session, row: CardPayment, processor: StripeProcessor,
              now: datetime) -> bool:
    """Bring the row to what Stripe says of its payment now; True when it became paid."""
    if row.payment_id is None and row.session_id:
        checkout = processor.checkout(row.session_id)
        if checkout.payment_id:
            row.payment_id = checkout.payment_id
        elif checkout.status == "expired" and row.status == "open":
            row.status = "expired"
            return False
    if row.payment_id is None:
        return False
    state = processor.payment(row.payment_id)
    if state.metadata.get("dunwell_card_payment") != str(row.id):
        log.warning("card payment %s: Stripe's payment is not ours; left alone", row.id)
        return False
    invoice_id = row.invoice_id
    became_paid = False
    if state.status == "succeeded" and row.status != "paid":
        row.status, row.paid_at, row.failure = "paid", now, None
        row.received = from_minor(state.received_minor, state.currency)
        became_paid = True
        audit(session, row.org_id, "card_payment_received",
              f"Card payment of {row.currency} {row.received} received; it is booked in the"
              " books as a payment", at=now, invoice_id=invoice_id,
              data={"card_payment_id": row.id, "amount": str(row.received),
                    "currency": row.currency})
    elif state.status in ("requires_payment_method", "canceled") and state.failure \
            and row.status in ("open", "failed") and row.failure != state.failure:
        row.status, row.failure = "failed", state.failure
        audit(session, row.org_id, "card_payment_failed",
              f"A card payment of {row.currency} {row.amount} failed: {state.failure}",
              at=now, invoice_id=invoice_id,
              data={"card_payment_id": row.id, "amount": str(row.amount),
                    "currency": row.currency, "failure": state.failure})
    if row.status == "paid" and state.fee_minor is not None:
        row.fee = from_minor(state.fee_minor, state.currency)
    refunded = from_minor(state.refunded_minor, state.currency)
    if refunded > (row.refunded or Decimal(0)):
        row.refunded = refunded
        settings = settings_of(session, row.org_id)
        taken_off = bool(fully_refunded(row) and settings is not None
                         and settings.refunds_in_books)
        then = ("the books' payment is taken off the invoice, which is chased again"
                if taken_off else "the books' payment stays until the refund is recorded there")
        audit(session, row.org_id, "card_payment_refunded",
              f"{row.currency} {refunded} of a card payment refunded through Stripe; {then}",
              at=now, invoice_id=invoice_id,
              data={"card_payment_id": row.id, "amount": str(refunded),
                    "currency": row.currency, "taken_off": taken_off})
    row.updated_at = now
    return became_paid


def apply_events(session: Session, org_id: int, processor: StripeProcessor) -> list[int]:
    """Apply the organisation's stored events, committing after each; the card payments that
    are paid and not yet booked (to book)."""
    while True:
        events = pending_events(session, org_id)
        for event in events:
            crash_point("card_received")  # stored and answered, nothing applied yet
            now = shared_clock.now()  # paid_at and the claims: every worker agrees
            try:
                row = _row_for(session, org_id, event, processor)
                if row is not None:
                    reconcile(session, row, processor, now)
            except NotFound:
                log.info("org %s: Stripe event %s names nothing Stripe knows", org_id,
                         event.event_id)
            event.processed_at = now
            session.commit()
        if len(events) < EVENT_BATCH:
            break
    return to_book(session, org_id)


def fully_refunded(row: CardPayment) -> bool:
    received = row.received or row.amount
    return row.status == "paid" and received > 0 and (row.refunded or Decimal(0)) >= received


def to_unbook(session: Session, org_id: int | None = None) -> list[int]:
    """Card payments refunded in full whose books' payment is still on the invoice, where the
    organisation asked for refunds in the books (all organisations' when `org_id` is None)."""
    query = select(CardPayment).join(
        CardPaymentSettings, CardPaymentSettings.org_id == CardPayment.org_id).where(
        CardPaymentSettings.refunds_in_books.is_(True), CardPayment.refunded.is_not(None),
        CardPayment.books_payment_id.is_not(None), CardPayment.books_removed_at.is_(None))
    if org_id is not None:
        query = query.where(CardPayment.org_id == org_id)
    return [row.id for row in session.scalars(query.order_by(CardPayment.id))
            if fully_refunded(row)]


def to_book(session: Session, org_id: int) -> list[int]:
    return list(session.scalars(select(CardPayment.id).where(
        CardPayment.org_id == org_id, CardPayment.status == "paid",
        CardPayment.books_payment_id.is_(None), CardPayment.booking_error.is_(None))
        .order_by(CardPayment.id)))


# ----------------------------------------------------------------------------- booking


def payment_key(row: CardPayment) -> str:
    """The idempotency key of the booking: the processor's payment id, for ever."""
    return f"{row.org_id}:{row.invoice_id}:card:{row.payment_id}"


def claim(session: Session, row_id: int, owner: str, now: datetime) -> bool:
    """One conditional UPDATE, committed: True for exactly one claimer at a time."""
    done = session.execute(update(CardPayment).where(
        CardPayment.id == row_id, CardPayment.status == "paid",
        CardPayment.books_payment_id.is_(None), CardPayment.booking_error.is_(None),
        or_(CardPayment.claimed_by.is_(None), CardPayment.claimed_until < now))
        .values(claimed_by=owner, claimed_until=now + LEASE)
        .execution_options(synchronize_session=False))
    session.commit()
    return bool(getattr(done, "rowcount", 0))


def _let_go(session: Session, row_id: int, owner: str) -> None:
    """A write failed (or its outcome is unknown): our claim is given up, nothing recorded."""
    session.rollback()
    session.execute(update(CardPayment).where(
        CardPayment.id == row_id, CardPayment.claimed_by == owner)
        .values(claimed_by=None, claimed_until=None)
        .execution_options(synchronize_session=False))
    session.commit()


def unbook(session: Session, row_id: int, connector: Connector, owner: str) -> str:
    """Take a fully refunded card payment's books' payment off its invoice once: removed |
    already. Raises BookingHeld while another worker's claim lasts, and the connector's
    TransientError (the claim is let go)."""
    if row_id not in to_unbook(session):
        return "already"
    now = shared_clock.now()
    claimed = session.execute(update(CardPayment).where(
        CardPayment.id == row_id, CardPayment.books_removed_at.is_(None),
        or_(CardPayment.claimed_by.is_(None), CardPayment.claimed_until < now))
        .values(claimed_by=owner, claimed_until=now + LEASE)
        .execution_options(synchronize_session=False))
    session.commit()
    row = session.get(CardPayment, row_id)
    assert row is not None
    session.refresh(row)
    if not getattr(claimed, "rowcount", 0):
        if row.books_removed_at is not None:
            return "already"
        raise BookingHeld(f"card payment {row_id} is being taken off the books elsewhere")
    assert row.books_payment_id is not None
    try:
        removed = connector.remove_payment(row.books_payment_id, f"{payment_key(row)}:refund")
    except Exception:
        _let_go(session, row_id, owner)
        raise
    row.books_removed_at, row.claimed_by, row.claimed_until = now, None, None
    invoice = session.get(Invoice, row.invoice_id) if row.invoice_id else None
    audit(session, row.org_id, "card_payment_unbooked",
          f"The card payment of {row.currency} {row.received} was refunded in full: its "
          "payment is taken off the invoice in the books"
          + ("" if removed else " (it was already gone)") + "; the invoice is chased again",
          at=now, invoice_id=row.invoice_id,
          data={"card_payment_id": row.id, "books_payment_id": row.books_payment_id})
    session.commit()
    if invoice is not None:  # owed again: the pages show it, and its next action is planned
        try:
            upsert_invoices(session, row.org_id, [connector.invoice(invoice.provider_id)])
            org = session.get(Organisation, row.org_id)
            assert org is not None
            refresh_next_action(session, org, now, [invoice.id])
            session.commit()
        except (NotFound, ProviderRejected):
            session.rollback()
    return "removed"


def _book_fee(row: CardPayment, connector: Connector, settings: CardPaymentSettings | None,
              key: str, paid_on: date, account_code: str | None
              ) -> tuple[str, str | None, dict[str, str]]:
    """The processor's fee as a bank fee, when the organisation wants it: written after the
    payment and before the row is saved, so a retry finds both by their markers. A fee the
    books refuse leaves the payment booked and says so. Returns the activity log's words, the
    books' id of the fee and its parameters for the log."""
    if settings is None or not settings.book_fees or not row.fee or row.fee <= 0:
        return "", None, {}
    marker = effect_marker(f"{key}:fee")
    try:
        fee_id = connector.record_bank_fee(BankFee(
            currency=row.currency, paid_on=paid_on, amount=row.fee,
            description=f"Stripe fee for {row.payment_id} ({marker})", marker=marker,
            payee="Stripe", bank_account_code=account_code), f"{key}:fee")
    except ProviderRejected as refused:
        return (f"; its fee of {row.currency} {row.fee} was not booked: {refused}", None,
                {"fee": str(row.fee), "fee_refused": str(refused)[:255]})
    return (f", with Stripe's fee of {row.currency} {row.fee} as a bank fee", fee_id,
            {"fee": str(row.fee)})


def book(session: Session, row_id: int, connector: Connector, owner: str,
         paid_on: date) -> str:
    """Book a paid card payment in the books once: booked | already | rejected. Raises
    BookingHeld while another worker's claim lasts, and the connector's TransientError."""
    row = session.get(CardPayment, row_id)
    if row is None or row.status != "paid":
        return "already"
    if row.books_payment_id is not None:
        return "already"
    now = shared_clock.now()
    if not claim(session, row_id, owner, now):
        session.refresh(row)
        if row.books_payment_id is not None or row.booking_error is not None:
            return "already"
        raise BookingHeld(f"card payment {row_id} is being booked by another worker")
    session.refresh(row)
    crash_point("card_claimed")  # the claim committed, nothing written to the books
    invoice = session.get(Invoice, row.invoice_id) if row.invoice_id else None
    settings = settings_of(session, row.org_id)
    key = payment_key(row)
    marker = effect_marker(key)
    try:
        if invoice is None:
            raise ProviderRejected("the invoice is no longer in the books")
        # Towards the invoice: what was received, less the surcharge asked on top (the books'
        # payment settles the invoice; the surcharge stays in the processor's payout).
        received = (row.received or row.amount + (row.surcharge or 0)) - (row.surcharge or 0)
        account_code = settings.account_code if settings else None
        books_id = connector.record_payment(ReceivedPayment(
            invoice_provider_id=invoice.provider_id, currency=row.currency,
            paid_on=paid_on, amount=received,
            reference=f"Card payment {row.payment_id} ({marker})", marker=marker,
            account_code=account_code), key)
        crash_point("card_answered")  # the books hold the payment, the row does not know it
    except ProviderRejected as refused:
        row.booking_error, row.claimed_by, row.claimed_until = str(refused)[:255], None, None
        audit(session, row.org_id, "card_payment_not_booked",
              f"A card payment of {row.currency} {row.received} could not be booked in the "
              f"books: {refused}. Book it there by hand (or refund it).", at=now,
              invoice_id=row.invoice_id,
              data={"card_payment_id": row.id, "amount": str(row.received),
                    "currency": row.currency, "refused": str(refused)})
        session.commit()
        return "rejected"
    except Exception:
        _let_go(session, row_id, owner)
        raise
    fee_note, fee_id, fee_data = _book_fee(row, connector, settings, key, paid_on, account_code)
    row.books_payment_id, row.booked_at = books_id, now
    row.claimed_by, row.claimed_until = None, None
    audit(session, row.org_id, "card_payment_booked",
          f"Card payment of {row.currency} {row.received} booked in the books on "
          f"{invoice.number}{fee_note}", at=now, invoice_id=invoice.id,
          data={"card_payment_id": row.id, "books_payment_id": books_id,
                "books_fee_id": fee_id, "amount": str(row.received),
                "currency": row.currency, "number": invoice.number, **fee_data})
    session.commit()
    try:  # the invoice as the books now have it, so every page shows it paid at once
        upsert_invoices(session, row.org_id, [connector.invoice(invoice.provider_id)])
        session.commit()
    except (NotFound, ProviderRejected):
        session.rollback()
    return "booked"
