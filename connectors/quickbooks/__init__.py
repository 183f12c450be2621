"""QuickBooks Online connector over `python-quickbooks` (requests) and `intuit-oauth` (tokens).

python-quickbooks builds the URLs, sends `minorversion` and `requestid`, and turns `Fault`
bodies into its typed exceptions; we hand it a session of our own so that every call passes
the shared rate budget and a 429 or 5xx is classified before the library reads the body (its
JSON parser would call a throttle page "Error reading json response"). Answers are read as
dicts with `use_decimal=True`: the library's objects would round-trip money through float.

Incremental sync asks CDC for every record kind in one call (`changes`), falling back to a
keyset query sync for a kind when the cursor is older than CDC's 30 days or CDC cannot answer it
under its 1,000-object cap.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import requests
import urllib3
from quickbooks import QuickBooks
from quickbooks import exceptions as qbx
from requests.adapters import HTTPAdapter

from connectors.base import (
    COUNTRY_ZONES,
    AuthorizationRevoked,
    BankFee,
    ConfigurationError,
    ConnectorError,
    ContactRecord,
    CreditNote,
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
from connectors.quickbooks import emails
from connectors.quickbooks.oauth import QuickBooksSettings
from connectors.ratelimit import RateBudget
from observability.metrics import CountedRefresh, ProviderCall

log = logging.getLogger(__name__)

# How long QuickBooks replays a `requestid`. UNVERIFIED: Intuit's note on RequestID (the
# service "sends the same response as it did for the original request") names no lifetime;
# searched the API reference in sandboxes/specs/quickbooks and Intuit's developer blog. An hour
# is assumed, as for Xero.
IDEMPOTENCY_WINDOW = timedelta(hours=1)

PAGE_SIZE = 1000  # QBO's largest MAXRESULTS
# Intuit: "The maximum number of objects that can be returned in a response is 1000", all
# entities of the answer together (the change-data-capture page and Intuit's developer blog,
# 2023-08-24). An answer holding that many may have left changes out, of any kind it names.
CDC_MAX_OBJECTS = 1000
CDC_MAX_AGE = timedelta(days=30)
# The record kinds of a sync (sync/streams.py's stream names) as CDC names them, and what a
# query sync of each adds to its WHERE.
CDC_ENTITIES = {"contacts": "Customer", "invoices": "Invoice", "payments": "Payment",
                "quotes": "Estimate"}
QUERY_WHERE = {"Customer": "Active IN (true, false)"}
REQUEST_TIMEOUT = 120  # QBO's own limit
# QuickBooks asks apps to refresh only once the access token has expired; a minute's margin
# keeps a call from starting with a token that dies in flight.
REFRESH_MARGIN = timedelta(seconds=60)
DEFAULT_RETRY_AFTER = 60.0  # QBO's 429 carries no Retry-After; Intuit says to wait a minute
STALE_OBJECT = 5010
PRIVATE_NOTE_LIMIT = 4000
BANK_CHARGES = "Bank Charges"  # the expense account a processor's fees are booked to
CUSTOMER_MEMO_LIMIT = 1000
LATE_FEE_ITEM = "Late fee"
DISCOUNT_ITEM = "Discount"
BATCH_MAX_ITEMS = 30  # operations in one /batch request
BATCH_PER_MINUTE = 40  # /batch requests a minute per company
IDS_PER_QUERY = 200  # ids in one `IN (…)` of a query
T = TypeVar("T")


# --- Records ------------------------------------------------------------------------------


def parse_qbo_datetime(value: str | None) -> datetime | None:
    """`2026-11-24T02:00:00-08:00` (the company's offset) -> aware UTC."""
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def qbo_timestamp(moment: datetime) -> str:
    """A timestamp for query and CDC filters, in UTC with an explicit offset."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _day(value: str | None) -> date | None:
    return date.fromisoformat(value[:10]) if value else None


def _money(value: Any) -> Decimal:
    if value is None:
        return Decimal("0")
    if isinstance(value, float):  # never expected: answers are parsed with use_decimal
        raise ConnectorError("float money in a QuickBooks answer")
    return Decimal(value)


def _ref(raw: Any) -> str | None:
    return str(raw["value"]) if isinstance(raw, dict) and raw.get("value") else None


def _deleted(raw: dict[str, Any]) -> bool:
    return str(raw.get("status", "")).lower() == "deleted"


def _updated(raw: dict[str, Any]) -> datetime | None:
    return parse_qbo_datetime((raw.get("MetaData") or {}).get("LastUpdatedTime"))


def invoice_status(raw: dict[str, Any]) -> tuple[InvoiceStatus, str]:
    """QuickBooks has no approval step: an invoice is open until its balance is nil."""
    if _deleted(raw):
        return "deleted", "Deleted"
    total, balance = _money(raw.get("TotalAmt")), _money(raw.get("Balance"))
    if total == 0 and balance == 0 and str(raw.get("PrivateNote") or "").startswith("Voided"):
        return "voided", "Voided"  # QBO zeroes a voided invoice and notes it so
    if balance > 0:
        return "open", "Open"
    return "paid", "Paid"


@reads_provider_record("QuickBooks")
def invoice_record(raw: dict[str, Any]) -> InvoiceRecord:
    status, provider_status = invoice_status(raw)
    total, balance = _money(raw.get("TotalAmt")), _money(raw.get("Balance"))
    return InvoiceRecord(
        provider_id=str(raw["Id"]),
        number=str(raw.get("DocNumber") or ""),
        contact_provider_id=_ref(raw.get("CustomerRef")),
        currency=_ref(raw.get("CurrencyRef")) or "",
        issue_date=_day(raw.get("TxnDate")),
        due_date=_day(raw.get("DueDate")),
        total=total,
        amount_paid=total - balance,
        amount_due=balance,
        status=status,
        provider_status=provider_status,
        updated_at=_updated(raw),
    )


QBO_ESTIMATE_STATUSES: dict[str, QuoteStatus] = {
    "Pending": "sent", "Accepted": "accepted", "Closed": "invoiced", "Rejected": "declined"}


@reads_provider_record("QuickBooks")
def quote_record(raw: dict[str, Any]) -> QuoteRecord:
    """An Estimate. QuickBooks has no draft estimate: Pending is one given to the customer."""
    if _deleted(raw):
        return QuoteRecord(provider_id=str(raw["Id"]), number="", contact_provider_id=None,
                           currency="", issue_date=None, expiry_date=None, total=Decimal(0),
                           status="deleted", provider_status="Deleted", accepted_on=None,
                           invoice_provider_ids=(), updated_at=_updated(raw))
    provider_status = str(raw.get("TxnStatus") or "Pending")
    if provider_status not in QBO_ESTIMATE_STATUSES:
        raise ValueError(f"unknown estimate status {provider_status[:20]!r}")
    linked = tuple(str(link["TxnId"]) for link in raw.get("LinkedTxn") or []
                   if link.get("TxnType") == "Invoice" and link.get("TxnId"))
    return QuoteRecord(
        provider_id=str(raw["Id"]),
        number=str(raw.get("DocNumber") or ""),
        contact_provider_id=_ref(raw.get("CustomerRef")),
        currency=_ref(raw.get("CurrencyRef")) or "",
        issue_date=_day(raw.get("TxnDate")),
        expiry_date=_day(raw.get("ExpirationDate")),
        total=_money(raw.get("TotalAmt")),
        status=QBO_ESTIMATE_STATUSES[provider_status],
        provider_status=provider_status,
        accepted_on=_day(raw.get("AcceptedDate")),
        invoice_provider_ids=linked,
        updated_at=_updated(raw),
    )


@reads_provider_record("QuickBooks")
def contact_record(raw: dict[str, Any]) -> ContactRecord:
    email = (raw.get("PrimaryEmailAddr") or {}).get("Address")
    return ContactRecord(
        provider_id=str(raw["Id"]),
        name=str(raw.get("DisplayName") or raw.get("CompanyName") or ""),
        email=email or None,
        is_customer=True,
        archived=raw.get("Active") is False or _deleted(raw),
        updated_at=_updated(raw),
        mobile=(raw.get("Mobile") or {}).get("FreeFormNumber") or None,
        phone=(raw.get("PrimaryPhone") or {}).get("FreeFormNumber") or None,
        country=_country_code((raw.get("BillAddr") or {}).get("Country")),
    )


def _country_code(country: str | None) -> str | None:
    """QuickBooks' Country is free text: a two-letter code is kept, anything else is not
    guessed (a number in international form needs none)."""
    country = (country or "").strip()
    return country.upper() if len(country) == 2 and country.isalpha() else None


@reads_provider_record("QuickBooks")
def payment_records(raw: dict[str, Any]) -> list[PaymentRecord]:
    """One record per invoice the payment settles (`<payment>:<invoice>`).

    A payment of nothing that links a credit memo only applies the credit (QBO has no other
    way to): no money came in, so it is no payment, as a Xero credit note allocation is none."""
    payment_id, updated = str(raw["Id"]), _updated(raw)
    if _deleted(raw):
        return [PaymentRecord(provider_id=payment_id, invoice_provider_id=None,
                              amount=Decimal(0), currency=None, paid_on=None, status="deleted",
                              updated_at=updated)]
    credited = sum((_money(line.get("Amount")) for line in raw.get("Line") or []
                    for linked in line.get("LinkedTxn") or []
                    if linked.get("TxnType") == "CreditMemo"), Decimal(0))
    if _money(raw.get("TotalAmt")) == 0 and credited > 0:
        return []
    amounts: dict[str, Decimal] = {}
    for line in raw.get("Line") or []:
        for linked in line.get("LinkedTxn") or []:
            if linked.get("TxnType") == "Invoice" and linked.get("TxnId"):
                invoice_id = str(linked["TxnId"])
                amounts[invoice_id] = amounts.get(invoice_id, Decimal(0)) + _money(
                    line.get("Amount"))
    return [
        PaymentRecord(provider_id=f"{payment_id}:{invoice_id}", invoice_provider_id=invoice_id,
                      amount=amount, currency=_ref(raw.get("CurrencyRef")),
                      paid_on=_day(raw.get("TxnDate")), status="active", updated_at=updated)
        for invoice_id, amount in amounts.items()
    ]


@reads_provider_record("QuickBooks")
def organisation_record(realm_id: str, company: dict[str, Any],
                        preferences: dict[str, Any]) -> OrganisationRecord:
    country = str(company.get("Country") or "US").upper()
    country = {"UK": "GB"}.get(country, country)
    zone = str(company.get("DefaultTimeZone") or "")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = COUNTRY_ZONES.get(country, "UTC")
    currency = _ref((preferences.get("CurrencyPrefs") or {}).get("HomeCurrency")) or ""
    return OrganisationRecord(tenant_id=realm_id, name=str(company.get("CompanyName") or ""),
                              country=country, timezone=zone, base_currency=currency)


def request_id(idempotency_key: str) -> str:
    """QBO's `requestid` holds at most 50 characters; longer keys are hashed, stably."""
    if len(idempotency_key) <= 50:
        return idempotency_key
    return hashlib.sha256(idempotency_key.encode()).hexdigest()[:50]


def quote(value: str) -> str:
    """A string literal of QBO's query language; a quote inside is escaped, never closed."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def select(entity: str, where: tuple[str, ...] = (), order_by: str | None = None,
           start: int = 1, max_results: int = PAGE_SIZE) -> str:
    """A SELECT of QBO's query language. Conditions are built here from `quote`d values only,
    so no caller's text reaches the statement unescaped."""
    statement = f"SELECT * FROM {entity}"  # noqa: S608 - QBO's query language, not SQL
    if where:
        statement += " WHERE " + " AND ".join(where)
    if order_by:
        statement += f" ORDERBY {order_by}"
    return statement + f" STARTPOSITION {start} MAXRESULTS {max_results}"


# --- The connector ------------------------------------------------------------------------


def operation_of(method: str, url: str) -> str:
    """A call's name in the metrics: the method and the resource after the company's id
    (`get_invoice`, `post_batch`, `get_query`), never an id."""
    path = url.split("?", 1)[0].rstrip("/").split("/")
    after = path[path.index("company") + 2:] if "company" in path else path[-1:]
    return f"{method.lower()}_{after[0].lower() if after else ''}"


class _BudgetedSession(requests.Session):
    """The HTTP session python-quickbooks sends through: budget first, status classified."""

    def __init__(self, connector: QuickBooksConnector) -> None:
        super().__init__()
        self.connector = connector
        self.access_token = ""
        # A dropped connection is retried, writes included: each carries a `requestid`, so a
        # repeat replays the first answer. Status answers come back to us, unslept.
        retry = urllib3.Retry(total=2, connect=2, read=2, status=0, other=0, redirect=0,
                              allowed_methods=None, respect_retry_after_header=False,
                              raise_on_status=False, backoff_factor=0.2)
        self.mount("http://", HTTPAdapter(max_retries=retry))
        self.mount("https://", HTTPAdapter(max_retries=retry))

    def request(self, method: str | bytes, url: str | bytes,  # type: ignore[override]
                *args: Any, **kwargs: Any) -> requests.Response:
        connector = self.connector
        kwargs.setdefault("timeout", REQUEST_TIMEOUT)
        budget = connector.budget
        batch = str(url).split("?", 1)[0].rstrip("/").endswith("/batch")
        if budget is not None and batch and budget.batch_per_minute is None:
            budget = replace(budget, batch_per_minute=BATCH_PER_MINUTE)
        slot = budget.call(connector.realm_id, batch=batch) if budget else nullcontext()
        try:
            with slot:
                connector.calls += 1
                response = ProviderCall("quickbooks", operation_of(str(method), str(url)),
                                        super().request)(method, url, *args, **kwargs)
        except requests.RequestException as exc:
            raise TransientError(f"QuickBooks {connector.current}: {type(exc).__name__}") \
                from exc
        if response.status_code == 429:
            retry_after = float(response.headers.get("Retry-After") or DEFAULT_RETRY_AFTER)
            if budget is not None:
                budget.cool_down(connector.realm_id, retry_after)
            raise RateLimited(f"QuickBooks {connector.current}: throttled", retry_after,
                              "ThrottleExceeded")
        if response.status_code >= 500:
            raise TransientError(
                f"QuickBooks {connector.current}: answered {response.status_code} "
                f"(intuit_tid {response.headers.get('intuit_tid', '?')})")
        return response


class QuickBooksConnector:
    """One QuickBooks company (realm). Refreshes tokens through the TokenStore, under its lock."""

    provider = "quickbooks"

    def __init__(self, settings: QuickBooksSettings, realm_id: str, tokens: TokenStore,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 budget: RateBudget | None = None) -> None:
        self.settings = settings
        self.realm_id = realm_id
        self.tokens = tokens
        self.clock = clock
        self.budget = budget
        self.calls = 0
        self._fresh = FreshTokens(tokens, CountedRefresh("quickbooks", settings.refresh), clock,
                                  REFRESH_MARGIN)
        self.current = ""  # what the call in progress is for, for error messages
        self._session = _BudgetedSession(self)
        # A client of our own (never the library's global one), with no auth client: the
        # library must not refresh tokens outside our lock.
        self._qb = QuickBooks(company_id=realm_id, minorversion=settings.minor_version,
                              use_decimal=True)
        self._qb.session = self._session
        self._qb.api_url_v3 = settings.api_url.rstrip("/")
        self._qb.sandbox = False
        self._items: dict[str, dict[str, str]] = {}  # service items by name
        self._accounts: list[dict[str, Any]] | None = None  # income accounts
        self._discounts: bool | None = None  # whether the company allows discount lines

    def __repr__(self) -> str:
        return f"QuickBooksConnector(realm_id={self.realm_id!r})"

    # --- tokens and calls -------------------------------------------------------------

    def _call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """One API call: fresh token, errors classified once (a 401 refreshes once)."""
        self.current = what
        for attempt in (1, 2):
            self._session.access_token = self._fresh.access_token(refused=attempt == 2)
            try:
                return fn(*args, **kwargs)
            except qbx.AuthorizationException as exc:
                if attempt == 1 and exc.error_code == 401:
                    log.info("quickbooks %s: access token refused, refreshing once", what,
                             extra={"realm_id": self.realm_id})
                    continue
                raise AuthorizationRevoked(f"QuickBooks {what}: {exc.message}") from exc
            except qbx.QuickbooksException as exc:
                raise self._classify(what, exc) from exc
        raise AuthorizationRevoked(f"QuickBooks {what}: access token refused after refresh")

    def _classify(self, what: str, exc: qbx.QuickbooksException) -> ConnectorError:
        code = int(exc.error_code or 0)
        text = f"QuickBooks {what}: {exc.message} ({code})"
        if isinstance(exc, qbx.ObjectNotFoundException):
            return NotFound(text)
        if code in (3100, 3200):  # ApplicationAuthorizationFailed, AuthenticationFailed
            return ConfigurationError(text)
        if code == 10000 and "json" in str(exc.message).lower():
            return TransientError(f"QuickBooks {what}: answer is not JSON")
        if isinstance(exc, qbx.SevereException):
            return TransientError(text)
        error = ProviderRejected(f"{text}: {str(exc.detail)[:300]}")
        error.code = code  # type: ignore[attr-defined]
        return error

    def _query(self, what: str, statement: str) -> dict[str, Any]:
        answer = self._call(what, self._qb.query, statement) or {}
        return answer.get("QueryResponse") or {}

    def _get(self, entity: str, provider_id: str, **params: str) -> dict[str, Any]:
        answer = self._call(f"{entity.lower()} {provider_id}", self._qb.get_single_object,
                            entity, provider_id, params=params or None)
        return dict(answer[entity])

    # --- reading --------------------------------------------------------------------------

    def _keyset(self, entity: str, since: datetime | None,
                where: str = "") -> Iterator[list[dict[str, Any]]]:
        """Pages ordered by LastUpdatedTime, resumed from the newest time read (not a
        position: a record edited while we page moves to the end instead of being skipped)."""
        position, boundary_ids = 1, set[str]()
        while True:
            clauses: tuple[str, ...] = (where,) if where else ()
            if since is not None:
                clauses += (f"MetaData.LastUpdatedTime >= {quote(qbo_timestamp(since))}",)
            statement = select(entity, clauses, "MetaData.LastUpdatedTime", position)
            items = self._query(f"{entity.lower()} query", statement).get(entity) or []
            yield [i for i in items if str(i.get("Id")) not in boundary_ids]
            if len(items) < PAGE_SIZE:
                return
            newest = max((t for i in items if (t := _updated(i)) is not None), default=None)
            if newest is None or (since is not None and newest <= since):
                position += PAGE_SIZE  # a full page within one second: step through it
                continue
            boundary_ids = {str(i["Id"]) for i in items if _updated(i) == newest}
            since, position = newest, 1

    def _within_cdc(self, since: datetime | None) -> bool:
        """Whether CDC looks back as far as `since` (with five minutes to spare)."""
        return since is not None and self.clock() - since < CDC_MAX_AGE - timedelta(minutes=5)

    def _cdc(self, entities: Sequence[str], changed_since: datetime
             ) -> tuple[dict[str, list[Any]], datetime | None]:
        """One CDC call: each entity's changed objects (deletions as `status: Deleted` stubs),
        and when QBO answered (the answer's `time`; else its newest change). The answer holds
        one QueryResponse per entity asked, `{}` for one without changes."""
        answer = self._call(f"{','.join(e.lower() for e in entities)} changes",
                            self._qb.change_data_capture, ",".join(entities),
                            qbo_timestamp(changed_since)) or {}
        found: dict[str, list[Any]] = {entity: [] for entity in entities}
        for block in (answer.get("CDCResponse") or [{}])[0].get("QueryResponse") or []:
            for entity in entities:
                found[entity].extend(block.get(entity) or [])
        try:
            answered = parse_qbo_datetime(str(answer.get("time") or ""))
        except ValueError:
            answered = None
        if answered is None:
            answered = max((when for objects in found.values() for raw in objects
                            if (when := _updated(raw)) is not None), default=None)
        return found, answered

    def _cdc_complete(self, entities: Sequence[str], changed_since: datetime
                      ) -> dict[str, tuple[list[Any] | None, datetime | None]]:
        """Each entity's changes since then, from CDC answers that were not full, with when
        that entity's answer was given (it is complete for the entity up to then); None for an
        entity that alone fills an answer (read it by query).

        A full answer (CDC_MAX_OBJECTS objects in all) may have left out changes of any kind
        it names, so its kinds are asked again in smaller groups, packed by the counts the full
        answer showed so that each group's should fit; a group whose answer is full again is
        split further."""
        found, answered = self._cdc(entities, changed_since)
        if sum(len(objects) for objects in found.values()) < CDC_MAX_OBJECTS:
            return {entity: (objects, answered) for entity, objects in found.items()}
        if len(entities) == 1:
            log.info("quickbooks realm %s: %s changes fill a CDC answer; reading by query",
                     self.realm_id, entities[0])
            return {entities[0]: (None, None)}
        log.info("quickbooks realm %s: the CDC answer for %s is full; asking in groups",
                 self.realm_id, ",".join(entities))
        complete: dict[str, tuple[list[Any] | None, datetime | None]] = {}
        for group in _cdc_groups({entity: len(found[entity]) for entity in entities}):
            if len(group) == 1 and len(found[group[0]]) >= CDC_MAX_OBJECTS:
                complete[group[0]] = (None, None)  # alone it fills an answer: no need to ask
                continue
            complete.update(self._cdc_complete(group, changed_since))
        return complete

    def changes(self, since: Mapping[str, datetime | None]
                ) -> dict[str, tuple[Iterator[list[Any]], datetime | None]] | None:
        """The records of several kinds (stream names: contacts, invoices, payments, quotes)
        changed since each one's bookmark, asked of CDC together: one call while the changes of
        them all number fewer than CDC_MAX_OBJECTS. For each kind, its pages and the bookmark
        it may move to once they are stored: when QBO gave the answer that held its changes,
        so that a kind that seldom changes (customers) keeps up with the others and the next
        call asks from a recent moment; None where the pages' own newest record is the
        bookmark (a kind CDC cannot answer under its cap, read by a keyset query
        from its own bookmark). None when CDC cannot serve these bookmarks (one is missing,
        or older than CDC looks back): read each kind on its own.

        CDC is asked from the oldest bookmark (one second back: QBO stamps to the second);
        what a kind's own bookmark says it has already seen is left out."""
        kinds = {kind: moment for kind, moment in since.items() if kind in CDC_ENTITIES}
        moments = [moment for moment in kinds.values() if moment is not None]
        if not kinds or len(moments) < len(kinds) or not self._within_cdc(min(moments)):
            return None
        second = timedelta(seconds=1)
        found = self._cdc_complete([CDC_ENTITIES[kind] for kind in kinds],
                                   min(moments) - second)
        pages: dict[str, tuple[Iterator[list[Any]], datetime | None]] = {}
        for kind, moment in kinds.items():
            assert moment is not None
            entity = CDC_ENTITIES[kind]
            objects, newest = found[entity]
            if objects is None:
                raws = self._keyset(entity, moment, QUERY_WHERE.get(entity, ""))
            else:
                raws = iter([[raw for raw in objects
                              if (when := _updated(raw)) is None or when > moment - second]])
            pages[kind] = (_records_of(entity, raws), newest)
        return pages

    def _changes(self, entity: str, since: datetime | None,
                 where: str = "") -> Iterator[list[dict[str, Any]]]:
        """One kind's changes: CDC when it can answer completely, else a query sync from the
        same point."""
        if self._within_cdc(since):
            assert since is not None
            # One second back: QBO stamps to the second, and re-reading is harmless.
            objects, _ = self._cdc_complete([entity], since - timedelta(seconds=1))[entity]
            if objects is not None:
                yield objects
                return
        yield from self._keyset(entity, since, where)

    def organisation(self) -> OrganisationRecord:
        company = self._get("CompanyInfo", self.realm_id)
        answer = self._call("preferences", self._qb.get,
                            f"{self._qb.api_url}/company/{self.realm_id}/preferences") or {}
        return organisation_record(self.realm_id, company, answer.get("Preferences") or {})

    def contacts(self, modified_since: datetime | None) -> Iterator[list[ContactRecord]]:
        return _records_of("Customer", self._changes("Customer", modified_since,
                                                     QUERY_WHERE["Customer"]))

    def invoices(self, modified_since: datetime | None) -> Iterator[list[InvoiceRecord]]:
        return _records_of("Invoice", self._changes("Invoice", modified_since))

    def payments(self, modified_since: datetime | None) -> Iterator[list[PaymentRecord]]:
        return _records_of("Payment", self._changes("Payment", modified_since))

    def invoice(self, provider_id: str) -> InvoiceRecord:
        return invoice_record(self._get("Invoice", provider_id))

    def quotes(self, modified_since: datetime | None) -> Iterator[list[QuoteRecord]]:
        """Estimates, by CDC or a keyset query like invoices."""
        return _records_of("Estimate", self._changes("Estimate", modified_since))

    def quote(self, provider_id: str) -> QuoteRecord:
        return quote_record(self._get("Estimate", provider_id))

    def online_invoice_url(self, provider_id: str) -> str | None:
        link = self._get("Invoice", provider_id, include="invoiceLink").get("InvoiceLink")
        return str(link) if link else None

    def invoice_pdf(self, provider_id: str) -> bytes:
        """GET /invoice/{id}/pdf."""
        return bytes(self._call(f"invoice pdf {provider_id}", self._qb.download_pdf,
                                "Invoice", provider_id))

    def logo_url(self) -> str | None:
        """QuickBooks' Accounting API serves no company logo (CompanyInfo has none): the owner
        uploads one to Dunwell instead."""
        return None

    def download_logo(self, url: str, max_bytes: int) -> bytes:
        raise NotFound("QuickBooks keeps no logo that the API serves")

    # --- writing --------------------------------------------------------------------------

    def _post(self, what: str, path: str, body: Any, key: str,
              content_type: str = "application/json", **params: str) -> dict[str, Any]:
        url = f"{self._qb.api_url}/company/{self.realm_id}/{path}"
        return self._call(what, self._qb.post, url, body, content_type=content_type,
                          params=dict(params), request_id=request_id(key)) or {}

    def _sparse_update(self, what: str, invoice_id: str, key: str,
                       change: Callable[[dict[str, Any]], dict[str, Any] | None]) -> None:
        """Re-read, apply, write with the current SyncToken; once more if someone else wrote
        in between. `change` returns None when the effect is already there."""
        for attempt in (1, 2):
            raw = self._get("Invoice", invoice_id)
            fields = change(raw)
            if fields is None:
                return
            body = {"Id": raw["Id"], "SyncToken": raw["SyncToken"], "sparse": True, **fields}
            try:
                self._post(what, "invoice", _json(body), key if attempt == 1 else f"{key}:2")
                return
            except ProviderRejected as exc:
                if getattr(exc, "code", None) != STALE_OBJECT or attempt == 2:
                    raise
                log.info("quickbooks realm %s invoice %s: stale SyncToken, re-reading once",
                         self.realm_id, invoice_id)

    def email_invoice(self, provider_id: str, idempotency_key: str) -> None:
        self._post(f"email invoice {provider_id}", f"invoice/{provider_id}/send", "",
                   idempotency_key, content_type="application/octet-stream")

    def invoice_emails(self, invoices: Sequence[InvoiceEmailFacts]) -> list[InvoiceEmail]:
        """From the organisation's own email settings (its Preferences): one call, two where
        the texts name the company."""
        if not invoices:
            return []
        answer = self._call("preferences", self._qb.get,
                            f"{self._qb.api_url}/company/{self.realm_id}/preferences") or {}
        texts = emails.invoice_message(answer.get("Preferences") or {})
        if texts is None:
            raise ConnectorError("QuickBooks preferences: no invoice email message")
        name = ""
        if emails.needs_company_name(*texts):
            company = self._get("CompanyInfo", self.realm_id)
            name = str(company.get("CompanyName") or "")
        return emails.invoice_emails(*texts, name, invoices)

    def add_invoice_note(self, provider_id: str, text: str, idempotency_key: str) -> None:
        """A line in the invoice's private note (the bookkeeper sees it; the customer never
        does), marked so that a retry after a lost answer does not write it twice."""
        marker = effect_marker(idempotency_key)

        def append(raw: dict[str, Any]) -> dict[str, Any] | None:
            note = str(raw.get("PrivateNote") or "")
            if marker in note:
                return None
            line = f"{self.clock().date().isoformat()} {text} ({marker})"
            lines = [*(note.splitlines() if note else []), line]
            while len("\n".join(lines)) > PRIVATE_NOTE_LIMIT and len(lines) > 1:
                lines.pop(0)  # the oldest lines give way; the newest always fits
            return {"PrivateNote": "\n".join(lines)[-PRIVATE_NOTE_LIMIT:]}

        self._sparse_update(f"note on invoice {provider_id}", provider_id, idempotency_key,
                            append)

    def find_invoice_note(self, provider_id: str, idempotency_key: str) -> bool:
        """The note's marker in the invoice's PrivateNote (one read)."""
        note = str(self._get("Invoice", provider_id).get("PrivateNote") or "")
        return effect_marker(idempotency_key) in note

    def invoice_emailed_since(self, provider_id: str, since: datetime) -> bool:
        """The send operation sets EmailStatus to EmailSent and DeliveryInfo to
        {DeliveryType: Email, DeliveryTime}, the time of the latest send (read-only): a
        DeliveryTime at or after `since` is the send whose answer was lost."""
        raw = self._get("Invoice", provider_id)
        delivery = raw.get("DeliveryInfo") or {}
        if raw.get("EmailStatus") != "EmailSent" or delivery.get("DeliveryType") != "Email":
            return False
        moment = parse_qbo_datetime(delivery.get("DeliveryTime"))
        return moment is not None and moment >= since

    def _allows_discounts(self) -> bool:
        """Intuit: a discount line needs the preference Sales Form Entry | Discounts."""
        if self._discounts is None:
            answer = self._call("preferences", self._qb.get,
                                f"{self._qb.api_url}/company/{self.realm_id}/preferences") or {}
            sales = (answer.get("Preferences") or {}).get("SalesFormsPrefs") or {}
            self._discounts = sales.get("AllowDiscount") is not False
        return self._discounts

    def _income_accounts(self) -> list[dict[str, Any]]:
        if self._accounts is None:
            self._accounts = self._query("income accounts", select(
                "Account", ("AccountType = 'Income'",))).get("Account") or []
        return self._accounts

    def _service_item_ref(self, item_spec: ServiceItem) -> dict[str, str]:
        """The connector's own service item ("Late fee", "Discount"), found or made once."""
        if item_spec.name in self._items:
            return self._items[item_spec.name]
        what = item_spec.name.lower()
        found = self._query(f"{what} item", select(
            "Item", (f"Name = {quote(item_spec.name)}", "Active IN (true, false)"))).get("Item")
        if found:
            item = found[0]
            if item.get("Active") is False:
                item = self._post(f"reactivate {what} item", "item", _json({
                    "Id": item["Id"], "SyncToken": item["SyncToken"], "sparse": True,
                    "Active": True}), f"{item_spec.key}-active-{item['SyncToken']}")["Item"]
        else:
            accounts = self._income_accounts()
            if not accounts:
                raise ProviderRejected(f"QuickBooks has no income account for {what} items")
            preferred = sorted(accounts, key=item_spec.rank)[0]

            def make() -> dict[str, Any]:
                return dict(self._post(f"create {what} item", "item", _json({
                    "Name": item_spec.name, "Type": "Service",
                    "Description": item_spec.description,
                    "IncomeAccountRef": {"value": str(preferred["Id"])}}),
                    f"dunwell-{item_spec.key}")["Item"])

            def find() -> list[dict[str, Any]]:
                return list(self._query(f"{what} item", select(
                    "Item", (f"Name = {quote(item_spec.name)}",))).get("Item") or [])

            item = self._made_once(f"{what} item", make, find)
        self._items[item_spec.name] = {"value": str(item["Id"]),
                                       "name": str(item.get("Name", item_spec.name))}
        return self._items[item_spec.name]

    def _fee_item_ref(self) -> dict[str, str]:
        """The "Late fee" service item, found or made once per connector."""
        return self._service_item_ref(LATE_FEE)

    def _item_for(self, name: str | None, default: ServiceItem) -> dict[str, str]:
        return self._service_item_ref(default) if name in (None, default.name) else \
            self._named_item(name or default.name)

    def _fee_line(self, fee: FeeLine) -> dict[str, Any]:
        if fee.amount < 0:
            return self._discount_line(fee)
        item = self._item_for(fee.item_name, LATE_FEE)
        return {"DetailType": "SalesItemLineDetail", "Amount": fee.amount,
                "Description": fee.description,
                "SalesItemLineDetail": {"ItemRef": item, "Qty": 1, "UnitPrice": fee.amount}}

    def _discount_line(self, fee: FeeLine) -> dict[str, Any]:
        """QBO's own discount line (positive Amount, subtracted from the subtotal), posted to
        the company's "Discounts given" account, rather than a negative sales line."""
        detail: dict[str, Any] = {"PercentBased": False}
        account = next((a for a in self._income_accounts()
                        if a.get("AccountSubType") == DISCOUNTS_GIVEN), None)
        if account is not None:
            detail["DiscountAccountRef"] = {"value": str(account["Id"]),
                                            "name": str(account.get("Name", ""))}
        return {"DetailType": "DiscountLineDetail", "Amount": -fee.amount,
                "Description": fee.description, "DiscountLineDetail": detail}

    def _named_item(self, name: str) -> dict[str, str]:
        found = self._query("fee item", select("Item", (f"Name = {quote(name)}",)))
        items = found.get("Item") or []
        if not items:
            raise ProviderRejected(f"QuickBooks has no item named {name!r} for fees")
        return {"value": str(items[0]["Id"]), "name": name}

    # --- terms ----------------------------------------------------------------------------

    def set_invoice_due_date(self, provider_id: str, due_date: date,
                             idempotency_key: str) -> None:
        """A sparse update of DueDate with the current SyncToken (a stale one, 5010, is read
        again and written once more). QuickBooks would move a paid invoice's due date too; the
        connector refuses it (EditRefused), as it refuses a voided or deleted one."""
        def move(raw: dict[str, Any]) -> dict[str, Any] | None:
            if _day(raw.get("DueDate")) == due_date:
                return None  # moved before; the answer was lost
            status, provider_status = invoice_status(raw)
            if status != "open":
                raise EditRefused(f"QuickBooks invoice {provider_id} is "
                                  f"{provider_status.lower()}")
            return {"DueDate": due_date.isoformat()}

        self._sparse_update(f"due date of invoice {provider_id}", provider_id,
                            idempotency_key, move)

    def add_fee_line(self, provider_id: str, fee: FeeLine, idempotency_key: str) -> None:
        """A fee is a sales line; a discount (negative amount) QBO's one discount line, which
        an invoice that already has one cannot take (EditRefused: a credit memo instead)."""
        def add(raw: dict[str, Any]) -> dict[str, Any] | None:
            lines = [line for line in raw.get("Line") or []
                     if line.get("DetailType") != "SubTotalLineDetail"]
            if any(fee.marker in str(line.get("Description") or "") for line in lines):
                return None
            if invoice_status(raw)[0] in ("voided", "deleted"):
                raise EditRefused(f"QuickBooks invoice {provider_id} is "
                                  f"{invoice_status(raw)[1].lower()}")
            discounts = [line for line in lines if line.get("DetailType") == DISCOUNT_LINE]
            if fee.amount >= 0:  # sales lines stay above the discount, as QBO shows them
                return {"Line": [*(line for line in lines if line not in discounts),
                                 self._fee_line(fee), *discounts]}
            if discounts:
                raise EditRefused(f"QuickBooks invoice {provider_id} already has a discount")
            if not self._allows_discounts():
                raise EditRefused(f"QuickBooks realm {self.realm_id} has discounts turned off")
            balance = _money(raw.get("Balance"))
            if -fee.amount > balance:
                raise ProviderRejected(f"QuickBooks invoice {provider_id}: a discount of "
                                       f"{-fee.amount} is more than the {balance} due")
            return {"Line": [*lines, self._fee_line(fee)]}

        self._sparse_update(f"fee line on invoice {provider_id}", provider_id,
                            idempotency_key, add)

    def _fee_invoice_body(self, fee_invoice: FeeInvoice) -> dict[str, Any]:
        """The lines' markers go in the PrivateNote (and each line's description), so a lost
        answer is found again."""
        markers = " ".join(fee_invoice_markers(fee_invoice))
        return {
            "CustomerRef": {"value": fee_invoice.contact_provider_id},
            "CurrencyRef": {"value": fee_invoice.currency},
            "TxnDate": fee_invoice.issue_date.isoformat(),
            "DueDate": fee_invoice.due_date.isoformat(),
            "CustomerMemo": {"value": fee_invoice.reference[:1000]},
            "PrivateNote": f"{fee_invoice.reference} ({markers})"[:PRIVATE_NOTE_LIMIT],
            "Line": [self._fee_line(line) for line in fee_invoice.lines],
        }

    def create_fee_invoice(self, fee_invoice: FeeInvoice, idempotency_key: str) -> str:
        answer = self._post("create fee invoice", "invoice",
                            _json(self._fee_invoice_body(fee_invoice)), idempotency_key)
        return str(answer["Invoice"]["Id"])

    # --- fee invoices in bulk ---------------------------------------------------------------

    fee_invoices_per_call = BATCH_MAX_ITEMS
    idempotency_window = IDEMPOTENCY_WINDOW

    def invoices_by_id(self, provider_ids: Sequence[str]) -> list[InvoiceRecord]:
        """One query per IDS_PER_QUERY ids (`Id IN (…)`)."""
        found: list[InvoiceRecord] = []
        ids = list(dict.fromkeys(provider_ids))
        for start in range(0, len(ids), IDS_PER_QUERY):
            chunk = ids[start:start + IDS_PER_QUERY]
            listed = ", ".join(quote(i) for i in chunk)
            answer = self._query(f"{len(chunk)} invoices by id", select(
                "Invoice", (f"Id IN ({listed})",), None))
            found.extend(invoice_record(raw) for raw in answer.get("Invoice") or [])
        return found

    def refuses_fee_line(self, invoice: InvoiceRecord) -> bool:
        """QuickBooks takes a fee line on any invoice that is not voided or deleted."""
        return invoice.status in ("voided", "deleted")

    def create_fee_invoices(self, items: Sequence[tuple[FeeInvoice, str]]
                            ) -> list[FeeInvoiceOutcome]:
        """POST /batch with up to 30 create operations, each with its bId (its position and
        marker); the batch's `requestid` is derived from the sorted item keys, so the same batch
        sent again replays. Each operation succeeds or faults on its own."""
        outcomes: list[FeeInvoiceOutcome] = []
        for start in range(0, len(items), BATCH_MAX_ITEMS):
            chunk = items[start:start + BATCH_MAX_ITEMS]
            operations = [{"bId": _batch_id(index, fee_invoice), "operation": "create",
                           "Invoice": self._fee_invoice_body(fee_invoice)}
                          for index, (fee_invoice, _) in enumerate(chunk)]
            answer = self._post(f"create {len(chunk)} fee invoices", "batch",
                                _json({"BatchItemRequest": operations}),
                                make_batch_key((k for _, k in chunk), "fee-invoices"))
            by_id = {str(item.get("bId")): item for item in answer.get("BatchItemResponse")
                     or []}
            for operation, (_, item_key) in zip(operations, chunk, strict=True):
                item = by_id.get(str(operation["bId"]))
                if item is None:
                    raise TransientError(f"QuickBooks batch: no answer for {operation['bId']}")
                if item.get("Invoice", {}).get("Id"):
                    outcomes.append(FeeInvoiceOutcome(item_key, str(item["Invoice"]["Id"])))
                    continue
                errors = (item.get("Fault") or {}).get("Error") or [{}]
                reason = f"{errors[0].get('Message', 'refused')}: {errors[0].get('Detail', '')}"
                outcomes.append(FeeInvoiceOutcome(item_key, None, reason[:300]))
        return outcomes

    def find_fee_invoices(self, markers: Sequence[str], contact_provider_ids: Sequence[str],
                          since: date) -> dict[str, str]:
        """QBO's query cannot filter on PrivateNote: those customers' invoices since `since`
        are read (pages of 1,000) and searched for the markers."""
        wanted, found = set(markers), {}
        customers = list(dict.fromkeys(contact_provider_ids))
        for start in range(0, len(customers), IDS_PER_QUERY):
            listed = ", ".join(quote(c) for c in customers[start:start + IDS_PER_QUERY])
            position = 1
            while True:
                statement = select("Invoice", (f"CustomerRef IN ({listed})",
                                               f"TxnDate >= {quote(since.isoformat())}"),
                                   "Id", position)
                invoices = self._query("fee invoices by customer", statement).get(
                    "Invoice") or []
                for raw in invoices:
                    text = " ".join([str(raw.get("PrivateNote") or ""), *(
                        str(line.get("Description") or "") for line in raw.get("Line") or [])])
                    for marker in wanted:
                        if marker in text:
                            found[marker] = str(raw["Id"])
                if len(invoices) < PAGE_SIZE:
                    break
                position += PAGE_SIZE
        return found

    # --- credit memos -------------------------------------------------------------------

    def _marked_credit_memo(self, credit: CreditNote) -> dict[str, Any] | None:
        """The customer's credit memo carrying the marker, if an earlier attempt wrote it.
        QBO's query cannot filter on PrivateNote, so the customer's memos are read."""
        position = 1
        while True:
            statement = select("CreditMemo", (
                f"CustomerRef = {quote(credit.contact_provider_id)}",), "Id", position)
            memos = self._query(f"credit memos of customer {credit.contact_provider_id}",
                                statement).get("CreditMemo") or []
            for memo in memos:
                text = str(memo.get("PrivateNote") or "") + " " + str(
                    (memo.get("CustomerMemo") or {}).get("value") or "")
                if credit.marker in text:
                    return dict(memo)
            if len(memos) < PAGE_SIZE:
                return None
            position += PAGE_SIZE

    def _check_creditable(self, invoice: dict[str, Any], credit: CreditNote,
                          amount: Decimal) -> None:
        """Refuse, before anything is written, what QBO would refuse to apply."""
        invoice_id = credit.invoice_provider_id
        status, shown = invoice_status(invoice)
        balance = _money(invoice.get("Balance"))
        if status != "open":
            raise ProviderRejected(f"QuickBooks invoice {invoice_id} is {shown.lower()}: "
                                   "no credit can be applied to it")
        if _ref(invoice.get("CustomerRef")) != credit.contact_provider_id:
            raise ProviderRejected(f"QuickBooks invoice {invoice_id} belongs to another "
                                   "customer")
        currency = _ref(invoice.get("CurrencyRef"))
        if currency and currency != credit.currency:
            raise ProviderRejected(f"QuickBooks invoice {invoice_id} is in {currency}, not "
                                   f"{credit.currency}")
        if amount > balance:
            raise ProviderRejected(f"QuickBooks invoice {invoice_id}: a credit of {amount} is "
                                   f"more than the {balance} due")

    def apply_credit_note(self, credit: CreditNote, idempotency_key: str) -> str:
        """A CreditMemo, then a Payment of nothing linking it and the invoice: QBO applies a
        credit memo only through a payment (with automatic application off). Both carry a
        requestid; a retry under a new key finds the memo by the marker in its PrivateNote."""
        memo = self._marked_credit_memo(credit)
        checked = False
        if memo is None:
            self._check_creditable(self._get("Invoice", credit.invoice_provider_id), credit,
                                   credit.amount)
            memo, checked = self._create_credit_memo(credit, idempotency_key), True
        memo_id = str(memo["Id"])
        if _money(memo.get("TotalAmt")) <= 0:  # QBO zeroes a voided memo: someone undid it
            raise ProviderRejected(f"QuickBooks credit memo {memo_id} carrying {credit.marker} "
                                   "was voided")
        remaining = _money(memo.get("RemainingCredit", memo.get("Balance")))
        if remaining <= 0:
            return memo_id  # applied before; the answer was lost
        if not checked:
            self._check_creditable(self._get("Invoice", credit.invoice_provider_id), credit,
                                   remaining)
        body = {"CustomerRef": {"value": credit.contact_provider_id},
                "CurrencyRef": {"value": credit.currency}, "TotalAmt": Decimal("0.00"),
                "TxnDate": credit.issue_date.isoformat(),
                "PrivateNote": credit.description[:PRIVATE_NOTE_LIMIT],
                "Line": [{"Amount": remaining, "LinkedTxn": [
                             {"TxnId": credit.invoice_provider_id, "TxnType": "Invoice"}]},
                         {"Amount": remaining, "LinkedTxn": [
                             {"TxnId": memo_id, "TxnType": "CreditMemo"}]}]}
        self._post(f"apply credit memo {memo_id}", "payment", _json(body),
                   f"{idempotency_key}:apply")
        return memo_id

    def record_payment(self, payment: ReceivedPayment, idempotency_key: str) -> str:
        """A Payment linked to the invoice, with a requestid; before it, the invoice's linked
        payments are read for the marker (in PaymentRefNum and PrivateNote), so a retry under a
        new requestid after a lost answer books nothing twice."""
        invoice_id = payment.invoice_provider_id
        invoice = self._get("Invoice", invoice_id)
        for linked in invoice.get("LinkedTxn") or []:
            if linked.get("TxnType") != "Payment":
                continue
            existing = self._get("Payment", str(linked.get("TxnId")))
            if payment.marker in str(existing.get("PrivateNote") or "") or \
                    existing.get("PaymentRefNum") == payment.marker:
                return str(existing["Id"])
        status, shown = invoice_status(invoice)
        balance = _money(invoice.get("Balance"))
        if status != "open" or balance < payment.amount:
            raise ProviderRejected(f"QuickBooks invoice {invoice_id} is {shown.lower()} and "
                                   f"owes {balance}: a payment of {payment.amount} cannot be"
                                   " booked")
        currency = _ref(invoice.get("CurrencyRef"))
        if currency and currency != payment.currency:
            raise ProviderRejected(f"QuickBooks invoice {invoice_id} is in {currency}, not "
                                   f"{payment.currency}")
        body: dict[str, Any] = {
            "CustomerRef": {"value": _ref(invoice.get("CustomerRef"))},
            "CurrencyRef": {"value": payment.currency}, "TotalAmt": payment.amount,
            "TxnDate": payment.paid_on.isoformat(),
            "PaymentRefNum": payment.marker[:21],
            "PrivateNote": payment.reference[:PRIVATE_NOTE_LIMIT],
            "Line": [{"Amount": payment.amount, "LinkedTxn": [
                {"TxnId": invoice_id, "TxnType": "Invoice"}]}]}
        if payment.account_code:
            body["DepositToAccountRef"] = {"value": payment.account_code}
        answer = self._post("create payment", "payment", _json(body), idempotency_key)
        created = answer.get("Payment") or {}
        if not created.get("Id"):
            raise ProviderRejected("QuickBooks payment: no payment in the answer")
        return str(created["Id"])

    def remove_payment(self, payment_id: str, idempotency_key: str) -> bool:
        """POST /payment?operation=delete with its current SyncToken; a Payment already
        deleted (QuickBooks answers it as not found) is not asked again."""
        try:
            current = self._get("Payment", payment_id)
        except NotFound:
            return False
        if current.get("status") == "Deleted":
            return False
        self._post(f"delete payment {payment_id}", "payment",
                   _json({"Id": current["Id"], "SyncToken": current["SyncToken"]}),
                   idempotency_key, operation="delete")
        return True

    def record_bank_fee(self, fee: BankFee, idempotency_key: str) -> str:
        """A Purchase (cash, from the bank account) with one expense line on the "Bank
        Charges" account (found, or made once), its DocNumber the marker: found by it first."""
        found = self._query(f"bank fee {fee.marker}", select(
            "Purchase", (f"DocNumber = {quote(fee.marker)}",))).get("Purchase") or []
        if found:
            return str(found[0]["Id"])
        bank = fee.bank_account_code or self._account_id(
            "bank account", "AccountType = 'Bank'", None)
        charges = self._account_id("bank charges account", f"Name = {quote(BANK_CHARGES)}", {
            "Name": BANK_CHARGES, "AccountType": "Expense", "AccountSubType": "BankCharges"})
        body = {"PaymentType": "Cash", "AccountRef": {"value": bank},
                "TxnDate": fee.paid_on.isoformat(), "DocNumber": fee.marker,
                "CurrencyRef": {"value": fee.currency},
                "PrivateNote": fee.description[:PRIVATE_NOTE_LIMIT],
                "Line": [{"Amount": fee.amount, "Description": fee.description[:4000],
                          "DetailType": "AccountBasedExpenseLineDetail",
                          "AccountBasedExpenseLineDetail": {"AccountRef": {"value": charges}}}]}
        answer = self._post("create bank fee", "purchase", _json(body), idempotency_key)
        created = answer.get("Purchase") or {}
        if not created.get("Id"):
            raise ProviderRejected("QuickBooks bank fee: no purchase in the answer")
        return str(created["Id"])

    def _account_id(self, what: str, where: str, make: dict[str, str] | None) -> str:
        """The first account the condition finds; else, with `make`, one made once."""

        def find() -> list[dict[str, Any]]:
            return list(self._query(what, select("Account", (where,))).get("Account") or [])

        found = find()
        if found:
            return str(found[0]["Id"])
        if make is None:
            raise ProviderRejected(f"QuickBooks has no {what}")
        def create() -> dict[str, Any]:
            assert make is not None
            return dict(self._post(f"create {what}", "account", _json(make),
                                   f"account-{make['Name']}")["Account"])

        return str(self._made_once(what, create, find)["Id"])

    def _made_once(self, what: str, make: Callable[[], dict[str, Any]],
                   find: Callable[[], list[dict[str, Any]]]) -> dict[str, Any]:
        """Make a named thing of the company's (an account, an item) that `find` did not find.

        Its requestid is one per company, so a worker asking again gets the first answer. Two
        workers asking at once both miss it (neither has an answer yet), and QuickBooks refuses
        the second by the name the first just took (6240, Duplicate Name Exists). Then the
        first's is found and used; refused with nothing found, the refusal stands."""
        try:
            return make()
        except ProviderRejected as refused:
            found = find()
            if not found:
                raise
            log.info("QuickBooks %s %s: made meanwhile by another request (%s); using it",
                     self.realm_id, what, refused)
            return found[0]

    def _create_credit_memo(self, credit: CreditNote, idempotency_key: str) -> dict[str, Any]:
        item = self._item_for(credit.item_name, DISCOUNT)
        body = {
            "CustomerRef": {"value": credit.contact_provider_id},
            "CurrencyRef": {"value": credit.currency},
            "TxnDate": credit.issue_date.isoformat(),
            "CustomerMemo": {"value": with_marker(credit.description, credit.marker,
                                                  CUSTOMER_MEMO_LIMIT)},
            "PrivateNote": with_marker(credit.description, credit.marker, PRIVATE_NOTE_LIMIT),
            "Line": [{"DetailType": "SalesItemLineDetail", "Amount": credit.amount,
                      "Description": credit.description,
                      "SalesItemLineDetail": {"ItemRef": item, "Qty": 1,
                                              "UnitPrice": credit.amount}}],
        }
        answer = self._post("create credit memo", "creditmemo", _json(body), idempotency_key)
        return dict(answer["CreditMemo"])


def _records_of(entity: str, pages: Iterator[list[dict[str, Any]]]) -> Iterator[list[Any]]:
    """Pages of an entity's raw objects as pages of records (lazily: a query sync's next page
    is read when the sync asks for it)."""
    for page in pages:
        if entity == "Customer":
            yield [contact_record(raw) for raw in page]
        elif entity == "Invoice":
            yield [invoice_record(raw) for raw in page]
        elif entity == "Payment":
            yield [record for raw in page for record in payment_records(raw)]
        else:
            yield [quote_record(raw) for raw in page]


def _cdc_groups(counts: Mapping[str, int]) -> list[list[str]]:
    """The entities of a full CDC answer in groups to ask again, each in the order asked.

    A full answer's counts are lower bounds (it left changes out, of kinds unknown), so groups
    are packed to half the cap: an entity with at least that many alone, the others largest
    first into the first group they keep under it; the entities the answer showed none of
    join the smallest group unless it alone filled the answer, else they form one. The counts
    add up to the cap or more, so no group holds every entity."""
    half = CDC_MAX_OBJECTS // 2
    groups: list[tuple[int, list[str]]] = []
    for entity in sorted((e for e in counts if counts[e]), key=lambda e: -counts[e]):
        for index, (total, members) in enumerate(groups):
            if total + counts[entity] < half:
                groups[index] = (total + counts[entity], [*members, entity])
                break
        else:
            groups.append((counts[entity], [entity]))
    unseen = [entity for entity in counts if not counts[entity]]
    if unseen:
        smallest = min(range(len(groups)), key=lambda i: groups[i][0], default=None)
        if smallest is not None and groups[smallest][0] < CDC_MAX_OBJECTS:
            total, members = groups[smallest]
            groups[smallest] = (total, [*members, *unseen])
        else:
            groups.append((0, unseen))
    order = list(counts)
    return [sorted(members, key=order.index) for _, members in groups]


@dataclass(frozen=True)
class ServiceItem:
    """A service item the connector finds by name or makes, on the income account it ranks
    first."""

    name: str
    description: str
    key: str  # the requestid stem: one create per company, however many workers race
    rank: Callable[[dict[str, Any]], tuple[bool, bool, int]]


LATE_FEE = ServiceItem(LATE_FEE_ITEM, "Late payment fees and interest", "late-fee-item",
                       lambda a: ("late" not in str(a.get("Name", "")).lower(),
                                  "other" not in str(a.get("Name", "")).lower(),
                                  int(a.get("Id", 0))))
DISCOUNTS_GIVEN = "DiscountsRefundsGiven"  # QBO's "Discounts given" income account
DISCOUNT_LINE = "DiscountLineDetail"
DISCOUNT = ServiceItem(DISCOUNT_ITEM, "Early-payment discounts", "discount-item",
                       lambda a: (a.get("AccountSubType") != DISCOUNTS_GIVEN,
                                  "discount" not in str(a.get("Name", "")).lower(),
                                  int(a.get("Id", 0))))


def _batch_id(index: int, fee_invoice: FeeInvoice) -> str:
    """A batch operation's bId: unique in the request, and naming the fee it carries."""
    markers = fee_invoice_markers(fee_invoice)
    return f"{index}-{markers[0]}" if markers else str(index)


def _json(value: Any) -> str:
    """Request bodies with Decimal money written exactly (json.dumps would need floats)."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_json(v) for v in value) + "]"
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("money must be finite")
        return format(value, "f")
    return json.dumps(value)
