"""What every provider connector promises the rest of Dunwell: records, errors, the protocol.

Provider payloads stop here. Above this line the code sees InvoiceRecord, ContactRecord and
PaymentRecord, with Decimal money, aware UTC timestamps and calendar dates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Literal, Protocol

InvoiceStatus = Literal["draft", "open", "paid", "voided", "deleted"]


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


@dataclass(frozen=True)
class PaymentRecord:
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


class Connector(Protocol):
    """One provider tenant, seen through domain records."""

    calls: int  # API calls this connector made

    def organisation(self) -> OrganisationRecord: ...

    def contacts(self, modified_since: datetime | None) -> Iterator[list[ContactRecord]]: ...

    def invoices(self, modified_since: datetime | None) -> Iterator[list[InvoiceRecord]]: ...

    def payments(self, modified_since: datetime | None) -> Iterator[list[PaymentRecord]]: ...

    def invoice(self, provider_id: str) -> InvoiceRecord: ...

    def email_invoice(self, provider_id: str, idempotency_key: str) -> None: ...

    def add_invoice_note(self, provider_id: str, text: str, idempotency_key: str) -> None: ...
