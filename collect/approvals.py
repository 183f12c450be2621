"""Safe mode: the day's planned actions wait for the owner's approval instead of going out.

An action held for approval sits in the ledger as `pending_approval` (its key is taken, so the
engine does not plan the step again). Nothing picks it up: the sweeper looks only at open
states, a claim takes only planned or failed actions, and the executor refuses it outright.
Approving makes it `planned`
(and jobs.tasks.send_approved gives it a job); rejecting ends it as `skipped`. Turning safe
mode off sends nothing that waits: each waits for the owner, or expires once its invoice changes
(paid, voided, a new balance), when the next run looks at the book.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from collect import ledger
from store.models import Action, Invoice, Organisation, User

log = logging.getLogger(__name__)
Recorded = TypeVar("Recorded", bound=Action | ledger.Written)

# 16 characters: the width of actions.status.
AWAITING_APPROVAL = ledger.ActionStatus.AWAITING_APPROVAL
MAX_LISTED = 500


def hold_in_safe_mode(session: Session, org: Organisation, actions: Sequence[Recorded],
                      now: datetime) -> list[Recorded]:
    """The actions to enqueue now: all of them normally, none in safe mode (they wait for the
    owner's approval instead; the caller commits)."""
    if not org.safe_mode:
        return list(actions)
    for action in ledger.as_actions(session, actions):
        ledger.hold(session, action, now, f"Waits for approval: {action.reason}")
    if actions:
        log.info("org %s: safe mode, %d action(s) wait for approval", org.id, len(actions))
    return []


def expire_changed(session: Session, org: Organisation, now: datetime) -> int:
    """Waiting actions whose invoice changed since planning are not what the owner would be
    approving any more: they end, skipped, and (if the invoice is still open) the step is
    planned again against the invoice as it is now. Returns how many expired."""
    rows = session.execute(
        select(Action, Invoice).join(Invoice, Invoice.id == Action.invoice_id)
        .where(Action.org_id == org.id, Action.status == AWAITING_APPROVAL)).all()
    expired = 0
    for action, invoice in rows:
        if invoice.status == "open" and not ledger.amount_changed(action, invoice.amount_due):
            continue
        if invoice.status == "open":
            reason, message = ledger.REPLAN_REASON, (
                f"Invoice {invoice.number} changed while the action waited for approval "
                f"({action.planned_amount_due} -> {invoice.amount_due}); planned again")
            invoice.next_action_at = now  # this run asks the engine again
        else:
            reason, message = invoice.status, (
                f"Invoice {invoice.number} is {invoice.status} now; the action that waited for"
                " approval is not needed")
        _end(session, action, now, message, reason)
        expired += 1
    return expired


def _end(session: Session, action: Action, now: datetime, message: str, reason: str) -> None:
    ledger.end_unsent(session, action, now, message, reason)


def set_safe_mode(session: Session, org: Organisation, user: User, on: bool,
                  now: datetime) -> None:
    """Switch safe mode; the caller commits. Off sends nothing that is already waiting."""
    if org.safe_mode == on:
        return
    org.safe_mode = on
    waiting = count_awaiting(session, org)
    ledger.audit(session, org.id, "safe_mode",
                 f"Safe mode turned {'on' if on else 'off'} by {user.email}"
                 + ("" if on or not waiting else
                    f"; {waiting} action(s) still wait for approval"), at=now,
                 data={"on": on, "by": user.email, "waiting": waiting})


def count_awaiting(session: Session, org: Organisation) -> int:
    return session.scalar(select(func.count(Action.id)).where(
        Action.org_id == org.id, Action.status == AWAITING_APPROVAL)) or 0


def awaiting(session: Session, org: Organisation, limit: int = MAX_LISTED) -> list[Action]:
    """The waiting actions with what each is filed under (an invoice or a customer)."""
    return list(session.scalars(select(Action).where(
        Action.org_id == org.id, Action.status == AWAITING_APPROVAL)
        .options(selectinload(Action.invoice), selectinload(Action.contact))
        .order_by(Action.scheduled_for, Action.id).limit(limit)))


def is_waiting(session: Session, org: Organisation, action_id: int) -> bool:
    return session.scalar(select(Action.id).where(
        Action.org_id == org.id, Action.id == action_id,
        Action.status == AWAITING_APPROVAL)) is not None


def _waiting(session: Session, org: Organisation, action_ids: Sequence[int] | None
             ) -> list[Action]:
    query = select(Action).where(Action.org_id == org.id, Action.status == AWAITING_APPROVAL)
    if action_ids is not None:
        query = query.where(Action.id.in_(list(action_ids)))
    return list(session.scalars(query.order_by(Action.id).with_for_update()))


def approve(session: Session, org: Organisation, user: User, now: datetime,
            action_ids: Sequence[int] | None = None) -> list[Action]:
    """Approve the waiting actions named (all when None): each becomes planned. Commits. The
    caller sends them on their way (jobs.tasks.send_approved); the executor re-checks the
    invoice right before writing, as always."""
    approved = _waiting(session, org, action_ids)
    for action in approved:
        ledger.approve(session, action, now, f"Approved by {user.email}: {action.reason}",
                       by=user.email)
    session.commit()
    if not approved:
        return approved
    log.info("org %s: %d action(s) approved", org.id, len(approved))
    return approved


def reject(session: Session, org: Organisation, user: User, action_id: int,
           now: datetime) -> Action | None:
    """End one waiting action, unsent; None if it is not waiting (any more). Commits."""
    found = _waiting(session, org, [action_id])
    if not found:
        return None
    action = found[0]
    _end(session, action, now, f"Rejected by {user.email}: {action.reason}",
         f"rejected by {user.email}")
    session.commit()
    log.info("org %s invoice %s action %s: rejected", org.id, action.invoice_id, action.id)
    return action
