"""Writebacks against the providers' real limits: many tenants with due actions, our shared
rate budget in Redis, the sandboxes' own 429s; and the gain from batching fee invoices.

Run: `.venv/bin/python -m benchmarks.writeback [--tenants N] [--actions N]
[--xero-scale S] [--quickbooks-scale S]`. Prints one JSON object. Uses Redis at REDIS_URL
(default db 6, flushed of our budget keys first).

`limits`: per provider, a sandbox (its own process) with `--tenants` organisations of
`--actions` open invoices each and its real limits (Xero 60 a minute, 5 at once per tenant;
QuickBooks 500 a minute, 10 at once per company), its clock running `scale` times faster
than the wall clock, and the connector's RateBudget on the same clock (Xero 55 a minute,
QuickBooks 450: the README's defaults). One worker thread per tenant carries out its due
actions: Xero e-mails each invoice (one call), QuickBooks notes each invoice (a read and a
sparse update: two calls). The floor is the time the provider's limit allows for a tenant's
calls (tenants run in parallel, each under its own limit); utilisation is floor / actual.

`batching`: 500 late fees on one Xero tenant (limits lifted: this counts calls) as separate
fee invoices: `create_fee_invoices` (batched, plus the re-read the fee-batch job does with
`invoices_by_id`) against `create_fee_invoice` one by one. Null with a reason if the
connector has no batch method.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import threading
import time
from datetime import timedelta
from decimal import Decimal
from typing import Any

PROVIDER_LIMIT = {"xero": 60, "quickbooks": 500}  # calls a minute per tenant
BUDGET = {"xero": {"per_minute": 55, "per_day": 4800, "concurrent": 5},
          "quickbooks": {"per_minute": 450, "per_day": 500_000, "concurrent": 10}}
CALLS_PER_ACTION = {"xero": 1, "quickbooks": 2}
TARGET_UTILISATION = 0.90
TARGET_FEES_CALLS = 15


def _budget(provider: str, clock: Any, scale: float) -> Any:
    from redis import Redis

    from connectors.ratelimit import RateBudget

    redis = Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/6"))
    for key in redis.scan_iter(f"dunwell:budget:{provider}:*"):
        redis.delete(key)
    return RateBudget(redis, provider, **BUDGET[provider], clock=clock,
                      max_wait_seconds=120, sleep=lambda s: time.sleep(s / scale))


def limits(provider: str, tenants: int, actions: int, scale: float) -> dict[str, Any]:
    from benchmarks.sandbox_server import (
        SandboxProcess,
        ScaledClock,
        connector,
        quickbooks_tokens,
        xero_tokens,
    )
    from connectors.base import RateLimited

    # One customer in ten has no e-mail address (benchmarks/books.py): seed enough invoices.
    with SandboxProcess(provider, actions * 10 // 9 + 10, 10, 0, tenants=tenants,
                        open_limits=False,
                        clock_scale=scale) as box:
        clock = ScaledClock(scale)
        budget = _budget(provider, clock, scale)
        shared = xero_tokens(box.url, tenants) if provider == "xero" else None
        connectors = [connector(provider, box.url, tenant, shared or quickbooks_tokens(
            box.url, tenant), budget=budget, clock=clock) for tenant in box.tenant_ids]
        ids = _open_invoices(box, provider)
        refused, done = [0], [0]
        lock = threading.Lock()

        def work(n: int) -> None:
            source, tenant = connectors[n], box.tenant_ids[n]
            for k, invoice_id in enumerate(ids[tenant][:actions]):
                key = f"bench:{tenant}:{k}"
                while True:
                    try:
                        if provider == "xero":
                            source.email_invoice(invoice_id, key)
                        else:
                            source.add_invoice_note(invoice_id, "Reminder sent", key)
                        with lock:
                            done[0] += 1
                        break
                    except RateLimited as exc:
                        with lock:
                            refused[0] += 1
                        time.sleep(max(exc.retry_after, 0.05) / scale)

        before = sum(box.calls(t) for t in box.tenant_ids)
        started_sandbox = clock()
        threads = [threading.Thread(target=work, args=(n,)) for n in range(tenants)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        sandbox_seconds = (clock() - started_sandbox).total_seconds()
        calls = sum(box.calls(t) for t in box.tenant_ids) - before
    per_tenant = actions * CALLS_PER_ACTION[provider]
    minutes = math.ceil(per_tenant / PROVIDER_LIMIT[provider]) - 1
    floor = minutes * 60.0
    bound = minutes > 0  # within one minute's allowance the limit is not what bounds it
    return {"tenants": tenants, "actions_per_tenant": actions, "clock_scale": scale,
            "actions_done": done[0], "rate_limit_binds": bound,
            "api_calls": calls, "provider_429s": calls - done[0] * CALLS_PER_ACTION[provider],
            "budget_refusals": refused[0],
            "seconds": round(sandbox_seconds, 1), "floor_seconds": round(floor, 1),
            "floor_rule": (f"{per_tenant} calls a tenant at {PROVIDER_LIMIT[provider]} a "
                           "sliding minute: the last minute's calls start "
                           f"{math.ceil(per_tenant / PROVIDER_LIMIT[provider]) - 1} minutes "
                           "after the first"),
            "budget_per_minute": BUDGET[provider]["per_minute"],
            "utilisation": round(floor / sandbox_seconds, 3) if bound else None,
            "wall_seconds": round(sandbox_seconds / scale, 1)}


def _open_invoices(box: Any, provider: str) -> dict[str, list[str]]:
    import requests

    found: dict[str, list[str]] = {}
    for tenant in box.tenant_ids:
        answer = requests.get(f"{box.url}/_bench/invoices", params={"tenant": tenant},
                              timeout=60)
        found[tenant] = list(answer.json()["ids"])
    return found


def batching() -> dict[str, Any]:
    from connectors.xero import XeroConnector

    if not hasattr(XeroConnector, "create_fee_invoices"):
        return {"batched_calls": None, "reason": "not built: XeroConnector has no "
                "create_fee_invoices"}
    from benchmarks.sandbox_server import SandboxProcess, connector
    from connectors.base import FeeInvoice, FeeLine, effect_marker

    fees = 500
    with SandboxProcess("xero", fees * 10 // 9 + 10, 50, 0) as box:
        source = connector("xero", box.url, box.tenant)
        ids = _open_invoices(box, "xero")[box.tenant][:fees]
        contacts = _contacts_of(box, ids)
        today = source.clock().date()

        def item(n: int, invoice_id: str, run: str) -> tuple[FeeInvoice, str]:
            key = f"{run}:{invoice_id}:fee"
            return (FeeInvoice(contacts[invoice_id], "GBP", today, today + timedelta(days=14),
                               f"Late fee on invoice {n}",
                               (FeeLine(f"Late fee ({effect_marker(key)})", Decimal("40.00"),
                                        effect_marker(key)),)), key)

        before = box.calls()
        source.invoices_by_id(ids)
        outcomes = source.create_fee_invoices([item(n, i, "batch") for n, i in enumerate(ids)])
        batched = box.calls() - before
        made = sum(1 for o in outcomes if o.provider_id)
        before = box.calls()
        for n, invoice_id in enumerate(ids):
            fee_invoice, key = item(n, invoice_id, "single")
            source.create_fee_invoice(fee_invoice, key)
        single = box.calls() - before
    return {"fees": fees, "created": made, "batched_calls": batched,
            "one_by_one_calls": single, "target_calls": TARGET_FEES_CALLS,
            "met": batched <= TARGET_FEES_CALLS}


def _contacts_of(box: Any, ids: list[str]) -> dict[str, str]:
    import requests

    answer = requests.get(f"{box.url}/_bench/invoices", params={"tenant": box.tenant},
                          timeout=60)
    contacts = dict(answer.json()["contacts"])
    return {i: contacts[i] for i in ids}


def main() -> None:
    import logging

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--actions", type=int, default=200)
    parser.add_argument("--xero-scale", type=float, default=10.0)
    parser.add_argument("--quickbooks-scale", type=float, default=2.0)
    args = parser.parse_args()
    logging.disable(logging.WARNING)

    from benchmarks.harness import machine

    providers = {
        "xero": limits("xero", args.tenants, args.actions, args.xero_scale),
        "quickbooks": limits("quickbooks", args.tenants, args.actions, args.quickbooks_scale)}
    fees = batching()
    util = {p: r["utilisation"] for p, r in providers.items()}
    over429 = {p: r["provider_429s"] for p, r in providers.items()}
    print(json.dumps({
        "benchmark": "writeback", "providers": providers, "batching": fees,
        "targets": {
            "provider_429s": {"target": 0, "actual": over429,
                              "met": all(v == 0 for v in over429.values())},
            "budget_utilisation": {"target": TARGET_UTILISATION, "actual": util,
                                   "met": all(v >= TARGET_UTILISATION
                                              for v in util.values() if v is not None)},
            "fee_batching_calls": {"target": TARGET_FEES_CALLS,
                                   "actual": fees.get("batched_calls"),
                                   "met": fees.get("met")}},
        "machine": machine()}))


if __name__ == "__main__":
    main()
