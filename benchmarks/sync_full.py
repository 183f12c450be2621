"""First sync of a large organisation (50,000 invoices, 5,000 contacts, 20,000 payments), for
Xero and for QuickBooks, into PostgreSQL and into SQLite: API calls against the floor, wall
time, invoices/s, peak RSS of the syncing process, and the database's own ingest rate.

Run: `.venv/bin/python -m benchmarks.sync_full [--invoices N --contacts N --payments N]
[--runs R] [--e2e-databases postgresql,sqlite] [--pages DIR]`. Prints one JSON object.

Three processes, so each one's memory and CPU are its own: the sandbox (books seeded with
benchmarks/books.py, served by benchmarks/sandbox_server.py with its rate limits lifted, as
this measures calls and ingest, not waits; `writeback` measures the limits), the syncing
process (a child of this one, `sync/engine.sync_organisation` with our real connector over
HTTP, each page timed between the connector's answer and the next request), and this one.

- `end_to_end`: one sync over HTTP per provider and database, at full size (measured once:
  the sandbox serves a large book at about a second a page, so five runs of each would not
  fit `make bench`'s ten minutes). `waiting_seconds` is time spent in the connector (HTTP,
  the sandbox, JSON parsing into records); `database_seconds` the rest (upserts, commits).
- `ingest`: the pages read in the end-to-end run, replayed from a file into a fresh database
  by a connector that only reads them back: the database's own rate, the median of `--runs`
  runs (each a fresh process and database), with the peak RSS of each. With `--pages DIR`
  the pages are kept in DIR, and where DIR already holds a provider's pages the end-to-end run
  is skipped and only `ingest` is measured from them: the same pages for every tree compared
  (a before/after comparison runs the child, `--child replay --record DIR/<provider>-pages
  --database postgresql`, from each tree in turn).

The floor: one call for the organisation's details (QuickBooks: two, CompanyInfo and
Preferences) plus ceil(n / largest page) per record kind. The largest page is 1,000 for both:
Xero's `pageSize` maximum (connectors/xero.py PAGE_SIZE; the sandbox's MAX_PAGE_SIZE), and
QuickBooks' MAXRESULTS maximum (connectors/quickbooks.py PAGE_SIZE; the sandbox's
query_max_results, "MAXRESULTS above 1000 is served as 1000").
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

STREAMS = ("contacts", "invoices", "payments")
ORGANISATION_CALLS = {"xero": 1, "quickbooks": 2}
PAGE_SIZE = {"xero": 1000, "quickbooks": 1000}
TARGET_INVOICES_PER_SECOND = 20_000
TARGET_PEAK_RSS_MIB = 300


def call_floor(provider: str, counts: dict[str, int]) -> int:
    return ORGANISATION_CALLS[provider] + sum(
        max(1, math.ceil(counts[name] / PAGE_SIZE[provider])) for name in STREAMS)


def reachable_floor(provider: str, counts: dict[str, int]) -> int:
    """The least calls that can know they have read everything. Xero's answers carry their
    page count (`pagination.pageCount`): ceil(n / page). A QuickBooks query answer carries no
    total (`totalCount` comes only with `SELECT COUNT(*)`, a call of its own), so only a page
    that comes back short says the end has come: n // page + 1, one more than ceil(n / page)
    when n is a multiple of the page."""
    if provider != "quickbooks":
        return call_floor(provider, counts)
    return ORGANISATION_CALLS[provider] + sum(
        counts[name] // PAGE_SIZE[provider] + 1 for name in STREAMS)


# --- the syncing child --------------------------------------------------------------------


class TimedConnector:
    """Our connector, with the time spent inside it (the provider's answers) told apart from
    the time between pages (the database's), and each page written to a file if asked."""

    def __init__(self, inner: Any, record: Path | None = None) -> None:
        self.inner = inner
        self.record = record
        self.waiting = 0.0
        self.database: dict[str, float] = dict.fromkeys(STREAMS, 0.0)
        self.provider = inner.provider

    @property
    def calls(self) -> int:
        return int(self.inner.calls)

    def organisation(self) -> Any:
        started = time.perf_counter()
        details = self.inner.organisation()
        self.waiting += time.perf_counter() - started
        if self.record is not None:
            with open(f"{self.record}.organisation", "wb") as out:
                pickle.dump(details, out)
        return details

    def _pages(self, name: str, pages: Iterator[list[Any]]) -> Iterator[list[Any]]:
        out = open(f"{self.record}.{name}", "wb") if self.record is not None else None
        try:
            while True:
                started = time.perf_counter()
                try:
                    page = next(pages)
                except StopIteration:
                    return
                finally:
                    self.waiting += time.perf_counter() - started
                if out is not None:
                    pickle.dump(page, out)
                handed = time.perf_counter()
                yield page
                self.database[name] += time.perf_counter() - handed
        finally:
            if out is not None:
                out.close()

    def contacts(self, since: datetime | None) -> Iterator[list[Any]]:
        return self._pages("contacts", self.inner.contacts(since))

    def invoices(self, since: datetime | None) -> Iterator[list[Any]]:
        return self._pages("invoices", self.inner.invoices(since))

    def payments(self, since: datetime | None) -> Iterator[list[Any]]:
        return self._pages("payments", self.inner.payments(since))


class ReplayConnector:
    """Reads back the pages an earlier sync read, one at a time, and makes no calls."""

    def __init__(self, provider: str, record: Path) -> None:
        self.provider = provider
        self.record = record
        self.calls = 0

    def organisation(self) -> Any:
        with open(f"{self.record}.organisation", "rb") as source:
            return pickle.load(source)

    def _pages(self, name: str) -> Iterator[list[Any]]:
        with open(f"{self.record}.{name}", "rb") as source:
            while True:
                try:
                    yield pickle.load(source)
                except EOFError:
                    return

    def contacts(self, since: datetime | None) -> Iterator[list[Any]]:
        return self._pages("contacts")

    def invoices(self, since: datetime | None) -> Iterator[list[Any]]:
        return self._pages("invoices")

    def payments(self, since: datetime | None) -> Iterator[list[Any]]:
        return self._pages("payments")


def new_organisation(session: Any) -> Any:
    from store.models import Organisation

    org = Organisation(name="Benchmark books", country="GB", timezone="Europe/London",
                       base_currency="GBP")
    session.add(org)
    session.commit()
    return org


def sync_child(args: argparse.Namespace) -> dict[str, Any]:
    import logging

    from sqlalchemy import create_engine, func, select
    from sqlalchemy.orm import Session

    from benchmarks.harness import fresh_database, peak_rss_mib
    from benchmarks.sandbox_server import connector
    from store.models import Invoice
    from sync.engine import sync_organisation

    logging.disable(logging.INFO)
    record = Path(args.record) if args.record else None
    with tempfile.TemporaryDirectory() as workdir, \
            fresh_database(args.database, Path(workdir)) as url:
        engine = create_engine(url)
        try:
            with Session(engine) as session:
                org = new_organisation(session)
                if args.mode == "replay":
                    assert record is not None
                    source: Any = TimedConnector(ReplayConnector(args.provider, record))
                else:
                    source = TimedConnector(connector(args.provider, args.url, args.tenant),
                                            record)
                rss_before = peak_rss_mib()
                started = time.perf_counter()
                result = sync_organisation(session, org, source)
                seconds = time.perf_counter() - started
                stored = session.scalar(select(func.count()).select_from(Invoice))
        finally:
            engine.dispose()
    database_seconds = sum(source.database.values())
    return {"seconds": round(seconds, 3), "waiting_seconds": round(source.waiting, 3),
            "database_seconds": round(database_seconds, 3),
            "database_seconds_by_stream": {k: round(v, 3) for k, v in source.database.items()},
            "counts": result.counts, "invoices_stored": stored,
            "api_calls": result.api_calls, "peak_rss_mib": peak_rss_mib(),
            "rss_before_sync_mib": rss_before}


# --- the benchmark ------------------------------------------------------------------------


def end_to_end(provider: str, sizes: dict[str, int], databases: list[str],
               record: Path) -> dict[str, Any]:
    from benchmarks.harness import run_child
    from benchmarks.sandbox_server import SandboxProcess

    found: dict[str, Any] = {}
    with SandboxProcess(provider, sizes["invoices"], sizes["contacts"],
                        sizes["payments"]) as box:
        for n, database in enumerate(databases):
            before = box.calls()
            extra = ["--record", str(record)] if n == 0 else []
            run = run_child("benchmarks.sync_full", "--child", "http", "--provider", provider,
                            "--url", box.url, "--tenant", box.tenant, "--database", database,
                            *extra, timeout=1800)
            run["sandbox_counted_calls"] = box.calls() - before
            floor = call_floor(provider, run["counts"])
            reachable = reachable_floor(provider, run["counts"])
            invoices = run["counts"]["invoices"]
            found[database] = {
                "api_calls": run["sandbox_counted_calls"], "api_call_floor": floor,
                "calls_over_floor": run["sandbox_counted_calls"] - floor,
                "api_call_floor_reachable": reachable,
                "calls_over_reachable_floor": run["sandbox_counted_calls"] - reachable,
                "seconds": run["seconds"], "waiting_seconds": run["waiting_seconds"],
                "database_seconds": run["database_seconds"],
                "invoices_per_second": round(invoices / run["seconds"]),
                "invoices_per_database_second": round(
                    invoices / run["database_seconds_by_stream"]["invoices"]),
                "peak_rss_mib": run["peak_rss_mib"],
                "rss_before_sync_mib": run["rss_before_sync_mib"], "counts": run["counts"],
                "invoices_stored": run["invoices_stored"]}
    return found


def ingest(provider: str, databases: list[str], record: Path, runs: int) -> dict[str, Any]:
    from benchmarks.harness import median, run_child

    found: dict[str, Any] = {}
    for database in databases:
        results = [run_child("benchmarks.sync_full", "--child", "replay", "--provider",
                             provider, "--record", str(record), "--database", database)
                   for _ in range(runs)]
        invoices = results[0]["counts"]["invoices"]
        records = sum(results[0]["counts"].values())
        invoice_seconds = [r["database_seconds_by_stream"]["invoices"] for r in results]
        total_seconds = [r["database_seconds"] for r in results]
        found[database] = {
            "runs": runs, "median_database_seconds": median(total_seconds),
            "median_invoice_seconds": median(invoice_seconds),
            "invoices_per_second": round(invoices / median(invoice_seconds)),
            "records_per_second": round(records / median(total_seconds)),
            "min_invoices_per_second": round(invoices / max(invoice_seconds)),
            "max_invoices_per_second": round(invoices / min(invoice_seconds)),
            "median_peak_rss_mib": median([r["peak_rss_mib"] for r in results], 1),
            "max_peak_rss_mib": max(r["peak_rss_mib"] for r in results),
            "rss_before_sync_mib": results[0]["rss_before_sync_mib"],
            "invoices_stored": results[0]["invoices_stored"]}
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--invoices", type=int, default=50_000)
    parser.add_argument("--contacts", type=int, default=5_000)
    parser.add_argument("--payments", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=int(os.environ.get("RUNS", "5")))
    parser.add_argument("--providers", default="xero,quickbooks")
    parser.add_argument("--e2e-databases", default="postgresql,sqlite")
    parser.add_argument("--databases", default="postgresql,sqlite")
    parser.add_argument("--child", choices=("http", "replay"), dest="mode")
    parser.add_argument("--provider")
    parser.add_argument("--url")
    parser.add_argument("--tenant")
    parser.add_argument("--database")
    parser.add_argument("--record")
    parser.add_argument("--pages", help="keep the pages read over HTTP here; where they are "
                        "already, skip the end-to-end run and measure ingest from them")
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(sync_child(args)))
        return

    from benchmarks.harness import machine

    sizes = {"invoices": args.invoices, "contacts": args.contacts, "payments": args.payments}
    providers: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as workdir:
        pages = Path(args.pages) if args.pages else Path(workdir)
        pages.mkdir(parents=True, exist_ok=True)
        for provider in args.providers.split(","):
            record = pages / f"{provider}-pages"
            kept = args.pages is not None and Path(f"{record}.invoices").exists()
            e2e = {} if kept else end_to_end(provider, sizes, args.e2e_databases.split(","),
                                             record)
            providers[provider] = {
                "end_to_end": e2e,
                "ingest": ingest(provider, args.databases.split(","), record, args.runs)}
    pg_ingest = [p["ingest"].get("postgresql", {}).get("invoices_per_second", 0)
                 for p in providers.values()]
    rss = [r["peak_rss_mib"] for p in providers.values() for r in p["end_to_end"].values()] + \
        [r["max_peak_rss_mib"] for p in providers.values() for r in p["ingest"].values()]
    over = {f"{name}/{db}": r["calls_over_floor"] for name, p in providers.items()
            for db, r in p["end_to_end"].items()}
    over_reachable = {f"{name}/{db}": r["calls_over_reachable_floor"]
                      for name, p in providers.items() for db, r in p["end_to_end"].items()}
    print(json.dumps({
        "benchmark": "sync_full", "sizes": sizes, "providers": providers,
        "targets": {
            "calls_equal_floor": {"target": "api_calls == floor", "calls_over_floor": over,
                                  "met": all(v == 0 for v in over.values()) if over else None},
            "calls_equal_reachable_floor": {
                "target": "api_calls == reachable floor",
                "calls_over_reachable_floor": over_reachable,
                "met": all(v == 0 for v in over_reachable.values()) if over else None},
            "postgresql_ingest_invoices_per_second": {
                "target": TARGET_INVOICES_PER_SECOND, "actual": min(pg_ingest),
                "met": min(pg_ingest) >= TARGET_INVOICES_PER_SECOND},
            "peak_rss_mib": {"target": TARGET_PEAK_RSS_MIB, "actual": max(rss),
                             "met": max(rss) <= TARGET_PEAK_RSS_MIB}},
        "machine": machine()}))


if __name__ == "__main__":
    main()
