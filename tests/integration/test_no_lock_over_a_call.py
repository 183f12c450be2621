"""While a worker waits on the provider, it holds no lock in our database: on SQLite another
connection can take the write lock, on PostgreSQL no claimed action's row is locked. A worker
that kept its fenced transaction open over the call held every other worker's writes (SQLite)
or the action's row (PostgreSQL) for as long as the provider took to answer."""

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


@pytest.mark.parametrize("provider", ["xero", "quickbooks"])
def test_no_lock_is_held_while_the_provider_is_asked(  # type: ignore[no-untyped-def]
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
        assert plan_org(connected.org_id) >= 3
        db.session.remove()
    run_jobs(app)
    clock.advance(hours=1)
    with app.app_context():
        sync_org(connected.org_id, plan_after=False)
        done = db.session.scalar(select(func.count()).select_from(Action).where(
            Action.org_id == connected.org_id, Action.kind == "reminder",
            Action.status == "done"))
        db.session.remove()
    assert done and done >= 3
    writes = [what for what, _ in calls if not what.startswith("GET")]
    assert len(writes) >= 2 * done, writes  # each reminder emailed and noted in the books
    held = [(what, locked) for what, locked in calls if locked is not None]
    assert held == [], f"{len(held)} of {len(calls)} calls ran under a lock: {held[:5]}"
