"""The daily planning pass over 1,000,000 invoices in 200 organisations, on PostgreSQL, with
0.2 %, 2 % and 20 % of them due: wall time and rows touched of `jobs/plan.plan_org` per
organisation (what `jobs.tasks.plan_org` runs, committing each organisation's plan).

Run: `.venv/bin/python -m benchmarks.plan_daily [--invoices N] [--organisations N]
[--sample-orgs N]`. Prints one JSON object.

The book is loaded with COPY into a fresh database: per organisation one customer with an
e-mail address and the default policy (reminders 3 days before, on, 7 and 21 days after the
due date); every invoice open. A due invoice is 7 days overdue with its next action time an
hour ago (its "overdue_1" reminder is due); the others are due in 30 days, with their next
action time then. Between fractions the ledger is emptied and the next action times are set
again, so each pass plans from the same state.

The pass writes an organisation's actions set-wise (`collect.ledger.record_planned_many`: one
INSERT ... ON CONFLICT (key) DO NOTHING per thousand actions, one UPDATE of next action times),
so what remains per organisation is a dozen round trips (the due invoices, the policy, the
ledger, payments, plans, credit control) whatever its due count. 2 % and 20 % can still be
measured on `--sample-orgs` / `--sample-orgs-20` organisations and scaled by 200 / sample to
the whole run (`extrapolated: true`), to keep `make bench` short.
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

NOW = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)  # a Wednesday, 10:00 in London
TODAY = NOW.date()
FRACTIONS = (0.002, 0.02, 0.2)
TARGET_SECONDS_AT_2_PERCENT = 2.0


def _copy(conn: Any, table: str, columns: list[str], rows: Any) -> None:
    with conn.cursor() as cursor, cursor.copy(
            f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        buffer = io.StringIO()
        for n, row in enumerate(rows, 1):
            buffer.write("\t".join("\\N" if v is None else str(v) for v in row) + "\n")
            if n % 50_000 == 0:
                copy.write(buffer.getvalue())
                buffer = io.StringIO()
        copy.write(buffer.getvalue())


def load(url: str, organisations: int, invoices: int) -> float:
    """The organisations, customers, policies and invoices, by COPY; seconds taken."""
    import psycopg

    from rules import default_policy, policy_to_json

    started = time.perf_counter()
    per_org = invoices // organisations
    policy = json.dumps(policy_to_json(default_policy()))
    created = NOW - timedelta(days=400)
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        _copy(conn, "organisations", ["id", "name", "country", "timezone", "base_currency",
                                      "created_at"],
              ((o, f"Org {o}", "GB", "Europe/London", "GBP", created.isoformat())
               for o in range(1, organisations + 1)))
        _copy(conn, "contacts", ["id", "org_id", "provider_id", "name", "email", "is_customer",
                                 "archived", "excluded", "disputed", "is_business",
                                 "stop_service"],
              ((o, o, f"C{o}", f"Customer {o}", f"accounts{o}@example.com", "t", "f", "f",
                "f", "t", "f") for o in range(1, organisations + 1)))
        _copy(conn, "policies", ["org_id", "version", "body", "updated_at"],
              ((o, 1, policy.replace("\\", "\\\\"), created.isoformat())
               for o in range(1, organisations + 1)))
        later = (TODAY + timedelta(days=30)).isoformat()
        _copy(conn, "invoices", [
            "id", "org_id", "provider_id", "number", "contact_id", "contact_provider_id",
            "currency", "issue_date", "due_date", "total", "amount_paid", "amount_due",
            "status", "provider_status", "disputed"],
            ((n + 1, n // per_org + 1, f"P{n + 1}", f"INV-{n + 1:07d}", n // per_org + 1,
              f"C{n // per_org + 1}", "GBP", "2026-01-01", later, "1200.00", "0.00",
              "1200.00", "open", "AUTHORISED", "f") for n in range(per_org * organisations)))
        for table in ("organisations", "contacts", "invoices", "policies"):
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                         f"(SELECT max(id) FROM {table}))")
        conn.execute("ANALYZE")
    return time.perf_counter() - started


def prepare(url: str, fraction: float) -> int:
    """Empty the ledger; make `fraction` of every organisation's invoices due now."""
    import psycopg

    modulo = 1000
    due = round(fraction * modulo)
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        conn.execute("TRUNCATE actions, audit_events CASCADE")
        conn.execute(
            "UPDATE invoices SET due_date = CASE WHEN id %% %s < %s THEN %s ELSE %s END, "
            "next_action_at = CASE WHEN id %% %s < %s THEN %s ELSE %s END",
            (modulo, due, TODAY - timedelta(days=7), TODAY + timedelta(days=30),
             modulo, due, NOW - timedelta(hours=1),
             datetime.combine(TODAY + timedelta(days=27), datetime.min.time(), tzinfo=UTC)
             + timedelta(hours=9)))
        conn.execute("ANALYZE invoices")
        row = conn.execute("SELECT count(*) FROM invoices WHERE next_action_at <= %s",
                           (NOW,)).fetchone()
    return int(row[0]) if row else 0


def plan_pass(url: str, org_ids: list[int]) -> dict[str, Any]:
    """jobs/plan.plan_org for each organisation, committed per organisation as the job does."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from collect.plan import plan_org
    from store.models import Organisation

    engine = create_engine(url)
    planned = 0
    try:
        with Session(engine) as session:
            started = time.perf_counter()
            for org_id in org_ids:
                org = session.get(Organisation, org_id)
                assert org is not None
                actions = plan_org(session, org, NOW)
                planned += len(actions)
                session.commit()
            seconds = time.perf_counter() - started
    finally:
        engine.dispose()
    return {"seconds": seconds, "actions_planned": planned}


def main() -> None:
    import logging

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--invoices", type=int, default=1_000_000)
    parser.add_argument("--organisations", type=int, default=200)
    parser.add_argument("--sample-orgs", type=int, default=200,
                        help="organisations planned at 2 %% (scaled to all)")
    parser.add_argument("--sample-orgs-20", type=int, default=10,
                        help="organisations planned at 20 %% (scaled to all)")
    args = parser.parse_args()
    logging.disable(logging.WARNING)

    from sqlalchemy import create_engine, func, select

    from benchmarks.harness import fresh_database, machine
    from store.models import Invoice

    orgs = list(range(1, args.organisations + 1))
    fractions: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as workdir, \
            fresh_database("postgresql", Path(workdir)) as url:
        load_seconds = load(url, args.organisations, args.invoices)
        for fraction in FRACTIONS:
            due = prepare(url, fraction)
            sample = orgs if fraction < 0.01 else orgs[:args.sample_orgs] \
                if fraction < 0.1 else orgs[:args.sample_orgs_20]
            result = plan_pass(url, sample)
            scale = len(orgs) / len(sample)
            engine = create_engine(url)
            with engine.connect() as conn:
                still_due = conn.execute(select(func.count()).select_from(Invoice).where(
                    Invoice.next_action_at <= NOW, Invoice.org_id.in_(sample))).scalar()
            engine.dispose()
            due_in_sample = round(due / scale)
            fractions[f"{fraction * 100:g}%"] = {
                "due": due, "organisations_planned": len(sample),
                "extrapolated": scale != 1,
                "seconds": round(result["seconds"] * scale, 3),
                "measured_seconds": round(result["seconds"], 3),
                "rows_touched": {"invoices_read": due_in_sample,
                                 "actions_written": result["actions_planned"],
                                 "invoices_updated": due_in_sample},
                "due_invoices_per_second": round(due_in_sample / result["seconds"]),
                "still_due_after_pass": still_due}
    per_due = [f["seconds"] / max(f["due"], 1) for f in fractions.values()]
    at_two = fractions["2%"]["seconds"]
    print(json.dumps({
        "benchmark": "plan_daily", "invoices": args.invoices,
        "organisations": args.organisations, "now": NOW.isoformat(),
        "load_seconds": round(load_seconds, 1), "fractions": fractions,
        "seconds_per_due_invoice": [round(p * 1000, 3) for p in per_due],
        "targets": {
            "seconds_at_2_percent": {"target": TARGET_SECONDS_AT_2_PERCENT, "actual": at_two,
                                     "met": at_two <= TARGET_SECONDS_AT_2_PERCENT},
            "proportional_to_due": {
                "target": "ms per due invoice within 2x across 0.2 %, 2 %, 20 %",
                "ms_per_due_invoice": [round(p * 1000, 3) for p in per_due],
                "met": max(per_due) <= 2 * min(per_due)}},
        "machine": machine()}))


if __name__ == "__main__":
    main()
