"""Deposits on quotes end to end, against both sandboxes over HTTP: Xero Quotes and QuickBooks
Estimates synced incrementally, an accepted quote at or above the threshold reminded of its
deposit exactly once, declined, unaccepted and small quotes left alone, and the deposit ending
when the provider says so (QuickBooks: a linked deposit invoice paid; Xero: the quote
invoiced)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from tests.integration.conftest import connect, run_jobs
from tests.integration.test_escalation_e2e import smtp  # noqa: F401  (fixture)

pytestmark = pytest.mark.db

# Xero's first demo tenant keeps its books in London, QuickBooks' first company in California:
# each clock is 10:00 on Tuesday 24 November 2026 where the books are.
SETUPS: dict[str, dict[str, Any]] = {
    "xero": {"now": datetime(2026, 11, 24, 10, 0, tzinfo=UTC), "currency": "GBP",
             "threshold": "5000"},
    "quickbooks": {"now": datetime(2026, 11, 24, 18, 0, tzinfo=UTC), "currency": "USD",
                   "threshold": "300"},
}


def _deposits(currency: str, threshold: str, applies_to: str = "quotes") -> dict[str, Any]:
    return {"threshold": threshold, "currency": currency, "applies_to": applies_to,
            "reminder_offsets": [0, 7],
            "schedule": [{"percent": "30"}, {"percent": "30", "due_offset_days": 30},
                         {"percent": "40", "due_offset_days": 60}]}


def _set_deposits(app, org_id: int, deposits: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    from rules import policy_from_json
    from store.db import db
    from store.models import Policy

    with app.app_context():
        row = db.session.scalar(select(Policy).where(Policy.org_id == org_id))
        body = {**row.body, "deposits": deposits}
        policy_from_json(body)
        row.body = json.loads(json.dumps(body))
        db.session.commit()


def _sync(app, org_id: int) -> dict[str, int]:  # type: ignore[no-untyped-def]
    from jobs.tasks import sync_org

    with app.app_context():
        return dict(sync_org(org_id, plan_after=False)["counts"])  # type: ignore[arg-type]


def _plan(app, org_id: int) -> int:  # type: ignore[no-untyped-def]
    from jobs import tasks

    with app.app_context():
        return tasks.plan_org(org_id)


def _quotes(app, org_id: int) -> dict[str, tuple[str, Decimal, date | None]]:  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import Quote

    with app.app_context():
        return {q.number: (q.status, q.total, q.accepted_on) for q in db.session.scalars(
            select(Quote).where(Quote.org_id == org_id))}


def _reminders(app) -> list[tuple[str, str, str, Decimal | None]]:  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import Action

    with app.app_context():
        return [(a.key, a.status, a.reason or "", a.amount) for a in db.session.scalars(
            select(Action).where(Action.kind == "quote_deposit_reminder").order_by(Action.id))]


def _subjects(sink) -> list[str]:  # type: ignore[no-untyped-def]
    return [str(m["Subject"]) for m in sink.messages if "quote" in str(m["Subject"])]


@pytest.mark.parametrize("provider", ["xero", "quickbooks"])
def test_an_accepted_quote_is_reminded_of_its_deposit_once(  # type: ignore[no-untyped-def]
        app, web, sandbox, qbo_sandbox, clock, smtp, provider) -> None:  # noqa: F811
    from store.db import db
    from store.models import Quote, QuoteDeposit

    setup = SETUPS[provider]
    clock.set(setup["now"])
    sink, port = smtp
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_STARTTLS=False)
    connected = connect(app, web, provider)
    org_id = connected.org_id

    # Without a rule for quotes, a sync spends no call on them.
    assert "quotes" not in _sync(app, org_id)
    _set_deposits(app, org_id, _deposits(setup["currency"], setup["threshold"]))
    assert _sync(app, org_id)["quotes"] > 0
    quotes = _quotes(app, org_id)
    if provider == "xero":
        box, _ = sandbox
        tenant = connected.tenant_id
        assert quotes == {
            "QU-0001": ("accepted", Decimal("11400.00"), date(2026, 11, 23)),
            "QU-0002": ("sent", Decimal("5040.00"), None),
            "QU-0003": ("declined", Decimal("14400.00"), None),
            "QU-0004": ("draft", Decimal("960.00"), None),
            "QU-0005": ("invoiced", Decimal("3120.00"), None)}
        accepted, deposit, due = "QU-0001", Decimal("3420.00"), "2026-11-23"
    else:
        box, _ = qbo_sandbox
        tenant = connected.tenant_id
        assert quotes == {
            "5001": ("accepted", Decimal("3000.00"), date(2026, 11, 20)),
            "5002": ("sent", Decimal("480.00"), None),
            "5003": ("declined", Decimal("400.00"), None),
            "5004": ("invoiced", Decimal("475.00"), None)}
        accepted, deposit, due = "5001", Decimal("900.00"), "2026-11-20"

    # Incremental: unchanged, only the quote at the bookmark's second is read again (both
    # providers compare whole seconds); one quote changed, that one with it.
    assert _sync(app, org_id)["quotes"] == 1
    small = _accept_a_small_quote(provider, box, tenant)
    # Xero reads the quote at the bookmark's second again with the changed one; QuickBooks
    # reads every kind's changes in one CDC answer, whose bookmarks move with the answer, so
    # only the changed quote.
    assert _sync(app, org_id)["quotes"] == (2 if provider == "xero" else 1)
    assert _quotes(app, org_id)[small][0] == "accepted"

    assert _plan(app, org_id) >= 1
    assert _plan(app, org_id) == 0  # planning again plans nothing new
    with app.app_context():
        quote_id = db.session.scalar(select(Quote.id).where(Quote.org_id == org_id,
                                                            Quote.number == accepted))
        rows = db.session.scalars(select(QuoteDeposit).where(QuoteDeposit.org_id == org_id)
                                  ).all()
        assert [(r.quote_id, r.milestone, r.milestones, r.amount, r.due_date.isoformat(),
                 r.met_on) for r in rows] == [(quote_id, 1, 3, deposit, due, None)]
    currency = setup["currency"]
    assert _reminders(app) == [
        (f"{org_id}:quote{quote_id}:deposit:0:0", "planned",
         f"Deposit (30 %) of quote {accepted}: {currency} {deposit} due {due}", deposit)]

    run_jobs(app)
    _plan(app, org_id)
    run_jobs(app)
    assert [status for _, status, _, _ in _reminders(app)] == ["done"]
    assert _subjects(sink) == [f"The deposit for quote {accepted}: {currency} {deposit} due {due}"]

    # A week on, the second reminder is due, unless the provider says the deposit is settled.
    _settle(provider, box, tenant, accepted, deposit)
    clock.advance(days=7)
    _sync(app, org_id)
    _plan(app, org_id)
    run_jobs(app)
    assert len(_subjects(sink)) == 1
    with app.app_context():
        row = db.session.scalars(select(QuoteDeposit).where(QuoteDeposit.quote_id == quote_id)
                                 ).one()
        quote = db.session.get(Quote, quote_id)
        if provider == "quickbooks":  # the linked deposit invoice was paid: met that day
            assert (quote.status, row.met_on) == ("accepted", date(2026, 11, 24))
        else:  # Xero links no invoice: the quote was invoiced, and is chased no more
            assert (quote.status, row.met_on) == ("invoiced", None)

    page = connected.http.get(
        f"{connected.web.url}/orgs/{org_id}/customers/{quote.contact_id}")
    assert page.status_code == 200 and 'id="quote-deposits"' in page.text
    assert accepted in page.text


def _accept_a_small_quote(provider: str, box, tenant: str) -> str:  # type: ignore[no-untyped-def]
    """A quote below the threshold, accepted: it owes no deposit."""
    if provider == "xero":
        contact = next(c for c in box.contacts(tenant) if c.get("EmailAddress")
                       and c["IsCustomer"])
        made = box.add_quote(tenant, contact["ContactID"], "100.00", status="SENT")
        box.set_quote_status(tenant, made["QuoteID"], "ACCEPTED")
        return str(made["QuoteNumber"])
    customer = next(c for c in box.customers(tenant) if c.get("PrimaryEmailAddr"))
    made = box.create(tenant, "Estimate", {
        "CustomerRef": {"value": customer["Id"]},
        "Line": [{"Amount": "120.00", "DetailType": "SalesItemLineDetail",
                  "SalesItemLineDetail": {}}]})
    box.set_estimate_status(tenant, made["Id"], "Accepted")
    return str(made["DocNumber"])


def _settle(provider: str, box, tenant: str, number: str, deposit: Decimal) -> None:  # type: ignore[no-untyped-def]
    if provider == "xero":
        quote = next(q for q in box.tenant(tenant).quotes.values() if q["QuoteNumber"] == number)
        box.set_quote_status(tenant, quote["QuoteID"], "INVOICED")
        return
    estimate = next(e for e in box.company(tenant).records["Estimate"].values()
                    if e["DocNumber"] == number)
    invoice = box.create(tenant, "Invoice", {
        "CustomerRef": {"value": estimate["CustomerRef"]["value"]},
        "LinkedTxn": [{"TxnId": estimate["Id"], "TxnType": "Estimate"}],
        "Line": [{"Amount": str(deposit), "DetailType": "SalesItemLineDetail",
                  "SalesItemLineDetail": {}, "Description": f"Deposit on estimate {number}"}]})
    box.pay_invoice(tenant, invoice["Id"], deposit, on=date(2026, 11, 24))
    assert box.company(tenant).records["Estimate"][estimate["Id"]]["TxnStatus"] == "Accepted"


def test_declined_and_small_quotes_get_no_deposit_reminder(  # type: ignore[no-untyped-def]
        app, web, sandbox, clock) -> None:
    """Under applies_to both, only accepted quotes at or above the threshold are chased."""
    from store.db import db
    from store.models import QuoteDeposit

    clock.set(SETUPS["xero"]["now"])
    connected = connect(app, web, "xero")
    box, _ = sandbox
    quote = next(q for q in box.tenant(connected.tenant_id).quotes.values()
                 if q["QuoteNumber"] == "QU-0001")
    box.set_quote_status(connected.tenant_id, quote["QuoteID"], "SENT")
    box.set_quote_status(connected.tenant_id, quote["QuoteID"], "DECLINED")
    _sync(app, connected.org_id)
    _set_deposits(app, connected.org_id, _deposits("GBP", "5000", applies_to="both"))
    assert _sync(app, connected.org_id)["quotes"] == 5
    assert _quotes(app, connected.org_id)["QU-0001"][0] == "declined"
    _accept_a_small_quote("xero", box, connected.tenant_id)
    _sync(app, connected.org_id)
    _plan(app, connected.org_id)
    assert _reminders(app) == []
    with app.app_context():
        assert db.session.scalars(select(QuoteDeposit)).all() == []


@pytest.mark.parametrize("provider", ["xero", "quickbooks"])
def test_a_quote_withdrawn_after_planning_is_not_reminded(  # type: ignore[no-untyped-def]
        app, web, sandbox, qbo_sandbox, clock, smtp, provider) -> None:  # noqa: F811
    """The executor reads the quote again right before sending: deleted (Xero) or rejected
    (QuickBooks) since the plan, the reminder is skipped and nothing is sent."""
    setup = SETUPS[provider]
    clock.set(setup["now"])
    sink, port = smtp
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_STARTTLS=False)
    connected = connect(app, web, provider)
    _sync(app, connected.org_id)
    _set_deposits(app, connected.org_id, _deposits(setup["currency"], setup["threshold"]))
    _sync(app, connected.org_id)
    _plan(app, connected.org_id)
    [(key, status, _, _)] = _reminders(app)
    assert status == "planned"
    if provider == "xero":
        box, _ = sandbox
        quote = next(q for q in box.tenant(connected.tenant_id).quotes.values()
                     if q["QuoteNumber"] == "QU-0001")
        box.set_quote_status(connected.tenant_id, quote["QuoteID"], "DELETED")
        gone = "deleted"
    else:
        box, _ = qbo_sandbox
        estimate = next(e for e in box.company(connected.tenant_id).records["Estimate"].values()
                        if e["DocNumber"] == "5001")
        box.set_estimate_status(connected.tenant_id, estimate["Id"], "Rejected")
        gone = "declined"
    run_jobs(app)
    assert [(k, s) for k, s, _, _ in _reminders(app)] == [(key, "skipped")]
    assert _subjects(sink) == []
    assert _quotes(app, connected.org_id)[
        "QU-0001" if provider == "xero" else "5001"][0] == gone
