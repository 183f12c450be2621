"""What every provider connector promises the rest of Dunwell: records, errors, the protocol.

Provider payloads stop here. Above this line the code sees InvoiceRecord, ContactRecord and
PaymentRecord, with Decimal money, aware UTC timestamps and calendar dates.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Literal, ParamSpec, Protocol, TypeVar

from babel.numbers import is_currency

InvoiceStatus = Literal["draft", "open", "paid", "voided", "deleted"]

# A country's own zone, where the provider names none or names one that spans several countries.
COUNTRY_ZONES = {"NO": "Europe/Oslo", "SE": "Europe/Stockholm", "DK": "Europe/Copenhagen",
                 "DE": "Europe/Berlin", "NL": "Europe/Amsterdam", "AT": "Europe/Vienna",
                 "PL": "Europe/Warsaw", "IE": "Europe/Dublin", "GB": "Europe/London",
                 "IL": "Asia/Jerusalem", "US": "America/New_York"}


@dataclass(frozen=True)
class OrganisationRecord:
    tenant_id: str
    name: str
    country: str  # ISO 3166-1 alpha-2
    timezone: str  # IANA
    base_currency: str


@dataclass(frozen=True)
class ContactRecord:
    provider_id: str
    name: str
    email: str | None
    is_customer: bool
    archived: bool
    updated_at: datetime | None
    # As the books hold them (not normalised) and the country of the contact's address, for
    # texts: rules/sms.py makes them E.164.
    mobile: str | None = None
    phone: str | None = None
    country: str | None = None


@dataclass(frozen=True)
class InvoiceRecord:
    provider_id: str
    number: str
    contact_provider_id: str | None
    currency: str
    issue_date: date | None
    due_date: date | None
    total: Decimal
    amount_paid: Decimal
    amount_due: Decimal
    status: InvoiceStatus
    provider_status: str
    updated_at: datetime | None


QuoteStatus = Literal["draft", "sent", "accepted", "declined", "invoiced", "deleted"]


@dataclass(frozen=True)
class QuoteRecord:
    """A Xero Quote or a QuickBooks Estimate: what a customer was offered, and whether they
    took it. `invoice_provider_ids` are the invoices the provider links to it (QuickBooks'
    LinkedTxn; Xero keeps no such link)."""

    provider_id: str
    number: str
    contact_provider_id: str | None
    currency: str
    issue_date: date | None
    expiry_date: date | None
    total: Decimal
    status: QuoteStatus
    provider_status: str
    accepted_on: date | None  # QuickBooks' AcceptedDate; Xero has none
    invoice_provider_ids: tuple[str, ...]
    updated_at: datetime | None


@dataclass(frozen=True)
class PaymentRecord:
    """One payment's allocation to one invoice.

    Where a provider lets one payment settle several invoices (QuickBooks), each allocation is
    `<payment id>:<invoice id>`; a deleted payment may then arrive as its bare id, with no
    invoice, and removes every allocation of that payment.
    """

    provider_id: str
    invoice_provider_id: str | None
    amount: Decimal
    currency: str | None
    paid_on: date | None
    status: Literal["active", "deleted"]
    updated_at: datetime | None


@dataclass(frozen=True)
class TenantRecord:
    """One organisation a consent authorised."""

    connection_id: str
    tenant_id: str
    tenant_name: str
    auth_event_id: str | None


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    refresh_token: str
    expires_at: datetime  # aware UTC
    scope: str = ""
    id_token: str | None = None

    def __repr__(self) -> str:  # never let a token reach a log line through repr()
        return f"TokenSet(expires_at={self.expires_at.isoformat()}, scope={self.scope!r})"


class TokenStore(Protocol):
    """Where a connection's tokens live; refreshes happen under its lock."""

    def load(self) -> TokenSet: ...

    def refresh(self, needs_refresh: Callable[[TokenSet], bool],
                do_refresh: Callable[[TokenSet], TokenSet]) -> TokenSet:
        """Under a per-connection lock: reload, refresh only if still needed, save, return."""
        ...


# Errors: each failure is classified once, here, as the layers above need to act on it.


class ConnectorError(Exception):
    """A provider call failed."""


class ConfigurationError(ConnectorError):
    """Retrying will not help; the owner must act (reconnect, fix permissions)."""


class AuthorizationRevoked(ConfigurationError):
    """The refresh token is dead or the connection was removed on the provider's side."""


class TransientError(ConnectorError):
    """Worth retrying later (5xx, timeouts, connection resets)."""


class RateLimited(TransientError):
    def __init__(self, message: str, retry_after: float, problem: str = "") -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.problem = problem


class DailyLimitReached(RateLimited):
    """Not retried today: the tenant's daily budget is spent."""


class NotFound(ConnectorError):
    pass


class ProviderRejected(ConnectorError):
    """The provider validated our request and said no (e.g. invoice cannot be emailed)."""


class EditRefused(ProviderRejected):
    """The provider forbids changing this invoice's lines (e.g. Xero once a payment is on it):
    the fee belongs on a separate fee invoice instead."""


# Fees written to the books. The marker, derived from the action key, is written into the line
# so that after an unknown outcome the fee can be found again instead of being charged twice.


def effect_marker(action_key: str) -> str:
    """A short, stable reference for one effect (fee line, note), fit for a customer to read."""
    return "DW-" + hashlib.sha256(action_key.encode()).hexdigest()[:10].upper()


def with_marker(text: str, marker: str, limit: int) -> str:
    """`text` cut to `limit` characters, keeping the marker at its end if the cut loses it."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    return cut if marker in cut else f"{text[:limit - len(marker) - 1]} {marker}"


@dataclass(frozen=True)
class FeeLine:
    description: str  # ends with the marker, e.g. "Late fee on INV-0042 (ref DW-1A2B3C4D5E)"
    # In the invoice's currency, rounded to its minor unit; negative for a discount line.
    amount: Decimal
    marker: str
    account_code: str | None = None  # Xero: the revenue account; default from settings
    item_name: str | None = None  # QuickBooks: the service item; default "Late fee"
    tax_type: str | None = None  # Xero TaxType; None: no tax (interest is outside VAT)


@dataclass(frozen=True)
class FeeInvoice:
    """A separate invoice for fees, where a line on the original is not allowed or wanted."""

    contact_provider_id: str
    currency: str
    issue_date: date
    due_date: date
    reference: str  # names the original invoice, e.g. "Late fees on INV-0042"
    lines: tuple[FeeLine, ...]


@dataclass(frozen=True)
class FeeInvoiceOutcome:
    """What became of one fee invoice of a batch: created (its provider id) or refused."""

    idempotency_key: str
    provider_id: str | None
    refused: str | None = None  # the provider's reason, when it validated and said no


def fee_invoice_markers(fee_invoice: FeeInvoice) -> tuple[str, ...]:
    """The markers that find a fee invoice again after an unknown outcome."""
    return tuple(line.marker for line in fee_invoice.lines)


def batch_key(item_keys: Iterable[str], prefix: str = "batch") -> str:
    """One idempotency key for a batch, the same for the same items in any order."""
    digest = hashlib.sha256("\n".join(sorted(item_keys)).encode()).hexdigest()
    return f"{prefix}:{digest[:40]}"


@dataclass(frozen=True)
class CreditNote:
    """A credit for part of one invoice (an early-payment discount), applied to that invoice.

    The marker is written into the credit note so that after an unknown outcome it is found
    again and reused instead of crediting the customer twice."""

    contact_provider_id: str
    invoice_provider_id: str
    currency: str
    issue_date: date
    amount: Decimal  # positive, in the invoice's currency, rounded to its minor unit
    # Ends with the marker, e.g. "Early-payment discount 2 % on INV-0042 (ref DW-1A2B3C4D5E)".
    description: str
    marker: str
    account_code: str | None = None  # Xero: the revenue account credited; default from settings
    item_name: str | None = None  # QuickBooks: the service item; default "Discount"
    tax_type: str | None = None  # Xero TaxType; None: no tax (the amount is credited as it is)

    def __post_init__(self) -> None:
        if not self.amount.is_finite() or self.amount <= 0:
            raise ValueError(f"a credit note's amount must be positive, not {self.amount}")
        if not self.marker or self.marker not in self.description:
            raise ValueError("a credit note's description must carry its marker")


@dataclass(frozen=True)
class ReceivedPayment:
    """Money a payment processor took for one invoice, to be booked there as a payment.

    The marker (from the processor's payment id) is written into the payment's reference, so
    after an unknown outcome the payment is found again instead of being booked twice."""

    invoice_provider_id: str
    currency: str
    paid_on: date
    amount: Decimal  # positive, in the invoice's currency, at most what it owes
    reference: str  # ends with the marker, e.g. "Card payment pi_3Qx... (ref DW-1A2B3C4D5E)"
    marker: str
    account_code: str | None = None  # where the money is deposited; None: the provider's default

    def __post_init__(self) -> None:
        if not self.amount.is_finite() or self.amount <= 0:
            raise ValueError(f"a payment's amount must be positive, not {self.amount}")
        if not self.marker or self.marker not in self.reference:
            raise ValueError("a payment's reference must carry its marker")


@dataclass(frozen=True)
class BankFee:
    """A payment processor's fee for a payment, booked as money spent from the bank account
    the payment went to; its marker (from the processor's payment id) is written into it, so a
    retry after a lost answer finds it instead of booking it twice."""

    currency: str
    paid_on: date
    amount: Decimal  # positive
    description: str  # ends with the marker
    marker: str
    payee: str  # the processor, e.g. "Stripe"
    bank_account_code: str | None = None  # None: where the provider's payments go by default

    def __post_init__(self) -> None:
        if not self.amount.is_finite() or self.amount <= 0:
            raise ValueError(f"a fee must be positive, not {self.amount}")
        if not self.marker or self.marker not in self.description:
            raise ValueError("a fee's description must carry its marker")


@dataclass(frozen=True)
class InvoiceEmailFacts:
    """An invoice as Dunwell holds it (its synced copy): what the provider's own invoice email
    fills in, so a preview of many needs no read of each invoice."""

    provider_id: str
    number: str
    contact_name: str
    currency: str
    total: Decimal
    amount_due: Decimal
    due_date: date | None


@dataclass(frozen=True)
class InvoiceEmail:
    """The provider's own invoice email for one invoice, worded as the provider sends it."""

    subject: str
    body: str
    # True: from the organisation's own email settings at the provider (QuickBooks lets an app
    # read them). False: from the provider's standard wording, as the provider lets no app read
    # the organisation's own (Xero): an owner who changed it there has theirs sent instead.
    from_settings: bool


class Connector(Protocol):
    """One provider tenant, seen through domain records."""

    calls: int  # API calls this connector made

    def organisation(self) -> OrganisationRecord: ...

    def contacts(self, modified_since: datetime | None) -> Iterator[list[ContactRecord]]: ...

    def invoices(self, modified_since: datetime | None) -> Iterator[list[InvoiceRecord]]: ...

    def payments(self, modified_since: datetime | None) -> Iterator[list[PaymentRecord]]: ...

    def invoice(self, provider_id: str) -> InvoiceRecord: ...

    def quotes(self, modified_since: datetime | None) -> Iterator[list[QuoteRecord]]:
        """Xero Quotes / QuickBooks Estimates changed since then, oldest change first."""
        ...

    def quote(self, provider_id: str) -> QuoteRecord: ...

    def online_invoice_url(self, provider_id: str) -> str | None:
        """Where the customer can see and pay the invoice online (Xero's online invoice,
        QuickBooks' InvoiceLink), if the provider has one for it."""
        ...

    def invoice_pdf(self, provider_id: str) -> bytes:
        """The invoice as the provider prints it (PDF bytes), for the customer's portal."""
        ...

    def logo_url(self) -> str | None:
        """Where the business's logo is, as the books name it (Xero: the default branding
        theme's LogoUrl); None where the books have none or the provider keeps none."""
        ...

    def download_logo(self, url: str, max_bytes: int) -> bytes:
        """The image a `logo_url()` names, at most `max_bytes` (ProviderRejected beyond)."""
        ...

    def record_payment(self, payment: ReceivedPayment, idempotency_key: str) -> str:
        """Book the payment against its invoice; its provider id. A payment already carrying
        the marker is answered, not booked again; an invoice that no longer owes the amount
        is refused (ProviderRejected)."""
        ...

    def record_bank_fee(self, fee: BankFee, idempotency_key: str) -> str:
        """Book the processor's fee as a bank fee (spent from the bank account); its provider
        id. One already carrying the marker is answered, not booked again."""
        ...

    def remove_payment(self, payment_id: str, idempotency_key: str) -> bool:
        """Take a payment we booked off its invoice (Xero: the payment DELETED; QuickBooks:
        the Payment deleted), so the invoice owes again: the money went back to the customer.
        False when it was already gone (a retry after a lost answer removes nothing twice)."""
        ...

    def email_invoice(self, provider_id: str, idempotency_key: str) -> None: ...

    def invoice_emails(self, invoices: Sequence[InvoiceEmailFacts]) -> list[InvoiceEmail]:
        """What `email_invoice` would send for each invoice now, in order: the subject and body
        the provider words from the organisation's email settings, read once for all."""
        ...

    def add_invoice_note(self, provider_id: str, text: str, idempotency_key: str) -> None:
        """A note for the bookkeeper on the invoice, carrying the marker derived from the key
        (`effect_marker(idempotency_key)`), so `find_invoice_note` can find it again."""
        ...

    # Lookups after an unknown outcome, once the provider may have forgotten the idempotency
    # key: the executor asks before writing again, never on a first attempt (they cost calls).

    def find_invoice_note(self, provider_id: str, idempotency_key: str) -> bool:
        """Whether the note written under that key is on the invoice (by its marker)."""
        ...

    def invoice_emailed_since(self, provider_id: str, since: datetime) -> bool:
        """Whether the provider emailed the invoice at or after `since` (a provider time
        stamp of the send: Xero's History "Sent" record, QuickBooks' DeliveryInfo)."""
        ...

    def set_invoice_due_date(self, provider_id: str, due_date: date,
                             idempotency_key: str) -> None:
        """Move the invoice's due date (credit control's shorter terms), nothing else.

        Setting the day it is due on already changes nothing, so a retry after a lost answer
        is harmless. Raises EditRefused for an invoice that is paid, voided or deleted (Xero
        refuses those itself; QuickBooks would accept a paid one, so the connector refuses)."""
        ...

    def add_fee_line(self, provider_id: str, fee: FeeLine, idempotency_key: str) -> None:
        """Add the fee as a line on the invoice, unless a line with its marker is there.

        A negative amount is a discount line. Raises EditRefused where the provider forbids the
        edit (a discount then goes on a credit note instead)."""
        ...

    def apply_credit_note(self, credit: CreditNote, idempotency_key: str) -> str:
        """Create a credit note for the amount and allocate it to the invoice; returns its
        provider id.

        If a credit note carrying the marker already exists for that contact it is reused (and
        allocated if it is not yet), so a retry after an unknown outcome never credits twice.
        Raises ProviderRejected (e.g. amount above the invoice's amount due)."""
        ...

    def create_fee_invoice(self, fee_invoice: FeeInvoice, idempotency_key: str) -> str:
        """Create (approved) and return the provider id of a separate fee invoice."""
        ...

    # Fee invoices in bulk: hundreds of late fees in a handful of calls.

    fee_invoices_per_call: int  # the most fee invoices one create call carries
    # How long the provider answers a repeated idempotency key with its first answer. Past it
    # only a lookup tells whether a write happened; the lookup takes an effect of the same kind
    # on the same invoice within this span before the write began as the write's own (the
    # provider itself would have folded a repeat inside it into one).
    idempotency_window: timedelta

    def invoices_by_id(self, provider_ids: Sequence[str]) -> list[InvoiceRecord]:
        """Those invoices as they are now, in as few calls as the provider allows (missing
        ones are left out)."""
        ...

    def refuses_fee_line(self, invoice: InvoiceRecord) -> bool:
        """Whether the provider would refuse a fee line on this invoice (EditRefused), so the
        fee must go on a separate fee invoice."""
        ...

    def create_fee_invoices(self, items: Sequence[tuple[FeeInvoice, str]]
                            ) -> list[FeeInvoiceOutcome]:
        """Create (approved) every fee invoice, `fee_invoices_per_call` to a call, each call
        with one idempotency key derived from its items' keys; one outcome per item, in order.

        Each fee invoice carries its lines' markers, so that after an unknown outcome
        (TransientError) `find_fee_invoices` tells which were made."""
        ...

    def find_fee_invoices(self, markers: Sequence[str], contact_provider_ids: Sequence[str],
                          since: date) -> dict[str, str]:
        """The provider ids of fee invoices issued to those contacts since `since` that carry
        any of the markers, by marker."""
        ...


# A provider answer we cannot read. Raised while a page is parsed, before anything of it is
# written, so a sync stops cleanly at the page before and says why.


MAX_PROVIDER_ID = 64  # the width of the provider id columns
P = ParamSpec("P")
R = TypeVar("R")


class MalformedAnswer(ConnectorError):
    """A record in a provider's answer is missing its id, has a date that is no date, money that
    is no number (or negative on an invoice), or a currency that does not exist."""


# Each class of failure by a code the pages word in the reader's language (app/events.py);
# the provider's own message is shown under it as the provider's detail. The most specific
# class first.
ERROR_CLASSES: tuple[tuple[type[Exception], str], ...] = (
    (AuthorizationRevoked, "revoked"), (ConfigurationError, "configuration"),
    (DailyLimitReached, "daily_limit"), (RateLimited, "rate_limited"),
    (TransientError, "transient"), (NotFound, "not_found"), (EditRefused, "edit_refused"),
    (ProviderRejected, "rejected"), (MalformedAnswer, "malformed"))


def error_class(exc: BaseException) -> str:
    """The code of a failure's class ("other" for one no connector raises)."""
    return next((code for kind, code in ERROR_CLASSES if isinstance(exc, kind)), "other")


def _known_currency(code: str) -> bool:
    return bool(re.fullmatch(r"[A-Z]{3}", code)) and is_currency(code)


def check_invoice(record: InvoiceRecord) -> InvoiceRecord:
    for name in ("total", "amount_paid", "amount_due"):
        value = getattr(record, name)
        if not value.is_finite():
            raise MalformedAnswer(f"invoice {record.provider_id}: {name} is not a number")
    if record.total < 0 or record.amount_due < 0:
        raise MalformedAnswer(f"invoice {record.provider_id}: a negative total or amount due")
    if record.currency and not _known_currency(record.currency):
        raise MalformedAnswer(f"invoice {record.provider_id}: unknown currency "
                              f"{record.currency[:8]!r}")
    return record


def check_quote(record: QuoteRecord) -> QuoteRecord:
    if not record.total.is_finite() or record.total < 0:
        raise MalformedAnswer(f"quote {record.provider_id}: the total is not a positive number")
    if record.currency and not _known_currency(record.currency):
        raise MalformedAnswer(f"quote {record.provider_id}: unknown currency "
                              f"{record.currency[:8]!r}")
    return record


def reads_provider_record(provider: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Turn whatever a parser trips on (KeyError, TypeError, ValueError, a bad Decimal) into
    MalformedAnswer naming the provider and the record kind; invoices are checked too."""

    def decorate(parse: Callable[P, R]) -> Callable[P, R]:
        kind = parse.__name__.removesuffix("s").removesuffix("_record")

        @functools.wraps(parse)
        def parsed(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                record = parse(*args, **kwargs)
            except ConnectorError:
                raise
            except (KeyError, IndexError, TypeError, ValueError, AttributeError,
                    ArithmeticError, OverflowError) as exc:
                raise MalformedAnswer(f"{provider} {kind} could not be read: "
                                      f"{exc.__class__.__name__}: {str(exc)[:200]}") from exc
            for one in record if isinstance(record, list) else [record]:
                identity = str(getattr(one, "provider_id", getattr(one, "tenant_id", "")))
                if identity in ("", "None") or any(
                        len(str(getattr(one, name, None) or "")) > MAX_PROVIDER_ID for name in
                        ("provider_id", "contact_provider_id", "invoice_provider_id")):
                    raise MalformedAnswer(f"{provider} {kind} without a usable id")
                if isinstance(one, InvoiceRecord):
                    check_invoice(one)
                if isinstance(one, QuoteRecord):
                    check_quote(one)
            return record

        return parsed

    return decorate
