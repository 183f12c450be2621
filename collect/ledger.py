"""The action ledger: every effect is written here before it runs, and its outcome after.

States: planned -> claimed -> done | skipped | failed (retried) | dead (gave up, the owner sees
it). The key is deterministic (organisation, invoice, rule step), unique in the database, so
planning the same day twice cannot create a second action.

A claim is one statement, `UPDATE actions SET status='claimed', lease... WHERE id = (SELECT id
... WHERE <free> FOR UPDATE SKIP LOCKED) AND <free>`, committed at once:
- on PostgreSQL the subquery locks the row or, if another worker is in the middle of claiming
  it, skips it and the UPDATE changes nothing: a loser never waits on the winner. A loser that
  comes after the winner committed sees the row claimed (READ COMMITTED re-reads the latest
  version) and changes nothing either. (A bare conditional UPDATE would also be exact, since
  PostgreSQL re-checks its WHERE after waiting for the row lock; SKIP LOCKED only spares the
  wait, which matters when a thousand deliveries of the same job arrive together.)
- SQLite has no row locks (SQLAlchemy leaves FOR UPDATE out) and serialises writers on the
  database lock, so the same conditional UPDATE is atomic there.
Exactly one of any number of concurrent claimers gets rowcount 1. The claim carries a lease
(`DUNWELL_ACTION_LEASE_SECONDS`, 10 minutes by default) so that a worker that died mid-action
does not hold it for ever; the sweeper (jobs.tasks.sweep_ledger) gives such actions a job again.
Leases are measured on the clock all workers share (collect/shared_clock.py).

A worker can outlive its lease without dying (paused, a long GC, a VM stall) and resume after
another worker claimed the action. So every commit of the claimant is fenced (`fenced`): the
transaction's first statement updates the row `WHERE id = :id AND status = 'claimed' AND
claimed_by = :me`, and the transaction goes on only if that matched. On PostgreSQL the row
stays locked by that statement until the transaction ends, on SQLite the whole database does:
no other claim can slip in between the check and the write. A worker that lost its claim
writes nothing (no outcome, no part, no activity) and stops (ClaimLost).
"""

from __future__ import annotations

import json
import logging
import os
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, and_, event, insert, inspect, or_, select, text, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from collect.observed import count_when_committed
from rules import PastAction, PlannedAction
from rules.deposits import QuoteReminder
from store.db import among
from store.models import Action, AuditEvent, Invoice
from sync.engine import by_copy, column_arrays, copy_into, copy_page

log = logging.getLogger(__name__)

class ActionStatus(StrEnum):
    """An action's lifecycle. Only this module changes an action's status: the functions
    below (record_planned, record_planned_for_quote, claim, hold, approve, hand_back,
    end_unsent, finish) are the transitions, each with its activity-log entry where the owner
    should see it (collect/outcomes.py says which one an error leads to)."""

    PLANNED = "planned"
    AWAITING_APPROVAL = "pending_approval"  # safe mode or review: only the owner sends it
    CLAIMED = "claimed"
    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"  # retried
    DEAD = "dead"  # gave up; the owner sees it


OPEN_STATES = (ActionStatus.PLANNED, ActionStatus.CLAIMED, ActionStatus.FAILED)
FENCE = "dunwell_fence"  # in session.info: (owner, {action id: Action}) while fenced
RELEASING = "dunwell_fence_releasing"  # fenced actions this commit takes out of "claimed"
OUTCOMES = "dunwell_outcomes"  # log lines of outcomes, written once their commit succeeded
LEASE = timedelta(seconds=float(os.environ.get("DUNWELL_ACTION_LEASE_SECONDS", "600")))
FINAL_STATES = (ActionStatus.DONE, ActionStatus.SKIPPED, ActionStatus.DEAD)
REPLAN_REASON = "changed"


def audit(session: Session, org_id: int, kind: str, message: str, *, at: datetime,
          invoice_id: int | None = None, action_id: int | None = None,
          data: dict[str, Any] | None = None) -> None:
    session.add(AuditEvent(org_id=org_id, kind=kind, message=message, at=at,
                           invoice_id=invoice_id, action_id=action_id, data=data))


def audit_many(session: Session, entries: Sequence[dict[str, Any]]) -> None:
    """Many activity-log entries (AuditEvent's columns, every entry with the same keys) in one
    statement: on PostgreSQL, from this many on, by COPY (psycopg's C code encodes the rows,
    where an executemany dumps them value by value); otherwise one INSERT."""
    if not entries:
        return
    session.flush()  # around the unit of work: what it holds goes first
    if by_copy(session, len(entries)):
        copy_into(session, AuditEvent.__table__, entries, list(entries[0]))
    else:
        session.execute(insert(AuditEvent), entries)


@dataclass(frozen=True, slots=True)
class Written:
    """An action a planning pass inserted, as the pass's callers read it (the activity log,
    the queue): its row's id and what rules/ planned. No object is made in the session for
    it (one per action cost the pass more than planning the action); `as_actions` reads the
    objects where a caller needs them."""

    id: int
    planned: PlannedAction
    amount: Decimal | None  # as the row holds it (PostgreSQL: to 4 places), as Action's reads

    @property
    def org_id(self) -> int:
        return self.planned.org_id

    @property
    def invoice_id(self) -> int | None:
        return self.planned.invoice_id

    @property
    def contact_id(self) -> int | None:
        return self.planned.contact_id

    @property
    def key(self) -> str:
        return self.planned.key

    @property
    def kind(self) -> str:
        return self.planned.kind

    @property
    def reason(self) -> str:
        return self.planned.reason

    @property
    def step_index(self) -> int | None:
        return self.planned.step_index

    @property
    def step_count(self) -> int | None:
        return self.planned.step_count

    @property
    def channel(self) -> str | None:
        return self.planned.channel

    @property
    def currency(self) -> str | None:
        return self.planned.currency


def as_actions(session: Session, recorded: Sequence[Action | Written]) -> list[Action]:
    """These actions as the session's objects, in order (one read for the written ones)."""
    ids = [item.id for item in recorded if isinstance(item, Written)]
    read = {action.id: action for action in session.scalars(
        select(Action).where(among(session, Action.id, ids)))} if ids else {}
    return [read[item.id] if isinstance(item, Written) else item for item in recorded]


def about(action: Action | PlannedAction | Written) -> dict[str, Any]:
    """An action's event parameters: what app/events.py words it from in the reader's
    language (its kind, the reminder's step, the amount, the channel)."""
    return {"key": action.key, "action": action.kind, "contact_id": action.contact_id,
            "step": action.step_index,
            "steps": action.step_count, "channel": action.channel,
            "amount": None if action.amount is None else str(action.amount),
            "currency": action.currency}


def history(session: Session, invoice_ids: Iterable[int]) -> dict[int, list[PastAction]]:
    """What the ledger holds per invoice, in the shape rules/ reads.

    An action skipped because the invoice changed before it ran is left out: its step may be
    planned again against the invoice as it is now.
    """
    found: dict[int, list[PastAction]] = defaultdict(list)
    ids = list(invoice_ids)
    for start in range(0, len(ids), 500):
        rows = session.execute(
            select(Action.invoice_id, Action.key, Action.status, Action.result, Action.amount,
                   Action.scheduled_for)
            .where(among(session, Action.invoice_id, ids[start:start + 500]))
        )
        for invoice_id, key, status, result, amount, at in rows:
            if status == "skipped" and (result or {}).get("reason") == REPLAN_REASON:
                continue
            found[invoice_id].append(PastAction(key=key, status=status, amount=amount, at=at))
    return found


def record_planned(session: Session, planned: PlannedAction, invoice: Invoice | None,
                   now: datetime) -> Action | None:
    """Write the planned action; None if its key is already in the ledger (a no-op replan).

    `invoice` is the invoice it is filed under, as planning read it; None for a customer's
    action (filed under `planned.contact_id`)."""
    if (invoice is None) != (planned.invoice_id is None) or \
            (invoice is not None and invoice.id != planned.invoice_id):
        raise ValueError(f"action {planned.key} is filed under invoice {planned.invoice_id},"
                         f" not {None if invoice is None else invoice.id}")
    existing = session.scalar(select(Action).where(Action.key == planned.key))
    if existing is not None:
        return existing if _plan_again(session, existing, planned, invoice, now) else None
    action = Action(
        org_id=planned.org_id, invoice_id=planned.invoice_id, contact_id=planned.contact_id,
        key=planned.key, kind=planned.kind, status=ActionStatus.PLANNED,
        planned_amount_due=_amount_due(invoice), created_at=now, updated_at=now,
    )
    _particulars(action, planned)
    return _add_new(session, action)


def _add_new(session: Session, action: Action) -> Action | None:
    """Insert a newly planned action; None if another worker planned its key meanwhile."""
    try:
        with session.begin_nested():
            session.add(action)
    except IntegrityError:
        log.info("action %s already planned by another worker", action.key)
        return None
    return action


def _amount_due(invoice: Invoice | None) -> Decimal | None:
    """What the invoice owed when planned (the executor compares); a customer's: nothing."""
    return None if invoice is None else invoice.amount_due


def _plan_again(session: Session, existing: Action, planned: PlannedAction,
                invoice: Invoice | None, now: datetime) -> bool:
    """An action skipped because its invoice changed is planned again under its key (the key
    is the effect's identity, so a new row would be a second effect); any other is left be."""
    if existing.status != "skipped" or (existing.result or {}).get("reason") != REPLAN_REASON:
        return False
    _particulars(existing, planned)
    existing.status = ActionStatus.PLANNED
    existing.planned_amount_due = _amount_due(invoice)
    existing.result = None
    audit(session, planned.org_id, "action_replanned", f"Planned again: {planned.reason}",
          at=now, invoice_id=planned.invoice_id, action_id=existing.id,
          data=about(existing))
    return True


def record_planned_for_quote(session: Session, step: QuoteReminder,
                             now: datetime) -> Action | None:
    """`record_planned` for a quote's deposit reminder, which is filed under no invoice."""
    existing = session.scalar(select(Action).where(Action.key == step.key))
    if existing is not None:
        if existing.status != ActionStatus.SKIPPED or \
                (existing.result or {}).get("reason") != REPLAN_REASON:
            return None
        existing.status, existing.result = ActionStatus.PLANNED, None
        action = existing
    else:
        action = Action(org_id=step.org_id, invoice_id=None, key=step.key, kind=step.kind,
                        status=ActionStatus.PLANNED, created_at=now, attempts=0)
    action.step_index, action.step_count = step.step_index, step.step_count
    action.template, action.channel = "deposit", step.channel
    action.scheduled_for, action.reason = step.scheduled_for, step.reason
    action.amount, action.currency = step.amount, step.currency
    action.details, action.updated_at = dict(step.details), now
    return action if existing is not None else _add_new(session, action)


def record_planned_many(session: Session, steps: Sequence[tuple[PlannedAction, Invoice]],
                        now: datetime) -> list[Action | Written]:
    """Write a planning pass's actions set-wise; the new ones (`Written`) and the ones planned
    again (the session's objects), in order.

    The same contract as `record_planned` one by one, in a few statements instead of a SELECT,
    a SAVEPOINT and an INSERT per action: one `INSERT ... ON CONFLICT (key) DO NOTHING
    RETURNING id, key, amount` writes what is new (a key already in the ledger, or written by
    another worker meanwhile, is skipped by the unique key, never duplicated), and only the
    keys that were skipped are read back, to plan again the ones skipped because their invoice
    changed.
    """
    by_key: dict[str, tuple[PlannedAction, Invoice]] = {}
    for planned, invoice in steps:
        by_key.setdefault(planned.key, (planned, invoice))
    if not by_key:
        return []
    session.flush()  # the statements below go around the unit of work
    found: dict[str, Action | Written] = {}
    keys = list(by_key)
    # PostgreSQL takes the pass in one INSERT (its rows come by COPY or as arrays).
    chunk = len(keys) if session.get_bind().dialect.name == "postgresql" else INSERT_CHUNK
    for start in range(0, len(keys), chunk):
        rows = [_row(*by_key[key], now) for key in keys[start:start + chunk]]
        for action_id, key, amount in _insert_new(session, rows):
            found[key] = Written(action_id, by_key[key][0], amount)
    taken = [key for key in keys if key not in found]
    for start in range(0, len(taken), INSERT_CHUNK):
        for existing in session.scalars(
                select(Action).where(Action.key.in_(taken[start:start + INSERT_CHUNK]))):
            if _plan_again(session, existing, *by_key[existing.key], now):
                found[existing.key] = existing
    skipped = len(taken) - sum(1 for key in taken if key in found)
    if skipped:
        log.info("%d action(s) already in the ledger, not planned again", skipped)
    return [found[key] for key in keys if key in found]


# Rows per INSERT: on SQLite 21 placeholders each, under its 32,766 bound parameters.
INSERT_CHUNK = 1000


def _insert_new(session: Session, rows: list[dict[str, Any]]
                ) -> Iterable[tuple[int, str, Decimal | None]]:
    """INSERT ... ON CONFLICT (key) DO NOTHING RETURNING id, key, amount: the rows that were
    new. PostgreSQL takes a long pass's rows by COPY into a temporary table and inserts from
    it (psycopg's C code encodes them), a short one's as one array per column unnested by the
    server (thousands of placeholders cost psycopg more to parse than the server to insert)."""
    if session.get_bind().dialect.name != "postgresql":
        statement = sqlite_insert(Action).on_conflict_do_nothing(index_elements=["key"])
        return session.execute(statement.returning(Action.id, Action.key, Action.amount),
                               rows)

    table = Action.__table__
    columns = list(rows[0])
    arrays: dict[str, list[Any]] = {}
    if by_copy(session, len(rows)):
        page = copy_page(session, table, list(enumerate(rows)), columns)
        source = f"SELECT {', '.join(columns)} FROM {page} ORDER BY id"  # noqa: S608 - ours
    else:
        dialect = session.get_bind().dialect
        serialise = getattr(dialect, "_json_serializer", None) or json.dumps
        rows = [{**row, "details": None if row["details"] is None else serialise(row["details"])}
                for row in rows]  # psycopg adapts no dict inside an array: JSON goes as text
        arrays, _ = column_arrays(session, table, rows, columns)
        casts = [f"CAST(:{name} AS {table.c[name].type.compile(dialect=dialect)}[])"
                 for name in columns]
        source = f"SELECT * FROM unnest({', '.join(casts)})"  # noqa: S608 - ours
    sql = (f"INSERT INTO actions ({', '.join(columns)}) {source} "
           f"ON CONFLICT (key) DO NOTHING RETURNING id, key, amount")
    return session.connection().execute(text(sql).bindparams(**arrays).columns(
        table.c.id, table.c.key, table.c.amount))


def _row(planned: PlannedAction, invoice: Invoice, now: datetime) -> dict[str, Any]:
    """An Action's columns as `record_planned` sets them, every row with the same keys."""
    return {
        "org_id": planned.org_id, "invoice_id": planned.invoice_id,
        "contact_id": planned.contact_id, "key": planned.key,
        "kind": planned.kind, "status": "planned", "attempts": 0,
        "planned_amount_due": invoice.amount_due, "created_at": now, "updated_at": now,
        "step_index": planned.step_index, "step_count": planned.step_count,
        "template": planned.template, "channel": planned.channel, "tone": planned.tone,
        "scheduled_for": planned.scheduled_for, "reason": planned.reason,
        "amount": planned.amount, "currency": planned.currency,
        "details": dict(planned.details) or None,
    }


def _particulars(action: Action, planned: PlannedAction) -> None:
    action.step_index, action.step_count = planned.step_index, planned.step_count
    action.template, action.channel, action.tone = planned.template, planned.channel, planned.tone
    action.scheduled_for, action.reason = planned.scheduled_for, planned.reason
    action.amount, action.currency = planned.amount, planned.currency
    action.details = dict(planned.details) or None


def _free(now: datetime) -> Any:
    """Open, or held under a lease that ran out (its worker died)."""
    return or_(Action.status.in_(("planned", "failed")),
               and_(Action.status == "claimed", Action.lease_until < now))


def claim(session: Session, action: Action, owner: str, now: datetime,
          lease: timedelta = LEASE) -> bool:
    """Take the action for `owner` if it is free (open, or its lease ran out); commits.

    True for exactly one of any number of concurrent callers (see the module's docstring)."""
    free_row = (select(Action.id).where(Action.id == action.id, _free(now))
                .with_for_update(skip_locked=True).scalar_subquery())
    taken = session.execute(  # type: ignore[attr-defined]  # DML: a CursorResult
        update(Action)
        .where(Action.id == free_row, _free(now))
        .values(status=ActionStatus.CLAIMED, claimed_by=owner, lease_until=now + lease,
                attempts=Action.attempts + 1, updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount == 1
    session.commit()
    session.refresh(action)
    return taken


def renew(session: Session, action: Action, owner: str, now: datetime,
          result: dict[str, Any] | None = None, lease: timedelta = LEASE) -> bool:
    """Before each provider write: still ours? Then the lease runs on from `now` (and `result`
    is saved with it); commits. False once the lease ran out and another worker claimed the
    action: that worker now owns its effects, and this one must write nothing more."""
    values: dict[str, Any] = {"lease_until": now + lease, "updated_at": now}
    if result is not None:
        values["result"] = result
    held = session.execute(  # type: ignore[attr-defined]  # DML: a CursorResult
        update(Action)
        .where(Action.id == action.id, Action.status == "claimed", Action.claimed_by == owner)
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount == 1
    session.commit()
    # Read back in a new transaction, which (fenced) begins with the fence's UPDATE: it stays
    # open over the provider call that follows, until the part's outcome is committed. So while
    # the write is in flight the action's row (PostgreSQL) or the database (SQLite) is locked,
    # and no other worker can claim the action even when this one stalls past its lease there:
    # a takeover would write it a second time (a credit note twice, where the provider has
    # forgotten the idempotency key). tests/integration/test_no_lock_over_a_call.py holds it.
    session.refresh(action)
    return held


class ClaimLost(Exception):
    """The lease ran out and another worker claimed the action: this one stops, writing
    nothing more (the other carries the action on and reconciles what was done)."""


@contextmanager
def fenced(session: Session, actions: Iterable[Action], owner: str) -> Iterator[None]:
    """Every commit inside is conditional on `owner` still holding the claim on each of
    `actions` (see the module's docstring); one that finds otherwise raises ClaimLost and
    writes nothing. An action this owner finishes (or hands back) leaves the fence with the
    commit that records it. What the session holds on entry is committed first, unfenced."""
    # A transaction begun before the fence (the claim's refresh) ends here: each one inside
    # begins with the check.
    held = {action.id: action for action in actions}  # read before the commit expires them
    session.commit()
    session.info[FENCE] = (owner, held)
    try:
        yield
    finally:
        session.info.pop(FENCE, None)
        session.info.pop(RELEASING, None)


@event.listens_for(Session, "after_begin")
def _check_fence(session: Session, transaction: Any, connection: Connection) -> None:
    """The first statement of every transaction while fenced: the claims still ours, and
    their rows locked (PostgreSQL) or the database (SQLite) until the transaction ends."""
    owner, held = session.info.get(FENCE, (None, {}))
    if held:
        _verify(connection, owner, held)


def _verify(connection: Connection, owner: str, held: dict[int, Action]) -> None:
    matched = connection.execute(
        update(Action)
        .where(Action.id.in_(sorted(held)), Action.status == "claimed",
               Action.claimed_by == owner)
        .values(claimed_by=owner)).rowcount
    if matched != len(held):
        raise ClaimLost(f"action(s) {', '.join(map(str, sorted(held)))} no longer held by "
                        f"{owner}")


@event.listens_for(Session, "before_commit")
def _releasing(session: Session) -> None:
    """Which fenced actions this commit takes out of "claimed" (they leave the fence)."""
    _, held = session.info.get(FENCE, (None, {}))
    if held:
        session.info[RELEASING] = [
            action_id for action_id, action in held.items()
            if inspect(action).dict.get("status", "claimed") != "claimed"]


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    _, held = session.info.get(FENCE, (None, {}))
    for action_id in session.info.pop(RELEASING, []):
        held.pop(action_id, None)
    for line in session.info.pop(OUTCOMES, []):
        log.info(*line)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(RELEASING, None)
    session.info.pop(OUTCOMES, None)  # not recorded: not said


def release(action: Action) -> None:
    action.claimed_by = None
    action.lease_until = None


def hold(session: Session, action: Action, now: datetime, message: str) -> None:
    """The action waits for the owner's approval (safe mode, or an organisation in review)."""
    action.status, action.updated_at = ActionStatus.AWAITING_APPROVAL, now
    audit(session, action.org_id, "action_awaiting", message, at=now,
          invoice_id=action.invoice_id, action_id=action.id,
          data=about(action))


def approve(session: Session, action: Action, now: datetime, message: str,
            by: str | None = None) -> None:
    """The owner approved a waiting action: planned again, to be sent."""
    action.status, action.updated_at = ActionStatus.PLANNED, now
    audit(session, action.org_id, "action_approved", message, at=now,
          invoice_id=action.invoice_id, action_id=action.id,
          data={**about(action), "by": by})


def hand_back(action: Action, now: datetime) -> None:
    """Not run now and not an attempt: planned again (the budget ran out, or a batch left it
    to the single path). The caller commits."""
    action.status, action.updated_at = ActionStatus.PLANNED, now
    action.attempts = max(0, action.attempts - 1)
    release(action)


def end_unsent(session: Session, action: Action, now: datetime, message: str, reason: str,
               **details: Any) -> None:
    """End an action that never ran (rejected, expired, cancelled): skipped with its reason."""
    action.status, action.updated_at, action.finished_at = ActionStatus.SKIPPED, now, now
    release(action)
    action.result = {**(action.result or {}), "reason": reason, **details}
    audit(session, action.org_id, "action_skipped", message, at=now,
          invoice_id=action.invoice_id, action_id=action.id,
          data={**about(action), "reason": reason, **details})


def end_unclaimed(session: Session, action: Action, now: datetime, message: str, reason: str,
                  **details: Any) -> bool:
    """end_unsent, for an action no worker may hold: one conditional UPDATE, so an action a
    worker claimed meanwhile is left to it (it re-checks the invoice itself). True if ended."""
    taken = session.execute(
        update(Action).where(Action.id == action.id,
                             Action.status.in_((ActionStatus.PLANNED, ActionStatus.FAILED)))
        .values(status=ActionStatus.SKIPPED, result={"reason": reason, **details},
                updated_at=now, finished_at=now, claimed_by=None, lease_until=None)
        .execution_options(synchronize_session=False)).rowcount == 1  # type: ignore[attr-defined]
    if taken:
        audit(session, action.org_id, "action_skipped", message, at=now,
              invoice_id=action.invoice_id, action_id=action.id,
              data={**about(action), "reason": reason, **details})
    return taken


def finish(session: Session, action: Action, status: str, message: str, now: datetime,
           result: dict[str, Any] | None = None, error: str | None = None) -> None:
    """Record the outcome and say so in the activity log, in one transaction."""
    action.status = ActionStatus(status)
    assert action.status not in (ActionStatus.PLANNED, ActionStatus.CLAIMED,
                                 ActionStatus.AWAITING_APPROVAL)
    release(action)
    action.result = {**(action.result or {}), **(result or {})}
    action.error = error
    action.updated_at = now
    if status in FINAL_STATES:
        action.finished_at = now
    audit(session, action.org_id, f"action_{status}", message, at=now,
          invoice_id=action.invoice_id, action_id=action.id,
          data={**about(action), **(result or {}), **({"error": error} if error else {})})
    count_when_committed(session, action.kind, status, result)
    session.info.setdefault(OUTCOMES, []).append(
        ("org %s %s %s action %s: %s (%s)", action.org_id, *filed_under(action), action.key,
         status, message))


def filed_under(action: Action) -> tuple[str, int | None]:
    """What the action is filed under, as the engineer on call searches the logs for it:
    ("invoice", 7) or ("contact", 3)."""
    if action.contact_id is not None:
        return "contact", action.contact_id
    return "invoice", action.invoice_id


def amount_changed(action: Action, amount_due: Decimal) -> bool:
    return action.planned_amount_due is not None and action.planned_amount_due != amount_due
