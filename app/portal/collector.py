"""The collector's side of the portal: what customers said, on the invoice and customer pages,
and the owner's answers (resolve a dispute, approve or decline a plan, replace a link); and the
business's logo the portal shows, uploaded on the settings page where the books keep none."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy import select
from werkzeug.wrappers import Response

from app.organisations.services import may_in, organisation_for
from collect import logos, portal
from collect.payment_plans import PlanRefused, agree_payment_plan
from collect.plan import refresh_next_action
from store import clock
from store.db import db
from store.models import (
    BusinessLogo,
    CardPayment,
    Contact,
    Invoice,
    InvoiceDispute,
    Organisation,
    PaymentPromise,
    PlanRequest,
)

blueprint = Blueprint("portal_admin", __name__)

LOGO_BODY_LIMIT = logos.MAX_LOGO_BYTES + 64 * 1024  # the file and the form around it
LOGO_REFUSALS = {
    "logo_missing": _l("Please choose a PNG or JPEG file."),
    "logo_large": _l("The logo is larger than %(mb)s MB. Please upload a smaller file.",
                     mb=logos.MAX_LOGO_BYTES // 2**20),
    "logo_type": _l("That file is not a PNG or JPEG image. Please upload a PNG or JPEG file."),
    "logo_dimensions": _l("The image is too large: at most %(px)s pixels on each side.",
                          px=logos.MAX_LOGO_SIDE),
}


def _limit_logo_body() -> None:
    """A logo upload larger than a logo may be is refused (413) before anything reads it,
    ahead of the CSRF check's parse."""
    if request.endpoint == "portal_admin.save_logo" and request.method == "POST":
        request.max_content_length = LOGO_BODY_LIMIT


blueprint.record_once(
    lambda state: state.app.before_request_funcs.setdefault(None, []).insert(
        0, _limit_logo_body))


@blueprint.app_template_global()
def business_logo(org_id: int) -> BusinessLogo | None:
    """For the settings page: the logo the portal shows, if any."""
    return logos.logo_of(db.session(), org_id)


@blueprint.app_template_global()
def may_change_logo(org: Organisation) -> bool:
    return may_in(org, "portal_admin.save_logo")


@blueprint.app_template_global()
def logo_limit_mb() -> int:
    return logos.MAX_LOGO_BYTES // 2**20


def portal_activity(org_id: int, contact_id: int | None = None,
                    invoice_id: int | None = None) -> dict[str, Any]:
    """For the pages' panel: the customer's promises, disputes, plan requests and card payments
    (newest first), and their portal link on the customer's page. The caller's page checked
    access."""
    session = db.session()

    def rows(model: Any) -> list[Any]:
        query = select(model).where(model.org_id == org_id)
        if contact_id is not None:
            query = query.where(model.contact_id == contact_id)
        if invoice_id is not None:
            query = query.where(model.invoice_id == invoice_id)
        return list(session.scalars(query.order_by(model.id.desc()).limit(50)))

    link = None
    if contact_id is not None:
        contact = session.get(Contact, contact_id)
        if contact is not None and contact.org_id == org_id:
            link = portal.portal_url(session, contact)
            session.commit()  # the key, made on first sight
    numbers = dict(session.execute(select(Invoice.id, Invoice.number).where(
        Invoice.org_id == org_id)).all()) if contact_id is not None else {}
    card_payments = [row for row in rows(CardPayment) if row.status in ("paid", "failed")]
    return {"promises": rows(PaymentPromise), "disputes": rows(InvoiceDispute),
            "plan_requests": rows(PlanRequest), "card_payments": card_payments,
            "link": link, "numbers": numbers,
            "limits": portal.settings_for(session, org_id)}


def _back(org_id: int, invoice_id: int) -> Response:
    target = request.form.get("back") or ""
    if target.startswith(f"/orgs/{org_id}/") and "//" not in target:
        return redirect(target, code=303)
    return redirect(url_for("dashboard.invoice", org_id=org_id, invoice_id=invoice_id),
                    code=303)


def _invoice(org: Organisation, invoice_id: int) -> Invoice:
    invoice = db.session.get(Invoice, invoice_id)
    if invoice is None or invoice.org_id != org.id:
        abort(404)
    return invoice


@blueprint.post("/orgs/<int:org_id>/invoices/<int:invoice_id>/disputes/resolve")
@login_required
def resolve(org_id: int, invoice_id: int) -> Response:
    """Every open dispute of the invoice resolved: it is chased again."""
    org = organisation_for(current_user, org_id)
    invoice = _invoice(org, invoice_id)
    now = clock.now()
    rows = db.session.scalars(select(InvoiceDispute).where(
        InvoiceDispute.org_id == org.id, InvoiceDispute.invoice_id == invoice.id,
        InvoiceDispute.status == "open")).all()
    for row in rows:
        portal.resolve_dispute(db.session(), row, current_user.id,
                               request.form.get("resolution", ""), now)
    if rows:
        refresh_next_action(db.session(), org, now, [invoice.id])
        db.session.commit()
        flash(_("Dispute resolved: the invoice is chased again."))
    return _back(org.id, invoice.id)


@blueprint.get("/orgs/<int:org_id>/invoices/<int:invoice_id>/disputes/attachment")
@login_required
def attachment(org_id: int, invoice_id: int) -> Response:
    """A customer's file (`?dispute=<id>`), only ever as a download of an opaque type: never
    a page of ours, whatever the file holds."""
    org = organisation_for(current_user, org_id)
    invoice = _invoice(org, invoice_id)
    row = db.session.get(InvoiceDispute, request.args.get("dispute", 0, type=int))
    if row is None or row.org_id != org.id or row.invoice_id != invoice.id \
            or row.attachment is None:
        abort(404)
    name = re.sub(r"[^A-Za-z0-9._-]", "-", row.attachment_name or "attachment")
    return Response(row.attachment, mimetype="application/octet-stream", headers={
        "Content-Disposition": f'attachment; filename="{name}"',
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox", "Cache-Control": "no-store"})


def _decide(org_id: int, invoice_id: int, approve: bool) -> Response:
    """The invoice's pending plan request approved (a plan, as the owner would agree one) or
    declined."""
    org = organisation_for(current_user, org_id)
    invoice = _invoice(org, invoice_id)
    row = db.session.scalar(select(PlanRequest).where(
        PlanRequest.org_id == org.id, PlanRequest.invoice_id == invoice.id,
        PlanRequest.status == "pending"))
    if row is None:
        return _back(org.id, invoice.id)
    now = clock.now()
    plan_id = None
    if approve:
        try:
            plan = agree_payment_plan(db.session(), org, invoice,
                                      portal.requested_instalments(row, invoice), now)
        except PlanRefused as exc:
            db.session.rollback()
            flash(str(exc), "error")
            return _back(org.id, invoice.id)
        plan_id = plan.id
    portal.decide_plan(db.session(), row, approve, current_user.id, plan_id, now)
    db.session.commit()
    flash(_("Plan approved: its instalments are chased from now on.") if approve
          else _("Plan request declined."))
    return _back(org.id, invoice.id)


@blueprint.post("/orgs/<int:org_id>/invoices/<int:invoice_id>/plan-request/approve")
@login_required
def approve_plan(org_id: int, invoice_id: int) -> Response:
    return _decide(org_id, invoice_id, approve=True)


@blueprint.post("/orgs/<int:org_id>/invoices/<int:invoice_id>/plan-request/decline")
@login_required
def decline_plan(org_id: int, invoice_id: int) -> Response:
    return _decide(org_id, invoice_id, approve=False)


@blueprint.post("/orgs/<int:org_id>/portal-settings")
@login_required
def limits(org_id: int) -> Response:
    """What a customer may ask for in the portal: at most so many instalments, ending within
    so many days."""
    org = organisation_for(current_user, org_id)
    back = request.form.get("back") or ""
    target = back if back.startswith(f"/orgs/{org.id}/") and "//" not in back else \
        url_for("customers.index", org_id=org.id)
    try:
        instalments = int(request.form.get("plan_max_instalments", ""))
        days = int(request.form.get("plan_max_days", ""))
    except ValueError:
        instalments = days = 0
    if not (2 <= instalments <= portal.MAX_PLAN_INSTALMENTS
            and 7 <= days <= portal.MAX_PLAN_DAYS):
        flash(_("A plan has 2 to %(n)s instalments and ends within 7 to %(days)s days.",
                n=portal.MAX_PLAN_INSTALMENTS, days=portal.MAX_PLAN_DAYS), "error")
        return redirect(target, code=303)
    portal.set_limits(db.session(), org.id, instalments, days, clock.now())
    db.session.commit()
    flash(_("Saved: customers may ask for up to %(n)s instalments within %(days)s days.",
            n=instalments, days=days))
    return redirect(target, code=303)


@blueprint.post("/orgs/<int:org_id>/customers/<int:contact_id>/portal-link")
@login_required
def rotate(org_id: int, contact_id: int) -> Response:
    org = organisation_for(current_user, org_id)
    contact = db.session.get(Contact, contact_id)
    if contact is None or contact.org_id != org.id:
        abort(404)
    portal.rotate(db.session(), contact, clock.now())
    db.session.commit()
    flash(_("A new portal link was made; the old one no longer works."))
    return redirect(url_for("customers.show", org_id=org.id, contact_id=contact.id), code=303)


def _settings_page(org_id: int) -> Response:
    return redirect(url_for("settings.policy", org_id=org_id) + "#logo", code=303)


@blueprint.errorhandler(413)
def logo_too_large(error: Any) -> Response:
    flash(str(LOGO_REFUSALS["logo_large"]), "error")
    return _settings_page(int((request.view_args or {}).get("org_id", 0)))


@blueprint.get("/orgs/<int:org_id>/settings/logo")
@login_required
def logo(org_id: int) -> Response:
    """The logo as the portal shows it, for the settings page (the same safe headers)."""
    org = organisation_for(current_user, org_id)
    found = logos.logo_of(db.session(), org.id)
    if found is None or found.content is None or found.content_type is None:
        abort(404)
    return Response(found.content, mimetype=found.content_type, headers={
        "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})


@blueprint.post("/orgs/<int:org_id>/settings/logo")
@login_required
def save_logo(org_id: int) -> Response:
    """Upload the business's logo (a PNG or JPEG, checked by its bytes), or take the uploaded
    one away (`remove`): a file that is not a logo is refused with the reason, and nothing is
    saved."""
    org = organisation_for(current_user, org_id)
    now = clock.now()
    if request.form.get("remove"):
        if logos.remove(db.session(), org, now):
            db.session.commit()
            flash(_("The logo was removed."), "success")
        return _settings_page(org.id)
    upload = request.files.get("logo")
    content = upload.stream.read(logos.MAX_LOGO_BYTES + 1) if upload is not None else b""
    try:
        logos.upload(db.session(), org, content, now)
    except logos.LogoRefused as refused:
        db.session.rollback()
        flash(str(LOGO_REFUSALS[refused.code]), "error")
        return _settings_page(org.id)
    db.session.commit()
    flash(_("The logo was saved: customers see it on their portal."), "success")
    return _settings_page(org.id)
