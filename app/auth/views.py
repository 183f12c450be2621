"""Email and password sign-in."""

from __future__ import annotations

import hashlib
import logging
import secrets

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required, logout_user
from itsdangerous import BadData, URLSafeTimedSerializer
from redis.exceptions import RedisError
from sqlalchemy import func, select
from werkzeug.security import check_password_hash
from werkzeug.wrappers import Response

from app.auth import flows
from app.auth.forms import NewPasswordForm, ResetRequestForm, SignInForm
from app.auth.identity import (
    IdentityRefused,
    intuit_identity,
    intuit_settings,
    user_for,
    xero_identity,
)
from app.auth.passwords import check_no_password, hash_password
from app.auth.sessions import (
    end_every_session,
    end_this_session,
    start_session,
    user_of_session,
)
from app.connections.services import BooksAlreadyConnected, connect_quickbooks, connect_xero
from app.connections.views import already_connected
from app.extensions import login_manager
from app.languages import LANGUAGES, SESSION_KEY
from app.organisations import members
from app.security import count_in_window, same_origin_path
from collect.mail import send_email
from collect.providers import xero_settings
from connectors import registry
from connectors.base import ConfigurationError, ConnectorError, TransientError
from connectors.oauth import new_pkce_pair
from jobs.tasks import enqueue_sync
from store import clock
from store.db import db
from store.models import Organisation, User

log = logging.getLogger(__name__)
blueprint = Blueprint("auth", __name__)


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    return user_of_session(user_id)


@blueprint.route("/signin", methods=["GET", "POST"])
def sign_in() -> str | Response:
    if current_user.is_authenticated:
        return redirect(url_for("organisations.index"))
    form = SignInForm()
    if form.validate_on_submit():
        email = form.email.data.strip().lower()
        user = db.session.scalar(select(User).where(func.lower(User.email) == email))
        if user is not None and check_password_hash(user.password_hash, form.password.data):
            start_session(user)  # a fresh session on sign-in
            return redirect(same_origin_path(request.args.get("next", ""),
                                             url_for("organisations.index")))
        check_no_password(form.password.data)
        flash(_("Email or password is not right."), "error")
    return render_template("auth/sign_in.html", form=form)


@blueprint.route("/signout", methods=["POST"])
@login_required
def sign_out() -> Response:
    end_this_session()  # a copy of the cookie no longer works either
    logout_user()
    session.clear()
    return redirect(url_for("auth.sign_in"))


# -- password reset -------------------------------------------------------------------------

RESET_SECONDS = 3600
RESET_SALT = "password-reset"


def _reset_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt=RESET_SALT)  # type: ignore[arg-type]


def _password_mark(user: User) -> str:
    """Part of the link: a new password changes it, so a link works once."""
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def reset_link(user: User) -> str:
    token = _reset_serializer().dumps({"u": user.id, "m": _password_mark(user)})
    return url_for("auth.reset_password", token=token, _external=True)


def _user_of_reset(token: str) -> User | None:
    try:
        data = _reset_serializer().loads(
            token, max_age=int(current_app.config.get("PASSWORD_RESET_SECONDS", RESET_SECONDS)))
    except BadData:
        return None
    user = db.session.get(User, data.get("u")) if isinstance(data, dict) and \
        isinstance(data.get("u"), int) else None
    if user is None or not secrets.compare_digest(str(data.get("m")), _password_mark(user)):
        return None
    return user


def _email_reset_link(app: Flask, user_id: int) -> None:
    """Sent after the answer has gone, so that its time says nothing about the address."""

    with app.app_context(), app.test_request_context(base_url=app.config["BASE_URL"]):
        user = db.session.get(User, user_id)
        if user is None:
            return
        try:
            send_email(to=user.email, subject=_("Choose a new Dunwell password"),
                       text=_("Someone asked to choose a new password for this address on "
                              "Dunwell. If it was you, open this link within an hour (it "
                              "works once):\n\n%(link)s\n\nIf it was not you, ignore this "
                              "email: your password stays as it is.\n", link=reset_link(user)),
                       html=None, sender_name="Dunwell",
                       action_key=f"password-reset:{user.id}:{secrets.token_hex(8)}")
        except (ConfigurationError, TransientError) as exc:
            log.warning("user %s: password reset link not emailed (%s)", user_id, exc)
        finally:
            db.session.remove()


RESET_MAILS_PER_HOUR = 3  # per address: enough for a lost mail, too few to flood an inbox


def _reset_mail_allowed(email: str) -> bool:
    """At most RESET_MAILS_PER_HOUR links an hour to one address (Redis down: sent)."""
    key = "password-reset:" + hashlib.sha256(email.encode()).hexdigest()[:32]
    try:
        [count] = count_in_window([key], 3600)
    except RedisError:
        log.warning("password reset limit not checked: Redis unavailable")
        return True
    return count <= RESET_MAILS_PER_HOUR


@blueprint.route("/password-reset", methods=["GET", "POST"])
def reset_request() -> str | Response:
    """Ask for a link. The answer is the same whether or not the address has an account."""
    form = ResetRequestForm()
    if form.validate_on_submit():
        email = form.email.data.strip().lower()
        user_id = db.session.scalar(select(User.id).where(func.lower(User.email) == email))
        flash(_("If %(email)s has an account, a link to choose a new password is on its way. "
                "It works once, within an hour.", email=email), "success")
        answer = redirect(url_for("auth.sign_in"))
        if user_id is not None and _reset_mail_allowed(email):
            app = current_app._get_current_object()  # type: ignore[attr-defined]
            answer.call_on_close(lambda: _email_reset_link(app, user_id))
        return answer
    return render_template("auth/reset_request.html", form=form)


@blueprint.route("/password-reset/<token>", methods=["GET", "POST"])
def reset_password(token: str) -> str | Response | tuple[str, int]:

    user = _user_of_reset(token)
    if user is None:
        return _signup_failed(_("This link has expired or was already used. Please ask for "
                                "a new one."), 404)
    form = NewPasswordForm()
    if form.validate_on_submit():
        user.password_hash = hash_password(form.password.data)
        ended = end_every_session(user.id)
        db.session.commit()
        log.info("user %s: password changed by reset link, %d session(s) ended", user.id, ended)
        if current_user.is_authenticated:
            logout_user()
        session.clear()
        flash(_("Your password is changed and every session is signed out. Please sign in."),
              "success")
        return redirect(url_for("auth.sign_in"))
    return render_template("auth/reset_password.html", form=form)


# -- interface language ---------------------------------------------------------------------


@blueprint.route("/language", methods=["POST"])
def set_language() -> Response:

    chosen = request.form.get("language", "")
    if chosen in LANGUAGES:
        session[SESSION_KEY] = chosen
        if current_user.is_authenticated:  # what Dunwell emails them follows it too
            current_user.language = chosen
            db.session.commit()
    return redirect(same_origin_path(request.form.get("next", "").rstrip("?"),
                                     url_for("organisations.home")))


# -- sign up with Xero, sign in with Intuit (OpenID Connect) --------------------------------

SIGNUP_FLOW = "signup_oauth"


def _signup_failed(reason: str, status: int = 400) -> tuple[str, int]:
    return render_template("connections/failed.html", reason=reason), status


@blueprint.route("/signup/xero")
def signup_xero() -> Response:
    """Sign up (or in) with Xero: one consent names the person and connects their books."""
    state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    verifier, challenge = new_pkce_pair()
    flows.begin(SIGNUP_FLOW, state=state, verifier=verifier, provider="xero", nonce=nonce)
    return redirect(xero_settings().oauth.authorization_url(
        url_for("auth.signup_xero_callback", _external=True), state, challenge, nonce))


def _checked_flow(provider: str) -> dict | tuple[str, int]:
    flow = flows.take(SIGNUP_FLOW)  # single use
    state = request.args.get("state", "")
    if not flow or flow.get("provider") != provider or not state or \
            not secrets.compare_digest(state, flow["state"]):
        return _signup_failed("This sign-in link has expired or was not started here. "
                              "Please start again.")
    if request.args.get("error"):
        return _signup_failed("You cancelled the sign-in.")
    return flow


def _signed_up(user: User, organisations: list) -> Response:  # type: ignore[type-arg]

    if not current_user.is_authenticated or current_user.id != user.id:
        start_session(user)
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

    flow = _checked_flow("xero")
    if isinstance(flow, tuple):
        return flow
    code = request.args.get("code", "")
    if not code:
        return _signup_failed("Xero sent no code.")
    try:
        tokens = xero_settings().oauth.exchange_code(
            code, url_for("auth.signup_xero_callback", _external=True), flow["verifier"])
        identity = xero_identity(tokens, flow.get("nonce", ""))
        user = user_for(identity, current_user if current_user.is_authenticated else None)
        organisations = connect_xero(user, tokens)  # commits the user with the books
    except BooksAlreadyConnected as exc:
        already_connected(exc)  # the person is signed in; the books stay with their owners
        organisations = exc.connected
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
    state = secrets.token_urlsafe(32)
    flows.begin(SIGNUP_FLOW, state=state, provider="intuit")
    try:
        url = intuit_settings().authorization_url(
            url_for("auth.signin_intuit_callback", _external=True), state)
    except ConnectorError:
        return _signup_failed("Intuit cannot be reached just now. Please try again.", 502)
    return redirect(url)


@blueprint.route("/signin/intuit/callback")
def signin_intuit_callback() -> Response | tuple[str, int]:

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
    except BooksAlreadyConnected as exc:
        already_connected(exc)
        return _signed_up(user, [])
    except IdentityRefused as exc:
        db.session.rollback()
        return _signup_failed(f"Intuit sign-in refused: {exc}.", 403)
    except ConnectorError as exc:
        db.session.rollback()
        log.warning("Intuit sign-in failed: %s", exc)
        return _signup_failed("Intuit could not complete the sign-in. Please try again.", 502)
    return _signed_up(user, [org])


# Each provider's sign-up (or sign-in) route above, by the provider's name.
SIGN_UP_VIEWS = {"xero": "auth.signup_xero", "quickbooks": "auth.signin_intuit"}


@blueprint.route("/launch/<provider>")
def marketplace_launch(provider: str) -> Response:
    """Where the Xero App Store and the Intuit App Store send a person who opens Dunwell: by
    the provider's name or its identity's (/launch/intuit)."""
    for entry in registry.all():
        if provider in (entry.name, entry.identity_name):
            return redirect(url_for(SIGN_UP_VIEWS[entry.name]))
    abort(404)


# -- invitations ----------------------------------------------------------------------------


@blueprint.route("/invitations/<token>", methods=["GET", "POST"])
def invitation(token: str) -> str | Response | tuple[str, int]:
    """Accept an invitation: signed in as the invited email, or by choosing a password."""

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
                    start_session(user)
                flash(_("You joined %(name)s.", name=org.name), "success")
                return redirect(url_for("organisations.show", org_id=org.id))
        db.session.rollback()
    return render_template("auth/invitation.html", invitation=found, org_name=org_name,
                           error=error)
