"""Dunwell's retries against the Xero sandbox's real Idempotency-Key window: within it the key
replays the first answer; past it the sandbox forgets the key (nothing is faked away) and only
Dunwell's own lookup stands between a retry and a second email or note."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from sandboxes.faults import FaultInjector
from tests.conftest import FakeClock, LiveServer
from tests.integration.test_ledger_exactly_once import DROPS_TO_FAIL, Books, _action

pytestmark = pytest.mark.db
WINDOW_SECONDS = 600


@pytest.fixture
def sandbox(clock: FakeClock) -> Iterator[tuple[object, LiveServer]]:
    """The Xero sandbox with a ten-minute Idempotency-Key window, behind a fault injector."""
    from sandboxes.xero import SandboxConfig, XeroSandbox, create_app

    state = XeroSandbox(SandboxConfig(clock=clock, per_minute_limit=100_000,
                                      idempotency_window_seconds=WINDOW_SECONDS))
    state.seed_demo(clock().date())
    faults = FaultInjector(create_app(state), "xero", seed=3)
    server = LiveServer(faults)
    server.faults = faults  # type: ignore[attr-defined]
    yield state, server
    server.stop()


@pytest.mark.parametrize("pause_minutes", [5, 20])
def test_a_reminder_retried_inside_or_past_the_window_emails_and_notes_once(
        app, web, sandbox, qbo_sandbox, clock, pause_minutes) -> None:  # type: ignore[no-untyped-def]
    from collect.outcomes import RetryLater
    from jobs.tasks import execute_action
    from store.db import db

    books = Books("xero", app, web, sandbox, qbo_sandbox)
    state = books.state
    with app.app_context():
        invoice = books.open_invoice(app)
        action = _action(invoice, "reminder", clock(), channel="provider_email",
                         step_index=0, step_count=3, template="friendly")
        provider_id = invoice.provider_id
        emails = books.emails(provider_id)
        books.faults.add("lost_answer", method="POST", path=books.paths["email"],
                         times=DROPS_TO_FAIL)
        books.faults.add("lost_answer", method="POST|PUT", path=books.paths["note"],
                         times=DROPS_TO_FAIL)
        with pytest.raises(RetryLater):
            execute_action(action.id)
        assert books.emails(provider_id) == emails + 1  # it went; the answer did not come back
        email_key = (books.tenant, f"{action.key}:email")
        answered_at = state.idempotent[email_key][4]  # type: ignore[attr-defined]

        clock.advance(minutes=pause_minutes)
        inside = clock() < answered_at + timedelta(seconds=WINDOW_SECONDS)
        assert inside == (pause_minutes * 60 < WINDOW_SECONDS)
        with pytest.raises(RetryLater):
            execute_action(action.id)
        db.session.refresh(action)
        assert action.result["emailed"] == "found" and action.result["writing"] == "noted"
        assert len(books.notes(provider_id)) == 1

        clock.advance(minutes=pause_minutes)
        assert execute_action(action.id) == "done"
        db.session.refresh(action)
        assert action.status == "done" and action.result["noted"] is True
    assert books.emails(provider_id) == emails + 1
    assert len(books.notes(provider_id)) == 1
