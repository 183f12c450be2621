"""Sign-up and sign-in with the provider's identity (OpenID Connect): who the person is comes
from the provider's id_token (Xero) or user-info endpoint (Intuit); the user, the organisation
and the connection are made in the same flow."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

import jwt
import requests
from flask import current_app
from sqlalchemy import func, select
from werkzeug.security import generate_password_hash

from store import clock
from store.db import db
from store.models import User, UserIdentity
from app.providers import quickbooks_settings
from connectors.base import ConfigurationError, TokenSet, TransientError
from connectors.quickbooks import ACCOUNTING_SCOPE, QuickBooksSettings

log = logging.getLogger(__name__)
XERO_ISSUER = "https://identity.xero.com"
ID_TOKEN_ALGORITHM = "RS256"  # the only one Xero's discovery document lists
ID_TOKEN_LEEWAY_SECONDS = 60
INTUIT_SIGN_IN_SCOPES = (ACCOUNTING_SCOPE, "openid", "email", "profile")


class IdentityRefused(ValueError):
    """The provider's answer does not prove who the person is, or they may not sign in so."""


@dataclass(frozen=True)
class Identity:
    provider: str
    subject: str
    email: str
    name: str


def xero_jwks_url() -> str:
    """XERO_JWKS_URL, or the JWKS beside the token endpoint, where Xero publishes it
    (https://identity.xero.com/.well-known/openid-configuration/jwks); the sandbox serves
    both from one origin, so a demo or test needs no extra setting."""
    config = current_app.config
    if config.get("XERO_JWKS_URL"):
        return str(config["XERO_JWKS_URL"])
    token_url = urlsplit(config["XERO_TOKEN_URL"])
    return f"{token_url.scheme}://{token_url.netloc}/.well-known/openid-configuration/jwks"


def xero_identity(tokens: TokenSet, nonce: str | None = None) -> Identity:
    """Read and check Xero's id_token as real Xero signs it: RS256 with a key from its JWKS
    (chosen by `kid`), our client id as audience, Xero as issuer, unexpired by our clock, and
    the nonce this sign-in sent. HS256, `none` and unknown keys are refused."""
    if not tokens.id_token:
        raise IdentityRefused("Xero sent no id_token (is the openid scope asked for?)")
    config = current_app.config
    try:
        if jwt.get_unverified_header(tokens.id_token).get("alg") != ID_TOKEN_ALGORITHM:
            raise IdentityRefused("Xero's id_token is not signed with RS256")
        key = jwt.PyJWKClient(xero_jwks_url(), timeout=15) \
            .get_signing_key_from_jwt(tokens.id_token).key
        # Expiry is checked below against the app's clock, not the machine's.
        claims = jwt.decode(tokens.id_token, key, algorithms=[ID_TOKEN_ALGORITHM],
                            audience=config["XERO_CLIENT_ID"], issuer=XERO_ISSUER,
                            options={"verify_exp": False, "verify_iat": False,
                                     "verify_nbf": False,
                                     "require": ["exp", "iss", "aud", "sub"]})
    except jwt.PyJWKClientConnectionError as exc:
        raise TransientError(f"Xero's keys unreachable: {type(exc).__name__}") from exc
    except jwt.PyJWTError as exc:
        raise IdentityRefused(f"Xero's id_token did not verify: {type(exc).__name__}") from exc
    if float(claims["exp"]) + ID_TOKEN_LEEWAY_SECONDS < clock.now().timestamp():
        raise IdentityRefused("Xero's id_token has expired")
    if nonce is not None and not secrets.compare_digest(str(claims.get("nonce") or ""), nonce):
        raise IdentityRefused("Xero's id_token is not for this sign-in (nonce)")
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
