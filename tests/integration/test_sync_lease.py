"""One sync per organisation at a time: the lease a sync takes on its organisation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

pytestmark = pytest.mark.db


def _runs(org_id: int) -> int:
    from store.db import db
    from store.models import SyncRun

    return db.session.scalar(select(func.count()).select_from(SyncRun).where(
        SyncRun.org_id == org_id)) or 0


def test_a_sync_while_another_holds_the_book_is_skipped_and_records_nothing(
        app, connected) -> None:  # type: ignore[no-untyped-def]
    from jobs.tasks import SYNC_LEASE, _take_sync_lease, sync_org
    from store import clock
    from store.db import db
    from store.models import Organisation

    with app.app_context():
        assert _take_sync_lease(db.session, connected.org_id) is True
        # A second worker starting a sync of the same book now: it does not get the lease.
        assert _take_sync_lease(db.session, connected.org_id) is False
        assert sync_org(connected.org_id, plan_after=False) == {
            "skipped": True, "reason": "another sync is running"}
        assert _runs(connected.org_id) == 0
        # The holder's worker died: once its lease has run out, the next sync goes on...
        org = db.session.get(Organisation, connected.org_id)
        org.sync_lease_until = clock.now() - timedelta(seconds=1)
        db.session.commit()
        result = sync_org(connected.org_id, plan_after=False)
        assert result["mode"] == "full", result
        assert _runs(connected.org_id) == 1
        # ...and gives the book back when it ends.
        db.session.expire_all()
        assert db.session.get(Organisation, connected.org_id).sync_lease_until is None
        assert SYNC_LEASE >= timedelta(minutes=1)


def test_a_failed_sync_gives_its_lease_back(app, connected) -> None:  # type: ignore[no-untyped-def]
    from jobs import tasks
    from store.db import db
    from store.models import Organisation, SyncRun

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("the provider went away")

    with app.app_context():
        original = tasks.sync_organisation
        tasks.sync_organisation = broken
        try:
            with pytest.raises(RuntimeError):
                tasks.sync_org(connected.org_id, plan_after=False)
        finally:
            tasks.sync_organisation = original
        db.session.expire_all()
        assert db.session.get(Organisation, connected.org_id).sync_lease_until is None
        assert db.session.scalars(select(SyncRun.status).where(
            SyncRun.org_id == connected.org_id)).all() == ["failed"]


def test_the_sweeper_frees_the_lease_of_a_run_whose_worker_was_lost(
        app, connected) -> None:  # type: ignore[no-untyped-def]
    from jobs.tasks import STUCK_AFTER, _take_sync_lease, end_lost_sync_runs
    from store import clock
    from store.db import db
    from store.models import Organisation, SyncRun

    with app.app_context():
        assert _take_sync_lease(db.session, connected.org_id)
        db.session.add(SyncRun(org_id=connected.org_id, job_id="sync-org-lost", mode="pending",
                               status="running", progress={},
                               started_at=clock.now() - STUCK_AFTER - timedelta(minutes=1)))
        db.session.commit()
        assert end_lost_sync_runs() == 1
        db.session.expire_all()
        assert db.session.get(Organisation, connected.org_id).sync_lease_until is None
        assert _take_sync_lease(db.session, connected.org_id) is True


def test_a_release_whose_connection_the_database_dropped_is_tried_on_a_new_one(
        app, connected, monkeypatch, caplog) -> None:  # type: ignore[no-untyped-def]
    """A backend terminated (or the server restarted) while the lease was being released:
    the lease must not stay behind, turning every sync of the book away until it runs out."""
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.orm import Session

    from jobs import tasks
    from store.db import db
    from store.models import Organisation

    drops = []

    class Dropping(Session):
        def execute(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            if len(drops) < tasks.RELEASE_TRIES - 1:
                drops.append(1)
                raise OperationalError("UPDATE organisations", {}, Exception(
                    "terminating connection due to administrator command"),
                    connection_invalidated=True)
            return super().execute(*args, **kwargs)

    with app.app_context():
        assert tasks._take_sync_lease(db.session, connected.org_id)
        monkeypatch.setattr(tasks, "Session", Dropping)
        tasks._release_sync_lease(connected.org_id)
        assert len(drops) == tasks.RELEASE_TRIES - 1
        db.session.expire_all()
        assert db.session.get(Organisation, connected.org_id).sync_lease_until is None
        assert f"org {connected.org_id}: the database dropped the connection" in caplog.text

        # Dropped on every try: given up with a warning that says who frees it.
        assert tasks._take_sync_lease(db.session, connected.org_id)
        drops.clear()
        monkeypatch.setattr(tasks, "RELEASE_TRIES", 2)
        monkeypatch.setattr(Dropping, "execute", lambda self, *a, **k: (_ for _ in ()).throw(
            OperationalError("UPDATE organisations", {}, Exception("gone"),
                             connection_invalidated=True)))
        tasks._release_sync_lease(connected.org_id)
        db.session.expire_all()
        assert db.session.get(Organisation, connected.org_id).sync_lease_until is not None
        assert (f"org {connected.org_id}: the sync lease could not be released (the sweeper"
                " frees it") in caplog.text


def test_the_sweeper_frees_a_lease_no_running_sync_holds(
        app, connected, clock) -> None:  # type: ignore[no-untyped-def]
    """A sync that ended but whose release failed left its lease: once it is older than
    ORPHAN_LEASE with no run of the book going, the sweeper frees it. A lease just taken (its
    run about to be recorded) and a lease whose run is going are kept."""
    from jobs.tasks import ORPHAN_LEASE, SYNC_LEASE, _take_sync_lease, end_lost_sync_runs
    from store.db import db
    from store.models import Organisation, SyncRun

    def lease() -> object:
        db.session.expire_all()
        return db.session.get(Organisation, connected.org_id).sync_lease_until

    with app.app_context():
        assert _take_sync_lease(db.session, connected.org_id)
        db.session.add(SyncRun(org_id=connected.org_id, job_id="sync-org-ended", mode="full",
                               status="done", progress={}, started_at=clock()))
        db.session.commit()
        assert end_lost_sync_runs() == 0
        assert lease() == clock() + SYNC_LEASE  # just taken: kept
        clock.advance(seconds=(ORPHAN_LEASE - timedelta(seconds=1)).total_seconds())
        end_lost_sync_runs()
        assert lease() is not None  # not yet
        clock.advance(seconds=2)
        end_lost_sync_runs()
        assert lease() is None  # nobody's: freed
        assert _take_sync_lease(db.session, connected.org_id) is True

        # A run going (its job not known to Redis, but younger than STUCK_AFTER) keeps it.
        db.session.add(SyncRun(org_id=connected.org_id, job_id="sync-org-going", mode="full",
                               status="running", progress={}, started_at=clock()))
        db.session.commit()
        clock.advance(seconds=(ORPHAN_LEASE + timedelta(seconds=5)).total_seconds())
        assert end_lost_sync_runs() == 0
        assert lease() is not None
