"""Shorter terms written back, end to end against each sandbox over HTTP: a customer on credit
hold gets a new invoice on 30-day terms; the planner puts one `terms_change` action in the
ledger, a real worker writes the new due date through the connector, the sandbox's books and
our row agree, planning again writes nothing more, a paid invoice is left alone, a lost answer
is looked up rather than written twice, and `recommend` writes nothing at all."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from tests.integration.conftest import Connected, connect, run_jobs
from tests.integration.test_credit_control import _plan, _set_policy
from tests.integration.test_customers import _sync

pytestmark = pytest.mark.db

WRITE_BACK = {"due_in_days": 7, "when": "on_hold", "apply": "write_back"}


class Books:
    """The provider's sandbox as a bookkeeper sees it: raise, pay and read invoices."""

    def __init__(self, provider: str, sandbox: Any, qbo_sandbox: Any) -> None:
        self.provider = provider
        self.box = sandbox[0] if provider == "xero" else qbo_sandbox[0]
        self.tenant = (self.box.tenants()[0]["tenantId"] if provider == "xero"
                       else self.box.companies()[0]["realmId"])

    def raise_invoice(self, contact_provider_id: str, issued: date, days: int,
                      amount: str) -> str:
        due = (issued + timedelta(days=days)).isoformat()
        if self.provider == "xero":
            return str(self.box.add_invoice(self.tenant, {
                "Type": "ACCREC", "Status": "AUTHORISED",
                "Contact": {"ContactID": contact_provider_id}, "Date": issued.isoformat(),
                "DueDate": due, "LineItems": [{
                    "Description": "Espresso machine service", "Quantity": 1,
                    "UnitAmount": Decimal(amount), "AccountCode": "200", "TaxType": "NONE"}],
            })["InvoiceID"])
        return str(self.box.create(self.tenant, "Invoice", {
            "CustomerRef": {"value": contact_provider_id}, "TxnDate": issued.isoformat(),
            "DueDate": due, "Line": [{"DetailType": "SalesItemLineDetail",
                                      "Amount": Decimal(amount),
                                      "Description": "Garden design",
                                      "SalesItemLineDetail": {}}]})["Id"])

    def raw(self, invoice_id: str) -> dict[str, Any]:
        if self.provider == "xero":
            return next(i for i in self.box.invoices(self.tenant)
                        if i["InvoiceID"] == invoice_id)
        return next(i for i in self.box.invoices(self.tenant) if i["Id"] == invoice_id)

    def due(self, invoice_id: str) -> date:
        raw = self.raw(invoice_id)
        return date.fromisoformat(str(raw.get("DueDateString") or raw["DueDate"])[:10])

    def version(self, invoice_id: str) -> Any:
        """What moves with every change to the invoice in the books."""
        raw = self.raw(invoice_id)
        if self.provider == "xero":
            return raw["UpdatedDateUTC"]
        return raw["SyncToken"], raw["MetaData"]["LastUpdatedTime"]

    def pay(self, invoice_id: str, amount: str) -> None:
        self.box.pay_invoice(self.tenant, invoice_id, Decimal(amount))

    def today(self, clock: Any) -> date:
        if self.provider == "xero":
            return clock().date()  # the first Xero tenant keeps its books in London
        return self.box.company(self.tenant).today()


@pytest.fixture(params=["xero", "quickbooks"])
def provider(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def books(provider: str, sandbox, qbo_sandbox) -> Books:  # type: ignore[no-untyped-def]
    return Books(provider, sandbox, qbo_sandbox)


@pytest.fixture
def linked(app, web, provider: str) -> Connected:  # type: ignore[no-untyped-def]
    return connect(app, web, provider)


def _customer(app, org_id: int) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    """A customer with an email address (id, provider id, name)."""
    from store.db import db
    from store.models import Contact

    with app.app_context():
        contact = db.session.scalars(select(Contact).where(
            Contact.org_id == org_id, Contact.email.is_not(None), Contact.archived.is_(False))
            .order_by(Contact.id)).first()
        assert contact is not None
        return contact.id, contact.provider_id, contact.name


def _hold(app, org_id: int, contact_id: int) -> None:  # type: ignore[no-untyped-def]
    from collect.customers import put_on_hold
    from store import clock
    from store.db import db
    from store.models import Contact

    with app.app_context():
        contact = db.session.get(Contact, contact_id)
        assert contact is not None and contact.org_id == org_id
        put_on_hold(db.session, contact, "cheques bounced", clock.now() - timedelta(days=1))
        db.session.commit()


def _invoice_row(app, org_id: int, provider_id: str) -> tuple[int, str, date | None]:  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import Invoice

    with app.app_context():
        row = db.session.scalars(select(Invoice).where(
            Invoice.org_id == org_id, Invoice.provider_id == provider_id)).one()
        return row.id, row.number, row.due_date


def _terms_actions(app, org_id: int) -> list[tuple[str, int | None, str, dict, dict]]:  # type: ignore[no-untyped-def,type-arg]
    from store.db import db
    from store.models import Action

    with app.app_context():
        return [(a.key, a.invoice_id, a.status, a.details or {}, a.result or {})
                for a in db.session.scalars(select(Action).where(
                    Action.org_id == org_id, Action.kind == "terms_change")
                    .order_by(Action.id))]


def test_a_new_invoice_of_a_customer_on_hold_gets_shorter_terms_once(
        app, linked, books, clock) -> None:  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import AuditEvent

    org_id = linked.org_id
    _sync(app, org_id)
    contact_id, contact_ref, name = _customer(app, org_id)
    _hold(app, org_id, contact_id)
    today = books.today(clock)
    long_terms = books.raise_invoice(contact_ref, today, 30, "480.00")
    short_terms = books.raise_invoice(contact_ref, today, 5, "75.00")  # shorter already
    _sync(app, org_id)
    _set_policy(app, org_id, terms_on_hold=WRITE_BACK)
    invoice_id, number, due = _invoice_row(app, org_id, long_terms)
    assert due == today + timedelta(days=30)

    _plan(app, org_id)
    _plan(app, org_id)  # twice: still one action
    new_due = today + timedelta(days=7)
    key = f"{org_id}:{invoice_id}:terms_change:{new_due.isoformat()}"
    [(found_key, found_invoice, status, details, _)] = _terms_actions(app, org_id)
    assert (found_key, found_invoice, status) == (key, invoice_id, "planned")
    assert details == {"due_date": new_due.isoformat(),
                       "was": (today + timedelta(days=30)).isoformat(),
                       "because": "on credit hold", "due_in_days": 7}
    untouched = books.version(short_terms)

    run_jobs(app)
    [(_, _, status, _, result)] = _terms_actions(app, org_id)
    assert status == "done", result
    assert (result["due_date"], result["terms_changed"], result["looked_up"]) == (
        new_due.isoformat(), True, False)
    assert books.due(long_terms) == new_due  # the books say so, not only our row
    assert books.due(short_terms) == today + timedelta(days=5)
    assert books.version(short_terms) == untouched
    assert _invoice_row(app, org_id, long_terms)[2] == new_due
    with app.app_context():
        done = db.session.scalars(select(AuditEvent).where(
            AuditEvent.org_id == org_id, AuditEvent.invoice_id == invoice_id,
            AuditEvent.kind == "action_done")).all()
        assert [e.message for e in done] == [
            f"{number}: terms shortened from {today + timedelta(days=30)} to {new_due}"
            " (on credit hold)"]
        assert db.session.scalar(select(AuditEvent.id).where(
            AuditEvent.org_id == org_id, AuditEvent.kind == "terms_recommended")) is None

    # Planning again (after a sync that brings the change back) writes nothing more.
    written = books.version(long_terms)
    _sync(app, org_id)
    _plan(app, org_id)
    run_jobs(app)
    assert len(_terms_actions(app, org_id)) == 1
    assert books.version(long_terms) == written and books.due(long_terms) == new_due

    page = linked.http.get(f"{linked.web.url}/orgs/{org_id}/customers/{contact_id}")
    assert page.status_code == 200
    assert 'id="terms-written"' in page.text and 'id="terms"' not in page.text
    assert (f"{number}: terms shortened from {today + timedelta(days=30)} to {new_due}"
            " (on credit hold)") in page.text
    assert name.split()[0] in page.text


def test_an_invoice_paid_before_the_write_is_left_alone(app, linked, books, clock) -> None:  # type: ignore[no-untyped-def]
    org_id = linked.org_id
    _sync(app, org_id)
    contact_id, contact_ref, _ = _customer(app, org_id)
    _hold(app, org_id, contact_id)
    today = books.today(clock)
    target = books.raise_invoice(contact_ref, today, 30, "60.00")
    _sync(app, org_id)
    _set_policy(app, org_id, terms_on_hold=WRITE_BACK)
    _plan(app, org_id)
    assert [a[2] for a in _terms_actions(app, org_id)] == ["planned"]
    books.pay(target, "60.00")  # paid in the books; we have not synced since
    before = books.version(target)

    run_jobs(app)
    [(_, _, status, _, result)] = _terms_actions(app, org_id)
    assert (status, result.get("reason")) == ("skipped", "paid")
    assert books.due(target) == today + timedelta(days=30)
    assert books.version(target) == before
    page = linked.http.get(f"{linked.web.url}/orgs/{org_id}/customers/{contact_id}")
    assert "terms shortened" not in page.text


def test_a_hold_released_before_the_write_leaves_the_terms(app, linked, books, clock) -> None:  # type: ignore[no-untyped-def]
    from collect.customers import release_hold
    from store.db import db
    from store.models import Contact

    org_id = linked.org_id
    _sync(app, org_id)
    contact_id, contact_ref, _ = _customer(app, org_id)
    _hold(app, org_id, contact_id)
    today = books.today(clock)
    target = books.raise_invoice(contact_ref, today, 30, "45.00")
    _sync(app, org_id)
    _set_policy(app, org_id, terms_on_hold=WRITE_BACK)
    _plan(app, org_id)
    with app.app_context():
        release_hold(db.session, db.session.get(Contact, contact_id))
        db.session.commit()
    before = books.version(target)

    run_jobs(app)
    [(_, _, status, _, result)] = _terms_actions(app, org_id)
    assert (status, result.get("reason")) == ("skipped", "released")
    assert books.due(target) == today + timedelta(days=30)
    assert books.version(target) == before


def test_after_a_lost_answer_the_due_date_is_looked_up_not_written_again(
        app, linked, books, clock) -> None:  # type: ignore[no-untyped-def]
    from collect.effects import WRITING, WRITING_SINCE
    from store.db import db
    from store.models import Action

    org_id = linked.org_id
    _sync(app, org_id)
    contact_id, contact_ref, _ = _customer(app, org_id)
    _hold(app, org_id, contact_id)
    today = books.today(clock)
    target = books.raise_invoice(contact_ref, today, 21, "99.00")
    _sync(app, org_id)
    _set_policy(app, org_id, terms_on_hold=WRITE_BACK)
    _plan(app, org_id)
    new_due = today + timedelta(days=7)
    # The write happened in the books, but its answer never reached us: the ledger says only
    # that it was being written.
    if books.provider == "xero":
        books.box.tenant(books.tenant).invoices[target]["_due"] = new_due
        books.box.touch(books.box.tenant(books.tenant).invoices[target])
    else:
        books.box.update_invoice(books.tenant, target, DueDate=new_due.isoformat())
    with app.app_context():
        action = db.session.scalars(select(Action).where(
            Action.org_id == org_id, Action.kind == "terms_change")).one()
        action.result = {WRITING: "due_date", WRITING_SINCE: clock().isoformat()}
        db.session.commit()
    written = books.version(target)

    run_jobs(app)
    [(_, _, status, _, result)] = _terms_actions(app, org_id)
    assert (status, result["due_date"], result["looked_up"]) == (
        "done", new_due.isoformat(), True)
    assert WRITING not in result
    assert books.version(target) == written  # looked up, not written a second time
    assert _invoice_row(app, org_id, target)[2] == new_due


def test_recommend_writes_nothing(app, linked, books, clock) -> None:  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import AuditEvent

    org_id = linked.org_id
    _sync(app, org_id)
    contact_id, contact_ref, _ = _customer(app, org_id)
    _hold(app, org_id, contact_id)
    today = books.today(clock)
    target = books.raise_invoice(contact_ref, today, 30, "310.00")
    _sync(app, org_id)
    _set_policy(app, org_id, terms_on_hold={"due_in_days": 7, "when": "on_hold"})
    before = books.version(target)
    _plan(app, org_id)
    _plan(app, org_id)
    run_jobs(app)
    assert _terms_actions(app, org_id) == []
    assert books.due(target) == today + timedelta(days=30)
    assert books.version(target) == before
    invoice_id, _, due = _invoice_row(app, org_id, target)
    assert due == today + timedelta(days=30)
    with app.app_context():
        [told] = db.session.scalars(select(AuditEvent).where(
            AuditEvent.org_id == org_id, AuditEvent.invoice_id == invoice_id,
            AuditEvent.kind == "terms_recommended")).all()
        assert {k: told.data[k] for k in ("recommended_due", "due_date", "days")} == {
            "recommended_due": (today + timedelta(days=7)).isoformat(),
            "due_date": (today + timedelta(days=30)).isoformat(), "days": 7}
    page = linked.http.get(f"{linked.web.url}/orgs/{org_id}/customers/{contact_id}")
    assert 'id="terms"' in page.text and 'id="terms-written"' not in page.text
