"""What a Xero organisation (tenant) holds, and the refresh tokens the sandbox has issued."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

# Sales tax by organisation country, and the TaxType Xero uses for it on sales lines.
TAX_RATES = {"GB": Decimal("0.20"), "NO": Decimal("0.25"), "NZ": Decimal("0.15"),
             "AU": Decimal("0.10"), "IE": Decimal("0.23"), "US": Decimal(0)}
SALES_TAX_TYPE = {"GB": "OUTPUT2", "AU": "OUTPUT", "NZ": "OUTPUT2"}
ZERO_TAX_TYPES = {"NONE", "ZERORATEDOUTPUT", "EXEMPTOUTPUT", "ZERORATED", "EXEMPTOUTPUTS"}
# Units of each currency per pound: a fixed "day rate" so multi-currency invoices have one.
CURRENCY_NAMES = {"GBP": "British Pound", "EUR": "Euro", "USD": "United States Dollar",
                  "NOK": "Norwegian Krone", "SEK": "Swedish Krona", "DKK": "Danish Krone",
                  "AUD": "Australian Dollar", "NZD": "New Zealand Dollar",
                  "CAD": "Canadian Dollar"}
PER_GBP = {"GBP": Decimal("1"), "EUR": Decimal("1.17"), "USD": Decimal("1.27"),
           "NOK": Decimal("13.60"), "SEK": Decimal("13.40"), "DKK": Decimal("8.72"),
           "AUD": Decimal("1.93"), "NZD": Decimal("2.11"), "CAD": Decimal("1.74")}


@dataclass
class Tenant:
    tenant_id: str
    name: str
    country: str
    base_currency: str
    timezone: str
    short_code: str
    created: datetime
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    invoices: dict[str, dict[str, Any]] = field(default_factory=dict)
    payments: dict[str, dict[str, Any]] = field(default_factory=dict)
    credit_notes: dict[str, dict[str, Any]] = field(default_factory=dict)
    quotes: dict[str, dict[str, Any]] = field(default_factory=dict)
    bank_transactions: dict[str, dict[str, Any]] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    emails: list[dict[str, Any]] = field(default_factory=list)
    # The organisation's own Sales Invoice email template (subject, body), set in Xero's
    # settings and never through the API; None: Xero's standard one (sandboxes/xero/invoices).
    invoice_email_template: tuple[str, str] | None = None
    # The logo on its branding theme (PNG bytes; sandboxes/xero/branding.py), or None.
    logo: bytes | None = None

    @property
    def tax_rate(self) -> Decimal:
        return TAX_RATES.get(self.country, Decimal("0.20"))

    @property
    def sales_tax_type(self) -> str:
        return SALES_TAX_TYPE.get(self.country, "OUTPUT")

    def currency_rate(self, currency: str) -> Decimal:
        """Units of `currency` per unit of the base currency, as Xero's CurrencyRate."""
        if currency == self.base_currency:
            return Decimal("1.000000")
        return (PER_GBP[currency] / PER_GBP[self.base_currency]).quantize(Decimal("0.000001"))


@dataclass
class RefreshToken:
    auth_event_id: str
    client_id: str
    scope: str
    issued: datetime
    rotated_at: datetime | None = None
    answer: dict[str, Any] | None = None  # what its first use returned (for the grace window)
    revoked: bool = False
