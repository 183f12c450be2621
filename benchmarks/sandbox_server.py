"""A sandbox with large books in a process of its own, so its memory and CPU are not counted
as the syncing process's.

Run as `python -m benchmarks.sandbox_server --provider xero|quickbooks ...`: it seeds the books,
serves the sandbox over HTTP on a free loopback port and prints one JSON line
(`{"url": ..., "tenant": ...}`) once it answers. `SandboxProcess` does that from a benchmark,
and gets the connector's tokens through the sandbox's consent page as an owner would.

`/_bench/change` (ours, benchmark only) changes invoices as a bookkeeper would, through the
sandbox's own methods: a part payment on each, which moves the invoice and adds a payment.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urljoin, urlparse

import requests

from connectors.base import TokenSet

REDIRECT = "http://127.0.0.1:9/callback"
CLIENT_ID, CLIENT_SECRET = "dunwell-demo", "dunwell-demo-secret"


class ScaledClock:
    """Sandbox time running `scale` times faster than the wall clock, from `start`."""

    def __init__(self, scale: float, start: datetime | None = None) -> None:
        import time

        self._time = time.monotonic
        self.scale = scale
        self.origin = self._time()
        self.start = start or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.start + timedelta(seconds=(self._time() - self.origin) * self.scale)


# --- the child process --------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> None:
    import logging

    from flask import Response, request
    from werkzeug.serving import make_server

    from benchmarks.books import seed_quickbooks_books, seed_xero_books
    from sandboxes.wire import json_response

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    clock: Callable[[], datetime] = ScaledClock(args.clock_scale) if args.clock_scale \
        else (lambda: datetime.now(UTC))
    today = clock().date()
    limits: dict[str, Any] = {}
    if args.open_limits:
        limits = {"per_minute_limit": 10**9, "concurrent_limit": 10**6}
    if args.provider == "xero":
        from sandboxes import xero

        if args.open_limits:
            limits |= {"per_day_limit": 10**9, "app_minute_limit": 10**9}
        box: Any = xero.XeroSandbox(xero.SandboxConfig(clock=clock, **limits))
        tenants = [seed_xero_books(box, today, args.invoices, args.contacts, args.payments,
                                   seed=9 + n) for n in range(args.tenants)]
        app = xero.create_app(box)
        if not args.plain:
            _accelerate_xero(xero, app)
    else:
        from sandboxes import quickbooks

        if args.open_limits:
            limits |= {"batch_per_minute_limit": 10**9, "emails_per_day": 10**9}
        box = quickbooks.QuickBooksSandbox(quickbooks.SandboxConfig(clock=clock, **limits))
        tenants = [seed_quickbooks_books(box, today, args.invoices, args.contacts,
                                         args.payments, seed=9 + n)
                   for n in range(args.tenants)]
        app = quickbooks.create_app(box)
        if not args.plain:
            _accelerate_quickbooks(quickbooks, app, box)

    @app.post("/_bench/change")
    def change() -> Response:
        """Part-pay `count` open invoices of `tenant`, oldest first."""
        payload = request.get_json(force=True)
        tenant, count = str(payload["tenant"]), int(payload["count"])
        changed = 0
        with box.lock:
            if args.provider == "xero":
                open_ids = [i["InvoiceID"] for i in box.tenant(tenant).invoices.values()
                            if i["Status"] == "AUTHORISED" and i["AmountDue"] > 1][:count]
                for invoice_id in open_ids:
                    box.pay_invoice(tenant, invoice_id, Decimal("1.00"))
                    changed += 1
            else:
                company = box.company(tenant)
                open_ids = [i["Id"] for i in company.records["Invoice"].values()
                            if i["TotalAmt"] - sum(i["_applied"].values()) > 1][:count]
                for invoice_id in open_ids:
                    box.pay_invoice(tenant, invoice_id, Decimal("1.00"))
                    changed += 1
        return json_response({"changed": changed})

    @app.get("/_bench/invoices")
    def open_invoices() -> Response:
        """The tenant's open invoices, oldest first, and each one's contact."""
        tenant = str(request.args["tenant"])
        with box.lock:
            if args.provider == "xero":
                books = box.tenant(tenant)
                rows = [(i["InvoiceID"], i["Contact"]["ContactID"])
                        for i in books.invoices.values() if i["Status"] == "AUTHORISED"
                        and books.contacts[i["Contact"]["ContactID"]].get("EmailAddress")]
            else:
                rows = [(i["Id"], i["CustomerRef"]["value"])
                        for i in box.company(tenant).records["Invoice"].values()]
        return json_response({"ids": [i for i, _ in rows], "contacts": dict(rows)})

    server = make_server("127.0.0.1", 0, app, threaded=True)
    print(json.dumps({"url": f"http://127.0.0.1:{server.server_port}", "tenants": tenants,
                      "pid": os.getpid()}), flush=True)
    server.serve_forever()


class ListingMemo:
    """Makes the sandbox's listings scale to large books, with the same answers.

    The sandboxes render, filter and sort every record of a book for every page they serve,
    so reading a book of n records in pages costs n^2 / page size: minutes for 50,000
    invoices, a cost real providers do not have. Within one state of the books a record's
    rendering, a field looked up in it, and a parsed time never change, so they are kept from
    one GET to the next; every request that may change the books (anything but a GET or a
    QuickBooks query) clears them before and after it runs, and is served without them.
    """

    def __init__(self, app: Any) -> None:
        self.local = threading.local()
        self.entries: dict[Any, Any] = {}
        self.keep: list[Any] = []  # what the keys' ids point at stays alive while cached

        @app.before_request
        def begin() -> None:
            from flask import request

            # QuickBooks' query language travels by POST too; it changes nothing.
            self.local.active = request.method == "GET" or (
                request.method == "POST" and request.path.rstrip("/").endswith("/query"))
            if not self.local.active:
                self.clear()

        @app.teardown_request
        def end(_: BaseException | None) -> None:
            if not getattr(self.local, "active", False):
                self.clear()
            self.local.active = False

    def clear(self) -> None:
        self.entries = {}
        self.keep = []

    def wrap(self, fn: Callable[..., Any], key: Callable[..., Any]) -> Callable[..., Any]:
        def memoised(*args: Any, **kwargs: Any) -> Any:
            if not getattr(self.local, "active", False):
                return fn(*args, **kwargs)
            entries = self.entries
            k = (fn, key(*args, **kwargs))
            found = entries.get(k)
            if found is None:
                found = fn(*args, **kwargs)
                entries[k] = found
                self.keep.append(args)
            return found
        return memoised


def _everywhere(package: Any, name: str, wrap: Callable[[Any], Any]) -> None:
    """Replace the package's function `name` with `wrap(it)` in each of its modules that looks
    it up (the one defining it and every one importing it)."""
    modules = [m for m in list(sys.modules.values())
               if getattr(m, "__name__", "").startswith(package.__name__ + ".")]
    found = {id(fn): fn for m in modules if (fn := getattr(m, name, None)) is not None}
    if len(found) != 1:
        raise RuntimeError(f"{package.__name__} has {len(found)} functions named {name}")
    (original,) = found.values()
    wrapped = wrap(original)
    for found in modules:
        if getattr(found, name, None) is original:
            setattr(found, name, wrapped)


def _accelerate_xero(module: Any, app: Any) -> None:
    memo = ListingMemo(app)
    _everywhere(module, "render_invoice", lambda fn: memo.wrap(
        fn, lambda invoice, tenant=None, summary=False, unit_dp=2: (
            id(invoice), invoice["_updated"], id(tenant), summary, unit_dp)))
    _everywhere(module, "render_payment", lambda fn: memo.wrap(
        fn, lambda payment, tenant: (id(payment), payment["_updated"])))
    _everywhere(module, "_lookup", lambda fn: memo.wrap(
        fn, lambda record, path: (id(record), path)))


def _accelerate_quickbooks(module: Any, app: Any, box: Any) -> None:
    memo = ListingMemo(app)
    records = module.records
    original_balance = records._customer_balance

    def balances(company: Any) -> dict[str, Decimal]:
        """Every customer's Balance in one pass, with the sandbox's own arithmetic."""
        totals: dict[str, Decimal] = {}
        for entity, sign in (("Invoice", 1), ("CreditMemo", -1)):
            for record in company.records[entity].values():
                who = record["CustomerRef"]["value"]
                totals[who] = totals.get(who, Decimal(0)) + sign * (
                    record["TotalAmt"] - records._applied(record))
        for payment in company.records["Payment"].values():
            who = payment["CustomerRef"]["value"]
            totals[who] = totals.get(who, Decimal(0)) - payment["UnappliedAmt"]
        return totals

    cached_balances = memo.wrap(balances, lambda company: id(company))

    def customer_balance(company: Any, customer_id: str) -> Decimal:
        if not getattr(memo.local, "active", False):
            return original_balance(company, customer_id)
        return records._money(cached_balances(company).get(customer_id, Decimal(0)))

    _everywhere(module, "_customer_balance", lambda fn: customer_balance)
    _everywhere(module, "render", lambda fn: memo.wrap(
        fn, lambda company, entity, record, link_base=None: (
            id(company), entity, id(record), record["SyncToken"], record["_updated"],
            link_base)))
    _everywhere(module, "_lookup", lambda fn: memo.wrap(
        fn, lambda record, path: (id(record), path)))
    _everywhere(module, "parse_moment", lambda fn: memo.wrap(
        fn, lambda text, company: (text, id(company))))
    _keyset_queries(module.query, box, memo)


def _keyset_queries(module: Any, box: Any, memo: ListingMemo) -> None:
    """The one query shape a sync pages with (`SELECT * FROM E [WHERE ...
    MetaData.LastUpdatedTime >= t ...] ORDERBY MetaData.LastUpdatedTime STARTPOSITION s
    MAXRESULTS m`) served from the entity's rows sorted once per state of the books, found by
    bisection: the same rows in the same order as the sandbox's own query, without filtering
    and sorting the whole book again for every page. Every other query goes to the sandbox."""
    import bisect

    original = box.query
    stamp = "MetaData.LastUpdatedTime"

    def ordered(company: Any, entity: str, link_base: str | None) -> tuple[list, list]:
        rows = [module.render(company, entity, r, link_base) for r in company.live(entity)]
        rows.sort(key=lambda r: int(r["Id"]) if str(r["Id"]).isdigit() else 0)
        keys = [module._sort_key(module._lookup(r, stamp), company) for r in rows]
        order = sorted(range(len(rows)), key=keys.__getitem__)
        return [rows[i] for i in order], [keys[i] for i in order]

    sorted_rows = memo.wrap(ordered, lambda company, entity, link_base: (
        id(company), entity, link_base))

    def query(company: Any, text: str, link_base: str | None = None) -> dict[str, Any]:
        if not getattr(memo.local, "active", False):
            return original(company, text, link_base)
        parsed = module.QueryParser(text or "", box.config.query_max_results).parse()
        entity = parsed.entity
        bounds = [c for c in parsed.conditions if c.path == stamp and c.op == ">="]
        others = [c for c in parsed.conditions if c not in bounds]
        if (entity not in ("Invoice", "Customer", "Payment") or parsed.count
                or parsed.fields is not None or parsed.order != [(stamp, False)]
                or len(bounds) > 1 or any(c.path == stamp for c in others)):
            return original(company, text, link_base)
        rows, keys = sorted_rows(company, entity, link_base)
        first = 0
        if bounds and rows:
            wanted = module.Matcher(company, bounds[0]).key(bounds[0].values[0],
                                                           module._lookup(rows[0], stamp))
            first = bisect.bisect_left(keys, (0, wanted.timestamp()))
        matchers: list[Callable[[dict[str, Any]], bool]] = [
            module.Matcher(company, c) for c in others]
        if entity == "Customer" and not any(c.path.lower() == "active" for c in others):
            matchers.append(lambda r: bool(r.get("Active", True)))  # as the sandbox hides them
        skip, chunk = parsed.start - 1, []
        for row in rows[first:]:
            if all(m(row) for m in matchers):
                if skip:
                    skip -= 1
                    continue
                chunk.append(row)
                if len(chunk) == parsed.limit:
                    break
        if not chunk:
            return {}
        return {entity: chunk, "startPosition": parsed.start, "maxResults": len(chunk)}

    box.query = query


# --- the parent's handle ------------------------------------------------------------------


@dataclass
class SandboxProcess:
    """Starts the sandbox child and talks to it."""

    provider: str
    invoices: int
    contacts: int
    payments: int
    tenants: int = 1
    open_limits: bool = True
    clock_scale: float = 0.0
    plain: bool = False

    def __enter__(self) -> SandboxProcess:
        command = [sys.executable, "-m", "benchmarks.sandbox_server", "--provider",
                   self.provider, "--invoices", str(self.invoices), "--contacts",
                   str(self.contacts), "--payments", str(self.payments), "--tenants",
                   str(self.tenants)]
        if self.open_limits:
            command.append("--open-limits")
        if self.plain:
            command.append("--plain")
        if self.clock_scale:
            command += ["--clock-scale", str(self.clock_scale)]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.provider} sandbox did not start")
        ready = json.loads(line)
        self.url: str = ready["url"]
        self.tenant_ids: list[str] = ready["tenants"]
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)

    @property
    def tenant(self) -> str:
        return self.tenant_ids[0]

    def calls(self, tenant: str | None = None) -> int:
        key = "tenant_id" if self.provider == "xero" else "realm"
        answer = requests.get(f"{self.url}/_sandbox/calls",
                              params={key: tenant or self.tenant}, timeout=30)
        return int(answer.json()["calls"])

    def change_invoices(self, count: int, tenant: str | None = None) -> int:
        answer = requests.post(f"{self.url}/_bench/change",
                               json={"tenant": tenant or self.tenant, "count": count},
                               timeout=600)
        answer.raise_for_status()
        return int(answer.json()["changed"])


# --- consent, as an owner gives it --------------------------------------------------------


def _hidden_fields(page: str) -> list[tuple[str, str]]:
    return re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', page)


def xero_tokens(base: str, tenants: int = 1) -> TokenSet:
    """Consent for the first `tenants` organisations on the sandbox's consent page."""
    from connectors.oauth import new_pkce_pair

    oauth = xero_oauth(base)
    verifier, challenge = new_pkce_pair()
    page = requests.get(oauth.authorization_url(REDIRECT, "bench", challenge), timeout=30).text
    offered = re.findall(r'name="tenant" value="([^"]+)"', page)
    data = [*_hidden_fields(page), *(("tenant", t) for t in offered[:tenants]),
            ("decision", "allow")]
    answer = requests.post(f"{base}/identity/connect/authorize", data=data,
                           allow_redirects=False, timeout=30)
    code = parse_qs(urlparse(answer.headers["Location"]).query)["code"][0]
    return oauth.exchange_code(code, REDIRECT, verifier)


def xero_oauth(base: str, clock: Callable[[], datetime] | None = None) -> Any:
    from connectors.oauth import OAuthClient

    return OAuthClient(CLIENT_ID, CLIENT_SECRET, f"{base}/identity/connect/authorize",
                       f"{base}/connect/token", f"{base}/connect/revocation",
                       "openid offline_access accounting.transactions",
                       **({"clock": clock} if clock else {}))


def quickbooks_settings(base: str, clock: Callable[[], datetime] | None = None) -> Any:
    from connectors.quickbooks import QuickBooksSettings

    return QuickBooksSettings(CLIENT_ID, CLIENT_SECRET,
                              f"{base}/.well-known/openid_configuration", f"{base}/v3",
                              **({"clock": clock} if clock else {}))


def quickbooks_tokens(base: str, realm: str) -> TokenSet:
    """Consent for one company (QuickBooks asks for one per consent)."""
    settings = quickbooks_settings(base)
    http = requests.Session()
    page = http.get(settings.authorization_url(REDIRECT, "bench"), timeout=30)
    action = re.search(r'<form[^>]*method="post"[^>]*action="([^"]*)"', page.text) or \
        re.search(r'<form[^>]*action="([^"]*)"[^>]*method="post"', page.text)
    target = urljoin(page.url, action.group(1) if action and action.group(1) else page.url)
    data = [*_hidden_fields(page.text), ("realmId", realm), ("decision", "allow")]
    answer = http.post(target, data=data, allow_redirects=False, timeout=30)
    query = parse_qs(urlparse(answer.headers["Location"]).query)
    return settings.exchange_code(query["code"][0], REDIRECT, query["realmId"][0])


class MemoryTokens:
    """A TokenStore in memory: the benchmark's process is the only one using the consent."""

    def __init__(self, tokens: TokenSet) -> None:
        self.tokens = tokens

    def load(self) -> TokenSet:
        return self.tokens

    def refresh(self, needs_refresh: Callable[[TokenSet], bool],
                do_refresh: Callable[[TokenSet], TokenSet]) -> TokenSet:
        if needs_refresh(self.tokens):
            self.tokens = do_refresh(self.tokens)
        return self.tokens


def connector(provider: str, base: str, tenant: str, tokens: TokenSet | None = None,
              budget: Any = None, clock: Callable[[], datetime] | None = None) -> Any:
    """Our connector for one sandbox tenant, as connectors/ builds it for a worker."""
    moment = clock or (lambda: datetime.now(UTC))
    if provider == "xero":
        from connectors.xero import XeroConnector, XeroSettings

        store = MemoryTokens(tokens or xero_tokens(base))
        settings = XeroSettings(xero_oauth(base, moment), f"{base}/api.xro/2.0",
                                f"{base}/connections")
        return XeroConnector(settings, tenant, store, clock=moment, budget=budget)
    from connectors.quickbooks import QuickBooksConnector

    store = MemoryTokens(tokens or quickbooks_tokens(base, tenant))
    return QuickBooksConnector(quickbooks_settings(base, moment), tenant, store, clock=moment,
                               budget=budget)


def main() -> None:
    parser = argparse.ArgumentParser(description="A sandbox with large books.")
    parser.add_argument("--provider", choices=("xero", "quickbooks"), required=True)
    parser.add_argument("--invoices", type=int, default=50_000)
    parser.add_argument("--contacts", type=int, default=5_000)
    parser.add_argument("--payments", type=int, default=20_000)
    parser.add_argument("--tenants", type=int, default=1)
    parser.add_argument("--open-limits", action="store_true",
                        help="lift the rate limits (sync benchmarks measure calls, not waits)")
    parser.add_argument("--clock-scale", type=float, default=0.0,
                        help="run the sandbox's clock this many times faster than the wall")
    parser.add_argument("--plain", action="store_true",
                        help="serve without ListingMemo (slow on large books)")
    _serve(parser.parse_args())


if __name__ == "__main__":
    main()

