"""The shapes Xero and Intuit post to us, validated at the edge, and one event record for both.

A payload that does not match is refused whole (nothing of it is stored): a provider that sends
garbage is told so with a 400, and a forged body never reaches this far (its signature fails).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

# Provider names for a record kind -> ours. Anything else is stored as "other" (it may still
# say something about the tenant) and needs no targeted read.
XERO_ENTITIES = {"INVOICE": "invoice", "CONTACT": "contact", "CREDITNOTE": "credit_note"}
INTUIT_ENTITIES = {"invoice": "invoice", "customer": "contact", "payment": "payment",
                   "creditmemo": "credit_note", "estimate": "quote"}

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


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)


class XeroEvent(_Strict):
    resourceUrl: str = Field(min_length=1, max_length=500)
    resourceId: Text
    eventDateUtc: datetime
    eventType: Annotated[str, Field(min_length=1, max_length=24)]
    eventCategory: Annotated[str, Field(min_length=1, max_length=24)]
    tenantId: Text
    tenantType: Annotated[str, Field(min_length=1, max_length=24)]


class XeroPayload(_Strict):
    events: list[XeroEvent]
    firstEventSequence: int
    lastEventSequence: int
    entropy: Annotated[str, Field(max_length=200)]


class IntuitEntity(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=40)]
    id: Text
    operation: Annotated[str, Field(min_length=1, max_length=24)]
    lastUpdated: datetime
    deletedId: str | None = None


class IntuitDataChange(_Strict):
    entities: list[IntuitEntity]


class IntuitNotification(_Strict):
    realmId: Text
    dataChangeEvent: IntuitDataChange


class IntuitLegacyPayload(_Strict):
    eventNotifications: list[IntuitNotification]


class IntuitCloudEvent(_Strict):
    specversion: Literal["1.0"]
    id: Annotated[str, Field(min_length=1, max_length=128)]
    source: Annotated[str, Field(min_length=1, max_length=500)]
    type: Annotated[str, Field(pattern=r"^qbo\.[A-Za-z]+\.[A-Za-z]+\.v\d+$", max_length=64)]
    time: datetime | None = None
    intuitentityid: Text
    intuitaccountid: Text
    data: dict[str, Any] | None = None


_CLOUD_EVENTS = TypeAdapter(list[IntuitCloudEvent])


def _explain(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "body"
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}"


def xero_events(body: Any) -> list[ProviderEvent]:
    """Xero's batch; an intent-to-receive check is a valid batch with no events."""
    try:
        payload = XeroPayload.model_validate(body)
    except ValidationError as error:
        raise PayloadError(f"not a Xero webhook payload: {_explain(error)}") from error
    events = []
    for e in payload.events:
        tenant = e.tenantId.lower()
        stamp = _utc(e.eventDateUtc).isoformat()
        events.append(ProviderEvent(
            tenant_id=tenant,
            event_key=_digest(tenant, e.eventCategory, e.resourceId.lower(), stamp, e.eventType),
            entity=XERO_ENTITIES.get(e.eventCategory.upper(), "other"),
            entity_id=e.resourceId.lower(), kind=f"{e.eventCategory}.{e.eventType}"[:64],
            occurred_at=_utc(e.eventDateUtc)))
    return events


def intuit_events(body: Any) -> list[ProviderEvent]:
    """Intuit's legacy `eventNotifications` object or its CloudEvents array."""
    if isinstance(body, list):
        try:
            cloud = _CLOUD_EVENTS.validate_python(body)
        except ValidationError as error:
            raise PayloadError(f"not Intuit CloudEvents: {_explain(error)}") from error
        return [ProviderEvent(
            tenant_id=e.intuitaccountid, event_key=e.id,
            entity=INTUIT_ENTITIES.get(e.type.split(".")[1].lower(), "other"),
            entity_id=e.intuitentityid, kind=e.type,
            occurred_at=None if e.time is None else _utc(e.time)) for e in cloud]
    try:
        legacy = IntuitLegacyPayload.model_validate(body)
    except ValidationError as error:
        raise PayloadError(f"not an Intuit webhook notification: {_explain(error)}") from error
    events = []
    for notification in legacy.eventNotifications:
        realm = notification.realmId
        for e in notification.dataChangeEvent.entities:
            stamp = _utc(e.lastUpdated).isoformat()
            events.append(ProviderEvent(
                tenant_id=realm, event_key=_digest(realm, e.name, e.id, e.operation, stamp),
                entity=INTUIT_ENTITIES.get(e.name.lower(), "other"), entity_id=e.id,
                kind=f"{e.name}.{e.operation}"[:64], occurred_at=_utc(e.lastUpdated)))
    return events
