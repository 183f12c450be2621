"""Organisations list and the organisation page (status, sync progress, invoices, activity)."""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from app.organisations import calculator
from app.organisations.services import (
    NEXT_KIND_LABELS,
    daily_limit_notice,
    document_for,
    invoices,
    latest_sync,
    organisation_for,
    organisations_of,
    overview,
)
from collect import invoice_list
from jobs.tasks import enqueue_sync
from store import clock
from store.db import db

blueprint = Blueprint("organisations", __name__)


@blueprint.route("/")
def home() -> Response:
    return redirect(url_for("organisations.index"))


@blueprint.route("/orgs")
@login_required
def index() -> str:
    return render_template("organisations/index.html", organisations=organisations_of(current_user))


@blueprint.route("/orgs/<int:org_id>")
@login_required
def show(org_id: int) -> str:
    org = organisation_for(current_user, org_id)
    now = clock.now()
    now_local = now.astimezone(ZoneInfo(org.timezone))
    listed = invoices(org, request.args, now)
    return render_template("organisations/show.html", view=overview(org, now_local, listed),
                           listed=listed, kinds=NEXT_KIND_LABELS,
                           buckets=invoice_list.BUCKETS, statuses=invoice_list.STATUSES,
                           page_sizes=invoice_list.PAGE_SIZES,
                           now_local=now_local, daily_limit=daily_limit_notice(org, now))


@blueprint.route("/orgs/<int:org_id>/sync-status")
@login_required
def sync_status(org_id: int) -> Any:
    org = organisation_for(current_user, org_id)
    run = latest_sync(org)
    if run is None:
        return jsonify({"status": "none"})
    return jsonify({"status": run.status, "mode": run.mode, "progress": run.progress,
                    "api_calls": run.api_calls, "error": run.error,
                    "finished_at": run.finished_at.isoformat() if run.finished_at else None})


@blueprint.route("/orgs/<int:org_id>/sync", methods=["POST"])
@login_required
def sync_now(org_id: int) -> Response:
    org = organisation_for(current_user, org_id)
    enqueue_sync(org.id)
    flash(_("Sync started."), "success")
    return redirect(url_for("organisations.show", org_id=org.id))


@blueprint.route("/orgs/<int:org_id>/documents/<int:document_id>")
@login_required
def document(org_id: int, document_id: int) -> Response:
    """A final demand or case file, as a download (never rendered inside our pages)."""
    org = organisation_for(current_user, org_id)
    found = document_for(org, document_id)
    filename = re.sub(r"[^A-Za-z0-9._-]", "-", found.filename)  # names come from the books
    return Response(found.content, mimetype=found.content_type, headers={
        "Content-Disposition": f'attachment; filename="{filename}"',
        "X-Content-Type-Options": "nosniff"})


@blueprint.route("/orgs/<int:org_id>/fees/quote")
@login_required
def fee_quote(org_id: int) -> str:
    """The statutory-interest calculator (the same figures as `dunwell fees quote`)."""

    org = organisation_for(current_user, org_id)
    asked = calculator.Asked.from_args(request.args, org)
    answer = (calculator.calculate(db.session(), org, asked, clock.now()) if asked.complete
              else calculator.Answer())
    return render_template("organisations/fee_quote.html", org=org, form=asked,
                           answer=answer)
