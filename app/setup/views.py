"""The setup page: the owner's first hour, from review to Go live. Views stay thin;
app/setup/services.py does the work."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from app.demo import read_mailbox
from app.organisations.services import may_in, organisation_for
from app.settings import channel_previews
from app.setup import rates, sender, services
from collect import message_texts, review
from collect.book import policy_for
from jobs import retention
from rules.policy import Channel
from store import clock
from store.db import db

blueprint = Blueprint("setup", __name__)


@blueprint.app_context_processor
def mode_at_a_glance() -> dict[str, object]:
    """For the organisation pages: its mode in one word, and how long data outlives a
    disconnect (said before the owner confirms one)."""
    def org_mode(org) -> str:  # type: ignore[no-untyped-def]
        if review.in_review(org):
            return "review"
        return "approvals" if org.safe_mode else "live"

    def grace_days() -> int:
        return retention.grace_period().days

    def checks(org) -> list[object]:  # type: ignore[no-untyped-def]
        return list(rates.rate_checks(db.session(), org, clock.now()))

    def may_decide_rates(org) -> bool:  # type: ignore[no-untyped-def]
        return may_in(org, "setup.decide_rate")

    return {"org_mode": org_mode, "grace_days": grace_days, "rate_checks": checks,
            "may_decide_rates": may_decide_rates}


def _page(org, status: int = 200, errors: dict[str, str] | None = None,  # type: ignore[no-untyped-def]
          values: dict[str, str] | None = None) -> tuple[str, int]:
    now = clock.now()
    session = db.session()
    verified = services.sender_verified(session, org)
    own = sender.sender_of(session, org)
    channel: Channel = "dunwell_email" if verified else "provider_email"
    policy = policy_for(session, org)
    week = services.first_week(session, org, now)
    page = render_template(
        "setup/show.html", org=org, in_review=review.in_review(org),
        can_edit=may_in(org, "setup.go_live"), presets=services.preset_ladders(channel),
        current=policy.reminder_steps, verified=verified, fees=policy.late_fees,
        earlier=services.earlier_lateness(session, org, now),
        week=week, previews=channel_previews.of_week(session, org, week.top),
        errors=errors or {},
        sender=own, values=values or {}, mailbox=bool(current_app.config.get("DEMO_MAILBOX")))
    session.rollback()  # a preview writes nothing (the policy's first read may add its row)
    return page, status


@blueprint.route("/orgs/<int:org_id>/setup")
@login_required
def show(org_id: int) -> tuple[str, int]:
    return _page(organisation_for(current_user, org_id))


@blueprint.route("/orgs/<int:org_id>/setup/preset", methods=["POST"])
@login_required
def preset(org_id: int) -> tuple[str, int] | Response:
    org = organisation_for(current_user, org_id)
    name = request.form.get("preset", "")
    if name == "keep":
        flash(_("Your current ladder is kept."), "success")
        return redirect(url_for("setup.show", org_id=org.id) + "#sender")
    try:
        version = services.choose_preset(db.session(), org, current_user, name, clock.now())
    except services.SetupRefused:
        db.session.rollback()
        flash(_("Nothing was saved: choose one of the offered ladders."), "error")
        return _page(org, 422, {"preset": _("Choose one of the offered ladders.")})
    flash(_("The %(name)s ladder is your policy now (version %(version)s).",
            name=_preset_name(name), version=version), "success")
    return redirect(url_for("setup.show", org_id=org.id) + "#sender")


def _preset_name(name: str) -> str:
    return {"gentle": _("gentle"), "standard": _("standard"), "firm": _("firm")}.get(name, name)


@blueprint.route("/orgs/<int:org_id>/setup/test", methods=["POST"])
@login_required
def test_send(org_id: int) -> tuple[str, int] | Response:
    org = organisation_for(current_user, org_id)
    try:
        message_texts.test_send(db.session(), org, current_user, "en", "friendly", None, None,
                                None, clock.now())
    except message_texts.TextRefused as exc:
        db.session.rollback()
        flash(_("No test was sent."), "error")
        return _page(org, 422, {"test": str(exc)})
    flash(_("A test was sent to %(email)s only. No customer received it.",
            email=current_user.email), "success")
    return redirect(url_for("setup.show", org_id=org.id) + "#test")


@blueprint.route("/orgs/<int:org_id>/setup/go-live", methods=["POST"])
@login_required
def go_live(org_id: int) -> tuple[str, int] | Response:
    org = organisation_for(current_user, org_id)
    try:
        services.go_live(db.session(), org, current_user, clock.now(),
                         fees_seen=request.form.get("fees_seen") == "on",
                         charge_earlier=request.form.get("charge_earlier") == "on",
                         approvals=request.form.get("approvals") == "on")
    except services.SetupRefused as exc:
        db.session.rollback()
        if str(exc) == "already live":
            flash(_("This organisation is already live."), "success")
            return redirect(url_for("organisations.show", org_id=org.id))
        flash(_("Not live yet: please confirm you have seen what the fees will charge."),
              "error")
        return _page(org, 422, {"fees_seen": _("Tick this to confirm you have seen the fees.")})
    flash(_("Live: from now on Dunwell acts on your policy."), "success")
    return redirect(url_for("organisations.show", org_id=org.id))


@blueprint.route("/orgs/<int:org_id>/setup/sender", methods=["POST"])
@login_required
def save_sender(org_id: int) -> tuple[str, int] | Response:
    org = organisation_for(current_user, org_id)
    try:
        sender.verify_and_save(db.session(), org, current_user, request.form, clock.now())
    except sender.SenderRefused as exc:
        db.session.rollback()
        flash(_("The sender was not saved."), "error")
        values = {k: v for k, v in request.form.items() if k not in ("password", "csrf_token")}
        return _page(org, 422, {exc.field: str(exc)}, values)
    flash(_("A test reached the mail server and the sender is saved. Look for it in your "
            "inbox."), "success")
    return redirect(url_for("setup.show", org_id=org.id) + "#sender")


@blueprint.route("/demo/mailbox")
@login_required
def mailbox() -> str:
    """The demo's mail catcher: every message Dunwell sent, with its headers and text."""
    folder = current_app.config.get("DEMO_MAILBOX")
    if not folder:
        abort(404)
    return render_template("setup/mailbox.html", messages=read_mailbox(Path(folder)))


@blueprint.route("/orgs/<int:org_id>/setup/rate", methods=["POST"])
@login_required
def decide_rate(org_id: int) -> Response:
    """An owner's or admin's word on a statutory rate period (the banner's buttons)."""
    org = organisation_for(current_user, org_id)
    try:
        start = date.fromisoformat(request.form.get("start", ""))
        rates.decide(db.session(), org, current_user, request.form.get("jurisdiction", ""),
                     start, request.form.get("choice", ""), clock.now())
    except (ValueError, rates.DecisionRefused):
        db.session.rollback()
        flash(_("Nothing was saved: that rate period does not wait for a decision."), "error")
    else:
        flash(_("Saved: statutory interest for that period is charged from now on."),
              "success")
    back = "settings.policy" if request.form.get("next") == "settings" else "dashboard.show"
    return redirect(url_for(back, org_id=org.id))
