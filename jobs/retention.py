"""What happens to a disconnected organisation's synced data: kept for a grace period (the
owner may export it, reconnect, or cut the grace short), then deleted by one RQ job per
organisation.

Deleted: everything copied from the books or made from that copy (contacts, invoices,
payments, the actions taken and planned, webhook events, tasks, documents, payment plans,
sync cursors and runs, and any other table of the organisation's rows that hangs off those).
Kept, for the owner's record: the organisation, its members, its policy and settings, and the
activity log (`audit_events`: what was sent, when, and the note of the deletion itself), whose
links to deleted invoices and actions are cleared.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import Table, select

from collect import ledger
from jobs.queues import enqueue_once
from store import clock
from store.db import db
from store.models import Connection

log = logging.getLogger(__name__)

DEFAULT_GRACE_DAYS = 30
# The synced copy of the books and what Dunwell made from it; tables found hanging off these
# (a foreign key to one of them and an org_id of their own) are deleted with them.
SYNCED_TABLES = ("contacts", "invoices", "payments", "actions", "webhook_events", "tasks",
                 "documents", "payment_plans", "sync_cursors", "sync_runs")
KEPT_TABLES = frozenset({"audit_events", "organisations", "connections", "memberships",
                         "policies", "credit_settings", "message_texts", "api_tokens",
                         "invitations"})


class GraceSettingInvalid(ValueError):
    """DUNWELL_DISCONNECT_GRACE_DAYS is not a whole number of days from 0 to 365."""


def grace_period() -> timedelta:
    """The grace period: app config `DISCONNECT_GRACE_DAYS`, else the environment variable
    `DUNWELL_DISCONNECT_GRACE_DAYS`, else 30 days."""
    raw = current_app.config.get("DISCONNECT_GRACE_DAYS") or os.environ.get(
        "DUNWELL_DISCONNECT_GRACE_DAYS", str(DEFAULT_GRACE_DAYS))
    try:
        days = int(str(raw).strip())
    except ValueError:
        raise GraceSettingInvalid(
            f"DUNWELL_DISCONNECT_GRACE_DAYS must be a whole number of days, not {raw!r}"
        ) from None
    if not 0 <= days <= 365:
        raise GraceSettingInvalid("DUNWELL_DISCONNECT_GRACE_DAYS must be from 0 to 365 days")
    return timedelta(days=days)


def purged_tables() -> list[Table]:
    """The tables whose rows of the organisation are deleted, children before parents."""
    chosen = set(SYNCED_TABLES)
    tables = db.metadata.sorted_tables
    grew = True
    while grew:
        grew = False
        for table in tables:
            if table.name in chosen or table.name in KEPT_TABLES or "org_id" not in table.c:
                continue
            if any(fk.column.table.name in chosen for fk in table.foreign_keys):
                chosen.add(table.name)
                grew = True
    return [t for t in reversed(tables) if t.name in chosen]


def purge_job_id(org_id: int) -> str:
    return f"purge-org-{org_id}"


def enqueue_purge(org_id: int) -> None:
    """One job per organisation; a second enqueue while it waits is a no-op."""
    enqueue_once(purge_organisation, org_id, job_id=purge_job_id(org_id))


def purge_organisation(org_id: int) -> dict[str, Any]:
    """Delete the organisation's synced data if its grace has ended and it is still
    disconnected. Idempotent: run again (or after a reconnect) it finds nothing to do. The
    connection row is locked while it decides and deletes, so a reconnect waits for it."""
    session = db.session()
    now = clock.now()
    connection = session.scalar(select(Connection).where(Connection.org_id == org_id)
                                .with_for_update())
    if connection is None or connection.status != "disconnected" \
            or connection.purge_after is None or connection.purged_at is not None \
            or connection.purge_after > now:
        session.rollback()
        log.info("org %s: no synced data due for deletion", org_id)
        return {"deleted": False}
    audit = db.metadata.tables["audit_events"]
    session.execute(audit.update().where(audit.c.org_id == org_id)
                    .values(invoice_id=None, action_id=None))
    counts = {}
    for table in purged_tables():
        result = session.execute(table.delete().where(table.c.org_id == org_id))
        counts[table.name] = int(getattr(result, "rowcount", 0) or 0)
    connection.purged_at, connection.purge_after = now, None
    ledger.audit(session, org_id, "data_deleted",
                 "Synced data deleted after the disconnect: "
                 f"{counts.get('invoices', 0)} invoices, {counts.get('contacts', 0)} contacts, "
                 f"{counts.get('payments', 0)} payments, {counts.get('actions', 0)} actions. "
                 "This activity log is kept.", at=now,
                 data={"deleted": counts, **{k: counts.get(k, 0) for k in
                                             ("invoices", "contacts", "payments", "actions")}})
    session.commit()
    log.info("org %s: synced data deleted (%s)", org_id, counts)
    return {"deleted": True, "counts": counts}


def check_retention(now: datetime | None = None) -> int:
    """Enqueue the deletion of every organisation whose grace has ended. Called on each
    worker maintenance beat (jobs.tasks.ensure_schedules); enqueueing twice is harmless."""
    moment = now or clock.now()
    due = db.session.scalars(select(Connection.org_id).where(
        Connection.status == "disconnected", Connection.purge_after.is_not(None),
        Connection.purge_after <= moment, Connection.purged_at.is_(None))).all()
    db.session.commit()
    for org_id in due:
        enqueue_purge(org_id)
    if due:
        log.info("retention: deletion enqueued for %d organisation(s)", len(due))
    return len(due)
