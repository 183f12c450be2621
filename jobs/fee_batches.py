"""The RQ side of fee batching: for one organisation, before its single actions are enqueued,
the fee invoices that can share a provider call are made together (collect/fee_batches.py)."""

from __future__ import annotations

import logging
import os

from collect.fee_batches import create_fee_invoices
from collect.providers import connector_for
from connectors.base import ConnectorError
from store import clock
from store.db import db
from store.models import Organisation

log = logging.getLogger(__name__)


def run_for_org(org_id: int) -> dict[str, int]:
    """Before single actions are enqueued: batch what can be batched (their jobs then find
    them done). Never fails the caller: what is not done here is done one by one."""

    session = db.session()
    org = session.get(Organisation, org_id)
    connection = org.connection if org is not None else None
    if org is None or connection is None or connection.status != "active":
        return {}
    try:
        counts = create_fee_invoices(session, org, connector_for(connection), clock.now(),
                                     owner=f"fee-batch/pid-{os.getpid()}")
    except ConnectorError as exc:
        session.rollback()
        log.warning("org %s: fee invoices not batched (%s); each goes on its own", org_id, exc)
        return {}
    if counts["claimed"]:
        log.info("org %s: fee invoices in batches: %s", org_id, counts)
    return counts
