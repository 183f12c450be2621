"""What only the QuickBooks connector has to get right: requestid on every write, SyncToken
races, CDC's limits and its fallback to a query sync."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest

from connectors.base import effect_marker
from connectors.quickbooks import CDC_MAX_OBJECTS, QuickBooksConnector, parse_qbo_datetime
from tests.conftest import FakeClock
from tests.contract.harness import QuickBooksHarness
from tests.contract.test_connector_contract import everything, fee
from tests.contract.test_incremental_changes import delete_entity


@pytest.fixture
def books(clock: FakeClock) -> Iterator[QuickBooksHarness]:
    harness = QuickBooksHarness(clock)
    yield harness
    harness.server.stop()


def writes(books: QuickBooksHarness) -> list[dict]:  # type: ignore[type-arg]
    return [r for r in books.box.requests(books.realm)
            if r["method"] == "POST" and not r["path"].endswith("/query")]


def test_every_write_carries_a_requestid(books: QuickBooksHarness) -> None:
    connector = books.connector()
    target = books.open_invoice()
    connector.email_invoice(target, "1:2:reminder:0:email")
    connector.add_invoice_note(target, "Dunwell: reminder 1 of 4 sent", "1:2:reminder:0:note")
    connector.add_fee_line(target, fee("1:2:fee:late:0"), "1:2:fee:late:0")
    made = writes(books)
    assert len(made) >= 4  # send, note, item creation, fee line
    assert all(r["requestid"] for r in made), made
    assert len({r["requestid"] for r in made}) == len(made)


def test_a_bookkeepers_edit_between_read_and_write_is_survived_once(
        books: QuickBooksHarness) -> None:
    """The connector reads the invoice, someone edits it in QuickBooks, our write meets a
    stale SyncToken (5010): it reads again and writes once more, keeping their change."""
    connector = books.connector()
    assert isinstance(connector, QuickBooksConnector)
    target = books.open_invoice()
    original_get = connector._get
    edited = []

    def get_then_edit(entity: str, provider_id: str, **params: str) -> dict:  # type: ignore[type-arg]
        raw = original_get(entity, provider_id, **params)
        if not edited:
            books.box.update_invoice(books.realm, target, CustomerMemo={"value": "Thanks!"})
            edited.append(True)
        return raw

    connector._get = get_then_edit  # type: ignore[method-assign]
    connector.add_invoice_note(target, "Dunwell: reminder 2 of 4 sent", "1:2:reminder:1:note")
    raw = books._raw(target)
    assert raw["CustomerMemo"] == {"value": "Thanks!"}
    assert sum("reminder 2 of 4" in line for line in books.notes(target)) == 1
    assert effect_marker("1:2:reminder:1:note") in raw["PrivateNote"]


def test_changes_older_than_cdc_allows_are_read_by_query(books: QuickBooksHarness) -> None:
    connector = books.connector()
    since = books.clock() - timedelta(days=45)
    before = len(writes(books))
    changed = everything(connector.invoices(since))
    paths = [r["path"] for r in books.box.requests(books.realm)]
    assert not any(p.endswith("/cdc") for p in paths)
    assert any(p.endswith("/query") for p in paths)
    expected = {i["Id"] for i in books.box.invoices(books.realm)
                if parse_qbo_datetime(i["MetaData"]["LastUpdatedTime"]) >= since}
    assert expected and {i.provider_id for i in changed} == expected
    assert len(writes(books)) == before


def test_a_capped_cdc_answer_falls_back_to_a_query_sync(books: QuickBooksHarness) -> None:
    connector = books.connector()
    everything(connector.invoices(None))
    books.box.config.cdc_max_objects = 3  # fewer than what changed
    import connectors.quickbooks as qbo

    qbo_cap, qbo.CDC_MAX_OBJECTS = qbo.CDC_MAX_OBJECTS, 3
    try:
        since = books.clock() - timedelta(days=20)
        changed = everything(connector.invoices(since))
    finally:
        qbo.CDC_MAX_OBJECTS = qbo_cap
    assert qbo.CDC_MAX_OBJECTS == CDC_MAX_OBJECTS
    paths = [r["path"] for r in books.box.requests(books.realm)]
    assert paths[-2].endswith("/cdc") and paths[-1].endswith("/query")
    assert len(changed) > 3


def test_a_deleted_payment_and_a_deleted_invoice_reach_the_sync_as_deletions(
        books: QuickBooksHarness) -> None:
    connector = books.connector()
    target = books.open_invoice()
    everything(connector.invoices(None))
    cursor = books.clock()
    books.clock.advance(minutes=1)
    payment = books.box.pay_invoice(books.realm, target, Decimal("2.00"))
    books.clock.advance(minutes=1)
    paid = everything(connector.payments(cursor))
    assert [(p.provider_id, p.amount) for p in paid if p.invoice_provider_id == target] == [
        (f"{payment['Id']}:{target}", Decimal("2.00"))]
    delete_entity(books, "Payment", payment)
    books.clock.advance(minutes=1)
    gone = everything(connector.payments(cursor + timedelta(seconds=90)))
    assert [(p.provider_id, p.status, p.invoice_provider_id) for p in gone] == [
        (payment["Id"], "deleted", None)]


def test_two_workers_making_the_fee_item_and_the_bank_charges_account_at_once_make_one(
        books: QuickBooksHarness) -> None:
    """Both ask before either has an answer: the second is refused by the name the first took
    (6240) and uses the first's, so both fees are written and the company has one of each."""
    from concurrent.futures import ThreadPoolExecutor

    from connectors.base import BankFee

    accounts = [a for a in books.box.company(books.realm).records["Account"].values()
                if a.get("Name") == "Bank Charges"]
    items = [i for i in books.box.company(books.realm).records["Item"].values()
             if i.get("Name") == "Late fee"]
    assert accounts == [] and items == []  # each is made by the first fee of its kind
    targets = [books.open_invoice(), next(i["Id"] for i in books.box.invoices(books.realm)
                                          if i["Balance"] > 0 and i["Id"] != books.open_invoice())]
    workers = [books.connector(), books.connector()]  # two workers, one company's tokens
    books.box.config.latency_seconds = 0.3  # both requests are in flight together

    def bank_fee(n: int) -> str:
        key = f"card-{n}:fee"
        return workers[n].record_bank_fee(BankFee(
            currency="USD", paid_on=books.clock().date(), amount=Decimal("1.75"),
            description=f"Stripe fee ({effect_marker(key)})", marker=effect_marker(key),
            payee="Stripe"), key)

    def fee_line(n: int) -> None:
        workers[n].add_fee_line(targets[n], fee(f"1:{n}:fee:late:0"), f"1:{n}:fee:late:0")

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(fee_line, range(2)))
        fees = list(pool.map(bank_fee, range(2)))
    records = books.box.company(books.realm).records
    assert len({*fees}) == 2 and all(records["Purchase"][f] for f in fees)
    assert len([a for a in records["Account"].values() if a.get("Name") == "Bank Charges"]) == 1
    assert len([i for i in records["Item"].values() if i.get("Name") == "Late fee"]) == 1
    for target in targets:
        assert any("Late fee" in str(line) for line in books._raw(target)["Line"])
