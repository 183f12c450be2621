"""What Intuit posts to /webhooks/quickbooks: its signature header and its notifications, in
either of the shapes it sends, validated."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter, ValidationError

from connectors.webhooks import (
    PayloadError,
    ProviderEvent,
    Strict,
    Text,
    WebhookFormat,
    digest,
    explain,
    utc,
)

# Intuit's names for a record kind -> ours. Anything else is stored as "other" (it may still
# say something about the tenant) and needs no targeted read.
INTUIT_ENTITIES = {"invoice": "invoice", "customer": "contact", "payment": "payment",
                   "creditmemo": "credit_note", "estimate": "quote"}


class IntuitEntity(Strict):
    name: Annotated[str, Field(min_length=1, max_length=40)]
    id: Text
    operation: Annotated[str, Field(min_length=1, max_length=24)]
    lastUpdated: datetime
    deletedId: str | None = None


class IntuitDataChange(Strict):
    entities: list[IntuitEntity]


class IntuitNotification(Strict):
    realmId: Text
    dataChangeEvent: IntuitDataChange


class IntuitLegacyPayload(Strict):
    eventNotifications: list[IntuitNotification]


class IntuitCloudEvent(Strict):
    specversion: Literal["1.0"]
    id: Annotated[str, Field(min_length=1, max_length=128)]
    source: Annotated[str, Field(min_length=1, max_length=500)]
    type: Annotated[str, Field(pattern=r"^qbo\.[A-Za-z]+\.[A-Za-z]+\.v\d+$", max_length=64)]
    time: datetime | None = None
    intuitentityid: Text
    intuitaccountid: Text
    data: dict[str, Any] | None = None


_CLOUD_EVENTS = TypeAdapter(list[IntuitCloudEvent])


def intuit_events(body: Any) -> list[ProviderEvent]:
    """Intuit's legacy `eventNotifications` object or its CloudEvents array."""
    if isinstance(body, list):
        try:
            cloud = _CLOUD_EVENTS.validate_python(body)
        except ValidationError as error:
            raise PayloadError(f"not Intuit CloudEvents: {explain(error)}") from error
        return [ProviderEvent(
            tenant_id=e.intuitaccountid, event_key=e.id,
            entity=INTUIT_ENTITIES.get(e.type.split(".")[1].lower(), "other"),
            entity_id=e.intuitentityid, kind=e.type,
            occurred_at=None if e.time is None else utc(e.time)) for e in cloud]
    try:
        legacy = IntuitLegacyPayload.model_validate(body)
    except ValidationError as error:
        raise PayloadError(f"not an Intuit webhook notification: {explain(error)}") from error
    events = []
    for notification in legacy.eventNotifications:
        realm = notification.realmId
        for e in notification.dataChangeEvent.entities:
            stamp = utc(e.lastUpdated).isoformat()
            events.append(ProviderEvent(
                tenant_id=realm, event_key=digest(realm, e.name, e.id, e.operation, stamp),
                entity=INTUIT_ENTITIES.get(e.name.lower(), "other"), entity_id=e.id,
                kind=f"{e.name}.{e.operation}"[:64], occurred_at=utc(e.lastUpdated)))
    return events


WEBHOOKS = WebhookFormat(signature_header="intuit-signature",
                         secret_setting="QUICKBOOKS_WEBHOOK_VERIFIER", parse=intuit_events)
