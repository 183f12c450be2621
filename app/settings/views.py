"""The settings page: the collection policy, per-contact settings, templates and the
"what will happen" preview. Views stay thin; app/settings/services.py does the work."""

from __future__ import annotations

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from app import clock
from app.extensions import db
from app.organisations.services import EDITORS, organisation_for, require_role, role_of
from app.settings import services
from jobs.plan import policy_for
from rules import policy_to_json

blueprint = Blueprint("settings", __name__)


def _page(org, values: MultiDict[str, str] | None, errors: dict[str, str],  # type: ignore[no-untyped-def]
          status: int = 200) -> tuple[str, int]:
    policy = policy_for(db.session, org)
    return render_template(
        "settings/policy.html", org=org, policy=policy_to_json(policy), values=values,
        errors=errors, version=services.policy_version(org),
        can_edit=role_of(current_user, org) in EDITORS, channels=services.CHANNELS,
        tones=services.TONES, fee_kinds=list(services.FEE_KINDS),
        empty_steps=services.EMPTY_STEP_ROWS, empty_fees=services.EMPTY_FEE_ROWS,
        shipped=services.shipped_texts(), history=services.recent_policy_events(org)), status


@blueprint.route("/orgs/<int:org_id>/settings", methods=["GET", "POST"])
@login_required
def policy(org_id: int) -> tuple[str, int] | Response:
    org = organisation_for(current_user, org_id)
    if request.method == "GET":
        return _page(org, None, {})
    require_role(current_user, org, EDITORS)
    form = services.PolicyForm(request.form, policy_for(db.session, org))
    checked = form.validate()
    if checked is None:
        db.session.rollback()
        flash(_("Nothing was saved: please correct the fields marked below."), "error")
        return _page(org, request.form, form.errors, 422)
    version = services.save_policy(org, current_user, checked, clock.now())
    flash(_("Policy saved (version %(version)s).", version=version), "success")
    return redirect(url_for("settings.policy", org_id=org.id))


@blueprint.route("/orgs/<int:org_id>/settings/template-preview", methods=["POST"])
@login_required
def template_preview(org_id: int) -> Response:
    org = organisation_for(current_user, org_id)
    return jsonify(services.template_preview(request.form.get("source", ""),
                                             request.form.get("language", "en"), org.name))


@blueprint.route("/orgs/<int:org_id>/settings/contacts")
@login_required
def contacts(org_id: int) -> str:
    org = organisation_for(current_user, org_id)
    return render_template("settings/contacts.html", org=org,
                           contacts=services.contacts_of(org),
                           can_edit=role_of(current_user, org) in EDITORS)


@blueprint.route("/orgs/<int:org_id>/settings/contacts/<int:contact_id>", methods=["POST"])
@login_required
def contact(org_id: int, contact_id: int) -> Response:
    org = organisation_for(current_user, org_id)
    require_role(current_user, org, EDITORS)
    try:
        saved = services.save_contact_settings(org, contact_id, request.form, clock.now())
    except LookupError:
        abort(404)
    except services.ContactSettingsError as exc:
        flash(str(exc), "error")
        return redirect(url_for("settings.contacts", org_id=org.id))
    flash(_("Saved the settings of %(name)s.", name=saved.name), "success")
    return redirect(url_for("settings.contacts", org_id=org.id))


@blueprint.route("/orgs/<int:org_id>/preview")
@login_required
def preview(org_id: int) -> str:
    org = organisation_for(current_user, org_id)
    invoices = services.open_invoices(org)
    chosen = request.args.get("invoice", type=int)
    invoice, timeline = None, []
    if chosen is not None:
        try:
            invoice, timeline = services.what_will_happen(org, chosen, clock.now())
        except LookupError:
            abort(404)
        finally:
            db.session.rollback()  # a preview writes nothing, whatever it read
    return render_template("settings/preview.html", org=org, invoices=invoices,
                           invoice=invoice, timeline=timeline,
                           days=services.PREVIEW_DAYS)
