"""The promises every connector keeps, checked against each provider's sandbox over HTTP.

The layers above (sync, planning, execution) rely on exactly these, never on which provider
they talk to.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import get_args

import pytest
from redis import Redis

from connectors.base import (
    AuthorizationRevoked,
    Connector,
    CreditNote,
    EditRefused,
    FeeInvoice,
    FeeLine,
    InvoiceEmailFacts,
    InvoiceStatus,
    NotFound,
    ProviderRejected,
    RateLimited,
    effect_marker,
)
from connectors.ratelimit import RateBudget
from tests.conftest import FakeClock
from tests.contract.harness import Harness, QuickBooksHarness, XeroHarness

HARNESSES = {"xero": XeroHarness, "quickbooks": QuickBooksHarness}


@pytest.fixture(params=sorted(HARNESSES))
def books(request: pytest.FixtureRequest, clock: FakeClock) -> Iterator[Harness]:
    harness = HARNESSES[request.param](clock)
    yield harness
    harness.server.stop()


def fee(key: str, amount: str = "12.50", text: str = "Late fee") -> FeeLine:
    marker = effect_marker(key)
    return FeeLine(f"{text} (ref {marker})", Decimal(amount), marker)


def everything(pages: Iterator[list]) -> list:  # type: ignore[type-arg]
    return [record for page in pages for record in page]


def test_it_lists_the_books_with_exact_money_and_aware_times(books: Harness) -> None:
    connector = books.connector()
    org = connector.organisation()
    assert org.name and len(org.country) == 2 and len(org.base_currency) == 3
    assert org.timezone.count("/") >= 1 or org.timezone == "UTC"

    contacts = everything(connector.contacts(None))
    invoices = everything(connector.invoices(None))
    payments = everything(connector.payments(None))
    assert len(contacts) >= 5 and len(invoices) >= 20 and payments
    assert books.invoice_count() == len(invoices)
    assert len({i.provider_id for i in invoices}) == len(invoices)
    for invoice in invoices:
        assert isinstance(invoice.amount_due, Decimal) and isinstance(invoice.total, Decimal)
        assert invoice.status in get_args(InvoiceStatus)
        assert invoice.updated_at is not None and invoice.updated_at.tzinfo == UTC
        if invoice.status == "open":
            assert invoice.amount_due > 0 and invoice.due_date is not None
            assert invoice.amount_paid == invoice.total - invoice.amount_due
    statuses = {i.status for i in invoices}
    assert {"open", "paid"} <= statuses
    known = {i.provider_id for i in invoices}
    assert all(p.invoice_provider_id in known for p in payments if p.status == "active")
    assert all(p.amount > 0 for p in payments if p.status == "active")


def test_incremental_reads_bring_the_change_and_little_else(books: Harness) -> None:
    connector = books.connector()
    invoices = everything(connector.invoices(None))
    cursor = max(i.updated_at for i in invoices if i.updated_at)
    target = books.open_invoice()
    due = connector.invoice(target).amount_due

    books.clock.advance(minutes=5)
    books.pay(target, Decimal("1.00"))
    books.clock.advance(minutes=1)

    calls = books.calls()
    changed = everything(connector.invoices(cursor))
    assert books.calls() - calls == 1  # one call for a small change
    by_id = {i.provider_id: i for i in changed}
    assert by_id[target].amount_due == due - Decimal("1.00")
    # Only the change, plus at most what shares the cursor's own second (read again safely).
    assert all(i.provider_id == target or (i.updated_at and i.updated_at >= cursor
                                           - timedelta(seconds=1)) for i in changed)
    paid = everything(connector.payments(cursor))
    assert any(p.invoice_provider_id == target and p.amount == Decimal("1.00") for p in paid)


def test_reading_one_invoice_and_a_missing_one(books: Harness) -> None:
    connector = books.connector()
    target = books.open_invoice()
    assert connector.invoice(target).provider_id == target
    with pytest.raises(NotFound):
        connector.invoice("999999" if books.provider == "quickbooks"
                          else "00000000-0000-4000-8000-000000000000")


def test_a_reminder_email_and_its_note_happen_once_however_often_they_are_retried(
        books: Harness) -> None:
    connector = books.connector()
    target = books.open_invoice()
    key = f"1:{target}:reminder:0"
    for _ in range(2):  # a retry after a lost answer sends the same keys again
        connector.email_invoice(target, f"{key}:email")
        connector.add_invoice_note(target, "Dunwell: reminder 1 of 4 sent", f"{key}:note")
    assert books.emails(target) == 1
    assert sum("reminder 1 of 4" in note for note in books.notes(target)) == 1


def test_the_preview_of_the_providers_own_email_is_the_email_it_sends(books: Harness) -> None:
    """What the preview shows for the provider's invoice email channel: the subject and body
    the provider words from the organisation's settings, read once for many invoices."""
    connector = books.connector()
    target = books.open_invoice()
    record = connector.invoice(target)
    contact = next(c for c in everything(connector.contacts(None))
                   if c.provider_id == record.contact_provider_id)
    facts = InvoiceEmailFacts(target, record.number, contact.name, record.currency,
                              record.total, record.amount_due, record.due_date)
    assert connector.invoice_emails([]) == []
    calls = books.calls()
    [preview, again] = connector.invoice_emails([facts, facts])
    assert books.calls() - calls == 1 and preview == again
    assert record.number in preview.subject and contact.name in preview.body
    connector.email_invoice(target, f"1:{target}:reminder:0:email")
    assert books.sent_email(target) == (preview.subject, preview.body)

    # The owner words it differently at the provider. QuickBooks lets the preview read that;
    # Xero does not, so its preview keeps Xero's standard wording and says so.
    books.word_invoice_emails("Your invoice {number} is waiting",
                              "Hello {name}, please have a look.")
    [reworded] = connector.invoice_emails([facts])
    connector.email_invoice(target, f"1:{target}:reminder:1:email")
    subject, body = books.sent_email(target)
    assert subject == f"Your invoice {record.number} is waiting"
    assert body == f"Hello {contact.name}, please have a look."
    if books.provider == "quickbooks":
        assert preview.from_settings and reworded.from_settings
        assert (reworded.subject, reworded.body) == (subject, body)
    else:
        assert not preview.from_settings and not reworded.from_settings
        assert reworded == preview


def test_a_note_and_an_email_can_be_looked_up_after_the_fact(books: Harness,
                                                              clock: FakeClock) -> None:
    """What the executor asks after an unknown outcome, once the provider may have forgotten
    the key: the note by the marker its key gives it, the email by the provider's own record
    of the send, from the moment the write began."""
    connector = books.connector()
    target = books.open_invoice()
    key = f"1:{target}:reminder:1"
    assert not connector.find_invoice_note(target, f"{key}:note")
    connector.add_invoice_note(target, "Dunwell: reminder 2 of 4 sent", f"{key}:note")
    assert connector.find_invoice_note(target, f"{key}:note")
    assert not connector.find_invoice_note(target, f"{key}:other-note")
    assert any(effect_marker(f"{key}:note") in note for note in books.notes(target))

    clock.advance(minutes=10)
    began = clock()
    assert not connector.invoice_emailed_since(target, began)
    clock.advance(seconds=30)
    connector.email_invoice(target, f"{key}:email")
    clock.advance(minutes=20)
    assert connector.invoice_emailed_since(target, began)
    assert not connector.invoice_emailed_since(target, clock())  # nothing sent since now
    assert books.emails(target) == 1


def test_a_fee_line_is_added_once_and_found_again_under_a_new_key(books: Harness) -> None:
    connector = books.connector()
    target = books.open_invoice()
    before = connector.invoice(target)
    line = fee(f"1:{target}:fee:late:0")
    connector.add_fee_line(target, line, "attempt-1")
    # A retry whose first answer was lost (new idempotency key): the marker finds the line.
    connector.add_fee_line(target, line, "attempt-2")
    after = connector.invoice(target)
    assert after.amount_due == before.amount_due + Decimal("12.50")
    assert after.total == before.total + Decimal("12.50")
    assert [x.amount for x in books.lines(target) if line.marker in x.description] == \
        [Decimal("12.50")]
    second = fee(f"1:{target}:fee:late:1", "3.05")
    connector.add_fee_line(target, second, "attempt-3")
    assert connector.invoice(target).amount_due == before.amount_due + Decimal("15.55")


def test_a_part_paid_invoice_takes_a_fee_line_only_where_the_provider_allows(
        books: Harness) -> None:
    connector = books.connector()
    target = books.open_invoice(part_paid=True)
    before = connector.invoice(target)
    line = fee(f"1:{target}:fee:late:0")
    if books.locks_lines_once_paid:
        with pytest.raises(EditRefused):
            connector.add_fee_line(target, line, "part-paid")
        assert connector.invoice(target).amount_due == before.amount_due
    else:
        connector.add_fee_line(target, line, "part-paid")
        assert connector.invoice(target).amount_due == before.amount_due + Decimal("12.50")


def test_a_fee_invoice_is_created_once(books: Harness) -> None:
    connector = books.connector()
    original = connector.invoice(books.open_invoice())
    assert original.contact_provider_id
    spec = FeeInvoice(contact_provider_id=original.contact_provider_id,
                      currency=original.currency, issue_date=books.clock().date(),
                      due_date=books.clock().date() + timedelta(days=14),
                      reference=f"Late fees on {original.number}",
                      lines=(fee("1:9:fee:late:0", "40.00", "Compensation"),
                             fee("1:9:fee:interest:0", "7.31", "Interest")))
    count = books.invoice_count()
    first = connector.create_fee_invoice(spec, "1:9:fee-invoice:0")
    again = connector.create_fee_invoice(spec, "1:9:fee-invoice:0")
    assert first == again and books.invoice_count() == count + 1
    created = connector.invoice(first)
    assert created.status == "open" and created.amount_due == Decimal("47.31")
    assert created.contact_provider_id == original.contact_provider_id
    assert created.currency == original.currency and created.due_date == spec.due_date


def discount(connector: Connector, invoice_id: str, key: str, amount: str) -> CreditNote:
    invoice = connector.invoice(invoice_id)
    assert invoice.contact_provider_id and invoice.issue_date
    marker = effect_marker(key)
    return CreditNote(contact_provider_id=invoice.contact_provider_id,
                      invoice_provider_id=invoice_id, currency=invoice.currency,
                      issue_date=invoice.issue_date, amount=Decimal(amount),
                      description=f"Early-payment discount 2 % on {invoice.number} "
                                  f"(ref {marker})", marker=marker)


def marked(books: Harness, marker: str) -> list[str]:
    return [c.provider_id for c in books.credit_notes() if marker in c.text]


def test_a_discount_credit_note_is_applied_once_however_often_it_is_retried(
        books: Harness) -> None:
    connector = books.connector()
    target = books.invoice_due(Decimal("120.00"))
    credit = discount(connector, target, f"1:{target}:discount:0", "2.40")
    count = len(books.credit_notes())
    first = connector.apply_credit_note(credit, "discount-attempt-1")
    # The same key again (a replayed job), then a new key after an unknown outcome.
    assert connector.apply_credit_note(credit, "discount-attempt-1") == first
    assert connector.apply_credit_note(credit, "discount-attempt-2") == first
    assert len(books.credit_notes()) == count + 1
    assert marked(books, credit.marker) == [first]
    assert books.credits(target) == [Decimal("2.40")]
    after = connector.invoice(target)
    assert (after.amount_due, after.total, after.status) == (Decimal("117.60"),
                                                             Decimal("120.00"), "open")
    note = next(c for c in books.credit_notes() if c.provider_id == first)
    assert (note.total, note.remaining) == (Decimal("2.40"), Decimal("0.00"))


def test_a_credit_note_written_but_not_applied_is_applied_by_the_retry(
        books: Harness) -> None:
    """The job dies between writing the credit note and applying it (here: throttled on the
    last call); the retry, under a new key, applies that note and writes no other."""
    connector = books.connector()
    warm, measured, target = (books.invoice_due(Decimal("80.00")) for _ in range(3))
    connector.apply_credit_note(discount(connector, warm, "1:warm:discount:0", "1.00"),
                                "warm")
    before = books.calls()
    connector.apply_credit_note(discount(connector, measured, "1:m:discount:0", "1.00"),
                                "measured")
    needed = books.calls() - before - 1  # one invoice read is the test's, not the write's
    credit = discount(connector, target, f"1:{target}:discount:0", "1.60")
    books.limit_calls_per_minute(books.calls() + needed - 1)  # refuses the last call
    with pytest.raises(RateLimited):
        connector.apply_credit_note(credit, "dies-before-applying")
    [written] = marked(books, credit.marker)
    assert books.credits(target) == []
    books.limit_calls_per_minute(100_000)
    books.clock.advance(minutes=2)
    assert books.connector().apply_credit_note(credit, "retried") == written
    assert marked(books, credit.marker) == [written]
    assert books.credits(target) == [Decimal("1.60")]
    assert books.connector().invoice(target).amount_due == Decimal("78.40")


def test_an_invoice_paid_except_for_the_discount_ends_paid(books: Harness) -> None:
    connector = books.connector()
    target = books.invoice_due(Decimal("250.00"))
    books.pay(target, Decimal("245.00"))
    connector.apply_credit_note(discount(connector, target, f"1:{target}:discount:0", "5.00"),
                                "discount-1")
    after = connector.invoice(target)
    assert (after.status, after.amount_due, after.total) == ("paid", Decimal("0.00"),
                                                             Decimal("250.00"))
    assert books.credits(target) == [Decimal("5.00")]


def test_a_credit_above_the_amount_due_is_rejected_and_changes_nothing(
        books: Harness) -> None:
    connector = books.connector()
    target = books.invoice_due(Decimal("100.00"))
    books.pay(target, Decimal("99.00"))
    credits = books.credit_notes()
    credit = discount(connector, target, f"1:{target}:discount:0", "2.00")
    with pytest.raises(ProviderRejected):
        connector.apply_credit_note(credit, "too-much")
    assert books.credit_notes() == credits and books.credits(target) == []
    assert connector.invoice(target).amount_due == Decimal("1.00")


def test_a_discount_line_lowers_an_unpaid_invoice_once(books: Harness) -> None:
    connector = books.connector()
    target = books.open_invoice()
    before = connector.invoice(target)
    line = fee(f"1:{target}:discount:0", "-7.25", "Early-payment discount 2 %")
    connector.add_fee_line(target, line, "discount-line-1")
    connector.add_fee_line(target, line, "discount-line-2")  # a retry under a new key
    after = connector.invoice(target)
    assert after.total == before.total - Decimal("7.25")
    assert after.amount_due == before.amount_due - Decimal("7.25")
    assert [x.amount for x in books.lines(target) if line.marker in x.description] == \
        [Decimal("-7.25")]
    part_paid = books.open_invoice(part_paid=True)
    due = connector.invoice(part_paid).amount_due
    other = fee(f"1:{part_paid}:discount:0", "-1.50", "Early-payment discount 2 %")
    if books.locks_lines_once_paid:
        with pytest.raises(EditRefused):
            connector.add_fee_line(part_paid, other, "discount-line-3")
        assert connector.invoice(part_paid).amount_due == due
    else:
        connector.add_fee_line(part_paid, other, "discount-line-3")
        assert connector.invoice(part_paid).amount_due == due - Decimal("1.50")


def test_a_throttled_call_raises_rate_limited_without_hidden_retries(
        books: Harness, redis_url: str) -> None:
    budget = RateBudget(Redis.from_url(redis_url), books.provider, per_minute=10_000,
                        per_day=100_000, concurrent=10, clock=books.clock)
    connector = books.connector(budget=budget)
    connector.organisation()  # tokens in hand
    books.limit_calls_per_minute(books.calls())
    calls = books.calls()
    with pytest.raises(RateLimited) as caught:
        connector.invoice(books.open_invoice())
    assert caught.value.retry_after > 0
    assert books.calls() == calls + 1
    # The tenant now cools down in the shared budget: the next call never leaves the building.
    with pytest.raises(RateLimited):
        connector.invoice(books.open_invoice())
    assert books.calls() == calls + 1


def test_an_expired_access_token_is_refreshed_once_and_the_new_pair_kept(
        books: Harness) -> None:
    connector = books.connector()
    connector.organisation()
    tokens = books.tokens()
    old = tokens.tokens
    books.clock.advance(hours=2)  # past either provider's access-token lifetime
    books.expire_access_tokens()
    connector.invoice(books.open_invoice())
    assert tokens.refreshes == 1
    assert tokens.tokens.refresh_token != old.refresh_token
    assert tokens.tokens.expires_at > books.clock()
    connector.invoice(books.open_invoice())
    assert tokens.refreshes == 1


def test_a_revoked_consent_is_reported_as_such(books: Harness) -> None:
    connector = books.connector()
    connector.organisation()
    books.revoke_consent()
    books.clock.advance(hours=2)
    with pytest.raises(AuthorizationRevoked):
        connector.organisation()


def test_dates_are_calendar_dates(books: Harness) -> None:
    invoice = books.connector().invoice(books.open_invoice())
    assert isinstance(invoice.due_date, date) and not isinstance(invoice.due_date, datetime)


def test_an_invoice_has_a_link_the_customer_can_pay_at(books: Harness) -> None:
    target = books.open_invoice()
    link = books.connector().online_invoice_url(target)
    assert link is not None and link.startswith("https://") and target in link  # as sent
