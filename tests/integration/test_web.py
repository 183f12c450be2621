"""The web side of connecting: refusals store nothing, disconnect revokes, members only."""

from __future__ import annotations

import json

import pytest
import requests
from sqlalchemy import func, select

from tests.integration import flows
from tests.integration.conftest import EMAIL, PASSWORD, create_user, run_jobs

pytestmark = pytest.mark.db


def _count(app, model) -> int:  # type: ignore[no-untyped-def]
    from store.db import db

    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model)) or 0


def test_cancel_at_xero_and_a_replayed_or_foreign_state_store_nothing(app, web) -> None:  # type: ignore[no-untyped-def]
    from store.models import Connection, Grant, Organisation

    create_user(app)
    http = requests.Session()
    flows.sign_in(http, web.url, EMAIL, PASSWORD)
    cancelled = flows.answer_consent(http, flows.start_connect(http, web.url), "deny")
    assert cancelled.status_code == 400 and "You cancelled the connection" in cancelled.text

    consent = flows.start_connect(http, web.url)
    landed = flows.answer_consent(http, consent, "allow")
    assert landed.status_code == 200
    callback = next(r.headers["Location"] for r in landed.history
                    if "/connect/xero/callback" in r.headers.get("Location", ""))
    again = http.get(callback)
    assert again.status_code == 400 and "expired or was not started here" in again.text
    stranger = requests.Session()
    create_user(app, "other@example.com", PASSWORD)
    flows.sign_in(stranger, web.url, "other@example.com", PASSWORD)
    forged = stranger.get(callback)
    assert forged.status_code == 400
    assert (_count(app, Organisation), _count(app, Connection), _count(app, Grant)) == (1, 1, 1)


def test_members_only_and_a_wrong_id_is_404(app, connected) -> None:  # type: ignore[no-untyped-def]
    create_user(app, "intruder@example.com", PASSWORD)
    intruder = requests.Session()
    flows.sign_in(intruder, connected.web.url, "intruder@example.com", PASSWORD)
    for path in (f"/orgs/{connected.org_id}", f"/orgs/{connected.org_id}/sync-status",
                 "/orgs/999"):
        assert intruder.get(connected.web.url + path).status_code == 404
    page = intruder.get(f"{connected.web.url}/orgs")
    token = flows.csrf_token(page.text)
    answer = intruder.post(f"{connected.web.url}/orgs/{connected.org_id}/disconnect",
                           data={"csrf_token": token})
    assert answer.status_code == 404
    no_token = connected.http.post(f"{connected.web.url}/orgs/{connected.org_id}/disconnect")
    assert no_token.status_code == 400  # CSRF


def test_disconnect_revokes_at_the_provider(app, connected, sandbox) -> None:  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import Connection, Grant

    state, _ = sandbox
    run_jobs(app)
    page = connected.http.get(f"{connected.web.url}/orgs/{connected.org_id}")
    assert "Disconnect" in page.text
    answer = connected.http.post(f"{connected.web.url}/orgs/{connected.org_id}/disconnect",
                                 data={"csrf_token": flows.csrf_token(page.text)})
    assert answer.status_code == 200 and "is disconnected" in answer.text
    with app.app_context():
        connection = db.session.scalars(select(Connection)).one()
        grant = db.session.scalars(select(Grant)).one()
        assert connection.status == "disconnected" and connection.grant_id is None
        assert grant.status == "revoked" and grant.refresh_token_enc is None
    assert not state.auth_events  # the consent is gone at Xero's side too
    assert "Reconnect Xero" in answer.text


def test_plan_command_prints_the_day_as_json(app, connected) -> None:  # type: ignore[no-untyped-def]
    from jobs.tasks import sync_org

    with app.app_context():
        sync_org(connected.org_id, plan_after=False)
    result = app.test_cli_runner().invoke(
        args=["plan", str(connected.org_id), "--as-of", "2026-11-24", "--json"])
    assert result.exit_code == 0, result.output
    planned = [json.loads(line) for line in result.output.splitlines()]
    assert planned and all(p["kind"] == "reminder" for p in planned)
    # Invoices already late get their first contact, the others their ladder step.
    assert all(p["reason"].startswith(("Reminder ", "Repeat reminder ", "First contact, "))
               for p in planned)
    assert any(p["reason"].startswith("First contact, ") for p in planned)
    assert {"invoice_number", "key", "step", "step_count", "scheduled_for"} <= set(planned[0])
    from store.models import Action

    assert _count(app, Action) == 0  # a dry run writes nothing


def test_the_statutory_interest_calculator_gives_the_cli_figures(app, connected) -> None:  # type: ignore[no-untyped-def]
    base = f"{connected.web.url}/orgs/{connected.org_id}/fees/quote"
    page = connected.http.get(base, params={
        "jurisdiction": "DE", "amount": "1000", "currency": "EUR", "due": "2026-01-01",
        "as_of": "2026-03-02"})
    # 1,000.00 x 10.27 % x 60 / 365 = 16.88, and the EUR 40 Pauschale.
    assert page.status_code == 200
    # The figures as the page writes money (the reader's locale, the debt's currency).
    assert "€16.88" in page.text and "€40.00" in page.text and "€56.88" in page.text
    refused = connected.http.get(base, params={
        "jurisdiction": "GB", "amount": "100", "currency": "GBP", "due": "2026-01-31",
        "as_of": "2026-03-31", "b2c": "on"})
    assert refused.status_code == 200
    # In plain words, as the page says it to an owner (no file, no option).
    assert "statutory interest and compensation on business debts only" in refused.text
    bad = connected.http.get(base, params={"jurisdiction": "DE", "amount": "lots",
                                           "currency": "EUR", "due": "2026-01-01",
                                           "as_of": "2026-03-02"})
    assert bad.status_code == 200 and 'role="alert"' in bad.text
    assert connected.http.get(f"{connected.web.url}/orgs/{connected.org_id + 1}/fees/quote"
                              ).status_code == 404
