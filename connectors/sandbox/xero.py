"""A local emulator of Xero's sign-in (OAuth 2.0) and Accounting API, for the demo and tests.

Same paths, field names, `/Date(ms+0000)/` formats, paging, rate-limit headers and 429s, token
lifetimes and single-use rotating refresh tokens (with Xero's 30-minute grace for a lost answer),
error bodies and Idempotency-Key replays as the real service. One origin serves what Xero splits
over three hosts: `/identity/connect/authorize` (login.xero.com), `/connect/token` and
`/connect/revocation` (identity.xero.com), `/connections` and `/api.xro/2.0/...`
(api.xero.com). `/_sandbox/...` is ours: introspection for tests and the demo.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import re
import secrets
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from email.utils import parsedate_to_datetime
from html import escape
from typing import Any
from urllib.parse import urlencode, urlparse

from flask import Flask, Response, request

from connectors.sandbox.xero_seed import seed_tenant

PROVIDER_NAME = "Dunwell Xero sandbox"
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100
CODE_SECONDS = 300
CENT = Decimal("0.01")


@dataclass
class ClientApp:
    secret: str
    redirect_uris: list[str] = field(default_factory=list)  # empty: any loopback URI

    def allows(self, uri: str) -> bool:
        if self.redirect_uris:
            return uri in self.redirect_uris
        host = urlparse(uri).hostname
        return urlparse(uri).scheme == "http" and host in ("127.0.0.1", "localhost")


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class SandboxConfig:
    clients: dict[str, ClientApp] = field(
        default_factory=lambda: {"dunwell-demo": ClientApp("dunwell-demo-secret")})
    access_token_seconds: int = 1800
    refresh_grace_seconds: int = 1800
    refresh_token_days: int = 60
    per_minute_limit: int = 60
    per_day_limit: int = 5000
    concurrent_limit: int = 5
    app_minute_limit: int = 10000
    clock: Callable[[], datetime] = _utcnow
    seed: int = 7
    webhook_key: str = "sandbox-webhook-key"


# --- JSON as Xero writes it -------------------------------------------------------------


def ms_date(moment: datetime) -> str:
    return f"/Date({int(moment.timestamp() * 1000)}+0000)/"


def day_ms(day: date) -> str:
    return ms_date(datetime(day.year, day.month, day.day, tzinfo=UTC))


def _encode(value: Any) -> str:
    """JSON with Decimal written as an exact number (json.dumps would need floats)."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{_encode(v)}" for k, v in value.items()
                              if not str(k).startswith("_")) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_encode(v) for v in value) + "]"
    return json.dumps(value)


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(_encode(body), status=status, headers=headers or {},
                    mimetype="application/json")


def _seconds(delta: timedelta) -> int:
    """Retry-After: whole seconds, rounded up, at least one."""
    return max(1, math.ceil(delta.total_seconds()))


class ApiError(Exception):
    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


def validation_error(message: str, element: dict[str, Any] | None = None) -> ApiError:
    return ApiError(400, {
        "ErrorNumber": 10, "Type": "ValidationException",
        "Message": "A validation exception occurred",
        "Elements": [{**(element or {}), "ValidationErrors": [{"Message": message}]}],
    })


def problem(status: int, title: str, detail: str) -> ApiError:
    return ApiError(status, {"Type": None, "Title": title, "Status": status, "Detail": detail,
                             "Instance": str(uuid.uuid4()), "Extensions": {}})


def not_found() -> ApiError:
    return ApiError(404, {"Type": None, "Title": "Resource Not Found", "Status": 404,
                          "Detail": "The resource you're looking for cannot be found",
                          "Instance": str(uuid.uuid4()), "Extensions": {}})


# --- State ------------------------------------------------------------------------------


@dataclass
class Tenant:
    tenant_id: str
    name: str
    country: str
    base_currency: str
    timezone: str
    short_code: str
    created: datetime
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    invoices: dict[str, dict[str, Any]] = field(default_factory=dict)
    payments: dict[str, dict[str, Any]] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    emails: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class RefreshToken:
    auth_event_id: str
    client_id: str
    scope: str
    issued: datetime
    rotated_at: datetime | None = None
    answer: dict[str, Any] | None = None  # what its first use returned (for the grace window)
    revoked: bool = False


class XeroSandbox:
    """All state, in memory, behind one lock."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.lock = threading.RLock()
        self.tenants_by_id: dict[str, Tenant] = {}
        self.codes: dict[str, dict[str, Any]] = {}
        self.auth_events: dict[str, dict[str, Any]] = {}  # id -> {client_id, connections}
        self.access_tokens: dict[str, dict[str, Any]] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.idempotent: dict[tuple[str, str], tuple[str, int, dict[str, str], str]] = {}
        self.minute_calls: dict[str, deque[datetime]] = {}
        self.day_calls: dict[tuple[str, date], int] = {}
        self.app_calls: deque[datetime] = deque()
        self.in_flight: dict[str, int] = {}
        self.call_count: dict[str, int] = {}

    @property
    def now(self) -> datetime:
        return self.config.clock()

    # tenants and seed data

    def add_tenant(self, name: str, country: str, base_currency: str, timezone: str) -> str:
        with self.lock:
            tenant_id = str(uuid.uuid4())
            short = "!" + "".join(secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(5))
            self.tenants_by_id[tenant_id] = Tenant(tenant_id, name, country, base_currency,
                                                   timezone, short, self.now)
            return tenant_id

    def seed_demo(self, today: date) -> None:
        with self.lock:
            for index, (name, country, currency, zone, other, tax) in enumerate((
                ("Harbour Coffee Roasters Ltd", "GB", "GBP", "GMTSTANDARDTIME", "EUR", "0.20"),
                ("Fjellbekk Design AS", "NO", "NOK", "WEUROPESTANDARDTIME", "EUR", "0.25"),
            )):
                tenant_id = self.add_tenant(name, country, currency, zone)
                seed_tenant(self, self.tenants_by_id[tenant_id], today,
                            seed=self.config.seed + index, other_currency=other,
                            tax_rate=Decimal(tax))

    def tenant(self, tenant_id: str) -> Tenant:
        found = self.tenants_by_id.get(tenant_id)
        if found is None:
            raise KeyError(f"no tenant {tenant_id}")
        return found

    # introspection

    def tenants(self) -> list[dict[str, Any]]:
        with self.lock:
            return [{"tenantId": t.tenant_id, "tenantName": t.name, "countryCode": t.country,
                     "baseCurrency": t.base_currency} for t in self.tenants_by_id.values()]

    def history(self, tenant_id: str, invoice_id: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(h) for h in self.tenant(tenant_id).history
                    if invoice_id is None or h["InvoiceID"] == invoice_id]

    def emails(self, tenant_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(e) for e in self.tenant(tenant_id).emails]

    def calls(self, tenant_id: str | None = None) -> int:
        with self.lock:
            if tenant_id is None:
                return sum(self.call_count.values())
            return self.call_count.get(tenant_id, 0)

    def invoices(self, tenant_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [render_invoice(i) for i in self.tenant(tenant_id).invoices.values()]

    def contacts(self, tenant_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [render_contact(c) for c in self.tenant(tenant_id).contacts.values()]

    def expire_access_tokens(self) -> None:
        with self.lock:
            for token in self.access_tokens.values():
                token["expires_at"] = self.now - timedelta(seconds=1)

    # changes made "in Xero"

    def touch(self, record: dict[str, Any]) -> None:
        record["_updated"] = max(self.now, record.get("_updated", self.now) +
                                 timedelta(milliseconds=1))

    def pay_invoice(self, tenant_id: str, invoice_id: str, amount: Decimal,
                    on: date | None = None) -> dict[str, Any]:
        with self.lock:
            tenant = self.tenant(tenant_id)
            invoice = tenant.invoices.get(invoice_id)
            if invoice is None:
                raise KeyError(f"no invoice {invoice_id}")
            amount = Decimal(amount).quantize(CENT)
            if invoice["Status"] != "AUTHORISED" or not 0 < amount <= invoice["AmountDue"]:
                raise ValueError("payment must be positive, at most the amount due, on an "
                                 "AUTHORISED invoice")
            paid_on = on or self.now.date()
            payment: dict[str, Any] = {
                "PaymentID": str(uuid.uuid4()), "_date": paid_on, "Amount": amount,
                "CurrencyRate": Decimal("1.000000"), "PaymentType": "ACCRECPAYMENT",
                "Status": "AUTHORISED", "Reference": f"Payment {invoice['InvoiceNumber']}",
                "IsReconciled": False, "_invoice_id": invoice_id,
            }
            self.touch(payment)
            tenant.payments[payment["PaymentID"]] = payment
            invoice["AmountPaid"] += amount
            invoice["AmountDue"] -= amount
            invoice["_payments"].append(payment["PaymentID"])
            if invoice["AmountDue"] == 0:
                invoice["Status"] = "PAID"
                invoice["_paid_on"] = paid_on
            self.touch(invoice)
            return render_payment(payment, tenant)


# --- Rendering (stored record -> Xero JSON) ---------------------------------------------


def render_contact(contact: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in contact.items() if not k.startswith("_")}
    out["UpdatedDateUTC"] = ms_date(contact["_updated"])
    return out


def render_invoice(invoice: dict[str, Any], tenant: Tenant | None = None,
                   summary: bool = False) -> dict[str, Any]:
    out = {k: v for k, v in invoice.items() if not k.startswith("_")}
    out["Date"] = day_ms(invoice["_date"])
    out["DateString"] = invoice["_date"].isoformat() + "T00:00:00"
    out["DueDate"] = day_ms(invoice["_due"])
    out["DueDateString"] = invoice["_due"].isoformat() + "T00:00:00"
    out["UpdatedDateUTC"] = ms_date(invoice["_updated"])
    if invoice.get("_paid_on"):
        out["FullyPaidOnDate"] = day_ms(invoice["_paid_on"])
    if tenant is not None:
        contact = tenant.contacts.get(invoice["Contact"]["ContactID"])
        if contact is not None:
            out["Contact"] = {"ContactID": contact["ContactID"], "Name": contact["Name"],
                              **({"EmailAddress": contact["EmailAddress"]}
                                 if contact.get("EmailAddress") else {})}
        out["Payments"] = [
            {"PaymentID": p["PaymentID"], "Date": day_ms(p["_date"]), "Amount": p["Amount"]}
            for pid in invoice["_payments"] if (p := tenant.payments.get(pid))]
    if summary:
        out.pop("LineItems", None)
    return out


def render_payment(payment: dict[str, Any], tenant: Tenant) -> dict[str, Any]:
    out = {k: v for k, v in payment.items() if not k.startswith("_")}
    out["Date"] = day_ms(payment["_date"])
    out["UpdatedDateUTC"] = ms_date(payment["_updated"])
    invoice = tenant.invoices[payment["_invoice_id"]]
    out["Invoice"] = {"InvoiceID": invoice["InvoiceID"], "InvoiceNumber":
                      invoice["InvoiceNumber"], "Type": invoice["Type"],
                      "Contact": {"ContactID": invoice["Contact"]["ContactID"],
                                  "Name": invoice["Contact"]["Name"]},
                      "CurrencyCode": invoice["CurrencyCode"]}
    out["Account"] = {"AccountID": "7d05a53d-613d-4eb2-a2fc-dcb6adb80b80", "Code": "090"}
    return out


# --- Query language (the part of Xero's `where` we need) --------------------------------

_CLAUSE = re.compile(r'^\s*([A-Za-z.]+)\s*(==|!=)\s*(?:"([^"]*)"|guid\("([^"]*)"\)|'
                     r'(true|false|\d+))\s*$')


def where_filter(expression: str) -> Callable[[dict[str, Any]], bool]:
    clauses = []
    for part in re.split(r"\s+AND\s+|\s*&&\s*", expression.strip()):
        match = _CLAUSE.match(part)
        if not match:
            raise validation_error(f"The where clause '{part.strip()}' is not supported here")
        name, op, text, guid, literal = match.groups()
        wanted: Any = text if text is not None else guid if guid is not None else literal
        if literal in ("true", "false"):
            wanted = literal == "true"
        clauses.append((name.split("."), op, wanted))

    def keep(record: dict[str, Any]) -> bool:
        for path, op, wanted in clauses:
            value: Any = record
            for step in path:
                value = value.get(step) if isinstance(value, dict) else None
            if isinstance(wanted, str) and not isinstance(value, str) and value is not None:
                value = str(value)
            if (value == wanted) != (op == "=="):
                return False
        return True

    return keep


def parse_if_modified_since(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = parsedate_to_datetime(value)
        except (TypeError, ValueError) as exc:
            raise validation_error(f"If-Modified-Since '{value}' is not a date") from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


# --- The Flask app ----------------------------------------------------------------------


def create_app(sandbox: XeroSandbox | None = None) -> Flask:
    box = sandbox or XeroSandbox()
    app = Flask(__name__)
    app.extensions["xero_sandbox"] = box
    cfg = box.config

    def envelope(key: str, items: list[dict[str, Any]],
                 pagination: dict[str, int] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"Id": str(uuid.uuid4()), "Status": "OK",
                                "ProviderName": PROVIDER_NAME, "DateTimeUTC": ms_date(box.now)}
        if pagination is not None:
            body["pagination"] = pagination
        body[key] = items
        return body

    # OAuth 2.0 -------------------------------------------------------------------------

    def client_from_request() -> tuple[str, ClientApp] | None:
        auth = request.authorization
        client_id = auth.username if auth else request.form.get("client_id", "")
        secret = auth.password if auth else request.form.get("client_secret", "")
        client = cfg.clients.get(client_id or "")
        if client is None or not hmac.compare_digest(client.secret, secret or ""):
            return None
        return client_id or "", client

    def consent_page(args: dict[str, str], error: str = "") -> str:
        hidden = "".join(f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">'
                         for k, v in args.items())
        tenants = "".join(
            f'<label class="tenant"><input type="checkbox" name="tenant" '
            f'value="{t.tenant_id}"> {escape(t.name)} <small>({t.country}, '
            f'{t.base_currency})</small></label>' for t in box.tenants_by_id.values())
        scopes = "".join(f"<li>{escape(s)}</li>" for s in args.get("scope", "").split())
        return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Xero sandbox: allow access</title><style>
body{{font:15px system-ui;background:#f2f5f8;color:#1c2b39;margin:0}}
main{{max-width:460px;margin:48px auto;background:#fff;border-radius:10px;padding:24px 28px;
box-shadow:0 1px 4px #0002}}h1{{font-size:20px}}.tenant{{display:block;margin:8px 0}}
.err{{color:#b91c1c}}button{{font:inherit;padding:8px 16px;border-radius:6px;margin-right:8px;
border:1px solid #13b5ea;background:#fff}}button[value=allow]{{background:#13b5ea;color:#fff}}
</style></head><body><main><p><strong>Xero</strong> (sandbox)</p>
<h1>{escape(args.get("client_id", ""))} wants to access your Xero data</h1>
<p>It asks for:</p><ul>{scopes}</ul>
<form method="post" action="/identity/connect/authorize">{hidden}
<p>Choose the organisations it may use:</p>{tenants}
{f'<p class="err">{escape(error)}</p>' if error else ''}
<p><button type="submit" name="decision" value="allow">Allow access</button>
<button type="submit" name="decision" value="deny">Cancel</button></p></form></main>
</body></html>"""

    @app.route("/identity/connect/authorize", methods=["GET", "POST"])
    def authorize() -> Response | tuple[str, int]:
        source = request.args if request.method == "GET" else request.form
        args = {k: source.get(k, "") for k in ("response_type", "client_id", "redirect_uri",
                                                "scope", "state", "code_challenge",
                                                "code_challenge_method")}
        client = cfg.clients.get(args["client_id"])
        if client is None or not client.allows(args["redirect_uri"]):
            return ("<h1>unauthorized_client</h1><p>Unknown client or redirect_uri "
                    "not registered for it.</p>"), 400
        if args["response_type"] != "code":
            return "<h1>unsupported_response_type</h1>", 400
        if args["code_challenge"] and args["code_challenge_method"] != "S256":
            return "<h1>invalid_request</h1><p>code_challenge_method must be S256</p>", 400
        if request.method == "GET":
            return consent_page(args), 200
        back = args["redirect_uri"]
        sep = "&" if "?" in back else "?"
        if request.form.get("decision") != "allow":
            return Response(status=302, headers={"Location": back + sep + urlencode(
                {"error": "access_denied", "state": args["state"]})})
        chosen = [t for t in request.form.getlist("tenant") if t in box.tenants_by_id]
        if not chosen:
            return consent_page(args, "Choose at least one organisation."), 400
        with box.lock:
            auth_event_id = str(uuid.uuid4())
            box.auth_events[auth_event_id] = {
                "client_id": args["client_id"],
                "connections": {str(uuid.uuid4()): {"tenantId": t, "created": box.now}
                                for t in chosen},
            }
            code = secrets.token_urlsafe(32)
            box.codes[code] = {**args, "auth_event_id": auth_event_id,
                               "expires": box.now + timedelta(seconds=CODE_SECONDS)}
        return Response(status=302, headers={"Location": back + sep + urlencode(
            {"code": code, "state": args["state"], "scope": args["scope"]})})

    def issue_tokens(auth_event_id: str, client_id: str, scope: str) -> dict[str, Any]:
        access = secrets.token_urlsafe(48)
        refresh = secrets.token_urlsafe(48)
        box.access_tokens[access] = {
            "auth_event_id": auth_event_id,
            "expires_at": box.now + timedelta(seconds=cfg.access_token_seconds)}
        box.refresh_tokens[refresh] = RefreshToken(auth_event_id, client_id, scope, box.now)
        return {"id_token": id_token(client_id, auth_event_id), "access_token": access,
                "expires_in": cfg.access_token_seconds, "token_type": "Bearer",
                "refresh_token": refresh, "scope": scope}

    def id_token(client_id: str, auth_event_id: str) -> str:
        def part(data: dict[str, Any]) -> str:
            return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

        header = part({"alg": "HS256", "typ": "JWT"})
        payload = part({"iss": "https://identity.xero.com", "aud": client_id,
                        "sub": "sandbox-user", "email": "owner@example.com",
                        "given_name": "Sandbox", "family_name": "Owner",
                        "xero_userid": "4a5c2b1e-0000-4000-8000-000000000001",
                        "authentication_event_id": auth_event_id,
                        "iat": int(box.now.timestamp()),
                        "exp": int(box.now.timestamp()) + 300})
        secret = cfg.clients[client_id].secret.encode()
        signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        return f"{header}.{payload}." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()

    def token_error(error: str, status: int = 400) -> Response:
        return _json({"error": error}, status)

    @app.post("/connect/token")
    def token() -> Response:
        found = client_from_request()
        if found is None:
            return token_error("invalid_client", 401)
        client_id, _ = found
        grant = request.form.get("grant_type")
        with box.lock:
            if grant == "authorization_code":
                code = box.codes.pop(request.form.get("code", ""), None)
                if code is None or code["expires"] < box.now or code["client_id"] != client_id:
                    return token_error("invalid_grant")
                if request.form.get("redirect_uri") != code["redirect_uri"]:
                    return token_error("invalid_grant")
                if code["code_challenge"]:
                    verifier = request.form.get("code_verifier", "").encode()
                    digest = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest())
                    if not hmac.compare_digest(digest.rstrip(b"=").decode(),
                                               code["code_challenge"]):
                        return token_error("invalid_grant")
                return _json(issue_tokens(code["auth_event_id"], client_id, code["scope"]))
            if grant == "refresh_token":
                presented = request.form.get("refresh_token", "")
                record = box.refresh_tokens.get(presented)
                if record is None or record.revoked or record.client_id != client_id:
                    return token_error("invalid_grant")
                if record.auth_event_id not in box.auth_events:
                    return token_error("invalid_grant")
                if record.rotated_at is not None:
                    grace = record.rotated_at + timedelta(seconds=cfg.refresh_grace_seconds)
                    if box.now <= grace and record.answer is not None:
                        return _json(record.answer)  # a lost answer, asked again
                    return token_error("invalid_grant")
                if record.issued + timedelta(days=cfg.refresh_token_days) < box.now:
                    return token_error("invalid_grant")
                answer = issue_tokens(record.auth_event_id, client_id, record.scope)
                record.rotated_at, record.answer = box.now, answer
                return _json(answer)
        return token_error("unsupported_grant_type")

    @app.post("/connect/revocation")
    def revoke() -> Response:
        if client_from_request() is None:
            return token_error("invalid_client", 401)
        with box.lock:
            record = box.refresh_tokens.get(request.form.get("token", ""))
            if record is not None:
                event = record.auth_event_id
                for other in box.refresh_tokens.values():
                    if other.auth_event_id == event:
                        other.revoked = True
                for access in [k for k, v in box.access_tokens.items()
                               if v["auth_event_id"] == event]:
                    del box.access_tokens[access]
                box.auth_events.pop(event, None)
        return Response(status=200)

    def bearer() -> dict[str, Any]:
        header = request.headers.get("Authorization", "")
        token = box.access_tokens.get(header[7:] if header.startswith("Bearer ") else "")
        if token is None or token["expires_at"] <= box.now or \
                token["auth_event_id"] not in box.auth_events:
            raise ApiError(401, {"Type": None, "Title": "Unauthorized", "Status": 401,
                                 "Detail": "AuthenticationUnsuccessful",
                                 "Instance": str(uuid.uuid4()), "Extensions": {}},
                           {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return token

    def connections_of(token: dict[str, Any]) -> list[dict[str, Any]]:
        event_id = token["auth_event_id"]
        found = []
        for connection_id, c in box.auth_events[event_id]["connections"].items():
            tenant = box.tenants_by_id[c["tenantId"]]
            stamp = c["created"].strftime("%Y-%m-%dT%H:%M:%S.%f") + "0"
            found.append({"id": connection_id, "authEventId": event_id,
                          "tenantId": tenant.tenant_id, "tenantType": "ORGANISATION",
                          "tenantName": tenant.name, "createdDateUtc": stamp,
                          "updatedDateUtc": stamp})
        return found

    @app.errorhandler(ApiError)
    def api_error(error: ApiError) -> Response:
        return _json(error.body, error.status, error.headers)

    @app.get("/connections")
    @app.get("/Connections")
    def list_connections() -> Response:
        with box.lock:
            token = bearer()
            event = request.args.get("authEventId")
            return _json([c for c in connections_of(token)
                          if not event or c["authEventId"] == event])

    @app.delete("/connections/<connection_id>")
    @app.delete("/Connections/<connection_id>")
    def delete_connection(connection_id: str) -> Response:
        with box.lock:
            token = bearer()
            if box.auth_events[token["auth_event_id"]]["connections"].pop(
                    connection_id, None) is None:
                raise not_found()
            return Response(status=204)

    # Accounting API: limits, tenant, idempotency around every call -----------------------

    def limit_headers(tenant_id: str) -> dict[str, str]:
        minute = box.minute_calls.get(tenant_id, deque())
        day = box.day_calls.get((tenant_id, box.now.date()), 0)
        return {"X-DayLimit-Remaining": str(max(0, cfg.per_day_limit - day)),
                "X-MinLimit-Remaining": str(max(0, cfg.per_minute_limit - len(minute))),
                "X-AppMinLimit-Remaining": str(max(0, cfg.app_minute_limit -
                                                   len(box.app_calls)))}

    def admit(tenant_id: str) -> None:
        """Count the call against the tenant's budgets, or refuse it with a 429."""
        now = box.now
        window = now - timedelta(seconds=60)
        minute = box.minute_calls.setdefault(tenant_id, deque())
        while minute and minute[0] <= window:
            minute.popleft()
        while box.app_calls and box.app_calls[0] <= window:
            box.app_calls.popleft()
        box.call_count[tenant_id] = box.call_count.get(tenant_id, 0) + 1
        day_key = (tenant_id, now.date())
        refusal = None
        if box.day_calls.get(day_key, 0) >= cfg.per_day_limit:
            midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(),
                                        tzinfo=UTC)
            refusal = ("Daily", _seconds(midnight - now))
        elif len(box.app_calls) >= cfg.app_minute_limit:
            refusal = ("AppMinute", _seconds(box.app_calls[0] - window))
        elif len(minute) >= cfg.per_minute_limit:
            refusal = ("Minute", _seconds(minute[0] - window))
        elif box.in_flight.get(tenant_id, 0) >= cfg.concurrent_limit:
            refusal = ("Concurrent", 1)
        if refusal is not None:
            raise ApiError(429, {"Title": "Too Many Requests", "Status": 429,
                                 "Detail": f"{refusal[0]} rate limit exceeded"},
                           {**limit_headers(tenant_id), "Retry-After": str(refusal[1]),
                            "X-Rate-Limit-Problem": refusal[0]})
        minute.append(now)
        box.app_calls.append(now)
        box.day_calls[day_key] = box.day_calls.get(day_key, 0) + 1

    def accounting(handler: Callable[[Tenant], Response]) -> Response:
        with box.lock:
            token = bearer()
            tenant_id = request.headers.get("xero-tenant-id", "")
            if not tenant_id:
                raise validation_error("xero-tenant-id header is required")
            if tenant_id not in {c["tenantId"] for c in connections_of(token)}:
                raise problem(403, "Forbidden", "AuthorizationUnsuccessful")
            admit(tenant_id)
            key = request.headers.get("Idempotency-Key")
            fingerprint = f"{request.method} {request.path} " + hashlib.sha256(
                request.get_data()).hexdigest()
            if key and request.method in ("POST", "PUT"):
                if len(key) > 128:
                    raise validation_error("Idempotency-Key is longer than 128 characters")
                stored = box.idempotent.get((tenant_id, key))
                if stored is not None:
                    if stored[0] != fingerprint:
                        raise validation_error("Idempotency-Key was used for another request")
                    _, status, headers, body = stored
                    return Response(body, status=status, headers={
                        **headers, **limit_headers(tenant_id)}, mimetype="application/json")
            box.in_flight[tenant_id] = box.in_flight.get(tenant_id, 0) + 1
        try:
            with box.lock:
                tenant = box.tenant(tenant_id)
                try:
                    response = handler(tenant)
                except ApiError as error:
                    response = _json(error.body, error.status, error.headers)
                if key and request.method in ("POST", "PUT") and response.status_code < 500:
                    box.idempotent[(tenant_id, key)] = (
                        fingerprint, response.status_code,
                        {k: v for k, v in response.headers.items()
                         if k.lower() not in ("content-length", "content-type")},
                        response.get_data(as_text=True))
                response.headers.update(limit_headers(tenant_id))
                return response
        finally:
            with box.lock:
                box.in_flight[tenant_id] -= 1

    def paged(key: str, records: list[dict[str, Any]],
              render: Callable[[dict[str, Any]], dict[str, Any]]) -> Response:
        since = parse_if_modified_since(request.headers.get("If-Modified-Since"))
        if since is not None:
            records = [r for r in records if r["_updated"] > since]
        where = request.args.get("where") or request.args.get("Where")
        rendered = [render(r) for r in records]
        if where:
            keep = where_filter(where)
            rendered = [r for r in rendered if keep(r)]
        order = (request.args.get("order") or "").strip()
        if order:
            name, _, direction = order.partition(" ")
            internal = {"UpdatedDateUTC": "_updated", "Date": "_date", "DueDate": "_due"}
            by = {r[key[:-1] + "ID"]: r for r in records}

            def sort_key(item: dict[str, Any]) -> Any:
                raw = by[item[key[:-1] + "ID"]]
                return (raw.get(internal.get(name, ""), item.get(name)) or "",
                        item[key[:-1] + "ID"])

            rendered.sort(key=sort_key, reverse=direction.strip().upper() == "DESC")
        page = request.args.get("page")
        if page is None:
            return _json(envelope(key, rendered))
        try:
            number = max(1, int(page))
            size = min(MAX_PAGE_SIZE, max(1, int(request.args.get("pageSize",
                                                                  DEFAULT_PAGE_SIZE))))
        except ValueError as exc:
            raise validation_error("page and pageSize must be whole numbers") from exc
        count = len(rendered)
        pages = (count + size - 1) // size
        chunk = rendered[(number - 1) * size:number * size]
        return _json(envelope(key, chunk, {"page": number, "pageSize": size,
                                           "pageCount": pages, "itemCount": count}))

    def csv_arg(name: str) -> set[str] | None:
        value = request.args.get(name)
        return {v.strip() for v in value.split(",") if v.strip()} if value else None

    api = "/api.xro/2.0"

    @app.get(f"{api}/Organisation")
    def organisation() -> Response:
        def handle(t: Tenant) -> Response:
            return _json(envelope("Organisations", [{
                "OrganisationID": t.tenant_id, "APIKey": "", "Name": t.name,
                "LegalName": t.name, "PaysTax": True,
                "Version": {"GB": "UK", "AU": "AU", "NZ": "NZ", "US": "US"}.get(t.country,
                                                                            "GLOBAL"),
                "OrganisationType": "COMPANY", "BaseCurrency": t.base_currency,
                "CountryCode": t.country, "IsDemoCompany": False,
                "OrganisationStatus": "ACTIVE", "FinancialYearEndDay": 31,
                "FinancialYearEndMonth": 12, "SalesTaxBasis": "ACCRUALS",
                "DefaultSalesTax": "Tax Exclusive", "DefaultPurchasesTax": "Tax Exclusive",
                "CreatedDateUTC": ms_date(t.created), "OrganisationEntityType": "COMPANY",
                "Timezone": t.timezone, "ShortCode": t.short_code, "Edition": "BUSINESS",
                "Class": "STANDARD"}]))
        return accounting(handle)

    @app.get(f"{api}/Contacts")
    def contacts() -> Response:
        def handle(t: Tenant) -> Response:
            records = list(t.contacts.values())
            ids = csv_arg("IDs")
            if ids:
                records = [c for c in records if c["ContactID"] in ids]
            if request.args.get("includeArchived", "false").lower() != "true":
                records = [c for c in records if c["ContactStatus"] != "ARCHIVED"]
            return paged("Contacts", records, render_contact)
        return accounting(handle)

    @app.get(f"{api}/Payments")
    def payments() -> Response:
        def handle(t: Tenant) -> Response:
            return paged("Payments", list(t.payments.values()),
                         lambda p: render_payment(p, t))
        return accounting(handle)

    @app.get(f"{api}/Invoices")
    def invoices() -> Response:
        def handle(t: Tenant) -> Response:
            records = list(t.invoices.values())
            for arg, fieldname in (("IDs", "InvoiceID"), ("InvoiceNumbers", "InvoiceNumber"),
                                   ("Statuses", "Status")):
                wanted = csv_arg(arg)
                if wanted:
                    records = [r for r in records if r[fieldname] in wanted]
            contact_ids = csv_arg("ContactIDs")
            if contact_ids:
                records = [r for r in records if r["Contact"]["ContactID"] in contact_ids]
            summary = request.args.get("summaryOnly", "false").lower() == "true"
            return paged("Invoices", records, lambda i: render_invoice(i, t, summary))
        return accounting(handle)

    def find_invoice(t: Tenant, invoice_id: str) -> dict[str, Any]:
        invoice = t.invoices.get(invoice_id)
        if invoice is None:
            by_number = [i for i in t.invoices.values() if i["InvoiceNumber"] == invoice_id]
            if not by_number:
                raise not_found()
            invoice = by_number[0]
        return invoice

    @app.get(f"{api}/Invoices/<invoice_id>")
    def invoice(invoice_id: str) -> Response:
        return accounting(lambda t: _json(envelope(
            "Invoices", [render_invoice(find_invoice(t, invoice_id), t)])))

    @app.route(f"{api}/Invoices", methods=["POST", "PUT"])
    @app.post(f"{api}/Invoices/<invoice_id>")
    def save_invoices(invoice_id: str | None = None) -> Response:
        def handle(t: Tenant) -> Response:
            try:
                body = json.loads(request.get_data() or b"{}", parse_float=Decimal)
            except ValueError as exc:
                raise validation_error("The request body is not valid JSON") from exc
            items = body.get("Invoices", [body]) if isinstance(body, dict) else body
            if not isinstance(items, list) or not items:
                raise validation_error("No invoices in the request")
            if len(items) > 50 and request.method == "POST":
                raise validation_error("At most 50 invoices in one request")
            saved = []
            for item in items:
                target = invoice_id or item.get("InvoiceID")
                if target and request.method == "POST":
                    saved.append(update_invoice(t, find_invoice(t, target), item))
                else:
                    saved.append(create_invoice(t, item))
            return _json(envelope("Invoices", [render_invoice(i, t) for i in saved]))
        return accounting(handle)

    def priced_lines(t: Tenant, lines: Any) -> tuple[list[dict[str, Any]], Decimal, Decimal]:
        if not isinstance(lines, list) or not lines:
            raise validation_error("An invoice needs at least one line item")
        rate = Decimal("0.20") if t.country == "GB" else Decimal("0.25")
        out, subtotal, tax = [], Decimal(0), Decimal(0)
        for line in lines:
            try:
                quantity = Decimal(str(line.get("Quantity", 1)))
                unit = Decimal(str(line["UnitAmount"]))
            except (KeyError, ArithmeticError) as exc:
                raise validation_error("Each line item needs a UnitAmount") from exc
            amount = (quantity * unit).quantize(CENT, ROUND_HALF_UP)
            line_tax = Decimal(0) if line.get("TaxType") == "NONE" else \
                (amount * rate).quantize(CENT, ROUND_HALF_UP)
            out.append({"LineItemID": line.get("LineItemID") or str(uuid.uuid4()),
                        "Description": str(line.get("Description", ""))[:4000],
                        "Quantity": quantity, "UnitAmount": unit,
                        "AccountCode": str(line.get("AccountCode", "200")),
                        "TaxType": line.get("TaxType", "OUTPUT2"), "TaxAmount": line_tax,
                        "LineAmount": amount})
            subtotal += amount
            tax += line_tax
        return out, subtotal, tax

    def parse_day(value: Any, name: str) -> date:
        try:
            text = str(value)
            match = re.match(r"^/Date\((\d+)", text)
            if match:
                return datetime.fromtimestamp(int(match.group(1)) / 1000, tz=UTC).date()
            return date.fromisoformat(text[:10])
        except ValueError as exc:
            raise validation_error(f"{name} is not a date") from exc

    def create_invoice(t: Tenant, item: dict[str, Any]) -> dict[str, Any]:
        if item.get("Type") not in ("ACCREC", "ACCPAY"):
            raise validation_error("Type must be ACCREC or ACCPAY")
        contact_id = (item.get("Contact") or {}).get("ContactID")
        contact = t.contacts.get(contact_id or "")
        if contact is None:
            raise validation_error("A valid Contact.ContactID is required")
        lines, subtotal, tax = priced_lines(t, item.get("LineItems"))
        status = item.get("Status", "DRAFT")
        if status not in ("DRAFT", "SUBMITTED", "AUTHORISED"):
            raise validation_error(f"An invoice cannot be created as {status}")
        issued = parse_day(item.get("Date", box.now.date().isoformat()), "Date")
        number = item.get("InvoiceNumber") or f"INV-{len(t.invoices) + 1:04d}"
        record = {
            "Type": item["Type"], "InvoiceID": str(uuid.uuid4()), "InvoiceNumber": number,
            "Reference": str(item.get("Reference", "")),
            "Contact": {"ContactID": contact["ContactID"], "Name": contact["Name"]},
            "LineItems": lines, "LineAmountTypes": "Exclusive",
            "CurrencyCode": item.get("CurrencyCode", t.base_currency),
            "CurrencyRate": Decimal("1.000000"), "Status": status, "SubTotal": subtotal,
            "TotalTax": tax, "Total": subtotal + tax, "AmountDue": subtotal + tax,
            "AmountPaid": Decimal(0), "AmountCredited": Decimal(0), "SentToContact": False,
            "HasAttachments": False, "IsDiscounted": False, "HasErrors": False,
            "_date": issued, "_due": parse_day(item.get("DueDate", issued.isoformat()),
                                               "DueDate"),
            "_payments": [],
        }
        box.touch(record)
        t.invoices[record["InvoiceID"]] = record
        return record

    def update_invoice(t: Tenant, record: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
        if record["Status"] in ("PAID", "VOIDED", "DELETED"):
            raise validation_error(f"Invoice not of valid status for modification "
                                   f"({record['Status']})")
        if "LineItems" in item:
            if record["AmountPaid"] > 0 or record["AmountCredited"] > 0:
                raise validation_error("This document cannot be edited as it has a payment or "
                                       "credit note allocated to it.")
            lines, subtotal, tax = priced_lines(t, item["LineItems"])
            record.update({"LineItems": lines, "SubTotal": subtotal, "TotalTax": tax,
                           "Total": subtotal + tax, "AmountDue": subtotal + tax})
        if "Status" in item:
            allowed = {"DRAFT": {"SUBMITTED", "AUTHORISED", "DELETED", "DRAFT"},
                       "SUBMITTED": {"AUTHORISED", "DRAFT", "DELETED", "SUBMITTED"},
                       "AUTHORISED": {"AUTHORISED", "VOIDED"}}
            if item["Status"] not in allowed.get(record["Status"], set()):
                raise validation_error(f"Cannot change status from {record['Status']} to "
                                       f"{item['Status']}")
            if item["Status"] == "VOIDED" and record["AmountPaid"] > 0:
                raise validation_error("Payments must be removed before voiding")
            record["Status"] = item["Status"]
        for key in ("Reference",):
            if key in item:
                record[key] = str(item[key])
        if "DueDate" in item:
            record["_due"] = parse_day(item["DueDate"], "DueDate")
        box.touch(record)
        return record

    @app.get(f"{api}/Invoices/<invoice_id>/OnlineInvoice")
    def online_invoice(invoice_id: str) -> Response:
        def handle(t: Tenant) -> Response:
            record = find_invoice(t, invoice_id)
            if record["Type"] != "ACCREC" or record["Status"] in ("DRAFT", "DELETED"):
                raise validation_error("An online invoice exists only for approved sales "
                                       "invoices")
            url = f"{request.host_url}online/{t.tenant_id}/{record['InvoiceID']}"
            return _json({"OnlineInvoices": [{"OnlineInvoiceUrl": url}]})
        return accounting(handle)

    @app.get("/online/<tenant_id>/<invoice_id>")
    def online_page(tenant_id: str, invoice_id: str) -> tuple[str, int]:
        with box.lock:
            tenant = box.tenants_by_id.get(tenant_id)
            record = tenant.invoices.get(invoice_id) if tenant else None
            if tenant is None or record is None:
                return "Not found", 404
            return (f"<!doctype html><title>{escape(record['InvoiceNumber'])}</title>"
                    f"<h1>{escape(tenant.name)}</h1><p>Invoice "
                    f"{escape(record['InvoiceNumber'])}: {record['CurrencyCode']} "
                    f"{record['AmountDue']} due {record['_due']}</p>"), 200

    def history_out(entry: dict[str, Any]) -> dict[str, Any]:
        return {"Changes": entry["Changes"], "DateUTCString": entry["DateUTC"][:19],
                "DateUTC": ms_date(datetime.fromisoformat(entry["DateUTC"])),
                "User": entry["User"], "Details": entry["Details"]}

    @app.route(f"{api}/Invoices/<invoice_id>/History", methods=["GET", "PUT"])
    def invoice_history(invoice_id: str) -> Response:
        def handle(t: Tenant) -> Response:
            record = find_invoice(t, invoice_id)
            if request.method == "GET":
                return _json({"HistoryRecords": [
                    history_out(h) for h in t.history if h["InvoiceID"] == record["InvoiceID"]]})
            try:
                body = json.loads(request.get_data() or b"{}")
                details = [str(r["Details"]) for r in body["HistoryRecords"]]
            except (ValueError, KeyError, TypeError) as exc:
                raise validation_error("HistoryRecords with Details are required") from exc
            if any(not d.strip() or len(d) > 2500 for d in details):
                raise validation_error("Details must be 1 to 2500 characters")
            added = []
            for text in details:
                entry = {"InvoiceID": record["InvoiceID"], "Details": text,
                         "DateUTC": box.now.isoformat(), "User": "Dunwell (API)",
                         "Changes": "Note"}
                t.history.append(entry)
                added.append(history_out(entry))
            return _json({"HistoryRecords": added})
        return accounting(handle)

    @app.post(f"{api}/Invoices/<invoice_id>/Email")
    def email_invoice(invoice_id: str) -> Response:
        def handle(t: Tenant) -> Response:
            record = find_invoice(t, invoice_id)
            if record["Type"] != "ACCREC" or record["Status"] not in (
                    "SUBMITTED", "AUTHORISED", "PAID"):
                raise validation_error("Invoice must be an approved sales invoice to be emailed")
            contact = t.contacts.get(record["Contact"]["ContactID"], {})
            if not contact.get("EmailAddress"):
                raise validation_error("The contact does not have an email address")
            t.emails.append({"InvoiceID": record["InvoiceID"], "SentAt": box.now.isoformat()})
            if not record["SentToContact"]:
                record["SentToContact"] = True
                box.touch(record)
            return Response(status=204)
        return accounting(handle)

    # Introspection for tests and the demo ------------------------------------------------

    @app.get("/_sandbox/tenants")
    def sb_tenants() -> Response:
        return _json(box.tenants())

    @app.get("/_sandbox/tenants/<tenant_id>/history")
    def sb_history(tenant_id: str) -> Response:
        return _json(box.history(tenant_id, request.args.get("invoice_id")))

    @app.get("/_sandbox/tenants/<tenant_id>/emails")
    def sb_emails(tenant_id: str) -> Response:
        return _json(box.emails(tenant_id))

    @app.get("/_sandbox/calls")
    def sb_calls() -> Response:
        return _json({"calls": box.calls(request.args.get("tenant_id"))})

    @app.post("/_sandbox/tenants/<tenant_id>/invoices/<invoice_id>/payments")
    def sb_pay(tenant_id: str, invoice_id: str) -> Response:
        try:
            amount = Decimal(str((request.get_json(silent=True) or {})["amount"]))
            return _json(box.pay_invoice(tenant_id, invoice_id, amount))
        except (KeyError, ArithmeticError, ValueError) as exc:
            return _json({"error": str(exc)}, 400)

    @app.post("/_sandbox/expire-tokens")
    def sb_expire() -> Response:
        box.expire_access_tokens()
        return Response(status=204)

    @app.get("/")
    def index() -> str:
        with box.lock:
            rows = "".join(
                f"<tr><td>{escape(t.name)}</td><td>{len(t.contacts)}</td>"
                f"<td>{len(t.invoices)}</td><td>{len(t.emails)}</td><td>{len(t.history)}</td>"
                f"<td>{box.call_count.get(t.tenant_id, 0)}</td></tr>"
                for t in box.tenants_by_id.values())
        return ("<!doctype html><title>Xero sandbox</title><h1>Xero sandbox</h1><table>"
                "<tr><th>Organisation</th><th>Contacts</th><th>Invoices</th><th>Emails</th>"
                f"<th>History notes</th><th>API calls</th></tr>{rows}</table>")

    return app


def serve(host: str = "127.0.0.1", port: int = 5055, seed_today: date | None = None) -> None:
    from werkzeug.serving import run_simple

    sandbox = XeroSandbox()
    sandbox.seed_demo(seed_today or datetime.now(UTC).date())
    print(f"Xero sandbox on http://{host}:{port}", flush=True)
    run_simple(host, port, create_app(sandbox), threaded=True)
