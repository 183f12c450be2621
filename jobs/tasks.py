"""RQ entry points. Each takes ids, never objects, and runs inside the worker's app context."""

from __future__ import annotations

import gc
import hashlib
import logging
import os
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from rq import get_current_job
from rq.job import Job, JobStatus
from rq.timeouts import JobTimeoutException
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session

from collect import (
    approvals,
    book,
    execute,
    ledger,
    logos,
    outcomes,
    plan,
    review,
    shared_clock,
    statements,
)
from collect.providers import PROVIDER_NAMES, connector_for, redis_client
from collect.webhooks import apply_webhook_events, generation_key, reconcile
from connectors.base import ConfigurationError, DailyLimitReached, RateLimited, error_class
from jobs import fee_batches, retention
from jobs.payments import sweep_card_payments
from jobs.queues import (
    FINISHED,
    enqueue_many_once,
    enqueue_once,
    front_job_waiting,
    retry_after,
)
from store import clock
from store.db import db
from store.models import Action, Connection, Organisation, SyncRun
from sync.engine import sync_organisation

log = logging.getLogger(__name__)

ACTION_RETRY = retry_after(outcomes.MAX_ATTEMPTS - 1, [30, 120, 600, 1800, 3600])
SYNC_RETRY = retry_after(3, [30, 120, 600])


def _active_connection(org: Organisation) -> Connection | None:
    connection = org.connection
    if connection is None or connection.status != "active":
        log.info("org %s: no active connection, nothing to do", org.id)
        return None
    return connection


SYNC_MODES = ("pending", "full", "incremental")  # the runs of sync_org (not reconciles)
# How long a sync holds its organisation without storing a page; a sync whose worker died
# leaves the lease to run out. Renewed at every page it stores.
SYNC_LEASE = timedelta(seconds=float(os.environ.get("DUNWELL_SYNC_LEASE_SECONDS", "300")))


def _take_sync_lease(session: Session, org_id: int) -> bool:
    """Atomically take (or renew) the organisation's sync lease: one conditional UPDATE, so
    of two workers starting a sync of the same book at once exactly one goes on. On the
    workers' shared clock, as the actions' leases are."""
    now = shared_clock.now()
    taken = session.execute(update(Organisation).where(
        Organisation.id == org_id,
        or_(Organisation.sync_lease_until.is_(None), Organisation.sync_lease_until < now),
    ).values(sync_lease_until=now + SYNC_LEASE).execution_options(synchronize_session=False))
    session.commit()
    return bool(taken.rowcount)  # type: ignore[attr-defined]


RELEASE_TRIES = 3


def _release_sync_lease(org_id: int) -> None:
    """On a session of its own (the job's may be what failed). A connection the database
    dropped (a restart, a terminated backend) is tried again on a new one: a lease left
    behind turns every sync of the book away, the owner's "sync now" too, until it runs out.
    If the write still fails, the sweeper frees it (end_lost_sync_runs)."""
    for attempt in range(1, RELEASE_TRIES + 1):
        try:
            with Session(db.engine) as session:
                session.execute(update(Organisation).where(Organisation.id == org_id).values(
                    sync_lease_until=None))
                session.commit()
            return
        except DBAPIError as exc:
            if exc.connection_invalidated and attempt < RELEASE_TRIES:
                log.info("org %s: the database dropped the connection releasing the sync lease"
                         " (try %d of %d); trying a new one", org_id, attempt, RELEASE_TRIES)
                continue
            failure: SQLAlchemyError = exc
        except SQLAlchemyError as exc:
            failure = exc
        log.warning("org %s: the sync lease could not be released (the sweeper frees it, or it"
                    " runs out by itself within %s): %s", org_id, SYNC_LEASE, failure)
        return


def _sync_history(session: Session, org_id: int) -> tuple[bool, bool]:
    """(a sync of the organisation ever completed, a sync since the last completed one did
    not). A first sync that was interrupted is still the first sync when it resumes: every
    invoice it stored waits for its next-action time, whichever run stored it."""
    last_done = session.scalar(select(func.max(SyncRun.id)).where(
        SyncRun.org_id == org_id, SyncRun.status == "done",
        SyncRun.mode.in_(SYNC_MODES)))
    unfinished = session.scalar(select(SyncRun.id).where(
        SyncRun.org_id == org_id, SyncRun.mode.in_(SYNC_MODES), SyncRun.status != "done",
        SyncRun.id > (last_done or 0)).limit(1))
    return last_done is not None, unfinished is not None


def _record_sync_failure(run_id: int, org_id: int, exc: Exception, api_calls: int) -> None:
    """The failed run, written on a session of its own: the job's session (or its connection)
    may be the very thing that failed. If this write fails too, the sweeper ends the run."""
    try:
        with Session(db.engine) as session:
            session.execute(update(SyncRun).where(SyncRun.id == run_id).values(
                status="failed", error=str(exc)[:500], finished_at=clock.now(),
                api_calls=api_calls))
            if isinstance(exc, ConfigurationError):
                session.execute(update(Connection).where(Connection.org_id == org_id).values(
                    status="needs_reconnect", last_error=str(exc)[:500]))
            if not isinstance(exc, RateLimited):  # the budget refills: a wait, not a failure
                ledger.audit(session, org_id, "sync_failed", f"Sync failed: {exc}",
                             at=clock.now(), data={"error": str(exc)[:500],
                                                   "error_class": error_class(exc)})
            session.commit()
    except SQLAlchemyError as db_exc:
        log.warning("org %s: sync run %s not marked failed (%s); the sweeper ends it", org_id,
                    run_id, db_exc.__class__.__name__)


def sync_org(org_id: int, plan_after: bool = True) -> dict[str, Any]:
    """Sync one organisation's books, then plan (and enqueue) what is due."""
    session = db.session()
    org = session.get(Organisation, org_id)
    if org is None or (connection := _active_connection(org)) is None:
        return {"skipped": True}
    if not _take_sync_lease(session, org.id):
        log.info("org %s: another sync of this organisation is running; this one is skipped",
                 org_id)
        return {"skipped": True, "reason": "another sync is running"}
    try:
        return _sync_org(session, org, connection, plan_after)
    finally:
        _release_sync_lease(org_id)


def _sync_org(session: Session, org: Organisation, connection: Connection,
              plan_after: bool) -> dict[str, Any]:
    org_id = org.id
    completed_before, interrupted_before = _sync_history(session, org.id)
    job = get_current_job()
    run = SyncRun(org_id=org.id, job_id=job.id if job else "inline", mode="pending",
                  status="running", started_at=clock.now(), progress={})
    session.add(run)
    session.commit()
    run_id = run.id

    def progress(counts: dict[str, int]) -> None:
        org.sync_lease_until = shared_clock.now() + SYNC_LEASE  # committed with the page
        run.progress = counts
        run.api_calls = connector.calls
        if job is not None:
            job.meta["progress"] = counts
            job.save_meta()

    connector = connector_for(connection)
    try:
        result = sync_organisation(session, org, connector, on_progress=progress,
                                   first=not completed_before)
    except Exception as exc:
        try:
            session.rollback()
        except SQLAlchemyError:
            pass  # the connection is gone; the failure is written on another
        _record_sync_failure(run_id, org_id, exc, connector.calls)
        log.warning("org %s: sync failed: %s", org_id, exc)
        raise
    now = clock.now()
    # Every invoice of a first sync (also one resumed after an interruption) or of a sync
    # after one that did not finish (its pages are stored, their next actions not computed):
    # all of the organisation's; otherwise those this run changed.
    everything = result.mode == "full" or interrupted_before
    plan.refresh_next_action(session, org, now,
                             None if everything else result.changed_invoice_ids)
    run.mode, run.status, run.finished_at = result.mode, "done", now
    run.progress, run.api_calls = result.counts, result.api_calls
    if result.mode == "full" or any(result.counts.values()):
        ledger.audit(
            session, org.id, "sync_done",
            f"{result.mode.capitalize()} sync: {result.counts.get('invoices', 0)} invoices, "
            f"{result.counts.get('contacts', 0)} contacts, "
            f"{result.counts.get('payments', 0)} payments read in {result.api_calls} API calls",
            at=now, data={"counts": result.counts, "mode": result.mode,
                          "api_calls": result.api_calls,
                          **{k: result.counts.get(k, 0)
                             for k in ("invoices", "contacts", "payments")}})
    session.commit()
    if logos.due_for_a_look(session, org.id, now):  # at most daily, by a job of its own
        enqueue_once(refresh_logo, org.id, job_id=f"logo-{org.id}")
    if result.mode == "full":
        schedule_daily_run(org.id)  # the organisation's zone is known now
    if plan_after:
        plan_org(org.id)
    return {"mode": result.mode, "counts": result.counts, "api_calls": result.api_calls,
            "changed_invoices": len(result.changed_invoice_ids)}


def refresh_logo(org_id: int) -> str:
    """Read the books' logo into our store (collect/logos.py): best effort, the portal shows
    the business's name until one is kept."""
    session = db.session()
    org = session.get(Organisation, org_id)
    if org is None or (connection := _active_connection(org)) is None:
        return "skipped"
    now = clock.now()
    if not logos.due_for_a_look(session, org.id, now):
        return "not due"
    outcome = logos.refresh_from_books(session, org, connector_for(connection), now)
    session.commit()
    return outcome


def plan_org(org_id: int) -> int:
    """Plan what is due now for one organisation and enqueue one job per new action (a
    failure in its data is raised)."""
    result = _plan(db.session(), [org_id])
    if org_id in result.errors:
        raise result.errors[org_id]
    return result.planned


# Organisations per planning job of the daily run: workers split the organisations by batch.
PLAN_BATCH = int(os.environ.get("DUNWELL_PLAN_BATCH", "200"))
PLAN_EVERY = timedelta(seconds=float(os.environ.get("DUNWELL_PLAN_SECONDS", "300")))


def plan_orgs(org_ids: Sequence[int]) -> dict[str, Any]:
    """The daily run's planning of a batch of organisations: what has come due is planned in
    one pass (collect.plan.plan_orgs), committed once, and one job per new action enqueued.
    An organisation whose data fails is logged and told in its activity log; the others'
    plans are kept."""
    with cyclic_gc_paused():
        result = _plan(db.session(), org_ids)
    return {"organisations": len(org_ids), "planned": result.planned,
            "idle": result.idle, "failed": sorted(result.errors),
            "phases": result.phases.as_dict()}


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for the length of a planning job, as it was after.
    The pass makes hundreds of thousands of short-lived objects, nearly all freed by their
    reference counts; each time their number passed its thresholds the collector walked the
    young objects again, and now and then the whole heap (the app's modules and mappers): a
    quarter of the pass's CPU (0.9 of 3.6 s at 20,000 due invoices). What cycles the job
    leaves are collected once it is back on."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


class _Planned:
    def __init__(self) -> None:
        self.planned, self.idle = 0, 0
        self.errors: dict[int, Exception] = {}
        self.phases = plan.PassPhases()  # where the job's time went (the benchmark reads it)


def _plan(session: Session, org_ids: Sequence[int]) -> _Planned:
    result = _Planned()
    phases = result.phases
    with phases("read"):
        orgs = session.scalars(select(Organisation).where(
            Organisation.id.in_(list(org_ids))).order_by(Organisation.id)).all()
    now = clock.now()
    live = []
    with phases("review"):
        for org in orgs:
            if review.in_review(org):  # counted and told; nothing planned, sent or written
                result.planned += review.review_run(session, org, now)
            else:
                live.append(org)
        # Actions that waited for approval and whose invoice changed meanwhile (read only
        # where some wait).
        waiting = set(session.scalars(select(Action.org_id).where(
            Action.org_id.in_([org.id for org in live]),
            Action.status == approvals.AWAITING_APPROVAL).distinct())) if live else set()
        for org in live:
            if org.id in waiting:
                approvals.expire_changed(session, org, now)
    batch = plan.plan_orgs(session, live, now, phases)
    to_send: list[Action | ledger.Written] = []
    planned: list[dict[str, Any]] = []  # the activity log's entries, one INSERT for the batch
    with phases("audit"):
        for org in live:
            actions = batch.actions[org.id]
            planned.extend({"org_id": org.id, "kind": "action_planned", "at": now,
                            "message": f"Planned: {action.reason}",
                            "invoice_id": action.invoice_id, "action_id": action.id,
                            "data": ledger.about(action)} for action in actions)
            to_send.extend(approvals.hold_in_safe_mode(session, org, actions, now))
            result.planned += len(actions)
        ledger.audit_many(session, planned)
        for org_id, exc in batch.errors.items():
            ledger.audit(session, org_id, "planning_failed",
                         f"Planning stopped on this organisation's data"
                         f" ({exc.__class__.__name__}); its invoices are planned again on the"
                         " next pass", at=now, data={"error": exc.__class__.__name__})
        # Read before the commit expires them (after it, each organisation's id read again
        # would be a SELECT of its own: 10,000 in a pass over 10,000 organisations).
        sending = [(action.org_id, action.id) for action in to_send]
        live_ids = [org.id for org in live]
    with phases("commit"):
        session.commit()
    result.idle, result.errors = batch.idle, batch.errors
    with phases("fee_batches"):
        # Fee invoices many to a call, where open fees wait (one read for the batch); their
        # jobs find them done.
        for org_id in session.scalars(select(Action.org_id).where(
                Action.org_id.in_(live_ids),
                Action.kind.in_(execute.FEE_KINDS), Action.status.in_(ledger.OPEN_STATES),
                Action.scheduled_for <= now).distinct().order_by(Action.org_id)).all():
            fee_batches.run_for_org(org_id)
    with phases("enqueue"):
        enqueue_groups(action_groups(sending))
    return result


def plan_all_organisations(book_next: bool = True) -> int:
    """The daily run's planning fan-out: every connected organisation, PLAN_BATCH to a job,
    so the workers split them; each job plans what has come due (an organisation with
    nothing due costs almost nothing). Returns how many jobs were enqueued."""
    ids = list(db.session.scalars(select(Connection.org_id).where(
        Connection.status == "active").order_by(Connection.org_id)))
    now = clock.now()
    slot = int(now.timestamp()) // max(1, int(PLAN_EVERY.total_seconds()))
    for start in range(0, len(ids), PLAN_BATCH):
        chunk = ids[start:start + PLAN_BATCH]
        enqueue_once(plan_orgs, chunk, job_id=f"plan-orgs-{slot}-{chunk[0]}-{chunk[-1]}")
    if book_next:
        enqueue_once(plan_all_organisations, job_id=f"plan-all-{slot + 1}",
                     at=now + PLAN_EVERY)
    return (len(ids) + PLAN_BATCH - 1) // PLAN_BATCH


def plan_statements(org_id: int) -> int:
    """Once a day, after the day's sync: the customer statements now due (collect/statements.py),
    into the ledger and onto the queue like any other action."""
    session = db.session()
    org = session.get(Organisation, org_id)
    if org is None or review.in_review(org):
        return 0
    actions = statements.plan_statements(session, org, clock.now())
    to_send = approvals.hold_in_safe_mode(session, org, actions, clock.now())
    session.commit()
    for action in to_send:
        enqueue_action(action)
    return len(actions)


def send_approved(actions: Sequence[Action]) -> None:
    """Actions the owner approved (of one organisation) go out: fee invoices many to a call,
    as the daily run does, then one job per action."""
    if not actions:
        return
    fee_batches.run_for_org(actions[0].org_id)
    for action in actions:
        enqueue_action(action)


def enqueue_action(action: Action, replace_started: bool = False) -> None:
    enqueue_once(execute_action, action.id, job_id=f"action-{action.id}", retry=ACTION_RETRY,
                 replace_started=replace_started)


def execute_action(action_id: int) -> str:
    """One action (approved by hand, a statement, a swept one); the daily run's go in groups
    (`execute_actions`)."""
    session = db.session()
    action = session.get(Action, action_id)
    if action is None:
        log.warning("action %s vanished before it ran", action_id)
        return "gone"
    try:
        return _run(session, action)
    except outcomes.Deferred as deferred:
        at = clock.now() + timedelta(seconds=max(1.0, deferred.retry_after))
        enqueue_once(execute_action, action_id, at=at, retry=ACTION_RETRY,
                     job_id=f"action-{action_id}-at-{int(at.timestamp())}")
        log.info("org %s action %s: provider budget spent, runs again at %s", action.org_id,
                 action.key, at.isoformat(timespec="seconds"))
        if deferred.daily:
            _tell_owner_daily_limit(_organisation(session, action.org_id), clock.now())
        return "deferred"


def _run(session: Session, action: Action, touched: set[int] | None = None) -> str:
    """One action through collect.execute, once its organisation's connection allows it;
    raises outcomes.Deferred (the provider's budget) and outcomes.RetryLater (a passing
    failure, recorded) for the caller to book it again. With `touched`, the invoice's next
    action time is left for the caller to work out (collect.execute.execute_action)."""
    org = session.get(Organisation, action.org_id)
    assert org is not None
    connection = org.connection
    if connection is not None and connection.status == "needs_reconnect":
        # Paused, not given up: the action stays planned and the sweeper offers it again
        # until the owner reconnects (the invoice is re-read then, as always).
        log.info("org %s action %s: waits for the organisation to reconnect", org.id,
                 action.key)
        return "paused"
    if connection is None or connection.status != "active":
        ledger.finish(session, action, "skipped", "Organisation is not connected", clock.now(),
                      result={"reason": "disconnected"})
        session.commit()
        return "skipped"
    return execute.execute_action(session, action, connector_for(connection), clock.now(),
                                  owner=_owner(), touched=touched)


# Actions of one organisation to an execution job (the daily run's): queueing a job costs RQ
# about half a millisecond of CPU, more than planning the action did.
GROUP_SIZE = max(1, int(os.environ.get("DUNWELL_ACTION_GROUP", "50")))
# Which group job holds an open action (action id -> job id), for the sweeper: an action
# waiting its turn in a group is not stuck. A group's job clears its own when it ends.
GROUP_OF = "dunwell:action-group"


def action_groups(actions: Sequence[tuple[int, int]]) -> list[list[int]]:
    """(organisation id, action id) pairs as the groups their jobs run: one organisation's,
    in order, GROUP_SIZE to a group."""
    by_org: dict[int, list[int]] = {}
    for org_id, action_id in actions:
        by_org.setdefault(org_id, []).append(action_id)
    return [ids[start:start + GROUP_SIZE] for ids in by_org.values()
            for start in range(0, len(ids), GROUP_SIZE)]


def _group_job_id(action_ids: Sequence[int], at: datetime | None, tries: int) -> str:
    """Deterministic: the same group queued twice is one job."""
    digest = hashlib.blake2b(",".join(map(str, action_ids)).encode(), digest_size=6)
    return (f"action-group-{action_ids[0]}-{len(action_ids)}-{digest.hexdigest()}"
            + (f"-try-{tries}" if tries else "")
            + (f"-at-{int(at.timestamp())}" if at is not None else ""))


def enqueue_groups(groups: Sequence[Sequence[int]], at: datetime | None = None,
                   tries: int = 0) -> list[str]:
    """One `execute_actions` job per group (now in one pipeline, or booked for `at`); each
    action's group written down first, so the sweeper leaves waiting actions to their job.
    Returns the job ids."""
    groups = [list(group) for group in groups if group]
    if not groups:
        return []
    calls = [((group,), _group_job_id(group, at, tries)) for group in groups]
    redis_client().hset(GROUP_OF, mapping={action_id: job_id for (group,), job_id in calls
                                           for action_id in group})
    if at is None:
        enqueue_many_once(execute_actions, [((group, tries), job_id)
                                            for (group,), job_id in calls])
    else:
        for (group,), job_id in calls:
            enqueue_once(execute_actions, group, tries, job_id=job_id, at=at)
    return [job_id for _, job_id in calls]


def _retry_at(session: Session, action_ids: Sequence[int]) -> datetime:
    """When actions that failed for a passing reason run again: ACTION_RETRY's interval for
    the fewest attempts among them (a single action's job waits the same)."""
    attempts = min(session.scalars(select(Action.attempts).where(Action.id.in_(action_ids))),
                   default=1)
    intervals = ACTION_RETRY.intervals
    return clock.now() + timedelta(seconds=intervals[min(max(attempts, 1), len(intervals)) - 1])


def execute_actions(action_ids: Sequence[int], tries: int = 0) -> dict[str, int]:
    """The daily run's execution job: a group of one organisation's actions, each carried out
    as `execute_action` would (claimed in the ledger, so each runs once whoever else holds it;
    its log lines name its organisation, invoice or customer, and action). What one action
    meets stays its own: a skip or a dead end is recorded and the next goes on; a passing
    failure is recorded and the action joins a group run again after the retry interval; an
    unexpected error is logged, the others go on, and it is run again up to ACTION_RETRY's
    count (then the sweeper has it once its lease runs out). The provider's budget spent (a
    429, the tenant's cool-down) books this action and the rest of the group, untouched, for
    when it refills. Between two actions the group steps aside for a job queued at the front
    (a payment's webhook sync): the rest goes to the back of the queue."""
    session = db.session()
    ids = list(action_ids)
    counts: dict[str, int] = {}
    again: list[int] = []  # passing failures, recorded: run after the retry interval
    crashed: list[tuple[int, Exception]] = []
    moved: set[int] = set()  # booked into another group job
    touched: set[int] = set()  # invoices whose next action time is worked out at the end
    org_id: int | None = None

    def count(status: str, n: int = 1) -> None:
        counts[status] = counts.get(status, 0) + n

    ran = 0  # how many of the group were taken up, in order
    try:
        for index, action_id in enumerate(ids):
            ran = index + 1
            if index and front_job_waiting():
                rest = ids[index:]
                enqueue_groups([rest], tries=tries)
                moved.update(rest)
                log.info("org %s: %d action(s) of the group step aside for a job queued at the"
                         " front", org_id, len(rest))
                count("stepped_aside", len(rest))
                break
            action = session.get(Action, action_id)
            if action is None:
                log.warning("action %s vanished before it ran", action_id)
                count("gone")
                continue
            org_id, filed = action.org_id, ledger.filed_under(action)
            try:
                count(_run(session, action, touched))
            except outcomes.Deferred as deferred:
                rest = ids[index:]
                at = clock.now() + timedelta(seconds=max(1.0, deferred.retry_after))
                enqueue_groups([rest], at=at, tries=tries)
                moved.update(rest)
                log.info("org %s %s %s action %s: provider budget spent; it and the %d after it"
                         " in its group run again at %s", org_id, *filed, action_id,
                         len(rest) - 1, at.isoformat(timespec="seconds"))
                if deferred.daily:
                    _tell_owner_daily_limit(_organisation(session, org_id), clock.now())
                count("deferred", len(rest))
                break
            except outcomes.RetryLater:
                again.append(action_id)
                count("failed")
            except JobTimeoutException:
                raise  # the job's own time is up: what did not run stays for the sweeper
            except Exception as exc:  # this action's; the rest of the group goes on
                session.rollback()
                log.error("org %s %s %s action %s: stopped on %s: %s; the rest of its group"
                          " goes on", org_id, *filed, action_id, exc.__class__.__name__, exc)
                crashed.append((action_id, exc))
                count("error")
        _refresh_touched(session, org_id, touched)
        if again:
            enqueue_groups([again], at=_retry_at(session, again), tries=tries)
            moved.update(again)
        if crashed and tries < ACTION_RETRY.max:
            retry = [action_id for action_id, _ in crashed]
            enqueue_groups([retry], at=clock.now() + timedelta(seconds=ACTION_RETRY.intervals[
                min(tries, len(ACTION_RETRY.intervals) - 1)]), tries=tries + 1)
            moved.update(retry)
    finally:
        # What ran (or vanished) is off the sweeper's map; what a failure left unrun still
        # names this job, which the sweeper then finds over and rescues.
        done = [action_id for action_id in ids[:ran] if action_id not in moved]
        if done:
            redis_client().hdel(GROUP_OF, *done)
    if crashed:  # the job is marked failed: what stopped it stays visible
        raise GroupIncomplete(crashed)
    return counts


def _refresh_touched(session: Session, org_id: int | None, touched: set[int]) -> None:
    """The next action times of the invoices a group's actions touched, worked out once for
    the group (one read of each kind) rather than once per action. Until then an invoice's
    time is the one its action was planned at: a planning pass that meets it sooner plans
    nothing twice (the ledger's keys) and works the time out itself."""
    if not touched or org_id is None:
        return
    org = session.get(Organisation, org_id)
    if org is not None:
        plan.refresh_next_action(session, org, clock.now(), touched)
        session.commit()


class GroupIncomplete(Exception):
    """Actions of a group stopped on an unexpected error (the others ran)."""

    def __init__(self, crashed: Sequence[tuple[int, Exception]]) -> None:
        super().__init__("; ".join(f"action {action_id}: {exc.__class__.__name__}: {exc}"
                                   for action_id, exc in crashed))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _organisation(session: Session, org_id: int) -> Organisation:
    org = session.get(Organisation, org_id)
    assert org is not None
    return org


def _tell_owner_daily_limit(org: Organisation, now: datetime) -> None:
    """Once per provider day per organisation, in its activity log: why reminders have paused
    (the organisation page's banner reads it). The provider's day runs from 00:00 UTC, as the
    budget's counter does (connectors/ratelimit.py), not by the organisation's calendar."""
    day = now.astimezone(UTC).date().isoformat()
    if redis_client().set(f"dunwell:notice:daily-limit:{org.id}:{day}", "1", nx=True,
                          ex=2 * 86400):
        provider = PROVIDER_NAMES.get(org.connection.provider if org.connection else "",
                                      "The provider")
        ledger.audit(db.session(), org.id, "daily_limit",
                     f"{provider}'s daily API limit for this organisation is spent; the remaining "
                     "reminders wait and go out when it refills.", at=now,
                     data={"provider": provider})
        db.session.commit()


def _owner() -> str:
    """Who claims an action: the RQ worker and job (or this process, run inline)."""
    job = get_current_job()
    # A token per attempt: a worker that runs the same job again later is another claimant.
    token = secrets.token_hex(4)
    return f"{job.worker_name or 'worker'}/{job.id}/{token}" if job else \
        f"pid-{os.getpid()}/{token}"


def daily_run(org_id: int, local_day: str) -> None:
    """The day's work for one organisation at its send time; then book tomorrow's."""
    session = db.session()
    org = session.get(Organisation, org_id)
    if org is None:
        return
    try:
        if _active_connection(org) is not None:
            sync_org(org_id, plan_after=True)
            plan_statements(org_id)
    except RateLimited as exc:
        # The provider's budget is spent for now (approved actions spent the minute first, or
        # the day is used up): the day's run waits for it, as every other job does.
        at = clock.now() + timedelta(seconds=max(1.0, exc.retry_after))
        enqueue_once(daily_run, org_id, local_day, at=at,
                     job_id=f"daily-{org_id}-{local_day}-at-{int(at.timestamp())}")
        log.info("org %s: daily run of %s deferred to %s (%s)", org_id, local_day,
                 at.isoformat(timespec="seconds"), exc)
        if isinstance(exc, DailyLimitReached):
            _tell_owner_daily_limit(org, clock.now())
    finally:
        schedule_daily_run(org_id, after=date.fromisoformat(local_day))


def schedule_daily_run(org_id: int, after: date | None = None) -> datetime | None:
    """Book the next daily run at the policy's send time in the organisation's zone."""
    session = db.session()
    org = session.get(Organisation, org_id)
    if org is None:
        return None
    policy, calendar = book.policy_for(session, org), book.calendar_for(org)
    now = clock.now()
    day = calendar.today(now)
    if after is not None and day <= after:
        day = after + timedelta(days=1)
    moment = calendar.at_local(day, policy.send_time)
    if moment <= now:
        day += timedelta(days=1)
        moment = calendar.at_local(day, policy.send_time)
    session.commit()
    enqueue_once(daily_run, org_id, day.isoformat(), job_id=f"daily-{org_id}-{day.isoformat()}",
                 at=moment)
    return moment


SWEEP_EVERY = timedelta(seconds=float(os.environ.get("DUNWELL_SWEEP_SECONDS", "300")))
STUCK_AFTER = timedelta(seconds=float(os.environ.get("DUNWELL_STUCK_SECONDS", "900")))
# A sync lease taken or renewed longer ago than this with no sync of the book running is
# nobody's (end_lost_sync_runs); a sync records its run milliseconds after taking the lease.
ORPHAN_LEASE = min(timedelta(seconds=60), SYNC_LEASE / 2)


def sweep_ledger(book_next: bool = True) -> int:
    """Give every open action a job again: claims whose lease ran out (a worker died), and
    actions planned or failed long ago whose job was lost (Redis flushed, a worker killed
    before it claimed). Enqueueing is idempotent; a job a dead worker left "started" is
    replaced; the claim keeps any action from running twice."""
    session = db.session()
    now = shared_clock.now()  # leases are on the shared clock
    candidates = session.scalars(select(Action).where(or_(
        and_(Action.status == "claimed", Action.lease_until < now),
        and_(Action.status.in_(("planned", "failed")), Action.updated_at < now - STUCK_AFTER),
    )).order_by(Action.id)).all()
    # An open action waiting its turn in the queue (or for its retry), on its own or in a
    # group, keeps its job; read them all in a few round trips, so a long queue costs a few
    # calls, not one per action.
    redis = redis_client()
    groups = redis.hmget(GROUP_OF, [a.id for a in candidates]) if candidates else []
    jobs = Job.fetch_many([_text(group) if group else f"action-{a.id}"
                           for a, group in zip(candidates, groups, strict=True)],
                          connection=redis)
    stuck = [action for action, job in zip(candidates, jobs, strict=True)
             if action.status == "claimed" or job is None
             or job.get_status(refresh=False) in (*FINISHED, JobStatus.STARTED)]
    for action in stuck:
        enqueue_action(action, replace_started=True)
    if stuck:
        redis.hdel(GROUP_OF, *[action.id for action in stuck])  # on their own job now
        log.warning("sweeper: %d stuck action(s) given a job again", len(stuck))
    session.commit()
    end_lost_sync_runs()
    sweep_card_payments()
    if book_next:
        slot = int((now + SWEEP_EVERY).timestamp()) // max(1, int(SWEEP_EVERY.total_seconds()))
        enqueue_once(sweep_ledger, job_id=f"sweep-{slot}", at=now + SWEEP_EVERY)
    return len(stuck)


def end_lost_sync_runs() -> int:
    """End the sync records still "running" that no job is running: the execution that
    recorded the run is over while its own write of the outcome failed (the database went
    away under it). That is so when the run's job is over (finished, failed), waits for a
    retry or in its queue (an execution records a run of its own when it starts), or runs
    again with a newer run of its own; or when the job is gone (Redis lost it, or the run had
    no job) and the run is older than STUCK_AFTER."""
    session = db.session()
    now = clock.now()  # as the runs' own start times
    running = session.scalars(select(SyncRun).where(
        SyncRun.status == "running").order_by(SyncRun.id)).all()
    jobs = Job.fetch_many([run.job_id for run in running], connection=redis_client())
    newest = {run.job_id: run.id for run in running}  # in id order: the last one stays
    states = {run.id: job.get_status(refresh=False) if job is not None else None
              for run, job in zip(running, jobs, strict=True)}
    lost = [run for run in running
            if (states[run.id] is not None and (states[run.id] != JobStatus.STARTED
                                                or newest[run.job_id] != run.id))
            or (states[run.id] is None and run.started_at < now - STUCK_AFTER)]
    for run in lost:
        run.status, run.finished_at = "failed", now
        run.error = "The sync stopped without recording its end (its worker or job was lost)."
        log.warning("org %s: sync run %s ended by the sweeper: its execution ended without "
                    "recording it (job %s: %s)", run.org_id, run.id, run.job_id,
                    "gone" if states[run.id] is None else "running a newer run"
                    if states[run.id] == JobStatus.STARTED else JobStatus(states[run.id]).value)
    # Their leases go with them (a killed worker could not release its own), unless another
    # run of the same organisation is still going. So does a lease no run holds at all: its
    # sync ended but the release failed. A sync records its run right after it takes the
    # lease, and renews the lease with every page; one taken or renewed more than
    # ORPHAN_LEASE ago with no run going is nobody's.
    going = {run.org_id for run in running if run not in lost}
    freed = {run.org_id for run in lost} - going
    lease_now = shared_clock.now()  # leases are on the shared clock
    orphans = set(session.scalars(select(Organisation.id).where(
        Organisation.sync_lease_until > lease_now,
        Organisation.sync_lease_until < lease_now + SYNC_LEASE - ORPHAN_LEASE,
        Organisation.id.not_in(going or [0])))) - freed
    for org_id in sorted(orphans):
        log.warning("org %s: sync lease freed by the sweeper: no sync of the book is running"
                    " (its release had failed)", org_id)
    freed |= orphans
    if freed:
        session.execute(update(Organisation).where(Organisation.id.in_(freed)).values(
            sync_lease_until=None).execution_options(synchronize_session=False))
    session.commit()
    return len(lost)


def ensure_schedules() -> int:
    """Make sure every connected organisation has its next daily run booked (idempotent)."""
    ids = db.session.scalars(
        select(Connection.org_id).where(Connection.status == "active")).all()
    for org_id in ids:
        schedule_daily_run(org_id)
    # The planning fan-out's next pass (its chain books the one after; a lost booking is
    # booked again here).
    slot = int(clock.now().timestamp()) // max(1, int(PLAN_EVERY.total_seconds()))
    enqueue_once(plan_all_organisations, job_id=f"plan-all-{slot + 1}",
                 at=clock.now() + PLAN_EVERY)
    sweep_ledger()
    retention.check_retention()  # disconnected books whose grace has ended
    return len(ids)


def enqueue_sync(org_id: int) -> None:
    enqueue_once(sync_org, org_id, job_id=f"sync-org-{org_id}", retry=SYNC_RETRY)


# --- Webhooks: targeted syncs, the nightly reconcile, connections lost on the provider's side


def _connection_lost(org: Organisation, connection: Connection, exc: ConfigurationError,
                     what: str) -> None:
    """A revoked consent or a connection removed in the books: stop, and tell the owner."""
    db.session.rollback()
    connection.status, connection.last_error = "needs_reconnect", str(exc)[:500]
    provider = PROVIDER_NAMES.get(connection.provider, connection.provider)
    ledger.audit(db.session(), org.id, "connection_lost",
                 f"{provider} refused Dunwell during the {what} ({exc}); reconnect to resume.",
                 at=clock.now(), data={"provider": provider})
    db.session.commit()
    log.warning("org %s: %s connection lost during the %s: %s", org.id, connection.provider,
                what, exc)


def sync_webhook_changes(org_id: int) -> dict[str, Any]:
    """Apply the organisation's pending webhook events, then plan (and enqueue) what is due."""

    redis_client().incr(generation_key(org_id))  # later events get a job of their own
    session = db.session()
    org = session.get(Organisation, org_id)
    if org is None or (connection := _active_connection(org)) is None:
        return {"skipped": True}
    try:
        result = apply_webhook_events(session, org, connector_for(connection), clock.now())
    except ConfigurationError as exc:
        _connection_lost(org, connection, exc, "sync of webhook changes")
        return {"connection": "needs_reconnect"}
    schedule_reconcile(org_id)
    planned = plan_org(org_id) if result.events else 0
    return {"events": result.events, "mode": result.mode, "api_calls": result.api_calls,
            "changed_invoices": len(result.changed_invoice_ids),
            "closed": len(result.closed), "set_aside": len(result.set_aside),
            "planned": planned}


RECONCILE_AT = time(2, 30)  # the organisation's local time: quiet in the books, before send times


def reconcile_org(org_id: int, local_day: str | None = None) -> dict[str, Any]:
    """The nightly reconcile: count (and repair) what webhooks missed; book tomorrow's."""

    session = db.session()
    org = session.get(Organisation, org_id)
    if org is None:
        return {"skipped": True}
    try:
        connection = _active_connection(org)
        if connection is None:
            return {"skipped": True}
        job = get_current_job()
        now = clock.now()
        run = SyncRun(org_id=org.id, job_id=job.id if job else "inline", mode="reconcile",
                      status="running", started_at=now, progress={})
        session.add(run)
        session.commit()
        try:
            found = reconcile(session, org, connector_for(connection), now)
        except ConfigurationError as exc:
            run.status, run.error, run.finished_at = "failed", str(exc)[:500], clock.now()
            session.commit()
            _connection_lost(org, connection, exc, "nightly reconcile")
            return {"connection": "needs_reconnect"}
        run.status, run.finished_at = "done", clock.now()
        run.progress, run.api_calls = found, int(found["api_calls"])  # type: ignore[call-overload]
        missed = int(found["missed"])  # type: ignore[call-overload]
        shown = ", ".join(found["missed_invoices"][:10])  # type: ignore[index]
        ledger.audit(session, org.id, "reconcile",
                     f"Nightly reconcile: {missed} change(s) webhooks missed"
                     + (f" (invoices {shown})" if missed and shown else ""),
                     at=clock.now(), data={**found, "missed": missed})
        session.commit()
        if missed:
            plan_org(org_id)
        return found
    finally:
        schedule_reconcile(org_id, after=date.fromisoformat(local_day) if local_day else None)


def schedule_reconcile(org_id: int, after: date | None = None) -> datetime | None:
    """Book the next nightly reconcile at RECONCILE_AT in the organisation's zone (idempotent)."""
    org = db.session.get(Organisation, org_id)
    if org is None:
        return None
    calendar = book.calendar_for(org)
    now = clock.now()
    day = calendar.today(now)
    if after is not None and day <= after:
        day = after + timedelta(days=1)
    moment = calendar.at_local(day, RECONCILE_AT)
    if moment <= now:
        day += timedelta(days=1)
        moment = calendar.at_local(day, RECONCILE_AT)
    enqueue_once(reconcile_org, org_id, day.isoformat(),
                 job_id=f"reconcile-{org_id}-{day.isoformat()}", at=moment)
    return moment
