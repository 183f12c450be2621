"""One harness per provider: a connected connector and the sandbox's view of the books.

The contract tests speak only to these methods, so every connector meets the same promises
and a new provider joins by adding one harness.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any, Protocol

from connectors.base import Connector, TokenSet
from tests.conftest import FakeClock, LiveServer


class MemoryTokens:
    """A TokenStore in memory, counting refreshes."""

    def __init__(self, tokens: TokenSet) -> None:
        self.tokens = tokens
        self.refreshes = 0

    def load(self) -> TokenSet:
        return self.tokens

    def refresh(self, needs_refresh: Callable[[TokenSet], bool],
                do_refresh: Callable[[TokenSet], TokenSet]) -> TokenSet:
        if needs_refresh(self.tokens):
            self.tokens = do_refresh(self.tokens)
            self.refreshes += 1
        return self.tokens


@dataclass(frozen=True)
class Line:
    description: str
    amount: Decimal  # negative for a discount


@dataclass(frozen=True)
class Credit:
    """A credit note (Xero) or credit memo (QuickBooks) as the books hold it."""

    provider_id: str
    total: Decimal
    remaining: Decimal
    text: str  # every text the customer or the bookkeeper sees on it


class Harness(Protocol):
    provider: str
    clock: FakeClock
    server: LiveServer
    # Where the provider refuses line edits once money is allocated, and so fees on such an
    # invoice must go on a separate fee invoice.
    locks_lines_once_paid: bool

    def connector(self, **budget: Any) -> Connector: ...

    def tokens(self) -> MemoryTokens: ...

    def open_invoice(self, part_paid: bool = False) -> str:
        """An approved invoice with money due whose contact has an email address."""
        ...

    def invoice_due(self, amount: Decimal) -> str:
        """A new approved invoice of one untaxed line, for a contact with an email address."""
        ...

    def pay(self, invoice_id: str, amount: Decimal) -> None: ...

    def credit_notes(self) -> list[Credit]:
        """Every sales credit note in the books."""
        ...

    def credits(self, invoice_id: str) -> list[Decimal]:
        """Each credit applied to the invoice, in the order applied."""
        ...

    def emails(self, invoice_id: str) -> int: ...

    def sent_email(self, invoice_id: str) -> tuple[str, str]:
        """The subject and body of the provider's last email of the invoice, as it sent it."""
        ...

    def word_invoice_emails(self, subject: str, body: str) -> None:
        """The organisation's own invoice email, set where the provider keeps it; `{number}`
        and `{name}` become the provider's fields for the invoice's number and customer."""
        ...

    def notes(self, invoice_id: str) -> list[str]: ...

    def lines(self, invoice_id: str) -> list[Line]: ...

    def invoice_count(self) -> int:
        """Sales invoices (Dunwell never reads bills)."""
        ...

    def calls(self) -> int: ...

    def limit_calls_per_minute(self, limit: int) -> None: ...

    def expire_access_tokens(self) -> None: ...

    def revoke_consent(self) -> None: ...


class XeroHarness:
    provider = "xero"
    locks_lines_once_paid = True

    def __init__(self, clock: FakeClock) -> None:
        from sandboxes.xero import SandboxConfig, XeroSandbox, create_app

        self.clock = clock
        self.box = XeroSandbox(SandboxConfig(clock=clock, per_minute_limit=100_000))
        self.box.seed_demo(clock().date())
        self.server = LiveServer(create_app(self.box))
        self.tenant = self.box.tenants()[0]["tenantId"]
        self._tokens: MemoryTokens | None = None

    def tokens(self) -> MemoryTokens:
        from tests.integration.test_connector_contract import tokens_for

        if self._tokens is None:
            self._tokens = MemoryTokens(tokens_for(self.server.url, clock=self.clock))
        return self._tokens

    def connector(self, **budget: Any) -> Connector:
        from connectors.xero import XeroConnector, XeroSettings
        from tests.integration.test_connector_contract import oauth

        base = self.server.url
        settings = XeroSettings(oauth(base, self.clock), f"{base}/api.xro/2.0",
                                f"{base}/connections")
        return XeroConnector(settings, self.tenant, self.tokens(), clock=self.clock, **budget)

    def _raw(self, invoice_id: str) -> dict[str, Any]:
        return next(i for i in self.box.invoices(self.tenant) if i["InvoiceID"] == invoice_id)

    def open_invoice(self, part_paid: bool = False) -> str:
        emails = {c["ContactID"] for c in self.box.contacts(self.tenant)
                  if c.get("EmailAddress")}
        for raw in self.box.invoices(self.tenant):
            if (raw["Type"] == "ACCREC" and raw["Status"] == "AUTHORISED"
                    and raw["AmountDue"] > 0 and raw["Contact"]["ContactID"] in emails
                    and (raw["AmountPaid"] > 0) == part_paid):
                return str(raw["InvoiceID"])
        raise LookupError("the seed has no such invoice")

    def invoice_due(self, amount: Decimal) -> str:
        contact = next(c for c in self.box.contacts(self.tenant)
                       if c.get("EmailAddress") and c.get("ContactStatus") == "ACTIVE")
        today = self.clock().date()
        return str(self.box.add_invoice(self.tenant, {
            "Type": "ACCREC", "Status": "AUTHORISED",
            "Contact": {"ContactID": contact["ContactID"]}, "Date": today.isoformat(),
            "DueDate": (today + timedelta(days=14)).isoformat(),
            "LineItems": [{"Description": "Roasting course", "Quantity": 1,
                           "UnitAmount": amount, "AccountCode": "200", "TaxType": "NONE"}],
        })["InvoiceID"])

    def pay(self, invoice_id: str, amount: Decimal) -> None:
        self.box.pay_invoice(self.tenant, invoice_id, amount)

    def credit_notes(self) -> list[Credit]:
        return [Credit(str(n["CreditNoteID"]), Decimal(n["Total"]),
                       Decimal(n["RemainingCredit"]),
                       " ".join([str(n["Reference"]),
                                 *(str(line["Description"]) for line in n["LineItems"])]))
                for n in self.box.credit_notes(self.tenant) if n["Type"] == "ACCRECCREDIT"]

    def credits(self, invoice_id: str) -> list[Decimal]:
        return [Decimal(c["AppliedAmount"]) for c in self._raw(invoice_id)["CreditNotes"]]

    def emails(self, invoice_id: str) -> int:
        return sum(1 for e in self.box.emails(self.tenant) if e["InvoiceID"] == invoice_id)

    def sent_email(self, invoice_id: str) -> tuple[str, str]:
        sent = [e for e in self.box.emails(self.tenant) if e["InvoiceID"] == invoice_id]
        return str(sent[-1]["Subject"]), str(sent[-1]["Body"])

    def word_invoice_emails(self, subject: str, body: str) -> None:
        """In Xero's settings (Email settings, Templates): no API reaches it."""
        fields = {"number": "[Invoice Number]", "name": "[Contact Name]"}
        with self.box.lock:
            self.box.tenant(self.tenant).invoice_email_template = (
                subject.format(**fields), body.format(**fields))

    def notes(self, invoice_id: str) -> list[str]:
        return [str(h["Details"]) for h in self.box.history(self.tenant, invoice_id)]

    def lines(self, invoice_id: str) -> list[Line]:
        tenant = self.box.tenant(self.tenant)
        return [Line(str(line["Description"]), Decimal(line["LineAmount"]))
                for line in tenant.invoices[invoice_id]["LineItems"]]

    def invoice_count(self) -> int:
        return sum(1 for i in self.box.invoices(self.tenant) if i["Type"] == "ACCREC")

    def calls(self) -> int:
        return self.box.calls(self.tenant)

    def limit_calls_per_minute(self, limit: int) -> None:
        self.box.config.per_minute_limit = limit

    def expire_access_tokens(self) -> None:
        self.box.expire_access_tokens()

    def revoke_consent(self) -> None:
        from tests.integration.test_connector_contract import oauth

        oauth(self.server.url).revoke(self.tokens().tokens.refresh_token)


QBO_REDIRECT = "http://127.0.0.1:9/callback"


def quickbooks_consent(base: str, client_id: str = "dunwell-demo",
                       secret: str = "dunwell-demo-secret",
                       company: int = 0) -> tuple[str, str]:
    """Through the sandbox's consent page as the owner would: returns (code, realmId)."""
    from urllib.parse import parse_qs, urljoin, urlparse

    import requests

    from connectors.quickbooks import QuickBooksSettings
    from tests.integration.flows import forms_of

    settings = QuickBooksSettings(client_id, secret, f"{base}/.well-known/openid_configuration",
                                  f"{base}/v3")
    http = requests.Session()
    page = http.get(settings.authorization_url(QBO_REDIRECT, "state-1"), timeout=10)
    assert page.status_code == 200 and "Connect" in page.text
    form = next(f for f in forms_of(page.text) if f["method"] == "post")
    realms = [f["value"] for f in form["inputs"] if f.get("type") == "radio"]
    data = [(f["name"], f.get("value") or "") for f in form["inputs"]
            if f.get("type") == "hidden"] + [("realmId", realms[company]),
                                             ("decision", "allow")]
    answer = http.post(urljoin(page.url, form["action"]), data=data, allow_redirects=False,
                       timeout=10)
    assert answer.status_code == 302, answer.text[:300]
    query = parse_qs(urlparse(answer.headers["Location"]).query)
    assert query["state"] == ["state-1"]
    return query["code"][0], query["realmId"][0]


class QuickBooksHarness:
    provider = "quickbooks"
    locks_lines_once_paid = False  # QuickBooks lets a paid invoice's lines change

    def __init__(self, clock: FakeClock) -> None:
        from sandboxes.quickbooks import QuickBooksSandbox, SandboxConfig, create_app

        self.clock = clock
        self.box = QuickBooksSandbox(SandboxConfig(clock=clock, per_minute_limit=100_000))
        self.box.seed_demo(clock().date())
        self.server = LiveServer(create_app(self.box))
        self._tokens: MemoryTokens | None = None
        code, self.realm = quickbooks_consent(self.server.url)
        self._code = code

    def settings(self) -> Any:
        from connectors.quickbooks import QuickBooksSettings

        base = self.server.url
        return QuickBooksSettings("dunwell-demo", "dunwell-demo-secret",
                                  f"{base}/.well-known/openid_configuration", f"{base}/v3",
                                  clock=self.clock)

    def tokens(self) -> MemoryTokens:
        if self._tokens is None:
            self._tokens = MemoryTokens(self.settings().exchange_code(
                self._code, QBO_REDIRECT, self.realm))
        return self._tokens

    def connector(self, **budget: Any) -> Connector:
        from connectors.quickbooks import QuickBooksConnector

        return QuickBooksConnector(self.settings(), self.realm, self.tokens(),
                                   clock=self.clock, **budget)

    def open_invoice(self, part_paid: bool = False) -> str:
        emails = {c["Id"] for c in self.box.customers(self.realm)
                  if (c.get("PrimaryEmailAddr") or {}).get("Address")}
        for raw in self.box.invoices(self.realm):
            paid = raw["TotalAmt"] - raw["Balance"]
            if (raw["Balance"] > 0 and raw["CustomerRef"]["value"] in emails
                    and raw.get("BillEmail") and (paid > 0) == part_paid):
                return str(raw["Id"])
        raise LookupError("the seed has no such invoice")

    def invoice_due(self, amount: Decimal) -> str:
        customer = next(c for c in self.box.customers(self.realm)
                        if (c.get("PrimaryEmailAddr") or {}).get("Address") and c["Active"])
        today = self.clock().date()
        return str(self.box.create(self.realm, "Invoice", {
            "CustomerRef": {"value": customer["Id"]}, "TxnDate": today.isoformat(),
            "DueDate": (today + timedelta(days=14)).isoformat(),
            "Line": [{"DetailType": "SalesItemLineDetail", "Amount": amount,
                      "Description": "Planting", "SalesItemLineDetail": {}}],
        })["Id"])

    def pay(self, invoice_id: str, amount: Decimal) -> None:
        self.box.pay_invoice(self.realm, invoice_id, amount)

    def credit_notes(self) -> list[Credit]:
        return [Credit(str(m["Id"]), Decimal(m["TotalAmt"]), Decimal(m["RemainingCredit"]),
                       " ".join([str(m.get("PrivateNote") or ""),
                                 str((m.get("CustomerMemo") or {}).get("value") or ""),
                                 *(str(line.get("Description") or "") for line in m["Line"])]))
                for m in self.box.credit_memos(self.realm)]

    def credits(self, invoice_id: str) -> list[Decimal]:
        """The invoice's share of each payment that applies a credit memo (QBO applies credit
        no other way)."""
        found = []
        for payment in sorted(self.box.payments(self.realm), key=lambda p: int(p["Id"])):
            links = [(str(linked["TxnType"]), str(linked["TxnId"]), Decimal(line["Amount"]))
                     for line in payment["Line"] for linked in line["LinkedTxn"]]
            if any(kind == "CreditMemo" for kind, _, _ in links):
                found += [amount for kind, txn, amount in links
                          if kind == "Invoice" and txn == invoice_id]
        return found

    def _raw(self, invoice_id: str) -> dict[str, Any]:
        return next(i for i in self.box.invoices(self.realm) if i["Id"] == invoice_id)

    def emails(self, invoice_id: str) -> int:
        return sum(1 for e in self.box.emails(self.realm)
                   if str(e["InvoiceId"]) == invoice_id)

    def sent_email(self, invoice_id: str) -> tuple[str, str]:
        sent = [e for e in self.box.emails(self.realm) if str(e["InvoiceId"]) == invoice_id]
        return str(sent[-1]["Subject"]), str(sent[-1]["Message"])

    def word_invoice_emails(self, subject: str, body: str) -> None:
        """In QuickBooks' settings (Sales, Messages): what Preferences then reads."""
        fields = {"number": "[Invoice No.]", "name": "[Full Name]"}
        with self.box.lock:
            self.box.company(self.realm).invoice_message = (subject.format(**fields),
                                                            body.format(**fields))

    def notes(self, invoice_id: str) -> list[str]:
        return str(self._raw(invoice_id).get("PrivateNote") or "").splitlines()

    def lines(self, invoice_id: str) -> list[Line]:
        return [Line(str(line.get("Description") or ""),
                     -Decimal(line["Amount"]) if line["DetailType"] == "DiscountLineDetail"
                     else Decimal(line["Amount"]))
                for line in self._raw(invoice_id)["Line"]
                if line.get("DetailType") in ("SalesItemLineDetail", "DiscountLineDetail")]

    def invoice_count(self) -> int:
        return len(self.box.invoices(self.realm))

    def calls(self) -> int:
        return self.box.calls(self.realm)

    def limit_calls_per_minute(self, limit: int) -> None:
        self.box.config.per_minute_limit = limit

    def expire_access_tokens(self) -> None:
        self.box.expire_access_tokens()

    def revoke_consent(self) -> None:
        self.box.revoke_all(self.realm)
