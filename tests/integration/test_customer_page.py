"""One page per customer: what is owed per currency, risk, credit, promises kept and broken,
plans, how Dunwell chases the customer (the contact settings that had a page of their own:
the old addresses lead here), and chasing of all its open invoices paused and resumed, in the
activity log with the person who did it. A viewer sees no action and the server refuses their
POSTs; bad input is refused in plain words and saves nothing."""

from __future__ import annotations

from datetime import timedelta

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
