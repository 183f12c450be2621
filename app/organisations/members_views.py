"""Members, invitations and API tokens of one organisation (owners and admins manage them)."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from app.access import ROLES
from app.organisations import members
from app.organisations.services import may_in, organisation_for
from store import clock

blueprint = Blueprint("members", __name__)


def _page(org, new_link: str | None = None, new_token: str | None = None) -> str:  # type: ignore[no-untyped-def]
    return render_template(
        "members/index.html", org=org, members=members.members_of(org),
        invitations=members.pending_invitations(org, clock.now()),
        tokens=members.api_tokens_of(org), roles=ROLES, new_link=new_link,
        new_token=new_token, can_manage=may_in(org, "members.invite"))


@blueprint.route("/orgs/<int:org_id>/members")
@login_required
def index(org_id: int) -> str:
    return _page(organisation_for(current_user, org_id))


@blueprint.route("/orgs/<int:org_id>/members/invite", methods=["POST"])
@login_required
def invite(org_id: int) -> str | Response:
    org = organisation_for(current_user, org_id)
    try:
        _invitation, link, emailed = members.invite(
            org, current_user, request.form.get("email", ""), request.form.get("role", ""),
            clock.now())
    except members.InvitationRefused as exc:
        flash(str(exc), "error")
        return redirect(url_for("members.index", org_id=org.id))
    flash(_("Invitation emailed.") if emailed else
          _("Invitation made: send this link to the person."), "success")
    return _page(org, new_link=link)


@blueprint.route("/orgs/<int:org_id>/invitations/<int:invitation_id>/revoke",
                 methods=["POST"])
@login_required
def revoke_invitation(org_id: int, invitation_id: int) -> Response:
    org = organisation_for(current_user, org_id)
    try:
        withdrawn = members.revoke_invitation(org, current_user, invitation_id, clock.now())
    except LookupError:
        abort(404)
    flash(_("The invitation of %(email)s is withdrawn: its link no longer works.",
            email=withdrawn.email), "success")
    return redirect(url_for("members.index", org_id=org.id))


@blueprint.route("/orgs/<int:org_id>/members/<int:user_id>/role", methods=["POST"])
@login_required
def role(org_id: int, user_id: int) -> Response:
    org = organisation_for(current_user, org_id)
    try:
        changed = members.change_role(org, current_user, user_id, request.form.get("role", ""),
                                       clock.now())
    except LookupError:
        abort(404)
    except members.InvitationRefused as exc:
        flash(str(exc), "error")
    else:
        flash(_("%(email)s is now %(role)s.", email=changed.email, role=_(request.form["role"])),
              "success")
    return redirect(url_for("members.index", org_id=org.id))


def _member(org, user_id: int):  # type: ignore[no-untyped-def]
    """A member of this organisation and their role; 404 for anyone else."""
    found = next(((user, role) for user, role in members.members_of(org)
                  if user.id == user_id), None)
    if found is None:
        abort(404)
    return found


@blueprint.route("/orgs/<int:org_id>/members/<int:user_id>/remove", methods=["GET", "POST"])
@login_required
def remove(org_id: int, user_id: int) -> str | Response:
    """GET asks to confirm; POST (with its CSRF token) removes."""
    org = organisation_for(current_user, org_id)
    user, role = _member(org, user_id)
    if request.method == "GET":
        return render_template("members/remove.html", org=org, member=user, role=role)
    try:
        removed = members.remove_member(org, current_user, user_id, clock.now())
    except LookupError:
        abort(404)
    except members.InvitationRefused as exc:
        flash(str(exc), "error")
        return redirect(url_for("members.index", org_id=org.id))
    flash(_("%(email)s no longer has access to %(org)s.", email=removed.email, org=org.name),
          "success")
    if removed.id == current_user.id:  # one who removed themselves cannot see the page
        return redirect(url_for("organisations.index"))
    return redirect(url_for("members.index", org_id=org.id))


@blueprint.route("/orgs/<int:org_id>/api-tokens", methods=["POST"])
@login_required
def new_token(org_id: int) -> str:
    org = organisation_for(current_user, org_id)
    secret = members.new_api_token(org, current_user, request.form.get("name", ""),
                                   clock.now())
    flash(_("API token made. Copy it now: it is not shown again."), "success")
    return _page(org, new_token=secret)


@blueprint.route("/orgs/<int:org_id>/api-tokens/<int:token_id>/revoke", methods=["POST"])
@login_required
def revoke_token(org_id: int, token_id: int) -> Response:
    org = organisation_for(current_user, org_id)
    try:
        members.revoke_api_token(org, token_id, clock.now())
    except LookupError:
        abort(404)
    flash(_("API token revoked."), "success")
    return redirect(url_for("members.index", org_id=org.id))
