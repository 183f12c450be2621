"""Xero's own invoice email, as Xero words it (`POST /Invoices/{id}/Email` sends it).

Xero words the email from the organisation's "Sales Invoice" email template (Settings, Email
settings, Templates). The Accounting API neither reads that template nor takes a text with the
send (the request body is `{}`: emailInvoice in sandboxes/specs/xero/xero_accounting.yaml), so
the most an app can show is Xero's standard template filled in for the invoice, and say so.

UNVERIFIED: the standard wording below is Xero's default Sales Invoice template as its settings
page shows it, without the line with the online invoice's link; no document we hold states it
(searched the Accounting API description, the Branding Themes resource, Xero Central and the
developer pages for the template's text and for an API that reads it: there is none).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from connectors.base import InvoiceEmail, InvoiceEmailFacts

STANDARD_SUBJECT = "Invoice [Invoice Number] from [Trading Name] for [Contact Name]"
STANDARD_BODY = ("Hi [Contact Name],\n\n"
                 "Here's invoice [Invoice Number] for [Currency Code] [Invoice Total].\n\n"
                 "The amount outstanding of [Currency Code] [Amount Due] is due on [Due Date]."
                 "\n\nIf you have any questions, please let us know.\n\nThanks,\n"
                 "[Trading Name]")
PLACEHOLDER = re.compile(r"\[[A-Za-z .]+\]")


def fill(template: str, trading_name: str, invoice: InvoiceEmailFacts) -> str:
    """The template with Xero's placeholders filled in (one it does not know stays as it is)."""
    values = {
        "[Trading Name]": trading_name, "[Contact Name]": invoice.contact_name,
        "[Invoice Number]": invoice.number, "[Currency Code]": invoice.currency,
        "[Invoice Total]": f"{invoice.total:,.2f}", "[Amount Due]": f"{invoice.amount_due:,.2f}",
        "[Due Date]": invoice.due_date.strftime("%d %b %Y") if invoice.due_date else ""}
    return PLACEHOLDER.sub(lambda found: values.get(found.group(0), found.group(0)), template)


def standard_emails(trading_name: str, invoices: Sequence[InvoiceEmailFacts]
                    ) -> list[InvoiceEmail]:
    """Xero's standard invoice email for each invoice: not the organisation's own settings."""
    return [InvoiceEmail(subject=fill(STANDARD_SUBJECT, trading_name, invoice),
                         body=fill(STANDARD_BODY, trading_name, invoice), from_settings=False)
            for invoice in invoices]
