"""Actions as the engineer on call sees them: the log lines of an action's execution carry its
organisation, invoice and action ids, and its outcome is counted in the metrics once its
transaction commits, never before (an outcome rolled back did not happen, and the retry that
records it again must count once)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.orm import Session

from observability import context
from observability.metrics import observe_action

T = TypeVar("T")

PENDING = "dunwell_outcomes_to_count"  # in session.info: (kind, status, result)


def count_when_committed(session: Session, kind: str, status: str,
                         result: Mapping[str, Any] | None) -> None:
    session.info.setdefault(PENDING, []).append((kind, status, result))


@event.listens_for(Session, "after_commit")
def _count(session: Session) -> None:
    for outcome in session.info.pop(PENDING, []):
        observe_action(*outcome)


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(PENDING, None)


def with_action_ids(run: Callable[..., T]) -> Callable[..., T]:
    """For `run(session, action, ...)`: the action's ids bound while it runs."""

    @functools.wraps(run)
    def bound_run(session: Session, action: Any, *args: Any, **kwargs: Any) -> T:
        with context.bound(org_id=action.org_id, invoice_id=action.invoice_id,
                           action_id=action.id):
            return run(session, action, *args, **kwargs)

    return bound_run
