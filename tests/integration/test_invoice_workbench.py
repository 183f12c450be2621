"""The collector's workbench on an invoice's page, past promises and disputes: pause chasing
(until a day or until resumed) and resume it, a note that goes to the books through the ledger
(once per form), the next reminder now through the ledger, and a payment plan by the command
line's rules. Each is in the activity log with the person who did it; bad input is refused in
plain words and saves nothing; a viewer sees no button and the server refuses their POSTs."""

from __future__ import annotations

import html
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

import tests.integration.test_invoice_list as listing
from tests.integration import flows
from tests.integration.test_invoice_actions import _post, _signed_in, signed_in_viewer

pytestmark = pytest.mark.db


def _rows(app, model, invoice_id: int) -> list:  # type: ignore[no-untyped-def]
    from store.db import db

    with app.app_context():
        found = list(db.session.scalars(select(model).where(model.invoice_id == invoice_id)
                                        .order_by(model.id)))
        db.session.expunge_all()
        db.session.remove()
    return found


def _events(app, invoice_id: int, kind: str) -> list:  # type: ignore[no-untyped-def]
    from store.models import AuditEvent

    return [e for e in _rows(app, AuditEvent, invoice_id) if e.kind == kind]


def _next_action_at(app, invoice_id: int):  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import Invoice

    with app.app_context():
        found = db.session.get(Invoice, invoice_id).next_action_at
        db.session.remove()
    return found


def test_pause_until_a_day_holds_planning_and_resuming_goes_on(app) -> None:  # type: ignore[no-untyped-def]
    from store.models import InvoicePause

    book = listing.craft_book(app)
    invoice_id = book.ids["INV-006"]  # Cedar, 70 days late, nothing in the ledger
    base = f"/orgs/{book.org_id}/invoices/{invoice_id}"
    client = _signed_in(app, listing.OWNER)
    page = client.get(base).text
    assert 'id="pause-form"' in page and 'id="remind-form"' in page and 'id="plan-form"' in page
    until = listing.TODAY + timedelta(days=10)
    done = _post(client, f"{base}/pause", how="day", until=until.isoformat(),
                 reason="Owner on holiday, agreed by phone")
    assert "Chasing paused." in done.text and 'id="resume-form"' in done.text
    assert "Owner on holiday" in done.text
    (pause,) = _rows(app, InvoicePause, invoice_id)
    assert (pause.until, pause.ended_at) == (until, None)
    (event,) = _events(app, invoice_id, "paused")
    assert event.data["by"] == listing.OWNER and event.data["until"] == until.isoformat()
    when = _next_action_at(app, invoice_id)
    assert when is not None and when.date() >= until  # nothing before the day it resumes
    # The next reminder now is refused while paused; nothing is planned.
    refused = _post(client, f"{base}/remind")
    assert "Chasing is paused: resume it before sending a reminder." in refused.text
    from store.models import Action
    assert _rows(app, Action, invoice_id) == []

    done = _post(client, f"{base}/resume")
    assert "Chasing resumed" in done.text
    (pause,) = _rows(app, InvoicePause, invoice_id)
    assert pause.ended_at is not None
    assert _events(app, invoice_id, "resumed")[0].data["by"] == listing.OWNER
    resumed = _next_action_at(app, invoice_id)
    assert resumed is not None and resumed.date() < until


def test_pause_until_resumed_plans_nothing(app) -> None:  # type: ignore[no-untyped-def]
    from store.models import InvoicePause

    book = listing.craft_book(app)
    invoice_id = book.ids["INV-006"]
    client = _signed_in(app, listing.OWNER)
    done = _post(client, f"/orgs/{book.org_id}/invoices/{invoice_id}/pause", how="resumed",
                 until="2027-01-01", reason="Talking to their director")
    assert "Chasing is paused until someone resumes it" in done.text
    (pause,) = _rows(app, InvoicePause, invoice_id)
    assert pause.until is None
    assert _next_action_at(app, invoice_id) is None


@pytest.mark.parametrize(("form", "said"), [
    ({"how": "day", "until": "2026-11-20", "reason": "x"},
     "Chasing can only be paused until a day after today."),
    ({"how": "day", "until": "2026-11-24", "reason": "x"},
     "Chasing can only be paused until a day after today."),
    ({"how": "day", "until": "2027-11-25", "reason": "x"}, "A pause may last at most 365 days"),
    ({"how": "day", "until": "soon", "reason": "x"}, "Please give the day chasing resumes"),
    ({"how": "day", "until": "2026-12-01", "reason": "  "}, "Please say why chasing is paused."),
])
def test_a_bad_pause_is_refused_and_saves_nothing(app, form, said) -> None:  # type: ignore[no-untyped-def]
    from store.models import AuditEvent, InvoicePause

    book = listing.craft_book(app)
    invoice_id = book.ids["INV-006"]
    before = len(_rows(app, AuditEvent, invoice_id))
    answer = _post(_signed_in(app, listing.OWNER),
                   f"/orgs/{book.org_id}/invoices/{invoice_id}/pause", **form)
    assert answer.status_code == 200 and said in answer.text
    assert _rows(app, InvoicePause, invoice_id) == []
    assert len(_rows(app, AuditEvent, invoice_id)) == before


def test_a_note_is_an_action_for_the_books_once_per_form(app) -> None:  # type: ignore[no-untyped-def]
    from store.models import Action

    book = listing.craft_book(app)
    invoice_id = book.ids["INV-002"]
    base = f"/orgs/{book.org_id}/invoices/{invoice_id}"
    client = _signed_in(app, listing.OWNER)
    page = client.get(base).text
    token = flows.csrf_token(page)
    form = {"csrf_token": token, "note": "Called Alder: pays Friday", "nonce": "ab" * 16}
    client.post(f"{base}/note", data=form)
    client.post(f"{base}/note", data=form)  # the same form twice: one note
    notes = [a for a in _rows(app, Action, invoice_id) if a.kind == "note"]
    assert len(notes) == 1
    (note,) = notes
    assert note.key == f"{book.org_id}:{invoice_id}:note:{'ab' * 16}"
    assert note.status == "planned" and note.details["note"] == "Called Alder: pays Friday"
    assert note.details["by"] == listing.OWNER
    (event,) = _events(app, invoice_id, "note")
    assert event.data["action_id"] == note.id and event.data["by"] == listing.OWNER


def test_the_next_reminder_now_goes_through_the_ledger(app) -> None:  # type: ignore[no-untyped-def]
    from store.models import Action

    book = listing.craft_book(app)
    invoice_id = book.ids["INV-006"]
    base = f"/orgs/{book.org_id}/invoices/{invoice_id}"
    client = _signed_in(app, listing.OWNER)
    done = _post(client, f"{base}/remind")
    assert "The next reminder goes out now." in done.text
    (action,) = _rows(app, Action, invoice_id)
    assert action.kind == "reminder" and action.status == "planned"
    assert action.scheduled_for == listing.NOW
    assert action.details["sent_now_by"] == listing.OWNER
    (event,) = _events(app, invoice_id, "reminder_requested")
    assert event.data["action_id"] == action.id and event.data["by"] == listing.OWNER
    again = _post(client, f"{base}/remind")
    assert "A reminder for this invoice is already on its way." in again.text
    assert len(_rows(app, Action, invoice_id)) == 1
    # A disputed invoice is not reminded.
    disputed = book.ids["INV-003"]
    refused = _post(client, f"/orgs/{book.org_id}/invoices/{disputed}/remind")
    assert "The invoice is disputed" in refused.text
    assert _rows(app, Action, disputed) == []


def test_a_payment_plan_by_the_command_lines_rules(app) -> None:  # type: ignore[no-untyped-def]
    from store.models import PaymentPlan

    book = listing.craft_book(app)
    invoice_id = book.ids["INV-002"]  # 250.50 due
    url = f"/orgs/{book.org_id}/invoices/{invoice_id}/plan"
    client = _signed_in(app, listing.OWNER)
    days = [(listing.TODAY + timedelta(days=n)).isoformat() for n in (7, 37)]

    def send(amounts: list[str]):  # type: ignore[no-untyped-def]
        page = client.get(url.rsplit("/", 1)[0])
        return client.post(url, data={"csrf_token": flows.csrf_token(page.text),
                                      "instalment_day": [*days, ""],
                                      "instalment_amount": [*amounts, ""]},
                           follow_redirects=True)

    wrong = send(["100.00", "100.00"])
    assert "The instalments add up to" in wrong.text and "nothing was saved" in wrong.text
    assert _rows(app, PaymentPlan, invoice_id) == []
    assert "Each instalment needs a day and an amount." in send(["100.00", "lots"]).text
    assert _rows(app, PaymentPlan, invoice_id) == []
    done = send(["125.25", "125.25"])
    assert "Payment plan agreed" in done.text
    (plan,) = _rows(app, PaymentPlan, invoice_id)
    assert [(i["due_date"], Decimal(i["amount"])) for i in plan.instalments] == [
        (days[0], Decimal("125.25")), (days[1], Decimal("125.25"))]
    (event,) = _events(app, invoice_id, "payment_plan")
    assert event.data["by"] == listing.OWNER and event.data["plan_id"] == plan.id


def test_a_viewer_sees_no_workbench_button_and_is_refused(app) -> None:  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import Action, AuditEvent, InvoicePause, PaymentPlan

    book = listing.craft_book(app)
    invoice_id = book.ids["INV-006"]
    base = f"/orgs/{book.org_id}/invoices/{invoice_id}"
    client = signed_in_viewer(app, book.org_id)
    page = client.get(base)
    assert page.status_code == 200
    for form in ("pause-form", "resume-form", "remind-form", "plan-form", "note-form"):
        assert f'id="{form}"' not in page.text, form
    token = flows.csrf_token(page.text)

    def count() -> tuple[int, ...]:
        with app.app_context():
            found = tuple(db.session.scalar(select(func.count()).select_from(model).where(
                model.invoice_id == invoice_id)) for model in (Action, AuditEvent,
                                                                InvoicePause, PaymentPlan))
            db.session.remove()
        return found

    before = count()
    for path, form in (("pause", {"how": "resumed", "reason": "No"}), ("resume", {}),
                       ("remind", {}), ("note", {"note": "Hello"}),
                       ("plan", {"instalment_day": "2026-12-01",
                                 "instalment_amount": "40.00"})):
        answer = client.post(f"{base}/{path}", data={"csrf_token": token, **form})
        assert answer.status_code == 403, path
    assert count() == before


def test_one_timeline_shows_what_went_out_and_what_comes_next(app) -> None:  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import Action, Invoice, Payment

    book = listing.craft_book(app)
    invoice_id = book.ids["INV-006"]
    with app.app_context():
        db.session.add_all([
            Action(org_id=book.org_id, invoice_id=invoice_id, key="t-email", kind="reminder",
                   status="done", channel="dunwell_email", step_index=1, step_count=4,
                   scheduled_for=listing.NOW - timedelta(days=9),
                   finished_at=listing.NOW - timedelta(days=9),
                   reason="Reminder 2 of 4 (dunwell_email, friendly): INV-006 61 days overdue",
                   result={"emailed": True, "message": {
                       "subject": "Invoice INV-006 is overdue",
                       "text": "Dear Cedar Cafe, please pay GBP 40.00 today."}}),
            Action(org_id=book.org_id, invoice_id=invoice_id, key="t-sms", kind="reminder",
                   status="done", channel="sms", scheduled_for=listing.NOW - timedelta(days=3),
                   finished_at=listing.NOW - timedelta(days=3), reason="Reminder 3 of 4",
                   result={"texted": "SM123", "sms_body": "Cedar Cafe: INV-006 is 67 days"
                                                          " late, GBP 40.00."}),
            Action(org_id=book.org_id, invoice_id=invoice_id, key="t-fee", kind="interest",
                   status="done", amount=Decimal("1.23"), currency="GBP",
                   scheduled_for=listing.NOW - timedelta(days=2),
                   finished_at=listing.NOW - timedelta(days=2),
                   reason="Statutory interest at 12.75% a year (INV-006)",
                   details={"period_start": "2026-10-01", "period_end": "2026-10-31",
                            "rule_id": "statutory"},
                   result={"placed": "line"}),
            Payment(org_id=book.org_id, invoice_id=invoice_id, provider_id="pay-1",
                    amount=Decimal("10.00"), currency="GBP", status="active",
                    paid_on=listing.TODAY - timedelta(days=1)),
        ])
        db.session.get(Invoice, invoice_id).provider_updated_at = listing.NOW - timedelta(days=1)
        db.session.commit()
    client = _signed_in(app, listing.OWNER)
    base = f"/orgs/{book.org_id}/invoices/{invoice_id}"
    _post(client, f"{base}/note", note="Spoke to Cedar's manager")
    page = client.get(base).text
    timeline = html.unescape(page[page.index('class="timeline"'):])
    for shown in ("Invoice INV-006 is overdue", "Dear Cedar Cafe, please pay GBP 40.00 today.",
                  "Dunwell email", "Cedar Cafe: INV-006 is 67 days late, GBP 40.00.",
                  "Text message (SMS)", "Interest of £1.23", "for 01/10/2026 to 31/10/2026",
                  "charged by the policy's rule statutory",
                  "Spoke to Cedar's manager", f"by {listing.OWNER}", "Note only"):
        assert shown in timeline, shown
    # Newest first: the note, the payment, the interest, the text, the email.
    order = [timeline.index(s) for s in ("Spoke to Cedar", "Payment", "Interest of £1.23",
                                          "67 days late", "please pay GBP 40.00 today")]
    assert order == sorted(order)
    # The books' side, as synced: issued (the oldest entry), and last changed there.
    assert "Issued in the books" in timeline and "Last changed in the books" in timeline
    # What comes next, and when.
    assert 'id="next-action"' in page and "Next: " in page
