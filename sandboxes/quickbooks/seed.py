"""Deterministic demo books for the QuickBooks Online sandbox: a chart of accounts, services,
customers and forty invoices in every state a collections run meets, with their payments.

Names are invented and every e-mail address is under example.com (reserved for documentation),
so no real person's or business's data is ever in the sandbox. No item is called "Late fee":
the connector creates that one itself.
"""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from sandboxes.fictional import fictional_mobile
from sandboxes.habits import Habit, payer

if TYPE_CHECKING:
    from sandboxes.quickbooks.books import Company

CENT = Decimal("0.01")

# (Name, AccountType, AccountSubType, Classification); the first income account backs
# the default "Services" item.
ACCOUNTS = [
    ("Services", "Income", "ServiceFeeIncome", "Revenue"),
    ("Sales of Product Income", "Income", "SalesOfProductIncome", "Revenue"),
    ("Late Fee Income", "Income", "OtherPrimaryIncome", "Revenue"),
    ("Other Income", "Other Income", "OtherMiscellaneousIncome", "Revenue"),
    ("Discounts given", "Income", "DiscountsRefundsGiven", "Revenue"),
    ("Accounts Receivable (A/R)", "Accounts Receivable", "AccountsReceivable", "Asset"),
    ("Undeposited Funds", "Other Current Asset", "UndepositedFunds", "Asset"),
    ("Checking", "Bank", "Checking", "Asset"),
    ("Inventory Asset", "Other Current Asset", "Inventory", "Asset"),
    ("Accounts Payable (A/P)", "Accounts Payable", "AccountsPayable", "Liability"),
    ("Cost of Goods Sold", "Cost of Goods Sold", "SuppliesMaterialsCogs", "Expense"),
    ("Opening Balance Equity", "Equity", "OpeningBalanceEquity", "Equity"),
]
UK_NAMES = {"Accounts Receivable (A/R)": "Debtors", "Accounts Payable (A/P)": "Creditors",
            "Checking": "Current Account"}

SERVICES = {
    "US": [("Design", "Custom design work", "75.00"), ("Gardening", "Weekly gardening",
                                                         "40.00"),
           ("Installation", "Installation of landscape design", "50.00"),
           ("Lighting", "Garden lighting", "95.00"),
           ("Maintenance & Repair", "Maintenance and repair", "65.00"),
           ("Pest Control", "Pest control service", "35.00"),
           ("Trimming", "Tree and shrub trimming", "35.00")],
    "GB": [("Garden Design", "Garden design consultation", "80.00"),
           ("Planting", "Seasonal planting", "45.00"),
           ("Hard Landscaping", "Paving, walls and paths", "120.00"),
           ("Lawn Care", "Lawn care visit", "30.00"),
           ("Hedge Trimming", "Hedge trimming", "28.50"),
           ("Consultation", "On-site consultation", "60.00")],
}
CUSTOMERS = {
    "US": ["Bluebell Bakery", "Cedar Ridge Dental", "Dockside Cycles", "Evergreen Yoga Studio",
           "Foxglove Florist", "Granite Peak Brewing", "Harborview Books", "Ironwood Joinery",
           "Juniper Kitchen", "Kestrel Print Shop"],
    "GB": ["Abbey Lane Tea Rooms", "Brambleworth Pottery", "Copperfield Architects",
           "Dunmore Surf Shop", "Elderberry Gallery", "Fernhill Bistro", "Gorse & Co Joinery",
           "Heathcote Books", "Ivybridge Cycles", "Juniper Print Works"],
}
PEOPLE = [("Ada", "Lindqvist"), ("Ben", "Okafor"), ("Chloe", "Marsh"), ("Dawid", "Nowak"),
          ("Esme", "Hart"), ("Felix", "Brandt"), ("Greta", "Olsen"), ("Hiro", "Tanaka"),
          ("Isla", "Moreno"), ("Jonah", "Price")]
NO_EMAIL, INACTIVE = 8, 9  # indexes into CUSTOMERS: one has no e-mail, one is inactive

# (state, due date offset from today in days). Forty invoices a company.
PLAN: list[tuple[str, int]] = [
    ("unsent", 20), ("unsent", 25), ("unsent", 28), ("unsent", 14),
    ("open", 3), ("open", 7), ("open", 10), ("open", 14), ("open", 21), ("open", 28),
    ("open", 0), ("open", 0), ("open", 0),
    ("open", -1), ("open", -2), ("open", -3), ("open", -5), ("open", -7), ("open", -10),
    ("open", -14), ("open", -21), ("open", -30), ("open", -45), ("open", -60), ("open", -75),
    ("open", -90),
    ("partial", -5), ("partial", -20), ("partial", 10), ("partial", -40),
    ("paid", -2), ("paid", -10), ("paid", 5), ("paid", -25), ("paid", -35), ("paid", -50),
    ("void", -15), ("void", 12),
    ("noemail", -8), ("noemail", 6),
]
TERMS_DAYS = 30
HISTORY_DAYS = 60


def _slug(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def _moment(company: Company, day: date, rng: random.Random, today: date) -> datetime:
    """A working-hours moment on `day` (local time), never on or after today's midnight."""
    earliest = today - timedelta(days=HISTORY_DAYS)
    day = min(max(day, earliest), today - timedelta(days=1))
    local = datetime.combine(day, time(rng.randint(8, 17), rng.randint(0, 59),
                                       rng.randint(0, 59)), tzinfo=company.tz)
    return company.utc(local)


def seed_company(company: Company, today: date, seed: int, history: bool = False) -> None:
    """Accounts, items, ten customers (one without an e-mail address, one inactive), forty
    invoices (unsent, not yet due, due today, 1-90 days overdue, part paid, paid, voided),
    the payments for the paid ones and one unapplied credit memo; with `history` (the demo's
    books), each active customer's paid invoices of the year and a half before, paid by its
    habit. Every record last changed before `today` (company time), within the last sixty
    days."""
    rng = random.Random(seed)
    start = company.utc(datetime.combine(today - timedelta(days=400), time(9),
                                         tzinfo=company.tz))
    uk = company.country == "GB"

    accounts: dict[str, dict[str, Any]] = {}
    for name, kind, subtype, classification in ACCOUNTS:
        shown = UK_NAMES.get(name, name) if uk else name
        accounts[name] = company.insert("Account", {
            "Name": shown, "SubAccount": False, "FullyQualifiedName": shown, "Active": True,
            "Classification": classification, "AccountType": kind,
            "AccountSubType": subtype, "CurrentBalance": Decimal("0.00"),
            "CurrentBalanceWithSubAccounts": Decimal("0.00"),
            "CurrencyRef": company.currency_ref()}, start, start)

    def income(name: str) -> dict[str, str]:
        return {"value": accounts[name]["Id"], "name": accounts[name]["Name"]}

    items: list[dict[str, Any]] = []
    company.insert("Item", {
        "Name": "Services", "Description": "", "Active": True, "FullyQualifiedName": "Services",
        "Taxable": False, "UnitPrice": Decimal("0"), "Type": "Service",
        "IncomeAccountRef": income("Services"), "PurchaseCost": Decimal("0"),
        "TrackQtyOnHand": False}, start, start)
    for name, description, price in SERVICES["GB" if uk else "US"]:
        items.append(company.insert("Item", {
            "Name": name, "Description": description, "Active": True,
            "FullyQualifiedName": name, "Taxable": False, "UnitPrice": Decimal(price),
            "Type": "Service", "IncomeAccountRef": income("Services"),
            "PurchaseCost": Decimal("0"), "TrackQtyOnHand": False}, start, start))

    customers: list[dict[str, Any]] = []
    for index, name in enumerate(CUSTOMERS["GB" if uk else "US"]):
        given, family = PEOPLE[index]
        created = _moment(company, today - timedelta(days=rng.randint(45, 59)), rng, today)
        record: dict[str, Any] = {
            "GivenName": given, "FamilyName": family, "FullyQualifiedName": name,
            "CompanyName": name, "DisplayName": name, "PrintOnCheckName": name,
            "Active": True, "Taxable": False, "Job": False, "BillWithParent": False,
            "CurrencyRef": company.currency_ref(), "PreferredDeliveryMethod": "Email",
            "IsProject": False,
            "BillAddr": {"Id": str(100 + index), "Line1": f"{10 + index * 7} {PLACES[index]}",
                         "City": company.city, "PostalCode": company.postal_code,
                         **({} if uk else {"CountrySubDivisionCode": "CA"})},
        }
        if index != NO_EMAIL:
            record["PrimaryEmailAddr"] = {"Address": f"accounts.{_slug(name)}@example.com"}
        else:
            record["PreferredDeliveryMethod"] = "Print"
        # A mobile for texts: in the US the fictional 555-0100 to 555-0199 range; in the UK
        # (whose own drama range phonenumbers refuses) the ranges kept for fiction elsewhere.
        record["Mobile"] = {"FreeFormNumber": fictional_mobile(index) if uk
                            else f"(201) 555-01{index % 100:02d}"}
        customers.append(company.insert("Customer", record, created, created))

    payers = [c for i, c in enumerate(customers) if i not in (NO_EMAIL, INACTIVE)]
    for number, (state, offset) in enumerate(PLAN):
        if state == "noemail":
            customer = customers[NO_EMAIL]
        elif state == "paid" and offset == -50:
            customer = customers[INACTIVE]  # its last invoice, paid before it was retired
        else:
            customer = payers[number % len(payers)]
        due = today + timedelta(days=offset)
        issued = due - timedelta(days=TERMS_DAYS)
        lines, subtotal = _lines(rng, items, uk)
        created = _moment(company, issued, rng, today)
        invoice = _invoice(company, customer, str(1001 + number), issued, due, lines, subtotal)
        updated = created
        if state == "unsent":
            invoice["EmailStatus"] = "NeedToSend"
        elif state != "noemail":
            sent = created + timedelta(minutes=rng.randint(2, 50))
            invoice["EmailStatus"] = "EmailSent"
            invoice["DeliveryInfo"] = {"DeliveryType": "Email",
                                       "DeliveryTime": company.stamp(sent)}
            updated = sent
        if state == "void":
            for line in lines:
                line["Amount"] = Decimal("0.00")
                line["SalesItemLineDetail"]["Qty"] = Decimal(0)
            invoice["TotalAmt"] = Decimal("0.00")
            invoice["PrivateNote"] = "Voided"
            invoice["_voided"] = True
            updated += timedelta(hours=rng.randint(1, 30))
        if number % 7 == 3:
            invoice["CustomerMemo"] = {"value": "Thank you for your business."}
        stored = company.insert("Invoice", invoice, created, min(updated, _eve(company, today)))
        if state in ("paid", "partial"):
            amount = subtotal if state == "paid" else (subtotal * Decimal("0.4")).quantize(CENT)
            latest = min(today - timedelta(days=1), due + timedelta(days=rng.randint(-10, 12)))
            paid_on = max(issued, latest)
            when = min(max(_moment(company, paid_on, rng, today),
                           stored["_created"] + timedelta(hours=1)), _eve(company, today))
            _pay(company, stored, customer, amount, paid_on, when,
                 accounts["Undeposited Funds"])

    # One credit memo, not yet applied to anything.
    memo_customer = payers[1]
    item = items[0]
    created = _moment(company, today - timedelta(days=12), rng, today)
    credit = item["UnitPrice"]
    company.insert("CreditMemo", {
        "DocNumber": str(1001 + len(PLAN)),
        "TxnDate": company.local_date(created).isoformat(),
        "CustomerRef": {"value": memo_customer["Id"], "name": memo_customer["DisplayName"]},
        "CurrencyRef": company.currency_ref(),
        "Line": [{"Id": "1", "LineNum": 1, "Description": "Goodwill credit", "Amount": credit,
                  "DetailType": "SalesItemLineDetail",
                  "SalesItemLineDetail": {
                      "ItemRef": {"value": item["Id"], "name": item["Name"]},
                      "UnitPrice": credit, "Qty": Decimal(1),
                      "ItemAccountRef": dict(item["IncomeAccountRef"]),
                      "TaxCodeRef": {"value": "NON" if not uk else "20.0% S"}}}],
        "TxnTaxDetail": {"TotalTax": Decimal("0.00")}, "TotalAmt": credit,
        "ApplyTaxAfterDiscount": False, "PrintStatus": "NotSet", "EmailStatus": "NotSet",
        "CustomField": [], "BillAddr": dict(memo_customer["BillAddr"]),
        **({"BillEmail": dict(memo_customer["PrimaryEmailAddr"])}
           if memo_customer.get("PrimaryEmailAddr") else {}),
        "_applied": {}, "_next_line": 2}, created, created)

    retired = customers[INACTIVE]
    retired["Active"] = False
    retired["DisplayName"] = retired["FullyQualifiedName"] = \
        f"{retired['DisplayName']} (deleted)"
    retired["SyncToken"] = "1"
    retired["_updated"] = _moment(company, today - timedelta(days=9), rng, today)
    _seed_estimates(company, today, payers, items, seed)
    if history:
        _seed_history(company, today, [c for i, c in enumerate(customers) if i != INACTIVE],
                      items, accounts["Undeposited Funds"], seed)


HISTORY_FROM, HISTORY_TO = 420, 125  # days before today: the paid invoices before the above


def _seed_history(company: Company, today: date, customers: list[dict[str, Any]],
                  items: list[dict[str, Any]], deposit_to: dict[str, Any], seed: int) -> None:
    """Each active customer's paid invoices of the year and a half before the invoices above,
    paid by the customer's habit (sandboxes/habits.py: prompt, steady, erratic, worsening, or
    one who stops paying, whose invoices stop with their payments), as the Xero sandbox's demo
    has, so the risk score and the pay-date model have habits to learn and their backtest
    something to test. With ten customers a draw could leave habits out: they take the habits
    in turn. From their own random stream, after everything else (the records above keep
    their ids)."""
    rng = random.Random(f"history-{seed}")
    start, end = today - timedelta(days=HISTORY_FROM), today - timedelta(days=HISTORY_TO)
    uk, number = company.country == "GB", 0
    for index, customer in enumerate(customers):
        who = payer(rng, index, start, today, habit=list(Habit)[index % len(Habit)])
        issued = start + timedelta(days=rng.randint(0, 20))
        while issued < end:
            due = issued + timedelta(days=TERMS_DAYS)
            late = who.lateness(rng, due)
            if late is None:
                break
            lines, subtotal = _lines(rng, items, uk)
            number += 1
            created = _moment(company, issued, rng, today)
            invoice = _invoice(company, customer, f"H{number:04d}", issued, due, lines,
                               subtotal)
            invoice["EmailStatus"] = "EmailSent"
            stored = company.insert("Invoice", invoice, created, created)
            paid_on = min(max(issued, due + timedelta(days=late)), today - timedelta(days=1))
            when = min(max(_moment(company, paid_on, rng, today),
                           stored["_created"] + timedelta(hours=1)), _eve(company, today))
            _pay(company, stored, customer, subtotal, paid_on, when, deposit_to)
            issued += timedelta(days=rng.randint(15, 35))


def _lines(rng: random.Random, items: list[dict[str, Any]], uk: bool
           ) -> tuple[list[dict[str, Any]], Decimal]:
    """One to three service lines, and their total."""
    lines: list[dict[str, Any]] = []
    subtotal = Decimal(0)
    for line_number in range(1, rng.randint(1, 3) + 1):
        item = rng.choice(items)
        qty = Decimal(rng.randint(1, 8))
        amount = (qty * item["UnitPrice"]).quantize(CENT, ROUND_HALF_UP)
        subtotal += amount
        lines.append({
            "Id": str(line_number), "LineNum": line_number,
            "Description": item["Description"], "Amount": amount,
            "DetailType": "SalesItemLineDetail",
            "SalesItemLineDetail": {
                "ItemRef": {"value": item["Id"], "name": item["Name"]},
                "UnitPrice": item["UnitPrice"], "Qty": qty,
                "ItemAccountRef": dict(item["IncomeAccountRef"]),
                "TaxCodeRef": {"value": "NON" if not uk else "20.0% S"}}})
    return lines, subtotal


def _invoice(company: Company, customer: dict[str, Any], number: str, issued: date, due: date,
             lines: list[dict[str, Any]], subtotal: Decimal) -> dict[str, Any]:
    """A sales invoice to the customer, not sent yet, nothing applied to it."""
    invoice: dict[str, Any] = {
        "DocNumber": number, "TxnDate": issued.isoformat(), "DueDate": due.isoformat(),
        "CustomerRef": {"value": customer["Id"], "name": customer["DisplayName"]},
        "CurrencyRef": company.currency_ref(), "Line": lines,
        "TxnTaxDetail": {"TotalTax": Decimal("0.00")}, "TotalAmt": subtotal,
        "ApplyTaxAfterDiscount": False, "PrintStatus": "NotSet",
        "EmailStatus": "NotSet", "AllowIPNPayment": False, "AllowOnlinePayment": False,
        "AllowOnlineCreditCardPayment": False, "AllowOnlineACHPayment": False,
        "Deposit": Decimal("0.00"), "CustomField": [],
        "BillAddr": dict(customer["BillAddr"]),
        "_applied": {}, "_next_line": len(lines) + 1,
    }
    if customer.get("PrimaryEmailAddr"):
        invoice["BillEmail"] = dict(customer["PrimaryEmailAddr"])
    return invoice


# Estimates the demo shows: (TxnStatus, days since issued, quantity of the first item).
ESTIMATES = (("Accepted", 6, 40), ("Pending", 3, 12), ("Rejected", 20, 8), ("Closed", 35, 5))


def _seed_estimates(company: Company, today: date, payers: list[dict[str, Any]],
                    items: list[dict[str, Any]], seed: int) -> None:
    """A few estimates in each TxnStatus, from their own random stream (after everything else,
    so the invoices, payments and their ids are what they were without them)."""
    rng = random.Random(f"estimates-{seed}")
    uk = company.country == "GB"
    for number, (status, age, qty) in enumerate(ESTIMATES):
        customer = payers[(number * 3 + 2) % len(payers)]
        item = items[number % len(items)]
        issued = today - timedelta(days=age)
        amount = (Decimal(qty) * item["UnitPrice"]).quantize(CENT, ROUND_HALF_UP)
        created = _moment(company, issued, rng, today)
        estimate: dict[str, Any] = {
            "DocNumber": str(5001 + number), "TxnDate": issued.isoformat(),
            "ExpirationDate": (issued + timedelta(days=30)).isoformat(), "TxnStatus": status,
            "CustomerRef": {"value": customer["Id"], "name": customer["DisplayName"]},
            "CurrencyRef": company.currency_ref(),
            "Line": [{"Id": "1", "LineNum": 1, "Description": item["Description"],
                      "Amount": amount, "DetailType": "SalesItemLineDetail",
                      "SalesItemLineDetail": {
                          "ItemRef": {"value": item["Id"], "name": item["Name"]},
                          "UnitPrice": item["UnitPrice"], "Qty": Decimal(qty),
                          "ItemAccountRef": dict(item["IncomeAccountRef"]),
                          "TaxCodeRef": {"value": "NON" if not uk else "20.0% S"}}}],
            "TxnTaxDetail": {"TotalTax": Decimal("0.00")}, "TotalAmt": amount,
            "ApplyTaxAfterDiscount": False, "PrintStatus": "NotSet", "EmailStatus": "EmailSent",
            "CustomField": [], "BillAddr": dict(customer["BillAddr"]),
            "_applied": {}, "_next_line": 2, "_linked": []}
        if customer.get("PrimaryEmailAddr"):
            estimate["BillEmail"] = dict(customer["PrimaryEmailAddr"])
        updated = created
        if status == "Accepted":
            accepted = issued + timedelta(days=2)
            estimate["AcceptedDate"] = accepted.isoformat()
            estimate["AcceptedBy"] = customer["DisplayName"]
            updated = max(created, _moment(company, accepted, rng, today))
        company.insert("Estimate", estimate, created, min(updated, _eve(company, today)))


PLACES = ["Harbor Way", "Elm Street", "Market Square", "Meadow Lane", "Station Road",
          "Bridge Street", "Hilltop Drive", "Riverside Walk", "Old Town Row", "Lakeside Avenue"]


def _eve(company: Company, today: date) -> datetime:
    """The last second of yesterday, company time: seeded changes all happened before today."""
    return company.utc(datetime.combine(today, time(0), tzinfo=company.tz)) - timedelta(seconds=1)


def _pay(company: Company, invoice: dict[str, Any], customer: dict[str, Any], amount: Decimal,
         paid_on: date, when: datetime, deposit_to: dict[str, Any]) -> None:
    payment = company.insert("Payment", {
        "TxnDate": paid_on.isoformat(),
        "CustomerRef": {"value": customer["Id"], "name": customer["DisplayName"]},
        "CurrencyRef": company.currency_ref(),
        "DepositToAccountRef": {"value": deposit_to["Id"], "name": deposit_to["Name"]},
        "TotalAmt": amount, "UnappliedAmt": Decimal("0.00"), "ProcessPayment": False,
        "Line": [{"Amount": amount, "LinkedTxn": [{"TxnId": invoice["Id"],
                                                    "TxnType": "Invoice"}]}],
        "LinkedTxn": [], "_applied": {("Invoice", invoice["Id"]): amount}}, when, when)
    invoice["_applied"][payment["Id"]] = amount
    invoice["SyncToken"] = str(int(invoice["SyncToken"]) + 1)
    invoice["_updated"] = max(invoice["_updated"], when)
