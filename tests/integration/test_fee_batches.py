"""Late fees on separate fee invoices, many to a call, against the Xero sandbox over HTTP."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

pytestmark = pytest.mark.db


def part_paid_invoices(state, tenant_id: str, today, count: int, paid: bool = True) -> None:  # type: ignore[no-untyped-def]
    """Invoices a bookkeeper raised and the customers paid part of: Xero locks their lines."""
    contact = next(c for c in state.contacts(tenant_id) if c.get("ContactStatus") == "ACTIVE")
    for n in range(count):
        invoice = state.add_invoice(tenant_id, {
            "Type": "ACCREC", "Status": "AUTHORISED", "InvoiceNumber": f"LATE-{n:04d}",
            "Contact": {"ContactID": contact["ContactID"]},
            "Date": (today - timedelta(days=60)).isoformat(),
            "DueDate": (today - timedelta(days=30)).isoformat(),
            "LineItems": [{"Description": "Consulting", "Quantity": 1, "UnitAmount": "100.00",
                           "AccountCode": "200", "TaxType": "NONE"}]})
        if paid:
            state.pay_invoice(tenant_id, invoice["InvoiceID"], Decimal("10.00"))


def plan_late_fees(app, org_id: int, now) -> list[int]:  # type: ignore[no-untyped-def]
    """A late fee planned for every LATE- invoice, as the policy engine would (placement
    "line": the batch must notice that Xero refuses the line)."""
    from store.db import db
    from store.models import Action, Invoice

    with app.app_context():
        invoices = db.session.scalars(select(Invoice).where(
            Invoice.org_id == org_id, Invoice.number.like("LATE-%")).order_by(Invoice.id)).all()
        actions = [Action(org_id=org_id, invoice_id=invoice.id, kind="fee", status="planned",
                          key=f"{org_id}:{invoice.id}:fee:late:0", scheduled_for=now,
                          amount=Decimal("15.00"), currency=invoice.currency,
                          reason=f"Late fee on {invoice.number}",
                          planned_amount_due=invoice.amount_due,
                          details={"placement": "line"}, created_at=now, updated_at=now)
                   for invoice in invoices]
        db.session.add_all(actions)
        db.session.commit()
        return [action.id for action in actions]


def synced(app, connected, state, clock, count: int) -> None:  # type: ignore[no-untyped-def]
    from jobs.tasks import sync_org

    part_paid_invoices(state, connected.tenant_id, clock().date(), count)
    with app.app_context():
        assert sync_org(connected.org_id, plan_after=False)["counts"]["invoices"] >= count


def fee_invoices_in_the_books(state, tenant_id: str) -> Counter[str]:  # type: ignore[no-untyped-def]
    """How many fee invoices carry each marker."""
    found: Counter[str] = Counter()
    for raw in state.invoices(tenant_id):
        reference = str(raw.get("Reference") or "")
        if reference.startswith("Late fees on LATE-"):
            found[reference.rsplit("(", 1)[1].rstrip(")")] += 1
    return found


def test_five_hundred_late_fees_on_one_xero_tenant_take_fifteen_calls(
        app, connected, sandbox, clock) -> None:  # type: ignore[no-untyped-def]
    from collect.fee_batches import create_fee_invoices
    from collect.providers import connector_for
    from connectors.base import effect_marker
    from store.db import db
    from store.models import Action, Organisation

    state, _ = sandbox
    synced(app, connected, state, clock, 500)
    action_ids = plan_late_fees(app, connected.org_id, clock())
    assert len(action_ids) == 500
    calls = state.calls(connected.tenant_id)
    with app.app_context():
        org = db.session.get(Organisation, connected.org_id)
        counts = create_fee_invoices(db.session, org, connector_for(org.connection), clock(),
                                     "worker-1")
        used = state.calls(connected.tenant_id) - calls
        print(f"\n500 late fees on one Xero tenant: {used} API calls ({counts})")
        assert counts == {"claimed": 500, "done": 500, "found_again": 0, "skipped": 0,
                          "handed_back": 0, "unknown": 0, "api_calls": 14}
        assert used == 14  # 4 re-reads of 150 invoices, 10 creates of 50 fee invoices
        actions = db.session.scalars(select(Action).where(Action.id.in_(action_ids))).all()
        assert {a.status for a in actions} == {"done"}
        assert all(a.result and a.result["placed"] == "fee_invoice" for a in actions)
        markers = {effect_marker(a.key) for a in actions}
        assert {a.result["marker"] for a in actions if a.result} == markers

        again = create_fee_invoices(db.session, org, connector_for(org.connection), clock(),
                                    "worker-2")
        assert again["claimed"] == 0 and again["api_calls"] == 0
    books = fee_invoices_in_the_books(state, connected.tenant_id)
    assert set(books) == markers and set(books.values()) == {1}


def test_a_batch_whose_answer_was_lost_is_found_again_and_never_made_twice(
        app, connected, sandbox, clock) -> None:  # type: ignore[no-untyped-def]
    from collect import ledger
    from collect.effects import Effect
    from collect.fee_batches import SENT, create_fee_invoices, fee_invoice_for
    from collect.providers import connector_for
    from store.db import db
    from store.models import Action, Invoice, Organisation

    state, _ = sandbox
    synced(app, connected, state, clock, 80)
    action_ids = plan_late_fees(app, connected.org_id, clock())
    with app.app_context():
        org = db.session.get(Organisation, connected.org_id)
        connector = connector_for(org.connection)
        first = db.session.scalars(select(Action).where(Action.id.in_(action_ids[:50]))).all()
        # A worker claimed 50, sent them, and died before it could record the answer.
        for action in first:
            assert ledger.claim(db.session, action, "worker-dead", clock())
            action.result = {SENT: clock().date().isoformat()}
        db.session.commit()
        connector.create_fee_invoices([
            fee_invoice_for(Effect(db.session, action, db.session.get(Invoice, action.invoice_id),
                                   org, connector, clock()))
            for action in first])
        clock.advance(minutes=11)  # its lease runs out

        counts = create_fee_invoices(db.session, org, connector_for(org.connection), clock(),
                                     "worker-2")
        assert (counts["claimed"], counts["found_again"], counts["done"]) == (80, 50, 30)
        actions = db.session.scalars(select(Action).where(Action.id.in_(action_ids))).all()
        assert {a.status for a in actions} == {"done"}
    books = fee_invoices_in_the_books(state, connected.tenant_id)
    assert len(books) == 80 and set(books.values()) == {1}


def test_planning_batches_fee_invoices_and_the_single_jobs_find_them_done(
        app, connected, sandbox, clock) -> None:  # type: ignore[no-untyped-def]
    from jobs.tasks import plan_org
    from store.db import db
    from store.models import Action
    from tests.integration.conftest import run_jobs

    state, _ = sandbox
    synced(app, connected, state, clock, 20)
    action_ids = plan_late_fees(app, connected.org_id, clock())
    with app.app_context():
        plan_org(connected.org_id)  # batches the fees before enqueueing the day's actions
        statuses = Counter(db.session.scalars(select(Action.status).where(
            Action.id.in_(action_ids))).all())
        assert statuses == {"done": 20}
    calls = state.calls(connected.tenant_id)
    run_jobs(app)  # the single jobs of the planned actions: none makes a fee invoice again
    assert len(fee_invoices_in_the_books(state, connected.tenant_id)) == 20
    assert set(fee_invoices_in_the_books(state, connected.tenant_id).values()) == {1}
    assert state.calls(connected.tenant_id) >= calls


class AnswerLost:
    """The real connector, except that a batch's answer never arrives (made or not)."""

    def __init__(self, connector, made: bool) -> None:  # type: ignore[no-untyped-def]
        self._connector, self._made = connector, made

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self._connector, name)

    def create_fee_invoices(self, items):  # type: ignore[no-untyped-def]
        from connectors.base import TransientError

        if self._made:
            self._connector.create_fee_invoices(items)
        raise TransientError("Xero create fee invoices: ReadTimeoutError")


@pytest.mark.parametrize("made", [True, False])
def test_a_lost_batch_answer_is_looked_up_at_once(
        app, connected, sandbox, clock, made: bool) -> None:  # type: ignore[no-untyped-def]
    from collect.fee_batches import SENT, create_fee_invoices
    from collect.providers import connector_for
    from store.db import db
    from store.models import Action, Organisation

    state, _ = sandbox
    synced(app, connected, state, clock, 10)
    action_ids = plan_late_fees(app, connected.org_id, clock())
    with app.app_context():
        org = db.session.get(Organisation, connected.org_id)
        counts = create_fee_invoices(db.session, org,
                                     AnswerLost(connector_for(org.connection), made), clock(),
                                     "worker-1")
        actions = db.session.scalars(select(Action).where(Action.id.in_(action_ids))).all()
        if made:
            assert (counts["found_again"], counts["handed_back"]) == (10, 0)
            assert {a.status for a in actions} == {"done"}
        else:  # never made: back to the single path, with nothing left to look for
            assert (counts["found_again"], counts["handed_back"]) == (0, 10)
            assert {a.status for a in actions} == {"planned"}
            assert not any(SENT in (a.result or {}) for a in actions)
    books = fee_invoices_in_the_books(state, connected.tenant_id)
    assert (len(books), set(books.values())) == ((10, {1}) if made else (0, set()))


def test_the_single_path_finds_a_fee_invoice_a_lost_batch_made(
        app, connected, sandbox, clock) -> None:  # type: ignore[no-untyped-def]
    """The batch's answer and its look-up were both lost; the sweeper hands the action to the
    single path, whose own idempotency key differs from the batch's: the marker finds it."""
    from collect import execute, ledger
    from collect.effects import Effect
    from collect.fee_batches import SENT, fee_invoice_for
    from collect.providers import connector_for
    from store.db import db
    from store.models import Action, Invoice, Organisation

    state, _ = sandbox
    synced(app, connected, state, clock, 1)
    [action_id] = plan_late_fees(app, connected.org_id, clock())
    with app.app_context():
        org = db.session.get(Organisation, connected.org_id)
        connector = connector_for(org.connection)
        action = db.session.get(Action, action_id)
        invoice = db.session.get(Invoice, action.invoice_id)
        connector.create_fee_invoices([fee_invoice_for(Effect(db.session, action, invoice, org,
                                                              connector, clock()))])
        ledger.finish(db.session, action, "failed", "Will retry: the batch's answer was lost",
                      clock(), result={SENT: clock().date().isoformat()})
        db.session.commit()
        clock.advance(minutes=20)
        assert execute.execute_action(db.session, action, connector, clock(), "worker-3") \
            == "done"
        assert action.result["fee_invoice_id"]
    books = fee_invoices_in_the_books(state, connected.tenant_id)
    assert len(books) == 1 and set(books.values()) == {1}


def test_a_fee_the_rule_places_on_a_separate_invoice_goes_in_the_batch(
        app, connected, sandbox, clock) -> None:  # type: ignore[no-untyped-def]
    from collect.fee_batches import create_fee_invoices
    from collect.providers import connector_for
    from jobs.tasks import sync_org
    from store.db import db
    from store.models import Action, Organisation

    state, _ = sandbox
    part_paid_invoices(state, connected.tenant_id, clock().date(), 3, paid=False)
    with app.app_context():  # unpaid: Xero would take a line, the rule asks for an invoice
        sync_org(connected.org_id, plan_after=False)
    action_ids = plan_late_fees(app, connected.org_id, clock())
    with app.app_context():
        for action in db.session.scalars(select(Action).where(Action.id.in_(action_ids))):
            action.details = {"placement": "separate_invoice"}
        db.session.commit()
        org = db.session.get(Organisation, connected.org_id)
        counts = create_fee_invoices(db.session, org, connector_for(org.connection), clock(),
                                     "worker-1")
        assert (counts["claimed"], counts["done"], counts["handed_back"]) == (3, 3, 0)
    assert len(fee_invoices_in_the_books(state, connected.tenant_id)) == 3


def test_fees_for_a_statement_invoice_go_on_one_fee_invoice_per_contact_and_statement(
        app, connected, sandbox, clock) -> None:  # type: ignore[no-untyped-def]
    """Four fees of one contact: three for the statement of 1 December, one for 1 January."""
    from collect.fee_batches import create_fee_invoices
    from collect.providers import connector_for
    from connectors.base import effect_marker
    from store.db import db
    from store.models import Action, Organisation

    state, _ = sandbox
    synced(app, connected, state, clock, 4)
    action_ids = plan_late_fees(app, connected.org_id, clock())
    with app.app_context():
        actions = db.session.scalars(select(Action).where(Action.id.in_(action_ids))
                                     .order_by(Action.id)).all()
        for n, action in enumerate(actions):
            action.details = {"placement": "statement_invoice",
                              "statement": "2026-12-01" if n < 3 else "2027-01-01"}
        db.session.commit()
        markers = [effect_marker(a.key) for a in actions]
        org = db.session.get(Organisation, connected.org_id)
        counts = create_fee_invoices(db.session, org, connector_for(org.connection), clock(),
                                     "worker-1")
        assert (counts["claimed"], counts["done"]) == (4, 4)
        made = {a.result["fee_invoice_id"] for a in actions}
        assert len(made) == 2
    statements = {str(raw["Reference"]).split(" (")[0]: raw
                  for raw in state.invoices(connected.tenant_id)
                  if str(raw.get("Reference") or "").startswith("Late fees and interest")}
    assert sorted(statements) == ["Late fees and interest, statement of 2026-12-01",
                                  "Late fees and interest, statement of 2027-01-01"]
    december = statements["Late fees and interest, statement of 2026-12-01"]
    assert [Decimal(str(line["LineAmount"])) for line in december["LineItems"]] == \
        [Decimal("15.00")] * 3
    text = " ".join(str(line["Description"]) for line in december["LineItems"])
    assert all(marker in text for marker in markers[:3]) and markers[3] not in text


def test_a_statement_fee_falls_due_on_the_customer_statement_day_when_the_policy_names_none(
        app, connected, sandbox, clock) -> None:  # type: ignore[no-untyped-def]
    """A flat fee placed on the statement invoice, charged from 23 November: with customer
    statements on the 28th (Saturday 28 November 2026: Monday the 30th at 09:00) and no
    statement day in the policy, the fee is due with the statement, not on the 1st."""
    from collect.book import planning_policy
    from collect.plan import dry_run
    from jobs.tasks import sync_org
    from rules import default_policy, policy_to_json
    from store.db import db
    from store.models import CreditSettings, Organisation
    from store.models import Policy as PolicyRow

    state, _ = sandbox
    today = clock().date()
    contact = next(c for c in state.contacts(connected.tenant_id)
                   if c.get("ContactStatus") == "ACTIVE")
    state.add_invoice(connected.tenant_id, {
        "Type": "ACCREC", "Status": "AUTHORISED", "InvoiceNumber": "STMT-0001",
        "Contact": {"ContactID": contact["ContactID"]},
        "Date": (today - timedelta(days=32)).isoformat(),
        "DueDate": date(2026, 11, 22).isoformat(),
        "LineItems": [{"Description": "Consulting", "Quantity": 1, "UnitAmount": "100.00",
                       "AccountCode": "200", "TaxType": "NONE"}]})
    body = policy_to_json(default_policy())
    body["late_fees"] = [{"id": "late", "rule": {"kind": "flat", "amount": "40",
                                                 "placement": "statement_invoice"}}]

    def fee_days(days: list[date]) -> list[date]:
        with app.app_context():
            org = db.session.get(Organisation, connected.org_id)
            return [day for day in days if any(
                row["kind"] == "fee" and row["invoice_number"] == "STMT-0001"
                for row in dry_run(db.session, org, day))]

    with app.app_context():
        sync_org(connected.org_id, plan_after=False)
        row = db.session.scalar(select(PolicyRow).where(PolicyRow.org_id == connected.org_id))
        if row is None:
            db.session.add(PolicyRow(org_id=connected.org_id, version=2, body=body))
        else:
            row.body = body
        db.session.commit()
        org = db.session.get(Organisation, connected.org_id)
        assert planning_policy(db.session, org).statement_day is None
    days = [date(2026, 11, 27), date(2026, 11, 30), date(2026, 12, 1)]
    assert fee_days(days) == [date(2026, 12, 1)]  # the 1st, with no statement day anywhere
    with app.app_context():
        db.session.add(CreditSettings(org_id=connected.org_id, statement_day=28))
        db.session.commit()
        org = db.session.get(Organisation, connected.org_id)
        assert planning_policy(db.session, org).statement_day == 28
    assert fee_days(days) == [date(2026, 11, 30), date(2026, 12, 1)]
    with app.app_context():  # the policy's own day wins
        row = db.session.scalar(select(PolicyRow).where(PolicyRow.org_id == connected.org_id))
        row.body = {**body, "statement_day": 1}
        db.session.commit()
    assert fee_days(days) == [date(2026, 12, 1)]
