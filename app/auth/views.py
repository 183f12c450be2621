"""Email and password sign-in."""

from __future__ import annotations

import logging

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash
from werkzeug.wrappers import Response

from app.auth.forms import SignInForm
from app.extensions import db, login_manager
from app.models import Organisation, User

log = logging.getLogger(__name__)
blueprint = Blueprint("auth", __name__)

# Compared against when the email is unknown, so both paths cost the same time.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    return db.session.get(User, int(user_id)) if user_id.isdigit() else None


def hash_password(password: str) -> str:
    return generate_password_hash(password, method="scrypt")


@blueprint.route("/signin", methods=["GET", "POST"])
def sign_in() -> str | Response:
    if current_user.is_authenticated:
        return redirect(url_for("organisations.index"))
    form = SignInForm()
    if form.validate_on_submit():
        email = form.email.data.strip().lower()
        user = db.session.scalar(select(User).where(func.lower(User.email) == email))
        if user is not None and check_password_hash(user.password_hash, form.password.data):
            session.clear()  # a fresh session on sign-in
            login_user(user)
            target = request.args.get("next", "")
            if not target.startswith("/") or target.startswith("//"):
                target = url_for("organisations.index")
            return redirect(target)
        check_password_hash(_DUMMY_HASH, form.password.data)
        flash(_("Email or password is not right."), "error")
    return render_template("auth/sign_in.html", form=form)


@blueprint.route("/signout", methods=["POST"])
@login_required
def sign_out() -> Response:
    logout_user()
    session.clear()
    return redirect(url_for("auth.sign_in"))


# -- interface language ---------------------------------------------------------------------


def _safe_next(target: str, default: str) -> str:
    target = target.rstrip("?")
    return target if target.startswith("/") and not target.startswith("//") else default


@blueprint.route("/language", methods=["POST"])
def set_language() -> Response:
    from app.languages import LANGUAGES, SESSION_KEY

    chosen = request.form.get("language", "")
    if chosen in LANGUAGES:
        session[SESSION_KEY] = chosen
    return redirect(_safe_next(request.form.get("next", ""), url_for("organisations.home")))


# -- sign up with Xero, sign in with Intuit (OpenID Connect) --------------------------------

SIGNUP_FLOW = "signup_oauth"


def _signup_failed(reason: str, status: int = 400) -> tuple[str, int]:
    return render_template("connections/failed.html", reason=reason), status


@blueprint.route("/signup/xero")
def signup_xero() -> Response:
    """Sign up (or in) with Xero: one consent names the person and connects their books."""
    import secrets

    from app.providers import xero_settings
    from connectors.oauth import new_pkce_pair

    state = secrets.token_urlsafe(32)
    verifier, challenge = new_pkce_pair()
    session[SIGNUP_FLOW] = {"state": state, "verifier": verifier, "provider": "xero"}
    return redirect(xero_settings().oauth.authorization_url(
        url_for("auth.signup_xero_callback", _external=True), state, challenge))


def _checked_flow(provider: str) -> dict | tuple[str, int]:
    import secrets

    flow = session.pop(SIGNUP_FLOW, None)  # single use
    state = request.args.get("state", "")
    if not flow or flow.get("provider") != provider or not state or \
            not secrets.compare_digest(state, flow["state"]):
        return _signup_failed("This sign-in link has expired or was not started here. "
                              "Please start again.")
    if request.args.get("error"):
        return _signup_failed("You cancelled the sign-in.")
    return flow


def _signed_up(user: User, organisations: list) -> Response:  # type: ignore[type-arg]
    from jobs.tasks import enqueue_sync

    if not current_user.is_authenticated or current_user.id != user.id:
        session.clear()
        login_user(user)
    for org in organisations:
        enqueue_sync(org.id)
    if organisations:
        flash(_("Welcome. Connected %(names)s; the first sync has started.",
                names=", ".join(o.name for o in organisations)), "success")
    if len(organisations) == 1:
        return redirect(url_for("dashboard.show", org_id=organisations[0].id))
    return redirect(url_for("organisations.index"))


@blueprint.route("/signup/xero/callback")
def signup_xero_callback() -> Response | tuple[str, int]:
    from app.auth.identity import IdentityRefused, user_for, xero_identity
    from app.connections.services import connect_xero
    from app.providers import xero_settings
    from connectors.base import ConnectorError

    flow = _checked_flow("xero")
    if isinstance(flow, tuple):
        return flow
    code = request.args.get("code", "")
    if not code:
        return _signup_failed("Xero sent no code.")
    try:
        tokens = xero_settings().oauth.exchange_code(
            code, url_for("auth.signup_xero_callback", _external=True), flow["verifier"])
        identity = xero_identity(tokens)
        user = user_for(identity, current_user if current_user.is_authenticated else None)
        organisations = connect_xero(user, tokens)  # commits the user with the books
    except IdentityRefused as exc:
        db.session.rollback()
        return _signup_failed(f"Xero sign-in refused: {exc}.", 403)
    except ConnectorError as exc:
        db.session.rollback()
        log.warning("Xero sign-up failed: %s", exc)
        return _signup_failed("Xero could not complete the sign-in. Please try again.", 502)
    return _signed_up(user, organisations)


@blueprint.route("/signin/intuit")
def signin_intuit() -> Response | tuple[str, int]:
    import secrets

    from app.auth.identity import intuit_settings
    from connectors.base import ConnectorError

    state = secrets.token_urlsafe(32)
    session[SIGNUP_FLOW] = {"state": state, "provider": "intuit"}
    try:
        url = intuit_settings().authorization_url(
            url_for("auth.signin_intuit_callback", _external=True), state)
    except ConnectorError:
        return _signup_failed("Intuit cannot be reached just now. Please try again.", 502)
    return redirect(url)


@blueprint.route("/signin/intuit/callback")
def signin_intuit_callback() -> Response | tuple[str, int]:
    from app.auth.identity import IdentityRefused, intuit_identity, intuit_settings, user_for
    from app.connections.services import connect_quickbooks
    from connectors.base import ConnectorError

    flow = _checked_flow("intuit")
    if isinstance(flow, tuple):
        return flow
    code, realm_id = request.args.get("code", ""), request.args.get("realmId", "")
    if not code or not realm_id.isdigit():
        return _signup_failed("Intuit sent no company.")
    try:
        tokens = intuit_settings().exchange_code(
            code, url_for("auth.signin_intuit_callback", _external=True), realm_id)
        identity = intuit_identity(tokens)
        user = user_for(identity, current_user if current_user.is_authenticated else None)
        org = connect_quickbooks(user, tokens, realm_id)
    except IdentityRefused as exc:
        db.session.rollback()
        return _signup_failed(f"Intuit sign-in refused: {exc}.", 403)
    except ConnectorError as exc:
        db.session.rollback()
        log.warning("Intuit sign-in failed: %s", exc)
        return _signup_failed("Intuit could not complete the sign-in. Please try again.", 502)
    return _signed_up(user, [org])


@blueprint.route("/launch/<provider>")
def marketplace_launch(provider: str) -> Response:
    """Where the Xero App Store and the Intuit App Store send a person who opens Dunwell."""
    if provider == "xero":
        return redirect(url_for("auth.signup_xero"))
    if provider in ("intuit", "quickbooks"):
        return redirect(url_for("auth.signin_intuit"))
    abort(404)


# -- invitations ----------------------------------------------------------------------------


@blueprint.route("/invitations/<token>", methods=["GET", "POST"])
def invitation(token: str) -> str | Response | tuple[str, int]:
    """Accept an invitation: signed in as the invited email, or by choosing a password."""
    from app import clock
    from app.organisations import members

    now = clock.now()
    try:
        found = members.invitation_for(token, now)
    except members.InvitationRefused as exc:
        return _signup_failed(str(exc), 404)
    org_name = db.session.get(Organisation, found.org_id).name  # type: ignore[union-attr]
    error = None
    if request.method == "POST":
        user = current_user if current_user.is_authenticated else None
        if user is None:
            existing = db.session.scalar(select(User).where(
                func.lower(User.email) == found.email))
            password = request.form.get("password", "")
            if existing is not None:
                error = "An account with this email exists: sign in first."
            elif len(password) < 12:
                error = "Choose a password of at least 12 characters."
            else:
                user = User(email=found.email, name=request.form.get("name", "")[:255],
                            password_hash=hash_password(password))
                db.session.add(user)
                db.session.flush()
        if user is not None and error is None:
            try:
                org = members.accept(found, user, now)
            except members.InvitationRefused as exc:
                error = str(exc)
            else:
                if not current_user.is_authenticated:
                    session.clear()
                    login_user(user)
                flash(_("You joined %(name)s.", name=org.name), "success")
                return redirect(url_for("organisations.show", org_id=org.id))
        db.session.rollback()
    return render_template("auth/invitation.html", invitation=found, org_name=org_name,
                           error=error)
