"""Fee invoices in bulk: the promises both connectors keep, against each provider's sandbox."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from connectors.base import Connector, FeeInvoice, FeeLine, InvoiceRecord, effect_marker
from tests.contract.harness import Harness
from tests.contract.test_connector_contract import books  # noqa: F401  (the harness fixture)

UNKNOWN_CONTACT = {"xero": "00000000-0000-4000-8000-00000000dead", "quickbooks": "999999"}


def fee_invoice(books: Harness, original: InvoiceRecord, key: str,  # noqa: F811
                contact: str | None = None) -> tuple[FeeInvoice, str]:
    marker = effect_marker(key)
    assert original.contact_provider_id
    today = books.clock().date()
    return FeeInvoice(
        contact_provider_id=contact or original.contact_provider_id,
        currency=original.currency, issue_date=today, due_date=today + timedelta(days=14),
        reference=f"Late fees on {original.number}",
        lines=(FeeLine(f"Late fee on {original.number} (ref {marker})", Decimal("15.00"),
                       marker),)), f"{key}:fee_invoice"


def batch(books: Harness, connector: Connector, count: int,  # noqa: F811
          stem: str) -> list[tuple[FeeInvoice, str]]:
    original = connector.invoice(books.open_invoice(part_paid=True))
    return [fee_invoice(books, original, f"1:{stem}:fee:late:{n}") for n in range(count)]


def test_many_fee_invoices_go_in_the_fewest_calls_and_once(books: Harness) -> None:  # noqa: F811
    connector = books.connector()
    connector.create_fee_invoices(batch(books, connector, 2, "warm"))  # finds the fee item
    items = batch(books, connector, 35, "many")
    count, calls = books.invoice_count(), connector.calls

    outcomes = connector.create_fee_invoices(items)

    per_call = connector.fee_invoices_per_call
    assert per_call == {"xero": 50, "quickbooks": 30}[books.provider]
    assert connector.calls - calls == {"xero": 1, "quickbooks": 2}[books.provider]
    assert [o.idempotency_key for o in outcomes] == [key for _, key in items]
    assert all(o.provider_id and o.refused is None for o in outcomes)
    assert len({o.provider_id for o in outcomes}) == 35
    assert books.invoice_count() == count + 35
    created = connector.invoices_by_id([str(o.provider_id) for o in outcomes])
    assert sorted(r.provider_id for r in created) == sorted(str(o.provider_id)
                                                            for o in outcomes)
    assert {(r.status, r.amount_due, r.currency) for r in created} == {
        ("open", Decimal("15.00"), items[0][0].currency)}

    again = connector.create_fee_invoices(items)  # the same batch, sent again: replayed
    assert [o.provider_id for o in again] == [o.provider_id for o in outcomes]
    assert books.invoice_count() == count + 35


def test_a_refused_fee_invoice_leaves_the_others_of_its_batch_made(books: Harness) -> None:  # noqa: F811
    connector = books.connector()
    items = batch(books, connector, 3, "mixed")
    original = connector.invoice(books.open_invoice(part_paid=True))
    items.insert(1, fee_invoice(books, original, "1:mixed:fee:late:bad",
                                contact=UNKNOWN_CONTACT[books.provider]))
    count = books.invoice_count()

    outcomes = connector.create_fee_invoices(items)

    assert [o.provider_id is not None for o in outcomes] == [True, False, True, True]
    assert outcomes[1].refused and outcomes[1].idempotency_key == "1:mixed:fee:late:bad:fee_invoice"
    assert books.invoice_count() == count + 3


def test_a_fee_invoice_whose_answer_was_lost_is_found_by_its_marker(books: Harness) -> None:  # noqa: F811
    connector = books.connector()
    items = batch(books, connector, 4, "lost")
    outcomes = connector.create_fee_invoices(items)
    markers = [fee.lines[0].marker for fee, _ in items]
    contacts = [fee.contact_provider_id for fee, _ in items]

    found = connector.find_fee_invoices([*markers, effect_marker("never written")], contacts,
                                        books.clock().date())

    assert found == {marker: o.provider_id for marker, o in zip(markers, outcomes, strict=True)}
    later = books.clock().date() + timedelta(days=1)
    assert connector.find_fee_invoices(markers, contacts, later) == {}


def test_a_fee_line_is_refused_where_the_provider_locks_the_lines(books: Harness) -> None:  # noqa: F811
    connector = books.connector()
    paid = connector.invoice(books.open_invoice(part_paid=True))
    unpaid = connector.invoice(books.open_invoice(part_paid=False))
    assert connector.refuses_fee_line(paid) is books.locks_lines_once_paid
    assert connector.refuses_fee_line(unpaid) is False
    assert connector.invoices_by_id([unpaid.provider_id, paid.provider_id]) in (
        [unpaid, paid], [paid, unpaid])
