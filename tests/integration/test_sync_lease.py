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
