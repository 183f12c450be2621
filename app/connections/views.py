"""Connect Xero: authorization-code flow with `state` bound to the session and PKCE."""

from __future__ import annotations

import logging
import secrets

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from app.connections.services import connect_xero, disconnect
from app.organisations.services import organisation_for
from app.providers import xero_settings
from connectors.base import ConnectorError
from connectors.oauth import new_pkce_pair
from jobs.tasks import enqueue_sync

log = logging.getLogger(__name__)
blueprint = Blueprint("connections", __name__)

FLOW_KEY = "xero_oauth"


def _redirect_uri() -> str:
    return url_for("connections.xero_callback", _external=True)


@blueprint.route("/connect/xero", methods=["POST"])
@login_required
def connect_xero_start() -> Response:
    state = secrets.token_urlsafe(32)
    verifier, challenge = new_pkce_pair()
    session[FLOW_KEY] = {"state": state, "verifier": verifier}
    return redirect(xero_settings().oauth.authorization_url(_redirect_uri(), state, challenge))


@blueprint.route("/connect/xero/callback")
@login_required
def xero_callback() -> Response | tuple[str, int]:
    flow = session.pop(FLOW_KEY, None)  # single use, whatever happens next
    state = request.args.get("state", "")
    if not flow or not state or not secrets.compare_digest(state, flow["state"]):
        return render_template("connections/failed.html",
                               reason="This sign-in link has expired or was not started here. "
                                      "Please press Connect Xero again."), 400
    if request.args.get("error"):
        reason = ("You cancelled the connection in Xero."
                  if request.args["error"] == "access_denied"
                  else "Xero did not authorise the connection.")
        return render_template("connections/failed.html", reason=reason), 400
    code = request.args.get("code", "")
    if not code:
        return render_template("connections/failed.html", reason="Xero sent no code."), 400
    try:
        tokens = xero_settings().oauth.exchange_code(code, _redirect_uri(), flow["verifier"])
        organisations = connect_xero(current_user, tokens)
    except ConnectorError as exc:
        log.warning("user %s: Xero connection failed: %s", current_user.id, exc)
        return render_template("connections/failed.html",
                               reason="Xero could not complete the connection. "
                                      "Please try again in a minute."), 502
    if not organisations:
        return render_template("connections/failed.html",
                               reason="No organisation was chosen in Xero."), 400
    for org in organisations:
        enqueue_sync(org.id)
    flash(f"Connected {', '.join(o.name for o in organisations)}. The first sync has started.",
          "success")
    target = organisations[0] if len(organisations) == 1 else None
    if target is not None:
        return redirect(url_for("organisations.show", org_id=target.id))
    return redirect(url_for("organisations.index"))


@blueprint.route("/orgs/<int:org_id>/disconnect", methods=["POST"])
@login_required
def disconnect_org(org_id: int) -> Response:
    org = organisation_for(current_user, org_id)
    if org.connection is None:
        abort(404)
    disconnect(org)
    flash(f"{org.name} is disconnected. Nothing more will be sent.", "success")
    return redirect(url_for("organisations.show", org_id=org.id))
