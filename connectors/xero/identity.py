"""Who signed in with Xero: its OpenID Connect id_token, checked as real Xero signs it."""

from __future__ import annotations

import secrets

import jwt

from connectors.base import TokenSet, TransientError
from connectors.identity import Identity, IdentityRefused
from connectors.xero.oauth import XeroSettings

XERO_ISSUER = "https://identity.xero.com"
ID_TOKEN_ALGORITHM = "RS256"  # the only one Xero's discovery document lists
ID_TOKEN_LEEWAY_SECONDS = 60


def xero_identity(settings: XeroSettings, tokens: TokenSet, nonce: str | None = None
                  ) -> Identity:
    """Read and check Xero's id_token as real Xero signs it: RS256 with a key from its JWKS
    (chosen by `kid`), our client id as audience, Xero as issuer, unexpired by our clock, and
    the nonce this sign-in sent. HS256, `none` and unknown keys are refused."""
    if not tokens.id_token:
        raise IdentityRefused("Xero sent no id_token (is the openid scope asked for?)")
    try:
        if jwt.get_unverified_header(tokens.id_token).get("alg") != ID_TOKEN_ALGORITHM:
            raise IdentityRefused("Xero's id_token is not signed with RS256")
        key = jwt.PyJWKClient(settings.keys_url(), timeout=15) \
            .get_signing_key_from_jwt(tokens.id_token).key
        # Expiry is checked below against the app's clock, not the machine's.
        claims = jwt.decode(tokens.id_token, key, algorithms=[ID_TOKEN_ALGORITHM],
                            audience=settings.oauth.client_id, issuer=XERO_ISSUER,
                            options={"verify_exp": False, "verify_iat": False,
                                     "verify_nbf": False,
                                     "require": ["exp", "iss", "aud", "sub"]})
    except jwt.PyJWKClientConnectionError as exc:
        raise TransientError(f"Xero's keys unreachable: {type(exc).__name__}") from exc
    except jwt.PyJWTError as exc:
        raise IdentityRefused(f"Xero's id_token did not verify: {type(exc).__name__}") from exc
    if float(claims["exp"]) + ID_TOKEN_LEEWAY_SECONDS < settings.oauth.clock().timestamp():
        raise IdentityRefused("Xero's id_token has expired")
    if nonce is not None and not secrets.compare_digest(str(claims.get("nonce") or ""), nonce):
        raise IdentityRefused("Xero's id_token is not for this sign-in (nonce)")
    email = str(claims.get("email") or "").strip().lower()
    if not claims.get("sub") or not email:
        raise IdentityRefused("Xero's id_token names no person")
    name = " ".join(str(claims.get(k) or "") for k in ("given_name", "family_name")).strip()
    return Identity("xero", str(claims["sub"]), email, name)
