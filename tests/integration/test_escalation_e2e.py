"""Escalation end to end on both providers: a phone-call task, a stop-service flag with a
signed webhook, a final demand emailed by Dunwell with its PDF, a collections-agency case file,
and a reminder in Dunwell's own words; each once, however often the day runs."""

from __future__ import annotations

import hashlib
import hmac
import html
import io
import json
import socket
import threading
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from aiosmtpd.controller import Controller
from PIL import Image
from pypdf import PdfReader
from sqlalchemy import select

from tests.integration.conftest import connect, run_jobs

pytestmark = pytest.mark.db

POLICY = {
    "version": 2,
    "reminder_steps": [{"offset_days": 0}, {"offset_days": 20, "channel": "dunwell_email",
                                            "tone": "firm"}],
    # The invoice this test watches is long overdue when first chased: its first message is
    # the first contact (the step after the due date), here in the firm tone.
    "first_contact": {"tone": "firm"},
    "escalation": {
        "call_task": {"after_days": 25, "assignee": "Sam in accounts"},
        "stop_service": {"after_days": 30, "webhook_url": "http://127.0.0.1:9/hook"},
        "demand_letter": {"after_days": 40, "pay_within_days": 14},
        "agency_case": {"after_days": 50},
    },
}


class Sink:
    """A real SMTP server keeping what it receives."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Sink, int]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    yield sink, port
    controller.stop()


@pytest.fixture
def hook() -> Iterator[tuple[list[tuple[dict[str, str], bytes]], str]]:
    received: list[tuple[dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((dict(self.headers), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield received, f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()


def images_on_first_page(pdf: bytes) -> list[tuple[int, int]]:
    """The pixel sizes of the image XObjects drawn on a PDF's first page."""
    page = PdfReader(io.BytesIO(pdf)).pages[0]
    objects = page["/Resources"].get("/XObject", {})
    return [(int(o["/Width"]), int(o["/Height"])) for o in
            (objects[name].get_object() for name in objects) if o["/Subtype"] == "/Image"]


def notes(provider: str, box: Any, tenant: str, invoice_id: str) -> list[str]:
    if provider == "xero":
        return [str(h["Details"]) for h in box.history(tenant, invoice_id)]
    raw = next(i for i in box.invoices(tenant) if i["Id"] == invoice_id)
    return str(raw.get("PrivateNote") or "").splitlines()


@pytest.mark.parametrize("provider", ["xero", "quickbooks"])
def test_escalation_reaches_people_the_books_and_the_owner_once(  # type: ignore[no-untyped-def]
        app, web, clock, sandbox, qbo_sandbox, smtp, hook, provider: str) -> None:
    from jobs.tasks import enqueue_sync, sync_org
    from store.db import db
    from store.models import (
        Action,
        BusinessLogo,
        Contact,
        Document,
        Invoice,
        Organisation,
        Policy,
        Task,
    )

    if provider == "quickbooks":
        clock.set(datetime(2026, 11, 24, 18, 0, tzinfo=UTC))  # 10:00 in California
    connected = connect(app, web, provider)
    served = sandbox if provider == "xero" else qbo_sandbox
    sink, smtp_port = smtp
    received, hook_url = hook
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=smtp_port, SMTP_STARTTLS=False,
                      MAIL_FROM="reminders@example.com", BASE_URL=web.url)
    box = served[0]
    policy = json.loads(json.dumps(POLICY))
    policy["escalation"]["stop_service"]["webhook_url"] = hook_url
    with app.app_context():
        sync_org(connected.org_id, plan_after=False)
        row = db.session.scalars(select(Policy).where(Policy.org_id == connected.org_id)).one()
        row.body = policy
        db.session.commit()
        # One long-overdue invoice, unpaid, whose customer has an email address: everything
        # is due for it today. The others are left alone by a date filter on this test's part.
        target = next(i for i in db.session.scalars(select(Invoice).where(
            Invoice.org_id == connected.org_id, Invoice.status == "open").order_by(Invoice.id))
            if i.contact is not None and i.contact.email and i.amount_paid == 0
            and i.due_date is not None and (clock().date() - i.due_date).days > 60)
        target_id, contact_id, number = target.id, target.contact_id, target.number
        target_provider_id = target.provider_id
        contact_email = target.contact.email
        others = db.session.scalars(select(Contact).where(Contact.id != contact_id)).all()
        for other in others:
            other.excluded = True  # keep the run to the one customer this test watches
        for invoice in db.session.scalars(select(Invoice).where(
                Invoice.contact_id == contact_id, Invoice.id != target_id)):
            invoice.disputed = True  # and to its one invoice, over the weeks the test waits
        db.session.commit()

    with app.app_context():
        enqueue_sync(connected.org_id)
    run_jobs(app)

    def actions() -> dict[str, tuple[str, str | None]]:
        return {a.kind: (a.status, a.error) for a in db.session.scalars(select(Action).where(
            Action.invoice_id == target_id))}

    with app.app_context():
        # Long overdue when first chased: the first contact alone, never a backlog of
        # escalations on day one (they count from the contact, as the ladder does).
        assert actions() == {"reminder": ("done", None)}
    # Five weeks on (the contact stands for day 20 of the ladder, so day 55 has come: a
    # Tuesday, no bank holiday): the call, the stop-service signal and the final demand are
    # due together, and the agency case after them.
    app.config["CLOCK"].advance(days=35)
    with app.app_context():
        enqueue_sync(connected.org_id)
    run_jobs(app)
    with app.app_context():
        # The agency case waits for the final demand to have gone out: the next run plans it.
        assert actions() == {"reminder": ("done", None), "call_task": ("done", None),
                             "stop_service": ("done", None), "demand_letter": ("done", None)}
    app.config["CLOCK"].advance(minutes=5)
    with app.app_context():
        enqueue_sync(connected.org_id)
    run_jobs(app)

    with app.app_context():
        assert actions()["agency_case"] == ("done", None)
        task = db.session.scalars(select(Task)).one()
        assert task.assignee == "Sam in accounts" and number in task.title
        contact = db.session.get(Contact, contact_id)
        assert contact.stop_service and contact.stop_service_at is not None
        kinds = sorted(d.kind for d in db.session.scalars(select(Document).where(
            Document.invoice_id == target_id)))
        assert kinds == ["agency_case", "demand_letter_html", "demand_letter_pdf"]
        pdf = db.session.scalars(select(Document).where(
            Document.kind == "demand_letter_pdf")).one().content
        case = db.session.scalars(select(Document).where(
            Document.kind == "agency_case")).one().content
        assert pdf.startswith(b"%PDF")
        archive = zipfile.ZipFile(io.BytesIO(case))
        assert {"README.txt", "invoice.json", "timeline.csv", "policy.json",
                "demand-letter.pdf"} <= set(archive.namelist())
        assert archive.read("demand-letter.pdf") == pdf
        contact_name = db.session.get(Contact, contact_id).name
        assert number in archive.read("README.txt").decode("utf-8")
        # The business's logo heads the letter where the books keep one (Xero's branding
        # theme); QuickBooks' keep none, and its letter has the name alone.
        logo = db.session.scalar(select(BusinessLogo.content).where(
            BusinessLogo.org_id == connected.org_id))
        org_name = db.session.get(Organisation, connected.org_id).name
        letter_html = db.session.scalars(select(Document.content).where(
            Document.kind == "demand_letter_html")).one().decode()
        secret = hmac.new(b"test-secret-key", f"webhook:{connected.org_id}".encode(),
                          hashlib.sha256).hexdigest()

    # The owner finds the papers on the organisation page and downloads them.
    page = connected.http.get(f"{connected.web.url}/orgs/{connected.org_id}")
    assert "Sam in accounts" in page.text and ".pdf" in page.text
    with app.app_context():
        pdf_id = db.session.scalars(select(Document.id).where(
            Document.kind == "demand_letter_pdf")).one()
    download = connected.http.get(
        f"{connected.web.url}/orgs/{connected.org_id}/documents/{pdf_id}")
    assert download.status_code == 200 and download.content == pdf
    assert download.headers["Content-Disposition"].startswith("attachment;")
    assert connected.http.get(f"{connected.web.url}/orgs/{connected.org_id + 1}/documents/"
                              f"{pdf_id}").status_code == 404

    # The letter carries the customer's own portal link, on a line of its own: read off the
    # PDF, it opens the customer's portal with the invoice on it; nobody signed in.
    lines = [line.strip() for page in PdfReader(io.BytesIO(pdf)).pages
             for line in page.extract_text().splitlines()]
    portal_links = [line for line in lines if line.startswith(f"{web.url}/portal/")]
    assert len(portal_links) == 1, lines
    portal_page = requests.get(portal_links[0], timeout=10)
    assert portal_page.status_code == 200
    assert contact_name in html.unescape(portal_page.text)
    assert f"invoice-{target_id}" in portal_page.text and number in portal_page.text

    # The webhook: one signed POST naming the contact and the invoice.
    assert len(received) == 1
    headers, body = received[0]
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert headers["Dunwell-Signature"] == f"sha256={expected}"
    assert json.loads(body)["invoice"]["number"] == number
    # Dunwell's own email: the firm reminder, and the final demand with its PDF attached.
    assert [m["To"] for m in sink.messages] == [contact_email, contact_email]
    demand = next(m for m in sink.messages if any(
        part.get_filename() for part in m.walk()))
    reminder = next(m for m in sink.messages if m is not demand)
    text = next(p for p in reminder.walk() if p.get_content_type() == "text/plain")
    # The online invoice, at the address the provider gives for it.
    assert box.config.invoice_link_base in text.get_payload(decode=True).decode()
    attachment = next(p for p in demand.walk() if p.get_filename())
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_payload(decode=True) == pdf
    demand_html = next(p for p in demand.walk() if p.get_content_type() == "text/html")
    demand_html = demand_html.get_payload(decode=True).decode().replace("\r\n", "\n")
    assert demand_html == letter_html
    if provider == "xero":
        assert logo is not None and logo.startswith(b"\x89PNG")
        assert images_on_first_page(pdf) == [Image.open(io.BytesIO(logo)).size]
        # The email shows it as the reminders do: from our domain, through the customer's link.
        src = f'{portal_links[0]}/logo?v='
        assert f'<body>\n<p><img src="{src}' in demand_html
        assert f'alt="{html.escape(org_name)}" height="48"></p>' in demand_html
        image = requests.get(html.unescape(demand_html.split('<img src="')[1].split('"')[0]),
                             timeout=10)
        assert image.status_code == 200 and image.content == logo
    else:
        assert logo is None
        assert images_on_first_page(pdf) == [] and "<img" not in demand_html
    # The provider emailed nothing for the Dunwell-email step; notes record every effect.
    assert any("final demand sent" in n for n in notes(provider, box, connected.tenant_id,
                                                       target_provider_id))

    # The day runs again: nothing happens twice.
    app.config["CLOCK"].advance(minutes=5)
    with app.app_context():
        enqueue_sync(connected.org_id)
    run_jobs(app)
    assert len(received) == 1 and len(sink.messages) == 2
    with app.app_context():
        assert db.session.scalar(select(db.func.count()).select_from(Task)) == 1
        assert db.session.scalar(select(db.func.count()).select_from(Document)) == 3
