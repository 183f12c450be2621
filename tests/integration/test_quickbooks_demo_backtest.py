"""The QuickBooks demo's books have a paid history by per-customer habit, as the Xero demo's do
(sandboxes/habits.py): synced through the connector, the risk backtest walks forward through
it, the pay-date model beats "paid on the due date" and "due date + the customer's median
lateness", the score ranks the very late invoices, and the customers page shows the figure."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tests.conftest import FakeClock, LiveServer
from tests.integration.conftest import connect
from tests.integration.test_customers import backtest_beating_the_baselines

pytestmark = pytest.mark.db


@pytest.fixture
def qbo_sandbox(clock: FakeClock) -> Iterator[tuple[object, LiveServer]]:
    """The QuickBooks sandbox as the demo serves it: with the customers' paid history."""
    from sandboxes.quickbooks import QuickBooksSandbox, SandboxConfig, create_app

    state = QuickBooksSandbox(SandboxConfig(clock=clock, per_minute_limit=100_000,
                                            paid_history=True))
    state.seed_demo(clock().date())
    server = LiveServer(create_app(state))
    yield state, server
    server.stop()


def test_the_quickbooks_demos_backtest_beats_both_baselines(  # type: ignore[no-untyped-def]
        app, web, clock, qbo_sandbox) -> None:
    from jobs.tasks import sync_org

    clock.set(datetime(2026, 11, 24, 18, 0, tzinfo=UTC))  # 10:00 in California
    box = qbo_sandbox[0]
    connected = connect(app, web, "quickbooks")
    history = [i for i in box.invoices(connected.tenant_id)
               if str(i.get("DocNumber", "")).startswith("H")]
    assert len(history) > 100 and all(i["Balance"] == 0 for i in history)
    with app.app_context():
        sync_org(connected.org_id, plan_after=False)
    figures = backtest_beating_the_baselines(app, connected.org_id)
    assert figures["cutoffs"] >= 10 and figures["predictions"] > 100, figures

    page = connected.http.get(f"{web.url}/orgs/{connected.org_id}/customers")
    assert page.status_code == 200
    assert "Tested on your own books" in page.text and 'id="backtest-auc"' in page.text
