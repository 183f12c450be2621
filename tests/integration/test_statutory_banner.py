"""Statutory interest is never silently dead: a GB statutory rule whose current period is
unverified shows a banner on the settings page and the dashboard; an owner confirms the rate
(stored with who and when, in the activity log) and the interest is planned from then on;
`dunwell rates status` lists what needs a row or a check."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from tests.integration import flows
from tests.integration.conftest import connect, run_jobs

pytestmark = pytest.mark.db

STATUTORY = {"version": 2, "reminder_steps": [{"offset_days": 7}],
             "late_fees": [{"id": "statutory", "rule": {"kind": "statutory_interest",
                                                         "jurisdiction": "GB"}}]}


def test_an_unverified_rate_is_named_and_an_owner_confirms_it(app, web, clock) -> None:  # type: ignore[no-untyped-def]
    from app.settings.services import save_policy
    from app.setup.services import first_week
    from rules import policy_from_json
    from store.db import db
    from store.models import AuditEvent, Organisation, RateConfirmation

    clock.set(datetime(2026, 12, 1, 10, 0, tzinfo=UTC))  # the GB table's July-December row
    connected = connect(app, web, "xero", live=False)
    run_jobs(app)
    with app.app_context():
        org = db.session.get(Organisation, connected.org_id)
        save_policy(org, "the test", policy_from_json(STATUTORY), clock())
        before = [f for f in first_week(db.session, org, clock(), charge_earlier=True).top
                  if f.action.kind == "interest"]
    assert before == []  # the unverified period charges nothing...
    http, base = connected.http, f"{web.url}/orgs/{connected.org_id}"
    # Saving the policy on the settings page says so at once, in plain words.
    page = http.get(base + "/settings").text
    form = {k: v for k, v in _fields(page).items()}
    saved = http.post(base + "/settings", data=form)
    assert "Policy saved" in saved.text
    assert "Statutory interest (GB) will charge nothing for" in saved.text
    for path in ("/settings", "/dashboard"):
        page = http.get(base + path).text
        # ...and says so, naming the jurisdiction and the period.
        assert "Statutory interest (GB) charges nothing for" in page
        assert "not yet confirmed by a second source" in page and "Confirm 11.75 %" in page
    csrf = flows.csrf_token(page)
    refused = http.post(f"{base}/setup/rate", data={
        "csrf_token": csrf, "jurisdiction": "GB", "start": "2026-01-01", "choice": "confirmed"})
    assert "does not wait for a decision" in refused.text
    done = http.post(f"{base}/setup/rate", data={
        "csrf_token": csrf, "jurisdiction": "GB", "start": "2026-07-01", "choice": "confirmed",
        "next": "settings"})
    assert done.status_code == 200 and "Statutory interest (GB) charges nothing" not in done.text
    with app.app_context():
        org = db.session.get(Organisation, connected.org_id)
        row = db.session.scalar(select(RateConfirmation))
        assert (row.jurisdiction, row.period_start.isoformat(), row.choice) == (
            "GB", "2026-07-01", "confirmed")
        assert row.confirmed_by is not None and row.confirmed_at is not None
        logged = db.session.scalars(select(AuditEvent.message).where(
            AuditEvent.kind == "rate_confirmed")).all()
        assert logged == ["owner@example.com confirmed the GB statutory rate of 11.75 % for"
                          " 2026-07-01..2026-12-31"]
        after = [f for f in first_week(db.session, org, clock(), charge_earlier=True).top
                 if f.action.kind == "interest"]
    assert after, "once confirmed, the statutory interest is planned"


def test_rates_status_lists_the_periods_that_need_a_row_or_a_check(app, clock) -> None:  # type: ignore[no-untyped-def]
    clock.set(datetime(2026, 12, 1, 10, 0, tzinfo=UTC))
    result = app.test_cli_runner().invoke(args=["rates", "status"])
    assert result.exit_code == 0, result.output
    assert "GB 2026-07-01..2026-12-31: needs a check: 11.75 % B2B" in result.output
    assert "period(s) need a row or a check" in result.output


def _fields(page: str) -> dict[str, str]:
    """The policy form as the page fills it in (its first POST form with a step field)."""
    form = next(f for f in flows.forms_of(page)
                if any((i.get("name") or "").startswith("reminder_steps.")
                       for i in f["inputs"]))
    values: dict[str, str] = {}
    for field in form["inputs"]:
        name, kind = field.get("name"), (field.get("type") or "text").lower()
        if not name or kind in ("submit", "button"):
            continue
        if kind == "checkbox" and "checked" not in field:
            continue
        values[name] = field.get("value") or ("on" if kind == "checkbox" else "")
    for name, options in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', page,
                                    re.S):
        chosen = re.search(r'<option value="([^"]*)"\s+selected', options) \
            or re.search(r'<option value="([^"]*)"', options)
        if chosen:
            values[name] = chosen.group(1)
    return values
