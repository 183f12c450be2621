"""Credit control on the synced demo books: risk per customer, the backtest, a struggling
customer, credit limits and holds (with the stop-service signal), monthly statements."""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import requests
from sqlalchemy import func, select

from rules.messages import PORTAL_LINE
from tests.integration.conftest import run_jobs
from tests.integration.flows import csrf_token
from tests.integration.test_escalation_e2e import hook, smtp  # noqa: F401  (fixtures)

pytestmark = pytest.mark.db

TODAY = date(2026, 11, 24)  # the test clock's day in London


def _sync(app, org_id: int) -> None:  # type: ignore[no-untyped-def]
    from jobs.tasks import sync_org

    with app.app_context():
        sync_org(org_id, plan_after=False)


def _craft_worsening_customer(app, org_id: int) -> int:  # type: ignore[no-untyped-def]
    """A customer who paid 2 and 4 days late early in the year, then 20, 25 and 30; 500.00
    overdue 40 days; two broken payment plans (the unit test's history, in the database)."""
    from store.db import db
    from store.models import Contact, Invoice, Organisation, Payment, PaymentPlan

    with app.app_context():
        org = db.session.get(Organisation, org_id)
        contact = Contact(org_id=org_id, provider_id="crafted-1", name="Zeta Worsening Ltd",
                          email="accounts@zeta.example.com")
        db.session.add(contact)
        db.session.flush()
        history = [(date(2026, 1, 10), 2, "100.00"), (date(2026, 2, 10), 4, "100.00"),
                   (date(2026, 7, 1), 20, "200.00"), (date(2026, 8, 1), 25, "200.00"),
                   (date(2026, 9, 15), 30, "400.00")]
        for n, (due, late, total) in enumerate(history):
            invoice = Invoice(org_id=org_id, provider_id=f"crafted-inv-{n}", number=f"Z-{n}",
                              contact_id=contact.id, currency=org.base_currency,
                              issue_date=due - timedelta(days=30), due_date=due,
                              total=Decimal(total), amount_paid=Decimal(total),
                              amount_due=Decimal(0), status="paid")
            db.session.add(invoice)
            db.session.flush()
            db.session.add(Payment(org_id=org_id, provider_id=f"crafted-pay-{n}",
                                   invoice_id=invoice.id, amount=Decimal(total),
                                   currency=org.base_currency,
                                   paid_on=due + timedelta(days=late)))
        open_invoice = Invoice(org_id=org_id, provider_id="crafted-inv-open", number="Z-9",
                               contact_id=contact.id, currency=org.base_currency,
                               issue_date=date(2026, 9, 15), due_date=date(2026, 10, 15),
                               total=Decimal("500.00"), amount_paid=Decimal(0),
                               amount_due=Decimal("500.00"), status="open")
        db.session.add(open_invoice)
        db.session.flush()
        # Missed on 20 October, replaced on 10 November; the new one missed on 1 November+3.
        db.session.add(PaymentPlan(org_id=org_id, invoice_id=open_invoice.id,
                                   instalments=[{"due_date": "2026-10-20", "amount": "500.00"}],
                                   paid_before=Decimal(0), status="cancelled",
                                   created_at=datetime(2026, 10, 1, tzinfo=UTC)))
        db.session.add(PaymentPlan(org_id=org_id, invoice_id=open_invoice.id,
                                   instalments=[{"due_date": "2026-11-16", "amount": "500.00"}],
                                   paid_before=Decimal(0), status="active",
                                   created_at=datetime(2026, 11, 10, tzinfo=UTC)))
        db.session.commit()
        return contact.id


def backtest_beating_the_baselines(app, org_id: int) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """`dunwell customers backtest --json` for the organisation: the pay-date model's mean
    error below each baseline's (paid on the due date, due date + the customer's median
    lateness, both also moved past the cut-off), and the risk score's AUC above 0.75."""
    backtest = app.test_cli_runner().invoke(
        args=["customers", "backtest", str(org_id), "--json"])
    assert backtest.exit_code == 0, backtest.output
    figures: dict[str, Any] = json.loads(backtest.output)
    model = Decimal(figures["model_error_days"]["mean"])
    for baseline in ("due_date_error_days", "customer_median_error_days",
                     "due_date_after_cutoff_error_days",
                     "customer_median_after_cutoff_error_days"):
        assert model < Decimal(figures[baseline]["mean"]), figures
    assert figures["auc_very_late"] > 0.75, figures
    return figures

def test_risk_backtest_and_a_struggling_customer(app, connected) -> None:  # type: ignore[no-untyped-def]
    from collect.customers import cash_in_forecast, open_pay_dates, struggling_customers
    from store import clock
    from store.db import db
    from store.models import Organisation

    _sync(app, connected.org_id)
    runner = app.test_cli_runner()
    org = str(connected.org_id)

    # The demo's customers pay by habit (sandboxes/habits.py): walking forward a month at a
    # time through their year and a half of invoices, the pay-date model beats "paid on the due
    # date" and "due date + the customer's median lateness", even moved past the cut-off.
    figures = backtest_beating_the_baselines(app, connected.org_id)
    assert figures["cutoffs"] == 11 and figures["predictions"] > 300

    before = runner.invoke(args=["customers", "risk", org, "--json"])
    assert before.exit_code == 0, before.output
    demo = [json.loads(line) for line in before.output.splitlines()]
    assert len(demo) == 40
    assert [c["score"] for c in demo] == sorted((c["score"] for c in demo), reverse=True)
    # Overdue debt dominates: whoever has an invoice over 90 days overdue outranks everyone with
    # nothing overdue, whatever their history (which can add 40 points at most).
    long_overdue = [c["score"] for c in demo if c["oldest_overdue_days"] > 90]
    nothing_overdue = [c["score"] for c in demo if not c["oldest_overdue_days"]]
    assert long_overdue and nothing_overdue
    assert min(long_overdue) > 40 >= max(nothing_overdue)
    assert all(c["reasons"][0]["kind"] == "overdue" for c in demo if c["oldest_overdue_days"])

    contact_id = _craft_worsening_customer(app, connected.org_id)
    after = runner.invoke(args=["customers", "risk", org, "--json"])
    customers = [json.loads(line) for line in after.output.splitlines()]
    assert len(customers) == 41
    zeta = next(c for c in customers if c["contact_id"] == contact_id)
    assert (zeta["name"], zeta["score"], zeta["struggling"]) == ("Zeta Worsening Ltd", 42, True)
    # 40 days overdue: 40 x 40/90 = 18 for the age and 7 for 500.00 against the demo's median
    # invoice; expected 20 days late: 15 x 20/45 = 7; two broken plans: 10.
    assert zeta["reasons"] == [
        {"kind": "overdue", "points": 25, "days": 40, "amounts": {"GBP": "500.00"}},
        {"kind": "habit", "points": 7, "days": 20, "count": 5},
        {"kind": "broken", "points": 10, "plans": 2}]
    assert zeta["points"] == {"overdue": 25, "habit": 7, "broken": 10}
    # Own last five (2, 4, 20, 25, 30; w = 5/7) mixed with the organisation's: median 20.
    assert (zeta["predicted_days_late"], zeta["predicted_days_late_interval"]) == (20, [2, 27])

    text = runner.invoke(args=["customers", "risk", org])
    assert text.exit_code == 0, text.output
    line = next(line for line in text.output.splitlines() if "Zeta Worsening Ltd" in line)
    assert line.startswith(" 42  Zeta Worsening Ltd") and line.endswith(
        "£500.00 overdue, the oldest by 40 days (+25); expected to pay 20 days late (from 5"
        " paid invoices) (+7); 2 broken payment plans (+10)"), line
    assert text.output.splitlines()[-1] == "41 customer(s)"
    with app.app_context():
        organisation = db.session.get(Organisation, connected.org_id)
        flagged = struggling_customers(db.session, organisation, clock.now())
        assert contact_id in [c.contact.id for c in flagged]
        forecast = cash_in_forecast(db.session, organisation, clock.now())
        assert forecast.weeks[0].starts == date(2026, 11, 23)
        # No open invoice is expected before today, however overdue: each is expected from what
        # is known of invoices that were at least as late (rules/forecast.py).
        today = date(2026, 11, 24)
        dates = open_pay_dates(db.session, organisation, clock.now())
        assert len(dates) == 128 and all(d.expected >= today for d in dates)
        assert all(d.earliest <= d.expected <= d.latest for d in dates)
        weekly = sum(w.invoices for w in forecast.weeks)
        assert weekly == sum(1 for d in dates if d.expected < date(2027, 2, 22))
        assert forecast.weeks[0].invoices < weekly  # spread over the weeks, not all "now"
    assert runner.invoke(args=["customers", "risk", "999"]).output == \
        "Error: no organisation 999\n"


def test_the_backtest_is_cached_for_the_day(app, connected) -> None:  # type: ignore[no-untyped-def]
    from collect.customers import backtest_org
    from collect.providers import redis_client
    from store import clock
    from store.db import db
    from store.models import Organisation

    _sync(app, connected.org_id)
    with app.app_context():
        org = db.session.get(Organisation, connected.org_id)
        first = backtest_org(db.session, org, clock.now())
        key = f"dunwell:risk-backtest:{connected.org_id}"
        stored = json.loads(redis_client().get(key))
        assert stored["figures"] == first.as_json() and first.predictions > 300
        # The next view reads the figures kept, not a new walk.
        stored["figures"]["predictions"] = 1
        redis_client().set(key, json.dumps(stored))
        assert backtest_org(db.session, org, clock.now()).predictions == 1
        # The next day walks again (up to that day).
        later = backtest_org(db.session, org, clock.now() + timedelta(days=1))
        assert later.predictions != 1 and later.cutoffs >= first.cutoffs


def test_a_credit_hold_shows_a_banner_and_signals_stop_service(app, connected, hook) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    from store.db import db
    from store.models import Action, Contact, Invoice

    received, url = hook
    _sync(app, connected.org_id)
    runner = app.test_cli_runner()
    org = str(connected.org_id)
    with app.app_context():
        contact = db.session.scalars(select(Contact).join(
            Invoice, Invoice.contact_id == Contact.id).where(
            Contact.org_id == connected.org_id, Invoice.status == "open")
            .order_by(Contact.id)).first()
        contact_id, name = contact.id, contact.name
    page = f"{connected.web.url}/orgs/{org}/customers/{contact_id}"

    shown = connected.http.get(page)
    assert shown.status_code == 200 and 'id="credit-banner"' not in shown.text
    assert "Statement of account from" in shown.text  # the preview

    # A limit below the open balance: the banner says so.
    refused = connected.http.post(f"{page}/limit", data={
        "csrf_token": csrf_token(shown.text), "limit": "-5"})
    assert "A credit limit is a positive amount" in refused.text
    limited = connected.http.post(f"{page}/limit", data={
        "csrf_token": csrf_token(shown.text), "limit": "1.00"})
    assert "Over the credit limit: GBP" in limited.text and "against a limit of GBP 1.00" \
        in limited.text

    settings = runner.invoke(args=["customers", "settings", org, "--stop-service-on-hold",
                                   "--webhook-url", url])
    assert settings.exit_code == 0, settings.output
    missing = runner.invoke(args=["customers", "hold", org, str(contact_id)])
    assert missing.exit_code == 1 and "say why the customer is on hold" in missing.output
    held = runner.invoke(args=["customers", "hold", org, str(contact_id), "--reason",
                               "cheque bounced"])
    assert held.exit_code == 0, held.output
    again = runner.invoke(args=["customers", "hold", org, str(contact_id), "--reason",
                                "cheque bounced twice"])
    assert again.exit_code == 0, again.output
    run_jobs(app)
    with app.app_context():
        actions = db.session.scalars(select(Action).where(Action.kind == "stop_service")).all()
        assert len(actions) == 1  # one hold, one signal
        assert actions[0].status == "done", actions[0].error
        signal_id = actions[0].id
        # Filed under the customer, keyed by the customer and the hold's first day.
        assert (actions[0].key, actions[0].contact_id, actions[0].invoice_id) == (
            f"{connected.org_id}:contact{contact_id}:stop_service:hold:2026-11-24", contact_id,
            None)
        contact = db.session.get(Contact, contact_id)
        assert (contact.on_hold, contact.hold_reason, contact.stop_service) == (
            True, "cheque bounced twice", True)
    assert len(received) == 1
    headers, body = received[0]
    assert headers["Dunwell-Signature"].startswith("sha256=")
    assert json.loads(body)["contact"]["id"] == contact_id
    assert json.loads(body)["invoice"] is None  # a customer's signal borrows no invoice

    page_now = connected.http.get(page)
    assert "On credit hold: cheque bounced twice" in page_now.text
    # The signal is listed with the customer's own actions, not under one of their invoices.
    assert f'<tr id="action-{signal_id}">' in page_now.text.split('id="customer-actions"')[1]
    assert "Stop-service signal" in page_now.text
    listing = connected.http.get(f"{connected.web.url}/orgs/{org}/customers")
    assert listing.status_code == 200 and "on hold" in listing.text
    released = connected.http.post(f"{page}/hold", data={
        "csrf_token": csrf_token(page_now.text), "action": "release"})
    assert f"{name} is no longer on hold." in released.text
    assert connected.http.get(f"{connected.web.url}/orgs/{org}/customers/999999").status_code \
        == 404


def test_statements_go_once_a_month_in_the_customers_language(app, connected, smtp) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    from store.db import db
    from store.models import Action, Contact

    sink, port = smtp
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_STARTTLS=False,
                      BASE_URL=connected.web.url)
    _sync(app, connected.org_id)
    runner = app.test_cli_runner()
    org = str(connected.org_id)
    off = runner.invoke(args=["customers", "statements", org])
    assert off.output == "0 statement(s) planned\n"
    with app.app_context():
        german = db.session.scalars(select(Contact).where(
            Contact.org_id == connected.org_id, Contact.email.is_not(None))
            .order_by(Contact.id)).first()
        german.language = "de"
        german_name = german.name
        db.session.commit()
    # Today (24 November, 10:00 in London) is the statement day, from 09:00.
    runner.invoke(args=["customers", "settings", org, "--statement-day", "24",
                        "--statement-time", "09:00"])
    with app.app_context():  # the day's run plans them after its sync
        from jobs import tasks

        tasks.daily_run(connected.org_id, "2026-11-24")
        assert db.session.scalar(select(func.count()).select_from(Action).where(
            Action.kind == "statement")) == 40  # every demo customer has one open
        # Each filed under its customer, under none of their invoices.
        assert db.session.scalar(select(func.count(func.distinct(Action.contact_id))).where(
            Action.kind == "statement", Action.invoice_id.is_(None))) == 40
    assert runner.invoke(args=["customers", "statements", org]).output == \
        "0 statement(s) planned\n"
    run_jobs(app)
    with app.app_context():
        statuses = {status: count for status, count in db.session.execute(
            select(Action.status, func.count()).where(Action.kind == "statement")
            .group_by(Action.status))}
        assert statuses == {"done": 36, "skipped": 4}  # one customer in ten has no email
    subjects = sorted(" ".join(str(m["Subject"]).split()) for m in sink.messages)
    assert len(subjects) == 36
    assert subjects.count("Kontoauszug von Harbour Coffee Roasters Ltd zum 24. November 2026") \
        == 1
    assert subjects.count("Statement of account from Harbour Coffee Roasters Ltd on"
                          " 24 November 2026") == 35
    # The statement ends with the customer's own portal link under the portal's line in their
    # language; followed, it opens their portal, in German, without signing in.
    kontoauszug = next(m for m in sink.messages if str(m["Subject"]).startswith("Kontoauszug"))
    text = next(p for p in kontoauszug.walk() if p.get_content_type() == "text/plain") \
        .get_payload(decode=True).decode("utf-8")
    links = re.findall(rf"{re.escape(PORTAL_LINE['de'])} ({re.escape(connected.web.url)}"
                       r"/portal/\S+)", " ".join(text.split()))
    assert len(links) == 1, text
    portal_page = requests.get(links[0], timeout=10)
    assert portal_page.status_code == 200
    assert '<html lang="de"' in portal_page.text
    assert german_name in html.unescape(portal_page.text)
    # Its HTML shows the business's logo from the books above the text, served by that link.
    markup = next(p for p in kontoauszug.walk() if p.get_content_type() == "text/html") \
        .get_payload(decode=True).decode("utf-8")
    logo = re.findall(r'<img src="([^"]+)" alt="Harbour Coffee Roasters Ltd"', markup)
    assert len(logo) == 1 and logo[0].startswith(f"{links[0]}/logo?v=")
    assert requests.get(html.unescape(logo[0]), timeout=10).headers["Content-Type"] == \
        "image/png"
    run_jobs(app)
    assert len(sink.messages) == 36  # nothing sent twice
