"""Connect books: the authorization-code flow with `state` bound to the session (and PKCE
where the provider supports it: Xero)."""

from __future__ import annotations

import logging
import secrets
import tempfile
from datetime import datetime

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from werkzeug.wrappers import Response
from werkzeug.wsgi import wrap_file

from app.auth import flows
from app.connections.services import (
    BooksAlreadyConnected,
    DeletionRefused,
    connect_quickbooks,
    connect_xero,
    delete_now,
    disconnect,
    export_archive,
)
from app.languages import day
from app.organisations.services import may_in, organisation_for
from collect.providers import PROVIDER_NAMES, quickbooks_settings, xero_settings
from connectors.base import ConnectorError
from connectors.oauth import new_pkce_pair
from jobs.tasks import enqueue_sync
from store import clock
from store.models import Organisation

log = logging.getLogger(__name__)
blueprint = Blueprint("connections", __name__)

FLOW_KEY = "xero_oauth"
QBO_FLOW_KEY = "quickbooks_oauth"


def _redirect_uri() -> str:
    return url_for("connections.xero_callback", _external=True)


@blueprint.route("/connect/xero", methods=["POST"])
@login_required
def connect_xero_start() -> Response:
    state = secrets.token_urlsafe(32)
    verifier, challenge = new_pkce_pair()
    flows.begin(FLOW_KEY, state=state, verifier=verifier)
    return redirect(xero_settings().oauth.authorization_url(_redirect_uri(), state, challenge))


def _refused_callback(flow: dict | None, provider: str) -> tuple[str, int] | None:
    """The checks every provider's callback makes first: our `state`, then the provider's
    own error. None when the flow may go on."""
    name = PROVIDER_NAMES[provider]
    state = request.args.get("state", "")
    if not flow or not state or not secrets.compare_digest(state, flow["state"]):
        return render_template("connections/failed.html",
                               reason=_("This sign-in link has expired or was not started here. "
                                        "Please press Connect %(provider)s again.",
                                        provider=name)), 400
    if request.args.get("error"):
        reason = (_("You cancelled the connection in %(provider)s.", provider=name)
                  if request.args["error"] == "access_denied"
                  else _("%(provider)s did not authorise the connection.", provider=name))
        return render_template("connections/failed.html", reason=reason), 400
    return None


@blueprint.route("/connect/xero/callback")
@login_required
def xero_callback() -> Response | tuple[str, int]:
    flow = flows.take(FLOW_KEY)  # single use, whatever happens next
    if (refused := _refused_callback(flow, "xero")) is not None:
        return refused
    assert flow is not None
    code = request.args.get("code", "")
    if not code:
        return render_template("connections/failed.html",
                               reason=_("%(provider)s sent no code.", provider="Xero")), 400
    try:
        tokens = xero_settings().oauth.exchange_code(code, _redirect_uri(), flow["verifier"])
        organisations = connect_xero(current_user, tokens)
    except BooksAlreadyConnected as exc:
        if not exc.connected:
            return already_connected(exc)
        already_connected(exc)
        organisations = exc.connected
    except ConnectorError as exc:
        log.warning("user %s: Xero connection failed: %s", current_user.id, exc)
        return render_template("connections/failed.html",
                               reason=_("%(provider)s could not complete the connection. "
                                        "Please try again in a minute.", provider="Xero")), 502
    if not organisations:
        return render_template("connections/failed.html",
                               reason=_("No organisation was chosen in %(provider)s.",
                                        provider="Xero")), 400
    return _connected(organisations)


def already_connected(refused: BooksAlreadyConnected) -> tuple[str, int]:
    """Whom to ask, for books that belong to an organisation the person may not reconnect
    (flashed too, for when some other books of the consent were connected)."""
    reasons = [_("%(books)s is already connected to Dunwell. Only its owners and admins can "
                 "reconnect it: ask %(people)s to invite you. Your consent for it was "
                 "withdrawn.", books=refusal.books,
                 people=", ".join(refusal.ask) or _("its owner")) for refusal in refused.refusals]
    for reason in reasons:
        flash(reason, "error")
    return render_template("connections/failed.html", reason=" ".join(reasons)), 409


def _connected(organisations: list[Organisation]) -> Response:
    for org in organisations:
        enqueue_sync(org.id)
    flash(_("Connected %(names)s. The first sync has started.",
            names=", ".join(o.name for o in organisations)), "success")
    target = organisations[0] if len(organisations) == 1 else None
    if target is not None:
        return redirect(url_for("organisations.show", org_id=target.id))
    return redirect(url_for("organisations.index"))


def _qbo_redirect_uri() -> str:
    return url_for("connections.quickbooks_callback", _external=True)


@blueprint.route("/connect/quickbooks", methods=["POST"])
@login_required
def connect_quickbooks_start() -> Response | tuple[str, int]:
    state = secrets.token_urlsafe(32)
    flows.begin(QBO_FLOW_KEY, state=state)
    try:
        url = quickbooks_settings().authorization_url(_qbo_redirect_uri(), state)
    except ConnectorError as exc:
        log.warning("user %s: QuickBooks sign-in could not start: %s", current_user.id, exc)
        return render_template("connections/failed.html",
                               reason=_("%(provider)s cannot be reached just now. Please try "
                                        "again in a minute.", provider="QuickBooks")), 502
    return redirect(url)


@blueprint.route("/connect/quickbooks/callback")
@login_required
def quickbooks_callback() -> Response | tuple[str, int]:
    flow = flows.take(QBO_FLOW_KEY)  # single use, whatever happens next
    if (refused := _refused_callback(flow, "quickbooks")) is not None:
        return refused
    code, realm_id = request.args.get("code", ""), request.args.get("realmId", "")
    if not code or not realm_id.isdigit():
        return render_template("connections/failed.html",
                               reason=_("%(provider)s sent no company.",
                                        provider="QuickBooks")), 400
    try:
        settings = quickbooks_settings()
        tokens = settings.exchange_code(code, _qbo_redirect_uri(), realm_id)
        org = connect_quickbooks(current_user, tokens, realm_id)
    except BooksAlreadyConnected as exc:
        return already_connected(exc)
    except ConnectorError as exc:
        log.warning("user %s: QuickBooks connection failed: %s", current_user.id, exc)
        return render_template("connections/failed.html",
                               reason=_("%(provider)s could not complete the connection. "
                                        "Please try again in a minute.",
                                        provider="QuickBooks")), 502
    return _connected([org])


@blueprint.route("/orgs/<int:org_id>/disconnect", methods=["POST"])
@login_required
def disconnect_org(org_id: int) -> Response:
    org = organisation_for(current_user, org_id)
    if org.connection is None:
        abort(404)
    disconnect(org)
    flash(_("%(name)s is disconnected. Nothing more will be sent. Its synced data will be "
            "deleted after %(day)s unless you reconnect; you can download it until then.",
            name=org.name, day=org_day(org.connection.purge_after, org)), "success")
    return redirect(url_for("organisations.show", org_id=org.id))


@blueprint.app_template_filter("org_day")
def org_day(moment: datetime | None, org: Organisation) -> str:
    """A moment as the day it is in the organisation's zone, in the reader's language."""
    if moment is None:
        return ""
    return day(moment, org)


@blueprint.route("/orgs/<int:org_id>/connection")
@login_required
def show(org_id: int) -> str:
    """The connection, and after a disconnect: when the data goes, export, delete now."""
    org = organisation_for(current_user, org_id)
    if org.connection is None:
        abort(404)
    return render_template("connections/show.html", org=org, conn=org.connection,
                           is_owner=may_in(org, "connections.delete_data_now"))


@blueprint.route("/orgs/<int:org_id>/connection/export")
@login_required
def export(org_id: int) -> Response:
    """The owner's copy: the synced data and every action, as a ZIP download."""
    org = organisation_for(current_user, org_id)
    stamp = clock.now().strftime("%Y%m%d-%H%M%S")
    # Built in a spooled file (on disk past 8 MiB) and streamed from it; closed when sent.
    archive = tempfile.SpooledTemporaryFile(max_size=8 * 2**20)
    try:
        export_archive(org, archive)
    except BaseException:
        archive.close()
        raise
    size = archive.tell()
    archive.seek(0)
    return Response(wrap_file(request.environ, archive), mimetype="application/zip",
                    direct_passthrough=True, headers={
                        "Content-Disposition":
                            f'attachment; filename="dunwell-org-{org.id}-{stamp}.zip"',
                        "Content-Length": str(size), "X-Content-Type-Options": "nosniff"})


@blueprint.route("/orgs/<int:org_id>/connection/delete-now", methods=["POST"])
@login_required
def delete_data_now(org_id: int) -> Response:
    org = organisation_for(current_user, org_id)
    if request.form.get("confirm") != "delete":
        flash(_("Tick the box to confirm that the synced data is to be deleted now."), "error")
        return redirect(url_for("connections.show", org_id=org.id))
    try:
        delete_now(org, current_user)
    except DeletionRefused:
        flash(_("Only a disconnected book whose data is still kept can be deleted now."),
              "error")
        return redirect(url_for("connections.show", org_id=org.id))
    flash(_("The synced data of %(name)s is being deleted now.", name=org.name), "success")
    return redirect(url_for("connections.show", org_id=org.id))
