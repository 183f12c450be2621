"""The organisation page while its books sync: the counts so far and a progress bar."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.integration.test_daily_limit_banner import _signed_in

pytestmark = pytest.mark.db


def test_a_running_sync_shows_a_progress_bar_with_its_counts(
        app, connected) -> None:  # type: ignore[no-untyped-def]
    """The organisation page: a bar (no value: the total is unknown until the last page) while
    a sync is queued or running, none once it is done."""
    import re

    from jobs.tasks import sync_org
    from store.db import db
    from store.models import SyncRun

    with app.app_context():
        sync_org(connected.org_id, plan_after=False)
    client = _signed_in(app)

    def bar() -> str:
        page = client.get(f"/orgs/{connected.org_id}").text
        found = re.search(r"<progress id=\"sync-bar\"[^>]*>", page)
        assert found is not None
        return found.group(0)

    assert " hidden" in bar()  # done
    with app.app_context():
        run = db.session.scalars(select(SyncRun).where(SyncRun.org_id == connected.org_id)
                                 .order_by(SyncRun.id.desc())).first()
        run.status, run.progress = "running", {"contacts": 12, "invoices": 3000}
        db.session.commit()
    assert " hidden" not in bar() and "value=" not in bar()
    page = client.get(f"/orgs/{connected.org_id}").text
    assert "12 contacts · 3000 invoices · 0 payments" in page
