"""The one mapping from what stopped an action to its ledger outcome.

A handler that decides not to act raises `Skip`; the provider's errors are classified once in
connectors/base.py. `verdict` says what each means for the ledger, and `record` writes it for one
action through the ledger's transitions (collect/ledger.py): every executor (one action at a
time in collect/execute.py, fee invoices in batches in collect/fee_batches.py) goes through here.

| what | outcome |
|---|---|
| `Skip` (the handler's own: no email address, paid meanwhile) | skipped, with its reason |
| `RateLimited` (the daily limit too) | planned again, not an attempt, after `retry_after` |
| `ProviderRejected` | skipped: "Provider refused" (reason `rejected`) |
| `ConfigurationError`, `NotFound` | dead: "Needs the owner" |
| `TransientError` | failed, retried by the job; dead after `MAX_ATTEMPTS` |

An email of ours whose answer was lost is not an error: the action is done, with the reason
recorded (`Effect.finish_sent`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from collect import ledger
from collect.ledger import ActionStatus
from connectors.base import (
    ConfigurationError,
    DailyLimitReached,
    NotFound,
    ProviderRejected,
    RateLimited,
    TransientError,
    error_class,
)
from store.models import Action

MAX_ATTEMPTS = 6


class Skip(Exception):
    """A handler's decision not to act (the reason is recorded, the message is the owner's)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class RetryLater(Exception):
    """The action failed for a passing reason; the job should run again."""


class Deferred(Exception):
    """The provider's budget is spent for now: run the action again after `retry_after`."""

    def __init__(self, retry_after: float, daily: bool = False) -> None:
        super().__init__(f"deferred for {retry_after:.0f} s")
        self.retry_after = retry_after
        self.daily = daily


@dataclass(frozen=True, slots=True)
class Verdict:
    """What an error means for the ledger: the status it leads to, and what the owner reads."""

    status: ActionStatus  # PLANNED: wait for the budget; FAILED: retry; else final
    message: str
    reason: str | None = None  # result["reason"], for a skip
    error: str | None = None  # action.error


OUTCOME_ERRORS = (Skip, RateLimited, ProviderRejected, ConfigurationError, NotFound,
                  TransientError)


def verdict(exc: Exception) -> Verdict:
    """The table above, for one error (one of OUTCOME_ERRORS)."""
    if isinstance(exc, Skip):
        return Verdict(ActionStatus.SKIPPED, exc.message, exc.reason)
    if isinstance(exc, RateLimited):  # also the daily limit: wait, not a failure
        return Verdict(ActionStatus.PLANNED, f"Waits for the provider's budget: {exc}")
    if isinstance(exc, ProviderRejected):
        return Verdict(ActionStatus.SKIPPED, f"Provider refused: {exc}", "rejected", str(exc))
    if isinstance(exc, ConfigurationError | NotFound):
        return Verdict(ActionStatus.DEAD, f"Needs the owner: {exc}", error=str(exc))
    if isinstance(exc, TransientError):
        return Verdict(ActionStatus.FAILED, f"Will retry: {exc}", error=str(exc))
    raise TypeError(f"no ledger outcome for {type(exc).__name__}") from exc


def record(session: Session, action: Action, exc: Exception, now: datetime) -> str:
    """Write the outcome of `exc` for one claimed action; the status it now has.

    Raises Deferred (the budget: handed back, committed) or RetryLater (a passing failure:
    recorded, committed) for the job to run the action again."""
    found = verdict(exc)
    if found.status is ActionStatus.PLANNED:
        assert isinstance(exc, RateLimited)
        ledger.hand_back(action, now)
        session.commit()
        raise Deferred(exc.retry_after, daily=isinstance(exc, DailyLimitReached)) from exc
    # The failure's class, which the pages word in the reader's language (app/events.py).
    classed = {"error_class": error_class(exc)} if found.error is not None else {}
    if found.status is ActionStatus.FAILED:
        final = action.attempts >= MAX_ATTEMPTS
        ledger.finish(session, action, "dead" if final else "failed",
                      f"{'Gave up' if final else 'Will retry'}: {exc}", now, result=classed,
                      error=found.error)
        session.commit()
        if final:
            return "dead"
        raise RetryLater(str(exc)) from exc
    ledger.finish(session, action, found.status.value, found.message, now,
                  result={**classed, **({} if found.reason is None else
                                        {"reason": found.reason})} or None,
                  error=found.error)
    return action.status
