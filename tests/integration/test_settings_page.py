"""The settings page's owner controls, through the Flask test client against a synced Xero
sandbox book: safe mode with approvals, the owner's own reminder texts (validated, used when
sending, reset), a test send to the owner only, per-contact overrides, and the statement fields.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from redis import Redis
from rq import Queue
from sqlalchemy import select

from tests.integration import flows
from tests.integration.conftest import EMAIL, PASSWORD, connect, run_jobs

pytestmark = pytest.mark.db


class Sink:
    """A real SMTP server keeping what it receives, with the envelope's recipients."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content,
                                                                         policy=policy.default)))
        return "250 OK"


@pytest.fixture
def smtp(app) -> Iterator[Sink]:  # type: ignore[no-untyped-def]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_STARTTLS=False,
                      MAIL_FROM="reminders@example.com")
    yield sink
    controller.stop()


@dataclass
class Book:
    client: Any  # a signed-in Flask test client
    org_id: int
    tenant_id: str

    @property
    def base(self) -> str:
        return f"/orgs/{self.org_id}/settings"

    def csrf(self, path: str | None = None) -> str:
        return flows.csrf_token(self.client.get(path or self.base).get_data(as_text=True))


@pytest.fixture
def book(app, web) -> Book:  # type: ignore[no-untyped-def]
    """The Xero sandbox's first organisation, synced, nothing planned yet; signed in."""
    from jobs.tasks import sync_org

    connected = connect(app, web)
    with app.app_context():
        sync_org(connected.org_id, plan_after=False)
    client = app.test_client()
    page = client.get("/signin")
    signed = client.post("/signin", data={"csrf_token": flows.csrf_token(
        page.get_data(as_text=True)), "email": EMAIL, "password": PASSWORD})
    assert signed.status_code == 302
    return Book(client, connected.org_id, connected.tenant_id)


def _queued_action_jobs(app) -> list[str]:  # type: ignore[no-untyped-def]
    queue = Queue(app.config["RQ_QUEUE"], connection=Redis.from_url(app.config["REDIS_URL"]))
    return [job_id for job_id in queue.job_ids if job_id.startswith("action-")]


def _statuses(org_id: int) -> dict[int, str]:
    from store.db import db
    from store.models import Action

    return dict(db.session.execute(select(Action.id, Action.status).where(
        Action.org_id == org_id)).all())


# ------------------------------------------------------------------------------- safe mode


def test_safe_mode_holds_actions_until_the_owner_decides(app, book, sandbox, clock) -> None:  # type: ignore[no-untyped-def]
    from collect import execute
    from collect.approvals import AWAITING_APPROVAL
    from collect.providers import connector_for
    from jobs.tasks import STUCK_AFTER, plan_org, sweep_ledger
    from store.db import db
    from store.models import Action, AuditEvent, Invoice, Organisation

    box = sandbox[0]
    turned = book.client.post(f"{book.base}/safe-mode",
                              data={"csrf_token": book.csrf(), "safe_mode": "on"})
    assert turned.status_code == 302
    with app.app_context():
        assert db.session.get(Organisation, book.org_id).safe_mode is True
        planned = plan_org(book.org_id)
        statuses = _statuses(book.org_id)
    assert planned >= 3 and len(statuses) == planned
    assert set(statuses.values()) == {AWAITING_APPROVAL}
    assert _queued_action_jobs(app) == []
    notes_before = len(box.history(book.tenant_id))
    run_jobs(app)  # a worker finds nothing to send
    assert len(box.history(book.tenant_id)) == notes_before

    # The sweeper, long after, gives none of them a job; the executor refuses one outright.
    clock.advance(seconds=STUCK_AFTER.total_seconds() + 60)
    with app.app_context():
        assert sweep_ledger(book_next=False) == 0
        first = db.session.scalars(select(Action).where(Action.org_id == book.org_id)
                                   .order_by(Action.id)).first()
        org = db.session.get(Organisation, book.org_id)
        assert execute.execute_action(db.session, first, connector_for(org.connection),
                                      clock(), owner="test") == AWAITING_APPROVAL
        db.session.refresh(first)
        assert first.status == AWAITING_APPROVAL and first.attempts == 0
    assert _queued_action_jobs(app) == []

    page = book.client.get(f"{book.base}/approvals")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Approve all" in html
    ids = sorted(statuses)
    assert all(f'id="action-{i}"' in html for i in ids)

    rejected, approved, rest = ids[0], ids[1], ids[2:]
    csrf = flows.csrf_token(html)
    answer = book.client.post(f"{book.base}/approvals/{rejected}",
                              data={"csrf_token": csrf, "decision": "reject"})
    assert answer.status_code == 302
    answer = book.client.post(f"{book.base}/approvals/{approved}",
                              data={"csrf_token": csrf, "decision": "approve"})
    assert answer.status_code == 302
    with app.app_context():
        gone = db.session.get(Action, rejected)
        assert gone.status == "skipped" and gone.result == {"reason": f"rejected by {EMAIL}"}
        assert db.session.get(Action, approved).status == "planned"
    assert _queued_action_jobs(app) == [f"action-{approved}"]
    # Deciding twice, or on another organisation's id, finds nothing waiting.
    again = book.client.post(f"{book.base}/approvals/{rejected}",
                             data={"csrf_token": csrf, "decision": "approve"})
    assert again.status_code == 404

    # Safe mode off: what waits keeps waiting; the next run plans nothing new for them.
    book.client.post(f"{book.base}/safe-mode", data={"csrf_token": csrf, "safe_mode": "off"})
    with app.app_context():
        assert db.session.get(Organisation, book.org_id).safe_mode is False
        plan_org(book.org_id)
        after = _statuses(book.org_id)
    assert {after[i] for i in rest} == {AWAITING_APPROVAL}
    assert _queued_action_jobs(app) == [f"action-{approved}"]

    # An invoice that changed while its action waited: the action expires and is planned
    # again against the invoice as it is now (here: sent at once, safe mode being off).
    with app.app_context():
        waiting = db.session.get(Action, rest[0])
        invoice = db.session.get(Invoice, waiting.invoice_id)
        invoice.amount_due = invoice.amount_due - 1
        db.session.commit()
        plan_org(book.org_id)
        db.session.refresh(waiting)
        assert waiting.status == "planned"
        assert waiting.planned_amount_due == invoice.amount_due
        expired = db.session.scalar(select(AuditEvent).where(
            AuditEvent.action_id == waiting.id, AuditEvent.kind == "action_skipped"))
        assert "changed while the action waited for approval" in expired.message

    all_page = book.client.get(f"{book.base}/approvals").get_data(as_text=True)
    book.client.post(f"{book.base}/approvals/approve-all",
                     data={"csrf_token": flows.csrf_token(all_page)})
    with app.app_context():
        assert AWAITING_APPROVAL not in _statuses(book.org_id).values()
    run_jobs(app)
    with app.app_context():
        final = _statuses(book.org_id)
    assert final[rejected] == "skipped"
    assert {final[i] for i in [approved, *rest]} <= {"done", "skipped"}
    assert "done" in {final[i] for i in [approved, *rest]}
    assert len(box.history(book.tenant_id)) > notes_before


def test_safe_mode_is_for_editors_and_only_in_ones_own_organisation(app, book) -> None:  # type: ignore[no-untyped-def]
    other = book.client.post(f"/orgs/{book.org_id + 1000}/settings/safe-mode",
                             data={"csrf_token": book.csrf(), "safe_mode": "on"})
    assert other.status_code == 404
    missing = book.client.post(f"{book.base}/approvals/999999",
                               data={"csrf_token": book.csrf(), "decision": "approve"})
    assert missing.status_code == 404


# ------------------------------------------------------------------------ reminder texts


def _template_form(book: Book, **fields: str) -> dict[str, str]:
    return {"csrf_token": book.csrf(), "language": "en", "tone": "firm", **fields}


def test_own_texts_are_validated_stored_used_when_sending_and_reset(app, book, smtp, clock) -> None:  # type: ignore[no-untyped-def]
    from collect.message_texts import message_source
    from collect.plan import refresh_next_action
    from jobs.tasks import plan_org
    from rules.messages import shipped_template
    from store.db import db
    from store.models import Action, Contact, Invoice, MessageText, Organisation, Policy

    hostile = [
        ("Hello", "{{ ''.__class__.__mro__[1].__subclasses__() }}"),
        ("Hello", "{% for a in range(999) %}{% for b in range(999) %}x{% endfor %}{% endfor %}"),
        ("Hello {{ contact_nme }}", "Dear {{ contact_name }}"),
        ("", "Dear {{ contact_name }}"),
    ]
    for subject, body in hostile:
        refused = book.client.post(f"{book.base}/templates",
                                   data=_template_form(book, subject=subject, body=body))
        html = refused.get_data(as_text=True)
        assert refused.status_code == 422, (subject, body)
        assert "The text was not saved" in html
        assert re.search(r'id="template-(body|subject)-error">[^<]+', html)
    with app.app_context():
        assert db.session.scalars(select(MessageText)).all() == []

    subject = "Still open: {{ invoice_number }} ({{ amount_due|money }})"
    body = ("Dear {{ contact_name }},\n\nInvoice {{ invoice_number }} is {{ days_overdue }}"
            " days late.\n\n{{ business_name }}\n")
    saved = book.client.post(f"{book.base}/templates",
                             data=_template_form(book, subject=subject, body=body))
    assert saved.status_code == 302
    page = book.client.get(f"{book.base}?language=en&tone=firm").get_data(as_text=True)
    assert "Your own text" in page and "Still open: {{ invoice_number }}" in page

    # The sending path renders the organisation's own text: a Dunwell email, firm tone.
    with app.app_context():
        source = message_source(db.session, book.org_id, "en", "firm")
        assert source.startswith("Subject: Still open:")
        row = db.session.scalars(select(Policy).where(Policy.org_id == book.org_id)).one()
        # The invoice is late when first chased: its first message is the first contact, in
        # the first contact's tone (friendly unless the policy says otherwise): firm here.
        row.body = {"version": 2, "send_window_hours": 8,
                    "reminder_steps": [{"offset_days": 1, "channel": "dunwell_email",
                                        "tone": "firm"}],
                    "first_contact": {"tone": "firm"}}
        target = next(i for i in db.session.scalars(select(Invoice).where(
            Invoice.org_id == book.org_id, Invoice.status == "open").order_by(Invoice.id))
            if i.contact is not None and i.contact.email and i.due_date is not None
            and i.due_date < clock().date() - timedelta(days=2) and i.amount_paid == 0)
        for contact in db.session.scalars(select(Contact).where(
                Contact.id != target.contact_id)):
            contact.excluded = True
        target.contact.language = "en"
        target.next_action_at = None
        db.session.commit()
        refresh_next_action(db.session, db.session.get(Organisation, book.org_id), clock())
        db.session.commit()
        number, email = target.number, target.contact.email
        assert plan_org(book.org_id) == 1
    run_jobs(app)
    with app.app_context():
        assert [a.status for a in db.session.scalars(select(Action))] == ["done"]
    (to, sent), = smtp.messages
    assert to == [email]
    assert sent["Subject"].startswith(f"Still open: {number} (")
    assert f"Invoice {number} is" in sent.get_body(("plain",)).get_content()

    reset = book.client.post(f"{book.base}/templates/reset",
                             data=_template_form(book))
    assert reset.status_code == 302
    with app.app_context():
        assert db.session.scalars(select(MessageText)).all() == []
        assert message_source(db.session, book.org_id, "en", "firm") == \
            shipped_template("en", "firm")
    page = book.client.get(f"{book.base}?language=en&tone=firm").get_data(as_text=True)
    assert "The default text" in page


def test_live_preview_reads_subject_and_body(app, book) -> None:  # type: ignore[no-untyped-def]
    answer = book.client.post(f"{book.base}/template-preview", data=_template_form(
        book, language="de", subject="Rechnung {{ invoice_number }}",
        body="Betrag: {{ amount_due|money }}"))
    assert answer.status_code == 200
    assert answer.json["subject"] == "Rechnung INV-0042"
    assert "1.234,50\xa0£" in answer.json["text"]  # the book's currency (a British book)
    refused = book.client.post(f"{book.base}/template-preview", data=_template_form(
        book, subject="Hi", body="{{ nope }}"))
    assert "nope" in refused.json["error"]


def test_a_test_send_goes_to_the_owner_only_marked_and_rate_limited(app, book, smtp) -> None:  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import Action, Invoice

    with app.app_context():
        invoice = db.session.scalars(select(Invoice).where(
            Invoice.org_id == book.org_id, Invoice.status == "open")
            .order_by(Invoice.id)).first()
        invoice_id, number = invoice.id, invoice.number
        customer = invoice.contact.email if invoice.contact else None
    sent = book.client.post(f"{book.base}/templates/test", data=_template_form(
        book, subject="Reminder {{ invoice_number }}", body="Dear {{ contact_name }}, pay.",
        invoice=str(invoice_id)))
    assert sent.status_code == 302
    (to, message), = smtp.messages
    assert to == [EMAIL] and message["To"] == EMAIL and customer not in to
    assert message["Subject"] == f"[TEST] Reminder {number}"
    text = message.get_body(("plain",)).get_content()
    assert text.startswith("[TEST] This is a test") and "No customer received it." in text

    # Not another organisation's invoice; and not a broken text.
    foreign = book.client.post(f"{book.base}/templates/test", data=_template_form(
        book, subject="Hi", body="Hello", invoice="999999"))
    assert foreign.status_code == 404
    broken = book.client.post(f"{book.base}/templates/test", data=_template_form(
        book, subject="Hi", body="{{ missing }}"))
    assert broken.status_code == 422 and len(smtp.messages) == 1

    for _ in range(4):  # five in ten minutes ...
        assert book.client.post(f"{book.base}/templates/test", data=_template_form(
            book, language="he", tone="final")).status_code == 302
    limited = book.client.post(f"{book.base}/templates/test", data=_template_form(book))
    assert limited.status_code == 429  # ... then refused with the wait
    assert "At most 5 test emails per 10 minutes" in limited.get_data(as_text=True)
    assert len(smtp.messages) == 5
    assert {tuple(to) for to, _ in smtp.messages} == {(EMAIL,)}
    with app.app_context():
        assert db.session.scalars(select(Action)).all() == []  # nothing in the ledger


def test_a_test_send_without_a_mail_server_says_so(app, book) -> None:  # type: ignore[no-untyped-def]
    app.config["SMTP_HOST"] = ""
    answer = book.client.post(f"{book.base}/templates/test", data=_template_form(book))
    assert answer.status_code == 422
    assert "Dunwell email is not configured" in answer.get_data(as_text=True)


# ------------------------------------------------------------------- per-contact overrides


def test_contact_overrides_are_validated_saved_and_shown_in_the_preview(app, book) -> None:  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import Contact, Invoice, Policy

    with app.app_context():
        row = db.session.scalars(select(Policy).where(Policy.org_id == book.org_id)).one()
        row.body = {**row.body, "late_fees": [
            {"id": "flat40", "rule": {"kind": "flat", "amount": "40.00"}}]}
        invoice = next(i for i in db.session.scalars(select(Invoice).where(
            Invoice.org_id == book.org_id, Invoice.status == "open").order_by(Invoice.id))
            if i.contact is not None)
        contact_id, invoice_id = invoice.contact_id, invoice.id
        db.session.commit()
    path = f"{book.base}/contacts/{contact_id}"
    preview = f"/orgs/{book.org_id}/preview?invoice={invoice_id}"
    assert "<strong>Late fee of " in book.client.get(preview).get_data(as_text=True)
    # The form is on the customer's page now; its old address leads there.
    assert book.client.get(path).status_code == 301
    page = book.client.get(path, follow_redirects=True)
    assert page.status_code == 200 and "Policy for this customer" in page.get_data(as_text=True)
    assert page.request.path == f"/orgs/{book.org_id}/customers/{contact_id}"
    csrf = flows.csrf_token(page.get_data(as_text=True))

    for bad, field in (({"plans": "own", "plan_offsets": "3, 1"}, "plan_offsets"),
                       ({"plans": "own", "plan_offsets": "soon"}, "plan_offsets"),
                       ({"language": "fr"}, "language"),
                       ({"late_fees": "some"}, "late_fees")):
        refused = book.client.post(path, data={"csrf_token": csrf, "page": "contact", **bad})
        assert refused.status_code == 422, bad
        assert f'id="{field}-error"' in refused.get_data(as_text=True), bad
    with app.app_context():
        contact = db.session.get(Contact, contact_id)
        assert (contact.language, contact.is_business, contact.policy_overrides) == \
            (None, True, None)

    saved = book.client.post(path, data={
        "csrf_token": csrf, "page": "contact", "language": "de", "kind": "consumer",
        "late_fees": "none", "plans": "own", "plan_offsets": "-1, 2", "plan_grace_days": "5"})
    assert saved.status_code == 302
    with app.app_context():
        contact = db.session.get(Contact, contact_id)
        assert (contact.language, contact.is_business, contact.excluded) == ("de", False, False)
        assert contact.policy_overrides["late_fees"] == []
        assert contact.policy_overrides["payment_plans"]["offsets"] == [-1, 2]
        assert contact.policy_overrides["payment_plans"]["grace_days"] == 5
    shown = book.client.get(preview).get_data(as_text=True)
    assert "no late fees" in shown and "consumer" in shown and "language de" in shown
    assert "<strong>Late fee of " not in shown
    assert re.search(r"<strong>(Reminder \d+ of \d+|Repeat reminder)</strong>", shown)

    back = book.client.post(path, data={"csrf_token": csrf, "page": "contact",
                                         "excluded": "on"})
    assert back.status_code == 302
    shown = book.client.get(preview).get_data(as_text=True)
    assert "excluded from collection" in shown and "<strong>Reminder " not in shown
    assert book.client.get(f"{book.base}/contacts/999999").status_code == 404


# ------------------------------------------------------------------- statement fee fields


def test_statement_day_and_statement_invoice_placement(app, book) -> None:  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import Policy
    from tests.integration.test_web_pages import _settings_form

    page = book.client.get(book.base).get_data(as_text=True)
    # One statement day on the page: the credit-control form's (statements and their fees).
    assert 'value="statement_invoice"' in page and page.count('id="statement_day"') == 1
    data = _settings_form(page)
    assert "statement_day" not in data
    with app.app_context():
        before = db.session.scalars(select(Policy).where(Policy.org_id == book.org_id)).one()
        version, stored_day = before.version, before.body.get("statement_day")
    refused = book.client.post(book.base, data={
        **data, "late_fees.0.id": "stmt", "late_fees.0.kind": "flat",
        "late_fees.0.amount": "5.00", "late_fees.0.placement": "on_the_moon"})
    assert refused.status_code == 422
    assert 'id="late_fees-0-placement-error"' in refused.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalars(select(Policy).where(
            Policy.org_id == book.org_id)).one().version == version

    # A statement_day sent to the policy form anyway is not the policy's to change.
    saved = book.client.post(book.base, data={
        **data, "statement_day": "24", "late_fees.0.id": "stmt", "late_fees.0.kind": "flat",
        "late_fees.0.amount": "5.00", "late_fees.0.placement": "statement_invoice"})
    assert saved.status_code == 302
    with app.app_context():
        row = db.session.scalars(select(Policy).where(Policy.org_id == book.org_id)).one()
        assert row.version == version + 1 and row.body.get("statement_day") == stored_day
        assert row.body["late_fees"][0]["rule"]["placement"] == "statement_invoice"
    page = book.client.get(book.base).get_data(as_text=True)
    assert '<option value="statement_invoice" selected' in page
