"""The dashboard and the invoice page."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from app.dashboard import services
from app.organisations.services import organisation_for
from collect.customers import dashboard_credit
from store import clock
from store.db import db

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
                           own=services.own_documents_of(org, found))
