"""Revocable sessions. The signed cookie alone cannot be taken back (a copy works until it
expires), so each sign-in makes a row whose secret the cookie carries, and the user loader
accepts the cookie only while that row is open. Sign-out ends the row; a password change, or
losing the last membership, ends every row of the person.

Sessions live in real time, as the signed cookie that carries them does (its signature's age
is read from the system clock): a test's or the demo's clock, which may jump days ahead to
reach a due date, does not sign anyone out."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime

from flask import current_app, session
from flask_login import login_user
from sqlalchemy import select, update

from app.languages import SESSION_KEY as LANGUAGE_KEY
from app.languages import negotiated_language
from store.db import db
from store.models import User, UserSession

SESSION_KEY = "sid"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def start_session(user: User) -> None:
    """Sign `user` in on a fresh session (whatever the cookie held before is dropped). A
    person without a language yet gets the one their pages are shown in (their browser's,
    or the one they picked before signing in), so Dunwell's emails to them are written in
    it; a language they chose is never replaced. The pages then follow the person's language
    (kept where the switcher keeps its pick), not this browser's, so pages and emails agree."""
    if user.language is None:
        user.language = negotiated_language()
    secret = secrets.token_urlsafe(32)
    db.session.add(UserSession(user_id=user.id, token_hash=_digest(secret),
                               created_at=datetime.now(UTC)))
    db.session.commit()
    session.clear()
    session[SESSION_KEY] = secret
    if user.language is not None:
        session[LANGUAGE_KEY] = user.language
    login_user(user)


def user_of_session(user_id: str) -> User | None:
    """The user the cookie names, if its session row is open and not older than the session
    lifetime; None signs the cookie's holder out."""
    secret = session.get(SESSION_KEY)
    if not user_id.isdigit() or len(user_id) > 18 or not isinstance(secret, str):
        return None
    oldest = datetime.now(UTC) - current_app.permanent_session_lifetime
    return db.session.scalar(
        select(User).join(UserSession, UserSession.user_id == User.id)
        .where(User.id == int(user_id), UserSession.token_hash == _digest(secret),
               UserSession.ended_at.is_(None), UserSession.created_at > oldest))


def end_this_session() -> None:
    secret = session.get(SESSION_KEY)
    if isinstance(secret, str):
        db.session.execute(update(UserSession).where(
            UserSession.token_hash == _digest(secret), UserSession.ended_at.is_(None))
            .values(ended_at=datetime.now(UTC)))
        db.session.commit()
    session.clear()


def end_every_session(user_id: int) -> int:
    """End all of a person's sessions (the caller commits); how many were open."""
    result = db.session.execute(update(UserSession).where(
        UserSession.user_id == user_id, UserSession.ended_at.is_(None))
        .values(ended_at=datetime.now(UTC)))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
