"""The SMS settings page (/orgs/<id>/sms), and POST /webhooks/twilio/status and
/webhooks/twilio/inbound: Twilio's form posts, each checked against X-Twilio-Signature with the
auth token of the account that sent the text; a request that no account of ours signed changes
nothing and answers 403."""

from __future__ import annotations

import logging

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required
from werkzeug.wrappers import Response as WerkzeugResponse

from app.organisations.services import may_in, organisation_for
from app.sms import settings
from collect.sms import (
    account_for,
    mask,
    opt_outs,
    orgs_texting,
    previews,
    record_reply,
    record_status,
    texting_of,
    unreachable_contacts,
)
from connectors.twilio import valid_signature
from jobs.tasks import enqueue_action
from rules.sms import reply_keyword
from store import clock
from store.db import db
from store.models import SmsMessage

log = logging.getLogger(__name__)

blueprint = Blueprint("sms", __name__)
pages = Blueprint("sms_settings", __name__)
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def _signed_url() -> str:
    """The URL Twilio signed: the one we gave it, on our public BASE_URL."""
    base = str(current_app.config.get("BASE_URL") or "").rstrip("/")
    query = request.query_string.decode()
    return f"{base}{request.path}{'?' + query if query else ''}"


def _signed_by(org_id: int) -> bool:
    account = account_for(db.session(), org_id)
    if account is None or account.account_sid != request.form.get("AccountSid"):
        return False
    return valid_signature(account.auth_token, _signed_url(), request.form.to_dict(),
                           request.headers.get("X-Twilio-Signature", ""))


@blueprint.post("/webhooks/twilio/status")
def status() -> tuple[str, int]:
    sid = request.form.get("MessageSid", "")
    message = db.session.query(SmsMessage).filter_by(sid=sid).one_or_none() if sid else None
    if message is None or not _signed_by(message.org_id):
        return "", 403
    code = request.form.get("ErrorCode", "")
    action = record_status(db.session(), sid, request.form.get("MessageStatus", ""),
                           int(code) if code.isdigit() else None, clock.now())
    if action is not None:
        enqueue_action(action)  # the step goes by email now
    return "", 204


@blueprint.post("/webhooks/twilio/inbound")
def inbound() -> Response | tuple[str, int]:
    number = request.form.get("From", "")
    orgs = [org_id for org_id in orgs_texting(db.session(), number) if _signed_by(org_id)]
    if not orgs:
        return "", 403
    body = request.form.get("Body", "")
    meaning = reply_keyword(body)
    if meaning is not None:
        for org_id in orgs:
            record_reply(db.session(), org_id, number, meaning, body.strip(), clock.now())
        db.session.commit()
    # No reply of our own: Twilio answers STOP and START itself.
    return Response(EMPTY_TWIML, mimetype="text/xml")


# ------------------------------------------------------------------------- the settings page


def _page(org, status: int = 200, errors: dict[str, str] | None = None,  # type: ignore[no-untyped-def]
          ) -> tuple[str, int]:
    row = settings.settings_of(db.session(), org)
    return render_template(
        "sms/settings.html", org=org, settings=row, errors=errors or {},
        server_account=bool(current_app.config.get("TWILIO_ACCOUNT_SID")),
        previews=previews(row, org),
        opt_outs=opt_outs(db.session(), org.id),
        unreachable=unreachable_contacts(db.session(), org), mask=mask,
        can_edit=may_in(org, "sms_settings.save")), status


@pages.get("/orgs/<int:org_id>/sms")
@login_required
def show(org_id: int) -> tuple[str, int]:
    return _page(organisation_for(current_user, org_id))


@pages.post("/orgs/<int:org_id>/sms")
@login_required
def save(org_id: int) -> tuple[str, int] | WerkzeugResponse:
    org = organisation_for(current_user, org_id)
    try:
        choice = settings.read_choice(request.form, settings.settings_of(db.session(), org))
    except settings.SettingsRefused as exc:
        db.session.rollback()
        flash(_("The SMS settings were not saved."), "error")
        return _page(org, 400, {exc.field: str(exc)})
    settings.save(db.session(), org, choice)
    db.session.commit()
    flash(_("The SMS settings are saved."), "success")
    return redirect(url_for("sms_settings.show", org_id=org.id))


REASONS = {"no_number": lambda: _("no phone number in the books"),
           "unparseable": lambda: _("the number in the books cannot be read"),
           "not_mobile": lambda: _("the number is not a mobile"),
           "opted_out": lambda: _("replied STOP")}


@pages.app_context_processor
def texting() -> dict[str, object]:
    """For the customer's page: where its texts go, or why none does."""
    def sms_line(org, contact) -> str:  # type: ignore[no-untyped-def]
        found = texting_of(db.session(), org, contact)
        if found is None:
            return ""
        number, reason = found
        if number is not None:
            return _("Texts go to %(number)s.", number=mask(number))
        return _("No texts: %(reason)s; reminders go by email.", reason=REASONS[reason]())

    return {"sms_line": sms_line}
