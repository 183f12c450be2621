"""The customer's portal: public pages reached by a signed link (collect/portal.py), in the
customer's language, where they see what they owe and promise, dispute, ask for a plan or pay.

No account: the link is the key. Every way a link can be wrong (bad signature, expired,
rotated, unknown customer) is the same 404. Every POST carries the CSRF token (the app's
CSRFProtect) and is counted per link and per address (`PORTAL_POSTS_ALLOWED` in a window, then
429); bad input is answered on the page, with status 400, and saves nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask_babel import force_locale
from redis.exceptions import RedisError
from sqlalchemy import select
from werkzeug.wrappers import Response

from app.languages import LANGUAGES, current_language
from app.portal.words import owner_email, refusal
from app.security import count_in_window
from collect import logos, payments, portal
from collect.book import calendar_for
from collect.customers import statement_for
from collect.plan import refresh_next_action
from collect.providers import connector_for
from connectors.base import ConnectorError
from rules.messages import language_of
from store import clock
from store.db import db
from store.models import Connection, Contact, Invoice, Organisation, PlanRequest

log = logging.getLogger(__name__)

blueprint = Blueprint("portal", __name__)

DONE = ("promise", "dispute", "plan", "card")  # what the page thanks the customer for
OWNER_TOLD = ("dispute", "plan")  # these wait for the owner: told by email too
PORTAL_POSTS_ALLOWED = 20  # per link and per address, in the window
PORTAL_POST_WINDOW_SECONDS = 600


BODY_LIMIT = portal.MAX_ATTACHMENT_BYTES + 64 * 1024  # the file and the form around it


def _limit_body() -> None:
    """A portal POST larger than an attachment may be is refused (413) before anything reads
    it: first of all the app's before-request functions, ahead of the CSRF check's parse."""
    if request.blueprint == "portal" and request.method == "POST":
        request.max_content_length = BODY_LIMIT


blueprint.record_once(
    lambda state: state.app.before_request_funcs.setdefault(None, []).insert(0, _limit_body))


@blueprint.errorhandler(404)
def unknown_link(error: Any) -> tuple[str, int]:
    """One answer for every link that does not let anyone in, whatever the reason."""
    return render_template("portal/gone.html", language=current_language()), 404


@blueprint.errorhandler(413)
def too_large(error: Any) -> tuple[str, int]:
    token = str((request.view_args or {}).get("token", ""))
    return _page(token, _contact(token), status=413, error="attachment_large",
                 invoice_id=(request.view_args or {}).get("invoice_id"))


def _contact(token: str) -> Contact:
    contact = portal.contact_for_token(db.session(), token, current_app.config["SECRET_KEY"],
                                       current_app.config.get("PORTAL_LINK_DAYS",
                                                              portal.LINK_DAYS))
    if contact is None:
        abort(404)
    return contact


def _language(contact: Contact) -> str:
    chosen = request.args.get("lang")  # forms post to a URL carrying it too
    if chosen in LANGUAGES:
        return str(chosen)
    return language_of(contact.language)


@contextmanager
def _in_language(contact: Contact) -> Iterator[str]:
    language = _language(contact)
    with force_locale(language):
        yield language


def _page(token: str, contact: Contact, *, status: int = 200, error: str | None = None,
          done: str | None = None, invoice_id: int | None = None) -> tuple[str, int]:
    session = db.session()
    org = portal.organisation_of(session, contact)
    now = clock.now()
    today = calendar_for(org).today(now)
    items = portal.open_invoices(session, contact)
    statement = statement_for(session, org, contact, now)
    limits = portal.settings_for(session, org.id)
    card_settings = payments.settings_of(session, org.id)
    card_ready = payments.ready(card_settings)
    card_payments = payments.latest_by_invoice(session, [item.invoice.id for item in items])
    # Shown before the customer presses Pay by card: what the card adds, where it adds any.
    surcharges = {item.invoice.id: payments.surcharge_for(session, contact, item.invoice,
                                                          card_settings)
                  for item in items} if card_ready else {}
    with _in_language(contact) as language:
        body = render_template(
            "portal/show.html", token=token, org=org, contact=contact, items=items,
            statement=statement, today=today, limits=limits, language=language,
            error=refusal(error) if error else None, done=done, error_invoice=invoice_id,
            every_days=portal.PLAN_EVERY_DAYS, max_mb=portal.MAX_ATTACHMENT_BYTES // 2**20,
            has_books=_connection(org) is not None, card_ready=card_ready,
            card_payments=card_payments, surcharges=surcharges,
            logo=logos.logo_of(session, org.id))
    return body, status


def _connection(org: Organisation) -> Connection | None:
    return db.session.scalar(select(Connection).where(Connection.org_id == org.id,
                                                      Connection.status == "active"))


@blueprint.get("/portal/<token>")
def show(token: str) -> tuple[str, int]:
    done = request.args.get("done")
    return _page(token, _contact(token), done=done if done in DONE else None)


@blueprint.get("/portal/<token>/logo")
def logo(token: str) -> Response:
    """The business's logo, from our own store (collect/logos.py): only the PNG or JPEG it was
    checked to be, never sniffed into anything else, and nothing a browser could run."""
    contact = _contact(token)
    found = logos.logo_of(db.session(), contact.org_id)
    if found is None or found.content is None or found.content_type is None:
        abort(404)
    extension = "png" if found.content_type == "image/png" else "jpg"
    return Response(found.content, mimetype=found.content_type, headers={
        "Content-Disposition": f'inline; filename="logo.{extension}"',
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, max-age=86400", "ETag": f'"{found.digest}"'})


def _posted_too_often(token: str) -> bool:
    if not current_app.config.get("PORTAL_RATE_LIMIT", True):
        return False
    keys = [f"portal-posts:ip:{request.remote_addr or 'unknown'}",
            f"portal-posts:link:{token[-32:]}"]
    try:
        counts = count_in_window(keys, PORTAL_POST_WINDOW_SECONDS)
    except RedisError:
        log.warning("portal post limit not checked: Redis unavailable")
        return False
    return any(count > PORTAL_POSTS_ALLOWED for count in counts)


def _too_many(token: str, contact: Contact, invoice_id: int) -> Response:
    body, _ = _page(token, contact, error="too_many", invoice_id=invoice_id)
    return Response(body, status=429, mimetype="text/html",
                    headers={"Retry-After": str(PORTAL_POST_WINDOW_SECONDS)})


def _posted(token: str, invoice_id: int, act: Any, done: str) -> Any:
    """The common frame of every portal POST: the link, the limit, the invoice, the answer."""
    contact = _contact(token)
    if _posted_too_often(token):
        return _too_many(token, contact, invoice_id)
    session = db.session()
    org = portal.organisation_of(session, contact)
    now = clock.now()
    try:
        invoice = portal.customer_invoice(session, contact, invoice_id)
        act(session, contact, invoice, calendar_for(org).today(now), now)
    except portal.PortalRefused as refused:
        session.rollback()
        return _page(token, contact, status=400, error=refused.code, invoice_id=invoice_id)
    refresh_next_action(session, org, now, [invoice_id])
    session.commit()
    if done in OWNER_TOLD:
        _tell_owners(session, org, contact, invoice, done)
    return redirect(url_for("portal.show", token=token, done=done,
                            lang=request.args.get("lang") or None) + f"#invoice-{invoice_id}",
                    code=303)


def _tell_owners(session: Any, org: Organisation, contact: Contact, invoice: Invoice,
                 what: str) -> None:
    """The owners' email about the dispute or plan request just saved, each in their own
    language (app/portal/words.py)."""
    facts: dict[str, Any] = {"business": org.name, "contact": contact.name,
                             "number": invoice.number or invoice.provider_id,
                             "link": portal.invoice_page_url(invoice)}
    if what == "dispute":
        facts["reason"] = (request.form.get("reason") or "").strip()
    else:
        row = session.scalar(select(PlanRequest).where(PlanRequest.invoice_id == invoice.id)
                             .order_by(PlanRequest.id.desc()).limit(1))
        assert row is not None  # saved by the request this answers
        facts.update(instalments=row.instalments, every_days=row.every_days,
                     first_on=row.first_on)
    portal.tell_owners(session, invoice, what,
                       lambda language: owner_email(what, language, **facts))


@blueprint.post("/portal/<token>/invoices/<int:invoice_id>/promise")
def promise(token: str, invoice_id: int) -> Any:
    def act(session, contact, invoice: Invoice, today, now) -> None:  # type: ignore[no-untyped-def]
        portal.promise(session, contact, invoice, portal.parse_day(request.form.get("pay_by")),
                       portal.parse_amount(request.form.get("amount"), invoice), today, now)
    return _posted(token, invoice_id, act, "promise")


@blueprint.post("/portal/<token>/invoices/<int:invoice_id>/dispute")
def dispute(token: str, invoice_id: int) -> Any:
    def act(session, contact, invoice: Invoice, today, now) -> None:  # type: ignore[no-untyped-def]
        upload = request.files.get("attachment")
        attachment = None
        if upload is not None and upload.filename:
            content = upload.stream.read(portal.MAX_ATTACHMENT_BYTES + 1)
            attachment = (upload.filename, content)
        portal.dispute(session, contact, invoice, request.form.get("reason", ""), attachment,
                       now)
    return _posted(token, invoice_id, act, "dispute")


@blueprint.post("/portal/<token>/invoices/<int:invoice_id>/plan")
def plan(token: str, invoice_id: int) -> Any:
    def act(session, contact, invoice: Invoice, today, now) -> None:  # type: ignore[no-untyped-def]
        try:
            instalments = int(request.form.get("instalments", ""))
            every = int(request.form.get("every_days", ""))
        except ValueError as exc:
            raise portal.PortalRefused("bad_number") from exc
        portal.request_plan(session, contact, invoice, instalments,
                            portal.parse_day(request.form.get("first_on")), every, today, now)
    return _posted(token, invoice_id, act, "plan")


def _from_the_books(token: str, invoice_id: int, ask: str) -> tuple[Invoice, Any]:
    """One of the link's invoices, and what the provider answers about it (`ask`: the
    connector's method); 404 for any other invoice, or when the books cannot answer."""
    contact = _contact(token)
    try:
        invoice = portal.customer_invoice(db.session(), contact, invoice_id)
    except portal.PortalRefused:
        abort(404)
    connection = _connection(portal.organisation_of(db.session(), contact))
    if connection is None:
        abort(404)
    try:
        answer = getattr(connector_for(connection), ask)(invoice.provider_id)
    except ConnectorError:
        abort(404)
    return invoice, answer


@blueprint.get("/portal/<token>/invoices/<int:invoice_id>/pay")
def pay(token: str, invoice_id: int) -> Response:
    """Pay now: the provider's own online invoice, where the books have one."""
    _invoice, url = _from_the_books(token, invoice_id, "online_invoice_url")
    if not url or not str(url).startswith("https://"):
        abort(404)
    return redirect(str(url), code=303)


@blueprint.get("/portal/<token>/invoices/<int:invoice_id>/pdf")
def pdf(token: str, invoice_id: int) -> Response:
    """The invoice as the books print it, fetched from the provider, as a download."""
    invoice, content = _from_the_books(token, invoice_id, "invoice_pdf")
    if not isinstance(content, bytes) or not content.startswith(b"%PDF-"):
        abort(404)
    name = "".join(c for c in (invoice.number or str(invoice.id)) if c.isalnum() or c in "-_")
    return Response(content, mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{name or "invoice"}.pdf"',
        "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})


@blueprint.post("/portal/<token>/invoices/<int:invoice_id>/card")
def card(token: str, invoice_id: int) -> Any:
    """Pay by card: a card payment is recorded, then Stripe's Checkout page opened for it
    (collect/payments.py); back on the portal, the page says the payment is being confirmed."""
    contact = _contact(token)
    if _posted_too_often(token):
        return _too_many(token, contact, invoice_id)
    session = db.session()
    now = clock.now()
    language = _language(contact)
    lang = request.args.get("lang") or None
    try:
        invoice = portal.customer_invoice(session, contact, invoice_id)
        row = payments.new_card_payment(session, contact, invoice, now)
        session.commit()
        anchor = f"#invoice-{invoice_id}"
        url = payments.open_checkout(
            session, row, contact, invoice,
            success_url=url_for("portal.show", token=token, done="card", lang=lang,
                                _external=True) + anchor,
            cancel_url=url_for("portal.show", token=token, lang=lang, _external=True) + anchor,
            locale=language, now=now)
        session.commit()
    except (portal.PortalRefused, payments.CardPaymentRefused) as refused:
        session.rollback()
        return _page(token, contact, status=400, error=refused.code, invoice_id=invoice_id)
    except ConnectorError as failure:
        session.rollback()
        log.warning("portal: Stripe did not open a checkout for invoice %s: %s", invoice_id,
                    failure)
        return _page(token, contact, status=502, error="card_unavailable",
                     invoice_id=invoice_id)
    return redirect(url, code=303)
