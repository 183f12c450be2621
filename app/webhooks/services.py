"""What a webhook request does: check the signature, store each event once, wake a worker.

The request does no provider I/O and opens no ORM session: one INSERT per event that finds the
tenant's organisation and skips events already stored (one transaction, committed before the
answer), and one enqueue per organisation with something new, coalesced by a Redis marker.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

from flask import current_app
from sqlalchemy import Engine, Table, bindparam, create_engine, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import QueuePool

from collect.providers import redis_client
from collect.webhooks import generation_key
from connectors import registry
from connectors.webhooks import ProviderEvent
from jobs.queues import enqueue_once
from jobs.tasks import SYNC_RETRY, sync_webhook_changes
from store import clock
from store.db import db
from store.models import Connection, WebhookEvent

log = logging.getLogger(__name__)

# Each provider's webhook format (signature header, signing key's setting, payload parser).
FORMATS = {provider.name: provider.webhooks for provider in registry.all()}
SIGNATURE_HEADERS = {name: spec.signature_header for name, spec in FORMATS.items()}


def signature_valid(provider: str, body: bytes, given: str | None) -> bool:
    """The provider's signature of the raw body, checked with the key in its setting."""
    spec = FORMATS[provider]
    return spec.signature_valid(current_app.config.get(spec.secret_setting) or "", body, given)


@dataclass
class Stored:
    received: int
    new: int
    unknown_tenants: int
    orgs_woken: int


EVENT_COLUMNS = ("provider", "tenant_id", "event_key", "entity", "entity_id", "kind",
                 "occurred_at", "received_at")


@lru_cache(maxsize=4)
def _insert_statement(dialect: str) -> Any:
    """INSERT ... SELECT <the event>, connections.org_id FROM connections WHERE <its tenant>
    ON CONFLICT DO NOTHING RETURNING org_id: the tenant's organisation is found by the same
    statement that stores the event, so no lookup (and no cache of one that could go stale
    when a tenant is connected or moves) precedes it; an event of an unknown tenant or a replay
    inserts nothing. Built once per process: SQLAlchemy's compiled cache does the rest."""
    events = cast(Table, WebhookEvent.__table__)
    connections = cast(Table, Connection.__table__)
    values = [bindparam(name, type_=events.c[name].type) for name in EVENT_COLUMNS]
    source = select(*(value.label(value.key) for value in values),
                    connections.c.org_id.label("org_id")).where(
        connections.c.provider == bindparam("provider"),
        connections.c.tenant_id == bindparam("tenant_id"))
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    return insert(events).from_select([*EVENT_COLUMNS, "org_id"], source).on_conflict_do_nothing(
        index_elements=["provider", "tenant_id", "event_key"]).returning(events.c.org_id)


# PostgreSQL: the request's events as one JSON array, turned into rows by the server and joined
# with their tenants' connections, in one statement that is its own transaction (autocommit):
# one round trip. One text parameter rather than an array per column: psycopg's dumping of
# eight arrays cost more CPU than the statement itself.
PG_INSERT = (
    "INSERT INTO webhook_events (provider, tenant_id, event_key, entity, entity_id, kind, "
    "occurred_at, received_at, org_id) "
    "SELECT e.provider, e.tenant_id, e.event_key, e.entity, e.entity_id, e.kind, "
    "e.occurred_at, e.received_at, c.org_id "
    "FROM json_to_recordset(%s::json) "
    "AS e(provider varchar, tenant_id varchar, event_key varchar, entity varchar, "
    "entity_id varchar, kind varchar, occurred_at timestamptz, received_at timestamptz) "
    "JOIN connections c ON c.provider = e.provider AND c.tenant_id = e.tenant_id "
    "ON CONFLICT (provider, tenant_id, event_key) DO NOTHING RETURNING org_id")


class ConnectionLost(Exception):
    """The pooled connection was closed under the statement (its answer may be lost)."""


def _organisations(conn: Any, provider: str, tenants: set[str]) -> dict[str, int]:
    rows = conn.execute(select(Connection.tenant_id, Connection.org_id).where(
        Connection.provider == provider, Connection.tenant_id.in_(sorted(tenants))))
    return {tenant: org_id for tenant, org_id in rows}


_ENGINE_LOCK = threading.Lock()


def _webhook_engine() -> Engine:
    """The engine the endpoint writes through. On PostgreSQL its own pool, in autocommit
    (the one statement is the transaction) and without the app's pre-ping (a round trip per
    request): a connection the server closed fails its statement, is dropped by the pool and
    the statement is sent once more (see `_store`)."""
    engine = current_app.extensions.get("dunwell_webhook_engine")
    if engine is None:
        with _ENGINE_LOCK:  # a threaded worker's first requests arrive together
            engine = current_app.extensions.get("dunwell_webhook_engine")
            if engine is None:
                engine = db.engine
                if engine.dialect.name == "postgresql":
                    engine = create_engine(engine.url, pool_pre_ping=False, pool_size=5,
                                           max_overflow=10, isolation_level="AUTOCOMMIT")
                current_app.extensions["dunwell_webhook_engine"] = engine
    return engine


def open_pools(connections: int) -> None:
    """Open the endpoint's database and Redis connections (up to `connections` each, within
    the pools' sizes) before a web worker takes requests: gunicorn.conf.py calls this as each
    worker starts. Otherwise a new worker's first concurrent requests open one each, 10-30 ms
    apiece while the others wait. A failure is logged and left: requests open their own."""
    try:
        engine = _webhook_engine()
        # A QueuePool keeps what it opened (PostgreSQL, an SQLite file); SQLite in memory's
        # pool holds one connection per thread, so there is nothing to open ahead.
        size = engine.pool.size() if isinstance(engine.pool, QueuePool) else 0
        held = [engine.raw_connection() for _ in range(min(connections, size))]
        for pooled in held:
            pooled.close()  # back to the pool, still open
        pool = redis_client().connection_pool
        redis_held = [pool.get_connection() for _ in range(min(connections, pool.max_connections))]
        for connection in redis_held:
            pool.release(connection)
    except Exception as error:  # the worker serves without them
        log.warning("webhook endpoint: could not open its database and Redis connections at "
                    "start (%s: %s); requests will open them", type(error).__name__, error)
        return
    log.info("webhook endpoint: %d database and %d Redis connections open", len(held),
             len(redis_held))


def _insert(engine: Engine, rows: list[dict[str, Any]]) -> list[int]:
    """Each new event's organisation id; committed when this returns."""
    if engine.dialect.name == "postgresql":
        return _insert_postgresql(engine, rows)
    statement = _insert_statement(engine.dialect.name)
    with engine.begin() as conn:  # one statement a row: RETURNING counts exactly what was new
        return [org_id for row in rows for (org_id,) in conn.execute(statement, row)]


def _insert_postgresql(engine: Engine, rows: list[dict[str, Any]]) -> list[int]:
    """On the pool's driver connection itself: SQLAlchemy's execution layer cost as much CPU
    as the statement, and one literal statement needs none of it."""
    document = json.dumps([{**row, "occurred_at": _iso(row["occurred_at"]),
                            "received_at": _iso(row["received_at"])} for row in rows])
    pooled = engine.raw_connection()
    try:
        cursor = pooled.cursor()
        try:
            cursor.execute(PG_INSERT, (document,))
            return [org_id for (org_id,) in cursor.fetchall()]
        finally:
            cursor.close()
    except engine.dialect.loaded_dbapi.Error as error:
        if engine.dialect.is_disconnect(error, pooled.dbapi_connection, None):
            pooled.invalidate(error)  # dropped from the pool, not handed out again
            raise ConnectionLost() from error
        raise
    finally:
        pooled.close()  # back to the pool (or gone, if invalidated)


def _iso(moment: Any) -> str | None:
    return None if moment is None else moment.isoformat()


def _store(provider: str, rows: list[dict[str, Any]]) -> tuple[dict[int, int], set[int]]:
    """New events per organisation, and the organisations to wake. Durable before the caller
    answers, so an acknowledged event is never lost."""
    engine = _webhook_engine()
    fresh: dict[int, int] = defaultdict(int)
    try:
        new = _insert(engine, rows)
    except (ConnectionLost, DBAPIError) as error:
        if isinstance(error, DBAPIError) and not error.connection_invalidated:
            raise
        log.info("%s webhook: the database closed the connection; sending again", provider)
        new = _insert(engine, rows)
        # The first attempt may have committed before its answer was lost: wake every
        # organisation named, so none of its events waits for the nightly reconcile.
        with engine.connect() as conn:
            named = set(_organisations(conn, provider, {str(r["tenant_id"]) for r in rows}
                                       ).values())
        for org_id in new:
            fresh[org_id] += 1
        return fresh, named
    for org_id in new:
        fresh[org_id] += 1
    return fresh, set(fresh)


def store_events(provider: str, events: Sequence[ProviderEvent]) -> Stored:
    """Store what is new for organisations we know, then enqueue one targeted sync each."""
    now = clock.now()
    # One payload can name a change twice; the database sees each key once.
    rows = list({(e.tenant_id, e.event_key): {
        "provider": provider, "tenant_id": e.tenant_id, "event_key": e.event_key,
        "entity": e.entity, "entity_id": e.entity_id, "kind": e.kind,
        "occurred_at": e.occurred_at, "received_at": now} for e in events}.values())
    fresh, woken = _store(provider, rows)
    unknown: set[str] = set()
    if sum(fresh.values()) < len(rows):  # replays, or tenants we do not know: which?
        tenants = {e.tenant_id for e in events}
        with _webhook_engine().connect() as conn:
            unknown = tenants - set(_organisations(conn, provider, tenants))
        for tenant in sorted(unknown):
            log.info("%s webhook for unknown tenant %s ignored", provider, tenant)
    for org_id in sorted(woken):
        enqueue_targeted_sync(org_id)
        log.info("org %s: %d new %s webhook event(s); targeted sync queued", org_id,
                 fresh.get(org_id, 0), provider)
    return Stored(received=len(events), new=sum(fresh.values()),
                  unknown_tenants=len(unknown), orgs_woken=len(woken))


def enqueue_targeted_sync(org_id: int) -> None:
    """One job per organisation and generation: a burst of webhooks shares the waiting job.

    The job moves the generation on as it starts, before it reads the events; an event stored
    after that gets a job of the next generation, so none is left behind a running job. A
    marker per generation spares the burst's later requests the enqueue itself."""

    redis = redis_client()
    # One round trip: read the generation and set its marker unless it is set.
    claimed = redis.eval(MARK_GENERATION, 1, generation_key(org_id), _marker_prefix(org_id),
                         MARKER_SECONDS)
    if claimed is None:
        return  # this generation's job is already queued (or running): it will read our events
    generation = int(claimed)
    job_id = f"webhook-sync-{org_id}-{generation}"
    marker = f"{_marker_prefix(org_id)}{generation}"
    try:
        # At the front: a payment must reach Dunwell before the actions waiting behind it run.
        enqueue_once(sync_webhook_changes, org_id, job_id=job_id, retry=SYNC_RETRY,
                     at_front=True)
    except Exception:
        redis.delete(marker)  # the next webhook tries again; the nightly reconcile catches up
        raise


# A queued job runs within minutes; after this a burst enqueues again (a no-op if still queued).
MARKER_SECONDS = 600

# KEYS[1] the generation, ARGV[1] the marker's prefix, ARGV[2] its lifetime: the generation
# whose marker this call set, or nil if it was set already.
MARK_GENERATION = """
local generation = redis.call('GET', KEYS[1]) or '0'
if redis.call('SET', ARGV[1] .. generation, '1', 'NX', 'EX', tonumber(ARGV[2])) then
  return generation
end
return false
"""


def _marker_prefix(org_id: int) -> str:
    return f"dunwell:webhook-sync:{org_id}:queued:"
