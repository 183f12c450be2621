"""A local emulator of Xero's sign-in (OAuth 2.0) and Accounting API, for the demo and tests.

Same paths, field names, `/Date(ms+0000)/` formats, paging, rate-limit headers and 429s, token
lifetimes and single-use rotating refresh tokens (with Xero's 30-minute grace for a lost answer),
error bodies and Idempotency-Key replays as the real service. One origin serves what Xero splits
over three hosts: `/identity/connect/authorize` (login.xero.com), `/connect/token` and
`/connect/revocation` (identity.xero.com), `/connections` and `/api.xro/2.0/...`
(api.xero.com). `/_sandbox/...` is ours: introspection for tests and the demo.

Choices where Xero's behaviour is not published (each noted where it is made):
- `X-Rate-Limit-Problem` is lower case (`minute`, `day`, `appminute`, `concurrent`): a
  developer saw `minute` from the OAuth 2.0 API (github.com/XeroAPI/xero-node/issues/634);
  the others are guesses in the same form (the OAuth 1.0a API sent `Daily`/`Minute`,
  calcinai/xero-php#352); `SandboxConfig.rate_limit_problems` can rename them.
- The daily budget is a rolling 24-hour window, as Xero's limits page said (quoted in
  github.com/XeroAPI/xero-node/issues/262, 2019); its later wording, "counted against a fixed
  window which will reset at different times for each tenant ... use the Retry-After header"
  (quoted in blog.featherbear.cc, "Using Xero from a Developer's Perspective"), is not
  emulated exactly. Either way it is not 00:00 UTC, and Retry-After is the authority.
  `rolling_day=False` counts UTC calendar days.
- An Idempotency-Key reused for a different request (method, path or body) answers 400.
- Adding a history note leaves the invoice's UpdatedDateUTC alone; the first e-mail, which sets
  SentToContact, moves it.
- Each e-mail of an invoice appears in its GET /History as `Changes: "Sent"` with the time sent
  and "This invoice has been sent to <address>." (the wording is ours; the record is what Xero's
  History & Notes shows for every sent invoice). History is listed oldest first.
- GET /Invoices without `page` answers every invoice without its line items, as Xero does.
- Credit notes (GET, PUT and POST /CreditNotes, GET /CreditNotes/{id}, PUT
  /CreditNotes/{id}/Allocations): an allocation lowers the invoice's AmountDue, raises its
  AmountCredited, lists the credit note under the invoice's CreditNotes and marks invoice and
  credit note PAID at zero. Messages Xero has been seen to send are used as they are ("Credit
  Note cannot be allocated as amount is greater than amount outstanding", "The invoice you are
  trying to allocate to has already been paid off", "Credit Note cannot be allocated to an
  incorrect invoice type"); the others (a draft credit note, credit above RemainingCredit,
  another contact or currency, a missing Date) are ours. GET /CreditNotes answers line items
  with or without `page`. Only Status, Reference, Date, Contact and, while nothing is
  allocated, the lines of a credit note can be updated.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import math
import operator
import random
import re
import secrets
import threading
import time as wall
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from html import escape
from typing import Any
from urllib.parse import urlencode
from xml.etree import ElementTree

from flask import Flask, Response, request

from sandboxes.openid import SigningKeys
from sandboxes.webhooks import XeroWebhooks
from sandboxes.wire import ClientApp
from sandboxes.wire import json_response as _json
from sandboxes.xero_seed import seed_tenant

PROVIDER_NAME = "Dunwell Xero sandbox"
XERO_ISSUER = "https://identity.xero.com"
SANDBOX_USER_SUB = "4a5c2b1e00004000800000000000000a"
SANDBOX_XERO_USERID = "4a5c2b1e-0000-4000-8000-000000000001"
ID_TOKEN_SECONDS = 300  # UNVERIFIED: Xero's id_token lifetime is not published
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100
MAX_ELEMENTS = 50
QUOTES_PAGE_SIZE = 100  # GET /Quotes?page=n: 100 a page, no pageSize, no pagination element
QUOTE_STATUSES = ("DRAFT", "SENT", "DECLINED", "ACCEPTED", "INVOICED", "DELETED")
# Where a quote may go from each status, as Xero's quote screens allow (UNVERIFIED in detail).
QUOTE_MOVES = {"DRAFT": {"SENT", "DELETED"}, "SENT": {"ACCEPTED", "DECLINED", "DELETED", "DRAFT"},
               "ACCEPTED": {"INVOICED", "SENT", "DELETED"}, "DECLINED": {"SENT", "DELETED"},
               "INVOICED": {"ACCEPTED"}, "DELETED": set()}
CODE_SECONDS = 300
CENT = Decimal("0.01")
FOUR_DP = Decimal("0.0001")
ZERO_UUID = "00000000-0000-0000-0000-000000000000"
BANK_ACCOUNT = {"AccountID": "7d05a53d-613d-4eb2-a2fc-dcb6adb80b80", "Code": "090"}
# Sales tax by organisation country, and the TaxType Xero uses for it on sales lines.
TAX_RATES = {"GB": Decimal("0.20"), "NO": Decimal("0.25"), "NZ": Decimal("0.15"),
             "AU": Decimal("0.10"), "IE": Decimal("0.23"), "US": Decimal(0)}
SALES_TAX_TYPE = {"GB": "OUTPUT2", "AU": "OUTPUT", "NZ": "OUTPUT2"}
ZERO_TAX_TYPES = {"NONE", "ZERORATEDOUTPUT", "EXEMPTOUTPUT", "ZERORATED", "EXEMPTOUTPUTS"}
# Units of each currency per pound: a fixed "day rate" so multi-currency invoices have one.
CURRENCY_NAMES = {"GBP": "British Pound", "EUR": "Euro", "USD": "United States Dollar",
                  "NOK": "Norwegian Krone", "SEK": "Swedish Krona", "DKK": "Danish Krone",
                  "AUD": "Australian Dollar", "NZD": "New Zealand Dollar",
                  "CAD": "Canadian Dollar"}
PER_GBP = {"GBP": Decimal("1"), "EUR": Decimal("1.17"), "USD": Decimal("1.27"),
           "NOK": Decimal("13.60"), "SEK": Decimal("13.40"), "DKK": Decimal("8.72"),
           "AUD": Decimal("1.93"), "NZD": Decimal("2.11"), "CAD": Decimal("1.74")}


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _default_problems() -> dict[str, str]:
    return {"minute": "minute", "day": "day", "appminute": "appminute",
            "concurrent": "concurrent"}


@dataclass
class SandboxConfig:
    clients: dict[str, ClientApp] = field(default_factory=lambda: {
        "dunwell-demo": ClientApp("dunwell-demo-secret", [], "Dunwell (demo)")})
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
    # Where changes are posted as signed webhooks (None: not sent); sandboxes/webhooks.py.
    webhook_url: str | None = None
    webhook_batch_seconds: float = 0.5
    webhook_retries: int = 3
    webhook_api_url: str = "https://api.xero.com/api.xro/2.0"  # resourceUrl's base
    # Wall-clock seconds each Accounting call takes, so calls overlap as they do against Xero.
    latency_seconds: float = 0.0
    # Xero refuses line edits once a payment is allocated; True refuses every edit (UNVERIFIED).
    lock_paid_invoices: bool = False
    # X-Rate-Limit-Problem values, by limit.
    rate_limit_problems: dict[str, str] = field(default_factory=_default_problems)
    # How long an Idempotency-Key's first answer is replayed; past it the key is forgotten and
    # the same request is carried out again. UNVERIFIED: Xero's documentation of the header
    # (the Accounting API's OpenAPI description, specs/xero) names no retention period;
    # searched Xero's developer pages, SDK sources and issue threads without finding one.
    idempotency_window_seconds: int = 3600
    # Where OnlineInvoiceUrl points: https on Xero's host, as Xero sends it (the path is ours,
    # UNVERIFIED: Xero's is an opaque token). None: this sandbox's own address, so the demo's
    # links open the sandbox's page for the invoice.
    invoice_link_base: str | None = "https://in.xero.com/"
    # What a consent does to a tenant the user had already connected: True moves its connection
    # to the new auth event; False keeps the old authEventId and moves only updatedDateUtc, as
    # one developer reported (github.com/XeroAPI/xero-php-oauth2/issues/18). UNVERIFIED which
    # Xero does; Dunwell's connect flow is tested against both.
    reconsent_moves_auth_event: bool = True
    # Xero's daily limit counts "5000 calls in a rolling 24 hour window" (Xero's limits page,
    # as quoted in github.com/XeroAPI/xero-node/issues/262; later "a fixed window which will
    # reset at different times for each tenant"); False counts UTC calendar days.
    rolling_day: bool = True


# --- JSON as Xero writes it -------------------------------------------------------------


def ms_date(moment: datetime) -> str:
    return f"/Date({int(moment.timestamp() * 1000)}+0000)/"


def day_ms(day: date) -> str:
    return ms_date(datetime(day.year, day.month, day.day, tzinfo=UTC))


def envelope_stamp(moment: datetime) -> str:
    """The envelope's DateTimeUTC carries no offset, unlike the records inside it."""
    return f"/Date({int(moment.timestamp() * 1000)})/"


def _seconds(delta: timedelta) -> int:
    """Retry-After: whole seconds, rounded up, at least one."""
    return max(1, math.ceil(delta.total_seconds()))


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise InvalidOperation
    result = Decimal(str(value))
    if not result.is_finite():
        raise InvalidOperation
    return result


class ApiError(Exception):
    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


def validation_error(*messages: str, element: dict[str, Any] | None = None) -> ApiError:
    return validation_errors([{**(element or {}),
                               "ValidationErrors": [{"Message": m} for m in messages]}])


def validation_errors(elements: list[dict[str, Any]]) -> ApiError:
    return ApiError(400, {"ErrorNumber": 10, "Type": "ValidationException",
                          "Message": "A validation exception occurred", "Elements": elements})


def query_parse_error(message: str) -> ApiError:
    """A `where` Xero cannot parse: 400 QueryParseException, ErrorNumber 16, no Elements, with
    messages such as "Syntax error" and "Expression expected" (as quoted from Xero in
    github.com/XeroAPI/xero-php-oauth2/issues/23 and /307, waynerobinson/xeroizer#164 and
    XeroAPI/Xero-Java#347)."""
    return ApiError(400, {"ErrorNumber": 16, "Type": "QueryParseException", "Message": message})


def problem(status: int, title: str, detail: str) -> ApiError:
    return ApiError(status, {"Type": None, "Title": title, "Status": status, "Detail": detail,
                             "Instance": str(uuid.uuid4()), "Extensions": {}})


def not_found() -> ApiError:
    return problem(404, "Resource Not Found", "The resource you're looking for cannot be found")


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
    credit_notes: dict[str, dict[str, Any]] = field(default_factory=dict)
    quotes: dict[str, dict[str, Any]] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    emails: list[dict[str, Any]] = field(default_factory=list)

    @property
    def tax_rate(self) -> Decimal:
        return TAX_RATES.get(self.country, Decimal("0.20"))

    @property
    def sales_tax_type(self) -> str:
        return SALES_TAX_TYPE.get(self.country, "OUTPUT")

    def currency_rate(self, currency: str) -> Decimal:
        """Units of `currency` per unit of the base currency, as Xero's CurrencyRate."""
        if currency == self.base_currency:
            return Decimal("1.000000")
        return (PER_GBP[currency] / PER_GBP[self.base_currency]).quantize(Decimal("0.000001"))


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
    """All state, in memory, thread-safe (one threading.RLock)."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.lock = threading.RLock()
        self.tenants_by_id: dict[str, Tenant] = {}
        self.codes: dict[str, dict[str, Any]] = {}
        self.auth_events: dict[str, dict[str, Any]] = {}  # id -> {client_id, connections}
        self.signing_keys = SigningKeys()
        self.access_tokens: dict[str, dict[str, Any]] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        # (tenant, key) -> (request fingerprint, status, headers, body, when answered)
        self.idempotent: dict[tuple[str, str],
                              tuple[str, int, dict[str, str], str, datetime]] = {}
        self.minute_calls: dict[str, deque[datetime]] = {}
        self.day_calls: dict[tuple[str, date], int] = {}
        self.day_window: dict[str, deque[datetime]] = {}  # calls in the last 24 h, by tenant
        self.app_calls: deque[datetime] = deque()
        self.in_flight: dict[str, int] = {}
        self.call_count: dict[str, int] = {}
        self.webhooks = XeroWebhooks(self)  # start() once webhook_url is set

    @property
    def now(self) -> datetime:
        return self.config.clock()

    # tenants and seed data

    def add_tenant(self, name: str, country: str, base_currency: str, timezone: str, *,
                   tenant_id: str | None = None, short_code: str | None = None,
                   created: datetime | None = None) -> str:
        if base_currency not in PER_GBP:
            raise ValueError(f"the sandbox has no exchange rate for {base_currency}")
        with self.lock:
            tenant_id = tenant_id or str(uuid.uuid4())
            short = short_code or "!" + "".join(secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ")
                                                for _ in range(5))
            self.tenants_by_id[tenant_id] = Tenant(tenant_id, name, country, base_currency,
                                                   timezone, short, created or self.now)
            return tenant_id

    def seed_demo(self, today: date) -> None:
        rng = random.Random(f"tenants-{self.config.seed}")
        with self.lock:
            for index, (name, country, currency, zone) in enumerate((
                ("Harbour Coffee Roasters Ltd", "GB", "GBP", "GMTSTANDARDTIME"),
                ("Fjellbekk Design AS", "NO", "NOK", "WEUROPESTANDARDTIME"),
            )):
                tenant_id = self.add_tenant(
                    name, country, currency, zone,
                    tenant_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    short_code="!" + "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ")
                                             for _ in range(5)),
                    created=datetime(today.year - 3, 4, 1, 9, 30, tzinfo=UTC))
                seed_tenant(self.tenants_by_id[tenant_id], today, seed=self.config.seed + index)

    def tenant(self, tenant_id: str) -> Tenant:
        found = self.tenants_by_id.get(tenant_id)
        if found is None:
            raise KeyError(f"no tenant {tenant_id}")
        return found

    # consents and connections (one sandbox user; a connection is that user, the app, a tenant)

    def consent(self, client_id: str, tenant_ids: list[str]) -> str:
        """Record one consent (auth event) to the chosen tenants; returns its id.

        A tenant the user had already connected to the app keeps its connection id and
        createdDateUtc; it moves to the new auth event and its updatedDateUtc moves on, as the
        identity description says of updatedDateUtc ("the date when the user most recently
        connected this tenant"). UNVERIFIED: that the authEventId moves too; one developer
        reported in 2021 that it does not (github.com/XeroAPI/xero-php-oauth2/issues/18).
        """
        with self.lock:
            event_id = str(uuid.uuid4())
            chosen: dict[str, dict[str, Any]] = {}
            for tenant_id in tenant_ids:
                found = self.connection_of(client_id, tenant_id)
                if found is None:
                    chosen[str(uuid.uuid4())] = {"tenantId": tenant_id, "created": self.now,
                                                 "updated": self.now}
                    continue
                old_event, connection_id = found
                if not self.config.reconsent_moves_auth_event:
                    self.auth_events[old_event]["connections"][connection_id]["updated"] = \
                        self.now
                    continue
                record = self.auth_events[old_event]["connections"].pop(connection_id)
                chosen[connection_id] = {**record, "updated": self.now}
            # auth_time: when the person signed in for this consent (OpenID's claim).
            self.auth_events[event_id] = {"client_id": client_id, "connections": chosen,
                                          "auth_time": self.now}
            return event_id

    def connection_of(self, client_id: str, tenant_id: str) -> tuple[str, str] | None:
        """(auth event id, connection id) of the app's connection to a tenant, if any."""
        for event_id, event in self.auth_events.items():
            if event["client_id"] != client_id:
                continue
            for connection_id, record in event["connections"].items():
                if record["tenantId"] == tenant_id:
                    return event_id, connection_id
        return None

    def connections(self, client_id: str) -> list[tuple[str, str, dict[str, Any]]]:
        """Every (auth event id, connection id, record) the user has made to the app."""
        with self.lock:
            return [(event_id, connection_id, record)
                    for event_id, event in self.auth_events.items()
                    if event["client_id"] == client_id
                    for connection_id, record in event["connections"].items()]

    # introspection

    def tenants(self) -> list[dict[str, Any]]:
        with self.lock:
            return [{"tenantId": t.tenant_id, "tenantName": t.name, "countryCode": t.country,
                     "baseCurrency": t.base_currency} for t in self.tenants_by_id.values()]

    def history(self, tenant_id: str, invoice_id: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [{k: v for k, v in h.items() if k != "Changes"}
                    for h in self.tenant(tenant_id).history
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
            tenant = self.tenant(tenant_id)
            return [render_invoice(i, tenant) for i in tenant.invoices.values()]

    def contacts(self, tenant_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [render_contact(c) for c in self.tenant(tenant_id).contacts.values()]

    def credit_notes(self, tenant_id: str) -> list[dict[str, Any]]:
        with self.lock:
            tenant = self.tenant(tenant_id)
            return [render_credit_note(n, tenant) for n in tenant.credit_notes.values()]

    def expire_access_tokens(self) -> None:
        with self.lock:
            for token in self.access_tokens.values():
                token["expires_at"] = self.now - timedelta(seconds=1)

    # changes made "in Xero"

    def touch(self, record: dict[str, Any]) -> None:
        """Every change moves UpdatedDateUTC forward, even when the test clock stands still."""
        record["_updated"] = max(self.now, record.get("_updated", self.now) +
                                 timedelta(milliseconds=1))

    def add_invoice(self, tenant_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """A bookkeeper raises an invoice in Xero (one element of PUT /Invoices, as JSON)."""
        with self.lock:
            tenant = self.tenant(tenant_id)
            numbers = {i["InvoiceNumber"] for i in tenant.invoices.values()
                       if i["Type"] == "ACCREC"}
            try:
                record = new_invoice(tenant, copy.deepcopy(body), self.now, numbers)
            except Rejected as why:
                raise ValueError("; ".join(why.messages)) from why
            contact = record.pop("_contact", None)
            if contact is not None and contact.pop("_new", False):
                tenant.contacts[contact["ContactID"]] = contact
            record["_by_app"] = False
            self.touch(record)
            tenant.invoices[record["InvoiceID"]] = record
            return render_invoice(record, tenant)

    def add_quote(self, tenant_id: str, contact_id: str, amount: Decimal | str, *,
                  status: str = "SENT", issued: date | None = None,
                  expiry: date | None = None, currency: str | None = None,
                  description: str = "Project work as quoted") -> dict[str, Any]:
        """A bookkeeper raises a quote in Xero: one line of `amount` before tax."""
        with self.lock:
            tenant = self.tenant(tenant_id)
            contact = tenant.contacts.get(contact_id.lower())
            if contact is None:
                raise KeyError(f"no contact {contact_id}")
            if status not in QUOTE_STATUSES:
                raise ValueError(f"a quote's status is one of {', '.join(QUOTE_STATUSES)}")
            currency = currency or tenant.base_currency
            if currency not in PER_GBP:
                raise ValueError(f"the sandbox has no exchange rate for {currency}")
            record = new_quote(tenant, contact, _decimal(amount), status,
                               issued or self.now.date(), expiry, currency, description)
            self.touch(record)
            tenant.quotes[record["QuoteID"]] = record
            return render_quote(record, tenant)

    def set_quote_status(self, tenant_id: str, quote_id: str, status: str) -> dict[str, Any]:
        """The customer accepts or declines, or the bookkeeper invoices or deletes a quote."""
        with self.lock:
            tenant = self.tenant(tenant_id)
            record = tenant.quotes.get(quote_id.lower())
            if record is None:
                raise KeyError(f"no quote {quote_id}")
            if status not in QUOTE_MOVES[record["Status"]]:
                raise ValueError(f"a {record['Status']} quote cannot become {status}")
            record["Status"] = status
            self.touch(record)
            return render_quote(record, tenant)

    def pay_invoice(self, tenant_id: str, invoice_id: str, amount: Decimal,
                    on: date | None = None) -> dict[str, Any]:
        with self.lock:
            tenant = self.tenant(tenant_id)
            invoice = tenant.invoices.get(invoice_id)
            if invoice is None:
                raise KeyError(f"no invoice {invoice_id}")
            amount = _decimal(amount).quantize(CENT, ROUND_HALF_UP)
            if invoice["Status"] != "AUTHORISED" or not 0 < amount <= invoice["AmountDue"]:
                raise ValueError("payment must be positive, at most the amount due, on an "
                                 "AUTHORISED invoice")
            paid_on = on or self.now.date()
            payment: dict[str, Any] = {
                "PaymentID": str(uuid.uuid4()), "_date": paid_on, "Amount": amount,
                "CurrencyRate": invoice["CurrencyRate"],
                "PaymentType": "ACCRECPAYMENT" if invoice["Type"] == "ACCREC"
                else "ACCPAYPAYMENT",
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


# Fields every contact in the examples of Xero's description carries, empty when unset
# (tap-xero reads ContactGroups on every contact).
CONTACT_DEFAULTS: dict[str, Any] = {"BankAccountDetails": "", "TaxNumber": "",
                                    "HasValidationErrors": False}


# A contact's two addresses and four phones, empty until filled in, as every contact in the
# examples of Xero's description lists them.
EMPTY_ADDRESSES = ({"AddressType": "STREET", "City": "", "Region": "", "PostalCode": "",
                    "Country": ""},
                   {"AddressType": "POBOX", "AddressLine1": "", "AddressLine2": "",
                    "AddressLine3": "", "AddressLine4": "", "City": "", "Region": "",
                    "PostalCode": "", "Country": ""})
EMPTY_PHONES = tuple({"PhoneType": kind, "PhoneNumber": "", "PhoneAreaCode": "",
                      "PhoneCountryCode": ""} for kind in ("DDI", "DEFAULT", "FAX", "MOBILE"))
# How a contact appears inside another record (an invoice, a credit note): the lists empty.
NESTED_CONTACT_DEFAULTS: dict[str, Any] = {"Addresses": [], "Phones": [], "ContactGroups": [],
                                           "ContactPersons": [], "HasValidationErrors": False}


def _filled(given: list[dict[str, Any]], empty: tuple[dict[str, Any], ...],
            key: str) -> list[dict[str, Any]]:
    kinds = {item.get(key) for item in given}
    return [*copy.deepcopy(given), *(dict(e) for e in empty if e[key] not in kinds)]


def render_contact(contact: dict[str, Any]) -> dict[str, Any]:
    out = {**CONTACT_DEFAULTS, **{k: v for k, v in contact.items() if not k.startswith("_")}}
    out.setdefault("ContactGroups", [])
    out.setdefault("ContactPersons", [])
    out["Addresses"] = _filled(out.get("Addresses") or [], EMPTY_ADDRESSES, "AddressType")
    out["Phones"] = _filled(out.get("Phones") or [], EMPTY_PHONES, "PhoneType")
    out["UpdatedDateUTC"] = ms_date(contact["_updated"])
    return out


def render_invoice(invoice: dict[str, Any], tenant: Tenant | None = None,
                   summary: bool = False, unit_dp: int = 2) -> dict[str, Any]:
    out = {k: v for k, v in invoice.items() if not k.startswith("_")}
    out["Date"] = day_ms(invoice["_date"])
    out["DateString"] = invoice["_date"].isoformat() + "T00:00:00"
    out["DueDate"] = day_ms(invoice["_due"])
    out["DueDateString"] = invoice["_due"].isoformat() + "T00:00:00"
    out["UpdatedDateUTC"] = ms_date(invoice["_updated"])
    if invoice.get("_paid_on"):
        out["FullyPaidOnDate"] = day_ms(invoice["_paid_on"])
    step = FOUR_DP if unit_dp == 4 else CENT
    out["LineItems"] = [{**line, "UnitAmount": line["UnitAmount"].quantize(step, ROUND_HALF_UP)}
                        for line in invoice["LineItems"]]
    if tenant is not None:
        contact = tenant.contacts.get(invoice["Contact"]["ContactID"])
        if contact is not None:
            out["Contact"] = {"ContactID": contact["ContactID"], "Name": contact["Name"],
                              **({"EmailAddress": contact["EmailAddress"]}
                                 if contact.get("EmailAddress") else {}),
                              **copy.deepcopy(NESTED_CONTACT_DEFAULTS)}
        out["Payments"] = [
            {"PaymentID": p["PaymentID"], "Date": day_ms(p["_date"]), "Amount": p["Amount"],
             "CurrencyRate": p["CurrencyRate"], "HasAccount": True,
             "HasValidationErrors": False}
            for pid in invoice["_payments"] if (p := tenant.payments.get(pid))]
        out["CreditNotes"] = [applied_credit(tenant, note_id, allocation_id)
                              for note_id, allocation_id in invoice.get("_credits", ())]
        out["Prepayments"], out["Overpayments"] = [], []  # none are ever made here
    if summary:
        out.pop("LineItems", None)
    return out


def new_quote(tenant: Tenant, contact: dict[str, Any], amount: Decimal, status: str,
              issued: date, expiry: date | None, currency: str,
              description: str) -> dict[str, Any]:
    amount = amount.quantize(CENT, ROUND_HALF_UP)
    if amount <= 0:
        raise ValueError("a quote's amount must be positive")
    tax = (amount * tenant.tax_rate).quantize(CENT, ROUND_HALF_UP)
    numbers = [int(q["QuoteNumber"].removeprefix("QU-")) for q in tenant.quotes.values()
               if q["QuoteNumber"].removeprefix("QU-").isdigit()]
    return {
        "QuoteID": str(uuid.uuid4()), "QuoteNumber": f"QU-{max(numbers, default=0) + 1:04d}",
        "Reference": "", "Terms": "Valid for 30 days",
        "Contact": {"ContactID": contact["ContactID"], "Name": contact["Name"]},
        "LineItems": [{"LineItemID": str(uuid.uuid4()), "Description": description,
                       "Quantity": Decimal("1.0000"), "UnitAmount": amount,
                       "AccountCode": "200", "TaxType": tenant.sales_tax_type,
                       "TaxAmount": tax, "LineAmount": amount, "Tracking": []}],
        "Status": status, "CurrencyCode": currency,
        "CurrencyRate": tenant.currency_rate(currency), "SubTotal": amount, "TotalTax": tax,
        "Total": amount + tax, "TotalDiscount": Decimal("0.00"), "Title": "Quote",
        "Summary": "", "LineAmountTypes": "EXCLUSIVE",
        "_date": issued, "_expiry": expiry or issued + timedelta(days=30),
    }


def render_quote(quote: dict[str, Any], tenant: Tenant | None = None) -> dict[str, Any]:
    out = {k: copy.deepcopy(v) for k, v in quote.items() if not k.startswith("_")}
    out["Date"] = day_ms(quote["_date"])
    out["DateString"] = quote["_date"].isoformat() + "T00:00:00"
    out["ExpiryDate"] = day_ms(quote["_expiry"])
    out["ExpiryDateString"] = quote["_expiry"].isoformat() + "T00:00:00"
    out["UpdatedDateUTC"] = ms_date(quote["_updated"])
    if tenant is not None:
        contact = tenant.contacts.get(quote["Contact"]["ContactID"])
        if contact is not None:
            out["Contact"] = {"ContactID": contact["ContactID"], "Name": contact["Name"],
                              **copy.deepcopy(NESTED_CONTACT_DEFAULTS)}
    return out


def applied_credit(tenant: Tenant, note_id: str, allocation_id: str) -> dict[str, Any]:
    """A credit note as an invoice lists it: what it gave that invoice, and when."""
    note = tenant.credit_notes[note_id]
    allocation = next(a for a in note["_allocations"] if a["AllocationID"] == allocation_id)
    return {"CreditNoteID": note["CreditNoteID"], "CreditNoteNumber": note["CreditNoteNumber"],
            "ID": note["CreditNoteID"], "AppliedAmount": allocation["Amount"],
            "Date": day_ms(allocation["_date"]),
            "DateString": allocation["_date"].isoformat() + "T00:00:00",
            "Total": note["Total"], "LineItems": []}


def render_allocation(allocation: dict[str, Any], note: dict[str, Any],
                      tenant: Tenant) -> dict[str, Any]:
    invoice = tenant.invoices[allocation["_invoice_id"]]
    return {"AllocationID": allocation["AllocationID"], "Amount": allocation["Amount"],
            "Date": day_ms(allocation["_date"]),
            "Invoice": {"InvoiceID": invoice["InvoiceID"],
                        "InvoiceNumber": invoice["InvoiceNumber"], "Payments": [],
                        "CreditNotes": [], "Prepayments": [], "Overpayments": [],
                        "HasErrors": False, "IsDiscounted": False, "LineItems": [],
                        "ValidationErrors": []},
            "CreditNote": {"CreditNoteID": note["CreditNoteID"], "ID": note["CreditNoteID"],
                           "LineItems": []},
            "ValidationErrors": []}


def render_credit_note(note: dict[str, Any], tenant: Tenant | None = None,
                       unit_dp: int = 2) -> dict[str, Any]:
    out = {k: v for k, v in note.items() if not k.startswith("_")}
    out["ID"] = note["CreditNoteID"]
    out["Date"] = day_ms(note["_date"])
    out["DateString"] = note["_date"].isoformat() + "T00:00:00"
    out["UpdatedDateUTC"] = ms_date(note["_updated"])
    if note.get("_paid_on"):
        out["FullyPaidOnDate"] = day_ms(note["_paid_on"])
    step = FOUR_DP if unit_dp == 4 else CENT
    out["LineItems"] = [{**line, "UnitAmount": line["UnitAmount"].quantize(step, ROUND_HALF_UP)}
                        for line in note["LineItems"]]
    out["Payments"] = []
    if tenant is not None:
        contact = tenant.contacts.get(note["Contact"]["ContactID"])
        if contact is not None:
            out["Contact"] = {"ContactID": contact["ContactID"], "Name": contact["Name"],
                              **copy.deepcopy(NESTED_CONTACT_DEFAULTS)}
        out["Allocations"] = [render_allocation(a, note, tenant) for a in note["_allocations"]]
    return out


def render_payment(payment: dict[str, Any], tenant: Tenant) -> dict[str, Any]:
    out = {k: v for k, v in payment.items() if not k.startswith("_")}
    out["Date"] = day_ms(payment["_date"])
    out["UpdatedDateUTC"] = ms_date(payment["_updated"])
    invoice = tenant.invoices[payment["_invoice_id"]]
    out["Invoice"] = {"InvoiceID": invoice["InvoiceID"], "InvoiceNumber":
                      invoice["InvoiceNumber"], "Type": invoice["Type"],
                      "Contact": {"ContactID": invoice["Contact"]["ContactID"],
                                  "Name": invoice["Contact"]["Name"],
                                  **copy.deepcopy(NESTED_CONTACT_DEFAULTS)},
                      "CurrencyCode": invoice["CurrencyCode"], "Payments": [],
                      "CreditNotes": [], "Prepayments": [], "Overpayments": [],
                      "HasErrors": False, "IsDiscounted": False, "LineItems": []}
    out["Account"] = dict(BANK_ACCOUNT)
    # The bank account is in the base currency: what reached it, at the payment's rate.
    out["BankAmount"] = (_decimal(payment["Amount"]) / _decimal(payment["CurrencyRate"])) \
        .quantize(CENT, ROUND_HALF_UP)
    out["HasAccount"], out["HasValidationErrors"] = True, False
    return out


def _xml_value(element: ElementTree.Element) -> Any:
    children = list(element)
    if not children:
        text = (element.text or "").strip()
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
        if re.fullmatch(r"-?\d+(\.\d+)?", text):
            return Decimal(text)
        return text
    tags = {child.tag for child in children}
    if len(tags) == 1 and element.tag == f"{children[0].tag}s":  # <LineItems><LineItem>...
        return [_xml_value(child) for child in children]
    return {child.tag: _xml_value(child) for child in children}


def xml_body(raw: bytes) -> Any:
    """Xero's XML writes as the JSON the handlers read: a plural root (<Invoices>) is
    {"Invoices": [...]}, a singular one (<HistoryRecord>) one bare object; a container named
    the plural of its repeated child is a list."""
    if b"<!" in raw:  # no DOCTYPE, so no entities to expand: the parse below stays bounded
        raise ElementTree.ParseError("a DOCTYPE is not accepted")
    root = ElementTree.fromstring(raw)  # noqa: S314 - no DTD can reach it (above)
    value = _xml_value(root)
    return {root.tag: value} if isinstance(value, list) else value


# --- Query language (the part of Xero's `where` that integrations use) ------------------

_TOKEN = re.compile(r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<op>==|!=|>=|<=|&&|\|\||[=<>(),!])'
                    r"|(?P<num>-?\d+(?:\.\d+)?)|(?P<word>[A-Za-z_][A-Za-z0-9_.]*))")
_MS = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq, "=": operator.eq, "!=": operator.ne, ">": operator.gt,
    "<": operator.lt, ">=": operator.ge, "<=": operator.le}
Predicate = Callable[[dict[str, Any]], bool]


def _lookup(record: Any, path: str) -> Any:
    """Field names in `where` and `order` are case-insensitive, as in Xero."""
    value = record
    for step in path.split("."):
        if not isinstance(value, dict):
            return None
        wanted = step.lower()
        value = next((v for k, v in value.items() if k.lower() == wanted), None)
    return value


def _as_moment(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    match = _MS.match(value)
    if match:
        return datetime.fromtimestamp(int(match.group(1)) / 1000, tz=UTC)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


class WhereClause:
    """Xero's `where` is a .NET LINQ dialect: comparisons, AND/OR/NOT, brackets, Guid(...),
    DateTime(y,m,d[,h,m,s]), DateTime.Parse("...") (github.com/waynerobinson/xeroizer/issues/164,
    XeroAPI/xero-node#456), null, and the string methods Contains/StartsWith/EndsWith.
    Whatever does not parse is a QueryParseException; the messages follow System.Linq.Dynamic,
    whose parser Xero's messages match ("Syntax error", "Expression expected"); UNVERIFIED:
    the wording of the others ("No property or field ...", "Operator ... incompatible ...")."""

    def __init__(self, text: str, kind: str, fields: set[str]) -> None:
        self.text, self.kind, self.fields = text, kind, {f.lower() for f in fields}
        self.tokens: list[tuple[str, str]] = []
        position = 0
        while position < len(text):
            match = _TOKEN.match(text, position)
            if match is None or match.end() == position:
                if text[position:].strip():
                    self.fail("Syntax error")
                break
            found = match.lastgroup or ""
            self.tokens.append((found, match.group(found)))
            position = match.end()
        self.at = 0
        self.predicate = self.disjunction()
        if self.at != len(self.tokens):
            self.fail("Syntax error")

    def fail(self, why: str) -> None:
        raise query_parse_error(why)

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.at] if self.at < len(self.tokens) else ("end", "")

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token[0] == "end":
            self.fail("Expression expected")
        self.at += 1
        return token

    def accept(self, *texts: str) -> bool:
        kind, text = self.peek()
        if kind in ("op", "word") and text.upper() in texts:
            self.at += 1
            return True
        return False

    def expect(self, text: str) -> None:
        if not self.accept(text):
            self.fail(f"'{text}' expected")

    def disjunction(self) -> Predicate:
        parts = [self.conjunction()]
        while self.accept("OR", "||"):
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else lambda r: any(p(r) for p in parts)

    def conjunction(self) -> Predicate:
        parts = [self.negation()]
        while self.accept("AND", "&&"):
            parts.append(self.negation())
        return parts[0] if len(parts) == 1 else lambda r: all(p(r) for p in parts)

    def negation(self) -> Predicate:
        if self.accept("NOT", "!"):
            inner = self.negation()
            return lambda r: not inner(r)
        if self.accept("("):
            inner = self.disjunction()
            self.expect(")")
            return inner
        return self.comparison()

    def check_field(self, path: str) -> None:
        top = path.split(".")[0]
        if self.fields and top.lower() not in self.fields:
            self.fail(f"No property or field '{top}' exists in type '{self.kind}'")

    def comparison(self) -> Predicate:
        kind, name = self.take()
        if kind != "word":
            self.fail("Expression expected")
        path, _, method = name.rpartition(".")
        if path and method.lower() in ("contains", "startswith", "endswith") \
                and self.peek() == ("op", "("):
            self.expect("(")
            needle = self.value()
            self.expect(")")
            if not isinstance(needle, str):
                self.fail(f"{method} takes a string")
            self.check_field(path)
            test: Callable[[str, str], bool] = {
                "contains": lambda h, n: n in h, "startswith": str.startswith,
                "endswith": str.endswith}[method.lower()]
            folded = str(needle).casefold()
            return lambda r: isinstance(v := _lookup(r, path), str) and test(v.casefold(),
                                                                             folded)
        self.check_field(name)
        op_kind, op = self.take()
        if op_kind != "op" or op not in _COMPARE:
            self.fail("Syntax error")
        wanted = self.value()
        if (wanted is None or isinstance(wanted, bool)) and op not in ("==", "=", "!="):
            self.fail("null, true and false can only be compared with == or !=")
        return lambda r: self.compare(_lookup(r, name), op, wanted)

    def value(self) -> Any:
        kind, text = self.take()
        if kind == "str":
            return re.sub(r"\\(.)", r"\1", text[1:-1])
        if kind == "num":
            return Decimal(text)
        word = text.lower() if kind == "word" else ""
        if word in ("true", "false"):
            return word == "true"
        if word == "null":
            return None
        if word == "guid":
            self.expect("(")
            guid = self.value()
            self.expect(")")
            if not isinstance(guid, str) or not _UUID.match(guid):
                self.fail("Guid(...) needs a GUID in quotes")
            return guid
        if word == "datetime.parse":
            self.expect("(")
            given = self.value()
            self.expect(")")
            try:
                parsed = datetime.fromisoformat(given) if isinstance(given, str) else None
            except ValueError:
                parsed = None
            if parsed is None:
                self.fail("String was not recognized as a valid DateTime.")  # UNVERIFIED
            assert parsed is not None
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed
        if word == "datetime":
            self.expect("(")
            parts = [self.value()]
            while self.accept(","):
                parts.append(self.value())
            self.expect(")")
            if len(parts) not in (3, 6) or not all(isinstance(p, Decimal) for p in parts):
                self.fail("DateTime takes (year, month, day[, hour, minute, second])")
            try:
                y, mo, d, h, mi, sec = ([int(p) for p in parts] + [0, 0, 0])[:6]
                return datetime(y, mo, d, h, mi, sec, tzinfo=UTC)
            except ValueError:
                self.fail("DateTime is not a real date")
        self.fail("Expression expected")
        return None  # fail() always raises

    def compare(self, value: Any, op: str, wanted: Any) -> bool:
        if wanted is None:
            return (value is None) == (op != "!=")
        if value is None:
            return op == "!="
        try:
            if isinstance(wanted, bool):
                if not isinstance(value, bool):
                    raise TypeError
                return bool(_COMPARE[op](value, wanted))
            if isinstance(wanted, datetime):
                moment = _as_moment(value)
                if moment is None:
                    raise TypeError
                return bool(_COMPARE[op](moment, wanted))
            if isinstance(wanted, Decimal):
                return bool(_COMPARE[op](_decimal(value), wanted))
            if isinstance(value, bool | dict | list):
                raise TypeError
            text = str(value)
            if _UUID.match(wanted) and _UUID.match(text):
                text, wanted = text.lower(), wanted.lower()
            return bool(_COMPARE[op](text, wanted))
        except (TypeError, InvalidOperation) as exc:
            raise query_parse_error(f"Operator '{op}' incompatible with operand types") \
                from exc

    def __call__(self, record: dict[str, Any]) -> bool:
        return bool(self.predicate(record))


def _sort_value(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, int | Decimal):
        return (1, value)
    if isinstance(value, str):
        match = _MS.match(value)
        return (1, int(match.group(1))) if match else (2, value.casefold())
    return (3, 0)


def order_records(records: list[dict[str, Any]], order: str, id_key: str, kind: str,
                  fields: set[str]) -> list[dict[str, Any]]:
    """`order=Field [ASC|DESC][, ...]`; ties fall back to the ID so paging is stable."""
    clauses = []
    known = {f.lower() for f in fields}
    for part in order.split(","):
        words = part.split()
        if not words:
            continue
        if len(words) > 2 or (len(words) == 2 and words[1].upper() not in ("ASC", "DESC")):
            raise validation_error(f"The order clause '{order}' is not valid")
        if known and words[0].split(".")[0].lower() not in known:
            raise validation_error(f"No property or field '{words[0]}' exists in type "
                                   f"'{kind}'")
        clauses.append((words[0], len(words) == 2 and words[1].upper() == "DESC"))
    ordered = sorted(records, key=lambda r: str(r.get(id_key, "")))
    for name, descending in reversed(clauses):
        ordered.sort(key=lambda r, n=name: _sort_value(_lookup(r, n)),  # type: ignore[misc]
                     reverse=descending)
    return ordered


def parse_if_modified_since(value: str | None) -> datetime | None:
    """ISO 8601 as xero-python sends it (naive means UTC), or an RFC 7231 HTTP-date."""
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


def parse_day(value: Any, name: str) -> date:
    """`/Date(ms)/`, `/Date(ms+0000)/` or `YYYY-MM-DD[THH:MM:SS]`, as the SDKs send dates."""
    text = str(value)
    match = _MS.match(text)
    try:
        if match:
            return datetime.fromtimestamp(int(match.group(1)) / 1000, tz=UTC).date()
        return date.fromisoformat(text[:10])
    except ValueError as exc:
        raise validation_error(f"{name} '{text}' is not a valid date") from exc


# --- Invoices: validation, pricing, changes ---------------------------------------------


class Rejected(Exception):
    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages


def price_lines(tenant: Tenant, lines: Any, amount_types: str, status: str,
                problems: list[str], documents: str = "Invoices"
                ) -> tuple[list[dict[str, Any]], Decimal, Decimal]:
    """Line amounts, tax (rounded half up per line) and the subtotal, as Xero computes them."""
    if lines is None:
        lines = []
    if not isinstance(lines, list):
        problems.append("LineItems must be a list")
        return [], Decimal(0), Decimal(0)
    if not lines and status != "DRAFT":
        problems.append(f"{documents} must have at least one line item")
    rate = tenant.tax_rate
    out: list[dict[str, Any]] = []
    subtotal = tax = Decimal(0)
    for number, line in enumerate(lines, start=1):
        if not isinstance(line, dict):
            problems.append(f"Line item {number} is not an object")
            continue
        try:
            quantity = _decimal(line.get("Quantity", 1)).quantize(FOUR_DP, ROUND_HALF_UP)
            unit_raw, amount_raw = line.get("UnitAmount"), line.get("LineAmount")
            discount = _decimal(line.get("DiscountRate") or 0)
            if unit_raw is None and amount_raw is not None:
                unit = (_decimal(amount_raw) / quantity) if quantity else Decimal(0)
            else:
                unit = _decimal(unit_raw if unit_raw is not None else 0)
        except (InvalidOperation, ArithmeticError):
            problems.append(f"Line item {number}: Quantity, UnitAmount, LineAmount and "
                            "DiscountRate must be numbers")
            continue
        unit = unit.quantize(FOUR_DP, ROUND_HALF_UP)
        description = str(line.get("Description") or "")
        if len(description) > 4000:
            problems.append("Description must not exceed 4000 characters")
        if unit_raw is None and amount_raw is None and not description:
            problems.append("Description cannot be empty")
        amount = (quantity * unit * (1 - discount / 100)).quantize(CENT, ROUND_HALF_UP)
        account = str(line.get("AccountCode") or "")
        if not account and amount and status != "DRAFT":
            problems.append("Account code must be specified")
        tax_type = str(line.get("TaxType") or ("NONE" if amount_types == "NoTax"
                                               else tenant.sales_tax_type))
        if amount_types == "NoTax" or tax_type in ZERO_TAX_TYPES:
            line_tax = Decimal(0)
        elif amount_types == "Inclusive":
            line_tax = (amount * rate / (1 + rate)).quantize(CENT, ROUND_HALF_UP)
        else:
            line_tax = (amount * rate).quantize(CENT, ROUND_HALF_UP)
        priced: dict[str, Any] = {
            "LineItemID": str(line.get("LineItemID") or uuid.uuid4()),
            "Description": description, "Quantity": quantity, "UnitAmount": unit,
            "AccountCode": account, "TaxType": tax_type, "TaxAmount": line_tax,
            "LineAmount": amount, "Tracking": []}
        if line.get("ItemCode"):
            priced["ItemCode"] = str(line["ItemCode"])
        if discount:
            priced["DiscountRate"] = discount
        out.append(priced)
        subtotal += amount - line_tax if amount_types == "Inclusive" else amount
        tax += line_tax
    return out, subtotal, tax


def _next_number(numbers: set[str]) -> str:
    taken = [int(m.group(1)) for n in numbers if (m := re.fullmatch(r"INV-(\d+)", n))]
    return f"INV-{max(taken, default=0) + 1:04d}"


def _contact_for(tenant: Tenant, given: Any, invoice_type: str, now: datetime,
                 problems: list[str]) -> dict[str, Any] | None:
    """By ContactID, else by Name; an unknown Name makes a new contact, as in Xero."""
    if not isinstance(given, dict) or not (given.get("ContactID") or given.get("Name")):
        problems.append("A Contact must be specified for this type of transaction")
        return None
    if given.get("ContactID"):
        found = tenant.contacts.get(str(given["ContactID"]).lower())
        if found is None:
            problems.append(f"The contact with ID '{given['ContactID']}' could not be found")
        return found
    name = str(given["Name"]).strip()
    found = next((c for c in tenant.contacts.values() if c["Name"].casefold() ==
                  name.casefold()), None)
    if found is None:
        found = {"ContactID": str(uuid.uuid4()), "ContactStatus": "ACTIVE", "Name": name,
                 "IsCustomer": invoice_type == "ACCREC", "IsSupplier": invoice_type == "ACCPAY",
                 "Addresses": [], "Phones": [], "HasAttachments": False, "_updated": now,
                 "_new": True}
        if given.get("EmailAddress"):
            found["EmailAddress"] = str(given["EmailAddress"])
    return found


def _check_currency(tenant: Tenant, currency: str, problems: list[str]) -> None:
    if currency != tenant.base_currency and currency not in PER_GBP:
        problems.append(f"Organisation is not subscribed to currency {currency}")


def parse_or_note(value: Any, name: str, default: date, problems: list[str]) -> date:
    if value in (None, ""):
        return default
    try:
        return parse_day(value, name)
    except ApiError:
        problems.append(f"{name} '{value}' is not a valid date")
        return default


def new_invoice(tenant: Tenant, item: dict[str, Any], now: datetime,
                numbers: set[str]) -> dict[str, Any]:
    problems: list[str] = []
    kind = item.get("Type")
    if kind not in ("ACCREC", "ACCPAY"):
        problems.append("Invoice Type must be ACCREC or ACCPAY")
    status = str(item.get("Status") or "DRAFT")
    if status not in ("DRAFT", "SUBMITTED", "AUTHORISED"):
        problems.append(f"Invoice not of valid status for creation ({status})")
    contact = _contact_for(tenant, item.get("Contact"), str(kind), now, problems)
    amount_types = str(item.get("LineAmountTypes") or "Exclusive")
    if amount_types not in ("Exclusive", "Inclusive", "NoTax"):
        problems.append("LineAmountTypes must be Exclusive, Inclusive or NoTax")
    lines, subtotal, tax = price_lines(tenant, item.get("LineItems"), amount_types, status,
                                       problems)
    currency = str(item.get("CurrencyCode") or tenant.base_currency)
    _check_currency(tenant, currency, problems)
    issued = parse_or_note(item.get("Date"), "Date", now.date(), problems)
    due = parse_or_note(item.get("DueDate"), "DueDate", issued, problems)
    number = str(item.get("InvoiceNumber") or "")
    if kind == "ACCREC":
        if number in numbers:
            problems.append("Invoice # must be unique.")
        number = number or _next_number(numbers)
    reference = str(item.get("Reference") or "")
    if len(reference) > 255:
        problems.append("Reference must not exceed 255 characters")
    if problems or contact is None:
        raise Rejected(problems)
    numbers.add(number)
    return {
        "Type": kind, "InvoiceID": str(uuid.uuid4()), "InvoiceNumber": number,
        "Reference": reference,
        "Contact": {"ContactID": contact["ContactID"], "Name": contact["Name"]},
        "LineItems": lines, "LineAmountTypes": amount_types, "CurrencyCode": currency,
        "CurrencyRate": tenant.currency_rate(currency), "Status": status,
        "SubTotal": subtotal, "TotalTax": tax, "Total": subtotal + tax,
        "AmountDue": subtotal + tax, "AmountPaid": Decimal(0), "AmountCredited": Decimal(0),
        "SentToContact": False, "HasAttachments": False, "IsDiscounted": False,
        "HasErrors": False, "_date": issued, "_due": due, "_payments": [], "_by_app": True,
        "_contact": contact, "_updated": now,
    }


STATUS_MOVES = {"DRAFT": {"DRAFT", "SUBMITTED", "AUTHORISED", "DELETED"},
                "SUBMITTED": {"SUBMITTED", "DRAFT", "AUTHORISED", "DELETED"},
                "AUTHORISED": {"AUTHORISED", "VOIDED"}}
ALLOCATED = ("This document cannot be edited as it has a payment or credit note allocated to "
             "it.")


def changed_invoice(tenant: Tenant, record: dict[str, Any], item: dict[str, Any],
                    now: datetime, numbers: set[str], lock_paid: bool) -> dict[str, Any]:
    """A copy of `record` with the update applied; nothing is stored until all items pass."""
    problems: list[str] = []
    allocated = record["AmountPaid"] > 0 or record["AmountCredited"] > 0
    editable = {k for k in item if k not in ("InvoiceID", "Type")}
    if record["Status"] == "PAID" or (allocated and lock_paid and editable):
        raise Rejected([ALLOCATED])
    if record["Status"] in ("VOIDED", "DELETED"):
        raise Rejected([f"Invoice not of valid status for modification ({record['Status']})"])
    out = copy.deepcopy(record)
    status = str(item.get("Status") or record["Status"])
    if status not in STATUS_MOVES.get(record["Status"], set()):
        problems.append(f"Invoice not of valid status for modification ({record['Status']} "
                        f"to {status})")
    if status == "VOIDED" and allocated:
        problems.append("This invoice has a payment or credit note allocated. It cannot be "
                        "voided.")
    touches_amounts = any(k in item for k in ("LineItems", "LineAmountTypes", "CurrencyCode"))
    if touches_amounts and allocated:
        problems.append(ALLOCATED)
    amount_types = str(item.get("LineAmountTypes") or record["LineAmountTypes"])
    if amount_types not in ("Exclusive", "Inclusive", "NoTax"):
        problems.append("LineAmountTypes must be Exclusive, Inclusive or NoTax")
    if "CurrencyCode" in item:
        _check_currency(tenant, str(item["CurrencyCode"]), problems)
        out["CurrencyCode"] = str(item["CurrencyCode"])
        if out["CurrencyCode"] in PER_GBP:
            out["CurrencyRate"] = tenant.currency_rate(out["CurrencyCode"])
    if touches_amounts or status != record["Status"]:
        given = item["LineItems"] if "LineItems" in item else record["LineItems"]
        lines, subtotal, tax = price_lines(tenant, given, amount_types, status, problems)
        if not allocated:
            out.update({"LineItems": lines, "LineAmountTypes": amount_types,
                        "SubTotal": subtotal, "TotalTax": tax, "Total": subtotal + tax,
                        "AmountDue": subtotal + tax - out["AmountCredited"]})
    if "Contact" in item:
        contact = _contact_for(tenant, item["Contact"], record["Type"], now, problems)
        if contact is not None:
            out["Contact"] = {"ContactID": contact["ContactID"], "Name": contact["Name"],
                              **copy.deepcopy(NESTED_CONTACT_DEFAULTS)}
            out["_contact"] = contact
    if "Reference" in item:
        out["Reference"] = str(item["Reference"] or "")
    if item.get("InvoiceNumber") and item["InvoiceNumber"] != record["InvoiceNumber"]:
        if record["Type"] == "ACCREC" and item["InvoiceNumber"] in numbers:
            problems.append("Invoice # must be unique.")
        out["InvoiceNumber"] = str(item["InvoiceNumber"])
    out["_date"] = parse_or_note(item.get("Date"), "Date", record["_date"], problems)
    out["_due"] = parse_or_note(item.get("DueDate"), "DueDate", record["_due"], problems)
    if problems:
        raise Rejected(problems)
    out["Status"] = status
    return out


def _echo(item: Any, target: str | None = None) -> dict[str, Any]:
    """A refused element as Xero lists it in `Elements`: what was sent, with a valid ID."""
    if not isinstance(item, dict):
        return {}
    echoed = {k: v for k, v in item.items() if isinstance(k, str) and not k.startswith("_")}
    given = str(target or item.get("InvoiceID") or "")
    echoed["InvoiceID"] = given if _UUID.match(given) else ZERO_UUID
    return echoed


# --- Credit notes and their allocations ------------------------------------------------

CREDIT_TYPES = {"ACCRECCREDIT": "ACCREC", "ACCPAYCREDIT": "ACCPAY"}


def _next_credit_number(numbers: set[str]) -> str:
    taken = [int(m.group(1)) for n in numbers if (m := re.fullmatch(r"CN-(\d+)", n))]
    return f"CN-{max(taken, default=0) + 1:04d}"


def new_credit_note(tenant: Tenant, item: dict[str, Any], now: datetime,
                    numbers: set[str]) -> dict[str, Any]:
    problems: list[str] = []
    kind = item.get("Type")
    if kind not in CREDIT_TYPES:
        problems.append("Credit Note Type must be ACCRECCREDIT or ACCPAYCREDIT")
    status = str(item.get("Status") or "DRAFT")
    if status not in ("DRAFT", "SUBMITTED", "AUTHORISED"):
        problems.append(f"Credit Note not of valid status for creation ({status})")
    contact = _contact_for(tenant, item.get("Contact"), CREDIT_TYPES.get(str(kind), "ACCREC"),
                           now, problems)
    amount_types = str(item.get("LineAmountTypes") or "Exclusive")
    if amount_types not in ("Exclusive", "Inclusive", "NoTax"):
        problems.append("LineAmountTypes must be Exclusive, Inclusive or NoTax")
    lines, subtotal, tax = price_lines(tenant, item.get("LineItems"), amount_types, status,
                                       problems, "Credit notes")
    if subtotal + tax < 0:
        problems.append("The total of a credit note cannot be negative")
    currency = str(item.get("CurrencyCode") or tenant.base_currency)
    _check_currency(tenant, currency, problems)
    issued = parse_or_note(item.get("Date"), "Date", now.date(), problems)
    number = str(item.get("CreditNoteNumber") or "")
    if kind == "ACCRECCREDIT":
        if number in numbers:
            problems.append("Credit Note # must be unique.")
        number = number or _next_credit_number(numbers)
    reference = str(item.get("Reference") or "")
    if len(reference) > 255:
        problems.append("Reference must not exceed 255 characters")
    if problems or contact is None:
        raise Rejected(problems)
    numbers.add(number)
    return {
        "Type": kind, "CreditNoteID": str(uuid.uuid4()), "CreditNoteNumber": number,
        "Reference": reference,
        "Contact": {"ContactID": contact["ContactID"], "Name": contact["Name"]},
        "LineItems": lines, "LineAmountTypes": amount_types, "CurrencyCode": currency,
        "CurrencyRate": tenant.currency_rate(currency), "Status": status,
        "SubTotal": subtotal, "TotalTax": tax, "Total": subtotal + tax,
        "RemainingCredit": subtotal + tax, "SentToContact": False, "HasAttachments": False,
        "HasErrors": False, "_date": issued, "_allocations": [], "_by_app": True,
        "_contact": contact, "_updated": now,
    }


def changed_credit_note(tenant: Tenant, record: dict[str, Any], item: dict[str, Any],
                        now: datetime) -> dict[str, Any]:
    """A copy of `record` with the update applied; nothing is stored until all items pass."""
    problems: list[str] = []
    allocated = bool(record["_allocations"])
    if record["Status"] in ("VOIDED", "DELETED"):
        raise Rejected([f"Credit Note not of valid status for modification "
                        f"({record['Status']})"])
    if record["Status"] == "PAID":
        raise Rejected([ALLOCATED])
    out = copy.deepcopy(record)
    status = str(item.get("Status") or record["Status"])
    if status not in STATUS_MOVES.get(record["Status"], set()):
        problems.append(f"Credit Note not of valid status for modification ({record['Status']} "
                        f"to {status})")
    if status == "VOIDED" and allocated:
        problems.append("This credit note has been allocated. It cannot be voided.")
    touches_amounts = any(k in item for k in ("LineItems", "LineAmountTypes", "CurrencyCode"))
    if (touches_amounts or "Contact" in item) and allocated:
        problems.append(ALLOCATED)
    amount_types = str(item.get("LineAmountTypes") or record["LineAmountTypes"])
    if amount_types not in ("Exclusive", "Inclusive", "NoTax"):
        problems.append("LineAmountTypes must be Exclusive, Inclusive or NoTax")
    if "CurrencyCode" in item:
        _check_currency(tenant, str(item["CurrencyCode"]), problems)
        out["CurrencyCode"] = str(item["CurrencyCode"])
        if out["CurrencyCode"] in PER_GBP:
            out["CurrencyRate"] = tenant.currency_rate(out["CurrencyCode"])
    if (touches_amounts or status != record["Status"]) and not allocated:
        given = item["LineItems"] if "LineItems" in item else record["LineItems"]
        lines, subtotal, tax = price_lines(tenant, given, amount_types, status, problems,
                                           "Credit notes")
        if subtotal + tax < 0:
            problems.append("The total of a credit note cannot be negative")
        out.update({"LineItems": lines, "LineAmountTypes": amount_types, "SubTotal": subtotal,
                    "TotalTax": tax, "Total": subtotal + tax, "RemainingCredit": subtotal + tax})
    if "Contact" in item and not allocated:
        contact = _contact_for(tenant, item["Contact"], CREDIT_TYPES[record["Type"]], now,
                               problems)
        if contact is not None:
            out["Contact"] = {"ContactID": contact["ContactID"], "Name": contact["Name"],
                              **copy.deepcopy(NESTED_CONTACT_DEFAULTS)}
            out["_contact"] = contact
    if "Reference" in item:
        out["Reference"] = str(item["Reference"] or "")
        if len(out["Reference"]) > 255:
            problems.append("Reference must not exceed 255 characters")
    out["_date"] = parse_or_note(item.get("Date"), "Date", record["_date"], problems)
    if problems:
        raise Rejected(problems)
    out["Status"] = status
    return out


def allocation_problems(tenant: Tenant, note: dict[str, Any], item: Any,
                        remaining: Decimal, due: dict[str, Decimal]) -> tuple[list[str], Any]:
    """What Xero would refuse in one allocation, given the credit left on the note and on each
    invoice after the allocations before it in the same request; and the parsed allocation."""
    if not isinstance(item, dict):
        return ["Each allocation must be an object"], None
    problems: list[str] = []
    if note["Status"] in ("DRAFT", "SUBMITTED"):
        problems.append("A credit note must be approved (AUTHORISED) before it is allocated")
    elif note["Status"] in ("VOIDED", "DELETED"):
        problems.append(f"A {note['Status'].lower()} credit note cannot be allocated")
    try:
        amount = _decimal(item.get("Amount") if item.get("Amount") is not None
                          else item.get("AppliedAmount"))
    except (InvalidOperation, ArithmeticError):
        amount = None
        problems.append("Amount must be a number")
    if amount is not None:
        amount = amount.quantize(CENT, ROUND_HALF_UP)
        if amount <= 0:
            problems.append("Amount must be greater than zero")
    if item.get("Date") in (None, ""):
        problems.append("Date is required")
        on = None
    else:
        try:
            on = parse_day(item["Date"], "Date")
        except ApiError:
            on = None
            problems.append(f"Date '{item['Date']}' is not a valid date")
    given = item.get("Invoice")
    invoice_id = str(given.get("InvoiceID") or "").lower() if isinstance(given, dict) else ""
    invoice = tenant.invoices.get(invoice_id) if invoice_id else None
    if invoice is None:
        problems.append("Invoice could not be found" if invoice_id
                        else "An Invoice with an InvoiceID is required")
    else:
        if invoice["Type"] != CREDIT_TYPES.get(note["Type"]):
            problems.append("Credit Note cannot be allocated to an incorrect invoice type")
        open_amount = due.get(invoice["InvoiceID"], invoice["AmountDue"])
        if invoice["Status"] == "PAID" or (invoice["Status"] == "AUTHORISED"
                                           and open_amount <= 0):
            problems.append("The invoice you are trying to allocate to has already been paid "
                            "off")
        elif invoice["Status"] != "AUTHORISED":
            problems.append(f"A credit note cannot be allocated to a "
                            f"{invoice['Status'].lower()} invoice")
        elif amount is not None and amount > open_amount:
            problems.append("Credit Note cannot be allocated as amount is greater than amount "
                            "outstanding")
        if invoice["Contact"]["ContactID"] != note["Contact"]["ContactID"]:
            problems.append("The credit note and the invoice must be for the same contact")
        if invoice["CurrencyCode"] != note["CurrencyCode"]:
            problems.append("The credit note and the invoice must be in the same currency")
    if amount is not None and amount > remaining:
        problems.append(f"The amount allocated ({amount:f}) is more than the credit note's "
                        f"remaining credit ({remaining:f})")
    return problems, (amount, on, invoice)


def allocate_credit(box: XeroSandbox, tenant: Tenant, note: dict[str, Any], amount: Decimal,
                    on: date, invoice: dict[str, Any]) -> dict[str, Any]:
    allocation = {"AllocationID": str(uuid.uuid4()), "Amount": amount, "_date": on,
                  "_invoice_id": invoice["InvoiceID"]}
    note["_allocations"].append(allocation)
    note["RemainingCredit"] -= amount
    if note["RemainingCredit"] == 0:
        note["Status"] = "PAID"
        note["_paid_on"] = on
    invoice["AmountCredited"] += amount
    invoice["AmountDue"] -= amount
    invoice.setdefault("_credits", []).append((note["CreditNoteID"],
                                               allocation["AllocationID"]))
    if invoice["AmountDue"] == 0:
        invoice["Status"] = "PAID"
        invoice["_paid_on"] = on
    box.touch(note)
    box.touch(invoice)
    return allocation


def _echo_credit_note(item: Any, target: str | None = None) -> dict[str, Any]:
    """A refused credit note as Xero lists it in `Elements`: what was sent, with a valid ID."""
    if not isinstance(item, dict):
        return {}
    echoed = {k: v for k, v in item.items() if isinstance(k, str) and not k.startswith("_")}
    given = str(target or item.get("CreditNoteID") or "")
    echoed["CreditNoteID"] = given if _UUID.match(given) else ZERO_UUID
    return echoed


# --- The Flask app ----------------------------------------------------------------------


def create_app(sandbox: XeroSandbox | None = None) -> Flask:
    box = sandbox or XeroSandbox()
    app = Flask(__name__)
    app.extensions["xero_sandbox"] = box
    cfg = box.config

    def envelope(key: str, items: list[dict[str, Any]],
                 pagination: dict[str, int] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"Id": str(uuid.uuid4()), "Status": "OK",
                                "ProviderName": PROVIDER_NAME,
                                "DateTimeUTC": envelope_stamp(box.now)}
        if pagination is not None:
            body["pagination"] = pagination
        body[key] = items
        return body

    # OAuth 2.0 -------------------------------------------------------------------------

    def client_from_request() -> tuple[str, ClientApp] | None:
        auth = request.authorization
        client_id = (auth.username if auth else request.form.get("client_id")) or ""
        secret = (auth.password if auth else request.form.get("client_secret")) or ""
        client = cfg.clients.get(client_id)
        if client is None or not hmac.compare_digest(client.secret.encode(), secret.encode()):
            return None
        return client_id, client

    def consent_page(args: dict[str, str], client: ClientApp, error: str = "") -> str:
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

    def html(body: str, status: int = 200) -> Response:
        return Response(body, status=status, mimetype="text/html", headers={
            "Cache-Control": "no-store", "X-Frame-Options": "DENY"})

    def redirect_to(uri: str, params: dict[str, str]) -> Response:
        sep = "&" if "?" in uri else "?"
        return Response(status=302, headers={"Location": uri + sep + urlencode(params)})

    @app.route("/identity/connect/authorize", methods=["GET", "POST"])
    def authorize() -> Response:
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

    @app.get("/.well-known/openid-configuration")
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

    @app.get("/.well-known/openid-configuration/jwks")
    def jwks() -> Response:
        return _json(box.signing_keys.jwks())

    def token_answer(body: dict[str, Any], status: int = 200) -> Response:
        return _json(body, status, {"Cache-Control": "no-store", "Pragma": "no-cache"})

    @app.post("/connect/token")
    def token() -> Response:
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

    @app.post("/connect/revocation")
    def revoke() -> Response:
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

    def bearer() -> dict[str, Any]:
        header = request.headers.get("Authorization", "")
        token = box.access_tokens.get(header[7:] if header[:7].lower() == "bearer " else "")
        if token is None or token["expires_at"] <= box.now or \
                token["auth_event_id"] not in box.auth_events:
            raise ApiError(401, {"Type": None, "Title": "Unauthorized", "Status": 401,
                                 "Detail": "AuthenticationUnsuccessful",
                                 "Instance": str(uuid.uuid4()), "Extensions": {}},
                           {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return token

    def connections_of(token: dict[str, Any]) -> list[dict[str, Any]]:
        """Every tenant the user has connected to the app, whichever consent the token is of
        (github.com/XeroAPI/xero-php-oauth2/issues/18: "this is based on the access token
        being used, which in turn is linked to the user")."""
        def stamp(moment: datetime) -> str:
            # Xero writes 7 fractional digits and no offset: "2019-07-09T23:40:30.1833130".
            return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0"

        found = []
        for event_id, connection_id, c in box.connections(token["client_id"]):
            tenant = box.tenants_by_id[c["tenantId"]]
            found.append({"id": connection_id, "authEventId": event_id,
                          "tenantId": tenant.tenant_id, "tenantType": "ORGANISATION",
                          "tenantName": tenant.name, "createdDateUtc": stamp(c["created"]),
                          "updatedDateUtc": stamp(c.get("updated", c["created"]))})
        return found

    @app.errorhandler(ApiError)
    def api_error(error: ApiError) -> Response:
        return _json(error.body, error.status, error.headers)

    def app_headers() -> dict[str, str]:
        """Tenantless calls (like /connections) carry only the app-wide budget."""
        window = box.now - timedelta(seconds=60)
        used = sum(1 for stamp in box.app_calls if stamp > window)
        return {"X-AppMinLimit-Remaining": str(max(0, cfg.app_minute_limit - used))}

    @app.get("/connections")
    @app.get("/Connections")
    def list_connections() -> Response:
        with box.lock:
            token = bearer()
            event = request.args.get("authEventId")
            return _json([c for c in connections_of(token)
                          if not event or c["authEventId"] == event], headers=app_headers())

    @app.delete("/connections/<connection_id>")
    @app.delete("/Connections/<connection_id>")
    def delete_connection(connection_id: str) -> Response:
        with box.lock:
            token = bearer()
            owner = next((event for event, found, _ in box.connections(token["client_id"])
                          if found == connection_id), None)
            if owner is None:
                raise not_found()
            del box.auth_events[owner]["connections"][connection_id]
            return Response(status=204, headers=app_headers())

    # Accounting API: limits, tenant, idempotency around every call -----------------------

    def day_used(tenant_id: str) -> int:
        if not cfg.rolling_day:
            return box.day_calls.get((tenant_id, box.now.date()), 0)
        calls = box.day_window.setdefault(tenant_id, deque())
        while calls and calls[0] <= box.now - timedelta(days=1):
            calls.popleft()
        return len(calls)

    def day_ends(tenant_id: str) -> datetime:
        """When a spent day frees a call: 24 h after the oldest call in the window, or the
        next 00:00 UTC when days are calendar days."""
        if cfg.rolling_day and box.day_window.get(tenant_id):
            return box.day_window[tenant_id][0] + timedelta(days=1)
        return datetime.combine(box.now.date() + timedelta(days=1), datetime.min.time(),
                                tzinfo=UTC)

    def limit_headers(tenant_id: str) -> dict[str, str]:
        window = box.now - timedelta(seconds=60)
        minute = sum(1 for stamp in box.minute_calls.get(tenant_id, ()) if stamp > window)
        day = day_used(tenant_id)
        return {"X-DayLimit-Remaining": str(max(0, cfg.per_day_limit - day)),
                "X-MinLimit-Remaining": str(max(0, cfg.per_minute_limit - minute)),
                **app_headers()}

    def refusal_headers(tenant_id: str) -> dict[str, str]:
        return limit_headers(tenant_id) if tenant_id in box.tenants_by_id else app_headers()

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
        names = cfg.rate_limit_problems
        refusal: tuple[str, int] | None = None
        if day_used(tenant_id) >= cfg.per_day_limit:
            refusal = (names.get("day", "day"), _seconds(day_ends(tenant_id) - now))
        elif len(box.app_calls) >= cfg.app_minute_limit:
            refusal = (names.get("appminute", "appminute"), _seconds(box.app_calls[0] - window))
        elif len(minute) >= cfg.per_minute_limit:
            refusal = (names.get("minute", "minute"), _seconds(minute[0] - window))
        elif box.in_flight.get(tenant_id, 0) >= cfg.concurrent_limit:
            refusal = (names.get("concurrent", "concurrent"), 1)
        if refusal is not None:
            raise ApiError(429, {"Title": "Too Many Requests", "Status": 429,
                                 "Detail": f"Rate limit exceeded: {refusal[0]}"},
                           {**limit_headers(tenant_id), "Retry-After": str(refusal[1]),
                            "X-Rate-Limit-Problem": refusal[0]})
        minute.append(now)
        box.app_calls.append(now)
        box.day_calls[day_key] = box.day_calls.get(day_key, 0) + 1
        if cfg.rolling_day:
            box.day_window.setdefault(tenant_id, deque()).append(now)

    def accounting(handler: Callable[[Tenant], Response]) -> Response:
        tenant_id = request.headers.get("xero-tenant-id", "").strip().lower()
        key = request.headers.get("Idempotency-Key") if request.method in ("POST", "PUT") \
            else None
        fingerprint = f"{request.method} {request.path} " + hashlib.sha256(
            request.get_data()).hexdigest()
        with box.lock:
            try:
                token = bearer()
                if not tenant_id:
                    raise problem(400, "Bad Request", "The xero-tenant-id header is missing")
                if tenant_id not in {c["tenantId"] for c in connections_of(token)}:
                    raise problem(403, "Forbidden", "AuthorizationUnsuccessful")
            except ApiError as error:
                error.headers = {**refusal_headers(tenant_id), **error.headers}
                raise
            admit(tenant_id)
            if key is not None:
                refused = None
                if len(key) > 128:
                    refused = "Idempotency-Key must be at most 128 characters"
                stored = box.idempotent.get((tenant_id, key))
                window = timedelta(seconds=cfg.idempotency_window_seconds)
                if stored is not None and stored[4] + window <= box.now:
                    del box.idempotent[(tenant_id, key)]  # past the window: forgotten
                    stored = None
                if stored is not None and stored[0] != fingerprint:
                    refused = "This Idempotency-Key was used for a different request"
                if refused:
                    raise ApiError(400, validation_error(refused).body, limit_headers(tenant_id))
                if stored is not None:
                    _, status, headers, body, _ = stored
                    return Response(body, status=status, headers={
                        **headers, **limit_headers(tenant_id)}, mimetype="application/json")
            box.in_flight[tenant_id] = box.in_flight.get(tenant_id, 0) + 1
        try:
            if cfg.latency_seconds > 0:
                wall.sleep(cfg.latency_seconds)
            with box.lock:
                tenant = box.tenant(tenant_id)
                try:
                    response = handler(tenant)
                except ApiError as error:
                    response = _json(error.body, error.status, error.headers)
                if key is not None and response.status_code < 500:
                    box.idempotent[(tenant_id, key)] = (
                        fingerprint, response.status_code,
                        {k: v for k, v in response.headers.items()
                         if k.lower() not in ("content-length", "content-type")},
                        response.get_data(as_text=True), box.now)
                response.headers.update(limit_headers(tenant_id))
                return response
        finally:
            with box.lock:
                box.in_flight[tenant_id] -= 1

    def flag(name: str) -> bool:
        return request.args.get(name, "false").strip().lower() == "true"

    def paged(key: str, records: list[dict[str, Any]],
              render: Callable[[dict[str, Any]], dict[str, Any]], kind: str,
              extra_fields: Iterable[str] = ()) -> Response:
        since = parse_if_modified_since(request.headers.get("If-Modified-Since"))
        if since is not None:
            records = [r for r in records if r["_updated"] > since]
        rendered = [render(r) for r in records]
        fields = set(extra_fields).union(*(r.keys() for r in rendered)) if rendered else set()
        where = request.args.get("where") or request.args.get("Where")
        if where:
            keep = WhereClause(where, kind, fields)
            rendered = [r for r in rendered if keep(r)]
        order = (request.args.get("order") or "").strip() or "UpdatedDateUTC"
        rendered = order_records(rendered, order, f"{kind}ID", kind, fields)
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
        chunk = rendered[(number - 1) * size:number * size]
        return _json(envelope(key, chunk, {"page": number, "pageSize": size,
                                           "pageCount": math.ceil(count / size),
                                           "itemCount": count}))

    def csv_arg(name: str, lower: bool = False) -> set[str] | None:
        value = request.args.get(name)
        if not value:
            return None
        items = {v.strip().strip('"') for v in value.split(",") if v.strip()}
        return {i.lower() for i in items} if lower else items

    api = "/api.xro/2.0"

    # pyxero (a client used against Xero for years) asks for the plural.
    @app.get(f"{api}/Organisations")
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
                "SalesTaxPeriod": "QUARTERLY1", "DefaultSalesTax": "Tax Exclusive",
                "DefaultPurchasesTax": "Tax Exclusive",
                "CreatedDateUTC": ms_date(t.created), "OrganisationEntityType": "COMPANY",
                "Timezone": t.timezone, "ShortCode": t.short_code, "Edition": "BUSINESS",
                "Class": "STANDARD", "Addresses": [], "Phones": [], "ExternalLinks": [],
                "PaymentTerms": {}}]))
        return accounting(handle)

    @app.get(f"{api}/Contacts")
    def contacts() -> Response:
        def handle(t: Tenant) -> Response:
            records = list(t.contacts.values())
            ids = csv_arg("IDs", lower=True)
            if ids:
                records = [c for c in records if c["ContactID"] in ids]
            if not flag("includeArchived"):
                records = [c for c in records if c["ContactStatus"] != "ARCHIVED"]
            term = (request.args.get("searchTerm") or "").casefold()
            if term:
                records = [c for c in records if any(
                    term in str(c.get(f) or "").casefold() for f in
                    ("Name", "FirstName", "LastName", "ContactNumber", "EmailAddress",
                     "CompanyNumber"))]
            summary = flag("summaryOnly")

            def render(c: dict[str, Any]) -> dict[str, Any]:
                out = render_contact(c)
                if summary:
                    out.pop("Addresses", None)
                    out.pop("Phones", None)
                return out

            return paged("Contacts", records, render, "Contact",
                         {"EmailAddress", "AccountNumber", "CompanyNumber"})
        return accounting(handle)

    @app.get(f"{api}/Payments")
    def payments() -> Response:
        def handle(t: Tenant) -> Response:
            return paged("Payments", list(t.payments.values()),
                         lambda p: render_payment(p, t), "Payment")
        return accounting(handle)

    def unit_dp() -> int:
        return 4 if request.args.get("unitdp") == "4" else 2

    @app.get(f"{api}/Invoices")
    def invoices() -> Response:
        def handle(t: Tenant) -> Response:
            records = list(t.invoices.values())
            for arg, fieldname in (("IDs", "InvoiceID"), ("InvoiceNumbers", "InvoiceNumber"),
                                   ("Statuses", "Status")):
                wanted = csv_arg(arg, lower=arg == "IDs")
                if wanted:
                    records = [r for r in records if r[fieldname] in wanted]
            contact_ids = csv_arg("ContactIDs", lower=True)
            if contact_ids:
                records = [r for r in records if r["Contact"]["ContactID"] in contact_ids]
            if flag("createdByMyApp"):
                records = [r for r in records if r.get("_by_app")]
            term = (request.args.get("searchTerm") or "").casefold()
            if term:
                records = [r for r in records if term in r["InvoiceNumber"].casefold()
                           or term in (r.get("Reference") or "").casefold()]
            # Line items come only with paging (or one invoice), as in Xero.
            summary = flag("summaryOnly") or "page" not in request.args
            dp = unit_dp()
            return paged("Invoices", records, lambda i: render_invoice(i, t, summary, dp),
                         "Invoice", {"LineItems", "FullyPaidOnDate", "ExpectedPaymentDate",
                                     "PlannedPaymentDate", "BrandingThemeID", "Url"})
        return accounting(handle)

    def find_invoice(t: Tenant, invoice_id: str) -> dict[str, Any]:
        invoice = t.invoices.get(invoice_id.lower())
        if invoice is None:
            invoice = next((i for i in t.invoices.values() if i["InvoiceNumber"] == invoice_id),
                           None)
            if invoice is None:
                raise not_found()
        return invoice

    @app.get(f"{api}/Invoices/<invoice_id>")
    def invoice(invoice_id: str) -> Response:
        return accounting(lambda t: _json(envelope(
            "Invoices", [render_invoice(find_invoice(t, invoice_id), t, unit_dp=unit_dp())])))

    @app.route(f"{api}/Invoices", methods=["POST", "PUT"])
    @app.post(f"{api}/Invoices/<invoice_id>")
    def save_invoices(invoice_id: str | None = None) -> Response:
        def handle(t: Tenant) -> Response:
            body = request_body()
            if isinstance(body, dict) and "Invoices" in body:
                items = body["Invoices"]
            else:
                items = [body] if isinstance(body, dict) else body
            if not isinstance(items, list) or not items:
                raise validation_error("No invoices in the request")
            if len(items) > MAX_ELEMENTS:
                raise validation_error(f"At most {MAX_ELEMENTS} invoices in one request")
            summarize = request.args.get("summarizeErrors", "true").lower() != "false"
            numbers = {i["InvoiceNumber"] for i in t.invoices.values() if i["Type"] == "ACCREC"}
            staged: list[dict[str, Any] | None] = []
            refused: dict[int, list[str]] = {}
            targets: dict[int, str] = {}
            for index, item in enumerate(items):
                try:
                    if not isinstance(item, dict):
                        raise Rejected(["Each invoice must be an object"])
                    target = invoice_id or item.get("InvoiceID")
                    if not target and request.method == "POST" and item.get("InvoiceNumber") \
                            and item["InvoiceNumber"] in numbers:
                        target = item["InvoiceNumber"]  # POST updates by number too
                    if target:
                        targets[index] = str(target)
                    if target and request.method == "PUT":
                        raise Rejected(["Use POST to update an existing invoice"])
                    if target:
                        staged.append(changed_invoice(t, find_invoice(t, str(target)), item,
                                                      box.now, numbers, cfg.lock_paid_invoices))
                    else:
                        staged.append(new_invoice(t, item, box.now, numbers))
                except Rejected as why:
                    staged.append(None)
                    refused[index] = why.messages
            if refused and summarize:
                # All or nothing: one refused element and none is saved.
                raise validation_errors([
                    {**_echo(items[i], targets.get(i)),
                     "ValidationErrors": [{"Message": m} for m in messages]}
                    for i, messages in refused.items()])
            out: list[dict[str, Any]] = []
            for index, record in enumerate(staged):
                if record is None:
                    out.append({**_echo(items[index], targets.get(index)), "HasErrors": True,
                                "StatusAttributeString": "ERROR", "ValidationErrors": [
                                    {"Message": m} for m in refused[index]]})
                    continue
                contact = record.pop("_contact", None)
                if contact is not None and contact.pop("_new", False):
                    t.contacts[contact["ContactID"]] = contact
                if t.invoices.get(record["InvoiceID"]) != record:
                    box.touch(record)
                t.invoices[record["InvoiceID"]] = record
                rendered = render_invoice(record, t, unit_dp=unit_dp())
                if not summarize:
                    rendered["StatusAttributeString"] = "OK"
                out.append(rendered)
            return _json(envelope("Invoices", out))
        return accounting(handle)

    @app.get(f"{api}/Invoices/<invoice_id>/OnlineInvoice")
    def online_invoice(invoice_id: str) -> Response:
        def handle(t: Tenant) -> Response:
            record = find_invoice(t, invoice_id)
            if record["Type"] != "ACCREC" or record["Status"] in ("DRAFT", "SUBMITTED",
                                                                  "DELETED"):
                raise validation_error("An online invoice can only be retrieved for an "
                                       "approved sales invoice")
            base = cfg.invoice_link_base or request.host_url
            url = f"{base}online/{t.tenant_id}/{record['InvoiceID']}"
            return _json({"OnlineInvoices": [{"OnlineInvoiceUrl": url}]})
        return accounting(handle)

    @app.get("/online/<tenant_id>/<invoice_id>")
    def online_page(tenant_id: str, invoice_id: str) -> Response:
        with box.lock:
            tenant = box.tenants_by_id.get(tenant_id)
            record = tenant.invoices.get(invoice_id) if tenant else None
            if tenant is None or record is None:
                return html("<h1>Not found</h1>", 404)
            rows = "".join(
                f"<tr><td>{escape(line['Description'])}</td><td>{line['Quantity']:f}</td>"
                f"<td>{line['UnitAmount']:.2f}</td><td>{line['LineAmount']:.2f}</td></tr>"
                for line in record["LineItems"])
            state = "Paid" if record["Status"] == "PAID" else (
                f"{escape(record['CurrencyCode'])} {record['AmountDue']:.2f} due "
                f"{record['_due'].isoformat()}")
            return html(
                "<!doctype html><html lang='en'><meta charset='utf-8'>"
                f"<title>Invoice {escape(record['InvoiceNumber'])}</title>"
                f"<h1>{escape(tenant.name)}</h1><h2>Invoice "
                f"{escape(record['InvoiceNumber'])}</h2><p>To "
                f"{escape(record['Contact']['Name'])}</p><table><tr><th>Description</th>"
                f"<th>Qty</th><th>Price</th><th>Amount</th></tr>{rows}</table>"
                f"<p>Total {escape(record['CurrencyCode'])} {record['Total']:.2f}</p>"
                f"<p class='due'>{state}</p><button disabled>Pay now</button></html>")

    def history_out(entry: dict[str, Any]) -> dict[str, Any]:
        moment = datetime.fromisoformat(entry["DateUTC"])
        return {"Changes": entry["Changes"],
                "DateUTCString": moment.strftime("%Y-%m-%dT%H:%M:%S"),
                "DateUTC": ms_date(moment), "User": entry["User"], "Details": entry["Details"]}

    @app.route(f"{api}/Invoices/<invoice_id>/History", methods=["GET", "PUT"])
    def invoice_history(invoice_id: str) -> Response:
        def handle(t: Tenant) -> Response:
            record = find_invoice(t, invoice_id)
            if request.method == "GET":
                # Xero's History & Notes holds each email of the invoice too ("Sent", when and
                # to whom), next to the notes, oldest first.
                sent = [{"InvoiceID": e["InvoiceID"], "DateUTC": e["SentAt"],
                         "User": "System Generated", "Changes": "Sent",
                         "Details": f"This invoice has been sent to {e['To']}."}
                        for e in t.emails if e["InvoiceID"] == record["InvoiceID"]]
                notes = [h for h in t.history if h["InvoiceID"] == record["InvoiceID"]]
                merged = sorted([*notes, *sent], key=lambda h: datetime.fromisoformat(
                    h["DateUTC"]))
                return _json(envelope("HistoryRecords", [history_out(h) for h in merged]))
            try:
                body = request_body()
                records = body["HistoryRecords"] if isinstance(body, dict) and \
                    "HistoryRecords" in body else [body]
                details = [str(r["Details"]) for r in records]
            except (ValueError, KeyError, TypeError) as exc:
                raise validation_error("HistoryRecords with Details are required") from exc
            if not details or any(not d.strip() for d in details):
                raise validation_error("The History Details cannot be empty")
            if any(len(d) > 2500 for d in details):
                raise validation_error("The History Details must be 2500 characters or less")
            added = []
            for text in details:
                entry = {"InvoiceID": record["InvoiceID"], "Details": text,
                         "DateUTC": box.now.isoformat(), "User": "System Generated",
                         "Changes": "Note"}
                t.history.append(entry)
                added.append(history_out(entry))
            return _json(envelope("HistoryRecords", added))
        return accounting(handle)

    @app.post(f"{api}/Invoices/<invoice_id>/Email")
    def email_invoice(invoice_id: str) -> Response:
        def handle(t: Tenant) -> Response:
            record = find_invoice(t, invoice_id)
            if record["Type"] != "ACCREC" or record["Status"] not in (
                    "SUBMITTED", "AUTHORISED", "PAID"):
                raise validation_error("Invoice must be an approved sales invoice to be "
                                       "emailed (SUBMITTED, AUTHORISED or PAID)")
            contact = t.contacts.get(record["Contact"]["ContactID"], {})
            if not contact.get("EmailAddress"):
                raise validation_error("The contact does not have an email address")
            t.emails.append({"InvoiceID": record["InvoiceID"], "SentAt": box.now.isoformat(),
                             "To": contact["EmailAddress"]})
            if not record["SentToContact"]:
                record["SentToContact"] = True
                box.touch(record)
            return Response(status=204)
        return accounting(handle)

    # Credit notes ------------------------------------------------------------------------

    def request_body() -> Any:
        """A write's body, JSON or XML (Xero takes both; pyxero sends XML)."""
        raw = request.get_data() or b"{}"
        if raw.lstrip()[:1] == b"<" or "xml" in (request.content_type or ""):
            try:
                return xml_body(raw)
            except ElementTree.ParseError as exc:
                raise validation_error("The request body is not valid XML") from exc
        try:
            return json.loads(raw, parse_float=Decimal)
        except ValueError as exc:
            raise validation_error("The request body is not valid JSON") from exc

    def request_items(key: str, what: str) -> list[Any]:
        """The elements of a write: `{"<Key>": [...]}`, one bare object, or a bare list."""
        body = request_body()
        items = body[key] if isinstance(body, dict) and key in body else (
            [body] if isinstance(body, dict) else body)
        if not isinstance(items, list) or not items:
            raise validation_error(f"No {what} in the request")
        if len(items) > MAX_ELEMENTS:
            raise validation_error(f"At most {MAX_ELEMENTS} {what} in one request")
        return items

    def find_credit_note(t: Tenant, note_id: str) -> dict[str, Any]:
        note = t.credit_notes.get(note_id.lower())
        if note is None:
            note = next((n for n in t.credit_notes.values()
                         if n["CreditNoteNumber"] and n["CreditNoteNumber"] == note_id), None)
            if note is None:
                raise not_found()
        return note

    @app.get(f"{api}/CreditNotes")
    def credit_notes() -> Response:
        def handle(t: Tenant) -> Response:
            dp = unit_dp()
            return paged("CreditNotes", list(t.credit_notes.values()),
                         lambda n: render_credit_note(n, t, dp), "CreditNote",
                         {"Reference", "CreditNoteNumber", "FullyPaidOnDate", "DueDate",
                          "BrandingThemeID", "AppliedAmount"})
        return accounting(handle)

    @app.get(f"{api}/CreditNotes/<note_id>")
    def credit_note(note_id: str) -> Response:
        return accounting(lambda t: _json(envelope(
            "CreditNotes", [render_credit_note(find_credit_note(t, note_id), t, unit_dp())])))

    @app.route(f"{api}/CreditNotes", methods=["POST", "PUT"])
    @app.post(f"{api}/CreditNotes/<note_id>")
    def save_credit_notes(note_id: str | None = None) -> Response:
        def handle(t: Tenant) -> Response:
            items = request_items("CreditNotes", "credit notes")
            summarize = request.args.get("summarizeErrors", "true").lower() != "false"
            numbers = {n["CreditNoteNumber"] for n in t.credit_notes.values()
                       if n["Type"] == "ACCRECCREDIT"}
            staged: list[dict[str, Any] | None] = []
            refused: dict[int, list[str]] = {}
            targets: dict[int, str] = {}
            for index, item in enumerate(items):
                try:
                    if not isinstance(item, dict):
                        raise Rejected(["Each credit note must be an object"])
                    target = note_id or item.get("CreditNoteID")
                    if target:
                        targets[index] = str(target)
                        if request.method == "PUT":
                            raise Rejected(["Use POST to update an existing credit note"])
                        staged.append(changed_credit_note(
                            t, find_credit_note(t, str(target)), item, box.now))
                    else:
                        staged.append(new_credit_note(t, item, box.now, numbers))
                except Rejected as why:
                    staged.append(None)
                    refused[index] = why.messages
            if refused and summarize:
                raise validation_errors([
                    {**_echo_credit_note(items[i], targets.get(i)),
                     "ValidationErrors": [{"Message": m} for m in messages]}
                    for i, messages in refused.items()])
            out: list[dict[str, Any]] = []
            for index, record in enumerate(staged):
                if record is None:
                    out.append({**_echo_credit_note(items[index], targets.get(index)),
                                "HasErrors": True, "StatusAttributeString": "ERROR",
                                "ValidationErrors": [{"Message": m} for m in refused[index]]})
                    continue
                contact = record.pop("_contact", None)
                if contact is not None and contact.pop("_new", False):
                    t.contacts[contact["ContactID"]] = contact
                if t.credit_notes.get(record["CreditNoteID"]) != record:
                    box.touch(record)
                t.credit_notes[record["CreditNoteID"]] = record
                rendered = render_credit_note(record, t, unit_dp())
                if not summarize:
                    rendered["StatusAttributeString"] = "OK"
                out.append(rendered)
            return _json(envelope("CreditNotes", out))
        return accounting(handle)

    @app.put(f"{api}/CreditNotes/<note_id>/Allocations")
    def allocate_credit_note(note_id: str) -> Response:
        def handle(t: Tenant) -> Response:
            note = find_credit_note(t, note_id)
            items = request_items("Allocations", "allocations")
            summarize = request.args.get("summarizeErrors", "true").lower() != "false"
            remaining = note["RemainingCredit"]
            due: dict[str, Decimal] = {}
            staged: list[Any] = []
            refused: dict[int, list[str]] = {}
            for index, item in enumerate(items):
                problems, parsed = allocation_problems(t, note, item, remaining, due)
                if problems:
                    refused[index] = problems
                    staged.append(None)
                    continue
                amount, _, invoice = parsed
                remaining -= amount
                due[invoice["InvoiceID"]] = due.get(invoice["InvoiceID"],
                                                    invoice["AmountDue"]) - amount
                staged.append(parsed)
            if refused and summarize:
                # All or nothing: one refused allocation and none is made.
                raise validation_errors([
                    {**(items[i] if isinstance(items[i], dict) else {}),
                     "CreditNoteID": note["CreditNoteID"],
                     "ValidationErrors": [{"Message": m} for m in messages]}
                    for i, messages in refused.items()])
            out: list[dict[str, Any]] = []
            for index, parsed in enumerate(staged):
                if parsed is None:
                    item = items[index] if isinstance(items[index], dict) else {}
                    out.append({**item, "StatusAttributeString": "ERROR",
                                "ValidationErrors": [{"Message": m} for m in refused[index]]})
                    continue
                allocation = allocate_credit(box, t, note, *parsed)
                rendered = render_allocation(allocation, note, t)
                if not summarize:
                    rendered["StatusAttributeString"] = "OK"
                out.append(rendered)
            return _json(envelope("Allocations", out))
        return accounting(handle)

    # Introspection for tests and the demo ------------------------------------------------

    def known_tenant(tenant_id: str) -> Tenant:
        found = box.tenants_by_id.get(tenant_id)
        if found is None:
            raise ApiError(404, {"error": f"no tenant {tenant_id}"})
        return found

    @app.get("/_sandbox/tenants")
    def sb_tenants() -> Response:
        return _json(box.tenants())

    @app.get("/_sandbox/tenants/<tenant_id>/history")
    def sb_history(tenant_id: str) -> Response:
        known_tenant(tenant_id)
        return _json(box.history(tenant_id, request.args.get("invoice_id")))

    @app.get("/_sandbox/tenants/<tenant_id>/emails")
    def sb_emails(tenant_id: str) -> Response:
        known_tenant(tenant_id)
        return _json(box.emails(tenant_id))

    @app.get("/_sandbox/calls")
    def sb_calls() -> Response:
        return _json({"calls": box.calls(request.args.get("tenant_id"))})

    @app.post("/_sandbox/tenants/<tenant_id>/invoices/<invoice_id>/payments")
    def sb_pay(tenant_id: str, invoice_id: str) -> Response:
        if invoice_id not in known_tenant(tenant_id).invoices:
            return _json({"error": f"no invoice {invoice_id}"}, 404)
        payload = request.get_json(silent=True)
        try:
            amount = _decimal(payload["amount"])  # type: ignore[index]
            return _json(box.pay_invoice(tenant_id, invoice_id, amount))
        except (KeyError, TypeError, ArithmeticError):
            return _json({"error": 'send {"amount": "12.50"}'}, 400)
        except ValueError as exc:
            return _json({"error": str(exc)}, 400)

    @app.get(f"{api}/Quotes")
    def quotes() -> Response:
        """Filters Status, ContactID, QuoteNumber, DateFrom/DateTo; If-Modified-Since; `page`
        gives 100 a page (without it, every quote)."""
        def handle(t: Tenant) -> Response:
            records = list(t.quotes.values())
            since = parse_if_modified_since(request.headers.get("If-Modified-Since"))
            if since is not None:
                records = [q for q in records if q["_updated"] > since]
            status = (request.args.get("Status") or "").strip().upper()
            if status:
                records = [q for q in records if q["Status"] == status]
            contact_id = (request.args.get("ContactID") or "").strip().lower()
            if contact_id:
                records = [q for q in records if q["Contact"]["ContactID"] == contact_id]
            number = (request.args.get("QuoteNumber") or "").strip()
            if number:
                records = [q for q in records if q["QuoteNumber"] == number]
            for arg, keep in (("DateFrom", operator.ge), ("DateTo", operator.le)):
                if request.args.get(arg):
                    day = parse_day(request.args[arg], arg)
                    records = [q for q in records if keep(q["_date"], day)]
            rendered = [render_quote(q, t) for q in records]
            order = (request.args.get("order") or "").strip() or "UpdatedDateUTC"
            fields = set().union(*(r.keys() for r in rendered)) if rendered else set()
            rendered = order_records(rendered, order, "QuoteID", "Quote", fields)
            page = request.args.get("page")
            if page is not None:
                try:
                    number_of_page = max(1, int(page))
                except ValueError as exc:
                    raise validation_error("page must be a whole number") from exc
                start = (number_of_page - 1) * QUOTES_PAGE_SIZE
                rendered = rendered[start:start + QUOTES_PAGE_SIZE]
            return _json(envelope("Quotes", rendered))
        return accounting(handle)

    @app.get(f"{api}/Quotes/<quote_id>")
    def quote(quote_id: str) -> Response:
        def handle(t: Tenant) -> Response:
            record = t.quotes.get(quote_id.lower())
            if record is None:
                raise not_found()
            return _json(envelope("Quotes", [render_quote(record, t)]))
        return accounting(handle)

    @app.post("/_sandbox/expire-tokens")
    def sb_expire() -> Response:
        box.expire_access_tokens()
        return Response(status=204)

    @app.get("/")
    def index() -> Response:
        with box.lock:
            rows = "".join(
                f"<tr><td>{escape(t.name)}</td><td><code>{escape(t.tenant_id)}</code></td>"
                f"<td>{len(t.contacts)}</td><td>{len(t.invoices)}</td>"
                f"<td>{len(t.payments)}</td><td>{len(t.emails)}</td><td>{len(t.history)}</td>"
                f"<td>{box.call_count.get(t.tenant_id, 0)}</td></tr>"
                for t in box.tenants_by_id.values())
            connected = sum(len(e["connections"]) for e in box.auth_events.values())
        return html("<!doctype html><html lang='en'><meta charset='utf-8'>"
                    "<title>Xero sandbox</title><h1>Xero sandbox</h1>"
                    f"<p>{connected} connection(s).</p><table><tr><th>Organisation</th>"
                    "<th>Tenant ID</th><th>Contacts</th><th>Invoices</th><th>Payments</th>"
                    "<th>Emails sent</th><th>History notes</th><th>API calls</th></tr>"
                    f"{rows}</table></html>")

    @app.get(f"{api}/Currencies")
    def currencies() -> Response:
        """The organisation's currencies: its base currency and every one its invoices use
        (shape: Xero's description's example, {Code, Description}). tap-xero reads it first
        to check access."""
        def handle(t: Tenant) -> Response:
            used = {t.base_currency} | {str(i.get("CurrencyCode") or t.base_currency)
                                        for i in t.invoices.values()}
            rows = [{"Code": code, "Description": CURRENCY_NAMES.get(code, code)}
                    for code in sorted(used)]
            where = request.args.get("where") or request.args.get("Where")
            if where:
                keep = WhereClause(where, "Currency", {"Code", "Description"})
                rows = [r for r in rows if keep(r)]
            return _json(envelope("Currencies", rows))
        return accounting(handle)

    app.wsgi_app = CaseInsensitivePaths(app)  # type: ignore[method-assign]
    return app


class CaseInsensitivePaths:
    """Xero's routes ignore case (/api.xro/2.0/invoices/{id}/history is /Invoices/{id}/History;
    pyxero asks for the lower-case `history`): each fixed segment of a request's path is put
    in the case the sandbox's routes spell it, before Flask matches it."""

    PREFIXES = ("/api.xro/", "/connections")  # the OAuth and /_sandbox paths keep their case

    def __init__(self, app: Flask) -> None:
        self.inner = app.wsgi_app
        self.segments = {segment.lower(): segment for rule in app.url_map.iter_rules()
                         if rule.rule.lower().startswith(self.PREFIXES)
                         for segment in rule.rule.split("/")
                         if segment and "<" not in segment}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.lower().startswith(self.PREFIXES):
            environ["PATH_INFO"] = "/".join(self.segments.get(part.lower(), part)
                                            for part in path.split("/"))
        return self.inner(environ, start_response)


def serve(host: str = "127.0.0.1", port: int = 5055, seed_today: date | None = None) -> None:
    from werkzeug.serving import run_simple

    # Served on its own (the demo): invoice links open this sandbox's page, not the provider's.
    sandbox = XeroSandbox(SandboxConfig(invoice_link_base=None))
    sandbox.seed_demo(seed_today or datetime.now(UTC).date())
    print(f"Xero sandbox on http://{host}:{port}", flush=True)
    run_simple(host, port, create_app(sandbox), threaded=True)
