"""Customer pages: risk and payment behaviour, credit limit and hold, statement preview."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user, login_required
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from app.customers.forms import CreditLimitForm, HoldForm, RetainerForm, TopUpForm
from app.customers.page import customer_page
from app.customers.risk_text import risk_reasons
from app.dashboard.views import REFUSALS
from app.organisations.services import organisation_for
from collect import approvals, customer_workbench, invoice_actions
from collect import customers as services
from collect.plan import refresh_next_action
from jobs.tasks import enqueue_action
from rules.statements import render_statement
from store import clock
from store.db import db
from store.models import Action, Invoice, Organisation

blueprint = Blueprint("customers", __name__)
blueprint.add_app_template_global(risk_reasons, "risk_reasons")


def _customer(org_id: int, contact_id: int):  # type: ignore[no-untyped-def]
    org = organisation_for(current_user, org_id)
    try:
        contact = services.contact_of(db.session(), org, contact_id)
    except services.CreditRefused:
        abort(404)
    return org, contact


@blueprint.route("/orgs/<int:org_id>/customers")
@login_required
def index(org_id: int) -> str:
    org = organisation_for(current_user, org_id)
    now = clock.now()
    return render_template("customers/index.html", org=org,
                           customers=services.customer_credit(db.session(), org, now),
                           backtest=services.backtest_org(db.session(), org, now),
                           forecast=services.cash_in_forecast(db.session(), org, now))


@blueprint.route("/orgs/<int:org_id>/customers/<int:contact_id>")
@login_required
def show(org_id: int, contact_id: int) -> str:
    org, contact = _customer(org_id, contact_id)
    now = clock.now()
    credit = services.customer_credit(db.session(), org, now, {contact.id})
    if not credit:
        abort(404)
    hold = HoldForm(action="release" if contact.on_hold else "hold")
    limit = CreditLimitForm(limit=contact.credit_limit)
    retainer = services.retainer_view(db.session(), org, contact)
    return render_template(
        "customers/show.html", org=org, contact=contact, credit=credit[0],
        pay_dates=services.listed_pay_dates(db.session(), org, now, contact.id),
        statement=render_statement(services.statement_for(db.session(), org, contact, now)),
        hold_form=hold, limit_form=limit, retainer=retainer,
        retainer_form=RetainerForm(
            threshold=retainer.retainer.threshold if retainer else None,
            top_up_to=retainer.retainer.top_up_to if retainer else None,
            started_on=retainer.retainer.started_on if retainer else None),
        top_up_form=TopUpForm(),
        milestones=services.expected_payments_of(db.session(), org, contact),
        quote_deposits=services.quote_deposits_of(db.session(), org, contact),
        terms=services.contact_terms_changes(db.session(), org, credit[0]),
        terms_written=services.contact_terms_written(db.session(), org, contact),
        customer_actions=services.customer_actions(db.session(), org, contact),
        terms_write_back=services.terms_write_back(db.session(), org),
        **customer_page(org, contact, services.org_today(org, now)))


@blueprint.route("/orgs/<int:org_id>/customers/<int:contact_id>/hold", methods=["POST"])
@login_required
def hold(org_id: int, contact_id: int) -> Response:
    org, contact = _customer(org_id, contact_id)
    form = HoldForm()
    back = redirect(url_for("customers.show", org_id=org.id, contact_id=contact.id))
    if not form.validate_on_submit():
        flash(_("The form was not accepted; please try again."), "error")
        return back
    signal = None
    try:
        if form.action.data == "release":
            services.release_hold(db.session(), contact)
        else:
            services.put_on_hold(db.session(), contact, form.reason.data or "", clock.now())
            signal = services.signal_hold(db.session(), org, contact, clock.now())
    except services.CreditRefused as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return back
    db.session.commit()
    if signal is not None:
        enqueue_action(signal)
    flash(_("%(name)s is on credit hold.", name=contact.name) if contact.on_hold
          else _("%(name)s is no longer on hold.", name=contact.name),
          "success")
    return back


@blueprint.route("/orgs/<int:org_id>/customers/<int:contact_id>/limit", methods=["POST"])
@login_required
def limit(org_id: int, contact_id: int) -> Response:
    org, contact = _customer(org_id, contact_id)
    form = CreditLimitForm()
    back = redirect(url_for("customers.show", org_id=org.id, contact_id=contact.id))
    if not form.validate_on_submit():
        flash(_("A credit limit is a positive amount with at most two decimals, or empty."),
              "error")
        return back
    try:
        services.set_credit_limit(db.session(), contact, form.limit.data)
    except services.CreditRefused as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return back
    db.session.commit()
    flash(_("Credit limit saved."), "success")
    return back


@blueprint.route("/orgs/<int:org_id>/customers/<int:contact_id>/retainer", methods=["POST"])
@login_required
def retainer(org_id: int, contact_id: int) -> Response:
    org, contact = _customer(org_id, contact_id)
    form = RetainerForm()
    back = redirect(url_for("customers.show", org_id=org.id, contact_id=contact.id))
    if not form.validate_on_submit():
        flash(_("A retainer needs a threshold and a higher top-up level, each an amount."),
              "error")
        return back
    try:
        services.set_retainer(
            db.session(), org, contact, threshold=form.threshold.data,
            top_up_to=form.top_up_to.data,
            started_on=form.started_on.data or services.org_today(org, clock.now()))
    except services.CreditRefused as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return back
    db.session.commit()
    flash(_("Retainer saved."), "success")
    return back


@blueprint.route("/orgs/<int:org_id>/customers/<int:contact_id>/retainer/top-up",
                 methods=["POST"])
@login_required
def top_up(org_id: int, contact_id: int) -> Response:
    org, contact = _customer(org_id, contact_id)
    form = TopUpForm()
    back = redirect(url_for("customers.show", org_id=org.id, contact_id=contact.id))
    if not form.validate_on_submit():
        flash(_("A top-up is an amount above zero."), "error")
        return back
    try:
        services.record_top_up(db.session(), org, contact, form.amount.data,
                               form.received_on.data or services.org_today(org, clock.now()))
    except services.CreditRefused as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return back
    db.session.commit()
    flash(_("Top-up recorded."), "success")
    return back


@blueprint.route("/orgs/<int:org_id>/customers/<int:contact_id>/pause", methods=["POST"])
@login_required
def pause(org_id: int, contact_id: int) -> Response:
    """Chasing of every open invoice of the customer paused, each as from its own page."""
    org, contact = _customer(org_id, contact_id)
    back = url_for("customers.show", org_id=org.id, contact_id=contact.id)
    session, now = db.session(), clock.now()
    today = services.org_today(org, now)
    invoices = [i for i in services.open_invoices(session, org, contact) if i.amount_due > 0]
    until = request.form.get("until") if request.form.get("how") != "resumed" else ""
    try:
        if not invoices:
            raise invoice_actions.ActionRefused("not_open")
        for invoice in invoices:
            invoice_actions.pause(session, invoice, current_user, until,
                                  request.form.get("reason"), today, now)
    except invoice_actions.ActionRefused as refused:
        session.rollback()
        flash(str(REFUSALS.get(refused.code, REFUSALS["pause_bad_date"])) % {
            "pause_days": invoice_actions.PAUSE_MAX_DAYS}, "error")
        return redirect(back + "#customer-act", code=303)
    refresh_next_action(session, org, now, [i.id for i in invoices])
    session.commit()
    flash(ngettext("Chasing of %(num)d invoice paused.", "Chasing of %(num)d invoices paused.",
                   len(invoices)), "success")
    return redirect(back, code=303)


@blueprint.route("/orgs/<int:org_id>/customers/<int:contact_id>/resume", methods=["POST"])
@login_required
def resume(org_id: int, contact_id: int) -> Response:
    """Chasing of the customer's paused invoices resumed, each from where it was."""
    org, contact = _customer(org_id, contact_id)
    session, now = db.session(), clock.now()
    today = services.org_today(org, now)
    paused = [i for i in services.open_invoices(session, org, contact)
              if invoice_actions.pause_in_force(session, i, today) is not None]
    for invoice in paused:
        invoice_actions.resume(session, invoice, current_user, today, now)
    if paused:
        refresh_next_action(session, org, now, [i.id for i in paused])
        session.commit()
        flash(ngettext("Chasing of %(num)d invoice resumed.",
                       "Chasing of %(num)d invoices resumed.", len(paused)), "success")
    else:
        flash(str(REFUSALS["not_paused"]), "error")
    return redirect(url_for("customers.show", org_id=org.id, contact_id=contact.id), code=303)


# What a customer's page refuses beside an invoice's own refusals (REFUSALS).
CUSTOMER_REFUSALS = {
    "none_chosen": _l("Please tick at least one of the customer's open invoices."),
    "promise_currencies": _l("The ticked invoices are in more than one currency: leave the "
                             "amount empty, or tick invoices in one currency."),
    "none_due": _l("None of the ticked invoices has a reminder that can go now."),
    "not_open": _l("One of the ticked invoices has nothing left to pay: reload the page."),
}

Done = Callable[[int, int], str]  # (invoices acted on, invoices left alone) -> the message
CustomerAct = Callable[[Session, Organisation, list[Invoice], date, datetime],
                       tuple[list[Action], int]]


def _act_on_invoices(org_id: int, contact_id: int, act: CustomerAct, done: Done) -> Response:
    """The common frame of an action on the customer's ticked open invoices: each is the
    invoice page's own action, all in one transaction; refused input is rolled back (nothing
    saved) and said in plain words. The reminders planned wait for approval in safe mode."""
    org, contact = _customer(org_id, contact_id)
    back = url_for("customers.show", org_id=org.id, contact_id=contact.id)
    session, now = db.session(), clock.now()
    today = services.org_today(org, now)
    try:
        invoices = customer_workbench.chosen(session, org, contact,
                                             request.form.getlist("invoice"))
        planned, left = act(session, org, invoices, today, now)
    except invoice_actions.ActionRefused as refused:
        session.rollback()
        words = CUSTOMER_REFUSALS.get(refused.code) or REFUSALS.get(refused.code,
                                                                     REFUSALS["bad_amount"])
        flash(str(words) % {"days": invoice_actions.PROMISE_MAX_DAYS,
                            "chars": invoice_actions.MAX_NOTE_CHARS}, "error")
        return redirect(back + "#customer-act", code=303)
    to_send = [a for a in planned if a.kind != "reminder"]
    reminders = [a for a in planned if a.kind == "reminder"]
    to_send += approvals.hold_in_safe_mode(session, org, reminders, now)
    refresh_next_action(session, org, now, [i.id for i in invoices])
    session.commit()
    for action in to_send:
        enqueue_action(action)
    message = done(len(invoices) - left, left)
    if reminders and not to_send:
        message = ngettext("%(num)d reminder waits for approval (safe mode).",
                           "%(num)d reminders wait for approval (safe mode).", len(reminders))
    flash(message, "success")
    return redirect(back, code=303)


@blueprint.route("/orgs/<int:org_id>/customers/<int:contact_id>/note", methods=["POST"])
@login_required
def note(org_id: int, contact_id: int) -> Response:
    """The note on each ticked invoice, and to its history in the books."""
    def act(session: Session, _org: Organisation, invoices: list[Invoice], _today: date,
            now: datetime) -> tuple[list[Action], int]:
        return customer_workbench.add_note(session, invoices, current_user,
                                           request.form.get("note"), now,
                                           request.form.get("nonce")), 0

    return _act_on_invoices(org_id, contact_id, act, lambda done, _left: ngettext(
        "Note added to %(num)d invoice. It is written to its history in the books.",
        "Note added to %(num)d invoices. It is written to their history in the books.", done))


@blueprint.route("/orgs/<int:org_id>/customers/<int:contact_id>/promise", methods=["POST"])
@login_required
def promise(org_id: int, contact_id: int) -> Response:
    """One promise to pay by a day over the ticked invoices."""
    def act(session: Session, _org: Organisation, invoices: list[Invoice], today: date,
            now: datetime) -> tuple[list[Action], int]:
        promised = customer_workbench.record_promise(
            session, invoices, current_user, request.form.get("pay_by"),
            request.form.get("amount"), today, now)
        return [], len(invoices) - len(promised)

    return _act_on_invoices(org_id, contact_id, act, lambda done, _left: ngettext(
        "Promise recorded for %(num)d invoice: reminders wait until the promised day.",
        "Promise recorded for %(num)d invoices: reminders wait until the promised day.", done))


@blueprint.route("/orgs/<int:org_id>/customers/<int:contact_id>/remind", methods=["POST"])
@login_required
def remind(org_id: int, contact_id: int) -> Response:
    """The next reminder now for each ticked invoice that is due and may be chased."""
    def act(session: Session, org: Organisation, invoices: list[Invoice], today: date,
            now: datetime) -> tuple[list[Action], int]:
        planned, left = customer_workbench.send_next_reminders(session, org, invoices,
                                                               current_user, today, now)
        return planned, len(left)

    def said(done: int, left: int) -> str:
        sent = ngettext("The next reminder goes out now for %(num)d invoice.",
                        "The next reminder goes out now for %(num)d invoices.", done)
        if not left:
            return sent
        return sent + " " + ngettext(
            "%(num)d invoice is left alone: not due yet, or not to be chased now.",
            "%(num)d invoices are left alone: not due yet, or not to be chased now.", left)

    return _act_on_invoices(org_id, contact_id, act, said)
