"""A final demand lists the fees and interest already charged in the customer's language: the
ledger's reason is the owner's English ("Statutory interest at 8% …"), the letter a German
customer gets says Verzugszinsen, with the days it covers as German dates."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

pytestmark = pytest.mark.db

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def test_the_letters_charges_are_worded_in_the_customers_language(app) -> None:  # type: ignore[no-untyped-def]
    from collect.documents import letter_facts
    from rules.letters import demand_letter
    from store.db import db
    from store.models import Action, Contact, Invoice, Organisation

    with app.app_context():
        session = db.session
        org = Organisation(name="Hafen GmbH", country="DE", timezone="Europe/Berlin",
                           base_currency="EUR", mode="live", live_since=NOW - timedelta(days=90))
        session.add(org)
        session.flush()
        contact = Contact(org_id=org.id, provider_id="C-1", name="Müller KG",
                          email="buchhaltung@example.com", language="de")
        session.add(contact)
        session.flush()
        invoice = Invoice(org_id=org.id, provider_id="P-1", number="RE-1001",
                          contact_id=contact.id, contact_provider_id="C-1", currency="EUR",
                          issue_date=date(2026, 8, 1), due_date=date(2026, 9, 1),
                          total=Decimal("1000.00"), amount_paid=Decimal("0.00"),
                          amount_due=Decimal("1000.00"), status="open")
        session.add(invoice)
        session.flush()
        for kind, amount, details in (
                ("interest", Decimal("21.37"), {"period_start": "2026-09-02",
                                                "period_end": "2026-10-31"}),
                ("compensation", Decimal("40.00"), {})):
            session.add(Action(org_id=org.id, invoice_id=invoice.id, key=f"{org.id}:{kind}",
                               kind=kind, status="done", amount=amount, currency="EUR",
                               reason=f"Statutory {kind} (BGB § 288), in English for the owner",
                               details=details, scheduled_for=NOW, created_at=NOW,
                               finished_at=NOW))
        session.commit()
        facts = letter_facts(session, org, invoice, 14, NOW.date())
        assert facts.language == "de"
        assert facts.charges == (
            ("Verzugszinsen, 2. September 2026 \u2013 31. Oktober 2026", Decimal("21.37")),
            ("Verzugspauschale", Decimal("40.00")))
        assert facts.total_due == Decimal("1061.37")
        text = demand_letter(facts).text
        assert "Verzugszinsen, 2. September 2026 \u2013 31. Oktober 2026" in text
        assert "English" not in text and "Statutory" not in text
        db.session.remove()
