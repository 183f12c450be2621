"""Credit control wired end to end on the synced demo books: deposits and milestones tracked
and reminded through the ledger, a retainer drawn down and a top-up asked for, a customer over
the limit signalled with shorter terms recommended, new customers on the stricter variant, and
the dashboard's credit panels."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from sqlalchemy import select

from tests.integration.conftest import run_jobs
from tests.integration.flows import csrf_token
from tests.integration.test_customers import _craft_worsening_customer, _sync
from tests.integration.test_escalation_e2e import hook, smtp  # noqa: F401  (fixtures)

pytestmark = pytest.mark.db

TODAY = date(2026, 11, 24)  # the test clock's day in London


def _set_policy(app, org_id: int, **sections: object) -> None:  # type: ignore[no-untyped-def]
    from rules import policy_from_json
    from store.db import db
    from store.models import Policy

    with app.app_context():
        row = db.session.scalar(select(Policy).where(Policy.org_id == org_id))
        body = {**row.body, **sections}
        policy_from_json(body)  # the schema accepts it, as the settings page would check
        row.body = json.loads(json.dumps(body))
        db.session.commit()


def _plan(app, org_id: int) -> int:  # type: ignore[no-untyped-def]
    """Recompute every invoice's next action under the new policy, then the planner's pass."""
    from collect.plan import refresh_next_action
    from jobs import tasks
    from store import clock
    from store.db import db
    from store.models import Organisation

    with app.app_context():
        refresh_next_action(db.session, db.session.get(Organisation, org_id), clock.now())
        db.session.commit()
        return tasks.plan_org(org_id)


def _money(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), ROUND_HALF_UP)


def test_deposit_milestones_are_tracked_and_reminded_once(app, connected, smtp) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    from store.db import db
    from store.models import Action, ExpectedPayment, Invoice, Payment

    sink, port = smtp
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_STARTTLS=False)
    _sync(app, connected.org_id)
    with app.app_context():
        invoices = [i for i in db.session.scalars(select(Invoice).where(
            Invoice.org_id == connected.org_id, Invoice.status == "open",
            Invoice.currency == "GBP")) if i.contact and i.contact.email]
        big = max(invoices, key=lambda i: (i.total, i.id))
        big_id, threshold, total = big.id, big.total, big.total
        issued, number = big.issue_date, big.number
        paid = sum((p.amount for p in db.session.scalars(select(Payment).where(
            Payment.invoice_id == big.id, Payment.status == "active"))), Decimal(0))
        qualifying = sum(1 for i in db.session.scalars(select(Invoice).where(
            Invoice.org_id == connected.org_id, Invoice.currency == "GBP",
            Invoice.status != "paid"))  # (paid ones, the demo's history, ask for nothing)
            if i.total >= threshold)
    assert (number, total, issued, paid, qualifying) == (
        "INV-0050", Decimal("14220.00"), date(2026, 11, 23), Decimal(0), 1)
    runner = app.test_cli_runner()
    org = str(connected.org_id)
    bad = runner.invoke(args=["customers", "credit-policy", org, "--deposits", json.dumps({
        "threshold": "100", "currency": "GBP", "schedule": [{"percent": "30"}]})])
    assert bad.exit_code == 1 and "must add up to 100, not 30" in bad.output
    assert runner.invoke(args=["customers", "credit-policy", org, "--deposits", "{"]).output \
        .startswith("Error: not JSON")
    made = runner.invoke(args=["customers", "credit-policy", org, "--deposits", json.dumps({
        "threshold": str(_money(threshold)), "currency": "GBP", "reminder_offsets": [0, 7],
        "schedule": [{"percent": "30"}, {"percent": "70", "due_offset_days": 30}]})])
    assert made.exit_code == 0, made.output
    assert made.output == (
        'deposits: {"channel": "dunwell_email", "currency": "GBP", "reminder_offsets": [0, 7],'
        ' "schedule": [{"due_offset_days": 0, "percent": "30"}, {"due_offset_days": 30,'
        ' "percent": "70"}], "threshold": "14220.00"}\n')
    _plan(app, connected.org_id)
    with app.app_context():
        rows = db.session.scalars(select(ExpectedPayment).where(
            ExpectedPayment.org_id == connected.org_id).order_by(ExpectedPayment.milestone)).all()
        assert [(r.invoice_id, r.milestone, r.amount, r.cumulative, r.due_date, r.met_on)
                for r in rows] == [
            (big_id, 1, Decimal("4266.00"), Decimal("4266.00"), date(2026, 11, 23), None),
            (big_id, 2, Decimal("9954.00"), Decimal("14220.00"), date(2026, 12, 23), None)]
        [action] = db.session.scalars(select(Action).where(
            Action.kind == "deposit_reminder")).all()
        assert (action.key, action.reason, action.amount, action.status) == (
            f"{connected.org_id}:{big_id}:deposit:0:0",
            "Deposit (30 %) of INV-0050: GBP 4266.00 1 day overdue", Decimal("4266.00"),
            "planned")
        # The deposit's next reminder is a week after it fell due: Monday 30 November.
        assert db.session.get(Invoice, big_id).next_action_at == datetime.fromisoformat(
            "2026-11-30T09:00:00+00:00")
    run_jobs(app)
    _plan(app, connected.org_id)  # planning again changes nothing
    run_jobs(app)
    with app.app_context():
        [action] = db.session.scalars(select(Action).where(
            Action.kind == "deposit_reminder")).all()
        assert action.status == "done", action.error
    deposit_mail = [m for m in sink.messages if "deposit" in str(m["Subject"])]
    assert [str(m["Subject"]) for m in deposit_mail] == [
        "The deposit on invoice INV-0050: GBP 4266.00 due 2026-11-23"]
    body = deposit_mail[0].get_payload(decode=True) if not deposit_mail[0].is_multipart() \
        else deposit_mail[0].get_payload(0).get_payload(decode=True)
    assert b"is paid in 2 parts. The deposit (30 %, GBP 4266.00) is due on 2026-11-23" in body

    # The customer pays the deposit (and a little more): the milestone is met that day.
    from collect.book import Book
    from collect.credit_requests import track_expected_payments
    from store.models import Organisation

    with app.app_context():
        db.session.add(Payment(org_id=connected.org_id, provider_id="deposit-paid",
                               invoice_id=big_id, amount=Decimal("5000.00"), currency="GBP",
                               paid_on=TODAY))
        db.session.flush()
        invoice = db.session.get(Invoice, big_id)
        book = Book(db.session, db.session.get(Organisation, connected.org_id), [invoice])
        assert track_expected_payments(db.session, book, [invoice], datetime.now().astimezone()) \
            == 2
        assert [r.met_on for r in db.session.scalars(select(ExpectedPayment).where(
            ExpectedPayment.invoice_id == big_id).order_by(ExpectedPayment.milestone))] == [
            TODAY, None]
        contact_id = invoice.contact_id
        db.session.commit()
    page = connected.http.get(
        f"{connected.web.url}/orgs/{connected.org_id}/customers/{contact_id}")
    assert 'id="milestones"' in page.text and "23/12/2026" in page.text  # a British book


def _customer_with_open_invoices(app, org_id: int):  # type: ignore[no-untyped-def]
    """The first customer (by id) with an email address and something open."""
    from store.db import db
    from store.models import Contact, Invoice

    with app.app_context():
        contact = db.session.scalars(select(Contact).join(
            Invoice, Invoice.contact_id == Contact.id).where(
            Contact.org_id == org_id, Invoice.status == "open", Contact.email.is_not(None))
            .order_by(Contact.id)).first()
        invoices = db.session.scalars(select(Invoice).where(
            Invoice.contact_id == contact.id, Invoice.status.in_(("open", "paid")))
            .order_by(Invoice.issue_date, Invoice.id)).all()
        return contact.id, contact.name, [(i.id, i.number, i.issue_date, i.total, i.status)
                                          for i in invoices]


def test_a_retainer_is_drawn_down_and_a_top_up_asked_for_once(app, connected, smtp) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    from store.db import db
    from store.models import Action

    sink, port = smtp
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_STARTTLS=False)
    _sync(app, connected.org_id)
    contact_id, _, invoices = _customer_with_open_invoices(app, connected.org_id)
    start = invoices[0][2]
    runner = app.test_cli_runner()
    org = str(connected.org_id)
    refused = runner.invoke(args=["customers", "retainer", org, str(contact_id),
                                  "--threshold", "500", "--top-up-to", "400"])
    assert refused.exit_code == 1 and "tops up to more than its threshold" in refused.output
    made = runner.invoke(args=["customers", "retainer", org, str(contact_id), "--threshold",
                               "500", "--top-up-to", "2000", "--start", start.isoformat()])
    assert made.exit_code == 0, made.output
    topped = runner.invoke(args=["customers", "top-up", org, str(contact_id), "1000",
                                 "--received", start.isoformat()])
    # The same arithmetic by hand: 1000 in, then each invoice draws what is left of it.
    balance = Decimal(1000)
    for _, _, _, total, _ in invoices:
        balance -= min(total, balance)
    assert topped.exit_code == 0 and topped.output == f"balance GBP {_money(balance)}\n"
    assert balance < 500
    assert runner.invoke(args=["customers", "top-up", org, "999999", "5"]).exit_code == 1

    _plan(app, connected.org_id)
    _plan(app, connected.org_id)  # twice: one request
    with app.app_context():
        [request] = db.session.scalars(select(Action).where(
            Action.kind == "retainer_top_up")).all()
        asked = Decimal(2000) - balance
        assert (request.key, request.amount, request.status, request.contact_id,
                request.invoice_id) == (
            f"{connected.org_id}:contact{contact_id}:retainer_top_up:1", _money(asked),
            "planned", contact_id, None)
    run_jobs(app)
    with app.app_context():
        request = db.session.get(Action, request.id)
        assert request.status == "done", request.error
    subjects = [" ".join(str(m["Subject"]).split()) for m in sink.messages
                if "retainer" in str(m["Subject"])]
    assert subjects == [f"Please top up your retainer with Harbour Coffee Roasters Ltd:"
                        f" GBP {_money(asked)}"]
    page = connected.http.get(f"{connected.web.url}/orgs/{org}/customers/{contact_id}")
    assert f"£{_money(balance):,.2f}" in page.text and 'id="retainer-history"' in page.text
    assert page.text.count("<td>Invoice ") == len(
        [i for i in invoices if i[2] >= start and i[4] in ("open", "paid")])

    # Paid in through the page: the balance rises; a new request only if it falls short again.
    paid = connected.http.post(f"{connected.web.url}/orgs/{org}/customers/{contact_id}/retainer"
                               "/top-up", data={"csrf_token": csrf_token(page.text),
                                                "amount": "1500.00"})
    assert "Top-up recorded." in paid.text
    assert f"£{_money(balance + 1500):,.2f}" in paid.text
    bad = connected.http.post(f"{connected.web.url}/orgs/{org}/customers/{contact_id}/retainer"
                              "/top-up", data={"csrf_token": csrf_token(page.text),
                                               "amount": "-3"})
    assert "A top-up is an amount above zero." in bad.text
    _plan(app, connected.org_id)
    with app.app_context():
        keys = sorted(a.key for a in db.session.scalars(select(Action).where(
            Action.kind == "retainer_top_up")))
        expected = [f"{connected.org_id}:contact{contact_id}:retainer_top_up:1"]
        if balance + 1500 < 500:
            expected.append(f"{connected.org_id}:contact{contact_id}:retainer_top_up:2")
        assert keys == expected


def test_over_the_limit_signals_stop_service_and_recommends_shorter_terms(app, connected, hook) -> None:  # type: ignore[no-untyped-def]  # noqa: F811,E501
    from store.db import db
    from store.models import Action, AuditEvent, Contact, Invoice

    received, url = hook
    _sync(app, connected.org_id)
    contact_id, name, _ = _customer_with_open_invoices(app, connected.org_id)
    runner = app.test_cli_runner()
    org = str(connected.org_id)
    _set_policy(app, connected.org_id, terms_on_hold={"due_in_days": 7, "when": "over_limit"})
    assert runner.invoke(args=["customers", "settings", org, "--stop-service-on-hold",
                               "--webhook-url", url]).exit_code == 0
    assert runner.invoke(args=["customers", "limit", org, "1.00", "--contact",
                               str(contact_id)]).exit_code == 0
    _plan(app, connected.org_id)
    _plan(app, connected.org_id)
    run_jobs(app)
    with app.app_context():
        [signal] = db.session.scalars(select(Action).where(Action.kind == "stop_service")).all()
        assert signal.status == "done", signal.error
        assert signal.details["trigger"] == "credit_limit"
        assert db.session.get(Contact, contact_id).stop_service is True
        # Every open invoice counts from the first (over a limit of 1.00): those with terms
        # longer than 7 days are recommended 7.
        open_rows = db.session.scalars(select(Invoice).where(
            Invoice.contact_id == contact_id, Invoice.status == "open")).all()
        # Filed under the customer, keyed by the day the first open invoice took them over.
        first_over = min((i.issue_date, i.id) for i in open_rows
                         if i.currency == "GBP" and i.amount_due > 0)[0]
        assert (signal.key, signal.contact_id, signal.invoice_id) == (
            f"{connected.org_id}:contact{contact_id}:stop_service:limit:{first_over}",
            contact_id, None)
        longer = sorted(i.id for i in open_rows
                        if i.due_date and i.issue_date and (i.due_date - i.issue_date).days > 7)
        told = db.session.scalars(select(AuditEvent).where(
            AuditEvent.kind == "terms_recommended").order_by(AuditEvent.invoice_id)).all()
        assert [e.invoice_id for e in told] == longer and longer
        first = db.session.get(Invoice, longer[0])
        assert told[0].message == (
            f"{name} is over the credit limit: give this invoice 7 days (due"
            f" {first.issue_date + timedelta(days=7)}"
            f" instead of {first.due_date}); change it in the books")
    assert len(received) == 1 and json.loads(received[0][1])["contact"]["id"] == contact_id
    page = connected.http.get(f"{connected.web.url}/orgs/{org}/customers/{contact_id}")
    assert "Over the credit limit: GBP" in page.text and 'id="terms"' in page.text
    assert page.text.count("over the credit limit</td>") == len(longer)


def test_new_customers_start_on_the_stricter_variant(app, connected) -> None:  # type: ignore[no-untyped-def]
    from collect.book import Book
    from store.db import db
    from store.models import Invoice, Organisation, Payment

    _sync(app, connected.org_id)
    _set_policy(app, connected.org_id, new_customer_policy={"paid_on_time": 3, "policy": {
        "reminder_steps": [{"offset_days": -10}, {"offset_days": 0},
                           {"offset_days": 3, "tone": "firm"}]}})
    with app.app_context():
        org = db.session.get(Organisation, connected.org_id)
        invoices = db.session.scalars(select(Invoice).where(
            Invoice.org_id == org.id, Invoice.status == "open")).all()
        # Counted by hand: paid invoices whose last payment is on or before the due date.
        on_time: dict[int, int] = {}
        for paid in db.session.scalars(select(Invoice).where(
                Invoice.org_id == org.id, Invoice.status == "paid")):
            last = max((p.paid_on for p in db.session.scalars(select(Payment).where(
                Payment.invoice_id == paid.id, Payment.status == "active"))), default=None)
            if last is not None and paid.contact_id and last <= paid.due_date:
                on_time[paid.contact_id] = on_time.get(paid.contact_id, 0) + 1
        book = Book(db.session, org, invoices)
        new, old = set(), set()
        for invoice in invoices:
            offsets = [s.offset_days for s in book.policy_of(invoice).reminder_steps]
            if offsets == [-10, 0, 3]:
                new.add(invoice.contact_id)
            else:
                assert offsets == [-3, 0, 7, 21]
                old.add(invoice.contact_id)
        assert new == {c for c in new | old if on_time.get(c, 0) < 3}
        assert new and old  # the demo books have both


def test_the_dashboard_flags_struggling_customers_and_forecasts_cash_in(app, connected) -> None:  # type: ignore[no-untyped-def]
    _sync(app, connected.org_id)
    dashboard = f"{connected.web.url}/orgs/{connected.org_id}/dashboard"
    calm = connected.http.get(dashboard)
    assert calm.status_code == 200
    # The demo's customers pay by habit: some are already struggling, not the crafted one yet.
    assert 'id="credit-struggling"' in calm.text and "Zeta Worsening Ltd" not in calm.text
    contact_id = _craft_worsening_customer(app, connected.org_id)
    page = connected.http.get(dashboard).text
    panel = page[page.index('id="credit-struggling"'):page.index('id="cash-in-forecast"')]
    assert f"/customers/{contact_id}\">Zeta Worsening Ltd</a> · risk 42 · £500.00 overdue, the" \
        " oldest by 40 days (+25)" in panel
    chart = page[page.index('id="cash-in-forecast"'):]
    assert chart.count('<g class="week"') == 13
    assert 'data-week="2026-11-23"' in chart and 'data-week="2027-02-15"' in chart
    # The walk-forward backtest of the demo books and the crafted customer: the model's error
    # beside both baselines', and the score's AUC.
    assert "Tested on your own books (" in chart and "monthly cut-offs" in chart
    assert "“paid on the due date” was" in chart and 'id="backtest-auc"' in chart
