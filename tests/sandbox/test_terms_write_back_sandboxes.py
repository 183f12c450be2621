"""The sandboxes take a due-date change as the real services do: Xero's answers to the update
(accepted, and refused for a paid invoice) validate against its published OpenAPI description;
QuickBooks refuses a stale SyncToken (5010) and a voided invoice (6000) and bumps SyncToken and
LastUpdatedTime on the change."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import requests
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse

from connectors.base import EditRefused
from tests.conftest import FakeClock
from tests.contract.harness import QuickBooksHarness
from tests.integration.test_connector_contract import (  # noqa: F401  (fixtures)
    accounting_spec,
    connector_for,
    openapi_for,
    served,
)


def test_xero_answers_a_due_date_change_as_its_openapi_says(served, accounting_spec,  # type: ignore[no-untyped-def]  # noqa: F811
                                                            clock: FakeClock) -> None:
    box, server, recorder = served
    tenant = box.tenants()[0]["tenantId"]
    connector = connector_for(server, tenant, clock)
    today = clock().date()
    contact = next(c for c in box.contacts(tenant) if c.get("IsCustomer"))
    made = [box.add_invoice(tenant, {
        "Type": "ACCREC", "Status": "AUTHORISED", "Contact": {"ContactID": contact["ContactID"]},
        "Date": today.isoformat(), "DueDate": (today + timedelta(days=30)).isoformat(),
        "LineItems": [{"Description": "Roasting course", "Quantity": 1, "UnitAmount": amount,
                       "AccountCode": "200", "TaxType": "NONE"}]})["InvoiceID"]
        for amount in (Decimal("150.00"), Decimal("40.00"))]
    box.pay_invoice(tenant, made[1], Decimal("40.00"))
    recorder.exchanges.clear()

    connector.set_invoice_due_date(made[0], today + timedelta(days=7), "spec:terms:open")
    with pytest.raises(EditRefused, match="payment or credit note allocated"):
        connector.set_invoice_due_date(made[1], today + timedelta(days=7), "spec:terms:paid")

    openapi = openapi_for(accounting_spec, f"{server.url}/api.xro/2.0")
    seen = []
    for request, response in recorder.exchanges:
        if not request.path.startswith("/api.xro/2.0/Invoices/"):
            continue
        assert request.method == "POST" and request.headers["Idempotency-Key"]
        openapi.validate_response(WerkzeugOpenAPIRequest(request),
                                  WerkzeugOpenAPIResponse(response))
        seen.append(response.status_code)
    assert seen == [200, 400]
    body = recorder.exchanges[-1][1].get_json()
    assert body["Type"] == "ValidationException" and body["ErrorNumber"] == 10
    assert [i["DueDateString"][:10] for i in box.invoices(tenant)
            if i["InvoiceID"] in made] == [(today + timedelta(days=7)).isoformat(),
                                           (today + timedelta(days=30)).isoformat()]


def _post(books: QuickBooksHarness, body: dict, requestid: str) -> requests.Response:  # type: ignore[type-arg]
    tokens = books.tokens().load()
    return requests.post(f"{books.server.url}/v3/company/{books.realm}/invoice",
                         params={"minorversion": "75", "requestid": requestid}, json=body,
                         headers={"Authorization": f"Bearer {tokens.access_token}",
                                  "Accept": "application/json"}, timeout=10)


def test_quickbooks_takes_a_sparse_due_date_and_refuses_stale_or_voided(
        clock: FakeClock) -> None:
    books = QuickBooksHarness(clock)
    try:
        target = books.invoice_due(Decimal("70.00"))
        before = books._raw(target)
        clock.advance(seconds=3)
        new_due = (clock().date() + timedelta(days=2)).isoformat()
        stale = _post(books, {"Id": target, "SyncToken": "7", "sparse": True,
                              "DueDate": new_due}, "terms-stale")
        assert stale.status_code == 400
        [error] = stale.json()["Fault"]["Error"]
        assert error["code"] == "5010"
        assert books._raw(target)["DueDate"] == before["DueDate"]

        moved = _post(books, {"Id": target, "SyncToken": before["SyncToken"], "sparse": True,
                              "DueDate": new_due}, "terms-ok")
        assert moved.status_code == 200, moved.text
        after = moved.json()["Invoice"]
        assert after["DueDate"] == new_due
        assert int(after["SyncToken"]) == int(before["SyncToken"]) + 1
        assert after["MetaData"]["LastUpdatedTime"] > before["MetaData"]["LastUpdatedTime"]
        assert (after["TotalAmt"], after["Balance"], after["TxnDate"]) == (
            before["TotalAmt"], before["Balance"], before["TxnDate"])
        # The same requestid again: the first answer, nothing changed a second time.
        replay = _post(books, {"Id": target, "SyncToken": before["SyncToken"],
                               "sparse": True, "DueDate": new_due}, "terms-ok")
        assert replay.json()["Invoice"]["SyncToken"] == after["SyncToken"]
        assert books._raw(target)["SyncToken"] == after["SyncToken"]

        voided = next(i for i in books.box.invoices(books.realm)
                      if i["TotalAmt"] == 0 and i.get("PrivateNote") == "Voided")
        refused = _post(books, {"Id": voided["Id"], "SyncToken": voided["SyncToken"],
                                "sparse": True, "DueDate": new_due}, "terms-voided")
        assert refused.status_code == 400
        assert refused.json()["Fault"]["Error"][0]["code"] == "6000"
    finally:
        books.server.stop()
