"""QuickBooks' own invoice email, as QuickBooks words it (`POST /invoice/{id}/send` sends it).

The organisation sets the subject and message in QuickBooks (Settings, Account and settings,
Sales, Messages); the Accounting API reads them as `Preferences.EmailMessagesPrefs.
InvoiceMessage` (`Subject`, `Message`; "Default email subject and message for Invoice" in
sandboxes/specs/quickbooks/Finance.xsd), and QuickBooks fills in the invoice's own fields.

UNVERIFIED: which bracketed fields QuickBooks fills in when it sends through the API, and that
[Full Name] is the customer's display name; Finance.xsd describes the two texts only (searched
it, Intuit's Preferences and send-invoice pages and the SDKs for the placeholders).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from connectors.base import InvoiceEmail, InvoiceEmailFacts

PLACEHOLDER = re.compile(r"\[[A-Za-z .]+\]")


def invoice_message(preferences: Mapping[str, Any]) -> tuple[str, str] | None:
    """The organisation's invoice email subject and message, from its Preferences."""
    found = (preferences.get("EmailMessagesPrefs") or {}).get("InvoiceMessage") or {}
    subject, message = found.get("Subject"), found.get("Message")
    if not isinstance(subject, str) or not isinstance(message, str):
        return None
    return subject, message


def fill(text: str, company_name: str, invoice: InvoiceEmailFacts) -> str:
    values = {"[Invoice No.]": invoice.number, "[Full Name]": invoice.contact_name,
              "[Company Name]": company_name}
    return PLACEHOLDER.sub(lambda found: values.get(found.group(0), found.group(0)), text)


def needs_company_name(subject: str, message: str) -> bool:
    return "[Company Name]" in subject or "[Company Name]" in message


def invoice_emails(subject: str, message: str, company_name: str,
                   invoices: Sequence[InvoiceEmailFacts]) -> list[InvoiceEmail]:
    return [InvoiceEmail(subject=fill(subject, company_name, invoice),
                         body=fill(message, company_name, invoice), from_settings=True)
            for invoice in invoices]
