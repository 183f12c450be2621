"""Chaos: writebacks over many organisations while real RQ workers are killed with SIGKILL.

Xero and QuickBooks sandboxes serve in this process (they outlive every worker); `dunwell
worker` processes run the ledger's actions against them, and die at random named points
(`DUNWELL_CRASH_POINTS`: after the claim, after a provider answer before it is recorded, after
the commit) and are restarted. Along the way: a thousand concurrent enqueues of one action, the
second half of the actions booked twice for the same moment (two schedulers), and Redis flushed
in the middle of the run (the workers' sweep gives every open action its job back). At the end
the sandboxes are counted: every effect (email, note, fee line, fee invoice, credit note) at
most once, every action done or skipped with a reason.

    python -m benchmarks.chaos                 # the issue's scale: 1,000 writebacks, 20 orgs
    python -m benchmarks.chaos --orgs 4 --invoices 8 --workers 2

Prints one JSON object. DATABASE_URL (default: a fresh SQLite file) and REDIS_URL (default
redis://127.0.0.1:6379/14; the database is flushed) say where; a PostgreSQL URL must name an
empty database.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from sqlalchemy import select
from werkzeug.serving import make_server

CLIENT, SECRET = "dunwell-demo", "dunwell-demo-secret"
UNLIMITED = 10**7
# What each invoice gets, in turn: (label, action kind, particulars).
WRITEBACKS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("reminder", "reminder", {"channel": "provider_email", "step_index": 0, "step_count": 3,
                              "template": "friendly"}),
    ("fee_line", "fee", {"amount": Decimal("10.00"), "details": {"placement": "line"}}),
    ("fee_invoice", "fee", {"amount": Decimal("15.00"), "details": {"placement": "invoice"}}),
    ("credit_note", "discount", {"amount": Decimal("1.00"), "details": {"percent": "1"}}),
)
FINAL = ("done", "skipped")


@dataclass
class Scale:
    orgs: int = 20  # half Xero, half QuickBooks
    invoices: int = 50  # per organisation: one writeback each
    workers: int = 4
    crash: str = "claimed=0.02,answered=0.01,committed=0.02"
    flush_at: float | None = 0.5  # flush Redis once this share of actions is final
    storm: int = 1000  # concurrent enqueues of one action
    timeout: float = 900.0
    lease_seconds: float = 5.0


@dataclass
class Served:
    """One sandbox serving in this process."""

    state: Any
    server: Any
    url: str = field(init=False)

    def __post_init__(self) -> None:
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def _serve(wsgi_app: Any) -> Any:
    return make_server("127.0.0.1", 0, wsgi_app, threaded=True)


def serve_sandboxes() -> tuple[Served, Served]:
    from connectors.sandbox import quickbooks, xero

    x = xero.XeroSandbox(xero.SandboxConfig(
        per_minute_limit=UNLIMITED, per_day_limit=UNLIMITED, concurrent_limit=UNLIMITED,
        app_minute_limit=UNLIMITED))
    q = quickbooks.QuickBooksSandbox(quickbooks.SandboxConfig(
        per_minute_limit=UNLIMITED, concurrent_limit=UNLIMITED, emails_per_day=UNLIMITED))
    return Served(x, _serve(xero.create_app(x))), Served(q, _serve(quickbooks.create_app(q)))


def settings(database_url: str, redis_url: str, xero_url: str, qbo_url: str,
             keys: str) -> dict[str, str]:
    """The environment every worker process (and this process's app) runs with."""
    return {
        "DATABASE_URL": database_url, "REDIS_URL": redis_url, "SECRET_KEY": "chaos",
        "TOKEN_ENCRYPTION_KEYS": keys, "RQ_QUEUE": "chaos",
        "XERO_CLIENT_ID": CLIENT, "XERO_CLIENT_SECRET": SECRET,
        "XERO_AUTHORIZE_URL": f"{xero_url}/identity/connect/authorize",
        "XERO_TOKEN_URL": f"{xero_url}/connect/token",
        "XERO_REVOKE_URL": f"{xero_url}/connect/revocation",
        "XERO_API_URL": f"{xero_url}/api.xro/2.0",
        "XERO_CONNECTIONS_URL": f"{xero_url}/connections",
        "XERO_CALLS_PER_MINUTE": str(UNLIMITED), "XERO_CALLS_PER_DAY": str(UNLIMITED),
        "XERO_APP_CALLS_PER_MINUTE": str(UNLIMITED), "XERO_CALLS_IN_FLIGHT": "100",
        "QUICKBOOKS_CLIENT_ID": CLIENT, "QUICKBOOKS_CLIENT_SECRET": SECRET,
        "QUICKBOOKS_DISCOVERY_URL": f"{qbo_url}/.well-known/openid_configuration",
        "QUICKBOOKS_API_URL": f"{qbo_url}/v3",
        "QUICKBOOKS_CALLS_PER_MINUTE": str(UNLIMITED), "QUICKBOOKS_CALLS_IN_FLIGHT": "100",
    }


def flask_config(env: dict[str, str]) -> dict[str, Any]:
    config: dict[str, Any] = {k: v for k, v in env.items()
                              if k not in ("DATABASE_URL",)}
    config["SQLALCHEMY_DATABASE_URI"] = env["DATABASE_URL"]
    for name in ("XERO_CALLS_PER_MINUTE", "XERO_CALLS_PER_DAY", "XERO_APP_CALLS_PER_MINUTE",
                 "XERO_CALLS_IN_FLIGHT", "QUICKBOOKS_CALLS_PER_MINUTE",
                 "QUICKBOOKS_CALLS_IN_FLIGHT"):
        config[name] = int(env[name])
    return config


# --- books: organisations with overdue invoices, connected -----------------------------------


def _xero_books(x: Served, count: int, invoices: int, today: Any) -> str:
    """`count` tenants under one consent; returns its access token."""
    box = x.state
    ids = []
    for n in range(count):
        tenant = box.add_tenant(f"Chaos Trading {n} Ltd", "GB", "GBP", "GMTSTANDARDTIME")
        ids.append(tenant)
        for i in range(invoices):
            box.add_invoice(tenant, {
                "Type": "ACCREC", "Status": "AUTHORISED",
                "Contact": {"Name": f"Customer {n}-{i}",
                            "EmailAddress": f"customer{n}.{i}@example.com"},
                "Date": (today - timedelta(days=60)).isoformat(),
                "DueDate": (today - timedelta(days=30)).isoformat(),
                "LineItems": [{"Description": "Consulting", "Quantity": 1,
                               "UnitAmount": Decimal(100 + i), "AccountCode": "200",
                               "TaxType": "NONE"}]})
    event, token = str(uuid.uuid4()), secrets.token_urlsafe(32)
    now = box.now
    box.auth_events[event] = {"client_id": CLIENT, "connections": {
        str(uuid.uuid4()): {"tenantId": t, "created": now} for t in ids}}
    box.access_tokens[token] = {"auth_event_id": event, "client_id": CLIENT, "scope": "",
                                "expires_at": now + timedelta(days=365)}
    return token


def _quickbooks_books(q: Served, count: int, invoices: int, today: Any) -> dict[str, str]:
    """`count` companies, one consent each; returns their access tokens by realm."""
    from benchmarks.books import seed_quickbooks_books
    from connectors.sandbox.quickbooks import Consent

    box = q.state
    tokens = {}
    for n in range(count):
        # A company with its income account and "Services" item, and no customers yet.
        realm = seed_quickbooks_books(box, today, invoices=0, contacts=0, payments=0)
        for i in range(invoices):
            email = f"customer{n}.{i}@example.com"
            customer = box.create(realm, "Customer", {
                "DisplayName": f"Customer {n}-{i}", "PrimaryEmailAddr": {"Address": email}})
            box.create(realm, "Invoice", {
                "CustomerRef": {"value": customer["Id"]}, "BillEmail": {"Address": email},
                "TxnDate": (today - timedelta(days=60)).isoformat(),
                "DueDate": (today - timedelta(days=30)).isoformat(),
                "Line": [{"DetailType": "SalesItemLineDetail", "Amount": Decimal(100 + i),
                          "Description": "Planting", "SalesItemLineDetail": {}}]})
        consent = Consent(str(uuid.uuid4()), CLIENT, realm, "com.intuit.quickbooks.accounting",
                          box.config.clock())
        box.consents[consent.consent_id] = consent
        token = secrets.token_urlsafe(48)
        box.access_tokens[token] = {"consent_id": consent.consent_id,
                                    "expires_at": box.config.clock() + timedelta(days=365)}
        tokens[realm] = token
    return tokens


def connect_and_plan(app: Any, x: Served, q: Served, scale: Scale) -> list[int]:
    """Organisations connected and synced, one writeback planned per invoice; action ids."""
    from app.connections.services import connect_quickbooks, connect_xero
    from app.extensions import db
    from app.models import Action, Contact, Invoice, User
    from connectors.base import TokenSet
    from jobs.tasks import sync_org

    today = datetime.now(UTC).date()
    xero_orgs = scale.orgs // 2
    later = datetime.now(UTC) + timedelta(days=3650)
    with app.app_context():
        user = User(email="chaos@example.com", password_hash="-")
        db.session.add(user)
        db.session.commit()
        orgs = []
        if xero_orgs:
            token = _xero_books(x, xero_orgs, scale.invoices, today)
            orgs += [o.id for o in connect_xero(user, TokenSet(token, "unused", later))]
        for realm, token in _quickbooks_books(q, scale.orgs - xero_orgs, scale.invoices,
                                              today).items():
            orgs.append(connect_quickbooks(user, TokenSet(token, "unused", later), realm).id)
        ids = []
        now = datetime.now(UTC)
        for org_id in orgs:
            sync_org(org_id, plan_after=False)
            invoices = db.session.scalars(
                select(Invoice.id).where(Invoice.org_id == org_id, Invoice.status == "open")
                .order_by(Invoice.id)).all()
            for n, invoice_id in enumerate(invoices):
                invoice = db.session.get(Invoice, invoice_id)
                assert invoice is not None and invoice.contact_id is not None
                assert db.session.get(Contact, invoice.contact_id).email  # type: ignore[union-attr]
                label, kind, particulars = WRITEBACKS[n % len(WRITEBACKS)]
                action = Action(org_id=org_id, invoice_id=invoice.id,
                                key=f"{org_id}:{invoice.id}:{label}:chaos", kind=kind,
                                status="planned", planned_amount_due=invoice.amount_due,
                                currency=invoice.currency, scheduled_for=now, created_at=now,
                                updated_at=now, reason=f"Chaos {label}", **particulars)
                db.session.add(action)
                db.session.flush()
                ids.append(action.id)
        db.session.commit()
        from jobs.queues import queue

        queue().empty()  # the connections' first syncs: done above
        return ids


def book(app: Any, ids: list[int]) -> None:
    """First half now; second half in two seconds, booked twice as two schedulers would."""
    from jobs.queues import enqueue_once
    from jobs.tasks import ACTION_RETRY, execute_action

    half = len(ids) // 2
    at = datetime.now(UTC) + timedelta(seconds=2)
    with app.app_context():
        for action_id in ids[:half]:
            enqueue_once(execute_action, action_id, job_id=f"action-{action_id}",
                         retry=ACTION_RETRY)
        for _ in range(2):
            for action_id in ids[half:]:
                enqueue_once(execute_action, action_id, job_id=f"action-{action_id}",
                             retry=ACTION_RETRY, at=at)


def storm(app: Any, action_id: int, times: int) -> None:
    """`times` enqueues of one action at once, from 16 threads."""
    from app.extensions import db
    from jobs.queues import enqueue_once
    from jobs.tasks import ACTION_RETRY, execute_action

    def enqueue(_: int) -> None:
        with app.app_context():
            enqueue_once(execute_action, action_id, job_id=f"action-{action_id}",
                         retry=ACTION_RETRY)
            db.session.remove()

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(enqueue, range(times)))


# --- workers that die ------------------------------------------------------------------


class Workers:
    """`count` worker processes, each restarted when it dies."""

    def __init__(self, env: dict[str, str], count: int) -> None:
        self.env = env
        self.processes: list[subprocess.Popen[bytes]] = []
        self.deaths = 0
        self.log = tempfile.NamedTemporaryFile(prefix="chaos-workers-", suffix=".log",
                                               delete=False)
        for _ in range(count):
            self.processes.append(self._start())

    def _start(self) -> subprocess.Popen[bytes]:
        command = [str(Path(sys.executable).with_name("dunwell")), "worker"]
        return subprocess.Popen(command, env=self.env, stdout=self.log, stderr=self.log,
                                start_new_session=True)

    def keep_alive(self) -> None:
        for n, process in enumerate(self.processes):
            if process.poll() is not None:
                self.deaths += process.returncode == -signal.SIGKILL
                _kill_group(process)  # its RQ scheduler process, orphaned
                self.processes[n] = self._start()

    def stop(self) -> None:
        for process in self.processes:
            _kill_group(process)
            process.wait()
        self.log.close()


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


# --- counting the books ----------------------------------------------------------------


def count_effects(app: Any, x: Served, q: Served) -> dict[str, Any]:
    """For each action: how many times its effect is in the books; and the ledger's states."""
    from app.extensions import db
    from app.models import Action, Connection, Invoice
    from connectors.base import effect_marker

    with app.app_context():
        rows = db.session.execute(
            select(Action.id, Action.key, Action.kind, Action.status, Action.result,
                   Action.attempts, Invoice.provider_id, Connection.provider,
                   Connection.tenant_id)
            .join(Invoice, Invoice.id == Action.invoice_id)
            .join(Connection, Connection.org_id == Action.org_id)).all()
    # Everything the sandboxes hold, by tenant.
    xbox, qbox = x.state, q.state
    effects: dict[str, Counter[str]] = {}
    xero_tenants = {r.tenant_id for r in rows if r.provider == "xero"}
    qbo_realms = {r.tenant_id for r in rows if r.provider == "quickbooks"}

    def tally(label: str, texts: list[str]) -> None:
        counter = effects.setdefault(label, Counter())
        for text in texts:
            counter[text] += 1

    for tenant in xero_tenants:
        tally("email", [f"{tenant}:{e['InvoiceID']}" for e in xbox.emails(tenant)])
        tally("note", [f"{tenant}:{h['InvoiceID']}" for h in xbox.history(tenant)
                       if str(h["Details"]).startswith("Dunwell")])
        texts = []
        for invoice in xbox.tenant(tenant).invoices.values():
            texts += [str(line.get("Description") or "") for line in invoice["LineItems"]]
        tally("line", texts)
        tally("credit", [str(n["Reference"]) for n in xbox.credit_notes(tenant)])
    for realm in qbo_realms:
        tally("email", [f"{realm}:{e['InvoiceId']}" for e in qbox.emails(realm)])
        texts, notes = [], []
        for invoice in qbox.invoices(realm):
            texts += [str(line.get("Description") or "") for line in invoice["Line"]]
            notes += str(invoice.get("PrivateNote") or "").splitlines()
        tally("line", texts)
        tally("note", [line for line in notes if "Dunwell" in line])
        tally("credit", [str(m.get("PrivateNote") or "") for m in qbox.credit_memos(realm)])

    def times(label: str, needle: str) -> int:
        return sum(n for text, n in effects.get(label, Counter()).items() if needle in text)

    duplicates: Counter[str] = Counter()
    missing: Counter[str] = Counter()
    states = Counter(r.status for r in rows)
    unexplained = []
    for r in rows:
        marker = effect_marker(r.key)
        label = r.key.split(":")[2]
        where = f"{r.tenant_id}:{r.provider_id}"
        if label == "reminder":
            found = {"email": times("email", where),
                     "note": times("note", where) if r.provider == "xero"
                     else times("note", effect_marker(f"{r.key}:note"))}
        elif label in ("fee_line", "fee_invoice"):
            found = {label: times("line", marker)}
        else:
            found = {"credit_note": times("credit", marker)}
        for what, n in found.items():
            duplicates[what] += max(0, n - 1)
            if r.status == "done" and n == 0:
                missing[what] += 1
        if r.status == "skipped" and not (r.result or {}).get("reason"):
            unexplained.append(r.key)
    open_ = sum(n for s, n in states.items() if s not in FINAL)
    return {
        "actions": len(rows), "states": dict(states),
        "duplicates": sum(duplicates.values()), "duplicates_by_kind": dict(duplicates),
        "lost": open_ + len(unexplained) + sum(missing.values()),
        "missing_effects": dict(missing), "skipped_without_reason": len(unexplained),
        "executions": sum(r.attempts for r in rows),
    }


def _final_share(app: Any, ids: list[int]) -> float:
    from app.extensions import db
    from app.models import Action

    with app.app_context():
        done = db.session.query(Action).filter(Action.status.in_(FINAL)).count()
        db.session.remove()
    return done / max(1, len(ids))


def run(scale: Scale, database_url: str, redis_url: str,
        progress: Callable[[str], None] = lambda line: None) -> dict[str, Any]:
    """The whole experiment; returns the figures (see the module's docstring)."""
    from redis import Redis

    from app import create_app
    from app.extensions import db
    from app.models import Action
    from migrations import upgrade

    started = time.perf_counter()
    Redis.from_url(redis_url).flushdb()
    upgrade(url=database_url)
    x, q = serve_sandboxes()
    env = settings(database_url, redis_url, x.url, q.url, Fernet.generate_key().decode())
    app = create_app(flask_config(env))
    workers: Workers | None = None
    try:
        ids = connect_and_plan(app, x, q, scale)
        progress(f"{len(ids)} actions planned over {scale.orgs} organisations")
        set_up = time.perf_counter()
        book(app, ids)
        worker_env = {**os.environ, **env, "DUNWELL_CRASH_POINTS": scale.crash,
                      "DUNWELL_ACTION_LEASE_SECONDS": str(scale.lease_seconds),
                      "DUNWELL_SWEEP_SECONDS": "2", "DUNWELL_STUCK_SECONDS": "4",
                      "PYTHONUNBUFFERED": "1"}
        workers = Workers(worker_env, scale.workers)
        storm_target = ids[0]
        if scale.storm:
            storm(app, storm_target, scale.storm)
        flushed = 0
        deadline = time.monotonic() + scale.timeout
        while time.monotonic() < deadline:
            workers.keep_alive()
            share = _final_share(app, ids)
            if scale.flush_at is not None and not flushed and share >= scale.flush_at:
                Redis.from_url(redis_url).flushdb()  # every queued and scheduled job is gone
                flushed = 1
                progress(f"redis flushed at {share:.0%}")
            if share >= 1.0:
                break
            time.sleep(0.5)
        run_seconds = time.perf_counter() - set_up
        deaths = workers.deaths
        workers.stop()
        workers = None
        figures = count_effects(app, x, q)
        with app.app_context():
            storm_action = db.session.get(Action, storm_target)
            assert storm_action is not None
            storm_attempts = storm_action.attempts
        return {
            "benchmark": "chaos", "database": database_url.split(":", 1)[0].split("+")[0],
            "organisations": scale.orgs, "writebacks": len(ids), "workers": scale.workers,
            **figures,
            "worker_kills": deaths, "redis_flushes": flushed,
            "storm_enqueues": scale.storm, "storm_action_claims": storm_attempts,
            "schedulers": scale.workers,
            "wall_seconds": round(run_seconds, 1),
            "total_seconds": round(time.perf_counter() - started, 1),
            "crash_points": scale.crash,
        }
    finally:
        if workers is not None:
            workers.stop()
        with app.app_context():
            db.engine.dispose()
        x.server.shutdown()
        q.server.shutdown()


def main(argv: list[str] | None = None) -> None:
    import logging

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = Scale()
    parser.add_argument("--orgs", type=int, default=defaults.orgs)
    parser.add_argument("--invoices", type=int, default=defaults.invoices,
                        help="writebacks per organisation")
    parser.add_argument("--workers", type=int, default=defaults.workers)
    parser.add_argument("--crash", default=defaults.crash)
    parser.add_argument("--storm", type=int, default=defaults.storm)
    parser.add_argument("--timeout", type=float, default=defaults.timeout)
    parser.add_argument("--lease-seconds", type=float, default=defaults.lease_seconds)
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the workers are stopped too
    scale = Scale(orgs=args.orgs, invoices=args.invoices, workers=args.workers,
                  crash=args.crash, storm=args.storm, timeout=args.timeout,
                  lease_seconds=args.lease_seconds)
    with tempfile.TemporaryDirectory() as workdir:
        database_url = os.environ.get("DATABASE_URL") or \
            f"sqlite:///{Path(workdir) / 'chaos.sqlite3'}"
        redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14")
        print(json.dumps(run(scale, database_url, redis_url,
                             progress=lambda line: print(line, file=sys.stderr))))


if __name__ == "__main__":
    main()
