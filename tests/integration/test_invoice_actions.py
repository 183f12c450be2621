"""A collector's actions on an invoice's page: a promise to pay, a dispute, a note, each in the
activity log with the person who did it; bad input is refused in plain words and saves
nothing; a viewer sees no action and the server refuses their POSTs."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

import tests.integration.test_invoice_list as listing
from tests.integration import flows
from tests.integration.conftest import PASSWORD, create_user

pytestmark = pytest.mark.db


def _signed_in(app, email: str):  # type: ignore[no-untyped-def]
    client = app.test_client()
    page = client.get("/signin")
    client.post("/signin", data={"csrf_token": flows.csrf_token(page.text), "email": email,
                                 "password": PASSWORD})
    return client


def _post(client, url: str, **form: str):  # type: ignore[no-untyped-def]
    page = client.get(url.rsplit("/", 1)[0])
    return client.post(url, data={"csrf_token": flows.csrf_token(page.text), **form},
                       follow_redirects=True)


def _counts(app, invoice_id: int) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import AuditEvent, InvoiceDispute, PaymentPromise

    with app.app_context():
        found = tuple(db.session.scalar(select(func.count()).select_from(model).where(
            model.invoice_id == invoice_id)) for model in (PaymentPromise, InvoiceDispute,
                                                            AuditEvent))
        db.session.remove()
    return found  # type: ignore[return-value]


def test_promise_dispute_and_note_are_recorded_with_who_did_them(app) -> None:  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import AuditEvent, Invoice, InvoiceDispute, PaymentPromise

    book = listing.craft_book(app)
    invoice_id = book.ids["INV-002"]
    base = f"/orgs/{book.org_id}/invoices/{invoice_id}"
    client = _signed_in(app, listing.OWNER)
    page = client.get(base).text
    assert 'id="act"' in page and "Record a promise to pay" in page

    pay_by = (listing.TODAY + timedelta(days=10)).isoformat()
    done = _post(client, f"{base}/promise", pay_by=pay_by, amount="100.50")
    assert "Promise recorded" in done.text
    done = _post(client, f"{base}/dispute", reason="The second delivery never came")
    assert "Invoice marked disputed" in done.text
    done = _post(client, f"{base}/note", note="Called Alder: the manager pays on Friday")
    assert "Note added." in done.text and "the manager pays on Friday" in done.text

    with app.app_context():
        promise = db.session.scalars(select(PaymentPromise).where(
            PaymentPromise.invoice_id == invoice_id)).one()
        assert (promise.pay_by.isoformat(), promise.amount, promise.status) == (
            pay_by, Decimal("100.50"), "open")
        assert db.session.get(Invoice, invoice_id).disputed
        assert db.session.scalars(select(InvoiceDispute.reason).where(
            InvoiceDispute.invoice_id == invoice_id)).one() == "The second delivery never came"
        mine = {e.kind: e for e in db.session.scalars(select(AuditEvent).where(
            AuditEvent.invoice_id == invoice_id))}
        for kind in ("promise_recorded", "dispute_marked", "note"):
            assert mine[kind].data["by"] == listing.OWNER, kind
            assert listing.OWNER in mine[kind].message
        db.session.remove()


@pytest.mark.parametrize(("path", "form", "said"), [
    ("promise", {"pay_by": "2026-11-01"}, "The promised day is in the past"),
    ("promise", {"pay_by": "2027-11-24"}, "A promise may be at most 90 days ahead"),
    ("promise", {"pay_by": "tomorrow"}, "Please give the day the customer promised to pay by"),
    ("promise", {"pay_by": "2026-12-01", "amount": "-5"}, "greater than zero"),
    ("promise", {"pay_by": "2026-12-01", "amount": "99999"}, "no more than what is due"),
    ("dispute", {"reason": "   "}, "Please say why the invoice is disputed"),
    ("dispute", {"reason": "x" * 4001}, "Please keep the reason shorter"),
    ("note", {"note": ""}, "Please write the note"),
    ("note", {"note": "x" * 2001}, "at most 2000 characters"),
])
def test_bad_input_is_refused_in_plain_words_and_saves_nothing(app, path, form, said  # type: ignore[no-untyped-def]
                                                               ) -> None:
    book = listing.craft_book(app)
    invoice_id = book.ids["INV-002"]
    before = _counts(app, invoice_id)
    answer = _post(_signed_in(app, listing.OWNER),
                   f"/orgs/{book.org_id}/invoices/{invoice_id}/{path}", **form)
    assert answer.status_code == 200 and said in answer.text
    assert _counts(app, invoice_id) == before


def signed_in_viewer(app, org_id: int):  # type: ignore[no-untyped-def]
    """A viewer of the organisation, signed in."""
    from store.db import db
    from store.models import Membership, User

    create_user(app, "viewer@example.com", PASSWORD)
    with app.app_context():
        user_id = db.session.scalar(select(User.id).where(User.email == "viewer@example.com"))
        db.session.add(Membership(user_id=user_id, org_id=org_id, role="viewer"))
        db.session.commit()
    return _signed_in(app, "viewer@example.com")


def test_a_viewer_sees_no_action_and_is_refused(app) -> None:  # type: ignore[no-untyped-def]
    book = listing.craft_book(app)
    invoice_id = book.ids["INV-002"]
    base = f"/orgs/{book.org_id}/invoices/{invoice_id}"
    client = signed_in_viewer(app, book.org_id)
    page = client.get(base)
    assert page.status_code == 200 and 'id="act"' not in page.text
    token = flows.csrf_token(page.text)
    before = _counts(app, invoice_id)
    for path, form in (("promise", {"pay_by": "2026-12-01"}), ("dispute", {"reason": "No"}),
                       ("note", {"note": "Hello"})):
        answer = client.post(f"{base}/{path}", data={"csrf_token": token, **form})
        assert answer.status_code == 403, path
    assert _counts(app, invoice_id) == before
