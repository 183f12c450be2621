"""One page per customer: what is owed per currency, risk, credit, promises kept and broken,
plans, how Dunwell chases the customer (the contact settings that had a page of their own:
the old addresses lead here), and chasing of all its open invoices paused and resumed, in the
activity log with the person who did it. A viewer sees no action and the server refuses their
POSTs; bad input is refused in plain words and saves nothing."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

import tests.integration.test_invoice_list as listing
from tests.integration import flows
from tests.integration.test_invoice_actions import _post, _signed_in, signed_in_viewer

pytestmark = pytest.mark.db


def _pauses(app, org_id: int) -> list:  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import InvoicePause

    with app.app_context():
        found = list(db.session.scalars(select(InvoicePause).where(
            InvoicePause.org_id == org_id).order_by(InvoicePause.id)))
        db.session.expunge_all()
        db.session.remove()
    return found


def test_the_customer_page_and_the_old_contact_pages_leading_to_it(app) -> None:  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import Contact

    book = listing.craft_book(app)
    alder = book.contacts["Alder Joinery"]
    client = _signed_in(app, listing.OWNER)
    page = client.get(f"/orgs/{book.org_id}/customers/{alder}")
    assert page.status_code == 200
    text = page.text
    owed = text[text.index('id="owed"'):text.index('id="risk"')]
    # INV-001 100.00 + INV-002 250.50 in GBP, INV-101 500.00 in EUR: never added together.
    assert "£350.50" in owed and "(2 invoices)" in owed
    assert "€500.00" in owed and "(1 invoice)" in owed
    for part in ('id="risk"', 'id="credit"', 'id="promises"', 'id="customer-act"',
                 'id="collection-settings"', 'id="contact-form"', 'id="statement-preview"'):
        assert part in text, part
    assert "Kept: 0 · broken: 0 · open: 0" in text
    # The old addresses lead here.
    listing_page = client.get(f"/orgs/{book.org_id}/settings/contacts")
    assert listing_page.status_code == 301
    assert listing_page.headers["Location"].endswith(f"/orgs/{book.org_id}/customers")
    one = client.get(f"/orgs/{book.org_id}/settings/contacts/{alder}")
    assert one.status_code == 301
    assert one.headers["Location"].endswith(
        f"/orgs/{book.org_id}/customers/{alder}#collection-settings")
    # The settings form on the customer's page saves and comes back to it.
    saved = client.post(f"/orgs/{book.org_id}/settings/contacts/{alder}", data={
        "csrf_token": flows.csrf_token(text), "page": "contact", "excluded": "on",
        "kind": "business", "late_fees": "policy", "plans": "policy"})
    assert saved.status_code == 302
    assert saved.headers["Location"].endswith(f"/customers/{alder}#collection-settings")
    with app.app_context():
        assert db.session.get(Contact, alder).excluded
        db.session.remove()


def test_chasing_of_a_customer_paused_and_resumed(app) -> None:  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import AuditEvent

    book = listing.craft_book(app)
    alder = book.contacts["Alder Joinery"]
    base = f"/orgs/{book.org_id}/customers/{alder}"
    client = _signed_in(app, listing.OWNER)
    until = listing.TODAY + timedelta(days=14)
    done = _post(client, f"{base}/pause", how="day", until=until.isoformat(),
                 reason="Their bookkeeper is away")
    assert "Chasing of 3 invoices paused." in done.text
    pauses = _pauses(app, book.org_id)
    assert sorted(p.invoice_id for p in pauses) == sorted(
        book.ids[n] for n in ("INV-001", "INV-002", "INV-101"))
    assert {(p.until, p.reason) for p in pauses} == {(until, "Their bookkeeper is away")}
    assert 'id="paused"' in done.text and 'id="customer-resume-form"' in done.text
    done = _post(client, f"{base}/resume")
    assert "Chasing of 3 invoices resumed." in done.text
    assert all(p.ended_at is not None for p in _pauses(app, book.org_id))
    with app.app_context():
        kinds = [e.kind for e in db.session.scalars(select(AuditEvent).where(
            AuditEvent.org_id == book.org_id, AuditEvent.kind.in_(("paused", "resumed")),
            AuditEvent.data.is_not(None)))]
        by = {e.data["by"] for e in db.session.scalars(select(AuditEvent).where(
            AuditEvent.org_id == book.org_id, AuditEvent.kind.in_(("paused", "resumed"))))}
        db.session.remove()
    assert sorted(kinds) == ["paused"] * 3 + ["resumed"] * 3 and by == {listing.OWNER}


@pytest.mark.parametrize(("form", "said"), [
    ({"how": "day", "until": "2026-11-01", "reason": "x"}, "until a day after today"),
    ({"how": "day", "until": "2028-01-01", "reason": "x"}, "at most 365 days"),
    ({"how": "resumed", "reason": ""}, "Please say why chasing is paused."),
])
def test_a_bad_customer_pause_saves_nothing(app, form, said) -> None:  # type: ignore[no-untyped-def]
    book = listing.craft_book(app)
    alder = book.contacts["Alder Joinery"]
    answer = _post(_signed_in(app, listing.OWNER),
                   f"/orgs/{book.org_id}/customers/{alder}/pause", **form)
    assert answer.status_code == 200 and said in answer.text
    assert _pauses(app, book.org_id) == []


def test_a_viewer_sees_the_customer_but_cannot_act(app) -> None:  # type: ignore[no-untyped-def]
    book = listing.craft_book(app)
    alder = book.contacts["Alder Joinery"]
    client = signed_in_viewer(app, book.org_id)
    page = client.get(f"/orgs/{book.org_id}/customers/{alder}")
    assert page.status_code == 200 and 'id="owed"' in page.text
    assert 'id="customer-act"' not in page.text
    token = flows.csrf_token(page.text)
    for path, form in (("pause", {"how": "resumed", "reason": "No"}), ("resume", {})):
        answer = client.post(f"/orgs/{book.org_id}/customers/{alder}/{path}",
                             data={"csrf_token": token, **form})
        assert answer.status_code == 403, path
    assert _pauses(app, book.org_id) == []


# ------------------------------------------------------- acting on the customer's invoices


def _ledger(app, org_id: int) -> tuple[list, list, list]:  # type: ignore[no-untyped-def, type-arg]
    """(note and reminder actions, promises, activity-log entries) of the organisation."""
    from store.db import db
    from store.models import Action, AuditEvent, PaymentPromise

    with app.app_context():
        found = tuple(list(db.session.scalars(select(model).where(
            model.org_id == org_id, *extra).order_by(model.id))) for model, extra in (
            (Action, (Action.kind.in_(("note", "reminder")), Action.key.not_in(("k0", "k1")))),
            (PaymentPromise, ()),
            (AuditEvent, (AuditEvent.kind.in_(("note", "promise_recorded", "promise_made",
                                               "reminder_requested")),))))
        db.session.expunge_all()
        db.session.remove()
    return found  # type: ignore[return-value]


def test_a_note_goes_to_each_ticked_invoice_once_per_form(app) -> None:  # type: ignore[no-untyped-def]
    book = listing.craft_book(app)
    alder = book.contacts["Alder Joinery"]
    ticked = [str(book.ids["INV-001"]), str(book.ids["INV-101"])]
    client = _signed_in(app, listing.OWNER)
    page = client.get(f"/orgs/{book.org_id}/customers/{alder}").text
    assert 'id="customer-note-form"' in page and 'id="customer-promise-form"' in page \
        and 'id="customer-remind-form"' in page
    for number in ("INV-001", "INV-002", "INV-101"):  # every open invoice, ticked
        assert f'name="invoice" value="{book.ids[number]}" checked' in page
    form = {"csrf_token": flows.csrf_token(page), "note": "Met them at the trade fair",
            "nonce": "0123456789abcdef", "invoice": ticked}
    done = client.post(f"/orgs/{book.org_id}/customers/{alder}/note", data=form,
                       follow_redirects=True)
    assert "Note added to 2 invoices. It is written to their history in the books." in done.text
    again = client.post(f"/orgs/{book.org_id}/customers/{alder}/note", data=form,
                        follow_redirects=True)
    assert again.status_code == 200
    actions, _, events = _ledger(app, book.org_id)
    assert sorted((a.invoice_id, a.kind, a.details["note"], a.details["by"]) for a in actions) \
        == sorted((int(i), "note", "Met them at the trade fair", listing.OWNER) for i in ticked)
    assert sorted(e.invoice_id for e in events if e.kind == "note") == sorted(map(int, ticked))
    assert {e.data["by"] for e in events} == {listing.OWNER}


def test_a_promise_over_the_customers_invoices_oldest_first(app) -> None:  # type: ignore[no-untyped-def]
    book = listing.craft_book(app)
    alder = book.contacts["Alder Joinery"]
    pay_by = (listing.TODAY + timedelta(days=6)).isoformat()
    client = _signed_in(app, listing.OWNER)
    done = _post(client, f"/orgs/{book.org_id}/customers/{alder}/promise", pay_by=pay_by,
                 amount="300", invoice=[str(book.ids["INV-001"]), str(book.ids["INV-002"])])
    assert "Promise recorded for 2 invoices: reminders wait until the promised day." \
        in done.text
    _, promises, events = _ledger(app, book.org_id)
    promises = [p for p in promises if p.contact_id == alder]
    # 300.00 over INV-002 (250.50, due 45 days ago) first, then INV-001 (due 10 days ago).
    assert sorted((p.invoice_id, p.amount, p.pay_by.isoformat(), p.status) for p in promises) \
        == sorted([(book.ids["INV-002"], Decimal("250.50"), pay_by, "open"),
                   (book.ids["INV-001"], Decimal("49.50"), pay_by, "open")])
    recorded = [e for e in events if e.kind == "promise_recorded"]
    assert len(recorded) == 2 and {e.data["by"] for e in recorded} == {listing.OWNER}
    # Without an amount, all that is due on each, here across two currencies.
    done = _post(client, f"/orgs/{book.org_id}/customers/{alder}/promise", pay_by=pay_by,
                 amount="", invoice=[str(book.ids["INV-101"]), str(book.ids["INV-002"])])
    assert "Promise recorded for 2 invoices" in done.text
    _, promises, _ = _ledger(app, book.org_id)
    assert {(p.invoice_id, p.amount, p.currency) for p in promises
            if p.status == "open" and p.contact_id == alder} == {
        (book.ids["INV-001"], Decimal("49.50"), "GBP"),
        (book.ids["INV-002"], Decimal("250.50"), "GBP"),
        (book.ids["INV-101"], Decimal("500.00"), "EUR")}


def test_the_next_reminder_now_for_the_customers_invoices_that_are_due(app) -> None:  # type: ignore[no-untyped-def]
    book = listing.craft_book(app)
    alder = book.contacts["Alder Joinery"]
    client = _signed_in(app, listing.OWNER)
    # INV-002 was promised (from its own page): its reminders wait, as its page would say.
    _post(client, f"/orgs/{book.org_id}/invoices/{book.ids['INV-002']}/promise",
          pay_by=(listing.TODAY + timedelta(days=3)).isoformat(), amount="")
    done = _post(client, f"/orgs/{book.org_id}/customers/{alder}/remind",
                 invoice=[str(book.ids[n]) for n in ("INV-001", "INV-002", "INV-101")])
    assert ("The next reminder goes out now for 2 invoices. 1 invoice is left alone: not due"
            " yet, or not to be chased now.") in done.text
    actions, _, events = _ledger(app, book.org_id)
    assert sorted(a.invoice_id for a in actions) == sorted(
        [book.ids["INV-001"], book.ids["INV-101"]])
    assert all(a.kind == "reminder" and a.details["sent_now_by"] == listing.OWNER
               for a in actions)
    asked = [e for e in events if e.kind == "reminder_requested"]
    assert len(asked) == 2 and {e.data["by"] for e in asked} == {listing.OWNER}


@pytest.mark.parametrize(("path", "form", "said"), [
    ("note", {"note": "Hello", "invoice": []}, "Please tick at least one"),
    ("promise", {"pay_by": "2026-12-01", "invoice": []}, "Please tick at least one"),
    ("remind", {"invoice": []}, "Please tick at least one"),
    ("note", {"note": "  ", "invoice": ["INV-001"]}, "Please write the note."),
    ("promise", {"pay_by": "2026-11-01", "invoice": ["INV-001"]},
     "The promised day is in the past"),
    ("promise", {"pay_by": "2026-12-01", "amount": "350.51", "invoice": ["INV-001", "INV-002"]},
     "no more than what is due"),
    ("promise", {"pay_by": "2026-12-01", "amount": "10", "invoice": ["INV-002", "INV-101"]},
     "more than one currency"),
    ("promise", {"pay_by": "2026-12-01", "invoice": ["INV-003"]},
     "One of the ticked invoices has nothing left to pay"),  # Birch's, not Alder's
    # Birch's: INV-003 is disputed, INV-004 not due yet (and promised).
    ("remind", {"invoice": ["INV-003", "INV-004"], "customer": "Birch Bakery"},
     "None of the ticked invoices has a reminder"),
])
def test_bad_input_on_the_customers_invoices_saves_nothing(  # type: ignore[no-untyped-def]
        app, path, form, said) -> None:
    book = listing.craft_book(app)
    customer = book.contacts[form.get("customer", "Alder Joinery")]
    form = {**{k: v for k, v in form.items() if k != "customer"},
            "invoice": [str(book.ids[n]) for n in form["invoice"]]}
    before = _ledger(app, book.org_id)
    answer = _post(_signed_in(app, listing.OWNER),
                   f"/orgs/{book.org_id}/customers/{customer}/{path}", **form)
    assert answer.status_code == 200 and said in answer.text
    assert [[row.id for row in rows] for rows in _ledger(app, book.org_id)] == [
        [row.id for row in rows] for rows in before]


def test_a_viewer_cannot_act_on_the_customers_invoices(app) -> None:  # type: ignore[no-untyped-def]
    book = listing.craft_book(app)
    alder = book.contacts["Alder Joinery"]
    client = signed_in_viewer(app, book.org_id)
    page = client.get(f"/orgs/{book.org_id}/customers/{alder}").text
    for form in ("customer-note-form", "customer-promise-form", "customer-remind-form"):
        assert form not in page
    ticked = [str(book.ids["INV-002"])]
    for path, form in (("note", {"note": "No"}), ("promise", {"pay_by": "2026-12-01"}),
                       ("remind", {})):
        answer = client.post(f"/orgs/{book.org_id}/customers/{alder}/{path}",
                             data={"csrf_token": flows.csrf_token(page), "invoice": ticked,
                                   **form})
        assert answer.status_code == 403, path
    assert [len(rows) for rows in _ledger(app, book.org_id)] == [0, 1, 0]  # Birch's promise
