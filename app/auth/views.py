"""Email and password sign-in."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash
from werkzeug.wrappers import Response

from app.auth.forms import SignInForm
from app.extensions import db, login_manager
from app.models import User

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
        flash("Email or password is not right.", "error")
    return render_template("auth/sign_in.html", form=form)


@blueprint.route("/signout", methods=["POST"])
@login_required
def sign_out() -> Response:
    logout_user()
    session.clear()
    return redirect(url_for("auth.sign_in"))
