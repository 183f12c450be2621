"""Where a reminder is sent: one ledger action, carried out at most once.

The action is claimed (atomically, with a lease) before any effect; the invoice is re-read from
the provider right before writing (paid, voided or changed since planning -> skipped); every
write carries an
idempotency key derived from the action key, so a retried job replays instead of repeating; and
each effect is recorded as soon as the provider confirms it.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.orm import Session

from app.models import Action, Invoice, Organisation
from connectors.base import (
    ConfigurationError,
    Connector,
    DailyLimitReached,
    NotFound,
    ProviderRejected,
    RateLimited,
    TransientError,
)
from jobs import ledger
from jobs.plan import refresh_next_action
from sync.engine import upsert_invoices

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 6


class RetryLater(Exception):
    """The action failed for a passing reason; the job should run again."""


class Deferred(Exception):
    """The provider's budget is spent for now: run the action again after `retry_after`."""

    def __init__(self, retry_after: float, daily: bool = False) -> None:
        super().__init__(f"deferred for {retry_after:.0f} s")
        self.retry_after = retry_after
        self.daily = daily


def reminder_note(action: Action, invoice: Invoice) -> str:
    step = (action.step_index or 0) + 1
    return (
        f"Dunwell: reminder {step} of {action.step_count} sent ({action.template}); "
        f"{invoice.currency} {invoice.amount_due} due {invoice.due_date}."
    )


def execute_action(session: Session, action: Action, connector: Connector,
                   now: datetime, owner: str) -> str:
    """Carry out one action; returns its final or current status."""
    if action.status in ledger.FINAL_STATES:
        return action.status
    invoice = session.get(Invoice, action.invoice_id) if action.invoice_id else None
    org = session.get(Organisation, action.org_id)
    if invoice is None or org is None:
        ledger.finish(session, action, "skipped", "Invoice no longer exists", now,
                      result={"reason": "gone"})
        session.commit()
        return action.status
    if not ledger.claim(session, action, owner, now):
        log.info("action %s is held by %s until %s; not run twice", action.key,
                 action.claimed_by, action.lease_until)
        return "held"

    try:
        status = _run(session, action, invoice, connector, now)
    except RateLimited as exc:  # also the daily limit: wait, do not count it as a failure
        _defer(session, action, now)
        raise Deferred(exc.retry_after, daily=isinstance(exc, DailyLimitReached)) from exc
    except ProviderRejected as exc:
        ledger.finish(session, action, "skipped", f"Provider refused: {exc}", now,
                      result={"reason": "rejected"}, error=str(exc))
        status = "skipped"
    except (ConfigurationError, NotFound) as exc:
        ledger.finish(session, action, "dead", f"Needs the owner: {exc}", now, error=str(exc))
        status = "dead"
    except TransientError as exc:
        final = action.attempts >= MAX_ATTEMPTS
        ledger.finish(session, action, "dead" if final else "failed",
                      f"{'Gave up' if final else 'Will retry'}: {exc}", now, error=str(exc))
        session.commit()
        if final:
            return "dead"
        raise RetryLater(str(exc)) from exc
    refresh_next_action(session, org, now, [invoice.id])
    session.commit()
    return status


def _defer(session: Session, action: Action, now: datetime) -> None:
    """Not a failure: the action waits, planned, for the budget to refill."""
    action.status = "planned"
    action.attempts -= 1
    action.updated_at = now
    ledger.release(action)
    session.commit()


def _run(session: Session, action: Action, invoice: Invoice, connector: Connector,
         now: datetime) -> str:
    current = connector.invoice(invoice.provider_id)
    upsert_invoices(session, invoice.org_id, [current])
    if current.status != "open":
        ledger.finish(session, action, "skipped",
                      f"Invoice {invoice.number} is {current.status} now; nothing sent", now,
                      result={"reason": current.status})
        return "skipped"
    if ledger.amount_changed(action, current.amount_due):
        ledger.finish(
            session, action, "skipped",
            f"Invoice {invoice.number} changed since planning "
            f"({action.planned_amount_due} -> {current.amount_due}); planned again",
            now, result={"reason": ledger.REPLAN_REASON})
        return "skipped"

    result = dict(action.result or {})
    if not result.get("emailed"):
        connector.email_invoice(invoice.provider_id, idempotency_key=f"{action.key}:email")
        action.result = {**result, "emailed": True}
        session.commit()
    if not (action.result or {}).get("noted"):
        connector.add_invoice_note(invoice.provider_id, reminder_note(action, invoice),
                                   idempotency_key=f"{action.key}:note")
    ledger.finish(session, action, "done",
                  f"Reminder {(action.step_index or 0) + 1} of {action.step_count} emailed "
                  f"for {invoice.number} ({invoice.currency} {invoice.amount_due} due)",
                  now, result={"emailed": True, "noted": True})
    return "done"
