"""A local emulator of Xero's sign-in (OAuth 2.0) and Accounting API, for the demo and tests.

Same paths, field names, `/Date(ms+0000)/` formats, paging, rate-limit headers and 429s, token
lifetimes and single-use rotating refresh tokens (with Xero's 30-minute grace for a lost answer),
error bodies and Idempotency-Key replays as the real service. One origin serves what Xero splits
over three hosts: `/identity/connect/authorize` (login.xero.com), `/connect/token` and
`/connect/revocation` (identity.xero.com), `/connections` and `/api.xro/2.0/...`
(api.xero.com). `/_sandbox/...` is ours: introspection for tests and the demo.

Choices where Xero's behaviour is not published (each noted where it is made):
- `X-Rate-Limit-Problem` is lower case (`minute`, `day`, `appminute`, `concurrent`): a
  developer saw `minute` from the OAuth 2.0 API (github.com/XeroAPI/xero-node/issues/634);
  the others are guesses in the same form (the OAuth 1.0a API sent `Daily`/`Minute`,
  calcinai/xero-php#352); `SandboxConfig.rate_limit_problems` can rename them.
- The daily budget is a rolling 24-hour window, as Xero's limits page said (quoted in
  github.com/XeroAPI/xero-node/issues/262, 2019); its later wording, "counted against a fixed
  window which will reset at different times for each tenant ... use the Retry-After header"
  (quoted in blog.featherbear.cc, "Using Xero from a Developer's Perspective"), is not
  emulated exactly. Either way it is not 00:00 UTC, and Retry-After is the authority.
  `rolling_day=False` counts UTC calendar days.
- An Idempotency-Key reused for a different request (method, path or body) answers 400.
- Adding a history note leaves the invoice's UpdatedDateUTC alone; the first e-mail, which sets
  SentToContact, moves it.
- Each e-mail of an invoice appears in its GET /History as `Changes: "Sent"` with the time sent
  and "This invoice has been sent to <address>." (the wording is ours; the record is what Xero's
  History & Notes shows for every sent invoice). History is listed oldest first.
- GET /Invoices without `page` answers every invoice without its line items, as Xero does.
- Credit notes (GET, PUT and POST /CreditNotes, GET /CreditNotes/{id}, PUT
  /CreditNotes/{id}/Allocations): an allocation lowers the invoice's AmountDue, raises its
  AmountCredited, lists the credit note under the invoice's CreditNotes and marks invoice and
  credit note PAID at zero. Messages Xero has been seen to send are used as they are ("Credit
  Note cannot be allocated as amount is greater than amount outstanding", "The invoice you are
  trying to allocate to has already been paid off", "Credit Note cannot be allocated to an
  incorrect invoice type"); the others (a draft credit note, credit above RemainingCredit,
  another contact or currency, a missing Date) are ours. GET /CreditNotes answers line items
  with or without `page`. Only Status, Reference, Date, Contact and, while nothing is
  allocated, the lines of a credit note can be updated.

Here: `create_app` assembles one blueprint per resource (sign-in in `identity`, `connections`,
`organisation`, `contacts`, `invoices`, `history`, `credit_notes`, `payments`, `quotes`,
`bank_transactions`, `branding` (themes and their logo images), and our own `control`); the
state is a `XeroSandbox` (`sandbox`) kept on the app, so several sandboxes serve side by side in
one process. Every Accounting call goes through `api.accounting`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from flask import Flask

from sandboxes.wire import ClientApp, sandbox_app, serve_seeded
from sandboxes.xero import (
    bank_transactions,
    branding,
    connections,
    contacts,
    control,
    credit_notes,
    history,
    identity,
    invoices,
    organisation,
    payments,
    quotes,
)
from sandboxes.xero.api import api_error
from sandboxes.xero.books import Tenant
from sandboxes.xero.config import SandboxConfig
from sandboxes.xero.context import EXTENSION
from sandboxes.xero.errors import ApiError
from sandboxes.xero.sandbox import XeroSandbox

__all__ = ["ClientApp", "SandboxConfig", "Tenant", "XeroSandbox", "create_app", "serve"]

BLUEPRINTS = (identity.bp, connections.bp, organisation.bp, contacts.bp, invoices.bp,
              history.bp, credit_notes.bp, payments.bp, quotes.bp, bank_transactions.bp,
              branding.bp, control.bp)


def create_app(sandbox: XeroSandbox | None = None) -> Flask:
    app = sandbox_app(__name__, EXTENSION, sandbox or XeroSandbox(), BLUEPRINTS)
    app.register_error_handler(ApiError, api_error)
    app.wsgi_app = CaseInsensitivePaths(app)  # type: ignore[method-assign]
    return app


class CaseInsensitivePaths:
    """Xero's routes ignore case (/api.xro/2.0/invoices/{id}/history is /Invoices/{id}/History;
    pyxero asks for the lower-case `history`): each fixed segment of a request's path is put
    in the case the sandbox's routes spell it, before Flask matches it."""

    PREFIXES = ("/api.xro/", "/connections")  # the OAuth and /_sandbox paths keep their case

    def __init__(self, app: Flask) -> None:
        self.inner = app.wsgi_app
        self.segments = {segment.lower(): segment for rule in app.url_map.iter_rules()
                         if rule.rule.lower().startswith(self.PREFIXES)
                         for segment in rule.rule.split("/")
                         if segment and "<" not in segment}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.lower().startswith(self.PREFIXES):
            environ["PATH_INFO"] = "/".join(self.segments.get(part.lower(), part)
                                            for part in path.split("/"))
        return self.inner(environ, start_response)


def serve(host: str = "127.0.0.1", port: int = 5055, seed_today: date | None = None) -> None:
    # Served on its own (the demo): invoice links open this sandbox's page, not the provider's.
    serve_seeded("Xero sandbox", XeroSandbox(SandboxConfig(invoice_link_base=None)), create_app,
                 host, port, seed_today)
