"""Card payments in the portal: the settings page (/orgs/<id>/card-payments: the organisation's
own Stripe account, its keys encrypted and never shown again) and POST /webhooks/stripe/<id>,
Stripe's events for that organisation, verified with its webhook secret (Stripe-Signature and
its timestamp tolerance) and stored before anything acts on them (collect/payments.py); a
request that does not verify changes nothing and answers 400."""

from __future__ import annotations

import logging
import re
from decimal import Decimal, InvalidOperation

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select
from werkzeug.wrappers import Response

from app.organisations.services import may_in, organisation_for
from collect import payments
from connectors.base import ConnectorError
from connectors.stripe import SignatureRefused, verify_event
from jobs.payments import enqueue_card_events
from rules.card_payments import MAX_SURCHARGE_PERCENT
from store import clock
from store.db import db
from store.models import CardPayment, Organisation

log = logging.getLogger(__name__)

webhook = Blueprint("stripe_webhooks", __name__)
pages = Blueprint("card_payments", __name__)

SECRET_KEY = re.compile(r"(sk|rk)_(test|live)_[0-9A-Za-z_]{8,247}")
WEBHOOK_SECRET = re.compile(r"whsec_[0-9A-Za-z_]{8,247}")
ACCOUNT_CODE = re.compile(r"[0-9A-Za-z._-]{1,64}")
PERCENT = re.compile(r"[0-9]{1,2}([.,][0-9]{1,2})?")


@webhook.post("/webhooks/stripe/<int:org_id>")
def receive(org_id: int) -> tuple[Response | str, int]:
    session = db.session()
    settings = payments.settings_of(session, org_id)
    secret = payments.webhook_secret(settings) if settings is not None else None
    if secret is None:
        return "", 404
    try:
        notice = verify_event(request.get_data(), request.headers.get("Stripe-Signature"),
                              secret)
    except SignatureRefused as refused:
        log.info("org %s: a Stripe webhook was refused: %s", org_id, refused)
        return jsonify(error="signature"), 400
    waiting = payments.record_event(session, org_id, notice, clock.now())
    session.commit()
    if waiting:
        enqueue_card_events(org_id)
    return jsonify(received=True), 200


def _page(org: Organisation, status: int = 200,
          errors: dict[str, str] | None = None) -> tuple[str, int]:
    session = db.session()
    recent = list(session.scalars(
        select(CardPayment).where(CardPayment.org_id == org.id)
        .order_by(CardPayment.id.desc()).limit(50)))
    return render_template(
        "payments/settings.html", org=org, settings=payments.settings_of(session, org.id),
        errors=errors or {}, recent=recent, can_edit=may_in(org, "card_payments.save"),
        webhook_url=url_for("stripe_webhooks.receive", org_id=org.id, _external=True)), status


@pages.get("/orgs/<int:org_id>/card-payments")
@login_required
def show(org_id: int) -> tuple[str, int]:
    return _page(organisation_for(current_user, org_id))


def _choice(row: object | None) -> payments.CardChoice:
    form = request.form
    secret_key = (form.get("secret_key") or "").strip() or None
    if secret_key is not None and not SECRET_KEY.fullmatch(secret_key):
        raise ValueError("secret_key", _("Paste the secret key as Stripe's dashboard shows it "
                                         "(it starts with sk_)."))
    webhook_secret = (form.get("webhook_secret") or "").strip() or None
    if webhook_secret is not None and not WEBHOOK_SECRET.fullmatch(webhook_secret):
        raise ValueError("webhook_secret", _("Paste the signing secret of the webhook "
                                             "endpoint (it starts with whsec_)."))
    account_code = (form.get("account_code") or "").strip() or None
    if account_code is not None and not ACCOUNT_CODE.fullmatch(account_code):
        raise ValueError("account_code", _("An account code of letters and digits, such as "
                                           "090."))
    surcharge = _surcharge_percent((form.get("surcharge_percent") or "").strip())
    enabled = form.get("enabled") == "on"
    if enabled and not (secret_key or getattr(row, "secret_key_enc", None)):
        raise ValueError("secret_key", _("Give the secret key before turning card payments "
                                         "on."))
    return payments.CardChoice(enabled=enabled, secret_key=secret_key,
                               webhook_secret=webhook_secret, account_code=account_code,
                               book_fees=form.get("book_fees") == "on",
                               surcharge_percent=surcharge,
                               refunds_in_books=form.get("refunds_in_books") == "on")


def _surcharge_percent(text: str) -> Decimal | None:
    """Empty or zero: no surcharge; else a percentage up to MAX_SURCHARGE_PERCENT."""
    if not text:
        return None
    try:
        if not PERCENT.fullmatch(text):
            raise InvalidOperation(text)
        value = Decimal(text.replace(",", "."))
    except InvalidOperation:
        value = Decimal(-1)
    if not 0 <= value <= MAX_SURCHARGE_PERCENT:
        raise ValueError("surcharge_percent", _("A percentage from 0 to %(most)s, such as 2.5.",
                                                most=MAX_SURCHARGE_PERCENT))
    return value or None


@pages.post("/orgs/<int:org_id>/card-payments")
@login_required
def save(org_id: int) -> tuple[str, int] | Response:
    org = organisation_for(current_user, org_id)
    try:
        choice = _choice(payments.settings_of(db.session(), org.id))
    except ValueError as refused:
        field, message = refused.args
        db.session.rollback()
        flash(_("The card payment settings were not saved."), "error")
        return _page(org, 400, {str(field): str(message)})
    try:
        payments.save_settings(db.session(), org, choice, clock.now(), url_for(
            "stripe_webhooks.receive", org_id=org.id, _external=True))
    except ConnectorError as failure:
        db.session.rollback()
        log.info("org %s: Stripe refused the card payment settings: %s", org.id, failure)
        flash(_("The card payment settings were not saved."), "error")
        return _page(org, 400, {"secret_key": _("Stripe did not accept this key: check it "
                                                "in Stripe's dashboard.")})
    db.session.commit()
    flash(_("The card payment settings are saved."), "success")
    return redirect(url_for("card_payments.show", org_id=org.id))
