"""Incremental sync after 500 invoices changed (each part paid: 500 invoices and 500 payments
changed), for Xero and QuickBooks: API calls against the floor, and time.

Run: `.venv/bin/python -m benchmarks.sync_incremental [--invoices N] [--changed N] [--runs R]`.
Prints one JSON object. The sandbox (benchmarks/sandbox_server.py, rate limits lifted) holds
a book of `--invoices` (default 10,000: the calls of an incremental sync do not depend on the
book's size); a first full sync into a fresh SQLite database, then `--runs` rounds of
"change 500 invoices, sync", each round's changes made in a later second than the last sync
(as between real syncs, minutes apart; both providers filter changes by whole seconds, so
rounds within one second, which a fast machine runs, would read each other's changes).
Floor: one call per record kind (an answer that nothing changed is one call too;
ceil(500 / 1,000) = 1 for the invoices and the payments). Target: at most floor + 1.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_OVER_FLOOR = 1


def one_provider(provider: str, invoices: int, changed: int, runs: int) -> dict[str, Any]:
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from benchmarks.harness import fresh_database, median
    from benchmarks.sandbox_server import SandboxProcess, connector
    from benchmarks.sync_full import new_organisation
    from sync.engine import sync_organisation

    rounds = []
    with SandboxProcess(provider, invoices, max(1, invoices // 10), invoices * 2 // 5) as box, \
            tempfile.TemporaryDirectory() as workdir, \
            fresh_database("sqlite", Path(workdir)) as url:
        engine = create_engine(url)
        with Session(engine) as session:
            org = new_organisation(session)
            source = connector(provider, box.url, box.tenant)
            sync_organisation(session, org, source)
            for _ in range(runs):
                time.sleep(1.01 - time.time() % 1)  # into the next second of the clock
                made = box.change_invoices(changed)
                before = box.calls()
                started = time.perf_counter()
                result = sync_organisation(session, org, source)
                seconds = time.perf_counter() - started
                calls = box.calls() - before
                floor = sum(max(1, math.ceil(n / 1000)) for n in (0, made, made))
                rounds.append({"calls": calls, "floor": floor, "seconds": seconds,
                               "counts": result.counts,
                               "changed_invoices": len(result.changed_invoice_ids)})
        engine.dispose()
    worst = max(r["calls"] - r["floor"] for r in rounds)
    return {"changed": changed, "runs": runs, "api_calls": rounds[0]["calls"],
            "api_call_floor": rounds[0]["floor"], "worst_calls_over_floor": worst,
            "calls_per_round": [r["calls"] for r in rounds],
            "counts_per_round": [r["counts"] for r in rounds],
            "median_seconds": median([r["seconds"] for r in rounds]),
            "counts": rounds[0]["counts"],
            "changed_invoices_seen": rounds[0]["changed_invoices"]}


def main() -> None:
    import logging

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--invoices", type=int, default=10_000)
    parser.add_argument("--changed", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    logging.disable(logging.INFO)

    from benchmarks.harness import machine

    providers = {p: one_provider(p, args.invoices, args.changed, args.runs)
                 for p in ("xero", "quickbooks")}
    over = {p: r["worst_calls_over_floor"] for p, r in providers.items()}
    print(json.dumps({
        "benchmark": "sync_incremental", "book_invoices": args.invoices,
        "providers": providers,
        "targets": {"calls_at_most_floor_plus_1": {
            "target": TARGET_OVER_FLOOR, "worst_calls_over_floor": over,
            "met": all(v <= TARGET_OVER_FLOOR for v in over.values())}},
        "machine": machine()}))


if __name__ == "__main__":
    main()
