"""What a worker holds in our database while it waits on the provider.

A sync holds nothing: another connection can take SQLite's write lock at each page's call (a
sync that kept a write pending over a page's call held every other worker's writes for as long
as the provider took to answer). A provider write of an action is made inside its fenced
transaction: the action's row (PostgreSQL) or the database (SQLite) stays locked until the
write's outcome is committed, so no other worker can claim the action while the write is in
flight, even when this worker stalls past its lease there (collect/ledger.py, `renew`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from tests.conftest import FakeClock, LiveServer
from tests.integration.conftest import run_jobs

pytestmark = pytest.mark.db


def _locked_elsewhere(database_url: str) -> str | None:
    """What another connection finds locked right now (None: nothing)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        other = sqlite3.connect(str(url.database), timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # the write lock, at once or not at all
            other.execute("ROLLBACK")
            return None
        except sqlite3.OperationalError as exc:
            return f"the database: {exc}"
        finally:
            other.close()
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=False) as other:
        try:
            other.execute("SELECT id FROM actions WHERE status = 'claimed' FOR UPDATE NOWAIT")
            return None
        except psycopg.errors.LockNotAvailable as exc:
            return f"a claimed action's row: {exc}".strip()
        finally:
            other.rollback()


@pytest.fixture
def calls() -> list[tuple[str, str | None]]:
    """(method and path, what was locked) for every call a provider sandbox received."""
    return []


def _served(box: Any, create_app: Any, prefix: str, database_url: str,
            calls: list[tuple[str, str | None]]) -> Iterator[tuple[object, LiveServer]]:
    """The seeded sandbox served, looking at our database each time a call of its API
    (under `prefix`) arrives."""
    box.seed_demo(box.config.clock().date())
    flask_app = create_app(box)
    inner = flask_app.wsgi_app

    def looking(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO", "").startswith(prefix):
            calls.append((f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}",
                          _locked_elsewhere(database_url)))
        return inner(environ, start_response)

    flask_app.wsgi_app = looking
    server = LiveServer(flask_app)
    yield box, server
    server.stop()


@pytest.fixture
def sandbox(clock: FakeClock, database_url: str, calls: list[tuple[str, str | None]]
            ) -> Iterator[tuple[object, LiveServer]]:
    from sandboxes import xero

    box = xero.XeroSandbox(xero.SandboxConfig(clock=clock, per_minute_limit=100_000))
    yield from _served(box, xero.create_app, "/api.xro/", database_url, calls)


@pytest.fixture
def qbo_sandbox(clock: FakeClock, database_url: str, calls: list[tuple[str, str | None]]
                ) -> Iterator[tuple[object, LiveServer]]:
    from sandboxes import quickbooks

    box = quickbooks.QuickBooksSandbox(quickbooks.SandboxConfig(clock=clock,
                                                                per_minute_limit=100_000))
    yield from _served(box, quickbooks.create_app, "/v3/company/", database_url, calls)


def _reads(what: str) -> bool:
    """A call that reads (QuickBooks' queries are POSTs)."""
    return what.startswith("GET") or what.endswith("/query")


@pytest.mark.parametrize("provider", ["xero", "quickbooks"])
def test_a_sync_holds_no_lock_over_a_call_and_an_actions_write_holds_its_own(  # type: ignore[no-untyped-def]
        app, web, clock, calls, provider: str) -> None:
    """A first sync, the daily run's actions (re-reading each invoice, emailing it, noting it
    in the books), and an incremental sync."""
    from jobs.tasks import plan_org, sync_org
    from store.db import db
    from store.models import Action
    from tests.integration.conftest import connect

    if provider == "quickbooks":
        clock.set(datetime(2026, 11, 24, 18, 0, tzinfo=UTC))  # 10:00 in California
    connected = connect(app, web, provider)
    with app.app_context():
        sync_org(connected.org_id, plan_after=False)
        db.session.remove()
    syncing = list(calls)
    with app.app_context():
        assert plan_org(connected.org_id) >= 3
        db.session.remove()
    calls.clear()
    run_jobs(app)
    acting = list(calls)
    calls.clear()
    clock.advance(hours=1)
    with app.app_context():
        sync_org(connected.org_id, plan_after=False)
        done = db.session.scalar(select(func.count()).select_from(Action).where(
            Action.org_id == connected.org_id, Action.kind == "reminder",
            Action.status == "done"))
        db.session.remove()
    syncing += calls
    assert done and done >= 3
    assert syncing and all(_reads(what) for what, _ in syncing), syncing
    held = [(what, locked) for what, locked in syncing if locked is not None]
    assert held == [], f"{len(held)} of {len(syncing)} sync calls ran under a lock: {held[:3]}"
    writes = [(what, locked) for what, locked in acting if not _reads(what)]
    assert len(writes) >= 2 * done, writes  # each reminder emailed and noted in the books
    unguarded = [what for what, locked in writes if locked is None]
    assert unguarded == [], f"{len(unguarded)} of {len(writes)} writes left the action free"
