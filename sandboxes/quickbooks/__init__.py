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


Here: `create_app` assembles one blueprint per resource: sign-in in `oauth`; the Accounting
API's one route in `api`, which admits a call and hands it to the operation of the resource
it names (`query`, `cdc`, `batch`, `company_info`, `entities` for reading and writing each
entity, `invoices` for sending one); and our own `control`. What an entity is made of is in
its module (`invoices`, `estimates`, `credit_memos` with `sales`, `customers`, `items`,
`accounts`, `payments`). The state is a `QuickBooksSandbox` (`sandbox`) kept on the app, so
several sandboxes serve side by side in one process.
"""

from __future__ import annotations

from datetime import date

from flask import Flask

from sandboxes.quickbooks import (
    api,
    batch,
    cdc,
    company_info,
    control,
    entities,
    invoices,
    oauth,
    query,
)
from sandboxes.quickbooks.books import Company
from sandboxes.quickbooks.config import SandboxConfig
from sandboxes.quickbooks.context import EXTENSION
from sandboxes.quickbooks.errors import QboFault, Refused
from sandboxes.quickbooks.oauth import Consent
from sandboxes.quickbooks.sandbox import QuickBooksSandbox
from sandboxes.wire import ClientApp, sandbox_app, serve_seeded

__all__ = ["ClientApp", "Company", "Consent", "QboFault", "QuickBooksSandbox", "SandboxConfig",
           "create_app", "serve"]

BLUEPRINTS = (oauth.bp, api.bp, query.bp, cdc.bp, batch.bp, company_info.bp, entities.bp,
              invoices.bp, control.bp)


def create_app(sandbox: QuickBooksSandbox | None = None) -> Flask:
    app = sandbox_app(__name__, EXTENSION, sandbox or QuickBooksSandbox(), BLUEPRINTS)
    app.after_request(api.intuit_tid)
    app.register_error_handler(Refused, control.refused)
    return app


def serve(host: str = "127.0.0.1", port: int = 5056, seed_today: date | None = None) -> None:
    # Served on its own (the demo): invoice links open this sandbox's page, not the provider's,
    # and the customers have a paid history to learn their habits from.
    serve_seeded("QuickBooks Online sandbox",
                 QuickBooksSandbox(SandboxConfig(invoice_link_base=None, paid_history=True)),
                 create_app, host, port, seed_today)
