"""The customer's portal end to end on both providers: a reminder from Dunwell carries the
customer's link; through it the customer promises, disputes (with a file) and asks for a plan;
the ledger, the activity log, the collector's pages and the sandbox's books show each, and bad
input, a wrong link or a missing CSRF token save nothing."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from html import unescape as html_unescape
from typing import Any
from urllib.parse import urljoin

import pytest
import requests
from sqlalchemy import func, select

from tests.integration import flows
from tests.integration.conftest import EMAIL, connect, run_jobs
from tests.integration.test_escalation_e2e import notes, smtp  # noqa: F401 (a fixture)

pytestmark = pytest.mark.db

POLICY = {
    "version": 2,
    "reminder_steps": [{"offset_days": 0, "channel": "dunwell_email"},
                       {"offset_days": 20, "channel": "dunwell_email", "tone": "firm"}],
    "first_contact": {"tone": "firm"},
}
PDF = b"%PDF-1.4\n% a delivery note\n%%EOF\n"
LINK = re.compile(r"https?://\S+/portal/[A-Za-z0-9_.\-]+")


def body_text(message: Any) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            return part.get_payload(decode=True).decode("utf-8")
    return ""


def form_of(page: str, action_end: str) -> tuple[str, dict[str, str]]:
    """The form posting to a path ending so: its action, and its hidden fields."""
    form = next(f for f in flows.forms_of(page)
                if f["action"].split("?")[0].endswith(action_end))
    return form["action"], {i["name"]: i.get("value") or "" for i in form["inputs"]
                            if i.get("name") and i.get("type") == "hidden"}


def mailing(app, web, smtp_sink, org_id: int) -> Any:  # type: ignore[no-untyped-def]
    """Dunwell's own email to a real SMTP sink, links to this server, the books synced and
    the ladder in Dunwell's words; the sink."""
    from jobs.tasks import sync_org
    from store.db import db
    from store.models import Policy

    sink, smtp_port = smtp_sink
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=smtp_port, SMTP_STARTTLS=False,
                      MAIL_FROM="reminders@example.com", BASE_URL=web.url)
    with app.app_context():
        sync_org(org_id, plan_after=False)
        row = db.session.scalars(select(Policy).where(Policy.org_id == org_id)).one()
        row.body = json.loads(json.dumps(POLICY))
        db.session.commit()
    return sink


def most_overdue(org_id: int, today: date) -> tuple[int, list[Any]]:
    """The customer (with an email address) with the most overdue invoices, and those
    invoices, oldest due first; in the caller's app context."""
    from store.db import db
    from store.models import Invoice

    overdue: dict[int, list[Invoice]] = {}
    for invoice in db.session.scalars(select(Invoice).where(
            Invoice.org_id == org_id, Invoice.status == "open")
            .order_by(Invoice.due_date, Invoice.id)):
        if invoice.contact is not None and invoice.contact.email and invoice.amount_due > 0 \
                and invoice.due_date is not None and invoice.due_date < today:
            overdue.setdefault(invoice.contact_id, []).append(invoice)
    return max(overdue.items(), key=lambda item: len(item[1]))


def sync_and_run(app, org_id: int) -> None:  # type: ignore[no-untyped-def]
    from jobs.tasks import enqueue_sync

    with app.app_context():
        enqueue_sync(org_id)
    run_jobs(app)


@pytest.mark.parametrize("provider", ["xero", "quickbooks"])
def test_a_customer_follows_the_reminder_to_the_portal(  # type: ignore[no-untyped-def]
        app, web, clock, sandbox, qbo_sandbox, smtp, provider: str) -> None:  # noqa: F811
    from store.db import db
    from store.models import (
        Action,
        AuditEvent,
        Contact,
        Invoice,
        InvoiceDispute,
        Organisation,
        PaymentPlan,
        PaymentPromise,
        PlanRequest,
    )

    if provider == "quickbooks":
        clock.set(datetime(2026, 11, 24, 18, 0, tzinfo=UTC))  # 10:00 in California
    connected = connect(app, web, provider)
    box, _ = sandbox if provider == "xero" else qbo_sandbox
    sink = mailing(app, web, smtp, connected.org_id)
    with app.app_context():
        # The customer with the most overdue invoices (and an email address) is watched;
        # everyone else is left alone.
        contact_id, invoices = most_overdue(connected.org_id, clock().date())
        assert len(invoices) >= 2, "the seed has a customer with two overdue invoices"
        first, second = invoices[0], invoices[1]
        ids = {"promise": first.id, "dispute": second.id}
        provider_ids = {first.id: first.provider_id, second.id: second.provider_id}
        numbers = {first.id: first.number, second.id: second.number}
        for other in db.session.scalars(select(Contact).where(Contact.id != contact_id)):
            other.excluded = True
        business = db.session.get(Organisation, connected.org_id).name
        db.session.commit()

    sync_and_run(app, connected.org_id)
    mails = [m for m in sink.messages]
    assert mails, "the first reminders went out by Dunwell's email"
    text = body_text(mails[0])
    links = LINK.findall(text)
    assert links, text
    link = links[-1]
    assert link.startswith(web.url + "/portal/")

    # The customer (no account, a browser of their own) opens the link.
    customer = requests.Session()
    page = customer.get(link)
    assert page.status_code == 200
    assert business in html_unescape(page.text)
    for invoice_id in ids.values():
        assert numbers[invoice_id] in page.text

    # The invoice as the books print it.
    pdf = customer.get(f"{link}/invoices/{ids['promise']}/pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
    assert pdf.headers["Content-Disposition"].startswith("attachment;")

    def post(kind: str, invoice_id: int, data: dict[str, str],
             files: dict[str, Any] | None = None, token: bool = True) -> requests.Response:
        action, fields = form_of(customer.get(link).text, f"/invoices/{invoice_id}/{kind}")
        if not token:
            fields.pop("csrf_token")
        return customer.post(urljoin(link, action), data={**fields, **data}, files=files)

    def counts() -> tuple[int, int, int, int]:
        with app.app_context():
            return tuple(db.session.scalar(select(func.count()).select_from(model))
                         for model in (PaymentPromise, InvoiceDispute, PlanRequest,
                                       AuditEvent))  # type: ignore[return-value]

    today = clock().date()
    before = counts()
    with app.app_context():
        undisputed_next = db.session.get(Invoice, ids["dispute"]).next_action_at
    # Bad input: a clear answer, nothing saved.
    past = post("promise", ids["promise"], {"pay_by": (today - timedelta(days=1)).isoformat()})
    assert past.status_code == 400 and "in the past" in past.text
    long_plan = post("plan", ids["dispute"], {"instalments": "3", "every_days": "30",
                                              "first_on": (today + timedelta(days=60)).isoformat()})
    assert long_plan.status_code == 400 and "longer than this business allows" in long_plan.text
    too_many = post("plan", ids["dispute"], {"instalments": "12", "every_days": "7",
                                             "first_on": today.isoformat()})
    assert too_many.status_code == 400 and "more instalments" in too_many.text
    big = b"%PDF-" + b"0" * (6 * 2**20)
    huge = post("dispute", ids["dispute"], {"reason": "Wrong amount"},
                files={"attachment": ("big.pdf", big, "application/pdf")})
    assert huge.status_code == 413 and "too large" in huge.text
    scan = b"%PDF-" + bytes(50 * 2**20)  # 50 MB
    fifty = post("dispute", ids["dispute"], {"reason": "Wrong amount"},
                 files={"attachment": ("scan.pdf", scan, "application/pdf")})
    assert fifty.status_code == 413 and "too large" in fifty.text  # refused before it is read
    html = post("dispute", ids["dispute"], {"reason": "Wrong amount"},
                        files={"attachment": ("x.pdf", b"<html><script>alert(1)</script>",
                                      "application/pdf")})
    assert html.status_code == 400 and "PDF, PNG or JPEG" in html.text
    forged = post("promise", ids["promise"], {"pay_by": today.isoformat()}, token=False)
    assert forged.status_code == 400
    assert counts() == before

    # A promise: reminders for that invoice wait until the day.
    pay_by = today + timedelta(days=10)
    promised = post("promise", ids["promise"], {"pay_by": pay_by.isoformat(), "amount": ""})
    assert promised.status_code == 200 and "will not remind you" in promised.text
    # A dispute with a delivery note: reminders and fees stop for that invoice.
    disputed = post("dispute", ids["dispute"], {"reason": "Half of it never arrived"},
                    files={"attachment": ("delivery note.pdf", PDF, "application/pdf")})
    assert disputed.status_code == 200
    told = [m for m in sink.messages if m["To"] == EMAIL]
    assert len(told) == 1 and numbers[ids["dispute"]] in told[0]["Subject"]
    assert "Half of it never arrived" in body_text(told[0])
    # A plan for the disputed one is allowed too, within the owner's limits (3 in 90 days).
    asked = post("plan", ids["promise"], {"instalments": "3", "every_days": "30",
                                          "first_on": (today + timedelta(days=1)).isoformat()})
    assert asked.status_code == 200
    with app.app_context():
        promise = db.session.scalars(select(PaymentPromise)).one()
        assert (promise.invoice_id, promise.pay_by, promise.status) == (
            ids["promise"], pay_by, "open")
        dispute = db.session.scalars(select(InvoiceDispute)).one()
        assert dispute.attachment == PDF and dispute.attachment_type == "application/pdf"
        assert db.session.get(Invoice, ids["dispute"]).disputed
        assert db.session.get(Invoice, ids["dispute"]).next_action_at is None
        waiting = db.session.get(Invoice, ids["promise"]).next_action_at
        assert waiting is not None and waiting.date() > pay_by
        request_row = db.session.scalars(select(PlanRequest)).one()
        assert request_row.status == "pending"
        kinds = {e.kind for e in db.session.scalars(select(AuditEvent).where(
            AuditEvent.org_id == connected.org_id))}
        assert {"promise_made", "dispute_opened", "plan_requested"} <= kinds
        dispute_id, request_id = dispute.id, request_row.id

    # The collector sees all three on the invoice and customer pages.
    owner = connected.http
    base = f"{web.url}/orgs/{connected.org_id}"
    invoice_page = owner.get(f"{base}/invoices/{ids['dispute']}")
    assert "Half of it never arrived" in invoice_page.text
    customer_page = owner.get(f"{base}/customers/{contact_id}")
    assert customer_page.status_code == 200
    assert "Half of it never arrived" in customer_page.text
    assert "portal-link" in customer_page.text
    attachment = owner.get(f"{base}/invoices/{ids['dispute']}/disputes/attachment",
                           params={"dispute": dispute_id})
    assert attachment.content == PDF
    assert attachment.headers["Content-Disposition"].startswith("attachment;")
    assert attachment.headers["X-Content-Type-Options"] == "nosniff"
    assert attachment.headers["Content-Type"] == "application/octet-stream"
    # Opened in place anyway, the file can run nothing and load nothing.
    assert attachment.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"

    # The owner narrows what customers may ask for: two instalments within 30 days.
    limits = owner.post(f"{base}/portal-settings", data={
        "csrf_token": flows.csrf_token(customer_page.text), "plan_max_instalments": "2",
        "plan_max_days": "30", "back": f"/orgs/{connected.org_id}/customers/{contact_id}"})
    assert limits.status_code == 200 and "up to 2 instalments within 30 days" in limits.text
    refused = post("plan", ids["dispute"], {"instalments": "3", "every_days": "7",
                                            "first_on": today.isoformat()})
    assert refused.status_code == 400 and "more instalments" in refused.text
    too_far = post("plan", ids["dispute"], {"instalments": "2", "every_days": "30",
                                            "first_on": (today + timedelta(days=5)).isoformat()})
    assert too_far.status_code == 400 and "longer than this business allows" in too_far.text
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(PlanRequest)) == 1

    # The owner approves the plan: it works as plans agreed by the owner do.
    token = flows.csrf_token(invoice_page.text)
    approved = owner.post(f"{base}/invoices/{ids['promise']}/plan-request/approve",
                          data={"csrf_token": token})
    assert approved.status_code == 200
    with app.app_context():
        plan = db.session.scalars(select(PaymentPlan)).one()
        assert plan.invoice_id == ids["promise"] and len(plan.instalments) == 3
        assert sum(float(i["amount"]) for i in plan.instalments) == pytest.approx(
            float(db.session.get(Invoice, ids["promise"]).amount_due))
        assert db.session.get(PlanRequest, request_id).status == "approved"

    # Resolving the dispute resumes chasing.
    resolved = owner.post(f"{base}/invoices/{ids['dispute']}/disputes/resolve",
                          data={"csrf_token": token, "resolution": "Credit note sent"})
    assert resolved.status_code == 200
    with app.app_context():
        assert not db.session.get(Invoice, ids["dispute"]).disputed
        assert db.session.get(Invoice, ids["dispute"]).next_action_at == undisputed_next

    # Nothing was noted in the books for the promised invoice while it waited.
    sent_before = len(notes(provider, box, connected.tenant_id, provider_ids[ids["promise"]]))
    clock.advance(days=3)
    sync_and_run(app, connected.org_id)
    assert len(notes(provider, box, connected.tenant_id,
                     provider_ids[ids["promise"]])) == sent_before

    # The owner replaces the link: the old one is now the same 404 as a made-up one.
    rotate = owner.post(f"{base}/customers/{contact_id}/portal-link",
                        data={"csrf_token": token})
    assert rotate.status_code == 200
    gone = customer.get(link)
    made_up = customer.get(f"{web.url}/portal/not-a-real-link")
    tampered = customer.get(link[:-2] + ("aa" if not link.endswith("aa") else "bb"))
    assert gone.status_code == made_up.status_code == tampered.status_code == 404
    assert gone.text == made_up.text == tampered.text
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Action).where(
            Action.invoice_id == ids["dispute"], Action.status == "done")) >= 1


@pytest.mark.parametrize("provider", ["xero"])
def test_a_broken_promise_is_followed_up_once_and_counts(  # type: ignore[no-untyped-def]
        app, web, clock, sandbox, smtp, provider: str) -> None:  # noqa: F811
    from collect.customers import customer_credit
    from store.db import db
    from store.models import Action, Contact, Invoice, Organisation, PaymentPromise

    connected = connect(app, web, provider)
    box, _ = sandbox
    sink = mailing(app, web, smtp, connected.org_id)
    with app.app_context():
        target = next(i for i in db.session.scalars(select(Invoice).where(
            Invoice.org_id == connected.org_id, Invoice.status == "open").order_by(Invoice.id))
            if i.contact is not None and i.contact.email and i.amount_paid == 0
            and i.due_date is not None and i.due_date < clock().date())
        target_id, contact_id, provider_id = target.id, target.contact_id, target.provider_id
        for other in db.session.scalars(select(Contact).where(Contact.id != contact_id)):
            other.excluded = True
        for invoice in db.session.scalars(select(Invoice).where(
                Invoice.contact_id == contact_id, Invoice.id != target_id)):
            invoice.disputed = True
        db.session.commit()
    sync_and_run(app, connected.org_id)
    link = LINK.findall(body_text(sink.messages[-1]))[-1]
    customer = requests.Session()
    action, fields = form_of(customer.get(link).text, f"/invoices/{target_id}/promise")
    pay_by = clock().date() + timedelta(days=2)
    assert customer.post(urljoin(link, action),
                         data={**fields, "pay_by": pay_by.isoformat()}).status_code == 200
    mails = len(sink.messages)
    # The day passes unpaid: the promise is broken, followed up once, noted in the books.
    for _ in range(3):
        clock.advance(days=3)
        sync_and_run(app, connected.org_id)
    with app.app_context():
        promise = db.session.scalars(select(PaymentPromise)).one()
        assert promise.status == "broken"
        follow_ups = db.session.scalars(select(Action).where(
            Action.invoice_id == target_id, Action.key.like("%:promise%:follow_up"))).all()
        assert [a.status for a in follow_ups] == ["done"]
        assert follow_ups[0].tone == "firm"
        org = db.session.get(Organisation, connected.org_id)
        credit = customer_credit(db.session, org, clock(), {contact_id})[0]
        assert credit.behaviour.broken_promises == 1
        assert "broken" in credit.risk.points
    assert len(sink.messages) > mails
    assert any("Dunwell" in note for note in notes(provider, box, connected.tenant_id,
                                                   provider_id))
