"""Intuit's sign-in (OAuth 2.0 and OpenID Connect) on the shared sign-in server: consent to one
company, refresh tokens usable again for a grace after their first use, revocation of a whole
consent; id_tokens, the discovery document, keys and user info; and which consent an access
token is of."""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Response, request
from werkzeug.datastructures import MultiDict

from sandboxes.quickbooks.config import CACHE_CONTROL
from sandboxes.quickbooks.context import current
from sandboxes.signin import Choice, Consented, ConsentLook, SignInServer, new_secret
from sandboxes.wire import json_response as _json

if TYPE_CHECKING:
    from sandboxes.quickbooks.sandbox import QuickBooksSandbox

SCOPES = ("com.intuit.quickbooks.accounting", "com.intuit.quickbooks.payment", "openid",
          "profile", "email", "phone", "address", "intuit_name")


@dataclass
class Consent:
    consent_id: str
    client_id: str
    realm_id: str
    scope: str
    created: datetime
    revoked: bool = False


@dataclass
class RefreshToken:
    consent_id: str
    client_id: str
    issued: datetime
    expires: datetime
    first_used: datetime | None = None


@lru_cache(maxsize=1)
def _signing_key() -> tuple[rsa.RSAPrivateKey, str, dict[str, Any]]:
    """One RSA key per process: id_tokens are signed with it and jwks_uri publishes it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    numbers = key.public_key().public_numbers()

    def b64(number: int) -> str:
        raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    kid = hashlib.sha256(b64(numbers.n).encode()).hexdigest()[:20]
    jwk = {"kty": "RSA", "e": b64(numbers.e), "use": "sig", "kid": kid, "alg": "RS256",
           "n": b64(numbers.n)}
    return key, kid, jwk


class IntuitSignIn(SignInServer):
    """appcenter.intuit.com's consent, oauth.platform.intuit.com's tokens and
    developer.api.intuit.com's revocation."""

    authorize_path = "/connect/oauth2"
    token_path = "/oauth2/v1/tokens/bearer"
    revoke_path = "/v2/oauth2/tokens/revoke"
    authorize_fields = ("client_id", "response_type", "scope", "redirect_uri", "state")
    cache_control = CACHE_CONTROL
    unknown_client_page = "<h1>invalid_client</h1><p>The client_id is not known.</p>"
    unregistered_redirect_page = ("<h1>invalid_request</h1><p>The redirect_uri is not "
                                  "registered for this app.</p>")
    look = ConsentLook(
        title="QuickBooks sandbox: connect an app", background="#f4f5f8", color="#393a3d",
        width=480, radius=8, choice_class="company", button_padding=18, button_radius=4,
        brand="#2ca01c", masthead="<strong>intuit</strong> QuickBooks (sandbox)",
        asks="wants to connect to your QuickBooks company",
        prompt="Choose the company to connect:", allow="Connect", error_apart=False)
    choice_kind = "radio"
    choice_field = "realmId"

    def sandbox(self) -> QuickBooksSandbox:
        return current()

    def refusal(self, args: dict[str, str]) -> str | None:
        scopes = args["scope"].split()
        if not scopes or any(s not in SCOPES for s in scopes):
            return "invalid_scope"
        return None

    def choices(self, box: QuickBooksSandbox) -> Iterable[Choice]:
        return [Choice(c.realm_id, c.name, c.country, c.currency)
                for c in box.companies_by_id.values()]

    def consent(self, box: QuickBooksSandbox, args: dict[str, str],
                chosen: MultiDict[str, str]) -> Consented | str:
        realm = chosen.get("realmId", "")
        if realm not in box.companies_by_id:
            return "Choose a company."
        consent = Consent(str(uuid.uuid4()), args["client_id"], realm, args["scope"],
                          box.now)
        box.consents[consent.consent_id] = consent
        return Consented({"consent_id": consent.consent_id}, {"realmId": realm})

    def new_code(self) -> str:
        return new_secret("AB11", 30)

    def code_seconds(self, box: QuickBooksSandbox) -> int:
        return box.config.code_seconds

    def redeem(self, box: QuickBooksSandbox, code: dict[str, Any],
               client_id: str) -> dict[str, Any] | None:
        consent = box.consents.get(code["consent_id"])
        if consent is None or consent.revoked:
            return None
        return issue(box, consent)

    def refresh(self, box: QuickBooksSandbox, token: str,
                client_id: str) -> dict[str, Any] | None:
        """Each use answers a new pair; the token itself works on for the grace after its
        first use (UNVERIFIED), within its consent's lifetime."""
        now = box.now
        record = box.refresh_tokens.get(token)
        consent = box.consents.get(record.consent_id) if record else None
        if record is None or consent is None or consent.revoked or \
                record.client_id != client_id or record.expires <= now:
            return None
        if record.first_used is not None and \
                now > record.first_used + timedelta(seconds=box.config.refresh_grace_seconds):
            return None
        if record.first_used is None:
            record.first_used = now
        return issue(box, consent)

    def revocation_token(self) -> str | None:
        """The token, from a JSON body or the form; none is invalid_request."""
        payload = request.get_json(silent=True, force=True)
        given = ""
        if isinstance(payload, dict):
            given = str(payload.get("token") or "")
        return given or request.form.get("token", "") or None

    def revoke(self, box: QuickBooksSandbox, token: str, client_id: str) -> None:
        """Revoking any token of a consent (access or refresh) ends the whole consent."""
        consent_id = None
        if token in box.refresh_tokens:
            consent_id = box.refresh_tokens[token].consent_id
        elif token in box.access_tokens:
            consent_id = box.access_tokens[token]["consent_id"]
        consent = box.consents.get(consent_id or "")
        if consent is not None and consent.client_id == client_id:
            consent.revoked = True


SIGN_IN = IntuitSignIn()
bp = SIGN_IN.blueprint("quickbooks_oauth", __name__)


def issuer() -> str:
    return f"{request.host_url}op/v1"


@bp.get("/.well-known/openid_configuration")
@bp.get("/.well-known/openid_configuration/")
@bp.get("/.well-known/openid_sandbox_configuration")
@bp.get("/.well-known/openid_sandbox_configuration/")
def discovery() -> Response:
    base = request.host_url.rstrip("/")
    return _json({
        "issuer": issuer(),
        "authorization_endpoint": f"{base}/connect/oauth2",
        "token_endpoint": f"{base}/oauth2/v1/tokens/bearer",
        "userinfo_endpoint": f"{base}/v1/openid_connect/userinfo",
        "revocation_endpoint": f"{base}/v2/oauth2/tokens/revoke",
        "jwks_uri": f"{base}/oauth2/v1/jwks",
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "email", "profile", "address", "phone"],
        "token_endpoint_auth_methods_supported": ["client_secret_post",
                                                  "client_secret_basic"],
        "claims_supported": ["aud", "exp", "iat", "iss", "realmid", "sub"]})


@bp.get("/oauth2/v1/jwks")
def jwks() -> Response:
    return _json({"keys": [_signing_key()[2]]})


def issue(box: QuickBooksSandbox, consent: Consent) -> dict[str, Any]:
    cfg = box.config
    now = box.now
    access = ("eyJlbmMiOiJBMTI4Q0JDLUhTMjU2IiwiYWxnIjoiZGlyIn0.."
              + secrets.token_urlsafe(96))
    box.access_tokens[access] = {
        "consent_id": consent.consent_id,
        "expires_at": now + timedelta(seconds=cfg.access_token_seconds)}
    expires = min(now + timedelta(days=cfg.refresh_token_days),
                  consent.created + timedelta(days=cfg.consent_max_days))
    refresh = "AB11" + str(int(now.timestamp()) + cfg.refresh_token_days * 86400) + \
        secrets.token_urlsafe(24)
    box.refresh_tokens[refresh] = RefreshToken(consent.consent_id, consent.client_id, now,
                                               expires)
    answer: dict[str, Any] = {
        "token_type": "bearer", "access_token": access, "refresh_token": refresh,
        "expires_in": cfg.access_token_seconds,
        "x_refresh_token_expires_in": max(0, int((expires - now).total_seconds()))}
    if "openid" in consent.scope.split():
        answer["id_token"] = id_token(box, consent)
    return answer


def id_token(box: QuickBooksSandbox, consent: Consent) -> str:
    key, kid, _ = _signing_key()
    issued = int(box.now.timestamp())
    claims = {"sub": box.user_sub, "aud": [consent.client_id],
              "realmid": consent.realm_id, "auth_time": int(consent.created.timestamp()),
              "iss": issuer(), "exp": issued + 3600, "iat": issued}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def live_token(box: QuickBooksSandbox) -> tuple[dict[str, Any], Consent] | str:
    """The access token the call carries and its consent, or why neither is good."""
    header = request.headers.get("Authorization", "")
    value = header[7:].strip() if header[:7].lower() == "bearer " else ""
    found = box.access_tokens.get(value)
    if found is None:
        return "Malformed bearer token: too short or too long" if value else \
            "Token validation failed: no bearer token"
    consent = box.consents.get(found["consent_id"])
    if consent is None or consent.revoked:
        return "Token revoked"
    if found["expires_at"] <= box.now:
        return f"Token expired: {value[:12]}..."
    return found, consent


@bp.get("/v1/openid_connect/userinfo")
def userinfo() -> Response:
    box = current()
    cfg = box.config
    with box.lock:
        found = live_token(box)
        if isinstance(found, str):
            return _json({"error": "invalid_token", "error_description": found}, 401,
                         {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        scopes = found[1].scope.split()
    if "openid" not in scopes:
        return _json({"error": "insufficient_scope"}, 403)
    body: dict[str, Any] = {"sub": box.user_sub}
    if "email" in scopes:
        body |= {"email": cfg.owner_email, "emailVerified": True}
    if "profile" in scopes:
        body |= {"givenName": cfg.owner_given_name, "familyName": cfg.owner_family_name}
    if "phone" in scopes:
        body |= {"phoneNumber": "+1 6505550100", "phoneNumberVerified": False}
    if "address" in scopes:
        body |= {"address": {"streetAddress": "2700 Coast Ave", "locality":
                             "Mountain View", "region": "CA", "postalCode": "94043",
                             "country": "US"}}
    return _json(body)
