"""The sandboxes' fault injection: each fault reaches our connectors as the right typed error,
and a write whose answer was lost, retried, leaves exactly one effect in the books."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import requests

from connectors.base import (
    CreditNote,
    FeeInvoice,
    FeeLine,
    RateLimited,
    TransientError,
    effect_marker,
)
from sandboxes.faults import FaultInjector
from tests.conftest import FakeClock, LiveServer
from tests.contract.harness import Harness, QuickBooksHarness, XeroHarness

HARNESSES = {"xero": XeroHarness, "quickbooks": QuickBooksHarness}
# Each connector retries a dropped connection twice itself (same key): three drops in a row
# reach the caller.
DROPS_TO_FAIL = 3


def with_faults(harness: Harness) -> FaultInjector:
    """Serve the harness's sandbox again, behind a fault injector."""
    box = harness.box  # type: ignore[attr-defined]
    if harness.provider == "xero":
        from sandboxes.xero import create_app
    else:
        from sandboxes.quickbooks import create_app  # type: ignore[assignment]
    faults = FaultInjector(create_app(box), harness.provider, seed=5)  # type: ignore[arg-type]
    harness.server.stop()
    harness.server = LiveServer(faults)
    return faults


@pytest.fixture(params=sorted(HARNESSES))
def books(request: pytest.FixtureRequest, clock: FakeClock) -> Iterator[Harness]:
    harness = HARNESSES[request.param](clock)
    harness.faults = with_faults(harness)  # type: ignore[attr-defined]
    yield harness
    harness.server.stop()


def faults_of(books: Harness) -> FaultInjector:
    return books.faults  # type: ignore[attr-defined, no-any-return]


def fee(key: str, amount: str = "12.50") -> FeeLine:
    marker = effect_marker(key)
    return FeeLine(f"Late fee (ref {marker})", Decimal(amount), marker)


def invoice_path(books: Harness, invoice_id: str) -> str:
    return f"/Invoices/{invoice_id}" if books.provider == "xero" else f"/invoice/{invoice_id}"


# --- typed errors ------------------------------------------------------------------------


def test_a_429_reaches_the_connector_as_rate_limited_with_the_providers_wait(
        books: Harness) -> None:
    connector = books.connector()
    invoice = books.open_invoice()
    connector.invoice(invoice)
    calls = books.calls()
    faults_of(books).add("rate_limited", method="GET", path=invoice_path(books, invoice),
                         retry_after=7, problem="minute")
    with pytest.raises(RateLimited) as caught:
        connector.invoice(invoice)
    # Xero says how long to wait; QuickBooks' fault (here with a Retry-After) is honoured too.
    assert caught.value.retry_after == 7.0
    assert caught.value.problem == ("minute" if books.provider == "xero" else "ThrottleExceeded")
    assert books.calls() == calls  # refused before the sandbox
    assert connector.invoice(invoice).provider_id == invoice  # once only
    assert faults_of(books).count("rate_limited") == 1


def test_a_quickbooks_429_without_retry_after_waits_a_minute(clock: FakeClock) -> None:
    books = QuickBooksHarness(clock)
    faults = with_faults(books)
    try:
        invoice = books.open_invoice()
        connector = books.connector()
        connector.invoice(invoice)
        faults.add("rate_limited", method="GET", path=f"/invoice/{invoice}$", retry_after=None)
        with pytest.raises(RateLimited) as caught:
            connector.invoice(invoice)
        assert caught.value.retry_after == 60.0
    finally:
        books.server.stop()


def test_a_500_reaches_the_connector_as_transient(books: Harness) -> None:
    connector = books.connector()
    invoice = books.open_invoice()
    connector.invoice(invoice)
    faults_of(books).add("server_error", method="GET", path=invoice_path(books, invoice))
    with pytest.raises(TransientError) as caught:
        connector.invoice(invoice)
    assert not isinstance(caught.value, RateLimited)
    assert "500" in str(caught.value)
    assert connector.invoice(invoice).provider_id == invoice


def test_a_slow_answer_still_arrives(books: Harness) -> None:
    connector = books.connector()
    invoice = books.open_invoice()
    connector.invoice(invoice)
    faults_of(books).add("slow", method="GET", path=invoice_path(books, invoice), delay=0.4)
    started = time.monotonic()
    assert connector.invoice(invoice).provider_id == invoice
    assert time.monotonic() - started >= 0.4
    assert faults_of(books).count("slow") == 1


def test_a_timeout_reaches_the_connector_as_transient_and_the_email_went_once(
        books: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    import connectors.quickbooks
    import connectors.xero

    connector = books.connector()
    invoice = books.open_invoice()
    connector.invoice(invoice)  # tokens and session warm
    monkeypatch.setattr(connectors.xero, "REQUEST_TIMEOUT", 0.5)
    monkeypatch.setattr(connectors.quickbooks, "REQUEST_TIMEOUT", 0.5)
    emails = books.emails(invoice)
    faults_of(books).add("timeout", method="POST", path=r"(?i)/(email|send)", delay=1.0,
                         times=DROPS_TO_FAIL)
    with pytest.raises(TransientError) as caught:
        connector.email_invoice(invoice, idempotency_key="timeout-test:email")
    # The client gave up waiting (or, on its last try, found the connection closed under it).
    assert any(word in repr(caught.value.__cause__)
               for word in ("ReadTimeoutError", "RemoteDisconnected")), caught.value.__cause__
    time.sleep(1.6)  # the sandbox finishes what the client gave up on
    connector.email_invoice(invoice, idempotency_key="timeout-test:email")  # the job's retry
    assert books.emails(invoice) == emails + 1


def test_a_lost_answer_reaches_the_connector_as_transient(books: Harness) -> None:
    connector = books.connector()
    invoice = books.open_invoice()
    connector.invoice(invoice)
    faults_of(books).add("lost_answer", method="GET", path=invoice_path(books, invoice),
                         times=DROPS_TO_FAIL)
    with pytest.raises(TransientError):
        connector.invoice(invoice)
    assert faults_of(books).count("lost_answer") == DROPS_TO_FAIL


def test_one_lost_answer_is_retried_by_the_connector_under_the_same_key(books: Harness) -> None:
    connector = books.connector()
    invoice = books.open_invoice()
    emails = books.emails(invoice)
    faults_of(books).add("lost_answer", method="POST", path=r"(?i)/(email|send)", times=1)
    connector.email_invoice(invoice, idempotency_key="once:email")
    assert faults_of(books).count("lost_answer") == 1
    assert books.emails(invoice) == emails + 1


# --- committed, answer lost, retried: exactly one effect -----------------------------------


WRITES = {
    # what, the path of the write whose answer is lost (a regular expression)
    "email": r"(?i)/(email|send)$",
    "note": r"(?i)(/history$|/invoice$)",
    "fee_line": r"(?i)(/invoices/[0-9a-f-]+$|/invoice$)",
    "fee_invoice": r"(?i)(/invoices$|/invoice$)",
    "credit_note": r"(?i)(/allocations$|/payment$)",
}


def _effects(books: Harness, invoice: str, what: str, marker: str) -> tuple[int, int]:
    """How many of the effect the books hold (a credit note: notes made, credits applied)."""
    if what == "email":
        return books.emails(invoice), 0
    if what == "note":
        return sum(1 for note in books.notes(invoice) if "chaos note" in note), 0
    if what == "fee_line":
        return sum(1 for line in books.lines(invoice) if marker in line.description), 0
    if what == "fee_invoice":
        return books.invoice_count(), 0
    return (sum(1 for credit in books.credit_notes() if marker in credit.text),
            len(books.credits(invoice)))


def plus_one(counts: tuple[int, int], what: str) -> tuple[int, int]:
    return (counts[0] + 1, counts[1] + (1 if what == "credit_note" else 0))


def _write(books: Harness, connector: object, invoice: str, what: str, key: str) -> None:
    marker = effect_marker(key)
    if what == "email":
        connector.email_invoice(invoice, idempotency_key=key)  # type: ignore[attr-defined]
    elif what == "note":
        connector.add_invoice_note(invoice, "Dunwell: chaos note",  # type: ignore[attr-defined]
                                   idempotency_key=key)
    elif what == "fee_line":
        connector.add_fee_line(invoice, fee(key), idempotency_key=key)  # type: ignore[attr-defined]
    elif what == "fee_invoice":
        record = connector.invoice(invoice)  # type: ignore[attr-defined]
        today = date(2026, 11, 24)
        connector.create_fee_invoice(FeeInvoice(  # type: ignore[attr-defined]
            contact_provider_id=record.contact_provider_id, currency=record.currency,
            issue_date=today, due_date=today + timedelta(days=14),
            reference=f"Late fees on {record.number}", lines=(fee(key),)),
            idempotency_key=key)
    else:
        record = connector.invoice(invoice)  # type: ignore[attr-defined]
        connector.apply_credit_note(CreditNote(  # type: ignore[attr-defined]
            contact_provider_id=record.contact_provider_id, invoice_provider_id=invoice,
            currency=record.currency, issue_date=date(2026, 11, 24), amount=Decimal("5.00"),
            description=f"Early-payment discount (ref {marker})", marker=marker),
            idempotency_key=key)


@pytest.mark.parametrize("what", sorted(WRITES))
def test_a_write_whose_answer_was_lost_and_retried_happens_once(books: Harness,
                                                                 what: str) -> None:
    connector = books.connector()
    invoice = books.open_invoice()
    key = f"org:{invoice}:chaos:{what}"
    marker = effect_marker(key)
    before = _effects(books, invoice, what, marker)
    faults_of(books).add("lost_answer", method="POST|PUT", path=WRITES[what], times=DROPS_TO_FAIL)
    with pytest.raises(TransientError):
        _write(books, connector, invoice, what, key)
    assert faults_of(books).count("lost_answer") == DROPS_TO_FAIL
    assert _effects(books, invoice, what, marker) == plus_one(before, what)  # it did happen
    _write(books, connector, invoice, what, key)  # the job's retry
    assert _effects(books, invoice, what, marker) == plus_one(before, what)


def _found(books: Harness, connector: Any, invoice: str, what: str, key: str,
           since: datetime) -> bool:
    """The lookup the executor makes before writing again after an unknown outcome (fee lines
    and credit notes look themselves up inside the write)."""
    if what == "note":
        return bool(connector.find_invoice_note(invoice, key))
    if what == "email":
        return bool(connector.invoice_emailed_since(invoice, since))
    if what == "fee_invoice":
        record = connector.invoice(invoice)
        return effect_marker(key) in connector.find_fee_invoices(
            [effect_marker(key)], [record.contact_provider_id], since.date())
    return False


@pytest.mark.parametrize("what", ["fee_line", "credit_note", "note", "email", "fee_invoice"])
def test_past_the_idempotency_window_a_lookup_finds_the_write(books: Harness, clock: FakeClock,
                                                               what: str) -> None:
    """The provider no longer remembers the key: the marker in the books (or, for an email,
    the provider's record of the send) prevents a repeat."""
    connector = books.connector()
    invoice = books.open_invoice()
    key = f"org:{invoice}:window:{what}"
    marker = effect_marker(key)
    before = _effects(books, invoice, what, marker)
    began = clock()
    faults_of(books).add("lost_answer", method="POST|PUT", path=WRITES[what], times=DROPS_TO_FAIL)
    with pytest.raises(TransientError):
        _write(books, connector, invoice, what, key)
    assert _effects(books, invoice, what, marker) == plus_one(before, what)
    faults_of(books).add("forget_key", method="*", path="", times=None)
    clock.advance(minutes=20)  # the job's retry comes later
    if not _found(books, connector, invoice, what, key, began):
        _write(books, connector, invoice, what, key)
    assert _effects(books, invoice, what, marker) == plus_one(before, what)


@pytest.mark.parametrize("what", ["note", "email", "fee_invoice"])
def test_a_lookup_finds_nothing_when_nothing_was_written(books: Harness, clock: FakeClock,
                                                         what: str) -> None:
    """The write was refused before it reached the books (a 500 in front of the sandbox): the
    lookup says so, and the retry writes the effect, once."""
    connector = books.connector()
    invoice = books.open_invoice()
    key = f"org:{invoice}:refused:{what}"
    marker = effect_marker(key)
    before = _effects(books, invoice, what, marker)
    began = clock()
    if what == "email":  # an earlier email, before this write began, is not this write's
        connector.email_invoice(invoice, idempotency_key=f"{key}:earlier")
        before = plus_one(before, what)
        clock.advance(minutes=10)
        began = clock()
    faults_of(books).add("server_error", method="POST|PUT", path=WRITES[what], times=1)
    with pytest.raises(TransientError):
        _write(books, connector, invoice, what, key)
    assert _effects(books, invoice, what, marker) == before
    clock.advance(minutes=20)
    assert not _found(books, connector, invoice, what, key, began)
    _write(books, connector, invoice, what, key)
    assert _effects(books, invoice, what, marker) == plus_one(before, what)
    assert _found(books, connector, invoice, what, key, began)


def test_forget_key_really_removes_the_key(books: Harness) -> None:
    """Without its key, a repeated email is a second email: the fault is what it says."""
    connector = books.connector()
    invoice = books.open_invoice()
    emails = books.emails(invoice)
    faults_of(books).add("forget_key", method="POST", times=None)
    connector.email_invoice(invoice, idempotency_key="same:email")
    connector.email_invoice(invoice, idempotency_key="same:email")
    assert books.emails(invoice) == emails + 2


def test_rules_are_checked_when_added(clock: FakeClock) -> None:
    faults = FaultInjector(lambda environ, start: [], "xero")
    with pytest.raises(ValueError, match="unknown fault"):
        faults.add("explode")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="probability"):
        faults.add("server_error", probability=1.5)
    with pytest.raises(ValueError, match="unknown provider"):
        FaultInjector(lambda environ, start: [], "sage")  # type: ignore[arg-type]


def test_a_probability_fires_about_that_often(clock: FakeClock) -> None:
    from sandboxes.xero import XeroSandbox, create_app

    faults = FaultInjector(create_app(XeroSandbox()), "xero", seed=11)
    server = LiveServer(faults)
    try:
        faults.add("server_error", path="^/connections", times=None, probability=0.25)
        answers = [requests.get(f"{server.url}/connections", timeout=5).status_code
                   for _ in range(200)]
    finally:
        server.stop()
    assert 30 <= answers.count(500) <= 70
    assert answers.count(500) == faults.count("server_error")
    assert set(answers) == {500, 401}
