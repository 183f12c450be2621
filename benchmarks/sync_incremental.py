"""Incremental sync after 500 invoices changed (each part paid: 500 invoices and 500 payments
changed), for Xero and QuickBooks: API calls against the floor, and time.

Run: `.venv/bin/python -m benchmarks.sync_incremental [--invoices N] [--changed N] [--runs R]`.
Prints one JSON object. The sandbox (benchmarks/sandbox_server.py, rate limits lifted) holds
a book of `--invoices` (default 10,000: the calls of an incremental sync do not depend on the
book's size); a first full sync into a fresh SQLite database, then `--runs` rounds of
"change 500 invoices, sync" (after a first incremental sync with nothing changed, measured
apart: it brings QuickBooks' bookmarks together), each round's changes made in a later second
than the last sync
(as between real syncs, minutes apart; both providers filter changes by whole seconds, so
rounds within one second, which a fast machine runs, would read each other's changes).
Floors. Xero: one call per record kind (an answer that nothing changed is one call too;
ceil(500 / 1,000) = 1 for the invoices and the payments): 3. QuickBooks asks CDC for every kind
in one call, whose answer holds at most 1,000 objects in all (Intuit); one that holds that many
may have left changes out, so each kind is then read in answers that are not full (at most 999
objects each) or by query: 1 call while the objects number fewer than 1,000, else
1 + ceil(objects / 999). 500 invoices and their 500 payments are 1,000 objects: 3.
Target: at most floor + 1.

Settled rounds measure each count of `--boundary` (default 500 and 499) after a settling
sync two seconds after the last change (not measured): a sync reads again the second before
its bookmark (both providers stamp changes to the second), which then holds nothing, instead
of the previous round's burst, as between real syncs minutes apart. Xero's webhook path is measured
too: the invoices a webhook names, read by their ids (`IDs`, 150 to a call).
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

TARGET_OVER_FLOOR = 1


def floor_of(provider: str, invoices: int, payments: int, reread: int = 0) -> int:
    """The fewest calls an incremental sync can make for these changes (see the docstring)."""
    if provider == "xero":
        return sum(max(1, math.ceil(n / 1000)) for n in (0, invoices, payments))
    objects = invoices + payments + reread
    return 1 if objects < 1000 else 1 + math.ceil(objects / 999)


def one_provider(provider: str, invoices: int, changed: int, runs: int,
                 boundary: list[int]) -> dict[str, Any]:
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from benchmarks.harness import fresh_database, median
    from benchmarks.sandbox_server import SandboxProcess, connector
    from benchmarks.sync_full import new_organisation
    from sync.engine import sync_organisation

    rounds, settled, by_ids = [], [], {}
    with SandboxProcess(provider, invoices, max(1, invoices // 10), invoices * 2 // 5) as box, \
            tempfile.TemporaryDirectory() as workdir, \
            fresh_database("sqlite", Path(workdir)) as url:
        engine = create_engine(url)
        with Session(engine) as session:
            org = new_organisation(session)
            source = connector(provider, box.url, box.tenant)
            sync_organisation(session, org, source)
            # The first incremental sync after a full one: nothing changed, but QuickBooks asks
            # CDC from the oldest bookmark (the customers', hours older here), and from then on
            # every kind's bookmark moves with the answers.
            before = box.calls()
            first = sync_organisation(session, org, source)
            first_incremental = {"calls": box.calls() - before, "counts": first.counts}

            def measured(count: int, reread: int) -> dict[str, Any]:
                time.sleep(1.01 - time.time() % 1)  # into the next second of the clock
                made = box.change_invoices(count)
                before = box.calls()
                started = time.perf_counter()
                result = sync_organisation(session, org, source)
                seconds = time.perf_counter() - started
                return {"changed": made, "calls": box.calls() - before,
                        "floor": floor_of(provider, made, made, reread), "seconds": seconds,
                        "counts": result.counts,
                        "changed_invoices": len(result.changed_invoice_ids)}

            for _ in range(runs):
                rounds.append(measured(changed, 0))
            for count in boundary:
                time.sleep(2)  # settle: a sync two seconds after the last change, so that
                sync_organisation(session, org, source)  # the next reads none again
                settled.append(measured(count, 0))
            if provider == "xero":
                ids = requests.get(f"{box.url}/_bench/invoices", params={"tenant": box.tenant},
                                   timeout=60).json()["ids"]
                for named in (3, 150, changed):
                    before = box.calls()
                    read = source.invoices_by_id(ids[:named])
                    by_ids[str(named)] = {"calls": box.calls() - before, "read": len(read),
                                          "floor": math.ceil(named / 150)}
        engine.dispose()
    worst = max(r["calls"] - r["floor"] for r in rounds)
    out = {"changed": changed, "runs": runs, "api_calls": rounds[0]["calls"],
           "api_call_floor": rounds[0]["floor"], "worst_calls_over_floor": worst,
           "calls_per_round": [r["calls"] for r in rounds],
           "floor_per_round": [r["floor"] for r in rounds],
           "counts_per_round": [r["counts"] for r in rounds],
           "median_seconds": median([r["seconds"] for r in rounds]),
           "counts": rounds[0]["counts"],
           "changed_invoices_seen": rounds[0]["changed_invoices"],
           "settled_rounds": [{k: r[k] for k in ("changed", "calls", "floor", "counts")}
                              for r in settled]}
    out["first_incremental_after_full"] = first_incremental
    if by_ids:
        out["webhook_invoices_by_ids"] = by_ids
    return out


def main() -> None:
    import logging

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--invoices", type=int, default=10_000)
    parser.add_argument("--changed", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--boundary", default="500,499",
                        help="changed invoices of each settled round, comma-separated")
    args = parser.parse_args()
    boundary = [int(n) for n in args.boundary.split(",") if n.strip()]
    logging.disable(logging.INFO)

    from benchmarks.harness import machine

    providers = {p: one_provider(p, args.invoices, args.changed, args.runs, boundary)
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
