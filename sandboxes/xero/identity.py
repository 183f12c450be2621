"""Xero's sign-in (OAuth 2.0 and OpenID Connect): consent, tokens, revocation, the discovery
document and its keys; and which access token a call carries."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from datetime import timedelta
from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from flask import Blueprint, Response, request

from sandboxes.wire import ClientApp
from sandboxes.wire import html_response as html
from sandboxes.wire import json_response as _json
from sandboxes.xero.books import RefreshToken
from sandboxes.xero.context import current
from sandboxes.xero.errors import ApiError

if TYPE_CHECKING:
    from sandboxes.xero.sandbox import XeroSandbox

bp = Blueprint("xero_identity", __name__)


XERO_ISSUER = "https://identity.xero.com"
SANDBOX_USER_SUB = "4a5c2b1e00004000800000000000000a"
SANDBOX_XERO_USERID = "4a5c2b1e-0000-4000-8000-000000000001"
ID_TOKEN_SECONDS = 300  # UNVERIFIED: Xero's id_token lifetime is not published
CODE_SECONDS = 300


def client_from_request() -> tuple[str, ClientApp] | None:
    cfg = current().config
    auth = request.authorization
    client_id = (auth.username if auth else request.form.get("client_id")) or ""
    secret = (auth.password if auth else request.form.get("client_secret")) or ""
    client = cfg.clients.get(client_id)
    if client is None or not hmac.compare_digest(client.secret.encode(), secret.encode()):
        return None
    return client_id, client


def consent_page(args: dict[str, str], client: ClientApp, error: str = "") -> str:
    box = current()
    hidden = "".join(f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">'
                     for k, v in args.items())
    tenants = "".join(
        f'<label class="tenant"><input type="checkbox" name="tenant" '
        f'value="{escape(t.tenant_id)}"> {escape(t.name)} <small>({escape(t.country)}, '
        f'{escape(t.base_currency)})</small></label>' for t in box.tenants_by_id.values())
    scopes = "".join(f"<li><code>{escape(s)}</code></li>"
                     for s in args.get("scope", "").split())
    app_name = escape(client.name or args.get("client_id", ""))
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Xero sandbox: allow access</title><style>
body{{font:15px system-ui;background:#f2f5f8;color:#1c2b39;margin:0}}
main{{max-width:460px;margin:48px auto;background:#fff;border-radius:10px;padding:24px 28px;
box-shadow:0 1px 4px #0002}}h1{{font-size:20px}}.tenant{{display:block;margin:8px 0}}
.err{{color:#b91c1c}}button{{font:inherit;padding:8px 16px;border-radius:6px;margin-right:8px;
border:1px solid #13b5ea;background:#fff}}button[value=allow]{{background:#13b5ea;color:#fff}}
</style></head><body><main><p><strong>Xero</strong> (sandbox)</p>
<h1>{app_name} wants to access your Xero data</h1>
<p>It asks for:</p><ul>{scopes}</ul>
<form method="post" action="/identity/connect/authorize">{hidden}
<p>Choose the organisations it may use:</p>{tenants}
{f'<p class="err">{escape(error)}</p>' if error else ''}
<p><button type="submit" name="decision" value="allow">Allow access</button>
<button type="submit" name="decision" value="deny">Cancel</button></p></form></main>
</body></html>"""


def redirect_to(uri: str, params: dict[str, str]) -> Response:
    sep = "&" if "?" in uri else "?"
    return Response(status=302, headers={"Location": uri + sep + urlencode(params)})


@bp.route("/identity/connect/authorize", methods=["GET", "POST"])
def authorize() -> Response:
    box = current()
    cfg = box.config
    source = request.args if request.method == "GET" else request.form
    args = {k: source.get(k, "") for k in ("response_type", "client_id", "redirect_uri",
                                            "scope", "state", "code_challenge",
                                            "code_challenge_method", "nonce")}
    client = cfg.clients.get(args["client_id"])
    if client is None:
        return html("<h1>unauthorized_client</h1><p>Unknown client_id.</p>", 400)
    if not client.allows(args["redirect_uri"]):
        return html("<h1>invalid_request</h1><p>Invalid redirect_uri: it is not registered "
                    "for this app.</p>", 400)
    if args["response_type"] != "code":
        return redirect_to(args["redirect_uri"], {"error": "unsupported_response_type",
                                                  "state": args["state"]})
    if args["code_challenge"] and args["code_challenge_method"] != "S256":
        return redirect_to(args["redirect_uri"], {"error": "invalid_request",
                                                  "state": args["state"]})
    if request.method == "GET":
        return html(consent_page(args, client))
    if request.form.get("decision") != "allow":
        return redirect_to(args["redirect_uri"], {"error": "access_denied",
                                                  "state": args["state"]})
    with box.lock:
        chosen = list(dict.fromkeys(t for t in request.form.getlist("tenant")
                                    if t in box.tenants_by_id))
        if not chosen:
            return html(consent_page(args, client, "Choose at least one organisation."),
                        400)
        auth_event_id = box.consent(args["client_id"], chosen)
        code = secrets.token_urlsafe(32)
        box.codes[code] = {**args, "auth_event_id": auth_event_id,
                           "expires": box.now + timedelta(seconds=CODE_SECONDS)}
    return redirect_to(args["redirect_uri"], {"code": code, "state": args["state"],
                                              "scope": args["scope"]})


def issue_tokens(auth_event_id: str, client_id: str, scope: str,
                 nonce: str = "") -> dict[str, Any]:
    box = current()
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
        answer = {"id_token": id_token(client_id, auth_event_id, nonce), **answer}
    return answer


def id_token(client_id: str, auth_event_id: str, nonce: str) -> str:
    box = current()
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


def token_answer(body: dict[str, Any], status: int = 200) -> Response:
    return _json(body, status, {"Cache-Control": "no-store", "Pragma": "no-cache"})


@bp.post("/connect/token")
def token() -> Response:
    box = current()
    cfg = box.config
    found = client_from_request()
    if found is None:
        return token_answer({"error": "invalid_client"}, 401)
    client_id, _ = found
    grant = request.form.get("grant_type")
    invalid = {"error": "invalid_grant"}
    with box.lock:
        if grant == "authorization_code":
            code = box.codes.pop(request.form.get("code", ""), None)  # single use
            if code is None or code["expires"] < box.now or code["client_id"] != client_id:
                return token_answer(invalid, 400)
            if request.form.get("redirect_uri") != code["redirect_uri"]:
                return token_answer(invalid, 400)
            if code["code_challenge"]:
                verifier = request.form.get("code_verifier", "").encode()
                digest = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest())
                if not hmac.compare_digest(digest.rstrip(b"="),
                                           code["code_challenge"].encode()):
                    return token_answer(invalid, 400)
            if code["auth_event_id"] not in box.auth_events:
                return token_answer(invalid, 400)
            return token_answer(issue_tokens(code["auth_event_id"], client_id,
                                             code["scope"], code["nonce"]))
        if grant == "refresh_token":
            record = box.refresh_tokens.get(request.form.get("refresh_token", ""))
            if record is None or record.revoked or record.client_id != client_id \
                    or record.auth_event_id not in box.auth_events:
                return token_answer(invalid, 400)
            if record.rotated_at is not None:
                grace = record.rotated_at + timedelta(seconds=cfg.refresh_grace_seconds)
                if box.now <= grace and record.answer is not None:
                    return token_answer(record.answer)  # a lost answer, asked for again
                return token_answer(invalid, 400)
            if record.issued + timedelta(days=cfg.refresh_token_days) < box.now:
                return token_answer(invalid, 400)
            answer = issue_tokens(record.auth_event_id, client_id, record.scope)
            record.rotated_at, record.answer = box.now, answer
            return token_answer(answer)
    return token_answer({"error": "unsupported_grant_type"}, 400)


@bp.post("/connect/revocation")
def revoke() -> Response:
    box = current()
    found = client_from_request()
    if found is None:
        return token_answer({"error": "invalid_client"}, 401)
    with box.lock:
        record = box.refresh_tokens.get(request.form.get("token", ""))
        if record is not None and record.client_id == found[0]:
            event = record.auth_event_id
            for other in box.refresh_tokens.values():
                if other.auth_event_id == event:
                    other.revoked = True
            for access in [k for k, v in box.access_tokens.items()
                           if v["auth_event_id"] == event]:
                del box.access_tokens[access]
            box.auth_events.pop(event, None)
    return Response(status=200)


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
