"""Sign-up and sign-in with the provider's identity (OpenID Connect): who the person is comes
from the provider's id_token (Xero) or user-info endpoint (Intuit); the user, the organisation
and the connection are made in the same flow."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, replace

import jwt
import requests
from flask import current_app
from sqlalchemy import func, select
from werkzeug.security import generate_password_hash

from app.extensions import db
from app.models import User, UserIdentity
from app.providers import quickbooks_settings
from connectors.base import ConfigurationError, TokenSet, TransientError
from connectors.quickbooks import ACCOUNTING_SCOPE, QuickBooksSettings

log = logging.getLogger(__name__)
XERO_ISSUER = "https://identity.xero.com"
INTUIT_SIGN_IN_SCOPES = (ACCOUNTING_SCOPE, "openid", "email", "profile")


class IdentityRefused(ValueError):
    """The provider's answer does not prove who the person is, or they may not sign in so."""


@dataclass(frozen=True)
class Identity:
    provider: str
    subject: str
    email: str
    name: str


def xero_identity(tokens: TokenSet) -> Identity:
    """Read and check Xero's id_token: signature, audience, issuer and lifetime."""
    if not tokens.id_token:
        raise IdentityRefused("Xero sent no id_token (is the openid scope asked for?)")
    config = current_app.config
    try:
        header = jwt.get_unverified_header(tokens.id_token)
        if header.get("alg") == "HS256":  # signed with our client secret
            key: object = config["XERO_CLIENT_SECRET"]
        else:
            key = jwt.PyJWKClient(config.get("XERO_JWKS_URL") or
                                  f"{XERO_ISSUER}/.well-known/openid-configuration/jwks"
                                  ).get_signing_key_from_jwt(tokens.id_token).key
        claims = jwt.decode(tokens.id_token, key, algorithms=["HS256", "RS256"],  # type: ignore[arg-type]
                            audience=config["XERO_CLIENT_ID"], issuer=XERO_ISSUER,
                            leeway=60, options={"verify_iat": False, "verify_nbf": False,
                                                "verify_exp": False})
    except jwt.PyJWTError as exc:
        raise IdentityRefused(f"Xero's id_token did not verify: {type(exc).__name__}") from exc
    email = str(claims.get("email") or "").strip().lower()
    if not claims.get("sub") or not email:
        raise IdentityRefused("Xero's id_token names no person")
    name = " ".join(str(claims.get(k) or "") for k in ("given_name", "family_name")).strip()
    return Identity("xero", str(claims["sub"]), email, name)


def intuit_settings() -> QuickBooksSettings:
    return replace(quickbooks_settings(), scopes=INTUIT_SIGN_IN_SCOPES)


def intuit_identity(tokens: TokenSet) -> Identity:
    """Ask Intuit's user-info endpoint (named in its discovery document) who signed in."""
    settings = intuit_settings()
    try:
        discovery = requests.get(settings.discovery_url, timeout=15)
        discovery.raise_for_status()
        answer = requests.get(discovery.json()["userinfo_endpoint"], timeout=15, headers={
            "Authorization": f"Bearer {tokens.access_token}", "Accept": "application/json"})
    except (requests.RequestException, KeyError, ValueError) as exc:
        raise TransientError(f"Intuit user info unreachable: {type(exc).__name__}") from exc
    if answer.status_code in (401, 403):
        raise ConfigurationError(f"Intuit user info refused ({answer.status_code})")
    if answer.status_code != 200:
        raise TransientError(f"Intuit user info answered {answer.status_code}")
    body = answer.json()
    email = str(body.get("email") or "").strip().lower()
    if not body.get("sub") or not email or body.get("emailVerified") is False:
        raise IdentityRefused("Intuit did not give a verified email address")
    name = " ".join(str(body.get(k) or "") for k in ("givenName", "familyName")).strip()
    return Identity("intuit", str(body["sub"]), email, name)


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
                    password_hash=generate_password_hash(secrets.token_urlsafe(32)))
        session.add(user)
        session.flush()
        log.info("user %s signed up with %s", user.id, identity.provider)
    session.add(UserIdentity(user_id=user.id, provider=identity.provider,
                             subject=identity.subject))
    session.flush()
    return user
