"""A one-off reminder from an invoice's page, against both books' sandboxes, the Twilio emulator
and a real SMTP sink: previewed (the exact words, a text's segments), sent once by the channel
chosen (a lost answer looked up, not sent again), in the ledger, the activity log and on the
timeline with who asked; a text asked for at night in the customer's zone booked for their
morning; the ladder left where it was; a landline, an opted-out number, an unknown text and a
viewer refused, nothing saved."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from sqlalchemy import func, select

from tests.integration.conftest import Connected, run_jobs
from tests.integration.test_escalation_e2e import smtp  # noqa: F401 (a fixture)
from tests.integration.test_sms_channel import (  # noqa: F401 (twilio: a fixture)
    GB_LANDLINE,
    GB_MOBILE,
    US_NUMBER,
    set_up,
    twilio,
)

pytestmark = pytest.mark.db

LINE = "As promised on the phone, here is the link."


def _page(connected: Connected, invoice_id: int, **query: str) -> requests.Response:
    url = f"{connected.web.url}/orgs/{connected.org_id}/invoices/{invoice_id}"
    return connected.http.get(url, params=query or None, timeout=10)


def preview(connected: Connected, invoice_id: int, channel: str, tone: str = "friendly",
            line: str = LINE) -> str:
    page = _page(connected, invoice_id, one_off="preview", channel=channel, tone=tone,
                 line=line)
    assert page.status_code == 200
    return page.text


def send(connected: Connected, invoice_id: int, page: str,
         **changes: str) -> requests.Response:
    """Press "Send this reminder" on a preview (its hidden fields, some changed: a forged
    form), following the redirect back to the page."""
    form = re.search(r'<form method="post" action="([^"]+)" id="one-off-send">(.*?)</form>',
                     page, re.S)
    assert form is not None, "no send button under the preview"
    fields = {name: html.unescape(value) for name, value in re.findall(
        r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form.group(2))}
    return connected.http.post(connected.web.url + form.group(1),
                               data={**fields, **changes}, timeout=30)


def shown(text: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", text))


def _mail(app, web, smtp_fixture) -> Any:  # type: ignore[no-untyped-def]
    sink, port = smtp_fixture
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_STARTTLS=False,
                      MAIL_FROM="reminders@example.com")
    return sink


def _rows(app, model, invoice_id: int, **where: Any) -> list[Any]:  # type: ignore[no-untyped-def]
    from store.db import db

    with app.app_context():
        query = select(model).where(model.invoice_id == invoice_id)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        found = list(db.session.scalars(query.order_by(model.id)))
        db.session.expunge_all()
        db.session.remove()
    return found


@pytest.mark.parametrize("provider", ["xero", "quickbooks"])
def test_a_one_off_text_and_email_go_once_and_leave_the_ladder_be(  # type: ignore[no-untyped-def]
        app, web, clock, sandbox, qbo_sandbox, twilio, smtp, provider: str) -> None:  # noqa: F811
    from jobs.tasks import execute_action
    from store.models import Action, AuditEvent

    state, _, faults = twilio
    connected, _, target_id = set_up(app, web, clock, sandbox, qbo_sandbox, twilio, provider)
    sink = _mail(app, web, smtp)
    run_jobs(app)  # the day's run that going live booked: the ladder's first step texted
    ladder = [(a.key, a.status) for a in _rows(app, Action, target_id, kind="reminder")]
    assert ladder and all(status == "done" for _, status in ladder)
    ladder_texts = set(state.messages)
    before = shown(_page(connected, target_id).text)
    ladder_next = re.search(r'<p id="next-action">(.*?)</p>', before, re.S)
    assert ladder_next is not None

    # A text: the exact words, its segments, when it goes; then sent, its answer lost.
    previewed = preview(connected, target_id, "sms", "firm")
    words = shown(previewed)
    assert 'id="one-off-preview"' in previewed and LINE in words
    assert re.search(r"\d+ characters, \d segment\(s\) in GSM-7", words), words
    assert "It goes out now." in words
    faults.add("lost_answer", method="POST", path=r"/Messages\.json$")
    done = send(connected, target_id, previewed)
    assert done.status_code == 200 and "The one-off reminder goes out now." in shown(done.text)
    run_jobs(app)  # the text went, its answer was lost: failed, to be tried again
    [text_action] = _rows(app, Action, target_id, kind="one_off_reminder")
    assert text_action.status == "failed" and text_action.result["writing"] == "texted"
    assert len(set(state.messages) - ladder_texts) == 1
    clock.advance(minutes=2)
    with app.app_context():
        assert execute_action(text_action.id) == "done"
    [text_action] = _rows(app, Action, target_id, kind="one_off_reminder")
    sent = [m for sid, m in state.messages.items() if sid not in ladder_texts]
    assert len(sent) == 1 and text_action.result["texted"] == sent[0]["sid"]
    number = GB_MOBILE if provider == "xero" else US_NUMBER
    assert sent[0]["to"] == number and sent[0]["body"].startswith(LINE)
    assert sent[0]["body"] == text_action.details["text"]  # the previewed words
    assert text_action.channel == "sms" and text_action.tone == "firm"
    assert text_action.details["by"] == "owner@example.com"

    # An email in Dunwell's words, with the personal line; sent once.
    previewed = preview(connected, target_id, "dunwell_email", "friendly")
    subject = re.search(r'id="one-off-subject"><strong>Subject:</strong> <bdi[^>]*>(.*?)</bdi>',
                        previewed)
    assert subject is not None
    done = send(connected, target_id, previewed)
    assert "The one-off reminder goes out now." in shown(done.text)
    run_jobs(app)
    actions = _rows(app, Action, target_id, kind="one_off_reminder")
    assert [(a.channel, a.status) for a in actions] == [("sms", "done"),
                                                        ("dunwell_email", "done")]
    email_action = actions[1]
    with app.app_context():
        assert execute_action(email_action.id) == "done"  # again: nothing more goes
    assert len(sink.messages) == 1
    mail = sink.messages[0]
    assert mail["Subject"] == html.unescape(subject.group(1))
    plain = next(p for p in mail.walk() if p.get_content_type() == "text/plain")
    body = plain.get_payload(decode=True).decode().replace("\r\n", "\n")
    assert LINE in body and email_action.details["text"].strip() in body
    assert len(state.messages) == len(ladder_texts) + 1

    # The ladder: no step taken, none reset; what happens next is what it was.
    assert [(a.key, a.status) for a in _rows(app, Action, target_id, kind="reminder")] == \
        ladder
    after = shown(_page(connected, target_id).text)
    assert re.search(r'<p id="next-action">(.*?)</p>', after, re.S).group(1) == \
        ladder_next.group(1)  # type: ignore[union-attr]

    # The activity log: who asked, by which channel, and what was done.
    asked = _rows(app, AuditEvent, target_id, kind="one_off_requested")
    assert [(e.data["channel"], e.data["tone"], e.data["by"], e.data["later"])
            for e in asked] == [("sms", "firm", "owner@example.com", False),
                                ("dunwell_email", "friendly", "owner@example.com", False)]
    assert [e.action_id for e in asked] == [a.id for a in actions]
    finished = [e for e in _rows(app, AuditEvent, target_id, kind="action_done")
                if e.action_id in {a.id for a in actions}]
    assert len(finished) == 2
    # The timeline: each with its channel and exact words, and who asked.
    assert "One-off reminder" in after and "Text message (SMS)" in after
    assert "Dunwell email" in after and sent[0]["body"] in after
    assert "by owner@example.com" in after
    invoice_number = text_action.reason.split(" for ")[1].split(",")[0]
    assert f"One-off reminder for {invoice_number} (Text message (SMS), Firm tone) asked for by" \
        " owner@example.com; it goes out now" in after  # worded from the event's data
    assert "outside the allowed hours" not in after


def test_a_text_asked_for_at_night_is_booked_for_the_customers_morning(  # type: ignore[no-untyped-def]
        app, web, clock, sandbox, qbo_sandbox, twilio) -> None:  # noqa: F811
    """10:00 in London is 05:00 in New York: the text waits for 09:00 there, and says so."""
    from jobs.tasks import execute_action
    from store.models import Action, AuditEvent

    state = twilio[0]
    connected, _, target_id = set_up(app, web, clock, sandbox, qbo_sandbox, twilio, "xero",
                                     mobile=US_NUMBER)
    run_jobs(app)  # the day's run that going live booked (its ladder text waits too)
    previewed = preview(connected, target_id, "sms")
    assert "it goes out on" in shown(previewed) and "at 09:00 (America/New_York)" in \
        shown(previewed)
    done = shown(send(connected, target_id, previewed).text)
    assert "Outside the allowed hours: the one-off reminder goes out on" in done
    assert "at 09:00 (America/New_York)." in done
    [action] = _rows(app, Action, target_id, kind="one_off_reminder")
    morning = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)  # 09:00 in New York
    assert action.scheduled_for == morning and action.status == "planned"
    [asked] = _rows(app, AuditEvent, target_id, kind="one_off_requested")
    assert (asked.data["later"], asked.data["send_time"], asked.data["zone"]) == (
        True, "09:00", "America/New_York")
    page = shown(_page(connected, target_id).text)
    assert "outside the allowed hours, it goes out on 24/11/2026 at 09:00 (America/New_York)" \
        in page  # the activity log's entry on the timeline
    run_jobs(app)  # its job runs now: it waits, uncounted
    [action] = _rows(app, Action, target_id, kind="one_off_reminder")
    assert (action.status, action.attempts) == ("planned", 0) and state.messages == {}
    clock.set(morning)
    with app.app_context():
        assert execute_action(action.id) == "done"
    assert [m["to"] for m in state.messages.values()] == [US_NUMBER]


def test_an_email_asked_for_after_hours_waits_for_the_send_window(  # type: ignore[no-untyped-def]
        app, web, clock, sandbox, qbo_sandbox, twilio, smtp) -> None:  # noqa: F811
    """20:00 in London, after the policy's window (09:00 for 8 hours): the email is booked for
    09:00 the next business day, as the ladder's emails are, and its job sends nothing before."""
    from jobs.tasks import execute_action
    from store.models import Action

    connected, _, target_id = set_up(app, web, clock, sandbox, qbo_sandbox, twilio, "xero")
    sink = _mail(app, web, smtp)
    run_jobs(app)  # the day's run that going live booked
    clock.set(datetime(2026, 11, 24, 20, 0, tzinfo=UTC))
    previewed = preview(connected, target_id, "dunwell_email")
    assert "it goes out on 25/11/2026 at 09:00 (Europe/London)" in shown(previewed)
    done = shown(send(connected, target_id, previewed).text)
    assert "the one-off reminder goes out on 25/11/2026 at 09:00 (Europe/London)." in done
    run_jobs(app)
    [action] = _rows(app, Action, target_id, kind="one_off_reminder")
    morning = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    assert (action.scheduled_for, action.status, action.attempts) == (morning, "planned", 0)
    assert sink.messages == []
    clock.set(morning)
    with app.app_context():
        assert execute_action(action.id) == "done"
    assert len(sink.messages) == 1


def test_a_booked_reminder_whose_invoice_changed_is_not_sent(  # type: ignore[no-untyped-def]
        app, web, clock, sandbox, qbo_sandbox, twilio) -> None:  # noqa: F811
    """Its words name the amount owed: part paid overnight, it is skipped with the reason."""
    from decimal import Decimal

    from jobs.tasks import execute_action
    from store.db import db
    from store.models import Action, Invoice

    connected, _, target_id = set_up(app, web, clock, sandbox, qbo_sandbox, twilio, "xero",
                                     mobile=US_NUMBER)
    run_jobs(app)
    send(connected, target_id, preview(connected, target_id, "sms"))
    [action] = _rows(app, Action, target_id, kind="one_off_reminder")
    with app.app_context():
        provider_id = db.session.get(Invoice, target_id).provider_id
    sandbox[0].pay_invoice(connected.tenant_id, provider_id, Decimal("10.00"))
    clock.set(datetime(2026, 11, 24, 14, 0, tzinfo=UTC))
    with app.app_context():
        assert execute_action(action.id) == "skipped"
    [action] = _rows(app, Action, target_id, kind="one_off_reminder")
    assert action.result["reason"] == "changed_since_asked" and twilio[0].messages == {}
    page = shown(_page(connected, target_id).text)
    assert "the invoice changed since it was asked for; ask again if it should still go" in page


def test_the_same_form_twice_is_one_reminder_held_in_safe_mode(  # type: ignore[no-untyped-def]
        app, web, clock, sandbox, qbo_sandbox, twilio) -> None:  # noqa: F811
    from store.db import db
    from store.models import Action, Organisation

    connected, _, target_id = set_up(app, web, clock, sandbox, qbo_sandbox, twilio, "xero")
    with app.app_context():
        db.session.get(Organisation, connected.org_id).safe_mode = True
        db.session.commit()
    previewed = preview(connected, target_id, "sms")
    done = shown(send(connected, target_id, previewed).text)
    assert "The one-off reminder waits for approval (safe mode)." in done
    again = shown(send(connected, target_id, previewed).text)
    assert "This reminder was asked for already." in again
    [action] = _rows(app, Action, target_id, kind="one_off_reminder")
    assert action.status == "pending_approval"
    run_jobs(app)
    assert twilio[0].messages == {}


def _saved(app, invoice_id: int) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import Action, AuditEvent

    with app.app_context():
        found = tuple(db.session.scalar(select(func.count()).select_from(model).where(
            model.invoice_id == invoice_id)) for model in (Action, AuditEvent))
        db.session.remove()
    return found  # type: ignore[return-value]


@pytest.mark.parametrize("why", ["landline", "opted_out"])
def test_no_text_to_a_landline_or_an_opted_out_number(  # type: ignore[no-untyped-def]
        app, web, clock, sandbox, qbo_sandbox, twilio, why: str) -> None:  # noqa: F811
    from collect.sms import record_reply
    from store.db import db

    connected, _, target_id = set_up(app, web, clock, sandbox, qbo_sandbox, twilio, "xero",
                                     mobile=GB_LANDLINE if why == "landline" else GB_MOBILE)
    if why == "opted_out":
        with app.app_context():
            record_reply(db.session, connected.org_id, GB_MOBILE, "opt_out", "STOP", clock())
            db.session.commit()
    reason = {"landline": "the number is not a mobile", "opted_out": "replied STOP"}[why]
    page = _page(connected, target_id).text
    assert re.search(r'<input type="radio" id="one-off-sms" name="channel" value="sms" '
                     r'disabled', page)
    assert f"No texts: {reason}." in shown(page)
    # Asked for anyway (a forged form): refused in words, nothing saved, nothing sent.
    previewed = preview(connected, target_id, "dunwell_email")
    before = _saved(app, target_id)
    answer = shown(send(connected, target_id, previewed, channel="sms", previewed="").text)
    assert f"No text can go to this customer: {reason}." in answer
    assert _saved(app, target_id) == before and twilio[0].messages == {}
    refused = shown(preview(connected, target_id, "sms"))
    assert f"No text can go to this customer: {reason}." in refused
    assert 'id="one-off-send"' not in refused


@pytest.mark.parametrize(("changes", "said"), [
    ({"tone": "cheerful"}, "Please choose one of the organisation's reminder texts."),
    ({"channel": "fax"}, "Please choose email or text message."),
    ({"line": "x" * 301}, "A personal line may hold at most 300 characters."),
    ({"line": "Other words than the preview's"},
     "What would go out is not what the preview showed: preview it again before sending."),
    ({"csrf_token": ""}, None),  # no CSRF token: refused as every form is
])
def test_bad_input_is_refused_in_words_and_saves_nothing(  # type: ignore[no-untyped-def]
        app, web, clock, sandbox, qbo_sandbox, twilio, changes: dict[str, str],  # noqa: F811
        said: str | None) -> None:
    connected, _, target_id = set_up(app, web, clock, sandbox, qbo_sandbox, twilio, "xero")
    previewed = preview(connected, target_id, "sms")
    before = _saved(app, target_id)
    answer = send(connected, target_id, previewed, **changes)
    if said is None:
        assert answer.status_code == 400
    else:
        assert said in shown(answer.text)
    assert _saved(app, target_id) == before and twilio[0].messages == {}


def test_a_viewer_sees_no_one_off_form_and_is_refused(app) -> None:  # type: ignore[no-untyped-def]
    import tests.integration.test_invoice_list as listing
    from tests.integration import flows
    from tests.integration.test_invoice_actions import signed_in_viewer

    book = listing.craft_book(app)
    invoice_id = book.ids["INV-002"]
    base = f"/orgs/{book.org_id}/invoices/{invoice_id}"
    client = signed_in_viewer(app, book.org_id)
    page = client.get(f"{base}?one_off=preview&channel=dunwell_email&tone=friendly")
    assert page.status_code == 200
    assert 'id="one-off-form"' not in page.text and 'id="one-off-preview"' not in page.text
    before = _saved(app, invoice_id)
    answer = client.post(f"{base}/one-off", data={
        "csrf_token": flows.csrf_token(page.text), "channel": "dunwell_email",
        "tone": "friendly", "line": ""})
    assert answer.status_code == 403
    assert _saved(app, invoice_id) == before


def test_a_text_twilio_refuses_is_not_sent_and_nothing_says_it_went_by_email(  # type: ignore[no-untyped-def]
        app, web, clock, sandbox, qbo_sandbox, twilio) -> None:  # noqa: F811
    """The customer texted STOP to Twilio, which Dunwell has not heard: Twilio refuses the
    one-off text (21610). It is skipped with that reason; unlike a ladder step's text, no
    email replaces it, and neither the activity log nor the ledger says one did."""
    from store.models import Action, AuditEvent

    state = twilio[0]
    connected, _, target_id = set_up(app, web, clock, sandbox, qbo_sandbox, twilio, "xero")
    run_jobs(app)  # the ladder's first step, texted
    senders = {message["from"] for message in state.messages.values()}
    ladder_texts = set(state.messages)
    send(connected, target_id, preview(connected, target_id, "sms"))
    state.opted_out.update((GB_MOBILE, sender) for sender in senders)
    run_jobs(app)
    [action] = _rows(app, Action, target_id, kind="one_off_reminder")
    assert action.status == "skipped" and action.result["reason"] == "opted_out", action.result
    assert set(state.messages) == ladder_texts  # nothing more was sent
    said = _rows(app, AuditEvent, target_id, action_id=action.id)
    assert said and not [e for e in said if e.kind == "sms_fallback"], [
        (e.kind, e.message) for e in said]
    assert not any("by email" in (e.message or "") for e in said)
