"""The organisation's invoice list (`GET /orgs/<id>`, collect/invoice_list.py) on PostgreSQL
with 50,000 invoices in one book: the page as a signed-in owner gets it, through the whole
Flask stack (role check, queries, template), for the asks a collector makes all day: the
first page, a search by customer and by amount, filters (aging bucket, status, next action,
disputed, due now), every sort, and pages deep in the list by keyset. Target: p95 < 150 ms.

Run: `.venv/bin/python -m benchmarks.invoice_list [--invoices N] [--rounds N]`. Prints one
JSON object.

The book is loaded with COPY into a fresh, migrated database: 2,000 customers; invoices in
GBP (80 %), EUR (15 %) and USD (5 %), 60 % open, 35 % paid, the rest voided or draft, due
over the last 200 days and the next 60; a done reminder for every third open invoice, a
planned action for every twentieth (a tenth of them due now), a promise for one in a hundred,
a dispute for one in two hundred.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import re
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
TODAY = NOW.date()
TARGET_P95_MS = 150.0
EMAIL, PASSWORD = "owner@example.com", "a long benchmark password"
KINDS = ("reminder", "fee", "interest", "call_task")


def load(url: str, invoices: int, customers: int = 2_000) -> dict[str, int]:
    """The book, by COPY; what was made."""
    import psycopg

    from app.auth.views import hash_password
    from benchmarks.harness import copy_rows as _copy

    rng = random.Random(24)
    made = {"invoices": invoices, "customers": customers, "done_actions": 0,
            "pending_actions": 0, "promises": 0, "disputed": 0}
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        conn.execute("INSERT INTO organisations (id, name, country, timezone, base_currency,"
                     " created_at, mode) VALUES (1, 'Harbour Coffee', 'GB', 'Europe/London',"
                     " 'GBP', %s, 'live')", (NOW - timedelta(days=400),))
        conn.execute("INSERT INTO users (id, email, name, password_hash, created_at) VALUES"
                     " (1, %s, 'Owner', %s, %s)", (EMAIL, hash_password(PASSWORD), NOW))
        conn.execute("INSERT INTO memberships (user_id, org_id, role) VALUES (1, 1, 'owner')")
        _copy(conn, "contacts", ["id", "org_id", "provider_id", "name", "email", "is_customer",
                                 "archived", "excluded", "disputed", "is_business",
                                 "stop_service", "on_hold"],
              ((c, 1, f"C{c}", f"Customer {c:04d} Ltd", f"accounts{c}@example.com", "t", "f",
                "f", "f", "t", "f", "f") for c in range(1, customers + 1)))
        rows, done, pending, promises = [], [], [], []
        for n in range(1, invoices + 1):
            roll = rng.random()
            status = "open" if roll < 0.6 else "paid" if roll < 0.95 else \
                "voided" if roll < 0.98 else "draft"
            currency = "GBP" if n % 20 < 16 else "EUR" if n % 20 < 19 else "USD"
            due = TODAY - timedelta(days=rng.randint(-60, 200))
            total = rng.randint(2_000, 900_000)
            owed = total if status == "open" and rng.random() < 0.8 else \
                rng.randint(0, total) if status == "open" else 0
            next_at = (NOW + timedelta(hours=rng.randint(-72, 24 * 30))).isoformat() \
                if status == "open" else None
            disputed = "t" if status == "open" and n % 200 == 0 else "f"
            made["disputed"] += disputed == "t"
            rows.append((n, 1, f"P{n}", f"INV-{n:06d}", rng.randint(1, customers), currency,
                         (due - timedelta(days=30)).isoformat(), due.isoformat(),
                         f"{total / 100:.2f}", f"{(total - owed) / 100:.2f}",
                         f"{owed / 100:.2f}", status, status.upper(), next_at, disputed))
            if status == "open" and n % 3 == 0:
                done.append((n, "reminder", (NOW - timedelta(days=rng.randint(1, 60))), "done"))
            if status == "open" and n % 20 == 0:
                soon = NOW - timedelta(hours=1) if n % 200 == 0 else \
                    NOW + timedelta(days=rng.randint(1, 14))
                pending.append((n, KINDS[n % len(KINDS)], soon, "planned"))
            if status == "open" and n % 100 == 7:
                promises.append((n, TODAY + timedelta(days=rng.randint(1, 30)), owed))
        _copy(conn, "invoices", [
            "id", "org_id", "provider_id", "number", "contact_id", "currency", "issue_date",
            "due_date", "total", "amount_paid", "amount_due", "status", "provider_status",
            "next_action_at", "disputed"], rows)
        actions = done + pending
        _copy(conn, "actions", ["org_id", "invoice_id", "key", "kind", "scheduled_for",
                                "status", "attempts", "created_at", "updated_at"],
              ((1, invoice, f"1:{invoice}:{kind}:{n}", kind, when.isoformat(), status, 0,
                NOW.isoformat(), NOW.isoformat())
               for n, (invoice, kind, when, status) in enumerate(actions)))
        _copy(conn, "payment_promises", ["org_id", "invoice_id", "pay_by", "amount", "currency",
                                         "paid_before", "status", "created_at"],
              ((1, invoice, day.isoformat(), f"{owed / 100:.2f}", "GBP", "0", "open",
                NOW.isoformat()) for invoice, day, owed in promises))
        for table in ("organisations", "users", "contacts", "invoices", "actions"):
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                         f" (SELECT max(id) FROM {table}))")
        conn.execute("ANALYZE")
        made.update(done_actions=len(done), pending_actions=len(pending),
                    promises=len(promises))
    return made


def asks() -> dict[str, dict[str, str]]:
    """What a collector asks of the list, by name."""
    return {
        "first page": {},
        "open, oldest due first": {"status": "open", "sort": "due"},
        "largest amount first": {"sort": "amount", "order": "desc"},
        "search a customer": {"q": "customer 0042"},
        "search an amount": {"q": "1234.56"},
        "search a number": {"q": "INV-0123"},
        "31-60 days overdue": {"bucket": "31-60", "status": "open"},
        "90+ days by amount": {"bucket": "90+", "sort": "amount", "order": "desc"},
        "one customer": {"customer": "42"},
        "customers by name": {"who": "customer 01"},
        "next action: fee": {"next": "fee"},
        "disputed": {"flag": "disputed"},
        "promised": {"flag": "promised"},
        "due now": {"due_now": "1"},
        "by customer name": {"sort": "customer"},
        "by number, descending": {"sort": "number", "order": "desc"},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--invoices", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=20, help="requests of each ask")
    parser.add_argument("--deep-pages", type=int, default=20,
                        help="pages followed by their next link from the first")
    args = parser.parse_args()
    logging.disable(logging.WARNING)

    from cryptography.fernet import Fernet

    from app import create_app
    from benchmarks.harness import fresh_database, machine
    from store.db import db

    measured_on = machine()  # the load average before the run, as the other scripts say it
    with tempfile.TemporaryDirectory() as workdir, \
            fresh_database("postgresql", Path(workdir)) as url:
        started = time.perf_counter()
        made = load(url, args.invoices)
        load_seconds = round(time.perf_counter() - started, 1)
        app = create_app({"SECRET_KEY": "benchmark", "SQLALCHEMY_DATABASE_URI": url,
                          "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
                          "SESSION_COOKIE_SECURE": False, "CLOCK": lambda: NOW,
                          "TESTING": True})
        client = app.test_client()
        page = client.get("/signin")
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text)
        assert token is not None, "the sign-in page has no CSRF token"
        signed = client.post("/signin", data={"csrf_token": token.group(1),
                                              "email": EMAIL, "password": PASSWORD})
        assert signed.status_code == 302, signed.status_code

        def timed(query: dict[str, str]) -> tuple[float, str]:
            begun = time.perf_counter()
            answer = client.get("/orgs/1", query_string=query)
            took = (time.perf_counter() - begun) * 1000
            assert answer.status_code == 200, answer.status_code
            return took, answer.text

        for query in asks().values():  # warm the caches and the templates once
            timed(query)
        per_ask: dict[str, list[float]] = {name: [] for name in asks()}
        for _ in range(args.rounds):
            for name, query in asks().items():
                per_ask[name].append(timed(query)[0])
        # Deep pages: follow "next" from the first page, as a reader paging on would.
        deep: list[float] = []
        paging: dict[str, str] = {}
        for _ in range(args.deep_pages):
            took, text = timed(paging)
            deep.append(took)
            found = re.search(r'rel="next" href="[^"]*[?&]after=([^&"#]+)', text)
            if not found:
                break
            paging = {"after": found.group(1)}
        per_ask["next pages (keyset)"] = deep
        with app.app_context():
            db.session.remove()
            db.engine.dispose()

    every = [ms for values in per_ask.values() for ms in values]
    p95 = round(statistics.quantiles(every, n=100)[94], 1)

    def summary(values: list[float]) -> dict[str, float]:
        ordered = sorted(values)
        return {"p50_ms": round(statistics.median(ordered), 1),
                "p95_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))], 1),
                "max_ms": round(ordered[-1], 1)}

    print(json.dumps({
        "benchmark": "invoice_list", "database": "postgresql", **made,
        "load_seconds": load_seconds, "requests": len(every),
        "p50_ms": round(statistics.median(every), 1), "p95_ms": p95,
        "max_ms": round(max(every), 1), "deep_pages_followed": len(deep),
        "asks": {name: summary(values) for name, values in per_ask.items()},
        "targets": {"p95_ms": {"target": TARGET_P95_MS, "actual": p95,
                               "met": p95 < TARGET_P95_MS}},
        "machine": measured_on}))


if __name__ == "__main__":
    main()
