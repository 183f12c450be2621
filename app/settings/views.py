"""The settings page: the collection policy, per-contact settings, templates and the
"what will happen" preview. Views stay thin; app/settings/services.py does the work."""

from __future__ import annotations

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import format_date, ngettext
from flask_babel import gettext as _
from flask_login import current_user, login_required
from redis.exceptions import RedisError
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from app.organisations.services import may_in, organisation_for
from app.practice.services import practice_access
from app.security import BIGGEST_ID, count_in_window
from app.settings import channel_previews, contact_overrides, credit_sections, services
from app.setup import rates
from collect import approvals, message_texts
from collect.book import policy_for
from collect.customers import CreditRefused
from jobs import tasks
from rules import policy_to_json
from store import clock
from store.db import db
from store.models import Invoice

blueprint = Blueprint("settings", __name__)
PREVIEWS_PER_MINUTE = 30  # a person typing gets one a second or two; each may take 0.5 s a render


@blueprint.app_context_processor
def navigation() -> dict[str, object]:
    """For the header and the organisation's links, asked only where a page shows them: the
    practice view's own access rule, and how many actions wait for approval (an indexed
    count)."""
    def can_use_practice() -> bool:
        return bool(current_user.is_authenticated and practice_access(current_user).allowed)

    def awaiting_approval(org) -> int:  # type: ignore[no-untyped-def]
        return approvals.count_awaiting(db.session(), org)

    return {"can_use_practice": can_use_practice, "awaiting_approval": awaiting_approval}


def _page(org, values: MultiDict[str, str] | None, errors: dict[str, str],  # type: ignore[no-untyped-def]
          status: int = 200, template: dict[str, str] | None = None,
          credit: dict[str, str] | None = None) -> tuple[str, int]:
    policy = policy_for(db.session(), org)
    texts = message_texts.texts_of(db.session(), org)
    chosen = template or {}
    language = chosen["language"] if chosen.get("language") in texts else "en"
    tone = chosen["tone"] if chosen.get("tone") in services.TONES else "friendly"
    in_force = texts[language][tone]
    return render_template(
        "settings/policy.html", org=org, policy=policy_to_json(policy), values=values,
        errors=errors, version=services.policy_version(org),
        can_edit=may_in(org, "settings.policy"), channels=services.CHANNELS,
        tones=services.TONES, fee_kinds=list(services.FEE_KINDS),
        fee_kind_fields=services.fee_kind_fields(),
        empty_steps=services.EMPTY_STEP_ROWS, empty_fees=services.EMPTY_FEE_ROWS,
        shipped=services.shipped_texts(), history=services.recent_policy_events(org),
        texts={lang: {t: {"subject": x.subject, "body": x.body, "custom": x.custom}
                      for t, x in by_tone.items()} for lang, by_tone in texts.items()},
        template={"language": language, "tone": tone,
                  "subject": chosen.get("subject", in_force.subject),
                  "body": chosen.get("body", in_force.body), "custom": in_force.custom},
        invoices=services.open_invoices(org, limit=100),
        awaiting=approvals.count_awaiting(db.session(), org),
        credit=credit if credit is not None else credit_sections.form_values(policy, org),
        terms_fields=credit_sections.terms_fields(),
        deposit_fields=credit_sections.deposit_fields(),
        **channel_previews.of_settings_page(org)), status


@blueprint.route("/orgs/<int:org_id>/settings", methods=["GET", "POST"])
@login_required
def policy(org_id: int) -> tuple[str, int] | Response:
    org = organisation_for(current_user, org_id)
    if request.method == "GET":
        return _page(org, None, {}, template={"language": request.args.get("language", ""),
                                              "tone": request.args.get("tone", "")})
    form = services.PolicyForm(request.form, policy_for(db.session(), org))
    checked = form.validate()
    if checked is None:
        db.session.rollback()
        flash(_("Nothing was saved: please correct the fields marked below."), "error")
        return _page(org, request.form, form.errors, 422)
    version = services.save_policy(org, current_user, checked, clock.now())
    flash(_("Policy saved (version %(version)s).", version=version), "success")
    for check in rates.rate_checks(db.session(), org, clock.now()):  # said now, not discovered
        flash(_("Statutory interest (%(jurisdiction)s) will charge nothing for %(start)s to "
                "%(end)s until its rate is confirmed: see the notice below.",
                jurisdiction=check.jurisdiction, start=format_date(check.start),
                end=format_date(check.end)), "error")
    return redirect(url_for("settings.policy", org_id=org.id))


@blueprint.route("/orgs/<int:org_id>/settings/credit", methods=["POST"])
@login_required
def credit(org_id: int) -> tuple[str, int] | Response:
    """Deposits, terms on hold, the new-customer variant and the default credit limit."""
    org = organisation_for(current_user, org_id)
    form = credit_sections.CreditForm(request.form, policy_for(db.session(), org))
    if form.validate():
        try:
            version = credit_sections.save(org, current_user, form, clock.now())
        except CreditRefused as exc:
            form.errors["default_credit_limit"] = str(exc)
        except credit_sections.SettingRefused as exc:
            form.errors[exc.field] = str(exc)
        else:
            flash(_("Credit control saved (policy version %(version)s).", version=version)
                  if version is not None else _("Credit control saved."), "success")
            return redirect(url_for("settings.policy", org_id=org.id) + "#credit")
    db.session.rollback()
    flash(_("Nothing was saved: please correct the fields marked below."), "error")
    return _page(org, None, form.errors, 422, credit=dict(request.form))


@blueprint.route("/orgs/<int:org_id>/settings/template-preview", methods=["POST"])
@login_required
def template_preview(org_id: int) -> Response | tuple[Response, int]:
    """For those who may edit (the role matrix), and at most PREVIEWS_PER_MINUTE a person."""
    org = organisation_for(current_user, org_id)
    try:
        [count] = count_in_window([f"template-previews:{current_user.id}"], 60)
    except RedisError:
        count = 0  # as the sign-in limit: Redis down, previews still work
    if count > PREVIEWS_PER_MINUTE:
        answer = jsonify({"error": _("Too many previews in a minute. Please wait a moment.")})
        answer.headers["Retry-After"] = "60"
        return answer, 429
    source = request.form.get("source", "")
    if "subject" in request.form:  # the editor keeps subject and body apart
        try:
            source = message_texts.checked_source(request.form.get("subject", ""),
                                                  request.form.get("body", ""))
        except message_texts.TextRefused as exc:
            return jsonify({"error": str(exc), "field": exc.field})
    return jsonify(services.template_preview(source, request.form.get("language", "en"),
                                             org.name, org.base_currency))


def _template_choice() -> dict[str, str]:
    return {name: request.form.get(name, "") for name in ("language", "tone", "subject", "body")}


@blueprint.route("/orgs/<int:org_id>/settings/templates", methods=["POST"])
@login_required
def save_template(org_id: int) -> tuple[str, int] | Response:
    org = organisation_for(current_user, org_id)
    chosen = _template_choice()
    try:
        message_texts.save_text(db.session(), org, current_user, chosen["language"],
                                chosen["tone"], chosen["subject"], chosen["body"], clock.now())
    except message_texts.TextRefused as exc:
        db.session.rollback()
        flash(_("The text was not saved: please correct it."), "error")
        return _page(org, None, {exc.field: str(exc)}, 422, chosen)
    db.session.commit()
    flash(_("Saved your %(tone)s text in %(language)s.", tone=chosen["tone"],
            language=chosen["language"]), "success")
    return redirect(url_for("settings.policy", org_id=org.id, language=chosen["language"],
                            tone=chosen["tone"]) + "#templates")


@blueprint.route("/orgs/<int:org_id>/settings/templates/reset", methods=["POST"])
@login_required
def reset_template(org_id: int) -> tuple[str, int] | Response:
    org = organisation_for(current_user, org_id)
    chosen = _template_choice()
    try:
        reset = message_texts.reset_text(db.session(), org, current_user, chosen["language"],
                                         chosen["tone"], clock.now())
    except message_texts.TextRefused as exc:
        db.session.rollback()
        return _page(org, None, {exc.field: str(exc)}, 422)
    db.session.commit()
    flash(_("Back to the default text.") if reset else _("This text was already the default."),
          "success")
    return redirect(url_for("settings.policy", org_id=org.id, language=chosen["language"],
                            tone=chosen["tone"]) + "#templates")


@blueprint.route("/orgs/<int:org_id>/settings/templates/test", methods=["POST"])
@login_required
def test_send(org_id: int) -> tuple[str, int] | Response:
    org = organisation_for(current_user, org_id)
    chosen = _template_choice()
    invoice_id = request.form.get("invoice", type=int)
    if invoice_id is not None and abs(invoice_id) > BIGGEST_ID:
        abort(404)
    edited = bool(chosen["subject"] or chosen["body"])
    try:
        message_texts.test_send(db.session(), org, current_user, chosen["language"],
                                chosen["tone"], chosen["subject"] if edited else None,
                                chosen["body"] if edited else None, invoice_id, clock.now())
    except LookupError:
        abort(404)
    except message_texts.TextRefused as exc:
        db.session.rollback()
        status = 429 if isinstance(exc, message_texts.TestSendsSpent) else 422
        flash(_("No test was sent."), "error")
        return _page(org, None, {exc.field: str(exc)}, status, chosen)
    flash(_("A test was sent to %(email)s only. No customer received it.",
            email=current_user.email), "success")
    return redirect(url_for("settings.policy", org_id=org.id, language=chosen["language"],
                            tone=chosen["tone"]) + "#templates")


# -- safe mode and approvals -------------------------------------------------------------


@blueprint.route("/orgs/<int:org_id>/settings/safe-mode", methods=["POST"])
@login_required
def safe_mode(org_id: int) -> Response:
    org = organisation_for(current_user, org_id)
    on = request.form.get("safe_mode") == "on"
    approvals.set_safe_mode(db.session(), org, current_user, on, clock.now())
    db.session.commit()
    flash(_("Safe mode is on: planned actions wait for your approval.") if on else
          _("Safe mode is off: planned actions go out. Actions already waiting still need"
            " your approval."), "success")
    return redirect((request.form.get("next") == "approvals"
                    and url_for("settings.approvals_page", org_id=org.id))
                    or url_for("settings.policy", org_id=org.id))


@blueprint.route("/orgs/<int:org_id>/settings/approvals")
@login_required
def approvals_page(org_id: int) -> str:
    org = organisation_for(current_user, org_id)
    return render_template("settings/approvals.html", org=org,
                           actions=approvals.awaiting(db.session(), org),
                           can_edit=may_in(org, "settings.policy"))


@blueprint.route("/orgs/<int:org_id>/settings/approvals/<int:action_id>", methods=["POST"])
@login_required
def approval(org_id: int, action_id: int) -> Response:
    org = organisation_for(current_user, org_id)
    decision = request.form.get("decision")
    now = clock.now()
    if not approvals.is_waiting(db.session(), org, action_id):
        abort(404)
    if decision == "approve":
        done = approvals.approve(db.session(), org, current_user, now, [action_id])
        if not done:
            abort(404)
        tasks.send_approved(done)
        flash(_("Approved: it goes out now."), "success")
    elif decision == "reject":
        if approvals.reject(db.session(), org, current_user, action_id, now) is None:
            abort(404)
        flash(_("Rejected: it will not be sent."), "success")
    else:
        abort(400)
    return redirect(url_for("settings.approvals_page", org_id=org.id))


@blueprint.route("/orgs/<int:org_id>/settings/approvals/approve-all", methods=["POST"])
@login_required
def approve_all(org_id: int) -> Response:
    org = organisation_for(current_user, org_id)
    done = approvals.approve(db.session(), org, current_user, clock.now())
    tasks.send_approved(done)
    flash(ngettext("Approved %(num)d action: it goes out now.",
                   "Approved %(num)d actions: they go out now.", len(done)), "success")
    return redirect(url_for("settings.approvals_page", org_id=org.id))


@blueprint.route("/orgs/<int:org_id>/settings/contacts")
@login_required
def contacts(org_id: int) -> Response:
    """Contacts and customers are one place now: the customers' list (the old address stays)."""
    org = organisation_for(current_user, org_id)
    return redirect(url_for("customers.index", org_id=org.id), code=301)


def _contact_page(org, contact, values: dict[str, str], errors: dict[str, str],  # type: ignore[no-untyped-def]
                  status: int = 200) -> tuple[str, int]:
    return render_template(
        "settings/contact.html", org=org, contact=contact, values=values, errors=errors,
        can_edit=may_in(org, "settings.policy"),
        plans=contact_overrides.active_plans(db.session(), org, contact),
        invoices=contact_overrides.open_invoices(db.session(), org, contact),
        summary=contact_overrides.summary(contact)), status


@blueprint.route("/orgs/<int:org_id>/settings/contacts/<int:contact_id>",
                 methods=["GET", "POST"])
@login_required
def contact(org_id: int, contact_id: int) -> tuple[str, int] | Response:
    org = organisation_for(current_user, org_id)
    if request.method == "GET" or request.form.get("page") == "contact":
        try:
            found = contact_overrides.contact_of(db.session(), org, contact_id)
        except LookupError:
            abort(404)
        if request.method == "GET":  # the form lives on the customer's page
            return redirect(url_for("customers.show", org_id=org.id, contact_id=found.id)
                            + "#collection-settings", code=301)
        policy = policy_for(db.session(), org)
        form = contact_overrides.ContactForm(found, request.form, policy)
        if not form.validate():
            db.session.rollback()
            flash(_("Nothing was saved: please correct the fields marked below."), "error")
            return _contact_page(org, found, dict(request.form), form.errors, 422)
        contact_overrides.save(db.session(), org, form, current_user, clock.now())
        flash(_("Saved the settings of %(name)s.", name=found.name), "success")
        return redirect(url_for("customers.show", org_id=org.id, contact_id=found.id)
                        + "#collection-settings")
    try:
        saved = services.save_contact_settings(org, contact_id, request.form, clock.now())
    except LookupError:
        abort(404)
    except services.ContactSettingsError as exc:
        flash(str(exc), "error")
        return redirect(url_for("customers.index", org_id=org.id))
    flash(_("Saved the settings of %(name)s.", name=saved.name), "success")
    return redirect(url_for("customers.show", org_id=org.id, contact_id=saved.id))


@blueprint.route("/orgs/<int:org_id>/preview")
@login_required
def preview(org_id: int) -> str:
    org = organisation_for(current_user, org_id)
    invoices = services.open_invoices(org)
    chosen = request.args.get("invoice", type=int)
    invoice: Invoice | None = None
    timeline: list[services.TimelineEntry] = []
    sent = channel_previews.Previews({})
    if chosen is not None and abs(chosen) > BIGGEST_ID:
        abort(404)  # no invoice has it (and the database driver cannot hold it)
    if chosen is not None:
        try:
            invoice, timeline = services.what_will_happen(org, chosen, clock.now())
            sent = channel_previews.of_timeline(db.session(), org, invoice, timeline)
        except LookupError:
            abort(404)
        finally:
            db.session.rollback()  # a preview writes nothing, whatever it read
    return render_template("settings/preview.html", org=org, invoices=invoices,
                           invoice=invoice, timeline=timeline, sent=sent,
                           days=services.PREVIEW_DAYS,
                           contact_settings=contact_overrides.summary(
                               invoice.contact if invoice is not None else None))
