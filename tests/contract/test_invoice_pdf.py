"""Each connector fetches an invoice as the provider prints it (the customer's portal offers
it), from each sandbox over HTTP: a valid PDF naming the invoice; an unknown one is NotFound."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from connectors.base import NotFound
from tests.conftest import FakeClock
from tests.contract.harness import Harness, QuickBooksHarness, XeroHarness

HARNESSES = {"xero": XeroHarness, "quickbooks": QuickBooksHarness}


@pytest.fixture(params=sorted(HARNESSES))
def books(request: pytest.FixtureRequest, clock: FakeClock) -> Iterator[Harness]:
    harness = HARNESSES[request.param](clock)
    yield harness
    harness.server.stop()


def test_an_invoice_comes_as_a_pdf(books: Harness) -> None:
    connector = books.connector()
    invoice_id = books.open_invoice()
    number = connector.invoice(invoice_id).number
    pdf = connector.invoice_pdf(invoice_id)
    assert pdf.startswith(b"%PDF-1.") and pdf.rstrip().endswith(b"%%EOF")
    # The cross-reference table points at each object exactly (a viewer can open it).
    xref = int(re.search(rb"startxref\n(\d+)", pdf).group(1))  # type: ignore[union-attr]
    assert pdf[xref:xref + 4] == b"xref"
    offsets = [int(o) for o in re.findall(rb"(\d{10}) 00000 n", pdf)]
    assert [pdf[o:o + 8] for o in offsets] == [f"{n} 0 obj\n".encode()
                                               for n in range(1, len(offsets) + 1)]
    assert number.encode() in pdf
    with pytest.raises(NotFound):
        connector.invoice_pdf("00000000-0000-0000-0000-000000000000"
                              if isinstance(books, XeroHarness) else "999999")
