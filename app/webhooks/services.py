"""What a webhook request does: check the signature, store each event once, wake a worker.

The request does no provider I/O: one SELECT (tenant -> organisation), one INSERT that skips
events already stored, and one enqueue per organisation with something new.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app import clock
from app.extensions import db
from app.models import Connection, WebhookEvent
from app.providers import redis_client
from app.webhooks.payloads import ProviderEvent

log = logging.getLogger(__name__)

SIGNATURE_HEADERS = {"xero": "x-xero-signature", "quickbooks": "intuit-signature"}
SECRET_SETTINGS = {"xero": "XERO_WEBHOOK_KEY", "quickbooks": "QUICKBOOKS_WEBHOOK_VERIFIER"}


def signature(secret: str, body: bytes) -> str:
    """base64(HMAC-SHA256(secret, raw body)): both providers sign this way."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def signature_valid(provider: str, body: bytes, given: str | None) -> bool:
    """Constant-time comparison over the raw bytes as received (never re-serialised JSON)."""
    secret = current_app.config.get(SECRET_SETTINGS[provider]) or ""
    if not secret or not given:
        return False
    return hmac.compare_digest(given.strip().encode(), signature(secret, body).encode())


@dataclass
class Stored:
    received: int
    new: int
    unknown_tenants: int
    orgs_woken: int


def _organisations(provider: str, tenants: set[str]) -> dict[str, int]:
    if not tenants:
        return {}
    rows = db.session.connection().execute(select(Connection.tenant_id, Connection.org_id).where(
        Connection.provider == provider, Connection.tenant_id.in_(sorted(tenants))))
    return {tenant.lower() if provider == "xero" else tenant: org for tenant, org in rows}


def _insert_new(provider: str, rows: list[dict[str, object]]) -> int:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING id: a replayed event is skipped by the unique
    key. One statement with bound rows, so SQLAlchemy compiles it once per process."""
    dialect = db.session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(WebhookEvent).on_conflict_do_nothing(
        index_elements=["provider", "tenant_id", "event_key"]).returning(WebhookEvent.id)
    inserted = 0
    for row in rows:  # one row at a time: RETURNING counts exactly what was new
        inserted += len(db.session.connection().execute(statement, row).all())
    return inserted


def store_events(provider: str, events: Sequence[ProviderEvent]) -> Stored:
    """Store what is new for organisations we know, then enqueue one targeted sync each."""
    orgs = _organisations(provider, {e.tenant_id for e in events})
    unknown = {e.tenant_id for e in events} - set(orgs)
    for tenant in sorted(unknown):
        log.info("%s webhook for unknown tenant %s ignored", provider, tenant)
    now = clock.now()
    by_org: dict[int, list[dict[str, object]]] = defaultdict(list)
    for e in events:
        if e.tenant_id in orgs:
            by_org[orgs[e.tenant_id]].append({
                "provider": provider, "tenant_id": e.tenant_id, "event_key": e.event_key,
                "entity": e.entity, "entity_id": e.entity_id, "kind": e.kind,
                "occurred_at": e.occurred_at, "received_at": now,
                "org_id": orgs[e.tenant_id]})
    fresh: dict[int, int] = {}
    for org_id, rows in by_org.items():
        # One payload can name a change twice; the database sees each key once.
        unique = list({str(r["event_key"]): r for r in rows}.values())
        fresh[org_id] = _insert_new(provider, unique)
    db.session.commit()
    woken = [org_id for org_id, count in fresh.items() if count]
    for org_id in woken:
        enqueue_targeted_sync(org_id)
        log.info("org %s: %d new %s webhook event(s); targeted sync queued", org_id,
                 fresh[org_id], provider)
    return Stored(received=len(events), new=sum(fresh.values()),
                  unknown_tenants=len(unknown), orgs_woken=len(woken))


def generation_key(org_id: int) -> str:
    return f"dunwell:webhook-sync:{org_id}:generation"


def enqueue_targeted_sync(org_id: int) -> None:
    """One job per organisation and generation: a burst of webhooks shares the waiting job.

    The job moves the generation on as it starts, before it reads the events; an event stored
    after that gets a job of the next generation, so none is left behind a running job. A
    marker per generation spares the burst's later requests the enqueue itself."""
    from jobs.queues import enqueue_once
    from jobs.tasks import SYNC_RETRY, sync_webhook_changes

    redis = redis_client()
    raw = redis.get(generation_key(org_id))
    generation = int(raw) if raw else 0
    job_id = f"webhook-sync-{org_id}-{generation}"
    marker = f"dunwell:webhook-sync:{org_id}:queued:{generation}"
    if not redis.set(marker, "1", nx=True, ex=MARKER_SECONDS):
        return  # this generation's job is already queued (or running): it will read our events
    try:
        enqueue_once(sync_webhook_changes, org_id, job_id=job_id, retry=SYNC_RETRY)
    except Exception:
        redis.delete(marker)  # the next webhook tries again; the nightly reconcile catches up
        raise


# A queued job runs within minutes; after this a burst enqueues again (a no-op if still queued).
MARKER_SECONDS = 600
