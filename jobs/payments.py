"""RQ entry points of the portal's card payments: apply the stored Stripe events of an
organisation, then book each paid payment in the books (collect/payments.py)."""

from __future__ import annotations

import logging
import os
import secrets
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from rq import get_current_job
from sqlalchemy import or_, select

from collect import payments, shared_clock
from collect.providers import connector_for
from jobs.queues import enqueue_once, retry_after
from store import clock
from store.db import db
from store.models import CardPayment, Connection, Organisation, ProcessorEvent

log = logging.getLogger(__name__)

# A held claim is waited out (the lease is two minutes); a provider that is down, longer.
CARD_RETRY = retry_after(6, [30, 120, 300, 900, 1800, 3600])
# A stored event or a paid row left this long lost its job (five minutes; the chaos benchmark
# shortens it).
STUCK_AFTER = timedelta(seconds=float(os.environ.get("DUNWELL_CARD_STUCK_SECONDS", "300")))


def _owner() -> str:
    job = get_current_job()
    token = secrets.token_hex(4)
    return f"{job.worker_name or 'worker'}/{job.id}/{token}" if job else \
        f"pid-{os.getpid()}/{token}"


def enqueue_card_events(org_id: int, replace_started: bool = False) -> None:
    enqueue_once(apply_card_events, org_id, job_id=f"card-events-{org_id}", retry=CARD_RETRY,
                 at_front=True, replace_started=replace_started)


def enqueue_booking(card_payment_id: int, replace_started: bool = False) -> None:
    enqueue_once(book_card_payment, card_payment_id, job_id=f"card-payment-{card_payment_id}",
                 retry=CARD_RETRY, replace_started=replace_started)


def enqueue_unbooking(card_payment_id: int, replace_started: bool = False) -> None:
    enqueue_once(unbook_card_payment, card_payment_id,
                 job_id=f"card-refund-{card_payment_id}", retry=CARD_RETRY,
                 replace_started=replace_started)


def apply_card_events(org_id: int) -> dict[str, Any]:
    session = db.session()
    settings = payments.settings_of(session, org_id)
    if settings is None or not settings.secret_key_enc:
        return {"applied": 0}
    to_book = payments.apply_events(session, org_id, payments.processor_for(settings))
    for card_payment_id in to_book:
        enqueue_booking(card_payment_id)
    to_unbook = payments.to_unbook(session, org_id)
    session.commit()
    for card_payment_id in to_unbook:
        enqueue_unbooking(card_payment_id)
    return {"to_book": to_book, "to_unbook": to_unbook}


def _row_and_books(card_payment_id: int) -> tuple[CardPayment, Organisation, Connection] | None:
    """The card payment, its organisation and its books' connection (None: the row is gone);
    raises BookingHeld while the books are not connected (the job is retried)."""
    session = db.session()
    row = session.get(CardPayment, card_payment_id)
    if row is None:
        return None
    org = session.get(Organisation, row.org_id)
    assert org is not None
    connection = session.query(Connection).filter(
        Connection.org_id == org.id, Connection.status == "active").first()
    if connection is None:
        log.info("org %s: card payment %s waits for the books to be connected", org.id,
                 card_payment_id)
        raise payments.BookingHeld("the organisation's books are not connected")
    return row, org, connection


def book_card_payment(card_payment_id: int) -> str:
    found = _row_and_books(card_payment_id)
    if found is None:
        return "gone"
    row, org, connection = found
    paid_on = (row.paid_at or clock.now()).astimezone(ZoneInfo(org.timezone)).date()
    return payments.book(db.session(), card_payment_id, connector_for(connection), _owner(),
                         paid_on)


def unbook_card_payment(card_payment_id: int) -> str:
    """A card payment refunded in full: its books' payment taken off the invoice, once."""
    found = _row_and_books(card_payment_id)
    if found is None:
        return "gone"
    return payments.unbook(db.session(), card_payment_id, connector_for(found[2]), _owner())


def sweep_card_payments() -> int:
    """Give a job again to what lost its own (Redis flushed, a worker killed before or while it
    ran): stored events not applied, and paid payments not booked whose claim, if any, ran out.
    A job RQ still calls started is replaced: a worker killed with it leaves it so until RQ's
    job timeout (each event is committed as it is applied, so one left this long is not being
    worked on; the row's claim keeps a booking from running twice)."""
    session = db.session()
    now = shared_clock.now()  # as the claims and paid_at are
    orgs = session.scalars(select(ProcessorEvent.org_id).where(
        ProcessorEvent.processed_at.is_(None), ProcessorEvent.received_at < now - STUCK_AFTER)
        .distinct()).all()
    rows = session.scalars(select(CardPayment.id).where(
        CardPayment.status == "paid", CardPayment.books_payment_id.is_(None),
        CardPayment.booking_error.is_(None), CardPayment.paid_at < now - STUCK_AFTER,
        or_(CardPayment.claimed_by.is_(None), CardPayment.claimed_until < now))).all()
    refunded = payments.to_unbook(session)
    session.commit()
    for org_id in orgs:
        enqueue_card_events(org_id, replace_started=True)
    for card_payment_id in refunded:  # idempotent: a job waiting or running is kept
        enqueue_unbooking(card_payment_id)
    for card_payment_id in rows:
        enqueue_booking(card_payment_id, replace_started=True)
    if orgs or rows:
        log.warning("sweeper: card payments of %d organisation(s) and %d payment(s) given a "
                    "job again", len(orgs), len(rows))
    return len(orgs) + len(rows)
