"""The dashboard and the invoice page."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from app.dashboard import services
from app.organisations.services import may_in, organisation_for
from collect import invoice_actions
from collect.book import calendar_for
from collect.customers import dashboard_credit
from collect.plan import refresh_next_action
from store import clock
from store.db import db
from store.models import Invoice, User

blueprint = Blueprint("dashboard", __name__)


@blueprint.route("/orgs/<int:org_id>/dashboard")
@login_required
def show(org_id: int) -> str:
    org = organisation_for(current_user, org_id)
    now = clock.now()
    today = now.astimezone(ZoneInfo(org.timezone)).date()
    aging = services.aging(org, today)
    main = aging[0] if aging else None
    return render_template(
        "dashboard/show.html", org=org, aging=aging, main=main,
        bars=services.chart_bars(main) if main else [], buckets=services.BUCKETS,
        chart_height=services.CHART_HEIGHT + services.TOP + 40,
        chart_width=len(services.BUCKETS) * (services.BAR_WIDTH + services.GAP)
        + services.GAP, bar_width=services.BAR_WIDTH,
        dso=services.dso(org, today, main.currency) if main else None,
        dso_chart=services.dso_chart(services.dso_history(org, today, main.currency))
        if main else None, dso_days=services.DSO_DAYS,
        collected={days: services.collected_after_reminder(org, today, days)
                   for days in services.COLLECTION_WINDOWS},
        attribution_days=services.ATTRIBUTION_DAYS,
        upcoming=services.upcoming_actions(org, now),
        next_due=services.next_due_invoices(org, now),
        tasks=services.open_tasks(org), disputed=services.disputed_invoices(org),
        **dashboard_credit(db.session(), org, now))


@blueprint.route("/orgs/<int:org_id>/tasks/<int:task_id>/done", methods=["POST"])
@login_required
def task_done(org_id: int, task_id: int) -> Response:
    org = organisation_for(current_user, org_id)
    try:
        task = services.complete_task(org, task_id, current_user,
                                      request.form.get("note", ""), clock.now())
    except LookupError:
        abort(404)
    except services.TaskNoteTooLong as exc:
        flash(str(exc), "error")
        return redirect(url_for("dashboard.show", org_id=org.id))
    flash(_("Task done: %(title)s", title=task.title), "success")
    return redirect(url_for("dashboard.show", org_id=org.id))


@blueprint.route("/orgs/<int:org_id>/invoices/<int:invoice_id>")
@login_required
def invoice(org_id: int, invoice_id: int) -> str:
    org = organisation_for(current_user, org_id)
    try:
        found, timeline, actions = services.invoice_timeline(org, invoice_id)
    except LookupError:
        abort(404)
    return render_template("dashboard/invoice.html", org=org, invoice=found, timeline=timeline,
                           actions=actions, reference=services.provider_reference,
                           own=services.own_documents_of(org, found),
                           may_act=may_in(org, "dashboard.invoice_note"),
                           promise_max_days=invoice_actions.PROMISE_MAX_DAYS,
                           today=calendar_for(org).today(clock.now()))


# What an invoice's actions say when they will not take the input (nothing is saved).
REFUSALS = {
    "not_open": _l("This invoice has nothing left to pay."),
    "no_customer": _l("This invoice has no customer in the books."),
    "bad_date": _l("Please give the day the customer promised to pay by."),
    "date_past": _l("The promised day is in the past: choose today or a later day."),
    "date_far": _l("A promise may be at most %(days)s days ahead: agree a payment plan "
                   "instead."),
    "bad_amount": _l("Please give an amount greater than zero and no more than what is due."),
    "reason_missing": _l("Please say why the invoice is disputed."),
    "reason_long": _l("Please keep the reason shorter."),
    "note_missing": _l("Please write the note."),
    "note_long": _l("A note may hold at most %(chars)s characters."),
}
DONE = {"promise": _l("Promise recorded: reminders wait until the promised day."),
        "dispute": _l("Invoice marked disputed: reminders and fees stop until it is resolved."),
        "note": _l("Note added.")}


def _act(org_id: int, invoice_id: int, done: str,
         act: Callable[[Session, Invoice, User, date, datetime], None]) -> Response:
    """The common frame of an invoice action: the invoice, the input, the ledger's next
    action, one commit; refused input is rolled back and said in plain words."""
    org = organisation_for(current_user, org_id)
    try:
        found, _timeline, _actions = services.invoice_timeline(org, invoice_id)
    except LookupError:
        abort(404)
    session = db.session()
    now = clock.now()
    try:
        act(session, found, current_user, calendar_for(org).today(now), now)
    except invoice_actions.ActionRefused as refused:
        session.rollback()
        flash(str(REFUSALS.get(refused.code, REFUSALS["bad_amount"])) % {
            "days": invoice_actions.PROMISE_MAX_DAYS,
            "chars": invoice_actions.MAX_NOTE_CHARS}, "error")
        return redirect(url_for("dashboard.invoice", org_id=org.id, invoice_id=invoice_id)
                        + "#act", code=303)
    refresh_next_action(session, org, now, [found.id])
    session.commit()
    flash(str(DONE[done]), "success")
    return redirect(url_for("dashboard.invoice", org_id=org.id, invoice_id=invoice_id),
                    code=303)


@blueprint.route("/orgs/<int:org_id>/invoices/<int:invoice_id>/promise", methods=["POST"])
@login_required
def invoice_promise(org_id: int, invoice_id: int) -> Response:
    return _act(org_id, invoice_id, "promise",
                lambda session, invoice, user, today, now: invoice_actions.record_promise(
                    session, invoice, user, request.form.get("pay_by"),
                    request.form.get("amount"), today, now))


@blueprint.route("/orgs/<int:org_id>/invoices/<int:invoice_id>/dispute", methods=["POST"])
@login_required
def invoice_dispute(org_id: int, invoice_id: int) -> Response:
    return _act(org_id, invoice_id, "dispute",
                lambda session, invoice, user, _today, now: invoice_actions.mark_disputed(
                    session, invoice, user, request.form.get("reason"), now))


@blueprint.route("/orgs/<int:org_id>/invoices/<int:invoice_id>/note", methods=["POST"])
@login_required
def invoice_note(org_id: int, invoice_id: int) -> Response:
    return _act(org_id, invoice_id, "note",
                lambda session, invoice, user, _today, now: invoice_actions.add_note(
                    session, invoice, user, request.form.get("note"), now))
