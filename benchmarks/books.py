"""Large, deterministic books for the sandboxes: what a busy organisation has after years.

The demo seeds (sandboxes/*_seed.py) hold a few hundred records; the benchmarks need
tens of thousands, in the same stored shapes the sandboxes' own seeds and API writes produce,
so the answers our connectors read are the answers a real book would give. Every record last
changed at its own moment (one second apart, oldest first), all before `today`.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sandboxes.quickbooks import QuickBooksSandbox
    from sandboxes.xero import XeroSandbox

CENT = Decimal("0.01")
FOUR_DP = Decimal("0.0001")


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _amount(rng: random.Random) -> Decimal:
    return (Decimal(rng.randint(5_000, 2_000_000)) * CENT).quantize(CENT)


def _moments(today: date, count: int) -> list[datetime]:
    """`count` distinct moments, one second apart, ending the evening before `today`."""
    end = datetime.combine(today - timedelta(days=1), time(20), tzinfo=UTC)
    return [end - timedelta(seconds=count - i) for i in range(count)]


def seed_xero_books(box: XeroSandbox, today: date, invoices: int, contacts: int,
                    payments: int, seed: int = 9) -> str:
    """A GB tenant with `contacts` customers, `invoices` approved sales invoices (one line,
    due from 120 days ago to 60 ahead) and `payments` payments, each settling part of a
    different invoice. Returns the tenant id."""
    if payments > invoices:
        raise ValueError("each payment settles a different invoice: payments <= invoices")
    rng = random.Random(seed)
    tenant_id = box.add_tenant("Ledgerline Wholesale Ltd", "GB", "GBP", "GMTSTANDARDTIME",
                               tenant_id=_uuid(rng), short_code="!LEDGR",
                               created=datetime(today.year - 5, 1, 4, 9, tzinfo=UTC))
    tenant = box.tenant(tenant_id)
    stamps = iter(_moments(today, contacts + invoices + payments))
    people: list[dict[str, Any]] = []
    for n in range(contacts):
        contact: dict[str, Any] = {
            "ContactID": _uuid(rng), "ContactNumber": f"C{n + 1:05d}",
            "ContactStatus": "ACTIVE", "Name": f"Customer {n + 1:05d} Ltd",
            "FirstName": "Account", "LastName": f"Holder {n + 1}", "IsCustomer": True,
            "IsSupplier": False, "DefaultCurrency": "GBP", "Addresses": [], "Phones": [],
            "HasAttachments": False, "_updated": next(stamps)}
        if n % 10 != 9:
            contact["EmailAddress"] = f"accounts{n + 1}@example.com"
        tenant.contacts[contact["ContactID"]] = contact
        people.append(contact)
    made: list[dict[str, Any]] = []
    for n in range(invoices):
        contact = people[n % len(people)]
        due = today + timedelta(days=rng.randint(-120, 60))
        issued = min(due - timedelta(days=30), today - timedelta(days=1))
        net = _amount(rng)
        tax = (net * Decimal("0.20")).quantize(CENT)
        invoice: dict[str, Any] = {
            "Type": "ACCREC", "InvoiceID": _uuid(rng), "InvoiceNumber": f"INV-{n + 1:06d}",
            "Reference": f"PO {n + 1}",
            "Contact": {"ContactID": contact["ContactID"], "Name": contact["Name"]},
            "LineItems": [{"LineItemID": _uuid(rng), "Description": "Wholesale order",
                           "Quantity": Decimal(1).quantize(FOUR_DP),
                           "UnitAmount": net.quantize(FOUR_DP), "AccountCode": "200",
                           "TaxType": "OUTPUT2", "TaxAmount": tax, "LineAmount": net,
                           "Tracking": []}],
            "LineAmountTypes": "Exclusive", "CurrencyCode": "GBP",
            "CurrencyRate": Decimal("1.000000"), "Status": "AUTHORISED",
            "SubTotal": net, "TotalTax": tax, "Total": net + tax, "AmountDue": net + tax,
            "AmountPaid": Decimal(0), "AmountCredited": Decimal(0), "SentToContact": True,
            "HasAttachments": False, "IsDiscounted": False, "HasErrors": False,
            "_date": issued, "_due": due, "_payments": [], "_by_app": False,
            "_updated": next(stamps)}
        tenant.invoices[invoice["InvoiceID"]] = invoice
        made.append(invoice)
    for n in range(payments):
        invoice = made[n * invoices // max(payments, 1)]
        amount = (invoice["Total"] * Decimal("0.4")).quantize(CENT)
        when = next(stamps)
        payment: dict[str, Any] = {
            "PaymentID": _uuid(rng), "_date": when.date(), "Amount": amount,
            "CurrencyRate": Decimal("1.000000"), "PaymentType": "ACCRECPAYMENT",
            "Status": "AUTHORISED", "Reference": f"Payment {invoice['InvoiceNumber']}",
            "IsReconciled": True, "_invoice_id": invoice["InvoiceID"], "_updated": when}
        tenant.payments[payment["PaymentID"]] = payment
        invoice["AmountPaid"] += amount
        invoice["AmountDue"] -= amount
        invoice["_payments"].append(payment["PaymentID"])
        invoice["_updated"] = when
    return tenant_id


def seed_quickbooks_books(box: QuickBooksSandbox, today: date, invoices: int,
                          contacts: int, payments: int, seed: int = 9) -> str:
    """A US company with `contacts` customers, `invoices` invoices (one Services line) and
    `payments` payments, each settling part of a different invoice. Returns the realm id."""
    if payments > invoices:
        raise ValueError("each payment settles a different invoice: payments <= invoices")
    rng = random.Random(seed)
    realm = box.add_company("Ledgerline Wholesale Inc", "US", "USD", "America/New_York",
                            created=datetime(today.year - 5, 1, 4, 14, tzinfo=UTC))
    company = box.company(realm)
    start = datetime(today.year - 5, 1, 4, 15, tzinfo=UTC)
    income = company.insert("Account", {
        "Name": "Services", "SubAccount": False, "FullyQualifiedName": "Services",
        "Active": True, "Classification": "Revenue", "AccountType": "Income",
        "AccountSubType": "ServiceFeeIncome", "CurrentBalance": Decimal("0.00"),
        "CurrentBalanceWithSubAccounts": Decimal("0.00"),
        "CurrencyRef": company.currency_ref()}, start, start)
    funds = company.insert("Account", {
        "Name": "Undeposited Funds", "SubAccount": False,
        "FullyQualifiedName": "Undeposited Funds", "Active": True, "Classification": "Asset",
        "AccountType": "Other Current Asset", "AccountSubType": "UndepositedFunds",
        "CurrentBalance": Decimal("0.00"), "CurrentBalanceWithSubAccounts": Decimal("0.00"),
        "CurrencyRef": company.currency_ref()}, start, start)
    item = company.insert("Item", {
        "Name": "Services", "Description": "Wholesale order", "Active": True,
        "FullyQualifiedName": "Services", "Taxable": False, "UnitPrice": Decimal("0"),
        "Type": "Service", "IncomeAccountRef": {"value": income["Id"], "name": "Services"},
        "PurchaseCost": Decimal("0"), "TrackQtyOnHand": False}, start, start)
    stamps = iter(_moments(today, contacts + invoices + payments))
    customers: list[dict[str, Any]] = []
    for n in range(contacts):
        name = f"Customer {n + 1:05d} Inc"
        record: dict[str, Any] = {
            "GivenName": "Account", "FamilyName": f"Holder {n + 1}",
            "FullyQualifiedName": name, "CompanyName": name, "DisplayName": name,
            "PrintOnCheckName": name, "Active": True, "Taxable": False, "Job": False,
            "BillWithParent": False, "CurrencyRef": company.currency_ref(),
            "PreferredDeliveryMethod": "Email", "IsProject": False}
        if n % 10 != 9:
            record["PrimaryEmailAddr"] = {"Address": f"accounts{n + 1}@example.com"}
        moment = next(stamps)
        customers.append(company.insert("Customer", record, moment, moment))
    made: list[dict[str, Any]] = []
    for n in range(invoices):
        customer = customers[n % len(customers)]
        due = today + timedelta(days=rng.randint(-120, 60))
        amount = _amount(rng)
        invoice: dict[str, Any] = {
            "DocNumber": str(100001 + n), "TxnDate": (due - timedelta(days=30)).isoformat(),
            "DueDate": due.isoformat(),
            "CustomerRef": {"value": customer["Id"], "name": customer["DisplayName"]},
            "CurrencyRef": company.currency_ref(),
            "Line": [{"Id": "1", "LineNum": 1, "Description": "Wholesale order",
                      "Amount": amount, "DetailType": "SalesItemLineDetail",
                      "SalesItemLineDetail": {
                          "ItemRef": {"value": item["Id"], "name": item["Name"]},
                          "UnitPrice": amount, "Qty": Decimal(1),
                          "ItemAccountRef": {"value": income["Id"], "name": "Services"},
                          "TaxCodeRef": {"value": "NON"}}}],
            "TxnTaxDetail": {"TotalTax": Decimal("0.00")}, "TotalAmt": amount,
            "ApplyTaxAfterDiscount": False, "PrintStatus": "NotSet",
            "EmailStatus": "EmailSent", "AllowIPNPayment": False,
            "AllowOnlinePayment": False, "AllowOnlineCreditCardPayment": False,
            "AllowOnlineACHPayment": False, "Deposit": Decimal("0.00"), "CustomField": [],
            "_applied": {}, "_next_line": 2}
        if customer.get("PrimaryEmailAddr"):
            invoice["BillEmail"] = dict(customer["PrimaryEmailAddr"])
        moment = next(stamps)
        made.append(company.insert("Invoice", invoice, moment, moment))
    for n in range(payments):
        invoice = made[n * invoices // max(payments, 1)]
        amount = (invoice["TotalAmt"] * Decimal("0.4")).quantize(CENT)
        when = next(stamps)
        customer_ref = dict(invoice["CustomerRef"])
        payment = company.insert("Payment", {
            "TxnDate": when.date().isoformat(), "CustomerRef": customer_ref,
            "CurrencyRef": company.currency_ref(),
            "DepositToAccountRef": {"value": funds["Id"], "name": funds["Name"]},
            "TotalAmt": amount, "UnappliedAmt": Decimal("0.00"), "ProcessPayment": False,
            "Line": [{"Amount": amount, "LinkedTxn": [{"TxnId": invoice["Id"],
                                                        "TxnType": "Invoice"}]}],
            "LinkedTxn": [], "_applied": {("Invoice", invoice["Id"]): amount}}, when, when)
        invoice["_applied"][payment["Id"]] = amount
        invoice["SyncToken"] = str(int(invoice["SyncToken"]) + 1)
        invoice["_updated"] = payment["_updated"]
    return realm
