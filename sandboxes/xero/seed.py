"""Deterministic demo books for the Xero sandbox: customers, invoices in every state, payments.

Names are invented; every e-mail address is under example.com/.org/.no (reserved for
documentation), so no real person's data is ever in the sandbox.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from sandboxes.habits import Payer, payer
from sandboxes.xero.quotes import new_quote

if TYPE_CHECKING:
    from sandboxes.xero.books import Tenant

CENT = Decimal("0.01")
FOUR_DP = Decimal("0.0001")
FIRST = ["Ada", "Bjørn", "Chloe", "Dawid", "Eitan", "Freya", "Gustav", "Hanna", "Ingrid", "Jonas",
         "Kasia", "Liam", "Maja", "Noam", "Olivia", "Piotr", "Quinn", "Rivka", "Sofie", "Tomasz"]
TRADES = ["Bakery", "Bistro", "Studio", "Joinery", "Florist", "Print Shop", "Gallery", "Cycles",
          "Books", "Kitchen", "Surf Shop", "Pottery", "Dental", "Architects", "Brewing"]
PLACES = ["Harbour", "Northgate", "Riverside", "Elm Street", "Old Town", "Meadow", "Fjord",
          "Hilltop", "Market", "Station", "Bridge", "Lakeside"]
PRODUCTS = [("Espresso blend 1 kg", "18.50"), ("Filter blend 1 kg", "16.00"),
            ("Barista training (half day)", "240.00"), ("Grinder service", "85.00"),
            ("Brand design workshop", "950.00"), ("Logo revisions", "120.00"),
            ("Monthly retainer", "1500.00"), ("Delivery", "12.00")]
# Offsets from today that the demo must show (due today, just overdue, due soon).
PINNED_DUE = [0, 0, 0, -3, -3, -7, -7, -1, 3, 7, 7, -14, -21, -30, 14, 1, 2, -2]
CUSTOMERS, SUPPLIERS, SALES, BILLS = 40, 4, 220, 10


def _stamp(rng: random.Random, before: date, days_back: int) -> datetime:
    day = before - timedelta(days=rng.randint(1, max(1, days_back)))
    return datetime.combine(day, time(rng.randint(7, 19), rng.randint(0, 59), rng.randint(0, 59),
                                      rng.randint(0, 999) * 1000), tzinfo=UTC)


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def seed_tenant(tenant: Tenant, today: date, seed: int) -> None:
    """40 customers (one in ten without an e-mail address), 4 suppliers, 220 sales invoices
    due from 120 days ago to 60 days ahead in the base currency, EUR and USD, and 10 bills.
    Every seeded record last changed before `today`."""
    rng = random.Random(seed)
    habits = random.Random(f"history-{seed}")  # each customer's habit: its own stream
    paying = random.Random(f"paying-{seed}")
    domain = "example.no" if tenant.country == "NO" else rng.choice(["example.com",
                                                                     "example.org"])
    customers: list[dict[str, Any]] = []
    suppliers: list[dict[str, Any]] = []
    for n in range(CUSTOMERS + SUPPLIERS):
        first = FIRST[n % len(FIRST)]
        last = f"{PLACES[(n * 7) % len(PLACES)]} {TRADES[n % len(TRADES)]}"
        supplier = n >= CUSTOMERS
        contact: dict[str, Any] = {
            "ContactID": _uuid(rng),
            "ContactNumber": f"C{n + 1:03d}", "ContactStatus": "ACTIVE",
            "Name": f"{last}{' Supplies' if supplier else ''}",
            "FirstName": first, "LastName": last.split()[0],
            "IsCustomer": not supplier, "IsSupplier": supplier,
            "DefaultCurrency": tenant.base_currency, "Addresses": [], "Phones": [],
            "HasAttachments": False,
            "_updated": _stamp(rng, today, 300),
        }
        if n % 10 != 9:  # one customer in ten has no e-mail address
            slug = "".join(ch for ch in last.lower() if ch.isalnum())
            contact["EmailAddress"] = f"accounts@{slug}{n}.{domain}"
        tenant.contacts[contact["ContactID"]] = contact
        (suppliers if supplier else customers).append(contact)
    payers = {c["ContactID"]: payer(habits, n, today - timedelta(days=HISTORY_FROM), today)
              for n, c in enumerate(customers)}

    for n in range(SALES + BILLS):
        bill = n >= SALES
        contact = rng.choice(suppliers if bill else customers)
        offset = PINNED_DUE[n] if n < len(PINNED_DUE) else rng.randint(-120, 60)
        due = today + timedelta(days=offset)
        # Issued in the past, on the usual terms where the due date allows it.
        issued = min(due - timedelta(days=rng.choice([14, 30, 30, 30])),
                     today - timedelta(days=1))
        pick = rng.random()
        currency = "EUR" if pick < 0.12 else "USD" if pick < 0.2 else tenant.base_currency
        lines, subtotal, tax = _lines(rng, tenant, bill)
        roll = rng.random()
        status = ("DRAFT" if roll < 0.04 else "SUBMITTED" if roll < 0.07 else
                  "VOIDED" if roll < 0.10 else "AUTHORISED")
        if n < len(PINNED_DUE):
            status = "AUTHORISED"
        invoice = _invoice(rng, tenant, today, contact,
                           f"{'BILL' if bill else 'INV'}-{n + 1:04d}", issued, due, currency,
                           lines, subtotal, tax, status, bill)
        total = invoice["Total"]
        if status != "AUTHORISED" or bill or n < len(PINNED_DUE):
            continue
        pay_roll = rng.random()
        overdue_days = (today - due).days
        if pay_roll < 0.30 + (0.3 if overdue_days > 60 else 0):
            _pay(rng, tenant, invoice, total, today,
                 payers[contact["ContactID"]].lateness(paying, due))
        elif pay_roll < 0.42:
            _pay(rng, tenant, invoice, (total * Decimal("0.4")).quantize(CENT), today)
    _seed_quotes(tenant, today, customers, seed)
    _seed_history(tenant, today, [(c, payers[c["ContactID"]]) for c in customers], habits)


HISTORY_FROM, HISTORY_TO = 420, 125  # days before today: the paid invoices before the above


def _seed_history(tenant: Tenant, today: date, customers: list[tuple[dict[str, Any], Payer]],
                  rng: random.Random) -> None:
    """Each customer's paid invoices of the year and a half before the invoices above, paid by
    the customer's habit (sandboxes/habits.py: prompt, steady, erratic, worsening, or one who
    stops paying, whose invoices stop with their payments), so the risk score and the pay-date
    model have habits to learn. From their own random stream, after everything else."""
    start, end = today - timedelta(days=HISTORY_FROM), today - timedelta(days=HISTORY_TO)
    number = 0
    for contact, who in customers:
        issued = start + timedelta(days=rng.randint(0, 30))
        while issued < end:
            due = issued + timedelta(days=30)
            late = who.lateness(rng, due)
            if late is None:
                break
            lines, subtotal, tax = _lines(rng, tenant, False)
            number += 1
            invoice = _invoice(rng, tenant, today, contact, f"INV-H{number:04d}", issued, due,
                               tenant.base_currency, lines, subtotal, tax, "AUTHORISED", False)
            paid_on = min(max(issued, due + timedelta(days=late)), today - timedelta(days=1))
            _pay_on(rng, tenant, invoice, invoice["Total"], paid_on)
            issued += timedelta(days=rng.randint(30, 60))


def _lines(rng: random.Random, tenant: Tenant, bill: bool
           ) -> tuple[list[dict[str, Any]], Decimal, Decimal]:
    """One to three product lines, with their subtotal and tax."""
    lines = []
    subtotal = tax = Decimal(0)
    for _ in range(rng.randint(1, 3)):
        name, price = rng.choice(PRODUCTS)
        qty = Decimal(rng.randint(1, 6)).quantize(FOUR_DP)
        unit = Decimal(price).quantize(FOUR_DP)
        amount = (qty * unit).quantize(CENT, ROUND_HALF_UP)
        line_tax = (amount * tenant.tax_rate).quantize(CENT, ROUND_HALF_UP)
        lines.append({"LineItemID": _uuid(rng), "Description": name, "Quantity": qty,
                      "UnitAmount": unit, "AccountCode": "300" if bill else "200",
                      "TaxType": "INPUT2" if bill else tenant.sales_tax_type,
                      "TaxAmount": line_tax, "LineAmount": amount, "Tracking": []})
        subtotal += amount
        tax += line_tax
    return lines, subtotal, tax


def _invoice(rng: random.Random, tenant: Tenant, today: date, contact: dict[str, Any],
             number: str, issued: date, due: date, currency: str, lines: list[dict[str, Any]],
             subtotal: Decimal, tax: Decimal, status: str, bill: bool) -> dict[str, Any]:
    total = subtotal + tax
    invoice: dict[str, Any] = {
        "Type": "ACCPAY" if bill else "ACCREC",
        "InvoiceID": _uuid(rng),
        "InvoiceNumber": number,
        "Reference": f"PO {rng.randint(1000, 9999)}",
        "Contact": {"ContactID": contact["ContactID"], "Name": contact["Name"]},
        "LineItems": lines, "LineAmountTypes": "Exclusive", "CurrencyCode": currency,
        "CurrencyRate": tenant.currency_rate(currency), "Status": status,
        "SubTotal": subtotal, "TotalTax": tax, "Total": total, "AmountDue": total,
        "AmountPaid": Decimal(0), "AmountCredited": Decimal(0),
        "SentToContact": status == "AUTHORISED" and not bill,
        "HasAttachments": False, "IsDiscounted": False, "HasErrors": False,
        "_date": issued, "_due": due, "_payments": [], "_by_app": False,
        "_updated": min(_stamp(rng, today, 5),
                        datetime.combine(issued, time(12), tzinfo=UTC) + timedelta(days=1)),
    }
    tenant.invoices[invoice["InvoiceID"]] = invoice
    return invoice


# Quotes the demo shows: (Status, days since issued, amount before tax).
QUOTES = (("ACCEPTED", 5, "9500.00"), ("SENT", 2, "4200.00"), ("DECLINED", 18, "12000.00"),
          ("DRAFT", 1, "800.00"), ("INVOICED", 30, "2600.00"))


def _seed_quotes(tenant: Tenant, today: date, customers: list[dict[str, Any]],
                 seed: int) -> None:
    """A quote in most statuses, from its own random stream (after everything else, so the
    invoices and payments are what they were without them)."""
    rng = random.Random(f"quotes-{seed}")
    for number, (status, age, amount) in enumerate(QUOTES):
        contact = customers[(number * 4 + 1) % len(customers)]
        issued = today - timedelta(days=age)
        record = new_quote(tenant, contact, Decimal(amount), status, issued, None,
                           tenant.base_currency, "Fit-out as quoted")
        record["QuoteID"] = _uuid(rng)
        record["LineItems"][0]["LineItemID"] = _uuid(rng)
        record["_updated"] = _stamp(rng, today, max(1, age - 1))
        tenant.quotes[record["QuoteID"]] = record


def _pay(rng: random.Random, tenant: Tenant, invoice: dict[str, Any], amount: Decimal,
         today: date, habit: int | None = None) -> None:
    """Paid in full by the customer's habit (a part payment, or one from a customer who has
    stopped paying: from 10 days early to 20 days late), never on or after today."""
    late = rng.randint(-10, 20)
    if habit is not None:
        late = habit
    latest = min(today - timedelta(days=1), invoice["_due"] + timedelta(days=late))
    _pay_on(rng, tenant, invoice, amount, min(max(invoice["_date"], latest),
                                              today - timedelta(days=1)))


def _pay_on(rng: random.Random, tenant: Tenant, invoice: dict[str, Any], amount: Decimal,
            paid_on: date) -> None:
    when = datetime.combine(paid_on, time(rng.randint(8, 18)), tzinfo=UTC)
    payment: dict[str, Any] = {
        "PaymentID": _uuid(rng), "_date": paid_on, "Amount": amount,
        "CurrencyRate": invoice["CurrencyRate"], "PaymentType": "ACCRECPAYMENT",
        "Status": "AUTHORISED", "Reference": f"Payment {invoice['InvoiceNumber']}",
        "IsReconciled": True, "_invoice_id": invoice["InvoiceID"], "_updated": when,
    }
    tenant.payments[payment["PaymentID"]] = payment
    invoice["AmountPaid"] += amount
    invoice["AmountDue"] -= amount
    invoice["_payments"].append(payment["PaymentID"])
    invoice["_updated"] = max(invoice["_updated"], when)
    if invoice["AmountDue"] == 0:
        invoice["Status"] = "PAID"
        invoice["_paid_on"] = paid_on
