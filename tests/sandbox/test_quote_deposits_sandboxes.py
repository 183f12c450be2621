"""The sandboxes' quotes (paging and If-Modified-Since are in
tests/contract/test_quote_deposits_connectors.py): Xero's quote moves and GET /Quotes' refusal;
QuickBooks' Estimate (query, TxnStatus, an invoice made from it, webhooks)."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
import requests

from connectors.quickbooks.webhooks import intuit_events
from sandboxes.quickbooks import QboFault
from tests.sandbox.test_sandbox_webhooks import receiver  # noqa: F401  (fixture)


def test_xero_quote_moves_follow_its_screens(sandbox) -> None:  # type: ignore[no-untyped-def]
    state, _ = sandbox
    tenant = state.tenants()[0]["tenantId"]
    contact = next(c for c in state.contacts(tenant) if c["IsCustomer"])
    made = state.add_quote(tenant, contact["ContactID"], "1000.00", status="DRAFT",
                           issued=date(2026, 11, 20))
    assert (made["QuoteNumber"], made["Status"], made["SubTotal"], made["TotalTax"],
            made["Total"], made["DateString"], made["ExpiryDateString"]) == (
        "QU-0006", "DRAFT", Decimal("1000.00"), Decimal("200.00"), Decimal("1200.00"),
        "2026-11-20T00:00:00", "2026-12-20T00:00:00")
    with pytest.raises(ValueError, match="a DRAFT quote cannot become ACCEPTED"):
        state.set_quote_status(tenant, made["QuoteID"], "ACCEPTED")
    state.set_quote_status(tenant, made["QuoteID"], "SENT")
    assert state.set_quote_status(tenant, made["QuoteID"], "ACCEPTED")["Status"] == "ACCEPTED"
    with pytest.raises(ValueError, match="a quote's amount must be positive"):
        state.add_quote(tenant, contact["ContactID"], "0")


def test_xero_get_quotes_is_refused_without_a_token(sandbox) -> None:  # type: ignore[no-untyped-def]
    state, server = sandbox
    tenant = state.tenants()[0]["tenantId"]
    refused = requests.get(f"{server.url}/api.xro/2.0/Quotes", headers={
        "xero-tenant-id": tenant, "Accept": "application/json"}, timeout=10)
    assert refused.status_code == 401
    assert len(state.tenant(tenant).quotes) == 5


def test_quickbooks_estimate_statuses_links_and_webhooks(qbo_sandbox, receiver) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    state, _ = qbo_sandbox
    state.config.webhook_url = receiver.url
    realm = state.companies()[0]["realmId"]
    company = state.company(realm)
    customer = next(c for c in state.customers(realm) if c.get("PrimaryEmailAddr"))
    state.webhooks.arm()
    estimate = state.create(realm, "Estimate", {
        "CustomerRef": {"value": customer["Id"]}, "ExpirationDate": "2026-12-24",
        "Line": [{"Amount": "1000.00", "DetailType": "SalesItemLineDetail",
                  "SalesItemLineDetail": {}}]})
    assert (estimate["TxnStatus"], estimate["TotalAmt"], estimate["ExpirationDate"],
            estimate["LinkedTxn"], estimate["Line"][-1]["DetailType"]) == (
        "Pending", Decimal("1000.00"), "2026-12-24", [], "SubTotalLineDetail")
    accepted = state.set_estimate_status(realm, estimate["Id"], "Accepted")
    assert (accepted["TxnStatus"], accepted["AcceptedDate"], accepted["SyncToken"]) == (
        "Accepted", company.today().isoformat(), "1")
    with pytest.raises(QboFault, match="not a valid representation"):
        state.set_estimate_status(realm, estimate["Id"], "Signed")
    # A deposit invoice made from it links both ways and leaves it open; the rest closes it.
    deposit = state.create(realm, "Invoice", {
        "CustomerRef": {"value": customer["Id"]},
        "LinkedTxn": [{"TxnId": estimate["Id"], "TxnType": "Estimate"}],
        "Line": [{"Amount": "300.00", "DetailType": "SalesItemLineDetail",
                  "SalesItemLineDetail": {}}]})
    assert {"TxnId": estimate["Id"], "TxnType": "Estimate"} in deposit["LinkedTxn"]
    now = state.read(company, "Estimate", estimate["Id"])
    assert (now["TxnStatus"], now["LinkedTxn"]) == (
        "Accepted", [{"TxnId": deposit["Id"], "TxnType": "Invoice"}])
    rest = state.create(realm, "Invoice", {
        "CustomerRef": {"value": customer["Id"]},
        "LinkedTxn": [{"TxnId": estimate["Id"], "TxnType": "Estimate"}],
        "Line": [{"Amount": "700.00", "DetailType": "SalesItemLineDetail",
                  "SalesItemLineDetail": {}}]})
    assert state.read(company, "Estimate", estimate["Id"])["TxnStatus"] == "Closed"
    found = state.query(company, "select * from Estimate where TxnStatus = 'Closed'")
    assert estimate["Id"] in [e["Id"] for e in found["Estimate"]]
    # Estimates are announced like invoices (QuickBooks sends Estimate events; Xero sends none
    # for quotes).
    assert state.webhooks.flush() == 3
    payload = json.loads(receiver.posts[-1][0])
    [notification] = payload["eventNotifications"]
    assert sorted((e["name"], e["id"]) for e in notification["dataChangeEvent"]["entities"]) \
        == sorted([("Estimate", estimate["Id"]), ("Invoice", deposit["Id"]),
                   ("Invoice", rest["Id"])])
    assert sorted(e.entity for e in intuit_events(payload)) == ["invoice", "invoice", "quote"]
