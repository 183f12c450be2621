"""The activity log is stored as kinds with parameters and worded when a page is shown: one
event written once reads in German on a German page and in Hebrew on a Hebrew page, with its
amount and day formatted for each; an old row whose message could not be parsed into
parameters is shown as it was stored."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import select

from collect import ledger
from store import clock
from store.db import db
from store.models import AuditEvent, Invoice

ISOLATE, POP = "\u2066", "\u2069"


def _write(app, org_id: int) -> str:  # type: ignore[no-untyped-def]
    with app.app_context():
        invoice = db.session.scalars(select(Invoice).where(Invoice.org_id == org_id)
                                     .order_by(Invoice.id)).first()
        number = invoice.number if invoice else "INV-0001"
        ledger.audit(db.session(), org_id, "promise_recorded",
                     f"Promise to pay GBP 1480.00 of {number} by 2026-12-24 recorded by "
                     "sam@example.com", at=clock.now(),
                     data={"pay_by": date(2026, 12, 24).isoformat(),
                           "amount": str(Decimal("1480.00")), "currency": "GBP",
                           "number": number, "by": "sam@example.com"})
        ledger.audit(db.session(), org_id, "action_done", "Late fee line added", at=clock.now(),
                     data={"key": f"{org_id}:1:fee:flat40:0", "action": "fee", "step": None,
                           "steps": None, "channel": None, "amount": "40.00",
                           "currency": "GBP"})
        # Rows from before the kinds carried parameters: one the migration could not parse,
        # one of a kind with no text at all.
        db.session.add_all([
            AuditEvent(org_id=org_id, kind="connected", at=clock.now(), data=None,
                       message="An old sentence nobody could parse"),
            AuditEvent(org_id=org_id, kind="something_retired", at=clock.now(),
                       data={"x": 1}, message="A retired kind, shown as stored")])
        db.session.commit()
    return number


def test_an_event_reads_in_the_page_language_with_its_numbers(app, connected) -> None:  # type: ignore[no-untyped-def]
    number = _write(app, connected.org_id)
    url = f"{connected.web.url}/orgs/{connected.org_id}"
    pages = {language: connected.http.get(url, headers={"Accept-Language": language}).text
             for language in ("de", "he", "en")}

    assert (f"Zahlungsversprechen über 1.480,00\xa0£ von {number} bis 24.12.2026 von "
            "sam@example.com erfasst") in pages["de"]
    # Hebrew: the amount and the day each isolated left to right inside the sentence.
    assert (f"הבטחה לשלם {ISOLATE}1,480.00\xa0£{POP} מתוך {number} עד "
            f"{ISOLATE}24.12.2026{POP} נרשמה על ידי sam@example.com") in pages["he"]
    assert f"Promise to pay £1,480.00 of {number} by 24/12/2026 recorded by" in pages["en"]
    # An action's outcome: its kind and amount worded for the reader.
    assert "Mahngebühr über 40,00\xa0£ berechnet" in pages["de"]
    assert f"עמלת איחור בסך {ISOLATE}40.00\xa0£{POP} חויב/ה" in pages["he"]
    assert "Late fee of £40.00 charged" in pages["en"]
    for page in pages.values():
        assert "Promise to pay GBP 1480.00" not in page  # the stored sentence is not shown
        assert "An old sentence nobody could parse" in page
        assert "A retired kind, shown as stored" in page

