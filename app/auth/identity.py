"""Sign-up and sign-in with the provider's identity (OpenID Connect): who the person is comes
from the provider's id_token (Xero) or user-info endpoint (Intuit); the user, the organisation
and the connection are made in the same flow."""

from __future__ import annotations

import logging
import secrets
from typing import Any

from sqlalchemy import func, select

from app.auth.passwords import hash_password
from collect.providers import settings_for
from connectors import registry
from connectors.base import TokenSet
from connectors.identity import Identity, IdentityRefused
from connectors.quickbooks.oauth import QuickBooksSettings
from store.db import db
from store.models import User, UserIdentity

log = logging.getLogger(__name__)


def sign_in_settings(provider: str) -> Any:
    """The settings a sign-in with the provider's identity asks with."""
    entry = registry.get(provider)
    return entry.sign_in_settings(settings_for(entry))


def identity_of(provider: str, tokens: TokenSet, nonce: str | None = None) -> Identity:
    """Who signed in, as the provider's identity tells it (checked by the provider's rules)."""
    return registry.get(provider).identity(sign_in_settings(provider), tokens, nonce)


# For the provider-specific sign-in routes (app/auth/views.py).


def xero_identity(tokens: TokenSet, nonce: str | None = None) -> Identity:
    return identity_of("xero", tokens, nonce)


def intuit_settings() -> QuickBooksSettings:
    return sign_in_settings("quickbooks")


def intuit_identity(tokens: TokenSet) -> Identity:
    return identity_of("quickbooks", tokens)


def user_for(identity: Identity, signed_in: User | None) -> User:
    """The user this identity belongs to, made on first sign-up.

    An identity already linked signs its user in. A new identity joins the person signed in
    now; otherwise it makes a new user, unless that email already has a password account:
    that account must sign in first (an email claim alone never takes over an account)."""
    session = db.session
    linked = session.scalar(select(UserIdentity).where(
        UserIdentity.provider == identity.provider, UserIdentity.subject == identity.subject))
    if linked is not None:
        user = session.get(User, linked.user_id)
        assert user is not None
        return user
    user = signed_in
    if user is None:
        existing = session.scalar(select(User).where(func.lower(User.email) == identity.email))
        if existing is not None:
            raise IdentityRefused("an account with this email exists: sign in with its "
                                  "password first, then connect")
        # No password: this person signs in through the provider.
        user = User(email=identity.email, name=identity.name,
                    password_hash=hash_password(secrets.token_urlsafe(32)))
        session.add(user)
        session.flush()
        log.info("user %s signed up with %s", user.id, identity.provider)
    session.add(UserIdentity(user_id=user.id, provider=identity.provider,
                             subject=identity.subject))
    session.flush()
    return user
