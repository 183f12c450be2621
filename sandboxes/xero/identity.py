"""Xero's sign-in (OAuth 2.0 and OpenID Connect) on the shared sign-in server: consent to
organisations (auth events), PKCE, rotating refresh tokens with Xero's 30-minute grace for a
lost answer, revocation; its JWT access tokens and id_tokens, the discovery document and its
keys; and which access token a call carries."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from flask import Response, request
from werkzeug.datastructures import MultiDict

from sandboxes.signin import Choice, Consented, ConsentLook, SignInServer, new_secret
from sandboxes.wire import json_response as _json
from sandboxes.xero.books import RefreshToken
from sandboxes.xero.context import current
from sandboxes.xero.errors import ApiError

if TYPE_CHECKING:
    from sandboxes.xero.sandbox import XeroSandbox

XERO_ISSUER = "https://identity.xero.com"
SANDBOX_USER_SUB = "4a5c2b1e00004000800000000000000a"
SANDBOX_XERO_USERID = "4a5c2b1e-0000-4000-8000-000000000001"
ID_TOKEN_SECONDS = 300  # UNVERIFIED: Xero's id_token lifetime is not published
CODE_SECONDS = 300


class XeroSignIn(SignInServer):
    """login.xero.com's authorize and identity.xero.com's token and revocation endpoints."""

    authorize_path = "/identity/connect/authorize"
    token_path = "/connect/token"
    revoke_path = "/connect/revocation"
    authorize_fields = ("response_type", "client_id", "redirect_uri", "scope", "state",
                        "code_challenge", "code_challenge_method", "nonce")
    cache_control = "no-store"
    unknown_client_page = "<h1>unauthorized_client</h1><p>Unknown client_id.</p>"
    unregistered_redirect_page = ("<h1>invalid_request</h1><p>Invalid redirect_uri: it is not "
                                  "registered for this app.</p>")
    look = ConsentLook(
        title="Xero sandbox: allow access", background="#f2f5f8", color="#1c2b39", width=460,
        radius=10, choice_class="tenant", button_padding=16, button_radius=6, brand="#13b5ea",
        masthead="<strong>Xero</strong> (sandbox)", asks="wants to access your Xero data",
        prompt="Choose the organisations it may use:", allow="Allow access", error_apart=True)
    choice_kind = "checkbox"
    choice_field = "tenant"

    def sandbox(self) -> XeroSandbox:
        return current()

    def refusal(self, args: dict[str, str]) -> str | None:
        if args["code_challenge"] and args["code_challenge_method"] != "S256":
            return "invalid_request"
        return None

    def choices(self, box: XeroSandbox) -> Iterable[Choice]:
        return [Choice(t.tenant_id, t.name, t.country, t.base_currency)
                for t in box.tenants_by_id.values()]

    def consent(self, box: XeroSandbox, args: dict[str, str],
                chosen: MultiDict[str, str]) -> Consented | str:
        tenants = list(dict.fromkeys(t for t in chosen.getlist("tenant")
                                     if t in box.tenants_by_id))
        if not tenants:
            return "Choose at least one organisation."
        return Consented({"auth_event_id": box.consent(args["client_id"], tenants)},
                         {"scope": args["scope"]})

    def new_code(self) -> str:
        return new_secret("", 32)

    def code_seconds(self, box: XeroSandbox) -> int:
        return CODE_SECONDS

    def redeem(self, box: XeroSandbox, code: dict[str, Any],
               client_id: str) -> dict[str, Any] | None:
        if code["code_challenge"]:
            verifier = request.form.get("code_verifier", "").encode()
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest())
            if not hmac.compare_digest(digest.rstrip(b"="), code["code_challenge"].encode()):
                return None
        if code["auth_event_id"] not in box.auth_events:
            return None
        return issue_tokens(box, code["auth_event_id"], client_id, code["scope"], code["nonce"])

    def refresh(self, box: XeroSandbox, token: str, client_id: str) -> dict[str, Any] | None:
        """Single use, rotating; within the grace after its use it answers what its use did
        (the answer was lost), after that never again."""
        cfg = box.config
        record = box.refresh_tokens.get(token)
        if record is None or record.revoked or record.client_id != client_id \
                or record.auth_event_id not in box.auth_events:
            return None
        if record.rotated_at is not None:
            grace = record.rotated_at + timedelta(seconds=cfg.refresh_grace_seconds)
            if box.now <= grace and record.answer is not None:
                return record.answer  # a lost answer, asked for again
            return None
        if record.issued + timedelta(days=cfg.refresh_token_days) < box.now:
            return None
        answer = issue_tokens(box, record.auth_event_id, client_id, record.scope)
        record.rotated_at, record.answer = box.now, answer
        return answer

    def revocation_token(self) -> str | None:
        return request.form.get("token", "")

    def revoke(self, box: XeroSandbox, token: str, client_id: str) -> None:
        """A refresh token's revocation ends its auth event: every token of it, and its
        connections."""
        record = box.refresh_tokens.get(token)
        if record is not None and record.client_id == client_id:
            event = record.auth_event_id
            for other in box.refresh_tokens.values():
                if other.auth_event_id == event:
                    other.revoked = True
            for access in [k for k, v in box.access_tokens.items()
                           if v["auth_event_id"] == event]:
                del box.access_tokens[access]
            box.auth_events.pop(event, None)


SIGN_IN = XeroSignIn()
bp = SIGN_IN.blueprint("xero_identity", __name__)


def issue_tokens(box: XeroSandbox, auth_event_id: str, client_id: str, scope: str,
                 nonce: str = "") -> dict[str, Any]:
    cfg = box.config
    issued = int(box.now.timestamp())
    signed_in = int(box.auth_events[auth_event_id].get("auth_time", box.now).timestamp())
    expires = box.now + timedelta(seconds=cfg.access_token_seconds)
    # Xero's access tokens are RS256 JWTs an app may read: authentication_event_id is how it
    # tells which tenants a consent added (github.com/XeroAPI/xero-node/issues/474,
    # github.com/XeroAPI/xero-php-oauth2/issues/18). UNVERIFIED: the exact claim set.
    access = box.signing_keys.sign({
        "nbf": issued, "exp": int(expires.timestamp()), "iss": XERO_ISSUER,
        "aud": f"{XERO_ISSUER}/resources", "client_id": client_id, "sub": SANDBOX_USER_SUB,
        "auth_time": signed_in, "xero_userid": SANDBOX_XERO_USERID,
        "global_session_id": auth_event_id.replace("-", ""), "jti": secrets.token_hex(16),
        "authentication_event_id": auth_event_id, "scope": scope.split()})
    refresh = secrets.token_urlsafe(48)
    box.access_tokens[access] = {
        "auth_event_id": auth_event_id, "client_id": client_id, "expires_at": expires}
    box.refresh_tokens[refresh] = RefreshToken(auth_event_id, client_id, scope, box.now)
    answer: dict[str, Any] = {"access_token": access,
                              "expires_in": cfg.access_token_seconds,
                              "token_type": "Bearer", "refresh_token": refresh,
                              "scope": scope}
    if "openid" in scope.split():
        answer = {"id_token": id_token(box, client_id, auth_event_id, nonce), **answer}
    return answer


def id_token(box: XeroSandbox, client_id: str, auth_event_id: str, nonce: str) -> str:
    issued = int(box.now.timestamp())
    claims: dict[str, Any] = {
        "iss": XERO_ISSUER, "aud": client_id, "sub": SANDBOX_USER_SUB,
        "email": "owner@example.com", "given_name": "Sandbox", "family_name": "Owner",
        "xero_userid": SANDBOX_XERO_USERID,
        "global_session_id": auth_event_id.replace("-", ""),
        "authentication_event_id": auth_event_id,
        "iat": issued, "nbf": issued, "exp": issued + ID_TOKEN_SECONDS,
        "auth_time": int(box.auth_events[auth_event_id].get("auth_time", box.now)
                         .timestamp())}
    if nonce:
        claims["nonce"] = nonce
    return box.signing_keys.sign(claims)


@bp.get("/.well-known/openid-configuration")
def openid_configuration() -> Response:
    """Xero's discovery document, its endpoints pointing at this sandbox; `issuer` is
    Xero's own, as the id_tokens say."""
    base = request.host_url.rstrip("/")
    return _json({
        "issuer": XERO_ISSUER,
        "jwks_uri": f"{base}/.well-known/openid-configuration/jwks",
        "authorization_endpoint": f"{base}/identity/connect/authorize",
        "token_endpoint": f"{base}/connect/token",
        "revocation_endpoint": f"{base}/connect/revocation",
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic",
                                                  "client_secret_post"],
        "claims_supported": ["sub", "email", "given_name", "family_name", "xero_userid",
                             "global_session_id", "authentication_event_id", "nonce"],
    })


@bp.get("/.well-known/openid-configuration/jwks")
def jwks() -> Response:
    box = current()
    return _json(box.signing_keys.jwks())


def bearer(box: XeroSandbox) -> dict[str, Any]:
    """The access token the call carries, if it is live; else Xero's 401."""
    header = request.headers.get("Authorization", "")
    token = box.access_tokens.get(header[7:] if header[:7].lower() == "bearer " else "")
    if token is None or token["expires_at"] <= box.now or \
            token["auth_event_id"] not in box.auth_events:
        raise ApiError(401, {"Type": None, "Title": "Unauthorized", "Status": 401,
                             "Detail": "AuthenticationUnsuccessful",
                             "Instance": str(uuid.uuid4()), "Extensions": {}},
                       {"WWW-Authenticate": 'Bearer error="invalid_token"'})
    return token
