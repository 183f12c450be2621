"""Texts as a ladder step, against the Twilio emulator and both books' sandboxes: sent once,
in the customer's hours, by email where no text can go (a landline, an unparseable number, a
STOP, an undelivered text), and never twice after a lost answer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from sqlalchemy import select

from sandboxes.twilio import (
    DEMO_ACCOUNT_SID,
    DEMO_AUTH_TOKEN,
    SandboxConfig,
    TwilioFaults,
    TwilioSandbox,
    create_app,
)
from tests.conftest import LiveServer
from tests.integration.conftest import Connected, connect, run_jobs

pytestmark = pytest.mark.db

SENDER = "+15005550006"
POLICY = {"version": 2, "first_contact": {"tone": "firm"},
          "reminder_steps": [{"offset_days": 0, "channel": "sms", "tone": "firm"}]}
# phonenumbers' example numbers: no real person's.
GB_MOBILE, GB_LANDLINE, US_NUMBER = "+447400123456", "+441212345678", "+12015550123"


@pytest.fixture
def twilio(clock) -> Iterator[tuple[TwilioSandbox, LiveServer, TwilioFaults]]:  # type: ignore[no-untyped-def]
    state = TwilioSandbox(SandboxConfig(clock=clock, auto_progress=False))
    faults = TwilioFaults(create_app(state))
    server = LiveServer(faults)
    yield state, server, faults
    server.stop()


def set_number(provider: str, box: Any, tenant: str, contact_id: str, mobile: str) -> None:
    """The contact's mobile in the books, as each provider holds it, changed now (the next
    incremental sync reads it)."""
    if provider == "xero":
        contact = box.tenant(tenant).contacts[contact_id]
        contact["Phones"] = [{"PhoneType": "MOBILE", "PhoneNumber": mobile,
                              "PhoneAreaCode": "", "PhoneCountryCode": ""}]
        contact["_updated"] = box.now
    else:
        customer = box.company(tenant).records["Customer"][contact_id]
        customer["Mobile"] = {"FreeFormNumber": mobile}
        box.touch(customer)


def set_up(app, web, clock, sandbox, qbo_sandbox, twilio, provider: str,  # type: ignore[no-untyped-def]
           mobile: str = "") -> tuple[Connected, Any, int]:
    """Connected, texts on (the server's account: the emulator), the policy a one-step SMS
    ladder, and one long-overdue invoice watched (its contact's mobile `mobile`, or the
    provider's customer number when empty); the id of that invoice."""
    from jobs.tasks import sync_org
    from store.db import db
    from store.models import Contact, Invoice, Policy, SmsSettings

    if provider == "quickbooks":
        clock.set(datetime(2026, 11, 24, 18, 0, tzinfo=UTC))  # 10:00 in California
    connected = connect(app, web, provider)
    box = (sandbox if provider == "xero" else qbo_sandbox)[0]
    app.config.update(TWILIO_ACCOUNT_SID=DEMO_ACCOUNT_SID, TWILIO_AUTH_TOKEN=DEMO_AUTH_TOKEN,
                      TWILIO_FROM=SENDER, TWILIO_API_URL=twilio[1].url, BASE_URL=web.url)
    with app.app_context():
        sync_org(connected.org_id, plan_after=False)
        target = next(i for i in db.session.scalars(select(Invoice).where(
            Invoice.org_id == connected.org_id, Invoice.status == "open").order_by(Invoice.id))
            if i.contact is not None and i.contact.email and i.amount_paid == 0
            and i.due_date is not None and (clock().date() - i.due_date).days > 30)
        target_id, contact_id = target.id, target.contact_id
        clock.advance(seconds=2)
        set_number(provider, box, connected.tenant_id, target.contact.provider_id,
                   mobile or (GB_MOBILE if provider == "xero" else "(201) 555-0123"))
        for other in db.session.scalars(select(Contact).where(Contact.id != contact_id)):
            other.excluded = True
        for invoice in db.session.scalars(select(Invoice).where(
                Invoice.contact_id == contact_id, Invoice.id != target_id)):
            invoice.disputed = True
        row = db.session.scalars(select(Policy).where(Policy.org_id == connected.org_id)).one()
        row.body = json.loads(json.dumps(POLICY))
        db.session.add(SmsSettings(org_id=connected.org_id, enabled=True))
        db.session.commit()
        sync_org(connected.org_id, plan_after=False)  # the number comes with the contact
        assert db.session.get(Contact, contact_id).mobile
    return connected, box, target_id


def run_day(app, org_id: int) -> None:  # type: ignore[no-untyped-def]
    from jobs.tasks import enqueue_sync

    with app.app_context():
        enqueue_sync(org_id)
    run_jobs(app)


def reminder(app, invoice_id: int) -> Any:  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import Action

    return db.session.scalars(select(Action).where(Action.invoice_id == invoice_id,
                                                   Action.kind == "reminder")).one()


def emails(provider: str, box: Any, tenant: str) -> list[str]:
    if provider == "xero":
        return [e["InvoiceID"] for e in box.emails(tenant)]
    return [str(e["InvoiceId"]) for e in box.emails(tenant)]


@pytest.mark.parametrize("provider", ["xero", "quickbooks"])
def test_a_ladders_sms_step_texts_once_on_both_providers(  # type: ignore[no-untyped-def]
        app, web, clock, sandbox, qbo_sandbox, twilio, provider: str) -> None:
    from store.db import db
    from store.models import Invoice, SmsMessage

    state = twilio[0]
    connected, box, target_id = set_up(app, web, clock, sandbox, qbo_sandbox, twilio, provider)
    run_day(app, connected.org_id)
    with app.app_context():
        action = reminder(app, target_id)
        invoice = db.session.get(Invoice, target_id)
        assert action.status == "done", (action.status, action.error, action.result)
        assert action.result["texted"] and "sms_fallback" not in action.result
        number = GB_MOBILE if provider == "xero" else US_NUMBER
        sent = [m for m in state.messages.values() if m["direction"] == "outbound-api"]
        assert [(m["to"], m["from"], m["sid"]) for m in sent] == [
            (number, SENDER, action.result["texted"])]
        body = sent[0]["body"]
        # The customer's portal link, which opens for them (pay, promise, dispute, ask).
        assert invoice.number in body and f"{web.url}/portal/" in body
        link = body[body.index(f"{web.url}/portal/"):].split()[0].rstrip(".")
        assert requests.get(link, timeout=10).status_code == 200
        assert body == action.result["sms_body"]
        assert emails(provider, box, connected.tenant_id) == []  # a text, not an email
    state.settle()  # sent, then delivered: each status posted to our webhook, signed
    with app.app_context():
        message = db.session.scalars(select(SmsMessage)).one()
        assert (message.status, message.number, message.action_id) == (
            "delivered", number, action.id)
        assert [p["status"] for p in state.posted] == [204, 204]
    run_day(app, connected.org_id)  # the day runs again: nothing more
    assert len([m for m in state.messages.values() if m["direction"] == "outbound-api"]) == 1


@pytest.mark.parametrize(("mobile", "reason"), [
    (GB_LANDLINE, "not_mobile"), ("call the office", "unparseable")])
def test_no_text_to_a_landline_or_unparseable_number_the_step_emails(  # type: ignore[no-untyped-def]
        app, web, clock, sandbox, qbo_sandbox, twilio, mobile: str, reason: str) -> None:
    from store.db import db
    from store.models import AuditEvent

    connected, box, target_id = set_up(app, web, clock, sandbox, qbo_sandbox, twilio, "xero",
                                       mobile=mobile)
    run_day(app, connected.org_id)
    with app.app_context():
        action = reminder(app, target_id)
        assert action.status == "done" and action.result["sms_fallback"] == reason
        assert "texted" not in action.result
        assert emails("xero", box, connected.tenant_id) == [action.invoice.provider_id]
        logged = db.session.scalars(select(AuditEvent).where(
            AuditEvent.kind == "sms_fallback")).one()
        assert logged.data == {"reason": reason, "number": action.invoice.number}
        assert logged.action_id == action.id
    assert twilio[0].messages == {}


def test_a_lost_answer_is_looked_up_not_sent_again(  # type: ignore[no-untyped-def]
        app, web, clock, sandbox, qbo_sandbox, twilio) -> None:
    from collect.outcomes import RetryLater
    from collect.plan import plan_org
    from jobs.tasks import execute_action, sync_org
    from store.db import db
    from store.models import Organisation

    state, _, faults = twilio
    connected, _, target_id = set_up(app, web, clock, sandbox, qbo_sandbox, twilio, "xero")
    faults.add("lost_answer", method="POST", path=r"/Messages\.json$")
    with app.app_context():
        sync_org(connected.org_id, plan_after=False)
        plan_org(db.session, db.session.get(Organisation, connected.org_id), clock())
        db.session.commit()
        action = reminder(app, target_id)
        with pytest.raises(RetryLater):
            execute_action(action.id)
        db.session.refresh(action)
        assert action.status == "failed" and action.result["writing"] == "texted"
        assert len(state.messages) == 1  # it went, though the answer never came
        clock.advance(minutes=2)
        assert execute_action(action.id) == "done"
        db.session.refresh(action)
        assert action.result["texted"] == next(iter(state.messages))
    assert len(state.messages) == 1 and faults.count("lost_answer") == 1


def test_stop_and_start_replies(app, web, clock, sandbox, qbo_sandbox, twilio) -> None:  # type: ignore[no-untyped-def]
    from collect.sms import opted_out
    from store.db import db
    from store.models import AuditEvent

    state, server, _ = twilio
    connected, _, target_id = set_up(app, web, clock, sandbox, qbo_sandbox, twilio, "xero")
    run_day(app, connected.org_id)
    with app.app_context():
        customer = f"{web.url}/orgs/{connected.org_id}/customers/" \
            f"{reminder(app, target_id).invoice.contact_id}"
    assert "Texts go to +44740012••••." in connected.http.get(customer).text
    inbound = f"{web.url}/webhooks/twilio/inbound"
    for body in ("Stopp", "START", "עצור"):
        answer = requests.post(f"{server.url}/_sandbox/inbound", timeout=5, data={
            "From": GB_MOBILE, "To": SENDER, "Body": body, "Url": inbound})
        assert answer.status_code == 200
        assert state.posted[-1]["status"] == 200
        with app.app_context():
            assert opted_out(db.session, connected.org_id, GB_MOBILE) is (body != "START")
    with app.app_context():
        kinds = [e.kind for e in db.session.scalars(select(AuditEvent).where(
            AuditEvent.kind.like("sms_opt%")).order_by(AuditEvent.id))]
        assert kinds == ["sms_opt_out", "sms_opt_in", "sms_opt_out"]
    # A reply nobody signed changes nothing.
    forged = requests.post(inbound, timeout=5, data={
        "From": GB_MOBILE, "To": SENDER, "Body": "START", "AccountSid": DEMO_ACCOUNT_SID},
        headers={"X-Twilio-Signature": "bm90IHNpZ25lZA=="})
    assert forged.status_code == 403
    with app.app_context():
        assert opted_out(db.session, connected.org_id, GB_MOBILE)
    assert "No texts: replied STOP; reminders go by email." in connected.http.get(customer).text


def test_an_opted_out_number_gets_email_instead(  # type: ignore[no-untyped-def]
        app, web, clock, sandbox, qbo_sandbox, twilio) -> None:
    from collect.sms import record_reply
    from store.db import db

    connected, box, target_id = set_up(app, web, clock, sandbox, qbo_sandbox, twilio, "xero")
    with app.app_context():
        record_reply(db.session, connected.org_id, GB_MOBILE, "opt_out", "STOP", clock())
        db.session.commit()
    run_day(app, connected.org_id)
    with app.app_context():
        action = reminder(app, target_id)
        assert action.status == "done" and action.result["sms_fallback"] == "opted_out"
        assert emails("xero", box, connected.tenant_id) == [action.invoice.provider_id]
    assert twilio[0].messages == {}


def test_an_undelivered_text_counts_as_not_sent_and_the_step_emails(  # type: ignore[no-untyped-def]
        app, web, clock, sandbox, qbo_sandbox, twilio) -> None:
    state = twilio[0]
    state.fail_number(GB_MOBILE, "undelivered", 30003)
    connected, box, target_id = set_up(app, web, clock, sandbox, qbo_sandbox, twilio, "xero")
    run_day(app, connected.org_id)
    state.settle()  # undelivered: our webhook fails the action and queues it again
    run_jobs(app)
    with app.app_context():
        action = reminder(app, target_id)
        assert action.status == "done", (action.status, action.result)
        assert action.result["sms_fallback"] == "undelivered"
        assert action.result["sms_undelivered"] == action.result["texted"]
        assert emails("xero", box, connected.tenant_id) == [action.invoice.provider_id]
    assert len(state.messages) == 1


def test_quiet_hours_in_the_customers_zone(  # type: ignore[no-untyped-def]
        app, web, clock, sandbox, qbo_sandbox, twilio) -> None:
    """10:00 in London is 05:00 in New York: a US customer's text waits for 09:00 there."""
    from collect.plan import plan_org
    from jobs.tasks import execute_action, sync_org
    from store.db import db
    from store.models import Organisation, SmsSettings

    state = twilio[0]
    connected, _, target_id = set_up(app, web, clock, sandbox, qbo_sandbox, twilio, "xero",
                                     mobile=US_NUMBER)
    with app.app_context():
        # A name as sender: the US takes texts from numbers only, so the server's number.
        db.session.scalars(select(SmsSettings)).one().sender = "Harbour"
        db.session.commit()
        sync_org(connected.org_id, plan_after=False)
        plan_org(db.session, db.session.get(Organisation, connected.org_id), clock())
        db.session.commit()
        action = reminder(app, target_id)
        assert execute_action(action.id) == "deferred"
        db.session.refresh(action)
        assert (action.status, action.attempts) == ("planned", 0)
        assert state.messages == {}
        clock.set(datetime(2026, 11, 24, 14, 0, tzinfo=UTC))  # 09:00 in New York
        assert execute_action(action.id) == "done"
    assert [(m["to"], m["from"]) for m in state.messages.values()] == [(US_NUMBER, SENDER)]


def test_the_settings_page_saves_an_own_account_encrypted_and_previews_segments(  # type: ignore[no-untyped-def]
        app, web, clock, sandbox, qbo_sandbox, twilio) -> None:
    from collect.sms import account_for
    from store.db import db
    from store.models import SmsSettings
    from tests.integration import flows

    connected, _, _ = set_up(app, web, clock, sandbox, qbo_sandbox, twilio, "xero",
                             mobile=GB_LANDLINE)
    page = connected.http.get(f"{web.url}/orgs/{connected.org_id}/sms")
    assert page.status_code == 200
    assert "GSM-7" in page.text and "UCS-2" in page.text  # English and Hebrew texts
    assert "the number is not a mobile" in page.text  # the watched customer's landline
    own_sid, own_token = "AC" + "1" * 32, "0123456789abcdef0123456789abcdef"
    refused = connected.http.post(f"{web.url}/orgs/{connected.org_id}/sms", data={
        "csrf_token": flows.csrf_token(page.text), "enabled": "on", "account_sid": own_sid,
        "sender": "Not a valid sender id"})
    assert refused.status_code == 400
    saved = connected.http.post(f"{web.url}/orgs/{connected.org_id}/sms", data={
        "csrf_token": flows.csrf_token(page.text), "enabled": "on", "account_sid": own_sid,
        "auth_token": own_token, "sender": "Harbour", "cost_per_segment": "0.05",
        "cost_currency": "gbp"})
    assert saved.status_code == 200 and "GBP 0.10 a message" in saved.text
    with app.app_context():
        row = db.session.scalars(select(SmsSettings)).one()
        assert row.auth_token_enc and own_token not in row.auth_token_enc
        account = account_for(db.session, connected.org_id)
        assert (account.account_sid, account.auth_token, account.sender) == (
            own_sid, own_token, "Harbour")
