"""The Xero sandbox's state: every tenant's books, consents, tokens and call counts, in memory."""

from __future__ import annotations

import copy
import random
import secrets
import threading
import uuid
from collections import deque
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sandboxes.fictional import fictional_mobile
from sandboxes.openid import SigningKeys
from sandboxes.xero.books import PER_GBP, RefreshToken, Tenant
from sandboxes.xero.branding import logo_png
from sandboxes.xero.config import SandboxConfig
from sandboxes.xero.contacts import render_contact
from sandboxes.xero.credit_notes import render_credit_note
from sandboxes.xero.errors import Rejected
from sandboxes.xero.formats import CENT, to_decimal
from sandboxes.xero.invoices import new_invoice, render_invoice
from sandboxes.xero.payments import apply_payment, render_payment
from sandboxes.xero.quotes import QUOTE_MOVES, QUOTE_STATUSES, new_quote, render_quote
from sandboxes.xero.seed import seed_tenant
from sandboxes.xero.webhooks import XeroWebhooks


def give_mobiles(tenant: Tenant) -> None:
    """The demo's customers get mobiles from the ranges kept for fiction (sandboxes/fictional.py),
    in their order of creation; suppliers none. Done after the seed, so its random draws (and so
    every other seeded record) stay as they were."""
    customers = [c for c in tenant.contacts.values() if c.get("IsCustomer")]
    for index, contact in enumerate(customers):
        contact["Phones"] = [{"PhoneType": "MOBILE", "PhoneNumber": fictional_mobile(index),
                              "PhoneAreaCode": "", "PhoneCountryCode": ""}]

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
                give_mobiles(self.tenants_by_id[tenant_id])
                if index == 0:  # the first has a logo on its branding theme, the other none
                    self.tenants_by_id[tenant_id].logo = logo_png(name)

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
            record = new_quote(tenant, contact, to_decimal(amount), status,
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
            amount = to_decimal(amount).quantize(CENT, ROUND_HALF_UP)
            if invoice["Status"] != "AUTHORISED" or not 0 < amount <= invoice["AmountDue"]:
                raise ValueError("payment must be positive, at most the amount due, on an "
                                 "AUTHORISED invoice")
            payment = apply_payment(tenant, invoice, amount, on or self.now.date(),
                                    f"Payment {invoice['InvoiceNumber']}")
            self.touch(payment)
            self.touch(invoice)
            return render_payment(payment, tenant)
