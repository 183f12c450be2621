"""Disconnect keeps the synced data for a grace period (30 days by default), during which the
owner can export it, delete it at once, or reconnect (which cancels the deletion); when the
grace ends an RQ job deletes it, and only it: the activity log and other organisations stay."""

from __future__ import annotations

import io
import json
import re
import zipfile
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from redis import Redis
from rq import Queue
from rq.job import Job
from sqlalchemy import func, select

from tests.integration import flows
from tests.integration.conftest import EMAIL, PASSWORD, create_user, run_jobs
from tests.security.test_tenant_isolation import _tenant_rows

pytestmark = pytest.mark.db

SYNCED = ("invoices", "contacts", "payments", "actions")


def _counts(app, org_id: int) -> dict[str, int]:  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import Action, AuditEvent, Contact, Invoice, Payment

    with app.app_context():
        found = {name: db.session.scalar(select(func.count()).select_from(model)
                                         .where(model.org_id == org_id)) or 0
                 for name, model in (("invoices", Invoice), ("contacts", Contact),
                                     ("payments", Payment), ("actions", Action),
                                     ("audit_events", AuditEvent))}
        db.session.remove()
        return found


def _connection(app, org_id: int):  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import Connection

    with app.app_context():
        found = db.session.scalar(select(Connection).where(Connection.org_id == org_id))
        db.session.expunge(found)
        db.session.remove()
        return found


def _client(app, email: str = EMAIL):  # type: ignore[no-untyped-def]
    client = app.test_client()
    page = client.get("/signin")
    answer = client.post("/signin", data={"csrf_token": flows.csrf_token(page.text),
                                          "email": email, "password": PASSWORD})
    assert answer.status_code == 302
    return client


def _csrf(client, org_id: int) -> str:  # type: ignore[no-untyped-def]
    return flows.csrf_token(client.get(f"/orgs/{org_id}/connection").text)


def _bystander(app) -> int:  # type: ignore[no-untyped-def]
    """Another owner's organisation, itself disconnected long ago with its grace still
    running, with a row of each synced kind: nothing done to the first may touch it."""
    from store.db import db
    from store.models import (
        Action,
        AuditEvent,
        Connection,
        Contact,
        Invoice,
        Membership,
        Organisation,
        Payment,
        User,
    )

    create_user(app, "bystander@example.com", PASSWORD)
    with app.app_context():
        org = Organisation(name="Bystander Ltd", country="GB", timezone="UTC",
                           base_currency="GBP")
        db.session.add(org)
        db.session.flush()
        user_id = db.session.scalar(select(User.id).where(User.email == "bystander@example.com"))
        db.session.add(Membership(user_id=user_id, org_id=org.id, role="owner"))
        db.session.add(Connection(org_id=org.id, provider="xero", tenant_id="bystander",
                                  status="disconnected",
                                  disconnected_at=datetime(2026, 11, 20, tzinfo=UTC),
                                  purge_after=datetime(2027, 1, 20, tzinfo=UTC)))
        contact = Contact(org_id=org.id, provider_id="c-1", name="Kept Customer")
        db.session.add(contact)
        db.session.flush()
        invoice = Invoice(org_id=org.id, provider_id="i-1", number="BY-1", currency="GBP",
                          contact_id=contact.id, issue_date=date(2026, 10, 1),
                          due_date=date(2026, 10, 31), total=Decimal("50.00"),
                          amount_paid=Decimal(0), amount_due=Decimal("50.00"), status="open")
        db.session.add(invoice)
        db.session.flush()
        db.session.add(Payment(org_id=org.id, provider_id="p-1", invoice_id=invoice.id,
                               amount=Decimal("1.00"), paid_on=date(2026, 11, 1)))
        action = Action(org_id=org.id, invoice_id=invoice.id, key="bystander-1",
                        kind="reminder", scheduled_for=datetime(2026, 11, 2, tzinfo=UTC),
                        status="done")
        db.session.add(action)
        db.session.flush()
        db.session.add(AuditEvent(org_id=org.id, invoice_id=invoice.id, action_id=action.id,
                                  at=datetime(2026, 11, 2, tzinfo=UTC), kind="action_done",
                                  message="Reminder sent"))
        db.session.commit()
        return org.id


def _synced_and_disconnected(app, connected):  # type: ignore[no-untyped-def]
    """The first sync and the day's reminders by a real worker, then Disconnect."""
    run_jobs(app)
    before = _counts(app, connected.org_id)
    assert all(before[name] > 0 for name in SYNCED), before
    client = _client(app)
    answer = client.post(f"/orgs/{connected.org_id}/disconnect",
                         data={"csrf_token": _csrf(client, connected.org_id)},
                         follow_redirects=True)
    assert answer.status_code == 200
    return client, before, answer


def test_disconnect_shows_the_deletion_date_and_the_export_holds_every_row(
        app, connected) -> None:  # type: ignore[no-untyped-def]
    client, before, answer = _synced_and_disconnected(app, connected)
    # The test clock reads Tuesday 24 November 2026, 10:00 UTC; the grace is 30 days.
    # Dates as a British book reads in English (app/formatting.py).
    assert "will be deleted after 24/12/2026 unless you reconnect" in answer.text
    assert 'id="data-retention"' in answer.text  # the organisation page says it too
    connection = _connection(app, connected.org_id)
    assert connection.status == "disconnected" and connection.grant_id is None
    assert (connection.disconnected_at, connection.purge_after) == (
        datetime(2026, 11, 24, 10, tzinfo=UTC), datetime(2026, 12, 24, 10, tzinfo=UTC))
    page = client.get(f"/orgs/{connected.org_id}/connection")
    assert page.status_code == 200
    assert re.search(r'id="deletion-date">Disconnected on 24/11/2026\. The synced data '
                     r'will be deleted after 24/12/2026 \(Europe/London\)', page.text)

    from store.db import db
    from store.models import Document

    pdfs = {"Final demand INV-1.pdf": b"%PDF-1.7 first", "case/file.pdf": b"%PDF-1.7 second"}
    with app.app_context():
        for filename, content in pdfs.items():
            db.session.add(Document(org_id=connected.org_id, kind="demand_letter",
                                    filename=filename, content_type="application/pdf",
                                    content=content))
        db.session.commit()
    export = client.get(f"/orgs/{connected.org_id}/connection/export")
    assert export.status_code == 200 and export.mimetype == "application/zip"
    assert int(export.headers["Content-Length"]) == len(export.data)
    assert export.headers["Content-Disposition"] == (
        f'attachment; filename="dunwell-org-{connected.org_id}-20261124-100000.zip"')
    archive = zipfile.ZipFile(io.BytesIO(export.data))
    names = set(archive.namelist())
    assert {"organisation.json", "contacts.json", "invoices.json", "payments.json",
            "actions.json", "audit_events.json", "tasks.json", "documents.json",
            "payment_plans.json", "webhook_events.json"} <= names
    files = {name: json.loads(archive.read(name)) for name in names if name.endswith(".json")}
    for name in (*SYNCED, "audit_events"):
        assert len(files[f"{name}.json"]) == _counts(app, connected.org_id)[name], name
    assert {row["org_id"] for name in SYNCED for row in files[f"{name}.json"]} == {
        connected.org_id}
    organisation = files["organisation.json"]
    assert (organisation["connection_status"], organisation["data_deleted_after"]) == (
        "disconnected", "2026-12-24T10:00:00+00:00")
    invoice = files["invoices.json"][0]
    assert isinstance(invoice["total"], str) and Decimal(invoice["total"]) >= 0  # exact text
    sent = [a for a in files["actions.json"] if a["status"] == "done"]
    assert sent and all(a["kind"] == "reminder" for a in sent)
    assert any(e["kind"] == "disconnected" for e in files["audit_events.json"])
    documents = files["documents.json"]
    assert [d["filename"] for d in documents] == list(pdfs)
    assert all("content" not in d for d in documents)
    assert [archive.read(d["file"]) for d in documents] == list(pdfs.values())
    assert documents[1]["file"] == f"documents/{documents[1]['id']}-case-file.pdf"
    blob = b"".join(archive.read(name) for name in names)
    assert b"access_token" not in blob and b"refresh_token" not in blob

    # Only the owner may take the export or delete; a viewer sees the date but not those.
    from store.db import db
    from store.models import Membership, User

    create_user(app, "viewer@example.com", PASSWORD)
    with app.app_context():
        viewer_id = db.session.scalar(select(User.id).where(User.email == "viewer@example.com"))
        db.session.add(Membership(user_id=viewer_id, org_id=connected.org_id, role="viewer"))
        db.session.commit()
    viewer = _client(app, "viewer@example.com")
    seen = viewer.get(f"/orgs/{connected.org_id}/connection")
    assert seen.status_code == 200 and "24/12/2026" in seen.text
    assert "Download the export" not in seen.text
    assert viewer.get(f"/orgs/{connected.org_id}/connection/export").status_code == 403
    refused = viewer.post(f"/orgs/{connected.org_id}/connection/delete-now",
                          data={"csrf_token": _csrf(viewer, connected.org_id),
                                "confirm": "delete"})
    assert refused.status_code == 403
    assert _counts(app, connected.org_id)["invoices"] == before["invoices"]


def test_grace_expiry_deletes_by_job_and_leaves_the_log_and_other_books(
        app, connected, clock) -> None:  # type: ignore[no-untyped-def]
    from jobs import retention
    from store.db import db
    from store.models import AuditEvent

    bystander = _bystander(app)
    _synced_and_disconnected(app, connected)
    untouched = _tenant_rows(app, bystander)
    before = _counts(app, connected.org_id)

    clock.advance(days=29, hours=23, minutes=59)  # one minute before the end of the grace
    with app.app_context():
        assert retention.check_retention() == 0
        assert retention.purge_organisation(connected.org_id) == {"deleted": False}
    assert _counts(app, connected.org_id) == before

    clock.advance(minutes=1)  # 24 December, 10:00: the grace is over
    redis = Redis.from_url(app.config["REDIS_URL"])
    queue = Queue(app.config["RQ_QUEUE"], connection=redis)
    with app.app_context():
        assert retention.check_retention() == 1
        assert retention.check_retention() == 1  # enqueued again: still one job
    assert queue.job_ids == [f"purge-org-{connected.org_id}"]
    assert Job.fetch(f"purge-org-{connected.org_id}", connection=redis).args == (
        connected.org_id,)
    run_jobs(app)

    after = _counts(app, connected.org_id)
    assert {name: after[name] for name in SYNCED} == dict.fromkeys(SYNCED, 0)
    assert after["audit_events"] == before["audit_events"] + 1  # kept, plus the note of it
    with app.app_context():
        note = db.session.scalar(select(AuditEvent).where(
            AuditEvent.org_id == connected.org_id, AuditEvent.kind == "data_deleted"))
        assert note.at == datetime(2026, 12, 24, 10, tzinfo=UTC)
        assert note.data["deleted"]["invoices"] == before["invoices"]
        assert note.message.startswith(f"Synced data deleted after the disconnect: "
                                       f"{before['invoices']} invoices")
        linked = db.session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.org_id == connected.org_id, AuditEvent.invoice_id.is_not(None)))
        assert linked == 0
        db.session.remove()
    connection = _connection(app, connected.org_id)
    assert (connection.purged_at, connection.purge_after) == (
        datetime(2026, 12, 24, 10, tzinfo=UTC), None)
    assert _tenant_rows(app, bystander) == untouched  # another book: not one row changed

    with app.app_context():  # idempotent: a second run, or a second check, does nothing
        assert retention.purge_organisation(connected.org_id) == {"deleted": False}
        assert retention.check_retention() == 0
    page = _client(app).get(f"/orgs/{connected.org_id}")
    assert "The synced data was deleted on 24/12/2026." in page.text


def test_delete_now_needs_the_confirmation_and_cuts_the_grace_short(
        app, connected) -> None:  # type: ignore[no-untyped-def]
    bystander = _bystander(app)
    # While connected there is nothing to delete now.
    run_jobs(app)
    client = _client(app)
    early = client.post(f"/orgs/{connected.org_id}/connection/delete-now",
                        data={"csrf_token": _csrf(client, connected.org_id),
                              "confirm": "delete"}, follow_redirects=True)
    assert "Only a disconnected book whose data is still kept" in early.text
    client, _, _ = _synced_and_disconnected(app, connected)
    untouched = _tenant_rows(app, bystander)
    before = _counts(app, connected.org_id)
    page = client.get(f"/orgs/{connected.org_id}/connection")
    assert 'name="confirm" value="delete" required' in page.text

    unconfirmed = client.post(f"/orgs/{connected.org_id}/connection/delete-now",
                              data={"csrf_token": flows.csrf_token(page.text)},
                              follow_redirects=True)
    assert "Tick the box to confirm" in unconfirmed.text
    no_csrf = client.post(f"/orgs/{connected.org_id}/connection/delete-now",
                          data={"confirm": "delete"})
    assert no_csrf.status_code == 400
    assert _connection(app, connected.org_id).purge_after == datetime(
        2026, 12, 24, 10, tzinfo=UTC)
    assert _counts(app, connected.org_id) == before

    done = client.post(f"/orgs/{connected.org_id}/connection/delete-now",
                       data={"csrf_token": flows.csrf_token(page.text), "confirm": "delete"},
                       follow_redirects=True)
    assert "is being deleted now" in done.text
    assert _connection(app, connected.org_id).purge_after == datetime(
        2026, 11, 24, 10, tzinfo=UTC)
    run_jobs(app)
    after = _counts(app, connected.org_id)
    assert {name: after[name] for name in SYNCED} == dict.fromkeys(SYNCED, 0)
    assert after["audit_events"] == before["audit_events"] + 2  # the request and the deletion
    assert _connection(app, connected.org_id).purged_at == datetime(2026, 11, 24, 10,
                                                                     tzinfo=UTC)
    assert _tenant_rows(app, bystander) == untouched
    shown = client.get(f"/orgs/{connected.org_id}/connection")
    assert "The synced data was deleted on 24/11/2026." in shown.text
    assert 'id="delete-now"' not in shown.text
    # The export still answers, with the activity log the owner keeps.
    kept = zipfile.ZipFile(io.BytesIO(client.get(
        f"/orgs/{connected.org_id}/connection/export").data))
    assert json.loads(kept.read("invoices.json")) == []
    assert len(json.loads(kept.read("audit_events.json"))) == after["audit_events"]


def test_reconnecting_within_the_grace_cancels_the_deletion(
        app, connected, clock) -> None:  # type: ignore[no-untyped-def]
    from jobs import retention
    from store.db import db
    from store.models import AuditEvent

    _synced_and_disconnected(app, connected)
    before = _counts(app, connected.org_id)
    clock.advance(days=10)
    landed = flows.answer_consent(connected.http, flows.start_connect(
        connected.http, connected.web.url), "allow")
    assert landed.status_code == 200
    connection = _connection(app, connected.org_id)  # the same tenant, the same organisation
    assert (connection.status, connection.purge_after, connection.disconnected_at) == (
        "active", None, None)
    with app.app_context():
        assert db.session.scalar(select(AuditEvent.message).where(
            AuditEvent.org_id == connected.org_id, AuditEvent.kind == "deletion_cancelled")
        ) == "Reconnected within the grace period: the synced data is kept"
        db.session.remove()
    clock.advance(days=25)  # past the old deadline
    with app.app_context():
        assert retention.check_retention() == 0
        assert retention.purge_organisation(connected.org_id) == {"deleted": False}
    after = _counts(app, connected.org_id)
    assert {name: after[name] for name in SYNCED} == {name: before[name] for name in SYNCED}
    page = _client(app).get(f"/orgs/{connected.org_id}")
    assert 'id="data-retention"' not in page.text


def test_the_grace_period_is_configurable_and_checked(app, connected, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from jobs import retention

    with app.app_context():
        monkeypatch.setenv("DUNWELL_DISCONNECT_GRACE_DAYS", "seven")
        with pytest.raises(retention.GraceSettingInvalid, match="whole number of days"):
            retention.grace_period()
        monkeypatch.setenv("DUNWELL_DISCONNECT_GRACE_DAYS", "400")
        with pytest.raises(retention.GraceSettingInvalid, match="from 0 to 365"):
            retention.grace_period()
    monkeypatch.setenv("DUNWELL_DISCONNECT_GRACE_DAYS", "7")
    _, _, answer = _synced_and_disconnected(app, connected)
    assert "will be deleted after 01/12/2026 unless you reconnect" in answer.text
    assert _connection(app, connected.org_id).purge_after == datetime(2026, 12, 1, 10,
                                                                       tzinfo=UTC)
