"""What every provider's webhooks have in common: the signature, the event record, the errors.

Each provider's own payload shapes are validated at the edge (connectors/<provider>/webhooks.py):
a payload that does not match is refused whole (nothing of it is stored), so a provider that
sends garbage is told so with a 400, and a forged body never reaches this far (its signature
fails).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

Text = Annotated[str, Field(min_length=1, max_length=64)]


class PayloadError(ValueError):
    """The body is not a payload the provider sends; the message says what is wrong."""


@dataclass(frozen=True)
class ProviderEvent:
    """One change in one tenant's books, as either provider announces it."""

    tenant_id: str
    event_key: str  # unique per tenant: the provider's event id, or a digest of the change
    entity: str  # invoice | contact | payment | credit_note | quote | other
    entity_id: str
    kind: str
    occurred_at: datetime | None


def signature(secret: str, body: bytes) -> str:
    """base64(HMAC-SHA256(secret, raw body)): both providers sign this way."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


@dataclass(frozen=True)
class WebhookFormat:
    """How one provider signs and shapes what it posts to /webhooks/<provider>."""

    signature_header: str  # the header carrying the body's signature
    secret_setting: str  # the setting that holds the key the provider signs with
    parse: Callable[[Any], list[ProviderEvent]]  # a decoded JSON body -> its events

    @property
    def environ_key(self) -> str:
        """The signature header as WSGI names it (x-xero-signature -> HTTP_X_XERO_SIGNATURE)."""
        return "HTTP_" + self.signature_header.upper().replace("-", "_")

    def signature_valid(self, secret: str, body: bytes, given: str | None) -> bool:
        """Constant-time comparison over the raw bytes as received (never re-serialised JSON)."""
        if not secret or not given:
            return False
        return hmac.compare_digest(given.strip().encode(), signature(secret, body).encode())


def digest(*parts: str) -> str:
    """An event key for a provider that sends no event id: the change's parts, hashed."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class Strict(BaseModel):
    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)


def explain(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "body"
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}"
