"""What Xero posts to /webhooks/xero: its signature header and its batch of events, validated."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, ValidationError

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

# Xero's names for a record kind -> ours. Anything else is stored as "other" (it may still say
# something about the tenant) and needs no targeted read.
XERO_ENTITIES = {"INVOICE": "invoice", "CONTACT": "contact", "CREDITNOTE": "credit_note"}


class XeroEvent(Strict):
    resourceUrl: str = Field(min_length=1, max_length=500)
    resourceId: Text
    eventDateUtc: datetime
    eventType: Annotated[str, Field(min_length=1, max_length=24)]
    eventCategory: Annotated[str, Field(min_length=1, max_length=24)]
    tenantId: Text
    tenantType: Annotated[str, Field(min_length=1, max_length=24)]


class XeroPayload(Strict):
    events: list[XeroEvent]
    firstEventSequence: int
    lastEventSequence: int
    entropy: Annotated[str, Field(max_length=200)]


def xero_events(body: Any) -> list[ProviderEvent]:
    """Xero's batch; an intent-to-receive check is a valid batch with no events."""
    try:
        payload = XeroPayload.model_validate(body)
    except ValidationError as error:
        raise PayloadError(f"not a Xero webhook payload: {explain(error)}") from error
    events = []
    for e in payload.events:
        tenant = e.tenantId.lower()
        stamp = utc(e.eventDateUtc).isoformat()
        events.append(ProviderEvent(
            tenant_id=tenant,
            event_key=digest(tenant, e.eventCategory, e.resourceId.lower(), stamp, e.eventType),
            entity=XERO_ENTITIES.get(e.eventCategory.upper(), "other"),
            entity_id=e.resourceId.lower(), kind=f"{e.eventCategory}.{e.eventType}"[:64],
            occurred_at=utc(e.eventDateUtc)))
    return events


WEBHOOKS = WebhookFormat(signature_header="x-xero-signature", secret_setting="XERO_WEBHOOK_KEY",
                         parse=xero_events)
