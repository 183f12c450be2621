"""A local emulator of Intuit's sign-in (OAuth 2.0 and OpenID Connect) and the QuickBooks Online
Accounting API v3, for the demo and tests.

One origin serves what Intuit splits across hosts: the discovery document
(`/.well-known/openid_configuration`, developer.intuit.com), consent (`/connect/oauth2`,
appcenter.intuit.com), tokens (`/oauth2/v1/tokens/bearer`) and keys (`/oauth2/v1/jwks`)
(oauth.platform.intuit.com), revocation (`/v2/oauth2/tokens/revoke`, developer.api.intuit.com),
user info (`/v1/openid_connect/userinfo`, accounts.platform.intuit.com) and the API itself
(`/v3/company/<realmId>/...`, quickbooks.api.intuit.com). `intuitlib.AuthClient` with
`environment=<discovery URL>` and `python-quickbooks` with its `api_url_v3` pointed here work
unchanged. `/_sandbox/...` is ours: control and introspection for tests and the demo; it has
no authentication at all, so the sandbox must only ever listen on a loopback address.

Faithful to what Intuit publishes or is seen to send: entity and field names from Finance.xsd,
`Id`/`SyncToken`/`MetaData` on every object, times written with the company's UTC offset,
exact two-decimal amounts, `SubTotalLineDetail` lines appended to answers, Fault bodies and
their codes (610 object not found, 2010 unsupported property, 2020 required parameter, 2500
invalid reference, 4000 query parser error, 5010 stale object, 6000 business validation,
6240 duplicate name), the lower-case `fault` body of 401/403 answers, the XML body of a 429
even when JSON was asked for, `requestid` replays, the query language's shape (no OR, ORDERBY,
STARTPOSITION, MAXRESULTS, COUNT(*), inactive names hidden unless `Active` is filtered on),
CDC grouped by entity with deletions as `status: Deleted` stubs, 30-day look-back and a
1,000-object cap, batches of up to 30 items that succeed or fail one by one, rotating refresh
tokens living 100 days, RS256 id_tokens whose key is published at jwks_uri, and an `intuit_tid`
header on every answer.

Choices where Intuit's behaviour is not published (each also noted where it is made), all
UNVERIFIED:
- A refresh token stays usable for `refresh_grace_seconds` (24 h) after it was first used;
  each use, inside the grace too, answers a new pair. Afterwards: 400 invalid_grant.
- Revoking any token of a consent (access or refresh) ends the whole consent; an unknown token
  still answers 200, as RFC 7009 asks.
- `minorversion` is read but not required; anything below 75 is served as 75, as QBO has done
  since 1 August 2025 (settled: Intuit's developer blog, 2025-01-21, "Changes to our
  Accounting API that may impact your application").
- A replayed `requestid` answers the first answer (status and body), whatever the new body.
  Fault answers are replayed too; requests refused before reaching the company (401, 403,
  429) are not remembered.
- The 429 answer carries no Retry-After; the per-minute window slides over the last 60 s of
  the sandbox clock.
- `MetaData` and the envelope `time` use the company's DefaultTimeZone (real QBO may write
  Pacific time for every company); a changedSince or query time without an offset is read in
  the company's time zone. MetaData keeps whole seconds, and queries compare what is written.
- Transactions (Invoice, Payment, CreditMemo) share one Id sequence per company; each list
  entity (Customer, Item, Account) has its own.
- DueDate defaults to TxnDate + 30 days (Net 30); sales terms are not modelled. Tax is not
  modelled: TxnTaxDetail.TotalTax is always 0 and TaxCodeRef is echoed (US lines default to
  "NON").
- A sales line with Amount and both Qty and UnitPrice non-zero must satisfy
  Qty x UnitPrice = Amount (fault 6070); with only Amount, Qty is 1 and UnitPrice the amount;
  a line without ItemRef uses the "Services" item; a missing Description is filled from the item.
- A full (non-sparse) update clears PrivateNote, CustomerMemo and BillEmail when omitted,
  keeps DocNumber, TxnDate, DueDate and EmailStatus when omitted, and ignores every read-only
  field sent back (TotalAmt, Balance, LinkedTxn, MetaData, SubTotalLineDetail lines...).
- An edit may not take an invoice's total below what payments already applied (6000);
  voided invoices cannot be edited, paid or voided again; invoices or credit memos with
  payments applied cannot be voided or deleted (6000).
- Void zeroes every line amount and quantity, TotalAmt and Balance, and sets PrivateNote
  "Voided". Deleting a payment or voiding it (`operation=update&include=void`) gives its
  amounts back to the invoices and credit memos it paid.
- Making a customer or item inactive appends " (deleted)" to its name, as QBO shows it, and
  reactivating removes it. Customer Balance is computed, and changing it does not move the
  customer's SyncToken or LastUpdatedTime.
- Credit memos are applied only through a Payment line linking the CreditMemo (no automatic
  application: Preferences.SalesFormsPrefs.AutoApplyCredit is false).
- Multicurrency is off: a CurrencyRef other than the home currency is a 6000 fault.
- A send without sendTo and without BillEmail, a malformed address, more than
  `emails_per_day` sends on one company-local day, a batch over 30 items, or an over-applied
  payment are 6000 faults with our own Detail text; a changedSince older than 30 days is the
  code-500 "Unsupported Operation" fault whose Detail Intuit has been seen to send.
- Query: string comparisons ignore case; results are ordered by Id unless ORDERBY says
  otherwise; STARTPOSITION below 1 counts as 1; MAXRESULTS above 1000 is served as 1000; an
  unknown property is a 4001 QueryValidationError.
- CDC returns at most `cdc_max_objects` objects in all: the earliest by LastUpdatedTime, so a
  total equal to the cap means "more changed, fall back to a query". An entity without
  changes answers an empty `{}` in the QueryResponse list.
- `calls()` counts every API request that carried a valid token for the company, including
  refused (429) ones, so tests see retries too.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import random
import re
import secrets
import threading
import time as wall
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache
from html import escape
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, Response, request

from sandboxes.quickbooks_seed import seed_company
from sandboxes.webhooks import IntuitWebhooks
from sandboxes.wire import ClientApp
from sandboxes.wire import json_response as _json

CENT = Decimal("0.01")
SEVEN_DP = Decimal("0.0000001")
MINOR_VERSION = 75
SCOPES = ("com.intuit.quickbooks.accounting", "com.intuit.quickbooks.payment", "openid",
          "profile", "email", "phone", "address", "intuit_name")
SCHEMA = "com.intuit.schema.finance.v3"
INACTIVE_DETAIL = ("Something you're trying to use has been made inactive. Check the fields "
                   "with accounts, customers, items, vendors or employees.")
CURRENCY_NAMES = {"USD": "United States Dollar", "GBP": "British Pound Sterling",
                  "EUR": "Euro", "CAD": "Canadian Dollar", "AUD": "Australian Dollar",
                  "NZD": "New Zealand Dollar"}
EMAIL = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+$")
TRANSACTIONS = ("Invoice", "Payment", "CreditMemo", "Estimate")
ENTITIES = ("Invoice", "Customer", "Item", "Payment", "CreditMemo", "Account", "Estimate")
# An Estimate's TxnStatus (Finance.xsd leaves it a string; these are the values QBO uses).
ESTIMATE_STATUSES = ("Pending", "Accepted", "Closed", "Rejected")
SINGLETONS = ("CompanyInfo", "Preferences")
# Entities QBO's ChangeDataCapture covers but this sandbox does not keep: CDC answers them
# empty. With ENTITIES, the list Intuit's change-data-capture page gives, as tap-quickbooks
# 2.5.0 (streams.py, DeletedObjects) copies it, Budget included.
OTHER_CDC = {name.lower(): name for name in (
    "Vendor", "Bill", "BillPayment", "Budget", "SalesReceipt", "RefundReceipt", "Purchase",
    "PurchaseOrder", "Deposit", "Transfer", "JournalEntry", "Employee", "Class", "Department",
    "Term", "PaymentMethod", "VendorCredit", "Attachable")}
# "Change tracking is not supported for TimeActivities, TaxAgencies, TaxCodes and TaxRates"
# (the same page, as quoted there).
NO_CDC = {"journalcode", "taxagency", "timeactivity", "taxcode", "taxrate"}

# Element names of each entity type (with its bases) in Finance.xsd: a property outside these
# is the 2010 "unsupported property" fault, as in QBO.
_FIELDS = {
    "Invoice": """DocNumber TxnDate DepartmentRef CurrencyRef ExchangeRate PrivateNote TxnStatus
        LinkedTxn Line TxnTaxDetail TxnSource TaxFormType TaxFormNum TransactionLocationType Tag
        TxnApprovalInfo RecurDataRef RecurringInfo ProjectRef TotalCostAmount
        HomeTotalCostAmount AutoDocNumber CustomerRef CustomerMemo BillAddr ShipAddr
        FreeFormAddress ShipFromAddr RemitToRef ClassRef SalesTermRef DueDate SalesRepRef
        PONumber FOB ShipMethodRef ShipDate TrackingNum GlobalTaxCalculation TotalAmt
        HomeTotalAmt ApplyTaxAfterDiscount ShippingTaxIncludedInTotalTax TemplateRef
        PrintStatus EmailStatus BillEmail BillEmailCc BillEmailBcc ARAccountRef Balance
        HomeBalance FinanceCharge PaymentMethodRef PaymentRefNum PaymentType CheckPayment
        CreditCardPayment DepositToAccountRef DeliveryInfo DiscountRate DiscountAmt
        GovtTxnRefIdentifier TaxExemptionRef Deposit AllowIPNPayment AllowOnlinePayment
        AllowOnlineCreditCardPayment AllowOnlineACHPayment AllowOnlinePayPalPayment
        EInvoiceStatus ECloudStatusTimeStamp CfdiUse Exportation GlobalInfo invoiceStatus
        callToAction invoiceStatusLog InvoiceEx LessCIS InvoiceLink PaymentDetailsMessage
        ConvenienceFeeDetail InvoiceLinkSecurityCode InvoiceLinkExpiryDate AutoPayEligible
        SchedulePayEligible ScheduledPaymentId GratuityEnabled FinancingProductType
        SubscriptionPaymentsSetting""",
    "CreditMemo": """DocNumber TxnDate DepartmentRef CurrencyRef ExchangeRate PrivateNote
        TxnStatus LinkedTxn Line TxnTaxDetail TxnSource TaxFormType TaxFormNum
        TransactionLocationType Tag TxnApprovalInfo RecurDataRef RecurringInfo ProjectRef
        TotalCostAmount HomeTotalCostAmount AutoDocNumber CustomerRef CustomerMemo BillAddr
        ShipAddr FreeFormAddress ShipFromAddr RemitToRef ClassRef SalesTermRef DueDate
        SalesRepRef PONumber FOB ShipMethodRef ShipDate TrackingNum GlobalTaxCalculation
        TotalAmt HomeTotalAmt ApplyTaxAfterDiscount ShippingTaxIncludedInTotalTax TemplateRef
        PrintStatus EmailStatus BillEmail BillEmailCc BillEmailBcc ARAccountRef Balance
        HomeBalance FinanceCharge PaymentMethodRef PaymentRefNum PaymentType CheckPayment
        CreditCardPayment DepositToAccountRef DeliveryInfo DiscountRate DiscountAmt
        GovtTxnRefIdentifier TaxExemptionRef RemainingCredit InvoiceRef CreditMemoEx""",
    "Estimate": """DocNumber TxnDate DepartmentRef CurrencyRef ExchangeRate PrivateNote
        TxnStatus LinkedTxn Line TxnTaxDetail TxnSource TaxFormType TaxFormNum
        TransactionLocationType Tag TxnApprovalInfo RecurDataRef RecurringInfo ProjectRef
        TotalCostAmount HomeTotalCostAmount AutoDocNumber CustomerRef CustomerMemo BillAddr
        ShipAddr FreeFormAddress ShipFromAddr RemitToRef ClassRef SalesTermRef DueDate
        SalesRepRef PONumber FOB ShipMethodRef ShipDate TrackingNum GlobalTaxCalculation
        TotalAmt HomeTotalAmt ApplyTaxAfterDiscount ShippingTaxIncludedInTotalTax TemplateRef
        PrintStatus EmailStatus BillEmail BillEmailCc BillEmailBcc ARAccountRef Balance
        HomeBalance FinanceCharge PaymentMethodRef PaymentRefNum PaymentType CheckPayment
        CreditCardPayment DepositToAccountRef DeliveryInfo DiscountRate DiscountAmt
        GovtTxnRefIdentifier TaxExemptionRef ExpirationDate AcceptedBy AcceptedDate
        EstimateEx""",
    "Payment": """DocNumber TxnDate DepartmentRef CurrencyRef ExchangeRate PrivateNote
        TxnStatus LinkedTxn Line TxnTaxDetail TxnSource TaxFormType TaxFormNum
        TransactionLocationType Tag TxnApprovalInfo RecurDataRef RecurringInfo ProjectRef
        TotalCostAmount HomeTotalCostAmount CustomerRef RemitToRef ARAccountRef
        DepositToAccountRef PaymentMethodRef PaymentRefNum PaymentType CheckPayment
        CreditCardPayment TotalAmt UnappliedAmt ProcessPayment PaymentEx""",
    "Customer": """IntuitId Organization Title GivenName MiddleName FamilyName Suffix
        FullyQualifiedName CompanyName DisplayName PrintOnCheckName UserId Active V4IDPseudonym
        PrimaryPhone AlternatePhone Mobile Fax PrimaryEmailAddr WebAddr OtherContactInfo
        DefaultTaxCodeRef Taxable BillAddr ShipAddr OtherAddr ContactName AltContactName Notes
        Job BillWithParent RootCustomerRef ParentRef Level CustomerTypeRef SalesTermRef
        SalesRepRef TaxGroupCodeRef TaxRateRef PaymentMethodRef CCDetail PriceLevelRef Balance
        OpenBalanceDate BalanceWithJobs CreditLimit AcctNum CurrencyRef OverDueBalance
        TotalRevenue TotalExpense PreferredDeliveryMethod ResaleNum JobInfo TDSEnabled
        CustomerEx SecondaryTaxIdentifier ARAccountRef PrimaryTaxIdentifier
        TaxExemptionReasonId IsProject BusinessNumber GSTIN GSTRegistrationType
        IsCISContractor ClientCompanyId ClientEntityId Source TaxRegime""",
    "Item": """Name Sku Description Active SubItem ParentRef Level FullyQualifiedName Taxable
        SalesTaxIncluded PercentBased UnitPrice RatePercent Type PaymentMethodRef UOMSetRef
        IncomeAccountRef PurchaseDesc PurchaseTaxIncluded PurchaseCost ExpenseAccountRef
        COGSAccountRef AssetAccountRef PrefVendorRef AvgCost TrackQtyOnHand QtyOnHand
        QtyOnPurchaseOrder QtyOnSalesOrder ReorderPoint ManPartNum DepositToAccountRef
        SalesTaxCodeRef PurchaseTaxCodeRef InvStartDate BuildPoint PrintGroupedItems
        SpecialItem SpecialItemType ItemGroupDetail ItemAssemblyDetail AbatementRate
        ReverseChargeRate ServiceType ItemCategoryType ItemEx TaxClassificationRef
        UQCDisplayText UQCId ClassRef Source DeferredRevenue""",
    "Account": """Name SubAccount ParentRef Description FullyQualifiedName AccountAlias
        TxnLocationType Active Classification AccountType AccountSubType AccountPurposes
        AcctNum AcctNumExtn BankNum OpeningBalance OpeningBalanceDate CurrentBalance
        CurrentBalanceWithSubAccounts CurrencyRef TaxAccount TaxCodeRef OnlineBankingEnabled
        FIName JournalCodeRef AccountEx""",
    "CompanyInfo": """CompanyName LegalName CompanyAddr CustomerCommunicationAddr LegalAddr
        CompanyEmailAddr CustomerCommunicationEmailAddr CompanyURL PrimaryPhone
        OtherContactInfo CompanyFileName FlavorStratum SampleFile CompanyUserId
        CompanyUserAdminEmail CompanyStartDate EmployerId FiscalYearStartMonth
        TaxYearStartMonth QBVersion Country ShipAddr OtherAddr Mobile Fax Email WebAddr
        LastImportedTime LastSyncTime SupportedLanguages DefaultTimeZone
        MultiByteCharsSupported NameValue FifoCalculationStatus CompanyInfoEx""",
    "Preferences": """AccountingInfoPrefs AdvancedInventoryPrefs ProductAndServicesPrefs
        SalesFormsPrefs EmailMessagesPrefs PrintDocumentPrefs VendorAndPurchasesPrefs
        TimeTrackingPrefs TaxPrefs FinanceChargesPrefs CurrencyPrefs ReportPrefs OtherPrefs""",
}
BASE_FIELDS = frozenset("Id SyncToken MetaData CustomField AttachableRef domain status "
                        "sparse".split())
FIELDS: dict[str, frozenset[str]] = {k: frozenset(v.split()) | BASE_FIELDS
                                     for k, v in _FIELDS.items()}
ACCOUNT_TYPES = {
    "Bank": ("Asset", "Checking"), "Other Current Asset": ("Asset", "OtherCurrentAssets"),
    "Fixed Asset": ("Asset", "OtherFixedAssets"), "Other Asset": ("Asset", "OtherLongTermAssets"),
    "Accounts Receivable": ("Asset", "AccountsReceivable"),
    "Equity": ("Equity", "OpeningBalanceEquity"),
    "Expense": ("Expense", "OtherMiscellaneousServiceCost"),
    "Other Expense": ("Expense", "OtherMiscellaneousExpense"),
    "Cost of Goods Sold": ("Expense", "SuppliesMaterialsCogs"),
    "Accounts Payable": ("Liability", "AccountsPayable"),
    "Credit Card": ("Liability", "CreditCard"),
    "Long Term Liability": ("Liability", "OtherLongTermLiabilities"),
    "Other Current Liability": ("Liability", "OtherCurrentLiabilities"),
    "Income": ("Revenue", "ServiceFeeIncome"),
    "Other Income": ("Revenue", "OtherMiscellaneousIncome"),
}


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class SandboxConfig:
    clients: dict[str, ClientApp] = field(default_factory=lambda: {
        "dunwell-demo": ClientApp("dunwell-demo-secret", [], "Dunwell (demo)")})
    access_token_seconds: int = 3600
    refresh_token_days: int = 100
    # How long a refresh token still works after its first use (UNVERIFIED).
    refresh_grace_seconds: int = 24 * 3600
    # Intuit's hard limit on a consent, however often it is refreshed.
    consent_max_days: int = 5 * 365
    code_seconds: int = 300
    per_minute_limit: int = 500
    concurrent_limit: int = 10
    batch_per_minute_limit: int = 40
    batch_max_items: int = 30
    emails_per_day: int = 40
    cdc_max_objects: int = 1000
    cdc_max_days: int = 30
    # Where InvoiceLink points: https on Intuit's host, as Intuit sends it (the path after the
    # host is ours, UNVERIFIED: Intuit's is an opaque scs-v1-... token). None: this sandbox's
    # own address, so the demo's links open the sandbox's page for the invoice.
    invoice_link_base: str | None = "https://connect.intuit.com/"
    query_max_results: int = 1000
    clock: Callable[[], datetime] = _utcnow
    seed: int = 7
    # Wall-clock seconds each API call takes, so calls overlap as they do against QBO.
    latency_seconds: float = 0.0
    owner_given_name: str = "Sandbox"
    owner_family_name: str = "Owner"
    owner_email: str = "owner@example.com"
    # Where changes are posted as signed webhooks (None: not sent); sandboxes/webhooks.py.
    webhook_url: str | None = None
    webhook_verifier: str = "sandbox-webhook-verifier"
    webhook_format: str = "legacy"  # legacy (eventNotifications) | cloudevents
    webhook_batch_seconds: float = 0.5
    webhook_retries: int = 3


# --- JSON and times as QBO writes them --------------------------------------------------


def _money(value: Decimal) -> Decimal:
    return value.quantize(CENT, ROUND_HALF_UP)


def _plain(value: Decimal) -> Decimal:
    """Quantities and prices as QBO writes them: up to 7 places, no exponent, no zero tail."""
    result = value.quantize(SEVEN_DP, ROUND_HALF_UP).normalize()
    return result.quantize(Decimal(1)) if result == result.to_integral() else result


def _whole_seconds(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(microsecond=0)


# --- Faults -----------------------------------------------------------------------------


class QboFault(Exception):
    """A Fault answer: one or more errors, a fault type and the HTTP status QBO uses."""

    def __init__(self, code: str, message: str, detail: str, element: str = "",
                 kind: str = "ValidationFault", status: int = 400) -> None:
        super().__init__(f"{code} {message}: {detail}")
        self.code, self.message, self.detail, self.element = code, message, detail, element
        self.kind, self.status = kind, status

    def body(self) -> dict[str, Any]:
        return {"Error": [{"Message": self.message, "Detail": self.detail, "code": self.code,
                           "element": self.element}], "type": self.kind}


def required(name: str) -> QboFault:
    return QboFault("2020", "Required param missing, need to supply the required value for "
                    "the API", f"Required parameter {name} is missing in the request", name)


def unsupported_property(entity: str, name: str) -> QboFault:
    return QboFault("2010", "Request has invalid or unsupported property",
                    f'Property Name:Unrecognized field "{name}" (class {SCHEMA}.{entity}), not '
                    "marked as ignorable specified is unsupported or invalid", name)


def bad_value(name: str, value: Any, kind: str = "java.math.BigDecimal") -> QboFault:
    return QboFault("2010", "Request has invalid or unsupported property",
                    f"Property Name:Can not construct instance of {kind} from String value "
                    f"'{value}': not a valid representation specified is unsupported or "
                    "invalid", name)


def bad_json() -> QboFault:
    return QboFault("2010", "Request has invalid or unsupported property",
                    "Property Name:failed to parse json object; a property specified is "
                    "unsupported or invalid")


def invalid_reference(element: str, detail: str = INACTIVE_DETAIL) -> QboFault:
    return QboFault("2500", "Invalid Reference Id", f"Invalid Reference Id : {detail}", element)


def business(detail: str, element: str = "") -> QboFault:
    return QboFault("6000", "A business validation error has occurred while processing your "
                    "request", f"Business Validation Error: {detail}", element)


def not_found() -> QboFault:
    return QboFault("610", "Object Not Found", f"Object Not Found : {INACTIVE_DETAIL}")


def unsupported_operation(detail: str) -> QboFault:
    return QboFault("500", "Unsupported Operation", f"Operation {detail} is not supported.")


def duplicate_name(what: str) -> QboFault:
    return QboFault("6240", "Duplicate Name Exists Error",
                    f"The name supplied already exists. : Another {what} is already using this "
                    "name. Please use a different name.")


def stale(user: str) -> QboFault:
    return QboFault("5010", "Stale Object Error",
                    f"Stale Object Error : You and {user} were working on this at the same "
                    f"time. {user} finished before you did, so your work was not saved.")


def too_long(name: str, limit: int, given: int) -> QboFault:
    return QboFault("6000", "A business validation error has occurred while processing your "
                    "request", f"Business Validation Error: You cannot enter more than {limit} "
                    f"characters in the {name} field. You tried entering {given} characters.",
                    name)


def parse_error(detail: str) -> QboFault:
    return QboFault("4000", "Error parsing query", f"QueryParserError: {detail}")


def query_invalid(detail: str) -> QboFault:
    return QboFault("4001", "Invalid query", f"QueryValidationError: {detail}")


# --- State ------------------------------------------------------------------------------


@dataclass
class Company:
    realm_id: str
    name: str
    country: str
    currency: str
    timezone: str
    created: datetime
    clock: Callable[[], datetime]
    city: str = ""
    postal_code: str = ""
    address_line: str = ""
    region: str = ""
    email: str = ""
    phone: str = ""
    owner: str = "Sandbox Owner"
    records: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    deleted: dict[str, dict[str, datetime]] = field(default_factory=dict)
    sequences: dict[str, int] = field(default_factory=dict)
    emails: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    replays: dict[str, tuple[int, str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for entity in ENTITIES:
            self.records.setdefault(entity, {})
            self.deleted.setdefault(entity, {})

    @property
    def tz(self) -> ZoneInfo:
        return _zone(self.timezone)

    def utc(self, moment: datetime) -> datetime:
        return _whole_seconds(moment)

    def stamp(self, moment: datetime, millis: bool = False) -> str:
        """ISO 8601 with the company's offset at that moment, as QBO writes MetaData."""
        return moment.astimezone(self.tz).isoformat(
            timespec="milliseconds" if millis else "seconds")

    def local_date(self, moment: datetime) -> date:
        return moment.astimezone(self.tz).date()

    def today(self) -> date:
        return self.local_date(self.clock())

    def currency_ref(self) -> dict[str, str]:
        return {"value": self.currency, "name": CURRENCY_NAMES.get(self.currency,
                                                                  self.currency)}

    def next_id(self, entity: str) -> str:
        sequence = "Txn" if entity in TRANSACTIONS else entity
        start = 100 if sequence == "Txn" else 0
        self.sequences[sequence] = self.sequences.get(sequence, start) + 1
        return str(self.sequences[sequence])

    def insert(self, entity: str, record: dict[str, Any], created: datetime,
               updated: datetime) -> dict[str, Any]:
        """Stores a new record (already validated) under the next Id."""
        record["Id"] = self.next_id(entity)
        record.setdefault("SyncToken", "0")
        record["_created"] = _whole_seconds(created)
        record["_updated"] = _whole_seconds(updated)
        self.records[entity][record["Id"]] = record
        return record

    def live(self, entity: str) -> list[dict[str, Any]]:
        return list(self.records[entity].values())

    def find(self, entity: str, record_id: Any) -> dict[str, Any]:
        found = self.records[entity].get(str(record_id).strip())
        if found is None:
            raise not_found()
        return found


@lru_cache(maxsize=32)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@dataclass
class Consent:
    consent_id: str
    client_id: str
    realm_id: str
    scope: str
    created: datetime
    revoked: bool = False


@dataclass
class RefreshToken:
    consent_id: str
    client_id: str
    issued: datetime
    expires: datetime
    first_used: datetime | None = None


@lru_cache(maxsize=1)
def _signing_key() -> tuple[rsa.RSAPrivateKey, str, dict[str, Any]]:
    """One RSA key per process: id_tokens are signed with it and jwks_uri publishes it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    numbers = key.public_key().public_numbers()

    def b64(number: int) -> str:
        raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    kid = hashlib.sha256(b64(numbers.n).encode()).hexdigest()[:20]
    jwk = {"kty": "RSA", "e": b64(numbers.e), "use": "sig", "kid": kid, "alg": "RS256",
           "n": b64(numbers.n)}
    return key, kid, jwk


# --- Rendering (stored record -> QBO JSON) ----------------------------------------------


def _applied(record: dict[str, Any]) -> Decimal:
    return sum(record.get("_applied", {}).values(), Decimal(0))


def render(company: Company, entity: str, record: dict[str, Any],
           link_base: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {k: copy.deepcopy(v) for k, v in record.items()
                           if not k.startswith("_") and k not in ("Id", "SyncToken")}
    if entity in TRANSACTIONS:
        customer = company.records["Customer"].get(record["CustomerRef"]["value"])
        if customer is not None:  # a renamed customer shows its new name everywhere
            out["CustomerRef"]["name"] = customer["DisplayName"]
    if entity in ("Invoice", "CreditMemo"):
        regular = [line for line in out["Line"] if line["DetailType"] != "DiscountLineDetail"]
        discounts = [line for line in out["Line"]
                     if line["DetailType"] == "DiscountLineDetail"]
        subtotal = sum((line["Amount"] for line in regular
                        if line["DetailType"] == "SalesItemLineDetail"), Decimal("0.00"))
        out["Line"] = [*regular, {"Amount": _money(subtotal), "DetailType": "SubTotalLineDetail",
                                  "SubTotalLineDetail": {}}, *discounts]
        balance = _money(record["TotalAmt"] - _applied(record))
        payments = [{"TxnId": pid, "TxnType": "Payment"} for pid in record["_applied"]]
        if entity == "Invoice":
            out["LinkedTxn"] = payments + ([{"TxnId": record["_estimate"], "TxnType": "Estimate"}]
                                           if record.get("_estimate") else [])
            out["Balance"] = balance
            if link_base is not None:
                out["InvoiceLink"] = f"{link_base}online/{company.realm_id}/{record['Id']}"
        else:
            out["LinkedTxn"] = payments
            out["RemainingCredit"] = balance
            out["Balance"] = balance
    elif entity == "Estimate":
        subtotal = sum((line["Amount"] for line in out["Line"]
                        if line["DetailType"] == "SalesItemLineDetail"), Decimal("0.00"))
        out["Line"] = [*out["Line"], {"Amount": _money(subtotal),
                                      "DetailType": "SubTotalLineDetail",
                                      "SubTotalLineDetail": {}}]
        out["LinkedTxn"] = [{"TxnId": i, "TxnType": "Invoice"} for i in record["_linked"]]
    elif entity == "Customer":
        balance = _customer_balance(company, record["Id"])
        out["Balance"] = balance
        out["BalanceWithJobs"] = balance
    out["domain"] = "QBO"
    out["sparse"] = False
    out["Id"] = record["Id"]
    out["SyncToken"] = record["SyncToken"]
    out["MetaData"] = {"CreateTime": company.stamp(record["_created"]),
                       "LastUpdatedTime": company.stamp(record["_updated"])}
    return out


def _customer_balance(company: Company, customer_id: str) -> Decimal:
    total = Decimal(0)
    for invoice in company.records["Invoice"].values():
        if invoice["CustomerRef"]["value"] == customer_id:
            total += invoice["TotalAmt"] - _applied(invoice)
    for memo in company.records["CreditMemo"].values():
        if memo["CustomerRef"]["value"] == customer_id:
            total -= memo["TotalAmt"] - _applied(memo)
    for payment in company.records["Payment"].values():
        if payment["CustomerRef"]["value"] == customer_id:
            total -= payment["UnappliedAmt"]
    return _money(total)


def deleted_stub(company: Company, record_id: str, when: datetime) -> dict[str, Any]:
    return {"domain": "QBO", "status": "Deleted", "Id": record_id,
            "MetaData": {"LastUpdatedTime": company.stamp(when)}}


# --- Reading request bodies -------------------------------------------------------------


def _decimal(value: Any, name: str) -> Decimal | None:
    """A JSON number (or numeric string) as Decimal; None/"" mean absent."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or isinstance(value, dict | list):
        raise bad_value(name, value)
    try:
        result = Decimal(str(value))
    except InvalidOperation as exc:
        raise bad_value(name, value) from exc
    if not result.is_finite():
        raise bad_value(name, value)
    return result


def _date(value: Any, name: str) -> date | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise bad_value(name, value, "java.util.Date")
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError as exc:
        raise bad_value(name, value, "java.util.Date") from exc


def _text(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool | dict | list):
        raise bad_value(name, value, "java.lang.String")
    return str(value)


def _bool(value: Any, name: str) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise bad_value(name, value, "java.lang.Boolean")


def _ref_id(value: Any, name: str) -> str | None:
    """A ReferenceType: {"value": "12", "name": ...} (a bare id is accepted too)."""
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        raw = value.get("value")
        if raw is None or raw == "":
            return None
        if isinstance(raw, bool | dict | list):
            raise bad_value(f"{name}.value", raw, "java.lang.String")
        return str(raw).strip()
    if isinstance(value, str | int) and not isinstance(value, bool):
        return str(value).strip()
    raise bad_value(name, value, "com.intuit.schema.finance.v3.ReferenceType")


def _email(value: Any, name: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, dict):
        raise bad_value(name, value, f"{SCHEMA}.EmailAddress")
    address = _text(value.get("Address"), f"{name}.Address")
    return address.strip() if address and address.strip() else None


def _check_fields(entity: str, body: dict[str, Any]) -> None:
    allowed = FIELDS[entity]
    for key in body:
        if key not in allowed:
            raise unsupported_property(entity, str(key))


def _sync_token(body: dict[str, Any], record: dict[str, Any], owner: str) -> None:
    given = body.get("SyncToken")
    if given is None or given == "":
        raise required("SyncToken")
    if isinstance(given, bool | dict | list) or not str(given).strip().isdigit():
        raise bad_value("SyncToken", given, "java.lang.String")
    if int(str(given).strip()) != int(record["SyncToken"]):
        raise stale(owner)


# --- The query language -----------------------------------------------------------------

_QUERY_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^'\\]|\\.)*')|(?P<op><=|>=|!=|<>|=|<|>)|(?P<punct>[(),*])"
    r"|(?P<num>-?\d+(?:\.\d+)?(?![A-Za-z_]))|(?P<word>[A-Za-z_][A-Za-z0-9_.]*))")
KEYWORDS = {"SELECT", "FROM", "WHERE", "AND", "OR", "IN", "LIKE", "ORDERBY", "ORDER", "BY",
            "ASC", "DESC", "STARTPOSITION", "MAXRESULTS", "COUNT", "NOT", "ITERATOR"}


@dataclass
class Token:
    kind: str
    text: str
    column: int

    def describe(self) -> str:
        if self.kind == "end":
            return '"<EOF>"'
        label = {"str": "STRING_LITERAL", "num": "INTEGER", "word": "IDENTIFIER"}.get(
            self.kind, "")
        if self.kind == "word" and self.text.upper() in KEYWORDS:
            label = self.text.upper()
        return f'" <{label}> "{self.text} ""' if label else f'" "{self.text} ""'


@dataclass
class Condition:
    path: str
    op: str
    values: list[Any]


@dataclass
class Query:
    entity: str
    count: bool
    fields: list[str] | None
    conditions: list[Condition]
    order: list[tuple[str, bool]]
    start: int
    limit: int


class QueryParser:
    """QBO's SQL subset: SELECT */COUNT(*)/fields FROM Entity [WHERE a op v AND ...]
    [ORDERBY f [ASC|DESC], ...] [STARTPOSITION n] [MAXRESULTS m]. No OR, no brackets."""

    def __init__(self, text: str, max_results: int) -> None:
        self.text = text
        self.max_results = max_results
        self.tokens: list[Token] = []
        position = 0
        while position < len(text):
            match = _QUERY_TOKEN.match(text, position)
            if match is None or match.end() == position:
                rest = text[position:]
                if not rest.strip():
                    break
                offset = len(rest) - len(rest.lstrip())
                bad = rest.lstrip()[0]
                raise parse_error(f"Invalid content. Lexical error at line 1, column "
                                  f"{position + offset + 1}.  Encountered: \"{bad}\" "
                                  f"({ord(bad)}), after : \"\"")
            kind = match.lastgroup or ""
            self.tokens.append(Token(kind, match.group(kind), match.start(kind) + 1))
            position = match.end()
        self.at = 0

    def peek(self) -> Token:
        if self.at < len(self.tokens):
            return self.tokens[self.at]
        return Token("end", "", len(self.text) + 1)

    def fail(self, expected: str) -> QboFault:
        token = self.peek()
        return parse_error(f"Encountered {token.describe()} at line 1, column {token.column}."
                           f"\nWas expecting one of:\n    {expected}")

    def keyword(self, *words: str) -> bool:
        token = self.peek()
        if token.kind == "word" and token.text.upper() in words:
            self.at += 1
            return True
        return False

    def expect_keyword(self, word: str) -> None:
        if not self.keyword(word):
            raise self.fail(f'"{word.lower()}" ...')

    def punct(self, char: str) -> bool:
        token = self.peek()
        if token.kind == "punct" and token.text == char:
            self.at += 1
            return True
        return False

    def name(self, what: str = "<IDENTIFIER> ...") -> str:
        token = self.peek()
        if token.kind != "word" or token.text.upper() in KEYWORDS:
            raise self.fail(what)
        self.at += 1
        return token.text

    def integer(self) -> int:
        token = self.peek()
        if token.kind != "num" or not token.text.lstrip("-").isdigit():
            raise self.fail("<INTEGER> ...")
        self.at += 1
        return int(token.text)

    def value(self) -> Any:
        token = self.peek()
        if token.kind == "str":
            self.at += 1
            return re.sub(r"\\(.)", r"\1", token.text[1:-1])
        if token.kind == "num":
            self.at += 1
            return Decimal(token.text)
        if token.kind == "word" and token.text.lower() in ("true", "false"):
            self.at += 1
            return token.text.lower() == "true"
        raise self.fail("<STRING_LITERAL> ...\n    <INTEGER> ...")

    def parse(self) -> Query:
        self.expect_keyword("SELECT")
        count = False
        fields: list[str] | None = None
        if self.keyword("COUNT"):
            if not (self.punct("(") and self.punct("*") and self.punct(")")):
                raise self.fail('"(*)" ...')
            count = True
        elif self.punct("*"):
            while self.punct(","):
                self.name()  # "SELECT *, Sku FROM Item": the extra fields change nothing
        else:
            fields = [self.name('"*" ...\n    <IDENTIFIER> ...')]
            while self.punct(","):
                fields.append(self.name())
        self.expect_keyword("FROM")
        entity = self.name()
        conditions: list[Condition] = []
        if self.keyword("WHERE"):
            conditions.append(self.condition())
            while True:
                if self.keyword("AND"):
                    conditions.append(self.condition())
                    continue
                if self.peek().kind == "word" and self.peek().text.upper() == "OR":
                    raise self.fail('<EOF> \n    <AND> ...\n    "orderby" ...\n    '
                                    '"startposition" ...\n    "maxresults" ...')
                break
        order: list[tuple[str, bool]] = []
        if self.keyword("ORDERBY") or (self.keyword("ORDER") and self.keyword("BY")):
            while True:
                path = self.name()
                descending = False
                if self.keyword("DESC"):
                    descending = True
                else:
                    self.keyword("ASC")
                order.append((path, descending))
                if not self.punct(","):
                    break
        start, limit = 1, 100
        if self.keyword("STARTPOSITION"):
            start = max(1, self.integer())
        if self.keyword("MAXRESULTS"):
            limit = self.integer()
            if limit < 1:
                raise query_invalid("MAXRESULTS must be a positive number")
            limit = min(limit, self.max_results)
        if self.peek().kind != "end":
            raise self.fail('<EOF> \n    <AND> ...\n    "orderby" ...\n    "startposition" ...'
                            '\n    "maxresults" ...')
        return Query(entity, count, fields, conditions, order, start, limit)

    def condition(self) -> Condition:
        path = self.name()
        if self.keyword("IN"):
            if not self.punct("("):
                raise self.fail('"(" ...')
            values = [self.value()]
            while self.punct(","):
                values.append(self.value())
            if not self.punct(")"):
                raise self.fail('")" ...\n    "," ...')
            return Condition(path, "IN", values)
        if self.keyword("LIKE"):
            pattern = self.value()
            if not isinstance(pattern, str):
                raise self.fail("<STRING_LITERAL> ...")
            return Condition(path, "LIKE", [pattern])
        token = self.peek()
        if token.kind != "op":
            raise self.fail('"=" ...\n    "<" ...\n    ">" ...\n    "<=" ...\n    ">=" ...'
                            '\n    "in" ...\n    "like" ...')
        self.at += 1
        return Condition(path, "!=" if token.text == "<>" else token.text, [self.value()])


def _lookup(record: Any, path: str) -> Any:
    """Dotted paths, case-insensitive; a ReferenceType compares by its value."""
    value = record
    for step in path.split("."):
        if not isinstance(value, dict):
            return None
        wanted = step.lower()
        value = next((v for k, v in value.items() if k.lower() == wanted), None)
    if isinstance(value, dict) and "value" in value:
        return value["value"]
    return value


_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_moment(text: str, company: Company) -> datetime:
    """ISO 8601 with or without offset (without: company time), or a bare date."""
    cleaned = text.strip().replace("Z", "+00:00")
    parsed = datetime.fromisoformat(cleaned)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=company.tz)
    return parsed.astimezone(UTC)


class Matcher:
    """Type-directed comparison: numbers as numbers, dates as dates, times as instants."""

    def __init__(self, company: Company, condition: Condition) -> None:
        self.company, self.condition = company, condition

    def key(self, value: Any, sample: Any) -> Any:
        """Converts a literal to the type of the field's value (`sample`)."""
        name = self.condition.path
        try:
            if isinstance(sample, bool):
                if isinstance(value, bool):
                    return value
                if str(value).lower() in ("true", "false"):
                    return str(value).lower() == "true"
                raise ValueError
            if isinstance(sample, Decimal | int):
                return Decimal(str(value))
            if isinstance(sample, str) and _DATETIME.match(sample):
                return parse_moment(str(value), self.company)
            if isinstance(sample, str) and _DATE.match(sample):
                return date.fromisoformat(str(value)[:10])
            if isinstance(sample, str) and sample.isdigit() and str(value).strip().isdigit():
                return int(str(value))
            if isinstance(value, bool | Decimal):
                raise ValueError
            return str(value).casefold()
        except (ValueError, InvalidOperation) as exc:
            raise query_invalid(f"value {value} is not valid for property {name}") from exc

    def field(self, sample: Any) -> Any:
        if isinstance(sample, bool | Decimal | int):
            return sample
        if isinstance(sample, str) and _DATETIME.match(sample):
            return parse_moment(sample, self.company)
        if isinstance(sample, str) and _DATE.match(sample):
            return date.fromisoformat(sample)
        if isinstance(sample, str) and sample.isdigit():
            return int(sample)
        return str(sample).casefold()

    def __call__(self, record: dict[str, Any]) -> bool:
        sample = _lookup(record, self.condition.path)
        if sample is None or isinstance(sample, dict | list):
            return False
        op, values = self.condition.op, self.condition.values
        if op == "LIKE":
            pattern = "^" + ".*".join(re.escape(p) for p in str(values[0]).split("%")) + "$"
            return re.match(pattern, str(sample), re.IGNORECASE | re.DOTALL) is not None
        have = self.field(sample)
        wanted = [self.key(v, sample) for v in values]
        if isinstance(have, int) and not isinstance(have, bool) and \
                any(not isinstance(w, int) for w in wanted):
            have, wanted = str(sample).casefold(), [str(v).casefold() for v in values]
        if op == "IN":
            return have in wanted
        target = wanted[0]
        try:
            return bool({"=": have == target, "!=": have != target, "<": have < target,
                         ">": have > target, "<=": have <= target, ">=": have >= target}[op])
        except TypeError as exc:
            raise query_invalid(f"value {values[0]} is not valid for property "
                                f"{self.condition.path}") from exc


def _sort_key(value: Any, company: Company) -> tuple[int, Any]:
    if value is None or isinstance(value, dict | list):
        return (2, 0)
    if isinstance(value, bool):
        return (0, int(value))
    if isinstance(value, Decimal | int):
        return (0, value)
    text = str(value)
    if _DATETIME.match(text):
        return (0, parse_moment(text, company).timestamp())
    if text.isdigit():
        return (0, int(text))
    return (1, text.casefold())


# --- The sandbox ------------------------------------------------------------------------


class QuickBooksSandbox:
    """All state, in memory, thread-safe (one threading.RLock)."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.lock = threading.RLock()
        self.companies_by_id: dict[str, Company] = {}
        self.codes: dict[str, dict[str, Any]] = {}
        self.consents: dict[str, Consent] = {}
        self.access_tokens: dict[str, dict[str, Any]] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.minute_calls: dict[str, deque[datetime]] = {}
        self.batch_calls: dict[str, deque[datetime]] = {}
        self.in_flight: dict[str, int] = {}
        self.call_count: dict[str, int] = {}
        self.link_secret = secrets.token_bytes(16)
        self._realm_rng = random.Random(f"realms-{self.config.seed}")
        self.user_sub = str(uuid.UUID(int=random.Random(f"user-{self.config.seed}")
                                      .getrandbits(128), version=4))
        self.webhooks = IntuitWebhooks(self)  # start() once webhook_url is set

    @property
    def now(self) -> datetime:
        return self.config.clock()

    # companies and seed data

    def add_company(self, name: str, country: str, currency: str, timezone: str, *,
                    realm_id: str | None = None, created: datetime | None = None,
                    city: str = "", postal_code: str = "", address_line: str = "",
                    region: str = "", email: str = "", phone: str = "") -> str:
        _zone(timezone)  # an unknown zone fails here, not on the first answer
        with self.lock:
            if realm_id is None:
                realm_id = "9341" + "".join(str(self._realm_rng.randint(0, 9))
                                            for _ in range(12))
            slug = "".join(ch for ch in name.lower() if ch.isalnum())[:20]
            self.companies_by_id[realm_id] = Company(
                realm_id, name, country, currency, timezone,
                _whole_seconds(created or self.now), self.config.clock, city=city,
                postal_code=postal_code, address_line=address_line, region=region,
                email=email or f"office.{slug}@example.com", phone=phone,
                owner=f"{self.config.owner_given_name} {self.config.owner_family_name}")
            return realm_id

    def seed_demo(self, today: date) -> None:
        with self.lock:
            for index, (name, country, currency, zone, city, postal, line, region, phone) in \
                    enumerate((
                        ("Craig's Design and Landscaping Services", "US", "USD",
                         "America/Los_Angeles", "San Pablo", "87999", "123 Sierra Way", "CA",
                         "(650) 555-0142"),
                        ("Thistle & Thorn Garden Studio Ltd", "GB", "GBP", "Europe/London",
                         "York", "YO1 7HH", "14 Minster Yard", "", "01632 960123"))):
                realm = self.add_company(
                    name, country, currency, zone, city=city, postal_code=postal,
                    address_line=line, region=region, phone=phone,
                    created=datetime.combine(today.replace(year=today.year - 3, day=1),
                                             time(17), tzinfo=UTC))
                seed_company(self.companies_by_id[realm], today, seed=self.config.seed + index)

    def reset(self, today: date | None = None) -> None:
        """Fresh demo books (same realm ids for the same seed); connections stay."""
        with self.lock:
            self.companies_by_id.clear()
            self.minute_calls.clear()
            self.batch_calls.clear()
            self.call_count.clear()
            self._realm_rng = random.Random(f"realms-{self.config.seed}")
            self.seed_demo(today or self.now.date())

    def company(self, realm_id: str) -> Company:
        found = self.companies_by_id.get(realm_id)
        if found is None:
            raise KeyError(f"no company {realm_id}")
        return found

    # introspection

    def companies(self) -> list[dict[str, Any]]:
        with self.lock:
            return [{"realmId": c.realm_id, "CompanyName": c.name, "Country": c.country,
                     "HomeCurrency": c.currency, "DefaultTimeZone": c.timezone}
                    for c in self.companies_by_id.values()]

    def _rendered(self, realm_id: str, entity: str) -> list[dict[str, Any]]:
        with self.lock:
            company = self.company(realm_id)
            return [render(company, entity, r) for r in company.live(entity)]

    def invoices(self, realm_id: str) -> list[dict[str, Any]]:
        return self._rendered(realm_id, "Invoice")

    def customers(self, realm_id: str) -> list[dict[str, Any]]:
        return self._rendered(realm_id, "Customer")

    def payments(self, realm_id: str) -> list[dict[str, Any]]:
        return self._rendered(realm_id, "Payment")

    def items(self, realm_id: str) -> list[dict[str, Any]]:
        return self._rendered(realm_id, "Item")

    def accounts(self, realm_id: str) -> list[dict[str, Any]]:
        return self._rendered(realm_id, "Account")

    def credit_memos(self, realm_id: str) -> list[dict[str, Any]]:
        return self._rendered(realm_id, "CreditMemo")

    def emails(self, realm_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(e) for e in self.company(realm_id).emails]

    def requests(self, realm_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [copy.deepcopy(r) for r in self.company(realm_id).requests]

    def calls(self, realm_id: str | None = None) -> int:
        with self.lock:
            if realm_id is None:
                return sum(self.call_count.values())
            return self.call_count.get(realm_id, 0)

    def expire_access_tokens(self) -> None:
        with self.lock:
            for token in self.access_tokens.values():
                token["expires_at"] = self.now - timedelta(seconds=1)

    def revoke_all(self, realm_id: str) -> None:
        """The owner disconnects every app from the company inside QuickBooks."""
        with self.lock:
            for consent in self.consents.values():
                if consent.realm_id == realm_id:
                    consent.revoked = True

    # changes made "in QuickBooks" by people, for tests and the demo

    def create(self, realm_id: str, entity: str, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            company = self.company(realm_id)
            return self.save(company, entity, copy.deepcopy(body))[entity]

    def pay_invoice(self, realm_id: str, invoice_id: str, amount: Decimal | str,
                    on: date | None = None) -> dict[str, Any]:
        """A customer pays: a Payment applied to the invoice, which moves its Balance,
        LinkedTxn, SyncToken and LastUpdatedTime."""
        with self.lock:
            company = self.company(realm_id)
            invoice = company.records["Invoice"].get(str(invoice_id))
            if invoice is None:
                raise KeyError(f"no invoice {invoice_id}")
            paid = _money(Decimal(str(amount)))
            balance = invoice["TotalAmt"] - _applied(invoice)
            if invoice.get("_voided") or not 0 < paid <= balance:
                raise ValueError(f"a payment must be positive and at most the balance "
                                 f"({balance}) of a live invoice")
            body = {"CustomerRef": {"value": invoice["CustomerRef"]["value"]},
                    "TotalAmt": paid, "TxnDate": (on or company.today()).isoformat(),
                    "Line": [{"Amount": paid, "LinkedTxn": [{"TxnId": invoice["Id"],
                                                             "TxnType": "Invoice"}]}]}
            return self.save(company, "Payment", body)["Payment"]

    def update_invoice(self, realm_id: str, invoice_id: str, **fields: Any) -> dict[str, Any]:
        """A bookkeeper's edit in QuickBooks: a sparse update with QBO field names."""
        with self.lock:
            company = self.company(realm_id)
            invoice = company.find("Invoice", invoice_id)
            body = {**copy.deepcopy(fields), "Id": invoice["Id"],
                    "SyncToken": invoice["SyncToken"], "sparse": True}
            return self.save(company, "Invoice", body)["Invoice"]

    # the API's operations (callers hold the lock)

    def touch(self, record: dict[str, Any]) -> None:
        record["SyncToken"] = str(int(record["SyncToken"]) + 1)
        record["_updated"] = max(_whole_seconds(self.now), record["_updated"])

    def read(self, company: Company, entity: str, record_id: str,
             link_base: str | None = None) -> dict[str, Any]:
        return render(company, entity, company.find(entity, record_id), link_base)

    def save(self, company: Company, entity: str, body: Any, operation: str | None = None,
             include: str = "", link_base: str | None = None) -> dict[str, Any]:
        """Create (no Id) or update (Id + SyncToken, sparse or full); delete and void."""
        if not isinstance(body, dict):
            raise bad_json()
        if operation == "delete":
            return self.delete(company, entity, body)
        if operation == "void" or (operation == "update" and "void" in include.split(",")):
            return self.void(company, entity, body, link_base)
        if operation not in (None, "", "create", "update"):
            raise unsupported_operation(f"{operation} on {entity}")
        _check_fields(entity, body)
        record_id = body.get("Id")
        if record_id not in (None, "", 0, "0"):
            current = company.find(entity, record_id)
            _sync_token(body, current, company.owner)
            sparse = _bool(body.get("sparse"), "sparse") is True
            updated = BUILDERS[entity](self, company, body, current, sparse)
            self._commit(company, entity, current, updated)
            record = current
        else:
            record = BUILDERS[entity](self, company, body, None, False)
            now = self.now
            company.insert(entity, record, now, now)
            self._after_insert(company, entity, record)
        return {entity: render(company, entity, record, link_base)}

    def _commit(self, company: Company, entity: str, current: dict[str, Any],
                updated: dict[str, Any]) -> None:
        if entity == "Payment":
            self._apply_payment(company, current["Id"], current["_applied"],
                                updated["_applied"])
        current.clear()
        current.update(updated)
        self.touch(current)

    def _after_insert(self, company: Company, entity: str, record: dict[str, Any]) -> None:
        if entity == "Payment":
            self._apply_payment(company, record["Id"], {}, record["_applied"])
        if entity == "Invoice" and record.get("_estimate"):
            self._link_estimate(company, record)

    def _link_estimate(self, company: Company, invoice: dict[str, Any]) -> None:
        """An invoice made from an estimate: both list each other in LinkedTxn, and the
        estimate is Closed once its invoices reach its total (progress invoicing: a deposit
        invoice leaves it open; UNVERIFIED in detail)."""
        estimate = company.find("Estimate", invoice["_estimate"])
        estimate["_linked"].append(invoice["Id"])
        invoiced = sum((company.records["Invoice"][i]["TotalAmt"] for i in estimate["_linked"]
                        if i in company.records["Invoice"]), Decimal(0))
        if invoiced >= estimate["TotalAmt"]:
            estimate["TxnStatus"] = "Closed"
        self.touch(estimate)

    def set_estimate_status(self, realm_id: str, estimate_id: str, status: str,
                            accepted_by: str | None = None) -> dict[str, Any]:
        """The customer accepts or rejects an estimate in QuickBooks (a sparse update)."""
        with self.lock:
            company = self.company(realm_id)
            estimate = company.find("Estimate", estimate_id)
            body: dict[str, Any] = {"Id": estimate["Id"], "SyncToken": estimate["SyncToken"],
                                    "sparse": True, "TxnStatus": status}
            if status == "Accepted":
                body["AcceptedDate"] = company.today().isoformat()
                body["AcceptedBy"] = accepted_by or estimate["CustomerRef"]["name"]
            return self.save(company, "Estimate", body)["Estimate"]

    def _apply_payment(self, company: Company, payment_id: str,
                       before: dict[tuple[str, str], Decimal],
                       after: dict[tuple[str, str], Decimal]) -> None:
        """Moves each linked invoice's or credit memo's applied amount; what changed is
        bumped (SyncToken, LastUpdatedTime)."""
        for key in dict.fromkeys([*before, *after]):
            old, new = before.get(key, Decimal(0)), after.get(key, Decimal(0))
            if old == new:
                continue
            target = company.records[key[0]].get(key[1])
            if target is None:
                continue
            if new:
                target["_applied"][payment_id] = new
            else:
                target["_applied"].pop(payment_id, None)
            self.touch(target)

    def delete(self, company: Company, entity: str, body: dict[str, Any]) -> dict[str, Any]:
        if entity not in TRANSACTIONS:
            raise unsupported_operation(f"Delete for {entity}")
        record = company.find(entity, body.get("Id"))
        _sync_token(body, record, company.owner)
        if entity in ("Invoice", "CreditMemo") and record["_applied"]:
            raise business(f"This {entity.lower()} has payments applied to it and can't be "
                           "deleted. Delete or change the payments first.")
        if entity == "Payment":
            self._apply_payment(company, record["Id"], record["_applied"], {})
        del company.records[entity][record["Id"]]
        company.deleted[entity][record["Id"]] = max(_whole_seconds(self.now),
                                                    record["_updated"])
        return {entity: {"domain": "QBO", "status": "Deleted", "Id": record["Id"]}}

    def void(self, company: Company, entity: str, body: dict[str, Any],
             link_base: str | None) -> dict[str, Any]:
        if entity not in ("Invoice", "Payment"):
            raise unsupported_operation(f"Void for {entity}")
        record = company.find(entity, body.get("Id"))
        _sync_token(body, record, company.owner)
        if record.get("_voided"):
            raise business("This transaction has already been voided.")
        if entity == "Invoice":
            if record["_applied"]:
                raise business("This invoice has payments applied to it and can't be voided. "
                               "Delete or change the payments first.")
            for line in record["Line"]:
                if "Amount" in line:
                    line["Amount"] = Decimal("0.00")
                detail = line.get("SalesItemLineDetail")
                if detail is not None:
                    detail["Qty"] = Decimal(0)
        else:
            self._apply_payment(company, record["Id"], record["_applied"], {})
            record["_applied"] = {}
            for line in record["Line"]:
                line["Amount"] = Decimal("0.00")
            record["UnappliedAmt"] = Decimal("0.00")
        record["TotalAmt"] = Decimal("0.00")
        record["PrivateNote"] = "Voided"
        record["_voided"] = True
        self.touch(record)
        return {entity: render(company, entity, record, link_base)}

    def send(self, company: Company, invoice_id: str, send_to: str | None,
             link_base: str | None = None) -> dict[str, Any]:
        invoice = company.find("Invoice", invoice_id)
        address = (send_to or "").strip() or (invoice.get("BillEmail") or {}).get("Address")
        if not address:
            raise business("The invoice has no email address to send it to. Add a BillEmail "
                           "address or give sendTo.", "BillEmail")
        if not EMAIL.match(address):
            raise business(f"The email address {address} is not valid.", "sendTo")
        today = company.today()
        sent_today = sum(1 for e in company.emails if e["_day"] == today)
        if sent_today >= self.config.emails_per_day:
            raise business(f"This company has sent {sent_today} emails today, the daily limit "
                           "for sandbox companies. Try again tomorrow.")
        now = _whole_seconds(self.now)
        company.emails.append({"realmId": company.realm_id, "InvoiceId": invoice["Id"],
                               "DocNumber": invoice.get("DocNumber"), "To": address,
                               "SentAt": company.stamp(now), "_day": today})
        if send_to:
            invoice["BillEmail"] = {"Address": address}
        invoice["EmailStatus"] = "EmailSent"
        invoice["DeliveryInfo"] = {"DeliveryType": "Email", "DeliveryTime": company.stamp(now)}
        self.touch(invoice)
        return {"Invoice": render(company, "Invoice", invoice, link_base)}

    def company_info(self, company: Company) -> dict[str, Any]:
        address = {"Id": "1", "Line1": company.address_line, "City": company.city,
                   "Country": company.country, "PostalCode": company.postal_code,
                   **({"CountrySubDivisionCode": company.region} if company.region else {})}
        created = company.created
        return {
            "CompanyName": company.name, "LegalName": company.name, "CompanyAddr": address,
            "CustomerCommunicationAddr": dict(address), "LegalAddr": dict(address),
            "CustomerCommunicationEmailAddr": {"Address": company.email},
            "PrimaryPhone": {"FreeFormNumber": company.phone},
            "CompanyStartDate": company.local_date(created).isoformat(),
            "FiscalYearStartMonth": "January", "Country": company.country,
            "Email": {"Address": company.email}, "WebAddr": {},
            "SupportedLanguages": "en", "DefaultTimeZone": company.timezone,
            "NameValue": [{"Name": "NeoEnabled", "Value": "true"},
                          {"Name": "IsQbdtMigrated", "Value": "false"},
                          {"Name": "SubscriptionStatus", "Value": "SUBSCRIBED"},
                          {"Name": "OfferingSku", "Value": "QuickBooks Online Plus"},
                          {"Name": "PayrollFeature", "Value": "false"},
                          {"Name": "AccountantFeature", "Value": "false"}],
            "domain": "QBO", "sparse": False, "Id": "1", "SyncToken": "0",
            "MetaData": {"CreateTime": company.stamp(created),
                         "LastUpdatedTime": company.stamp(created)}}

    def preferences(self, company: Company) -> dict[str, Any]:
        created = company.created
        return {
            "AccountingInfoPrefs": {"TrackDepartments": False, "ClassTrackingPerTxn": False,
                                    "ClassTrackingPerTxnLine": False,
                                    "CustomerTerminology": "Customers", "UseAccountNumbers":
                                    False, "FirstMonthOfFiscalYear": "January"},
            "ProductAndServicesPrefs": {"ForSales": True, "ForPurchase": True,
                                        "QuantityWithPriceAndRate": True,
                                        "QuantityOnHand": True},
            "SalesFormsPrefs": {"CustomTxnNumbers": False, "AllowDeposit": False,
                                "AllowDiscount": True, "AllowEstimates": True,
                                "AllowServiceDate": False, "AllowShipping": False,
                                "DefaultTerms": {"value": "3"}, "ETransactionEnabledStatus":
                                "NotApplicable", "ETransactionAttachPDF": False,
                                "ETransactionPaymentEnabled": False, "IPNSupportEnabled": False,
                                "AutoApplyCredit": False, "AutoApplyPayments": False,
                                "PrintItemWithZeroAmount": False, "UsingPriceLevels": False,
                                "UsingProgressInvoicing": False},
            "EmailMessagesPrefs": {"InvoiceMessage": {
                "Subject": f"Invoice [Invoice No.] from {company.name}",
                "Message": "Dear [Full Name],\n\nWe appreciate your business. Please find your "
                           "invoice details here. Feel free to contact us if you have any "
                           f"questions.\n\nHave a great day!\n{company.name}"}},
            "VendorAndPurchasesPrefs": {"TrackingByCustomer": False, "BillableExpenseTracking":
                                        False, "POCustomField": []},
            "TimeTrackingPrefs": {"UseServices": False, "WorkWeekStartDate": "Monday",
                                  "MarkTimeEntriesBillable": False},
            "TaxPrefs": {"UsingSalesTax": False},
            "CurrencyPrefs": {"MultiCurrencyEnabled": False,
                              "HomeCurrency": {"value": company.currency}},
            "ReportPrefs": {"ReportBasis": "Accrual", "CalcAgingReportFromTxnDate": False},
            "OtherPrefs": {"NameValue": [{"Name": "SalesFormsPrefs.DefaultCustomerMessage",
                                          "Value": "Thank you for your business."}]},
            "domain": "QBO", "sparse": False, "Id": "1", "SyncToken": "0",
            "MetaData": {"CreateTime": company.stamp(created),
                         "LastUpdatedTime": company.stamp(created)}}

    def query(self, company: Company, text: str, link_base: str | None = None
              ) -> dict[str, Any]:
        parsed = QueryParser(text or "", self.config.query_max_results).parse()
        entity = next((e for e in (*ENTITIES, *SINGLETONS)
                       if e.lower() == parsed.entity.lower()), None)
        if entity is None:
            raise query_invalid(f"Invalid entity name: {parsed.entity}")
        known = FIELDS[entity]
        for path in [c.path for c in parsed.conditions] + [p for p, _ in parsed.order] + \
                (parsed.fields or []):
            top = path.split(".")[0]
            if top.lower() not in {f.lower() for f in known}:
                raise query_invalid(f"property '{top}' is not queryable")
        if entity == "CompanyInfo":
            rows = [self.company_info(company)]
        elif entity == "Preferences":
            rows = [self.preferences(company)]
        else:
            rows = [render(company, entity, r, link_base) for r in company.live(entity)]
        if entity in ("Customer", "Item", "Account") and not any(
                c.path.lower() == "active" for c in parsed.conditions):
            rows = [r for r in rows if r.get("Active", True)]
        for condition in parsed.conditions:
            matcher = Matcher(company, condition)
            rows = [r for r in rows if matcher(r)]
        if parsed.count:
            return {"totalCount": len(rows)}
        rows.sort(key=lambda r: int(r["Id"]) if str(r["Id"]).isdigit() else 0)
        for path, descending in reversed(parsed.order):
            rows.sort(key=lambda r, p=path: _sort_key(_lookup(r, p), company),  # type: ignore[misc]
                      reverse=descending)
        chunk = rows[parsed.start - 1:parsed.start - 1 + parsed.limit]
        if parsed.fields is not None:
            wanted = {f.lower() for f in parsed.fields} | {"id"}
            chunk = [{**{k: v for k, v in r.items() if k.lower() in wanted},
                      "domain": "QBO", "sparse": True} for r in chunk]
        if not chunk:
            return {}
        return {entity: chunk, "startPosition": parsed.start, "maxResults": len(chunk)}

    def cdc(self, company: Company, entities: str | None, changed_since: str | None
            ) -> dict[str, Any]:
        if not entities or not entities.strip():
            raise required("entities")
        if not changed_since or not changed_since.strip():
            raise required("changedSince")
        try:
            since = parse_moment(changed_since, company)
        except ValueError as exc:
            raise bad_value("changedSince", changed_since, "java.util.Date") from exc
        names: list[str] = []
        for raw in entities.split(","):
            name = raw.strip()
            if not name:
                continue
            canonical = next((e for e in ENTITIES if e.lower() == name.lower()), None)
            if canonical is None and name.lower() in NO_CDC:
                raise unsupported_operation(f"cdc for entity {name}")
            if canonical is None:
                canonical = OTHER_CDC.get(name.lower())
            if canonical is None:
                raise query_invalid(f"Invalid entity name: {name}")
            if canonical not in names:
                names.append(canonical)
        if since < self.now - timedelta(days=self.config.cdc_max_days):
            raise unsupported_operation(f"cdc with changedSince date {changed_since} which is "
                                        "older than fixed days")
        changed: list[tuple[datetime, int, int, str, dict[str, Any]]] = []
        for order, name in enumerate(names):
            if name not in ENTITIES:
                continue
            for record in company.live(name):
                if record["_updated"] > since:
                    changed.append((record["_updated"], order, 0, record["Id"],
                                    render(company, name, record)))
            for record_id, when in company.deleted[name].items():
                if when > since:
                    changed.append((when, order, 1, record_id,
                                    deleted_stub(company, record_id, when)))
        changed.sort(key=lambda c: (c[0], c[1], c[2], int(c[3]) if c[3].isdigit() else 0))
        kept = changed[:self.config.cdc_max_objects]
        groups: list[dict[str, Any]] = []
        for order, name in enumerate(names):
            mine = sorted((c for c in kept if c[1] == order), key=lambda c: (c[2], c[0]))
            if mine:
                groups.append({name: [c[4] for c in mine], "startPosition": 1,
                               "maxResults": len(mine)})
            else:
                groups.append({})
        return {"CDCResponse": [{"QueryResponse": groups}]}

    def batch(self, company: Company, body: Any, link_base: str | None) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("BatchItemRequest"), list):
            raise required("BatchItemRequest")
        items = body["BatchItemRequest"]
        if not items:
            raise required("BatchItemRequest")
        if len(items) > self.config.batch_max_items:
            raise business(f"A batch request can have at most {self.config.batch_max_items} "
                           f"BatchItemRequest items; this one has {len(items)}.")
        answers: list[dict[str, Any]] = []
        for item in items:
            bid = str(item.get("bId", "")) if isinstance(item, dict) else ""
            try:
                answers.append({"bId": bid, **self._batch_item(company, item, link_base)})
            except QboFault as fault:
                answers.append({"bId": bid, "Fault": fault.body()})
        return {"BatchItemResponse": answers}

    def _batch_item(self, company: Company, item: Any, link_base: str | None
                    ) -> dict[str, Any]:
        if not isinstance(item, dict):
            raise bad_json()
        if not item.get("bId"):
            raise required("bId")
        if "Query" in item:
            if not isinstance(item["Query"], str):
                raise bad_value("Query", item["Query"], "java.lang.String")
            return {"QueryResponse": self.query(company, item["Query"], link_base)}
        found = [e for e in ENTITIES if e in item]
        if len(found) != 1:
            raise required("IntuitObject")
        entity = found[0]
        operation = str(item.get("operation") or "")
        if operation not in ("create", "update", "delete"):
            raise unsupported_operation(f"{operation or 'without an operation'} in a batch")
        payload = item[entity]
        if not isinstance(payload, dict):
            raise bad_json()
        if operation == "create" and payload.get("Id") not in (None, "", 0, "0"):
            raise business("An object to create must not carry an Id.")
        if operation == "update" and payload.get("Id") in (None, "", 0, "0"):
            raise required("Id")
        return self.save(company, entity, payload,
                         "delete" if operation == "delete" else None, link_base=link_base)


# --- Entity rules -----------------------------------------------------------------------


def _resolve(company: Company, entity: str, value: Any, element: str,
             required_here: bool = True) -> dict[str, Any] | None:
    ref = _ref_id(value, element)
    if ref is None:
        if required_here:
            raise required(element)
        return None
    found = company.records[entity].get(ref)
    if found is None:
        raise invalid_reference(element, element if entity == "Item" else INACTIVE_DETAIL)
    if found.get("Active") is False:
        raise invalid_reference(element)
    return found


def _name_ref(record: dict[str, Any], key: str = "Name") -> dict[str, str]:
    return {"value": record["Id"], "name": record[key]}


def _check_currency(company: Company, body: dict[str, Any]) -> None:
    given = _ref_id(body.get("CurrencyRef"), "CurrencyRef")
    if given is not None and given.upper() != company.currency:
        raise business(f"Multicurrency is not turned on for this company; the currency must "
                       f"be {company.currency}.", "CurrencyRef")


def _price_lines(company: Company, entity: str, given: Any, previous: list[dict[str, Any]],
                 next_line: int) -> tuple[list[dict[str, Any]], Decimal, int]:
    """Line amounts and the total (sales lines less discounts), as QBO computes them."""
    if given is None or given == [] or given == "":
        raise required("Line")
    if not isinstance(given, list):
        raise bad_value("Line", given, "java.util.ArrayList")
    known_ids = {str(line.get("Id")) for line in previous if line.get("Id")}
    used: set[str] = set()
    regular: list[dict[str, Any]] = []
    discounts: list[tuple[dict[str, Any], Decimal | None]] = []
    subtotal = Decimal(0)
    us = company.country == "US"
    for raw in given:
        if not isinstance(raw, dict):
            raise bad_value("Line", raw, f"{SCHEMA}.Line")
        kind = raw.get("DetailType")
        if kind == "SubTotalLineDetail":
            continue  # computed, so sending it back changes nothing
        if not kind:
            raise required("Line.DetailType")
        raw_id = str(raw.get("Id")) if raw.get("Id") not in (None, "") else None
        if raw_id is not None and raw_id in known_ids and raw_id not in used:
            line_id = raw_id
        else:
            line_id = str(next_line)
            next_line += 1
        used.add(line_id)
        description = _text(raw.get("Description"), "Line.Description")
        if kind == "SalesItemLineDetail":
            detail = raw.get("SalesItemLineDetail")
            if not isinstance(detail, dict):
                raise required("Line.SalesItemLineDetail")
            item_ref = detail.get("ItemRef")
            if _ref_id(item_ref, "Line.SalesItemLineDetail.ItemRef") is None:
                item = next((i for i in company.records["Item"].values()
                             if i["Name"] == "Services" and i.get("Active", True)), None)
                if item is None:
                    raise required("Line.SalesItemLineDetail.ItemRef")
            else:
                item = _resolve(company, "Item", item_ref, "Line.SalesItemLineDetail.ItemRef")
                assert item is not None
            qty = _decimal(detail.get("Qty"), "Line.SalesItemLineDetail.Qty")
            price = _decimal(detail.get("UnitPrice"), "Line.SalesItemLineDetail.UnitPrice")
            amount = _decimal(raw.get("Amount"), "Line.Amount")
            if amount is None:
                if qty is None or price is None:
                    raise required("Line.Amount")
                amount = _money(qty * price)
            else:
                amount = _money(amount)
                if qty and price:
                    if _money(qty * price) != amount:
                        raise QboFault("6070", "Amount calculation incorrect in the request",
                                       "Business Validation Error: Amount is not equal to "
                                       f"UnitPrice * Qty. Supplied value:{amount}",
                                       "Line.Amount")
                elif price:
                    qty = amount / price
                elif qty:
                    price = amount / qty
                else:
                    qty, price = Decimal(1), amount
            assert qty is not None and price is not None
            tax = _ref_id(detail.get("TaxCodeRef"), "Line.SalesItemLineDetail.TaxCodeRef")
            line_detail: dict[str, Any] = {
                "ItemRef": _name_ref(item), "UnitPrice": _plain(price), "Qty": _plain(qty),
                "ItemAccountRef": dict(item.get("IncomeAccountRef") or {})}
            if tax or us:
                line_detail["TaxCodeRef"] = {"value": tax or "NON"}
            service_date = _date(detail.get("ServiceDate"),
                                 "Line.SalesItemLineDetail.ServiceDate")
            if service_date is not None:
                line_detail["ServiceDate"] = service_date.isoformat()
            line: dict[str, Any] = {"Id": line_id, "Amount": amount,
                                    "DetailType": "SalesItemLineDetail",
                                    "SalesItemLineDetail": line_detail}
            text = description if description is not None else item.get("Description")
            if text:
                line["Description"] = text
            subtotal += amount
            regular.append(line)
        elif kind in ("DescriptionOnly", "DescriptionLineDetail"):
            detail = raw.get("DescriptionLineDetail") or {}
            if not isinstance(detail, dict):
                raise bad_value("Line.DescriptionLineDetail", detail, f"{SCHEMA}.Line")
            out_detail: dict[str, Any] = {}
            service_date = _date(detail.get("ServiceDate"), "Line.DescriptionLineDetail."
                                 "ServiceDate")
            if service_date is not None:
                out_detail["ServiceDate"] = service_date.isoformat()
            line = {"Id": line_id, "DetailType": "DescriptionOnly",
                    "DescriptionLineDetail": out_detail}
            if description:
                line["Description"] = description
            regular.append(line)
        elif kind == "DiscountLineDetail":
            detail = raw.get("DiscountLineDetail") or {}
            if not isinstance(detail, dict):
                raise bad_value("Line.DiscountLineDetail", detail, f"{SCHEMA}.Line")
            percent_based = _bool(detail.get("PercentBased"),
                                  "Line.DiscountLineDetail.PercentBased") is True
            percent = _decimal(detail.get("DiscountPercent"),
                               "Line.DiscountLineDetail.DiscountPercent")
            account = next((a for a in company.records["Account"].values()
                            if a["AccountSubType"] == "DiscountsRefundsGiven"), None)
            out_detail = {"PercentBased": percent_based}
            if account is not None:
                out_detail["DiscountAccountRef"] = _name_ref(account)
            if percent_based:
                if percent is None or not 0 <= percent <= 100:
                    raise required("Line.DiscountLineDetail.DiscountPercent")
                out_detail["DiscountPercent"] = _plain(percent)
                amount_or_none: Decimal | None = None
            else:
                amount_or_none = _decimal(raw.get("Amount"), "Line.Amount")
                if amount_or_none is None:
                    raise required("Line.Amount")
                amount_or_none = _money(amount_or_none)
                if amount_or_none < 0:
                    raise business("A discount can't be negative.", "Line.Amount")
            line = {"Id": line_id, "DetailType": "DiscountLineDetail",
                    "DiscountLineDetail": out_detail}
            if description:
                line["Description"] = description
            discounts.append((line, amount_or_none))
        else:
            raise bad_value("Line.DetailType", kind, f"{SCHEMA}.LineDetailTypeEnum")
    if not regular:
        raise required("Line")
    total = subtotal
    for line, fixed in discounts:
        if fixed is None:
            fixed = _money(subtotal * line["DiscountLineDetail"]["DiscountPercent"] / 100)
        line["Amount"] = fixed
        total -= fixed
    lines = regular + [line for line, _ in discounts]
    for number, line in enumerate(lines, start=1):
        line["LineNum"] = number
    if entity == "CreditMemo" and total < 0:
        raise business("A credit memo's total can't be negative.", "Line")
    if total < 0:
        raise business("The transaction total can't be negative.", "Line")
    return lines, _money(total), next_line


def _take_parts(record: dict[str, Any], body: dict[str, Any], names: tuple[str, ...]) -> None:
    """Copy the named address or phone objects the body gives (null removes one)."""
    for name in names:
        if name not in body:
            continue
        if body[name] is None:
            record.pop(name, None)
        elif not isinstance(body[name], dict):
            raise bad_value(name, body[name], f"{SCHEMA}.{name}")
        else:
            record[name] = {str(k): v for k, v in body[name].items()
                            if isinstance(v, str | int) and not isinstance(v, bool)}


def build_sales(box: QuickBooksSandbox, company: Company, entity: str, body: dict[str, Any],
                current: dict[str, Any] | None, sparse: bool) -> dict[str, Any]:
    """An Invoice or CreditMemo: validated and priced, returned as a record to store."""
    if current is not None and current.get("_voided"):
        raise business("A voided transaction can't be changed.")
    record: dict[str, Any] = copy.deepcopy(current) if current else {
        "TxnTaxDetail": {"TotalTax": Decimal("0.00")}, "ApplyTaxAfterDiscount": False,
        "PrintStatus": "NotSet", "EmailStatus": "NotSet", "CustomField": [],
        "_applied": {}, "_next_line": 1}
    if entity == "Invoice" and current is None:
        record.update({"AllowIPNPayment": False, "AllowOnlinePayment": False,
                       "AllowOnlineCreditCardPayment": False, "AllowOnlineACHPayment": False,
                       "Deposit": Decimal("0.00")})

    def given(name: str) -> bool:
        return name in body or not sparse

    _check_currency(company, body)
    record["CurrencyRef"] = company.currency_ref()
    customer_changed = False
    if given("CustomerRef"):
        customer = _resolve(company, "Customer", body.get("CustomerRef"), "CustomerRef")
        assert customer is not None
        if current is not None and record["_applied"] and \
                customer["Id"] != current["CustomerRef"]["value"]:
            raise business("The customer can't change while payments are applied.",
                           "CustomerRef")
        customer_changed = current is None or customer["Id"] != \
            current["CustomerRef"]["value"]
        record["CustomerRef"] = {"value": customer["Id"], "name": customer["DisplayName"]}
    customer = company.records["Customer"][record["CustomerRef"]["value"]]
    if given("Line"):
        lines, total, next_line = _price_lines(company, entity, body.get("Line"),
                                               record.get("Line", []), record["_next_line"])
        if total < _applied(record):
            raise business(f"The new total {total} is less than the {_applied(record)} "
                           "already applied to this transaction.", "Line")
        record.update({"Line": lines, "TotalAmt": total, "_next_line": next_line})
    today = company.today()
    txn_date = _date(body.get("TxnDate"), "TxnDate")
    if txn_date is not None:
        record["TxnDate"] = txn_date.isoformat()
    record.setdefault("TxnDate", today.isoformat())
    if entity == "Invoice":
        due = _date(body.get("DueDate"), "DueDate")
        if due is not None:
            record["DueDate"] = due.isoformat()
        record.setdefault("DueDate", (date.fromisoformat(record["TxnDate"])
                                      + timedelta(days=30)).isoformat())
    number = _text(body.get("DocNumber"), "DocNumber")
    if number is not None and number.strip():
        number = number.strip()
        if len(number) > 21:
            raise QboFault("6000", "A business validation error has occurred while processing "
                           "your request", "Business Validation Error: String length is "
                           "either shorter or longer than supported by specification. Min:0 "
                           f"Max:21 supported. Supplied length:{len(number)}", "DocNumber")
        if any(r.get("DocNumber") == number and r["Id"] != record.get("Id")
               for r in company.records[entity].values()):
            raise QboFault("6140", "Duplicate Document Number Error",
                           "Duplicate Document Number Error : You must specify a different "
                           f"number. This number has already been used. DocNumber={number} is "
                           "assigned to TxnType=" + entity + " with TxnId=" + next(
                               r["Id"] for r in company.records[entity].values()
                               if r.get("DocNumber") == number), "DocNumber")
        record["DocNumber"] = number
    elif "DocNumber" not in record:
        numbers = [int(r["DocNumber"]) for e in ("Invoice", "CreditMemo")
                   for r in company.records[e].values()
                   if str(r.get("DocNumber", "")).isdigit()]
        record["DocNumber"] = str(max(numbers, default=1000) + 1)
    for name in ("PrivateNote", "CustomerMemo", "BillEmail"):
        if name in body:
            if name == "PrivateNote":
                text = _text(body[name], name)
                if text and len(text) > 4000:
                    raise too_long(name, 4000, len(text))
                value: Any = text or None
            elif name == "CustomerMemo":
                memo = body[name]
                if memo is not None and not isinstance(memo, dict):
                    raise bad_value(name, memo, f"{SCHEMA}.MemoRef")
                text = _text((memo or {}).get("value"), "CustomerMemo.value")
                if text and len(text) > 1000:
                    raise too_long(name, 1000, len(text))
                value = {"value": text} if text else None
            else:
                address = _email(body[name], name)
                if address is not None and not EMAIL.match(address):
                    raise business(f"The email address {address} is not valid.", name)
                value = {"Address": address} if address else None
            if value is None:
                record.pop(name, None)
            else:
                record[name] = value
        elif not sparse and current is not None:
            record.pop(name, None)  # a full update clears what it leaves out (UNVERIFIED)
    if current is None or customer_changed:
        if "BillEmail" not in body and customer.get("PrimaryEmailAddr"):
            record["BillEmail"] = dict(customer["PrimaryEmailAddr"])
        for name in ("BillAddr", "ShipAddr"):  # the customer's, unless the form names its own
            if name not in body and customer.get(name):
                record[name] = copy.deepcopy(customer[name])
    # A form (invoice, estimate, credit memo) keeps the addresses it was given: a copy of its
    # own, which a later change of the customer's does not touch (Finance.xsd gives
    # SalesTransaction its own BillAddr and ShipAddr).
    _take_parts(record, body, ("BillAddr", "ShipAddr"))
    if "EmailStatus" in body and body["EmailStatus"] not in (None, ""):
        status = body["EmailStatus"]
        if status not in ("NotSet", "NeedToSend", "EmailSent"):
            raise bad_value("EmailStatus", status, f"{SCHEMA}.EmailStatusEnum")
        record["EmailStatus"] = status
    if "PrintStatus" in body and body["PrintStatus"] not in (None, ""):
        status = body["PrintStatus"]
        if status not in ("NotSet", "NeedToPrint", "PrintComplete"):
            raise bad_value("PrintStatus", status, f"{SCHEMA}.PrintStatusEnum")
        record["PrintStatus"] = status
    return record


def build_invoice(box: QuickBooksSandbox, company: Company, body: dict[str, Any],
                  current: dict[str, Any] | None, sparse: bool) -> dict[str, Any]:
    record = build_sales(box, company, "Invoice", body, current, sparse)
    if current is None:  # made from an estimate: LinkedTxn names it (only on create)
        links = body.get("LinkedTxn") or []
        estimates = [link.get("TxnId") for link in links if isinstance(link, dict)
                     and link.get("TxnType") == "Estimate"] if isinstance(links, list) else []
        if estimates:
            estimate = _resolve(company, "Estimate", {"value": estimates[0]}, "LinkedTxn")
            assert estimate is not None
            if estimate["CustomerRef"]["value"] != record["CustomerRef"]["value"]:
                raise business("The estimate belongs to another customer.", "LinkedTxn")
            record["_estimate"] = estimate["Id"]
    return record


def build_estimate(box: QuickBooksSandbox, company: Company, body: dict[str, Any],
                   current: dict[str, Any] | None, sparse: bool) -> dict[str, Any]:
    """An Estimate: priced like an invoice, with TxnStatus, ExpirationDate and acceptance."""
    record = build_sales(box, company, "Estimate", body, current, sparse)
    record.setdefault("_linked", [])
    record.setdefault("TxnStatus", "Pending")
    if "TxnStatus" in body:
        status = body["TxnStatus"]
        if status not in ESTIMATE_STATUSES:
            raise bad_value("TxnStatus", status, "java.lang.String")
        record["TxnStatus"] = status
    for name in ("ExpirationDate", "AcceptedDate"):
        if name in body:
            day = _date(body[name], name)
            if day is None:
                record.pop(name, None)
            else:
                record[name] = day.isoformat()
    if "AcceptedBy" in body:
        accepted_by = _text(body["AcceptedBy"], "AcceptedBy")
        if accepted_by:
            record["AcceptedBy"] = accepted_by
        else:
            record.pop("AcceptedBy", None)
    return record


def build_credit_memo(box: QuickBooksSandbox, company: Company, body: dict[str, Any],
                      current: dict[str, Any] | None, sparse: bool) -> dict[str, Any]:
    return build_sales(box, company, "CreditMemo", body, current, sparse)


NAME_PARTS = ("Title", "GivenName", "MiddleName", "FamilyName", "Suffix")
DELETED = " (deleted)"


def build_customer(box: QuickBooksSandbox, company: Company, body: dict[str, Any],
                   current: dict[str, Any] | None, sparse: bool) -> dict[str, Any]:
    record: dict[str, Any] = copy.deepcopy(current) if current else {
        "Active": True, "Taxable": False, "Job": False, "BillWithParent": False,
        "IsProject": False, "PreferredDeliveryMethod": "Print"}
    for name in (*NAME_PARTS, "CompanyName", "Notes", "PrintOnCheckName", "AcctNum"):
        if name in body or (not sparse and current is not None):
            text = _text(body.get(name), name)
            if text and text.strip():
                limit = 4000 if name == "Notes" else 100
                if len(text) > limit:
                    raise too_long(name, limit, len(text))
                record[name] = text.strip()
            else:
                record.pop(name, None)
    display = _text(body.get("DisplayName"), "DisplayName")
    display = display.strip() if display else ""
    if not display and current is not None:
        display = current["DisplayName"]
    if not display:
        display = " ".join(record[p] for p in NAME_PARTS if record.get(p)) or \
            record.get("CompanyName", "")
    if not display:
        raise required("DisplayName")
    if len(display) > 500:
        raise too_long("DisplayName", 500, len(display))
    active = _bool(body.get("Active"), "Active")
    if active is not None:
        record["Active"] = active
    base = display[:-len(DELETED)] if display.endswith(DELETED) else display
    display = base if record["Active"] else base + DELETED
    if any(c["DisplayName"].casefold() == display.casefold() and c["Id"] != record.get("Id")
           for c in company.records["Customer"].values()):
        raise duplicate_name("customer, vendor or employee")
    record["DisplayName"] = record["FullyQualifiedName"] = display
    record.setdefault("PrintOnCheckName", record.get("CompanyName") or base)
    if "PrimaryEmailAddr" in body or (not sparse and current is not None):
        address = _email(body.get("PrimaryEmailAddr"), "PrimaryEmailAddr")
        if address is not None and not EMAIL.match(address):
            raise business(f"The email address {address} is not valid.", "PrimaryEmailAddr")
        if address:
            record["PrimaryEmailAddr"] = {"Address": address}
        else:
            record.pop("PrimaryEmailAddr", None)
    for name in ("Taxable", "Job", "BillWithParent"):
        flag = _bool(body.get(name), name)
        if flag is not None:
            record[name] = flag
    method = _text(body.get("PreferredDeliveryMethod"), "PreferredDeliveryMethod")
    if method:
        if method not in ("Print", "Email", "None"):
            raise bad_value("PreferredDeliveryMethod", method, "java.lang.String")
        record["PreferredDeliveryMethod"] = method
    _take_parts(record, body, ("BillAddr", "ShipAddr", "PrimaryPhone", "Mobile"))
    _check_currency(company, body)
    record["CurrencyRef"] = company.currency_ref()
    return record


def build_item(box: QuickBooksSandbox, company: Company, body: dict[str, Any],
               current: dict[str, Any] | None, sparse: bool) -> dict[str, Any]:
    record: dict[str, Any] = copy.deepcopy(current) if current else {
        "Active": True, "Taxable": False, "UnitPrice": Decimal(0), "Type": "NonInventory",
        "PurchaseCost": Decimal(0), "TrackQtyOnHand": False}
    name = _text(body.get("Name"), "Name")
    name = name.strip() if name else (current["Name"] if current else "")
    if not name:
        raise required("Name")
    if len(name) > 100:
        raise too_long("Name", 100, len(name))
    active = _bool(body.get("Active"), "Active")
    if active is not None:
        record["Active"] = active
    base = name[:-len(DELETED)] if name.endswith(DELETED) else name
    name = base if record["Active"] else base + DELETED
    if any(i["Name"].casefold() == name.casefold() and i["Id"] != record.get("Id")
           for i in company.records["Item"].values()):
        raise duplicate_name("product or service")
    record["Name"] = record["FullyQualifiedName"] = name
    kind = _text(body.get("Type"), "Type")
    if kind:
        if kind not in ("Service", "NonInventory", "Inventory"):
            raise bad_value("Type", kind, f"{SCHEMA}.ItemTypeEnum")
        record["Type"] = kind
    for key in ("Description", "Sku", "PurchaseDesc"):
        if key in body or (not sparse and current is not None):
            text = _text(body.get(key), key)
            if text:
                if len(text) > 4000:
                    raise too_long(key, 4000, len(text))
                record[key] = text
            else:
                record.pop(key, None)
    for key in ("UnitPrice", "PurchaseCost", "QtyOnHand"):
        amount = _decimal(body.get(key), key)
        if amount is not None:
            if amount < 0 and key != "QtyOnHand":
                raise business(f"{key} can't be negative.", key)
            record[key] = _plain(amount)
    for key in ("Taxable", "TrackQtyOnHand"):
        flag = _bool(body.get(key), key)
        if flag is not None:
            record[key] = flag
    accounts = ["IncomeAccountRef"]
    if record["Type"] == "Inventory":
        accounts += ["AssetAccountRef", "ExpenseAccountRef"]
    for key in ("IncomeAccountRef", "AssetAccountRef", "ExpenseAccountRef"):
        if key in body or (key in accounts and key not in record):
            account = _resolve(company, "Account", body.get(key), key, key in accounts)
            if account is not None:
                record[key] = _name_ref(account)
    if record["Type"] == "Inventory":
        record["TrackQtyOnHand"] = True
        start = _date(body.get("InvStartDate"), "InvStartDate")
        if start is None and "InvStartDate" not in record:
            raise required("InvStartDate")
        if start is not None:
            record["InvStartDate"] = start.isoformat()
        record.setdefault("QtyOnHand", Decimal(0))
    return record


def build_account(box: QuickBooksSandbox, company: Company, body: dict[str, Any],
                  current: dict[str, Any] | None, sparse: bool) -> dict[str, Any]:
    record: dict[str, Any] = copy.deepcopy(current) if current else {
        "SubAccount": False, "Active": True, "CurrentBalance": Decimal("0.00"),
        "CurrentBalanceWithSubAccounts": Decimal("0.00")}
    name = _text(body.get("Name"), "Name")
    name = name.strip() if name else (current["Name"] if current else "")
    if not name:
        raise required("Name")
    if len(name) > 100:
        raise too_long("Name", 100, len(name))
    if any(a["Name"].casefold() == name.casefold() and a["Id"] != record.get("Id")
           for a in company.records["Account"].values()):
        raise duplicate_name("account")
    record["Name"] = record["FullyQualifiedName"] = name
    kind = _text(body.get("AccountType"), "AccountType")
    if kind:
        if kind not in ACCOUNT_TYPES:
            raise bad_value("AccountType", kind, f"{SCHEMA}.AccountTypeEnum")
        record["AccountType"] = kind
        record["Classification"], default_subtype = ACCOUNT_TYPES[kind]
        record["AccountSubType"] = _text(body.get("AccountSubType"), "AccountSubType") or \
            default_subtype
    elif "AccountType" not in record:
        raise required("AccountType")
    active = _bool(body.get("Active"), "Active")
    if active is not None:
        record["Active"] = active
    description = _text(body.get("Description"), "Description")
    if description:
        record["Description"] = description
    number = _text(body.get("AcctNum"), "AcctNum")  # the account's number in the chart
    if number and number.strip():
        if any(a.get("AcctNum") == number.strip() and a["Id"] != record.get("Id")
               for a in company.records["Account"].values()):
            raise duplicate_name("account number")  # UNVERIFIED: QBO's wording for it
        record["AcctNum"] = number.strip()
    _check_currency(company, body)
    record["CurrencyRef"] = company.currency_ref()
    return record


def build_payment(box: QuickBooksSandbox, company: Company, body: dict[str, Any],
                  current: dict[str, Any] | None, sparse: bool) -> dict[str, Any]:
    if current is not None and current.get("_voided"):
        raise business("A voided transaction can't be changed.")
    record: dict[str, Any] = copy.deepcopy(current) if current else {
        "ProcessPayment": False, "LinkedTxn": [], "_applied": {}}

    def given(name: str) -> bool:
        return name in body or not sparse

    _check_currency(company, body)
    record["CurrencyRef"] = company.currency_ref()
    if given("CustomerRef"):
        customer = _resolve(company, "Customer", body.get("CustomerRef"), "CustomerRef")
        assert customer is not None
        record["CustomerRef"] = {"value": customer["Id"], "name": customer["DisplayName"]}
    customer_id = record["CustomerRef"]["value"]
    if given("TotalAmt"):
        total = _decimal(body.get("TotalAmt"), "TotalAmt")
        if total is None:
            raise required("TotalAmt")
        if total < 0:
            raise business("A payment's TotalAmt can't be negative.", "TotalAmt")
        record["TotalAmt"] = _money(total)
    before: dict[tuple[str, str], Decimal] = record["_applied"]
    if given("Line"):
        lines = body.get("Line") or []
        if not isinstance(lines, list):
            raise bad_value("Line", lines, "java.util.ArrayList")
        applied: dict[tuple[str, str], Decimal] = {}
        out_lines: list[dict[str, Any]] = []
        for raw in lines:
            if not isinstance(raw, dict):
                raise bad_value("Line", raw, f"{SCHEMA}.Line")
            amount = _decimal(raw.get("Amount"), "Line.Amount")
            if amount is None:
                raise required("Line.Amount")
            amount = _money(amount)
            if amount < 0:
                raise business("A payment line's Amount can't be negative.", "Line.Amount")
            linked = raw.get("LinkedTxn")
            if not isinstance(linked, list) or not linked or not isinstance(linked[0], dict):
                raise required("Line.LinkedTxn")
            kind = linked[0].get("TxnType")
            if kind not in ("Invoice", "CreditMemo"):
                raise bad_value("Line.LinkedTxn.TxnType", kind, "java.lang.String")
            target_id = _text(linked[0].get("TxnId"), "Line.LinkedTxn.TxnId")
            target = company.records[kind].get((target_id or "").strip())
            if target is None:
                raise invalid_reference("Line.LinkedTxn.TxnId", "Line.LinkedTxn.TxnId")
            if target["CustomerRef"]["value"] != customer_id:
                raise business(f"{kind} {target.get('DocNumber', target['Id'])} belongs to "
                               "another customer.", "Line.LinkedTxn")
            key = (kind, target["Id"])
            applied[key] = applied.get(key, Decimal(0)) + amount
            out_lines.append({"Amount": amount, "LinkedTxn": [{"TxnId": target["Id"],
                                                                "TxnType": kind}]})
        for (kind, target_id), amount in applied.items():
            target = company.records[kind][target_id]
            if target.get("_voided") and amount:
                raise business(f"{kind} {target.get('DocNumber')} is voided.", "Line.LinkedTxn")
            open_amount = target["TotalAmt"] - _applied(target) + before.get(
                (kind, target_id), Decimal(0))
            if amount > open_amount:
                raise business(f"The amount applied to {kind} {target.get('DocNumber')} "
                               f"({amount}) is more than its open balance ({open_amount}).",
                               "Line.Amount")
        record["Line"] = out_lines
        record["_applied"] = applied
    invoices = sum((a for (k, _), a in record["_applied"].items() if k == "Invoice"),
                   Decimal(0))
    credits = sum((a for (k, _), a in record["_applied"].items() if k == "CreditMemo"),
                  Decimal(0))
    if credits > invoices:
        raise business("The credits applied are more than the invoices they pay.", "Line")
    if "TotalAmt" not in record:
        raise required("TotalAmt")
    if invoices - credits > record["TotalAmt"]:
        raise business(f"The amounts applied ({invoices - credits}) are more than the "
                       f"payment's TotalAmt ({record['TotalAmt']}).", "TotalAmt")
    record["UnappliedAmt"] = _money(record["TotalAmt"] - (invoices - credits))
    txn_date = _date(body.get("TxnDate"), "TxnDate")
    if txn_date is not None:
        record["TxnDate"] = txn_date.isoformat()
    record.setdefault("TxnDate", company.today().isoformat())
    if given("DepositToAccountRef"):
        account = _resolve(company, "Account", body.get("DepositToAccountRef"),
                           "DepositToAccountRef", required_here=False)
        if account is None:
            account = next((a for a in company.records["Account"].values()
                            if a["AccountSubType"] == "UndepositedFunds"), None)
        if account is not None:
            record["DepositToAccountRef"] = _name_ref(account)
    for name in ("PaymentRefNum", "PrivateNote"):
        if name in body or (not sparse and current is not None):
            text = _text(body.get(name), name)
            if text:
                limit = 21 if name == "PaymentRefNum" else 4000
                if len(text) > limit:
                    raise too_long(name, limit, len(text))
                record[name] = text
            else:
                record.pop(name, None)
    return record


Builder = Callable[[QuickBooksSandbox, Company, dict[str, Any], "dict[str, Any] | None", bool],
                   dict[str, Any]]
BUILDERS: dict[str, Builder] = {
    "Invoice": build_invoice, "CreditMemo": build_credit_memo, "Estimate": build_estimate,
    "Customer": build_customer,
    "Item": build_item, "Account": build_account, "Payment": build_payment}


# --- The Flask app ----------------------------------------------------------------------


def _throttled(stamp: str) -> Response:
    """QBO answers a throttled call in XML whatever Accept says (this body, as quoted in
    github.com/intuit/QuickBooks-V3-PHP-SDK/issues/54 and ruckus/quickbooks-ruby#348; XML for a
    JSON request: ej2/python-quickbooks#43), and without Retry-After (UNVERIFIED)."""
    body = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            f'<IntuitResponse time="{stamp}" xmlns="http://schema.intuit.com/finance/v3">\n'
            '    <Fault type="SERVICE">\n        <Error code="3001">\n'
            "            <Message>message=ThrottleExceeded; errorCode=003001; "
            "statusCode=429</Message>\n"
            "            <Detail>The request limit was reached.  Try again later</Detail>\n"
            "        </Error>\n    </Fault>\n</IntuitResponse>")
    return Response(body, status=429, mimetype="application/xml")


def _platform_fault(status: int, message: str, code: str, detail: str | None, kind: str,
                    moment: datetime) -> Response:
    """401/403 come from Intuit's gateway, with its lower-case envelope and epoch `time`."""
    body: dict[str, Any] = {"warnings": None, "intuitObject": None,
            "fault": {"error": [{"message": message, "detail": detail, "code": code,
                                 "element": None}], "type": kind},
            "report": None, "queryResponse": None, "batchItemResponse": [],
            "attachableResponse": [], "syncErrorResponse": None, "requestId": None,
            "time": int(moment.timestamp() * 1000), "status": None, "cdcresponse": []}
    headers = {"WWW-Authenticate": 'Bearer realm="Intuit", error="invalid_token"'} \
        if status == 401 else {}
    return _json(body, status, headers)


class Refused(Exception):
    """An answer decided before the company's API handler runs (auth, limits)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def create_app(sandbox: QuickBooksSandbox | None = None) -> Flask:
    box = sandbox or QuickBooksSandbox()
    app = Flask(__name__)
    app.extensions["quickbooks_sandbox"] = box
    cfg = box.config

    @app.after_request
    def tid(response: Response) -> Response:
        response.headers["intuit_tid"] = f"1-{secrets.token_hex(4)}-{secrets.token_hex(12)}"
        return response

    def html(body: str, status: int = 200) -> Response:
        return Response(body, status=status, mimetype="text/html", headers={
            "Cache-Control": "no-cache, no-store", "X-Frame-Options": "DENY"})

    # OpenID Connect discovery and keys ----------------------------------------------------

    def issuer() -> str:
        return f"{request.host_url}op/v1"

    @app.get("/.well-known/openid_configuration")
    @app.get("/.well-known/openid_configuration/")
    @app.get("/.well-known/openid_sandbox_configuration")
    @app.get("/.well-known/openid_sandbox_configuration/")
    def discovery() -> Response:
        base = request.host_url.rstrip("/")
        return _json({
            "issuer": issuer(),
            "authorization_endpoint": f"{base}/connect/oauth2",
            "token_endpoint": f"{base}/oauth2/v1/tokens/bearer",
            "userinfo_endpoint": f"{base}/v1/openid_connect/userinfo",
            "revocation_endpoint": f"{base}/v2/oauth2/tokens/revoke",
            "jwks_uri": f"{base}/oauth2/v1/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile", "address", "phone"],
            "token_endpoint_auth_methods_supported": ["client_secret_post",
                                                      "client_secret_basic"],
            "claims_supported": ["aud", "exp", "iat", "iss", "realmid", "sub"]})

    @app.get("/oauth2/v1/jwks")
    def jwks() -> Response:
        return _json({"keys": [_signing_key()[2]]})

    # Consent -----------------------------------------------------------------------------

    def consent_page(args: dict[str, str], client: ClientApp, error: str = "") -> str:
        hidden = "".join(f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">'
                         for k, v in args.items())
        companies = "".join(
            f'<label class="company"><input type="radio" name="realmId" '
            f'value="{escape(c.realm_id)}"{" checked" if n == 0 else ""}> {escape(c.name)} '
            f'<small>({escape(c.country)}, {escape(c.currency)})</small></label>'
            for n, c in enumerate(box.companies_by_id.values()))
        scopes = "".join(f"<li><code>{escape(s)}</code></li>"
                         for s in args.get("scope", "").split())
        app_name = escape(client.name or args.get("client_id", ""))
        problem = f'<p class="err">{escape(error)}</p>' if error else ""
        return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>QuickBooks sandbox: connect an app</title><style>
body{{font:15px system-ui;background:#f4f5f8;color:#393a3d;margin:0}}
main{{max-width:480px;margin:48px auto;background:#fff;border-radius:8px;padding:24px 28px;
box-shadow:0 1px 4px #0002}}h1{{font-size:20px}}.company{{display:block;margin:8px 0}}
.err{{color:#b91c1c}}button{{font:inherit;padding:8px 18px;border-radius:4px;margin-right:8px;
border:1px solid #2ca01c;background:#fff}}button[value=allow]{{background:#2ca01c;color:#fff}}
</style></head><body><main><p><strong>intuit</strong> QuickBooks (sandbox)</p>
<h1>{app_name} wants to connect to your QuickBooks company</h1>
<p>It asks for:</p><ul>{scopes}</ul>
<form method="post" action="/connect/oauth2">{hidden}
<p>Choose the company to connect:</p>{companies}{problem}
<p><button type="submit" name="decision" value="allow">Connect</button>
<button type="submit" name="decision" value="deny">Cancel</button></p></form></main>
</body></html>"""

    def redirect_to(uri: str, params: dict[str, str]) -> Response:
        sep = "&" if "?" in uri else "?"
        return Response(status=302, headers={"Location": uri + sep + urlencode(params)})

    @app.route("/connect/oauth2", methods=["GET", "POST"])
    def authorize() -> Response:
        source = request.args if request.method == "GET" else request.form
        args = {k: source.get(k, "") for k in ("client_id", "response_type", "scope",
                                                "redirect_uri", "state")}
        client = cfg.clients.get(args["client_id"])
        if client is None:
            return html("<h1>invalid_client</h1><p>The client_id is not known.</p>", 400)
        if not client.allows(args["redirect_uri"]):
            return html("<h1>invalid_request</h1><p>The redirect_uri is not registered for "
                        "this app.</p>", 400)
        if args["response_type"] != "code":
            return redirect_to(args["redirect_uri"], {"error": "unsupported_response_type",
                                                      "state": args["state"]})
        scopes = args["scope"].split()
        if not scopes or any(s not in SCOPES for s in scopes):
            return redirect_to(args["redirect_uri"], {"error": "invalid_scope",
                                                      "state": args["state"]})
        if request.method == "GET":
            return html(consent_page(args, client))
        if request.form.get("decision") != "allow":
            return redirect_to(args["redirect_uri"], {"error": "access_denied",
                                                      "state": args["state"]})
        with box.lock:
            realm = request.form.get("realmId", "")
            if realm not in box.companies_by_id:
                return html(consent_page(args, client, "Choose a company."), 400)
            consent = Consent(str(uuid.uuid4()), args["client_id"], realm, args["scope"],
                              box.now)
            box.consents[consent.consent_id] = consent
            code = "AB11" + secrets.token_urlsafe(30)
            box.codes[code] = {**args, "consent_id": consent.consent_id,
                               "expires": box.now + timedelta(seconds=cfg.code_seconds)}
        return redirect_to(args["redirect_uri"], {"code": code, "state": args["state"],
                                                  "realmId": realm})

    # Tokens ------------------------------------------------------------------------------

    def client_from_request() -> str | None:
        auth = request.authorization
        client_id = (auth.username if auth else request.form.get("client_id")) or ""
        secret = (auth.password if auth else request.form.get("client_secret")) or ""
        client = cfg.clients.get(client_id)
        if client is None or not hmac.compare_digest(client.secret.encode(), secret.encode()):
            return None
        return client_id

    def token_answer(body: dict[str, Any], status: int = 200) -> Response:
        return _json(body, status, {"Cache-Control": "no-cache, no-store", "Pragma": "no-cache"})

    def issue(consent: Consent) -> dict[str, Any]:
        now = box.now
        access = ("eyJlbmMiOiJBMTI4Q0JDLUhTMjU2IiwiYWxnIjoiZGlyIn0.."
                  + secrets.token_urlsafe(96))
        box.access_tokens[access] = {
            "consent_id": consent.consent_id,
            "expires_at": now + timedelta(seconds=cfg.access_token_seconds)}
        expires = min(now + timedelta(days=cfg.refresh_token_days),
                      consent.created + timedelta(days=cfg.consent_max_days))
        refresh = "AB11" + str(int(now.timestamp()) + cfg.refresh_token_days * 86400) + \
            secrets.token_urlsafe(24)
        box.refresh_tokens[refresh] = RefreshToken(consent.consent_id, consent.client_id, now,
                                                   expires)
        answer: dict[str, Any] = {
            "token_type": "bearer", "access_token": access, "refresh_token": refresh,
            "expires_in": cfg.access_token_seconds,
            "x_refresh_token_expires_in": max(0, int((expires - now).total_seconds()))}
        if "openid" in consent.scope.split():
            answer["id_token"] = id_token(consent)
        return answer

    def id_token(consent: Consent) -> str:
        key, kid, _ = _signing_key()
        issued = int(box.now.timestamp())
        claims = {"sub": box.user_sub, "aud": [consent.client_id],
                  "realmid": consent.realm_id, "auth_time": int(consent.created.timestamp()),
                  "iss": issuer(), "exp": issued + 3600, "iat": issued}
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})

    @app.post("/oauth2/v1/tokens/bearer")
    def token() -> Response:
        client_id = client_from_request()
        if client_id is None:
            return token_answer({"error": "invalid_client"}, 401)
        grant = request.form.get("grant_type")
        invalid = {"error": "invalid_grant"}
        with box.lock:
            now = box.now
            if grant == "authorization_code":
                code = box.codes.pop(request.form.get("code", ""), None)  # single use
                if code is None or code["expires"] < now or code["client_id"] != client_id \
                        or request.form.get("redirect_uri") != code["redirect_uri"]:
                    return token_answer(invalid, 400)
                consent = box.consents.get(code["consent_id"])
                if consent is None or consent.revoked:
                    return token_answer(invalid, 400)
                return token_answer(issue(consent))
            if grant == "refresh_token":
                record = box.refresh_tokens.get(request.form.get("refresh_token", ""))
                consent = box.consents.get(record.consent_id) if record else None
                if record is None or consent is None or consent.revoked or \
                        record.client_id != client_id or record.expires <= now:
                    return token_answer(invalid, 400)
                if record.first_used is not None and \
                        now > record.first_used + timedelta(seconds=cfg.refresh_grace_seconds):
                    return token_answer(invalid, 400)
                if record.first_used is None:
                    record.first_used = now
                return token_answer(issue(consent))
        return token_answer({"error": "unsupported_grant_type"}, 400)

    @app.post("/v2/oauth2/tokens/revoke")
    def revoke() -> Response:
        client_id = client_from_request()
        if client_id is None:
            return token_answer({"error": "invalid_client"}, 401)
        payload = request.get_json(silent=True, force=True)
        given = ""
        if isinstance(payload, dict):
            given = str(payload.get("token") or "")
        given = given or request.form.get("token", "")
        if not given:
            return token_answer({"error": "invalid_request"}, 400)
        with box.lock:
            consent_id = None
            if given in box.refresh_tokens:
                consent_id = box.refresh_tokens[given].consent_id
            elif given in box.access_tokens:
                consent_id = box.access_tokens[given]["consent_id"]
            consent = box.consents.get(consent_id or "")
            if consent is not None and consent.client_id == client_id:
                consent.revoked = True
        return Response(status=200)

    def live_token() -> tuple[dict[str, Any], Consent] | str:
        header = request.headers.get("Authorization", "")
        value = header[7:].strip() if header[:7].lower() == "bearer " else ""
        found = box.access_tokens.get(value)
        if found is None:
            return "Malformed bearer token: too short or too long" if value else \
                "Token validation failed: no bearer token"
        consent = box.consents.get(found["consent_id"])
        if consent is None or consent.revoked:
            return "Token revoked"
        if found["expires_at"] <= box.now:
            return f"Token expired: {value[:12]}..."
        return found, consent

    @app.get("/v1/openid_connect/userinfo")
    def userinfo() -> Response:
        with box.lock:
            found = live_token()
            if isinstance(found, str):
                return _json({"error": "invalid_token", "error_description": found}, 401,
                             {"WWW-Authenticate": 'Bearer error="invalid_token"'})
            scopes = found[1].scope.split()
        if "openid" not in scopes:
            return _json({"error": "insufficient_scope"}, 403)
        body: dict[str, Any] = {"sub": box.user_sub}
        if "email" in scopes:
            body |= {"email": cfg.owner_email, "emailVerified": True}
        if "profile" in scopes:
            body |= {"givenName": cfg.owner_given_name, "familyName": cfg.owner_family_name}
        if "phone" in scopes:
            body |= {"phoneNumber": "+1 6505550100", "phoneNumberVerified": False}
        if "address" in scopes:
            body |= {"address": {"streetAddress": "2700 Coast Ave", "locality":
                                 "Mountain View", "region": "CA", "postalCode": "94043",
                                 "country": "US"}}
        return _json(body)

    # The Accounting API ------------------------------------------------------------------

    def authorised(realm_id: str) -> Company:
        found = live_token()
        if isinstance(found, str):
            raise Refused(_platform_fault(
                401, "message=AuthenticationFailed; errorCode=003200; statusCode=401", "3200",
                found, "AUTHENTICATION", box.now))
        if found[1].realm_id != realm_id or realm_id not in box.companies_by_id:
            raise Refused(_platform_fault(
                403, "message=AuthorizationFailed; errorCode=003100; statusCode=403", "3100",
                None, "SERVICE", box.now))
        return box.companies_by_id[realm_id]

    def admit(company: Company, batch: bool) -> None:
        realm = company.realm_id
        now = box.now
        window = now - timedelta(seconds=60)
        minute = box.minute_calls.setdefault(realm, deque())
        while minute and minute[0] <= window:
            minute.popleft()
        batches = box.batch_calls.setdefault(realm, deque())
        while batches and batches[0] <= window:
            batches.popleft()
        if len(minute) >= cfg.per_minute_limit or \
                box.in_flight.get(realm, 0) >= cfg.concurrent_limit or \
                (batch and len(batches) >= cfg.batch_per_minute_limit):
            raise Refused(_throttled(company.stamp(now, millis=True)))
        minute.append(now)
        if batch:
            batches.append(now)

    def answer(company: Company, body: dict[str, Any], status: int = 200) -> Response:
        return _json({**body, "time": company.stamp(box.now, millis=True)}, status)

    def fault_answer(company: Company, fault: QboFault) -> Response:
        return _json({"Fault": fault.body(), "time": company.stamp(box.now, millis=True)},
                     fault.status)

    def link_base() -> str | None:
        include = request.args.get("include", "")
        if "invoicelink" not in include.lower().split(","):
            return None
        return cfg.invoice_link_base or request.host_url

    def body_json() -> Any:
        try:
            return json.loads(request.get_data() or b"", parse_float=Decimal)
        except (ValueError, UnicodeDecodeError) as exc:
            raise bad_json() from exc

    def dispatch(company: Company, rest: str) -> Response:
        parts = [p for p in rest.split("/") if p]
        method = request.method
        lowered = [p.lower() for p in parts]
        entity = next((e for e in ENTITIES if lowered and e.lower() == lowered[0]), None)
        if lowered == ["query"]:
            text = request.args.get("query") if method == "GET" else \
                request.get_data(as_text=True)
            if not text and method == "POST":
                text = request.args.get("query", "")
            return answer(company, {"QueryResponse": box.query(company, text or "",
                                                               link_base())})
        if lowered == ["cdc"] and method == "GET":
            return answer(company, box.cdc(company, request.args.get("entities"),
                                           request.args.get("changedSince")))
        if lowered == ["batch"] and method == "POST":
            return answer(company, box.batch(company, body_json(), link_base()))
        if lowered == ["preferences"] and method == "GET":
            return answer(company, {"Preferences": box.preferences(company)})
        if len(lowered) == 2 and lowered[0] == "companyinfo" and method == "GET":
            if parts[1] != company.realm_id:
                raise not_found()
            return answer(company, {"CompanyInfo": box.company_info(company)})
        if entity is not None and len(parts) == 2 and method == "GET":
            return answer(company, {entity: box.read(company, entity, parts[1],
                                                     link_base())})
        if entity is not None and len(parts) == 1 and method == "POST":
            return answer(company, box.save(company, entity, body_json(),
                                            request.args.get("operation"),
                                            request.args.get("include", ""), link_base()))
        if entity == "Invoice" and len(parts) == 3 and lowered[2] == "send" and \
                method == "POST":
            return answer(company, box.send(company, parts[1], request.args.get("sendTo"),
                                            link_base()))
        raise unsupported_operation(
            f"Could not find resource for relative : {request.path} of full path: "
            f"{request.url}")

    @app.route("/v3/company/<realm_id>/<path:rest>", methods=["GET", "POST"])
    def accounting(realm_id: str, rest: str) -> Response:
        lowered = rest.strip("/").lower()
        write = request.method == "POST" and lowered != "query"
        is_batch = lowered == "batch"
        requestid = request.args.get("requestid") if write else None
        with box.lock:
            try:
                company = authorised(realm_id)
                box.call_count[realm_id] = box.call_count.get(realm_id, 0) + 1
                company.requests.append({"method": request.method, "path": request.path,
                                         "query": request.args.to_dict(),
                                         "requestid": request.args.get("requestid")})
                admit(company, is_batch)
            except Refused as refused:
                return refused.response
            if requestid is not None:
                if len(requestid) > 50:
                    return fault_answer(company, too_long("request_id", 50, len(requestid)))
                stored = company.replays.get(requestid)
                if stored is not None:
                    status, mimetype, text = stored
                    return Response(text, status=status, mimetype=mimetype)
            box.in_flight[realm_id] = box.in_flight.get(realm_id, 0) + 1
        try:
            if cfg.latency_seconds > 0:
                wall.sleep(cfg.latency_seconds)
            with box.lock:
                try:
                    response = dispatch(company, rest)
                except QboFault as fault:
                    response = fault_answer(company, fault)
                if requestid:
                    company.replays[requestid] = (response.status_code,
                                                  response.mimetype or "application/json",
                                                  response.get_data(as_text=True))
                return response
        finally:
            with box.lock:
                box.in_flight[realm_id] -= 1

    @app.get("/online/<realm_id>/<invoice_id>")
    def online_invoice(realm_id: str, invoice_id: str) -> Response:
        with box.lock:
            company = box.companies_by_id.get(realm_id)
            record = company.records["Invoice"].get(invoice_id) if company else None
            if company is None or record is None:
                return html("<h1>Not found</h1>", 404)
            invoice = render(company, "Invoice", record)
        rows = "".join(
            f"<tr><td>{escape(str(line.get('Description', '')))}</td>"
            f"<td>{escape(str(line['SalesItemLineDetail']['Qty']))}</td>"
            f"<td>{line['Amount']:.2f}</td></tr>"
            for line in invoice["Line"] if line["DetailType"] == "SalesItemLineDetail")
        state = "Paid" if invoice["Balance"] == 0 and invoice["TotalAmt"] > 0 else (
            f"{escape(company.currency)} {invoice['Balance']:.2f} due "
            f"{escape(invoice['DueDate'])}")
        return html(
            "<!doctype html><html lang='en'><meta charset='utf-8'>"
            f"<title>Invoice {escape(invoice['DocNumber'])}</title>"
            f"<h1>{escape(company.name)}</h1><h2>Invoice {escape(invoice['DocNumber'])}</h2>"
            f"<p>To {escape(invoice['CustomerRef']['name'])}</p><table><tr><th>Description"
            f"</th><th>Qty</th><th>Amount</th></tr>{rows}</table>"
            f"<p>Total {escape(company.currency)} {invoice['TotalAmt']:.2f}</p>"
            f"<p class='due'>{state}</p><button disabled>Pay now</button></html>")

    # Control and introspection for tests and the demo (no authentication) ---------------

    def known(realm_id: str) -> Company:
        found = box.companies_by_id.get(realm_id)
        if found is None:
            raise Refused(_json({"error": f"no company {realm_id}"}, 404))
        return found

    @app.errorhandler(Refused)
    def refused(error: Refused) -> Response:
        return error.response

    @app.get("/_sandbox/companies")
    def sb_companies() -> Response:
        return _json(box.companies())

    listings: dict[str, Callable[[str], list[dict[str, Any]]]] = {
        "invoices": box.invoices, "customers": box.customers, "payments": box.payments,
        "items": box.items, "accounts": box.accounts, "creditmemos": box.credit_memos,
        "emails": box.emails, "requests": box.requests}

    @app.get("/_sandbox/<realm_id>/<listing>")
    def sb_listing(realm_id: str, listing: str) -> Response:
        known(realm_id)
        if listing not in listings:
            return _json({"error": f"no listing {listing}"}, 404)
        return _json(listings[listing](realm_id))

    @app.get("/_sandbox/calls")
    def sb_calls() -> Response:
        return _json({"calls": box.calls(request.args.get("realm"))})

    @app.post("/_sandbox/<realm_id>/pay")
    def sb_pay(realm_id: str) -> Response:
        known(realm_id)
        payload = request.get_json(silent=True)
        try:
            assert isinstance(payload, dict)
            on = date.fromisoformat(payload["on"]) if payload.get("on") else None
            return _json(box.pay_invoice(realm_id, str(payload["invoice_id"]),
                                         Decimal(str(payload["amount"])), on))
        except KeyError as exc:
            return _json({"error": f"missing or unknown: {exc}"}, 404 if "no invoice" in
                         str(exc) else 400)
        except (AssertionError, TypeError, ArithmeticError, ValueError) as exc:
            return _json({"error": str(exc) or 'send {"invoice_id": "130", "amount": '
                                               '"12.50"}'}, 400)

    @app.post("/_sandbox/<realm_id>/invoices/<invoice_id>")
    def sb_update_invoice(realm_id: str, invoice_id: str) -> Response:
        known(realm_id)
        payload = request.get_json(silent=True)
        if not isinstance(payload, dict):
            return _json({"error": "send the fields to change as a JSON object"}, 400)
        with box.lock:
            try:
                return _json(box.update_invoice(realm_id, invoice_id, **payload))
            except QboFault as fault:
                return _json({"Fault": fault.body()}, fault.status)

    @app.post("/_sandbox/<realm_id>/revoke")
    def sb_revoke(realm_id: str) -> Response:
        known(realm_id)
        box.revoke_all(realm_id)
        return Response(status=204)

    @app.post("/_sandbox/expire-tokens")
    def sb_expire() -> Response:
        box.expire_access_tokens()
        return Response(status=204)

    @app.post("/_sandbox/reset")
    def sb_reset() -> Response:
        payload = request.get_json(silent=True) or {}
        try:
            today = date.fromisoformat(payload["today"]) if isinstance(payload, dict) and \
                payload.get("today") else None
        except (TypeError, ValueError):
            return _json({"error": "today must be YYYY-MM-DD"}, 400)
        box.reset(today)
        return _json(box.companies())

    @app.get("/")
    def index() -> Response:
        with box.lock:
            rows = "".join(
                f"<tr><td>{escape(c.name)}</td><td><code>{escape(c.realm_id)}</code></td>"
                f"<td>{escape(c.country)}</td><td>{len(c.records['Customer'])}</td>"
                f"<td>{len(c.records['Invoice'])}</td><td>{len(c.records['Payment'])}</td>"
                f"<td>{len(c.emails)}</td><td>{box.call_count.get(c.realm_id, 0)}</td></tr>"
                for c in box.companies_by_id.values())
            connected = sum(1 for c in box.consents.values() if not c.revoked)
        return html("<!doctype html><html lang='en'><meta charset='utf-8'>"
                    "<title>QuickBooks sandbox</title><h1>QuickBooks Online sandbox</h1>"
                    f"<p>{connected} connection(s).</p><table><tr><th>Company</th>"
                    "<th>Realm ID</th><th>Country</th><th>Customers</th><th>Invoices</th>"
                    "<th>Payments</th><th>Emails sent</th><th>API calls</th></tr>"
                    f"{rows}</table></html>")

    return app


def serve(host: str = "127.0.0.1", port: int = 5056, seed_today: date | None = None) -> None:
    from werkzeug.serving import run_simple

    # Served on its own (the demo): invoice links open this sandbox's page, not the provider's.
    sandbox = QuickBooksSandbox(SandboxConfig(invoice_link_base=None))
    sandbox.seed_demo(seed_today or datetime.now(UTC).date())
    print(f"QuickBooks Online sandbox on http://{host}:{port}", flush=True)
    run_simple(host, port, create_app(sandbox), threaded=True)
