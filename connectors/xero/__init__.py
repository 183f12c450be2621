"""Xero Accounting API connector over the official `xero-python` SDK.

Everything else about Xero lives beside it: oauth.py (settings, the OAuth client), tenants.py
(which organisations a consent reaches), identity.py (its id_token), webhooks.py (what it
posts to us) and provider.py (the registry's entry tying them together).

The SDK builds every request (paths, tenant header, query, Idempotency-Key); we read the raw
answer ourselves (`_preload_content=False`) so money is parsed straight into Decimal — the SDK's
models would hand us floats.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
import urllib3
from xero_python.accounting import AccountingApi
from xero_python.accounting.models import HistoryRecord, HistoryRecords, RequestEmpty
from xero_python.api_client import ApiClient, Configuration
from xero_python.api_client.oauth2 import OAuth2Token
from xero_python.exceptions import ApiException

from connectors.base import (
    COUNTRY_ZONES,
    AuthorizationRevoked,
    BankFee,
    ConfigurationError,
    ConnectorError,
    ContactRecord,
    CreditNote,
    DailyLimitReached,
    EditRefused,
    FeeInvoice,
    FeeInvoiceOutcome,
    FeeLine,
    InvoiceEmail,
    InvoiceEmailFacts,
    InvoiceRecord,
    InvoiceStatus,
    NotFound,
    OrganisationRecord,
    PaymentRecord,
    ProviderRejected,
    QuoteRecord,
    QuoteStatus,
    RateLimited,
    ReceivedPayment,
    TokenStore,
    TransientError,
    effect_marker,
    fee_invoice_markers,
    reads_provider_record,
    with_marker,
)
from connectors.base import batch_key as make_batch_key
from connectors.oauth import FreshTokens
from connectors.ratelimit import RateBudget
from connectors.xero.emails import standard_emails
from connectors.xero.oauth import REQUEST_TIMEOUT, XeroSettings
from observability.metrics import CountedRefresh, ProviderCall

log = logging.getLogger(__name__)

# How long Xero replays an Idempotency-Key. UNVERIFIED: Xero's API documentation (the
# Idempotency-Key header in the Accounting API's OpenAPI description, sandboxes/specs/xero)
# says a repeated key is not processed twice but names no lifetime; searched the
# specifications and Xero's developer pages. An hour is assumed: long beside any retry of
# ours, short beside the days between two reminders of one invoice.
IDEMPOTENCY_WINDOW = timedelta(hours=1)

PAGE_SIZE = 1000  # Xero's maximum: fewest calls per record
FEE_INVOICES_PER_CALL = 50  # Xero: about 50 elements a request
QUOTES_PAGE_SIZE = 100  # Xero's fixed page of GET /Quotes (it takes no pageSize)
IDS_PER_READ = 150  # invoice or contact ids in one query string (about 5,600 characters)
HISTORY_DETAILS_LIMIT = 2500  # Xero refuses longer History details
SENT_CHANGES = ("sent", "emailed")  # History "Changes" of an invoice emailed to its contact
REFRESH_MARGIN = timedelta(seconds=120)
T = TypeVar("T")

# Xero names time zones the Windows way; these cover the countries Dunwell serves first.
WINDOWS_TO_IANA = {
    "GMTSTANDARDTIME": "Europe/London",
    "GREENWICHSTANDARDTIME": "Atlantic/Reykjavik",
    "WEUROPESTANDARDTIME": "Europe/Berlin",
    "ROMANCESTANDARDTIME": "Europe/Paris",
    "CENTRALEUROPESTANDARDTIME": "Europe/Budapest",
    "CENTRALEUROPEANSTANDARDTIME": "Europe/Warsaw",
    "ISRAELSTANDARDTIME": "Asia/Jerusalem",
    "EASTERNSTANDARDTIME": "America/New_York",
    "CENTRALSTANDARDTIME": "America/Chicago",
    "MOUNTAINSTANDARDTIME": "America/Denver",
    "PACIFICSTANDARDTIME": "America/Los_Angeles",
    "AUSEASTERNSTANDARDTIME": "Australia/Sydney",
    "EAUSTRALIASTANDARDTIME": "Australia/Brisbane",
    "WAUSTRALIASTANDARDTIME": "Australia/Perth",
    "CENAUSTRALIASTANDARDTIME": "Australia/Adelaide",
    "NEWZEALANDSTANDARDTIME": "Pacific/Auckland",
    "SOUTHAFRICASTANDARDTIME": "Africa/Johannesburg",
    "SINGAPORESTANDARDTIME": "Asia/Singapore",
    "UTC": "UTC",
}
_MS_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")


def parse_xero_datetime(value: str | None) -> datetime | None:
    """`/Date(1552326816230+0000)/` (epoch ms, UTC) or ISO 8601 -> aware UTC."""
    if not value:
        return None
    match = _MS_DATE.match(value)
    if match:
        return datetime.fromtimestamp(int(match.group(1)) / 1000, tz=UTC)
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def parse_xero_date(iso_string: str | None, ms_value: str | None) -> date | None:
    """Calendar dates: prefer the `…String` twin (no time-zone arithmetic to get wrong)."""
    if iso_string:
        return date.fromisoformat(iso_string[:10])
    moment = parse_xero_datetime(ms_value)
    return moment.date() if moment else None


def _money(value: Any) -> Decimal:
    if value is None:
        return Decimal("0")
    if isinstance(value, float):  # never expected: bodies are parsed with parse_float=Decimal
        raise ConnectorError("float money in a Xero answer")
    return Decimal(value)


def invoice_status(provider_status: str, amount_due: Decimal) -> InvoiceStatus:
    if provider_status in ("DRAFT", "SUBMITTED"):
        return "draft"  # not approved: nothing to collect yet
    if provider_status == "AUTHORISED":
        return "open" if amount_due > 0 else "paid"
    if provider_status == "PAID":
        return "paid"
    if provider_status == "VOIDED":
        return "voided"
    return "deleted"


@reads_provider_record("Xero")
def invoice_record(raw: dict[str, Any]) -> InvoiceRecord:
    amount_due = _money(raw.get("AmountDue"))
    status = str(raw.get("Status", ""))
    contact = raw.get("Contact") or {}
    return InvoiceRecord(
        provider_id=str(raw["InvoiceID"]),
        number=str(raw.get("InvoiceNumber") or ""),
        contact_provider_id=contact.get("ContactID"),
        currency=str(raw.get("CurrencyCode") or ""),
        issue_date=parse_xero_date(raw.get("DateString"), raw.get("Date")),
        due_date=parse_xero_date(raw.get("DueDateString"), raw.get("DueDate")),
        total=_money(raw.get("Total")),
        amount_paid=_money(raw.get("AmountPaid")),
        amount_due=amount_due,
        status=invoice_status(status, amount_due),
        provider_status=status,
        updated_at=parse_xero_datetime(raw.get("UpdatedDateUTC")),
    )


XERO_QUOTE_STATUSES: dict[str, QuoteStatus] = {
    "DRAFT": "draft", "SENT": "sent", "ACCEPTED": "accepted", "DECLINED": "declined",
    "INVOICED": "invoiced", "DELETED": "deleted"}


@reads_provider_record("Xero")
def quote_record(raw: dict[str, Any]) -> QuoteRecord:
    provider_status = str(raw.get("Status") or "")
    if provider_status not in XERO_QUOTE_STATUSES:
        raise ValueError(f"unknown quote status {provider_status[:20]!r}")
    return QuoteRecord(
        provider_id=str(raw["QuoteID"]),
        number=str(raw.get("QuoteNumber") or ""),
        contact_provider_id=(raw.get("Contact") or {}).get("ContactID"),
        currency=str(raw.get("CurrencyCode") or ""),
        issue_date=parse_xero_date(raw.get("DateString"), raw.get("Date")),
        expiry_date=parse_xero_date(raw.get("ExpiryDateString"), raw.get("ExpiryDate")),
        total=_money(raw.get("Total")),
        status=XERO_QUOTE_STATUSES[provider_status],
        provider_status=provider_status,
        accepted_on=None,  # Xero records no acceptance date
        invoice_provider_ids=(),  # nor a link from a quote to an invoice
        updated_at=parse_xero_datetime(raw.get("UpdatedDateUTC")),
    )


@reads_provider_record("Xero")
def contact_record(raw: dict[str, Any]) -> ContactRecord:
    return ContactRecord(
        provider_id=str(raw["ContactID"]),
        name=str(raw.get("Name") or ""),
        email=raw.get("EmailAddress") or None,
        is_customer=bool(raw.get("IsCustomer", False)),
        archived=raw.get("ContactStatus") == "ARCHIVED",
        updated_at=parse_xero_datetime(raw.get("UpdatedDateUTC")),
        mobile=_xero_phone(raw, "MOBILE"),
        phone=_xero_phone(raw, "DEFAULT") or _xero_phone(raw, "DDI"),
        country=_xero_country(raw),
    )


def _xero_phone(raw: dict[str, Any], kind: str) -> str | None:
    """A Xero phone as one dialable string: "+" country code, area code and number."""
    for phone in raw.get("Phones") or ():
        if phone.get("PhoneType") == kind and phone.get("PhoneNumber"):
            country = str(phone.get("PhoneCountryCode") or "").lstrip("+")
            parts = [f"+{country}" if country else "", phone.get("PhoneAreaCode") or "",
                     phone["PhoneNumber"]]
            return " ".join(p for p in parts if p)
    return None


def _xero_country(raw: dict[str, Any]) -> str | None:
    """Xero's Country is free text: a two-letter code is kept, anything else is not guessed."""
    for address in raw.get("Addresses") or ():
        country = str(address.get("Country") or "").strip()
        if len(country) == 2 and country.isalpha():
            return country.upper()
    return None


@reads_provider_record("Xero")
def payment_record(raw: dict[str, Any]) -> PaymentRecord:
    invoice = raw.get("Invoice") or {}
    return PaymentRecord(
        provider_id=str(raw["PaymentID"]),
        invoice_provider_id=invoice.get("InvoiceID"),
        amount=_money(raw.get("Amount")),
        currency=invoice.get("CurrencyCode"),
        paid_on=parse_xero_date(None, raw.get("Date")),
        status="deleted" if raw.get("Status") == "DELETED" else "active",
        updated_at=parse_xero_datetime(raw.get("UpdatedDateUTC")),
    )


@reads_provider_record("Xero")
def organisation_record(tenant_id: str, raw: dict[str, Any]) -> OrganisationRecord:
    country = str(raw.get("CountryCode") or "GB")
    windows_zone = str(raw.get("Timezone") or "UTC")
    zone = COUNTRY_ZONES.get(country) or WINDOWS_TO_IANA.get(windows_zone, "UTC")
    return OrganisationRecord(
        tenant_id=tenant_id,
        name=str(raw.get("Name") or ""),
        country=country,
        timezone=zone,
        base_currency=str(raw.get("BaseCurrency") or ""),
    )


class XeroConnector:
    """One Xero tenant. Refreshes tokens through the TokenStore, under its lock."""

    provider = "xero"

    def __init__(self, settings: XeroSettings, tenant_id: str, tokens: TokenStore,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 budget: RateBudget | None = None) -> None:
        self.settings = settings
        self.budget = budget
        self.tenant_id = tenant_id
        self.tokens = tokens
        self.clock = clock
        self.calls = 0
        self._access_token = ""
        self._fresh = FreshTokens(tokens, CountedRefresh("xero", settings.oauth.refresh), clock,
                                  REFRESH_MARGIN)
        # Expiry stays None for the SDK: it must never refresh on its own, outside our lock.
        self._api = AccountingApi(
            ApiClient(
                Configuration(oauth2_token=OAuth2Token(
                    client_id=settings.oauth.client_id,
                    client_secret=settings.oauth.client_secret,
                )),
                pool_threads=1,
                oauth2_token_getter=lambda: {
                    "access_token": self._access_token, "token_type": "Bearer",
                    "expires_in": None, "scope": None,
                },
                oauth2_token_saver=lambda token: None,
            ),
            base_url=settings.api_url,
        )
        # Status answers (429s included) come back to us to classify: urllib3 must not sleep on
        # Retry-After. A dropped connection is retried, for writes too: every write carries an
        # Idempotency-Key, so a repeat replays the first answer instead of repeating the effect.
        self._api.api_client.rest_client.pool_manager.connection_pool_kw["retries"] = \
            urllib3.Retry(total=2, connect=2, read=2, status=0, other=0, redirect=0,
                          allowed_methods=None, respect_retry_after_header=False,
                          raise_on_status=False, backoff_factor=0.2)

    def __repr__(self) -> str:
        return f"XeroConnector(tenant_id={self.tenant_id!r})"

    # --- calls --------------------------------------------------------------------------

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, parse: bool = True,
              **kwargs: Any) -> Any:
        """One API call: fresh token, raw answer, errors classified once (`parse`: as JSON,
        else the bytes as they came)."""
        for attempt in (1, 2):
            self._access_token = self._fresh.access_token(refused=attempt == 2)
            slot = self.budget.call(self.tenant_id) if self.budget else nullcontext()
            try:
                with slot:
                    self.calls += 1
                    response = ProviderCall("xero", fn.__name__, fn)(
                        self.tenant_id, *args, _preload_content=False,
                        _request_timeout=REQUEST_TIMEOUT, **kwargs)
            except ApiException as exc:
                if exc.status == 401 and attempt == 1:
                    log.info("xero %s: access token refused, refreshing once", what,
                             extra={"tenant_id": self.tenant_id})
                    continue
                error = self._classify(what, exc)
                if isinstance(error, RateLimited) and self.budget is not None:
                    self.budget.cool_down(self.tenant_id, error.retry_after)
                raise error from exc
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise TransientError(f"Xero {what}: {type(exc).__name__}") from exc
            data = response.data
            if not parse:
                return bytes(data or b"")
            if not data:
                return None
            try:
                return json.loads(data, parse_float=Decimal)
            except ValueError as exc:
                raise TransientError(f"Xero {what}: answer is not JSON") from exc
        raise AuthorizationRevoked(f"Xero {what}: access token refused after refresh")

    def _classify(self, what: str, exc: ApiException) -> ConnectorError:
        status = exc.status or 0
        headers = exc.headers or {}
        if status == 429:
            problem = str(headers.get("X-Rate-Limit-Problem", ""))
            retry_after = float(headers.get("Retry-After") or 60)
            if problem.lower() in ("daily", "day"):  # Xero says "Daily"
                return DailyLimitReached(f"Xero {what}: daily limit reached", retry_after, problem)
            return RateLimited(f"Xero {what}: rate limited ({problem})", retry_after, problem)
        if status == 401:
            return AuthorizationRevoked(f"Xero {what}: unauthorised")
        if status == 403:
            return ConfigurationError(f"Xero {what}: forbidden (tenant disconnected or scope)")
        if status == 404:
            return NotFound(f"Xero {what}: not found")
        if status == 400:
            return ProviderRejected(f"Xero {what}: {_validation_message(exc.body)}")
        if status >= 500 or status == 0:
            return TransientError(f"Xero {what}: answered {status}")
        return ConnectorError(f"Xero {what}: answered {status}")

    def _pages(self, what: str, fn: Callable[..., Any], key: str, parse: Callable[[dict], T],
               modified_since: datetime | None, **query: Any) -> Iterator[list[T]]:
        """Every page at the largest size, oldest change first; stops on the stated page count."""
        if modified_since is not None:
            query["if_modified_since"] = modified_since.astimezone(UTC).strftime(
                "%Y-%m-%dT%H:%M:%S")
        page = 1
        while True:
            body = self._call(f"{what} page {page}", fn, page=page, page_size=PAGE_SIZE,
                              order="UpdatedDateUTC ASC", **query) or {}
            items = body.get(key) or []
            yield [parse(item) for item in items]
            pagination = body.get("pagination") or {}
            page_count = pagination.get("pageCount")
            if page_count is None:
                page_count = page if len(items) < PAGE_SIZE else page + 1
            if page >= int(page_count) or not items:
                return
            page += 1

    # --- Connector protocol -------------------------------------------------------------

    def organisation(self) -> OrganisationRecord:
        body = self._call("organisation", self._api.get_organisations) or {}
        organisations = body.get("Organisations") or []
        if not organisations:
            raise ConnectorError("Xero organisation: empty answer")
        return organisation_record(self.tenant_id, organisations[0])

    def contacts(self, modified_since: datetime | None) -> Iterator[list[ContactRecord]]:
        return self._pages("contacts", self._api.get_contacts, "Contacts", contact_record,
                           modified_since, include_archived=True)

    def invoices(self, modified_since: datetime | None) -> Iterator[list[InvoiceRecord]]:
        return self._pages("invoices", self._api.get_invoices, "Invoices", invoice_record,
                           modified_since, where='Type=="ACCREC"')

    def payments(self, modified_since: datetime | None) -> Iterator[list[PaymentRecord]]:
        def sales_only(raw: dict[str, Any]) -> PaymentRecord | None:
            if raw.get("PaymentType", "ACCRECPAYMENT") != "ACCRECPAYMENT":
                return None
            return payment_record(raw)

        for page in self._pages("payments", self._api.get_payments, "Payments", sales_only,
                                modified_since):
            yield [p for p in page if p is not None]

    def invoice(self, provider_id: str) -> InvoiceRecord:
        body = self._call(f"invoice {provider_id}", self._api.get_invoice, provider_id) or {}
        invoices = body.get("Invoices") or []
        if not invoices:
            raise NotFound(f"Xero invoice {provider_id}: not found")
        return invoice_record(invoices[0])

    def quotes(self, modified_since: datetime | None) -> Iterator[list[QuoteRecord]]:
        """GET /Quotes pages of 100 (Xero's fixed size, no pagination element), oldest change
        first; the last page is the first with fewer than 100."""
        query: dict[str, Any] = {}
        if modified_since is not None:
            query["if_modified_since"] = modified_since.astimezone(UTC).strftime(
                "%Y-%m-%dT%H:%M:%S")
        page = 1
        while True:
            body = self._call(f"quotes page {page}", self._api.get_quotes, page=page,
                              order="UpdatedDateUTC ASC", **query) or {}
            items = body.get("Quotes") or []
            yield [quote_record(item) for item in items]
            if len(items) < QUOTES_PAGE_SIZE:
                return
            page += 1

    def quote(self, provider_id: str) -> QuoteRecord:
        body = self._call(f"quote {provider_id}", self._api.get_quote, provider_id) or {}
        quotes = body.get("Quotes") or []
        if not quotes:
            raise NotFound(f"Xero quote {provider_id}: not found")
        return quote_record(quotes[0])

    def online_invoice_url(self, provider_id: str) -> str | None:
        body = self._call(f"online invoice {provider_id}", self._api.get_online_invoice,
                          provider_id) or {}
        urls = body.get("OnlineInvoices") or []
        return urls[0].get("OnlineInvoiceUrl") if urls else None

    def invoice_pdf(self, provider_id: str) -> bytes:
        """GET /Invoices/{id} with Accept: application/pdf."""
        return bytes(self._call(f"invoice pdf {provider_id}", self._api.get_invoice_as_pdf,
                                provider_id, parse=False))

    def logo_url(self) -> str | None:
        """GET /BrandingThemes: the logo of the default theme (the lowest SortOrder), else of
        the first theme that has one."""
        body = self._call("branding themes", self._api.get_branding_themes) or {}
        themes = sorted((theme for theme in body.get("BrandingThemes") or []
                         if isinstance(theme, dict)),
                        key=lambda theme: int(theme.get("SortOrder") or 0))
        for theme in themes:
            url = str(theme.get("LogoUrl") or "").strip()
            if url:
                return url
        return None

    def download_logo(self, url: str, max_bytes: int) -> bytes:
        """The image at a theme's LogoUrl: an image host, not the API, so no token goes with
        it; https only (plain http only on the API's own host: the sandbox), no redirect
        followed, and no more than max_bytes read."""
        parts, api = urlsplit(url), urlsplit(self.settings.api_url)
        if not (parts.scheme == "https" or (parts.scheme == "http"
                                             and parts.netloc == api.netloc)):
            raise ProviderRejected(f"Xero logo: a {parts.scheme or 'relative'} address is"
                                   " not fetched")
        try:
            with requests.get(url, stream=True, timeout=REQUEST_TIMEOUT,
                              allow_redirects=False) as answer:
                status = answer.status_code
                if status == 404:
                    raise NotFound("Xero logo: not found")
                if status == 429 or status >= 500:
                    raise TransientError(f"Xero logo: answered {status}")
                if status != 200:
                    raise ProviderRejected(f"Xero logo: answered {status}")
                content = answer.raw.read(max_bytes + 1, decode_content=True)
        except requests.RequestException as exc:
            raise TransientError(f"Xero logo: {type(exc).__name__}") from exc
        if len(content) > max_bytes:
            raise ProviderRejected(f"Xero logo: larger than {max_bytes} bytes")
        return bytes(content)

    def email_invoice(self, provider_id: str, idempotency_key: str) -> None:
        self._call(f"email invoice {provider_id}", self._api.email_invoice, provider_id,
                   RequestEmpty(), idempotency_key=idempotency_key)

    def invoice_emails(self, invoices: Sequence[InvoiceEmailFacts]) -> list[InvoiceEmail]:
        """Xero's standard wording (connectors/xero/emails.py: the API reads no template), with
        the organisation's trading name: one call."""
        if not invoices:
            return []
        return standard_emails(self.organisation().name, invoices)

    def add_invoice_note(self, provider_id: str, text: str, idempotency_key: str) -> None:
        """A History note ending with the marker derived from the key: past Xero's idempotency
        window the marker is the only way to tell a note that was written from one that was
        not (History & Notes can be read, never edited or deleted)."""
        marker = effect_marker(idempotency_key)
        details = with_marker(f"{text} ({marker})", marker, HISTORY_DETAILS_LIMIT)
        records = HistoryRecords(history_records=[HistoryRecord(details=details)])
        self._call(f"history note {provider_id}", self._api.create_invoice_history, provider_id,
                   records, idempotency_key=idempotency_key)

    def _history(self, provider_id: str) -> list[dict[str, Any]]:
        body = self._call(f"history of invoice {provider_id}", self._api.get_invoice_history,
                          provider_id) or {}
        return list(body.get("HistoryRecords") or [])

    def find_invoice_note(self, provider_id: str, idempotency_key: str) -> bool:
        """GET /Invoices/{id}/History, searched for the note's marker (one call)."""
        marker = effect_marker(idempotency_key)
        return any(marker in str(record.get("Details") or "")
                   for record in self._history(provider_id))

    def invoice_emailed_since(self, provider_id: str, since: datetime) -> bool:
        """Xero writes every email of an invoice into its History & Notes ("Sent", with the
        address and the time), and History is never edited: a "Sent" record stamped at or
        after `since` is the send whose answer was lost; none means none went. SentToContact
        alone cannot tell: it stays true from the first send on."""
        for record in self._history(provider_id):
            change = str(record.get("Changes") or "").strip().lower()
            if change not in SENT_CHANGES:
                continue
            moment = parse_xero_datetime(record.get("DateUTC")) or (
                parse_xero_datetime(str(record["DateUTCString"]))
                if record.get("DateUTCString") else None)
            if moment is not None and moment >= since:
                return True
        return False


    # --- terms ----------------------------------------------------------------------------

    def set_invoice_due_date(self, provider_id: str, due_date: date,
                             idempotency_key: str) -> None:
        """POST /Invoices/{id} with the DueDate alone (a partial update: nothing else
        changes). Xero takes it on a draft, submitted or approved invoice and answers a
        validation error (400) on a paid, voided or deleted one: EditRefused."""
        body = {"Invoices": [{"InvoiceID": provider_id, "DueDate": due_date.isoformat()}]}
        try:
            self._call(f"due date of invoice {provider_id}", self._api.update_invoice,
                       provider_id, body, idempotency_key=idempotency_key)
        except ProviderRejected as exc:
            raise EditRefused(str(exc)) from exc

    # --- fees -----------------------------------------------------------------------------

    def _raw_invoice(self, provider_id: str) -> dict[str, Any]:
        body = self._call(f"invoice {provider_id}", self._api.get_invoice, provider_id) or {}
        invoices = body.get("Invoices") or []
        if not invoices:
            raise NotFound(f"Xero invoice {provider_id}: not found")
        return dict(invoices[0])

    def _fee_line(self, fee: FeeLine) -> dict[str, Any]:
        # Untaxed unless the rule names a tax type: statutory interest and compensation are
        # outside the scope of VAT, and an owner who charges VAT on an admin fee says so.
        # A discount (negative amount) goes to the discount account unless one is named.
        default = self.settings.fee_account_code if fee.amount >= 0 \
            else self.settings.discount_account_code
        line: dict[str, Any] = {"Description": fee.description, "Quantity": 1,
                                "UnitAmount": fee.amount,
                                "AccountCode": fee.account_code or default,
                                "TaxType": fee.tax_type or "NONE"}
        if fee.item_name:
            line["ItemCode"] = fee.item_name
        return line

    def add_fee_line(self, provider_id: str, fee: FeeLine, idempotency_key: str) -> None:
        """Xero replaces an invoice's lines with those sent, so every kept line goes back with
        its LineItemID. Once a payment or credit is allocated, Xero refuses line edits."""
        raw = self._raw_invoice(provider_id)
        lines = raw.get("LineItems") or []
        if any(fee.marker in str(line.get("Description") or "") for line in lines):
            return  # written before; the answer was lost
        status = str(raw.get("Status", ""))
        if status not in ("DRAFT", "SUBMITTED", "AUTHORISED"):
            raise EditRefused(f"Xero invoice {provider_id} is {status.lower()}")
        if _money(raw.get("AmountPaid")) > 0 or _money(raw.get("AmountCredited")) > 0:
            raise EditRefused(f"Xero invoice {provider_id} has a payment or credit allocated")
        if fee.amount < 0 and -fee.amount > _money(raw.get("AmountDue")):
            raise ProviderRejected(f"Xero invoice {provider_id}: a discount of {-fee.amount} "
                                   f"is more than the {_money(raw.get('AmountDue'))} due")
        kept = [{key: line[key] for key in KEPT_LINE_FIELDS if line.get(key) is not None}
                for line in lines]
        body = {"Invoices": [{"InvoiceID": provider_id,
                              "LineItems": [*kept, self._fee_line(fee)]}]}
        self._call(f"fee line on invoice {provider_id}", self._api.update_invoice, provider_id,
                   body, idempotency_key=idempotency_key)

    def _fee_invoice_body(self, fee_invoice: FeeInvoice) -> dict[str, Any]:
        """An approved sales invoice; its Reference names the original and carries the lines'
        markers, so a lost answer is found again (by Reference or line description)."""
        markers = fee_invoice_markers(fee_invoice)
        reference = fee_invoice.reference
        if markers and not all(marker in reference for marker in markers):
            reference = f"{reference} ({' '.join(markers)})"
        return {
            "Type": "ACCREC", "Status": "AUTHORISED",
            "Contact": {"ContactID": fee_invoice.contact_provider_id},
            "CurrencyCode": fee_invoice.currency,
            "Date": fee_invoice.issue_date.isoformat(),
            "DueDate": fee_invoice.due_date.isoformat(),
            "Reference": with_marker(reference, markers[-1], 255) if markers
            else reference[:255],
            "LineItems": [self._fee_line(line) for line in fee_invoice.lines],
        }

    def create_fee_invoice(self, fee_invoice: FeeInvoice, idempotency_key: str) -> str:
        outcome = self.create_fee_invoices([(fee_invoice, idempotency_key)],
                                           batch_key=idempotency_key)[0]
        if outcome.provider_id is None:
            raise ProviderRejected(f"Xero fee invoice: {outcome.refused}")
        return outcome.provider_id

    # --- fee invoices in bulk ---------------------------------------------------------------

    fee_invoices_per_call = FEE_INVOICES_PER_CALL
    idempotency_window = IDEMPOTENCY_WINDOW

    def invoices_by_id(self, provider_ids: Sequence[str]) -> list[InvoiceRecord]:
        """GET /Invoices?IDs=…, IDS_PER_READ to a call (the URL stays well under Xero's
        limits); summaries suffice: status and amounts are what a write is checked against."""
        found: list[InvoiceRecord] = []
        ids = list(dict.fromkeys(provider_ids))
        for start in range(0, len(ids), IDS_PER_READ):
            chunk = ids[start:start + IDS_PER_READ]
            body = self._call(f"{len(chunk)} invoices by id", self._api.get_invoices,
                              i_ds=chunk) or {}
            found.extend(invoice_record(raw) for raw in body.get("Invoices") or [])
        return found

    def refuses_fee_line(self, invoice: InvoiceRecord) -> bool:
        """Xero refuses line edits once a payment or credit is allocated (what is due is then
        less than the total) and on anything not draft, submitted or approved."""
        if invoice.provider_status not in ("DRAFT", "SUBMITTED", "AUTHORISED"):
            return True
        return invoice.amount_paid > 0 or invoice.amount_due < invoice.total

    def create_fee_invoices(self, items: Sequence[tuple[FeeInvoice, str]],
                            batch_key: str | None = None) -> list[FeeInvoiceOutcome]:
        """PUT /Invoices?summarizeErrors=false with up to 50 invoices: each is saved or refused
        on its own, answered in the order sent. The Idempotency-Key is derived from the sorted
        item keys, so the same batch sent again replays instead of repeating."""
        outcomes: list[FeeInvoiceOutcome] = []
        for start in range(0, len(items), FEE_INVOICES_PER_CALL):
            chunk = items[start:start + FEE_INVOICES_PER_CALL]
            key = batch_key if batch_key and len(items) <= FEE_INVOICES_PER_CALL else \
                make_batch_key((k for _, k in chunk), "fee-invoices")
            body = {"Invoices": [self._fee_invoice_body(fee_invoice) for fee_invoice, _ in chunk]}
            answer = self._call(f"create {len(chunk)} fee invoices", self._api.create_invoices,
                                body, summarize_errors=False, idempotency_key=key) or {}
            created = answer.get("Invoices") or []
            if len(created) != len(chunk):
                raise TransientError(f"Xero fee invoices: {len(created)} answers for "
                                     f"{len(chunk)} invoices")
            for (_, item_key), raw in zip(chunk, created, strict=True):
                if raw.get("HasErrors") or not raw.get("InvoiceID"):
                    errors = raw.get("ValidationErrors") or [{}]
                    outcomes.append(FeeInvoiceOutcome(
                        item_key, None, str(errors[0].get("Message", "refused"))[:300]))
                else:
                    outcomes.append(FeeInvoiceOutcome(item_key, str(raw["InvoiceID"])))
        return outcomes

    def find_fee_invoices(self, markers: Sequence[str], contact_provider_ids: Sequence[str],
                          since: date) -> dict[str, str]:
        """Our app's sales invoices for those contacts dated since `since`, with their lines
        (paged), searched for the markers in Reference and line descriptions."""
        wanted, found = set(markers), {}
        contacts = list(dict.fromkeys(contact_provider_ids))
        where = (f'Type=="ACCREC" AND Date>=DateTime({since.year}, {since.month}, '
                 f"{since.day})")
        for start in range(0, len(contacts), IDS_PER_READ):
            chunk = contacts[start:start + IDS_PER_READ]
            page = 1
            while True:
                body = self._call(f"fee invoices of {len(chunk)} contacts page {page}",
                                  self._api.get_invoices, where=where, contact_i_ds=chunk,
                                  created_by_my_app=True, page=page,
                                  page_size=PAGE_SIZE) or {}
                invoices = body.get("Invoices") or []
                for raw in invoices:
                    if raw.get("Status") in ("DELETED", "VOIDED"):
                        continue
                    text = " ".join([str(raw.get("Reference") or ""), *(
                        str(line.get("Description") or "") for line in raw.get("LineItems")
                        or [])])
                    for marker in wanted:
                        if marker in text:
                            found[marker] = str(raw["InvoiceID"])
                if len(invoices) < PAGE_SIZE:
                    break
                page += 1
        return found

    # --- credit notes -----------------------------------------------------------------------

    def _marked_credit_note(self, credit: CreditNote) -> dict[str, Any] | None:
        """The contact's sales credit note carrying the marker, if an earlier attempt wrote it."""
        contact = _literal(credit.contact_provider_id)
        where = (f'Type=="ACCRECCREDIT" AND Contact.ContactID==Guid({contact})'
                 f" AND Reference.Contains({_literal(credit.marker)})")
        body = self._call(f"credit notes marked {credit.marker}", self._api.get_credit_notes,
                          where=where, page=1) or {}
        found = [note for note in body.get("CreditNotes") or []
                 if credit.marker in str(note.get("Reference") or "")
                 and note.get("Status") != "DELETED"]
        return dict(found[0]) if found else None

    def _check_creditable(self, invoice: dict[str, Any], credit: CreditNote,
                          amount: Decimal) -> None:
        """Refuse, before anything is written, what Xero would refuse to allocate."""
        invoice_id = credit.invoice_provider_id
        if invoice.get("Type", "ACCREC") != "ACCREC":
            raise ProviderRejected(f"Xero invoice {invoice_id} is not a sales invoice")
        status = str(invoice.get("Status", ""))
        due = _money(invoice.get("AmountDue"))
        if status != "AUTHORISED" or due <= 0:
            raise ProviderRejected(f"Xero invoice {invoice_id} is {status.lower()}: "
                                   "no credit can be allocated to it")
        if (invoice.get("Contact") or {}).get("ContactID") != credit.contact_provider_id:
            raise ProviderRejected(f"Xero invoice {invoice_id} belongs to another contact")
        if invoice.get("CurrencyCode") != credit.currency:
            raise ProviderRejected(f"Xero invoice {invoice_id} is in "
                                   f"{invoice.get('CurrencyCode')}, not {credit.currency}")
        if amount > due:
            raise ProviderRejected(f"Xero invoice {invoice_id}: a credit of {amount} is more "
                                   f"than the {due} due")

    def _create_credit_note(self, credit: CreditNote, idempotency_key: str) -> dict[str, Any]:
        # The amount is what the customer is credited: with a tax type it includes the tax.
        line: dict[str, Any] = {
            "Description": credit.description, "Quantity": 1, "UnitAmount": credit.amount,
            "AccountCode": credit.account_code or self.settings.discount_account_code,
            "TaxType": credit.tax_type or "NONE"}
        if credit.item_name:
            line["ItemCode"] = credit.item_name
        body = {"CreditNotes": [{
            "Type": "ACCRECCREDIT", "Status": "AUTHORISED",
            "Contact": {"ContactID": credit.contact_provider_id},
            "CurrencyCode": credit.currency, "Date": credit.issue_date.isoformat(),
            "LineAmountTypes": "Inclusive" if credit.tax_type else "NoTax",
            "Reference": with_marker(credit.description, credit.marker, 255),
            "LineItems": [line],
        }]}
        answer = self._call("create credit note", self._api.create_credit_notes, body,
                            summarize_errors=False, idempotency_key=idempotency_key) or {}
        created = (answer.get("CreditNotes") or [{}])[0]
        if created.get("HasErrors") or not created.get("CreditNoteID"):
            errors = created.get("ValidationErrors") or [{}]
            raise ProviderRejected(f"Xero credit note: {errors[0].get('Message', 'refused')}")
        return dict(created)

    def apply_credit_note(self, credit: CreditNote, idempotency_key: str) -> str:
        """PUT /CreditNotes (AUTHORISED), then PUT /CreditNotes/{id}/Allocations: Xero takes no
        allocation in the credit note's own request. Both carry an Idempotency-Key; a retry
        under a new key finds the credit note by the marker in its Reference."""
        note = self._marked_credit_note(credit)
        checked = False
        if note is None:
            self._check_creditable(self._raw_invoice(credit.invoice_provider_id), credit,
                                   credit.amount)
            note, checked = self._create_credit_note(credit, idempotency_key), True
        note_id = str(note["CreditNoteID"])
        remaining = _money(note.get("RemainingCredit"))
        status = str(note.get("Status", ""))
        if status == "PAID" or remaining <= 0:
            return note_id  # allocated before; the answer was lost
        if status != "AUTHORISED":
            raise ProviderRejected(f"Xero credit note {note_id} carrying {credit.marker} is "
                                   f"{status.lower()}")
        if not checked:
            self._check_creditable(self._raw_invoice(credit.invoice_provider_id), credit,
                                   remaining)
        body = {"Allocations": [{"Amount": remaining,
                                 "Invoice": {"InvoiceID": credit.invoice_provider_id},
                                 "Date": credit.issue_date.isoformat()}]}
        self._call(f"allocate credit note {note_id}", self._api.create_credit_note_allocation,
                   note_id, body, idempotency_key=f"{idempotency_key}:allocation")
        return note_id

    def record_payment(self, payment: ReceivedPayment, idempotency_key: str) -> str:
        """PUT /Payments with an Idempotency-Key; before it, GET /Payments by the marker in
        the Reference, so a retry under a new key after a lost answer books nothing twice."""
        where = (f"Reference.Contains({_literal(payment.marker)})"
                 ' AND Status=="AUTHORISED"')
        found = self._call(f"payments marked {payment.marker}", self._api.get_payments,
                           where=where, page=1) or {}
        for existing in found.get("Payments") or []:
            if payment.marker in str(existing.get("Reference") or ""):
                return str(existing["PaymentID"])
        invoice_id = payment.invoice_provider_id
        invoice = self._raw_invoice(invoice_id)
        due, status = _money(invoice.get("AmountDue")), str(invoice.get("Status", ""))
        if status != "AUTHORISED" or due < payment.amount:
            raise ProviderRejected(f"Xero invoice {invoice_id} is {status.lower()} and owes "
                                   f"{due}: a payment of {payment.amount} cannot be booked")
        if invoice.get("CurrencyCode") != payment.currency:
            raise ProviderRejected(f"Xero invoice {invoice_id} is in "
                                   f"{invoice.get('CurrencyCode')}, not {payment.currency}")
        body = {"Payments": [{
            "Invoice": {"InvoiceID": invoice_id},
            "Account": {"Code": payment.account_code or self.settings.payment_account_code},
            "Date": payment.paid_on.isoformat(), "Amount": payment.amount,
            "Reference": payment.reference[:255]}]}
        answer = self._call("create payment", self._api.create_payments, body,
                            idempotency_key=idempotency_key) or {}
        created = (answer.get("Payments") or [{}])[0]
        if created.get("HasErrors") or not created.get("PaymentID"):
            errors = created.get("ValidationErrors") or [{}]
            raise ProviderRejected(f"Xero payment: {errors[0].get('Message', 'refused')}")
        return str(created["PaymentID"])


    def remove_payment(self, payment_id: str, idempotency_key: str) -> bool:
        """POST /Payments/{id} with Status DELETED (Xero's way to take a payment off an
        invoice); read first, so a payment already deleted is not asked again."""
        found = self._call(f"payment {payment_id}", self._api.get_payment, payment_id) or {}
        current = (found.get("Payments") or [{}])[0]
        if not current.get("PaymentID") or current.get("Status") == "DELETED":
            return False
        self._call(f"delete payment {payment_id}", self._api.delete_payment, payment_id,
                   {"Status": "DELETED"}, idempotency_key=idempotency_key)
        return True

    def record_bank_fee(self, fee: BankFee, idempotency_key: str) -> str:
        """PUT /BankTransactions (SPEND, to the payee, from the bank account the payments go
        to), found first by the marker in its Reference."""
        where = f"Reference.Contains({_literal(fee.marker)})" + ' AND Status=="AUTHORISED"'
        found = self._call(f"bank transactions marked {fee.marker}",
                           self._api.get_bank_transactions, where=where, page=1) or {}
        for existing in found.get("BankTransactions") or []:
            if fee.marker in str(existing.get("Reference") or ""):
                return str(existing["BankTransactionID"])
        body = {"BankTransactions": [{
            "Type": "SPEND", "Contact": {"Name": fee.payee},
            "BankAccount": {"Code": fee.bank_account_code or self.settings.payment_account_code},
            "Date": fee.paid_on.isoformat(), "CurrencyCode": fee.currency,
            "Reference": fee.description[:255], "LineAmountTypes": "NoTax",
            "LineItems": [{"Description": fee.description[:4000], "Quantity": 1,
                           "UnitAmount": fee.amount,
                           "AccountCode": self.settings.bank_fee_account_code}]}]}
        answer = self._call("create bank transaction", self._api.create_bank_transactions,
                            body, idempotency_key=idempotency_key) or {}
        created = (answer.get("BankTransactions") or [{}])[0]
        if created.get("HasErrors") or not created.get("BankTransactionID"):
            errors = created.get("ValidationErrors") or [{}]
            raise ProviderRejected(f"Xero bank fee: {errors[0].get('Message', 'refused')}")
        return str(created["BankTransactionID"])

# What Xero needs to keep a line as it is when the invoice's lines are sent back.
KEPT_LINE_FIELDS = ("LineItemID", "Description", "Quantity", "UnitAmount", "ItemCode",
                    "AccountCode", "TaxType", "DiscountRate", "Tracking")


def _literal(value: str) -> str:
    """A string literal of Xero's `where` language; a quote inside is escaped, never closed."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _validation_message(body: Any) -> str:
    """The first human message in Xero's ValidationException body, for logs and the owner."""
    try:
        data = json.loads(body) if isinstance(body, str | bytes) else body
        for element in data.get("Elements") or []:
            for error in element.get("ValidationErrors") or []:
                if error.get("Message"):
                    return str(error["Message"])[:300]
        return str(data.get("Message") or data.get("Detail") or "validation error")[:300]
    except (ValueError, AttributeError, TypeError):
        return "validation error"


def page_floor(count: int) -> int:
    """The fewest calls that can list `count` records (one call even when empty)."""
    return max(1, math.ceil(count / PAGE_SIZE))
