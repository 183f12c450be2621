"""Intuit's sign-in (OAuth 2.0 and OpenID Connect): discovery, keys, consent, tokens,
revocation and user info; and which consent an access token is of."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Blueprint, Response, request

from sandboxes.quickbooks.config import CACHE_CONTROL
from sandboxes.quickbooks.context import current
from sandboxes.wire import ClientApp, html_response
from sandboxes.wire import json_response as _json

if TYPE_CHECKING:
    from sandboxes.quickbooks.sandbox import QuickBooksSandbox

bp = Blueprint("quickbooks_oauth", __name__)


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


def consent_page(args: dict[str, str], client: ClientApp, error: str = "") -> str:
    box = current()
    hidden = "".join(f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">'
                     for k, v in args.items())
    companies = "".join(
        f'<label class="company"><input type="radio" name="realmId" '
        f'value="{escape(c.realm_id)}"{" checked" if n == 0 else ""}> {escape(c.name)} '
        f'<small>({escape(c.country)}, {escape(c.currency)})</small></label>'
        for n, c in enumerate(box.companies_by_id.values()))
    scopes = "".join(f"<li><code>{escape(s)}</code></li>"
                     for s in args.get("scope", "").split())
    app_name = escape(client.name or args.get("client_id", ""))
    problem = f'<p class="err">{escape(error)}</p>' if error else ""
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>QuickBooks sandbox: connect an app</title><style>
body{{font:15px system-ui;background:#f4f5f8;color:#393a3d;margin:0}}
main{{max-width:480px;margin:48px auto;background:#fff;border-radius:8px;padding:24px 28px;
box-shadow:0 1px 4px #0002}}h1{{font-size:20px}}.company{{display:block;margin:8px 0}}
.err{{color:#b91c1c}}button{{font:inherit;padding:8px 18px;border-radius:4px;margin-right:8px;
border:1px solid #2ca01c;background:#fff}}button[value=allow]{{background:#2ca01c;color:#fff}}
</style></head><body><main><p><strong>intuit</strong> QuickBooks (sandbox)</p>
<h1>{app_name} wants to connect to your QuickBooks company</h1>
<p>It asks for:</p><ul>{scopes}</ul>
<form method="post" action="/connect/oauth2">{hidden}
<p>Choose the company to connect:</p>{companies}{problem}
<p><button type="submit" name="decision" value="allow">Connect</button>
<button type="submit" name="decision" value="deny">Cancel</button></p></form></main>
</body></html>"""


def redirect_to(uri: str, params: dict[str, str]) -> Response:
    sep = "&" if "?" in uri else "?"
    return Response(status=302, headers={"Location": uri + sep + urlencode(params)})


@bp.route("/connect/oauth2", methods=["GET", "POST"])
def authorize() -> Response:
    box = current()
    cfg = box.config
    source = request.args if request.method == "GET" else request.form
    args = {k: source.get(k, "") for k in ("client_id", "response_type", "scope",
                                            "redirect_uri", "state")}
    client = cfg.clients.get(args["client_id"])
    if client is None:
        return html("<h1>invalid_client</h1><p>The client_id is not known.</p>", 400)
    if not client.allows(args["redirect_uri"]):
        return html("<h1>invalid_request</h1><p>The redirect_uri is not registered for "
                    "this app.</p>", 400)
    if args["response_type"] != "code":
        return redirect_to(args["redirect_uri"], {"error": "unsupported_response_type",
                                                  "state": args["state"]})
    scopes = args["scope"].split()
    if not scopes or any(s not in SCOPES for s in scopes):
        return redirect_to(args["redirect_uri"], {"error": "invalid_scope",
                                                  "state": args["state"]})
    if request.method == "GET":
        return html(consent_page(args, client))
    if request.form.get("decision") != "allow":
        return redirect_to(args["redirect_uri"], {"error": "access_denied",
                                                  "state": args["state"]})
    with box.lock:
        realm = request.form.get("realmId", "")
        if realm not in box.companies_by_id:
            return html(consent_page(args, client, "Choose a company."), 400)
        consent = Consent(str(uuid.uuid4()), args["client_id"], realm, args["scope"],
                          box.now)
        box.consents[consent.consent_id] = consent
        code = "AB11" + secrets.token_urlsafe(30)
        box.codes[code] = {**args, "consent_id": consent.consent_id,
                           "expires": box.now + timedelta(seconds=cfg.code_seconds)}
    return redirect_to(args["redirect_uri"], {"code": code, "state": args["state"],
                                              "realmId": realm})


def client_from_request() -> str | None:
    cfg = current().config
    auth = request.authorization
    client_id = (auth.username if auth else request.form.get("client_id")) or ""
    secret = (auth.password if auth else request.form.get("client_secret")) or ""
    client = cfg.clients.get(client_id)
    if client is None or not hmac.compare_digest(client.secret.encode(), secret.encode()):
        return None
    return client_id


def token_answer(body: dict[str, Any], status: int = 200) -> Response:
    return _json(body, status, {"Cache-Control": CACHE_CONTROL, "Pragma": "no-cache"})


def html(body: str, status: int = 200) -> Response:
    return html_response(body, status, CACHE_CONTROL)


def issue(consent: Consent) -> dict[str, Any]:
    box = current()
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
        answer["id_token"] = id_token(consent)
    return answer


def id_token(consent: Consent) -> str:
    box = current()
    key, kid, _ = _signing_key()
    issued = int(box.now.timestamp())
    claims = {"sub": box.user_sub, "aud": [consent.client_id],
              "realmid": consent.realm_id, "auth_time": int(consent.created.timestamp()),
              "iss": issuer(), "exp": issued + 3600, "iat": issued}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


@bp.post("/oauth2/v1/tokens/bearer")
def token() -> Response:
    box = current()
    cfg = box.config
    client_id = client_from_request()
    if client_id is None:
        return token_answer({"error": "invalid_client"}, 401)
    grant = request.form.get("grant_type")
    invalid = {"error": "invalid_grant"}
    with box.lock:
        now = box.now
        if grant == "authorization_code":
            code = box.codes.pop(request.form.get("code", ""), None)  # single use
            if code is None or code["expires"] < now or code["client_id"] != client_id \
                    or request.form.get("redirect_uri") != code["redirect_uri"]:
                return token_answer(invalid, 400)
            consent = box.consents.get(code["consent_id"])
            if consent is None or consent.revoked:
                return token_answer(invalid, 400)
            return token_answer(issue(consent))
        if grant == "refresh_token":
            record = box.refresh_tokens.get(request.form.get("refresh_token", ""))
            consent = box.consents.get(record.consent_id) if record else None
            if record is None or consent is None or consent.revoked or \
                    record.client_id != client_id or record.expires <= now:
                return token_answer(invalid, 400)
            if record.first_used is not None and \
                    now > record.first_used + timedelta(seconds=cfg.refresh_grace_seconds):
                return token_answer(invalid, 400)
            if record.first_used is None:
                record.first_used = now
            return token_answer(issue(consent))
    return token_answer({"error": "unsupported_grant_type"}, 400)


@bp.post("/v2/oauth2/tokens/revoke")
def revoke() -> Response:
    box = current()
    client_id = client_from_request()
    if client_id is None:
        return token_answer({"error": "invalid_client"}, 401)
    payload = request.get_json(silent=True, force=True)
    given = ""
    if isinstance(payload, dict):
        given = str(payload.get("token") or "")
    given = given or request.form.get("token", "")
    if not given:
        return token_answer({"error": "invalid_request"}, 400)
    with box.lock:
        consent_id = None
        if given in box.refresh_tokens:
            consent_id = box.refresh_tokens[given].consent_id
        elif given in box.access_tokens:
            consent_id = box.access_tokens[given]["consent_id"]
        consent = box.consents.get(consent_id or "")
        if consent is not None and consent.client_id == client_id:
            consent.revoked = True
    return Response(status=200)


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
