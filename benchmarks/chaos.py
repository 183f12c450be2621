"""Chaos: writebacks over many organisations while real RQ workers meet the faults production
brings.

Xero and QuickBooks sandboxes serve in this process (they outlive every worker), behind fault
injectors; `dunwell worker` processes run the ledger's actions against them over a Redis server
of this run's own (started here on a free port, never the machine's). Along the way:

- workers die at random named points (`DUNWELL_CRASH_POINTS`: after the claim, after a
  provider answer before it is recorded, after the commit) and are restarted, as a supervisor
  restarts a process that failed (one that exits 0 is not restarted: it counts as lost);
- a thousand concurrent enqueues of one action; the second half of the actions booked twice
  for the same moment (two schedulers); Redis flushed in the middle of the run;
- the providers forget idempotency keys (a share of writes arrives without one), so a retry
  after an unknown outcome must find the effect in the books;
- one worker's clock runs minutes fast;
- a worker holding a claim is paused (SIGSTOP) past its lease, another takes the action over,
  and the paused one resumes (SIGCONT);
- Redis is killed, kept down (a minute at full size) and started again empty;
- on PostgreSQL, the workers' database backends are terminated (pg_terminate_backend from a
  side connection) in bursts, under jobs and during commits;
- the first syncs of two more organisations fail on a provider 500 part-way (after the invoices
  were stored) and are retried;
- reminders texted through the Twilio emulator (a share of its answers lost after the text was
  queued, so a retry must look the text up instead of sending it again), to customers whose
  country is inside the law's texting hours for the whole run (chosen from the run's clock:
  quiet hours would otherwise hold every text back);
- customers paying invoices by card through the Stripe emulator (some declined first, then
  paid), its webhooks to this process's app held back and delivered twice, in reverse and then
  in shuffled order, while workers die after taking a stored event, after claiming a booking
  and between the books' answer and our commit.

At the end the sandboxes and the database are counted: every effect (email, note, fee line,
fee invoice, credit note, text at the Twilio emulator, card payment and its fee in the books) at
most once, and per effect kind what was expected, done and duplicated; every action done or
skipped with a reason, no action with two outcomes in the activity log, no invoice of an
interrupted first sync without its next-action time, no sync record left running, and as
many workers running as were started.

    python -m benchmarks.chaos                 # the issue's scale: 1,000 writebacks, 20 orgs
    python -m benchmarks.chaos --orgs 4 --invoices 8 --workers 2 --redis-down 5

Prints one JSON object. DATABASE_URL (default: a fresh SQLite file) says where; a PostgreSQL URL
must name an empty database of this run's own (its backends are terminated).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import secrets
import signal
import sqlite3
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
from datetime import time as wall_time
from decimal import Decimal
from pathlib import Path
from typing import Any

import phonenumbers
from cryptography.fernet import Fernet
from phonenumbers import PhoneNumberFormat, PhoneNumberType
from redis import Redis
from redis.exceptions import RedisError
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from sqlalchemy import create_engine, func, select
from sqlalchemy import text as sql_text
from werkzeug.serving import make_server

from benchmarks.harness import fresh_database

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
SMS_STEP: tuple[str, str, dict[str, Any]] = (
    "sms", "reminder", {"channel": "sms", "step_index": 0, "step_count": 3,
                        "template": "friendly"})
CARD = "card"  # no action: the invoice's customer pays it by card in the portal
FINAL = ("done", "skipped")
# Countries whose mobile numbers phonenumbers places in one time zone, around the world: at
# any hour one of them is inside the law's texting hours (08:00 to 21:00, rules/sms.py).
SMS_COUNTRIES = ("GB", "DE", "PL", "IL", "ZA", "IN", "SG", "JP", "AR", "BR", "US", "MX")


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
    redis_down: float = 60.0  # seconds Redis stays killed (0: not killed)
    pause: bool = True  # a worker holding a claim paused past its lease, then resumed
    clock_offset: float = 300.0  # seconds one worker's clock runs fast (0: none)
    forget_keys: float = 0.3  # share of writes whose idempotency key the provider forgot
    backend_bursts: int = 3  # PostgreSQL only: bursts of pg_terminate_backend (0: none)
    first_syncs: int = 2  # organisations whose first sync is interrupted, then retried
    first_sync_invoices: int = 20
    sms: bool = True  # a share of the invoices get a texted reminder
    cards: bool = True  # a share of the invoices are paid by card in the portal
    lost_texts: float = 0.2  # share of Twilio's answers to a new text lost on the way back
    card_crash: str = "card_received=0.1,card_claimed=0.05,card_answered=0.1"

    def ladder(self) -> list[tuple[str, str, dict[str, Any]]]:
        """What the invoices get in turn: the writebacks, a text, a card payment."""
        return [*WRITEBACKS, *([SMS_STEP] if self.sms else []),
                *([(CARD, "", {})] if self.cards else [])]


@dataclass
class Served:
    """One sandbox serving in this process, behind a fault injector."""

    state: Any
    faults: Any
    server: Any
    url: str = field(init=False)

    def __post_init__(self) -> None:
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def _serve(wsgi_app: Any) -> Any:
    return make_server("127.0.0.1", 0, wsgi_app, threaded=True)


def serve_sandboxes() -> tuple[Served, Served]:
    from sandboxes import quickbooks, xero
    from sandboxes.faults import FaultInjector

    x = xero.XeroSandbox(xero.SandboxConfig(
        per_minute_limit=UNLIMITED, per_day_limit=UNLIMITED, concurrent_limit=UNLIMITED,
        app_minute_limit=UNLIMITED))
    q = quickbooks.QuickBooksSandbox(quickbooks.SandboxConfig(
        per_minute_limit=UNLIMITED, concurrent_limit=UNLIMITED, emails_per_day=UNLIMITED))
    xf = FaultInjector(xero.create_app(x), "xero", seed=7)
    qf = FaultInjector(quickbooks.create_app(q), "quickbooks", seed=8)
    return Served(x, xf, _serve(xf)), Served(q, qf, _serve(qf))


@dataclass
class Channels:
    """The Twilio and Stripe emulators and this process's app (Stripe's webhooks and Twilio's
    status callbacks come to it), each serving in this process."""

    twilio: Served
    stripe: Served
    app_server: Any = None
    app_url: str = ""

    def serve_app(self, app: Any) -> str:
        self.app_server = _serve(app)
        self.app_url = f"http://127.0.0.1:{self.app_server.server_port}"
        threading.Thread(target=self.app_server.serve_forever, daemon=True).start()
        return self.app_url

    def shutdown(self) -> None:
        for server in (self.twilio.server, self.stripe.server, self.app_server):
            if server is not None:
                server.shutdown()


def serve_channels(lost_texts: float) -> Channels:
    from sandboxes import stripe, twilio

    t = twilio.TwilioSandbox(twilio.SandboxConfig())
    tf = twilio.TwilioFaults(twilio.create_app(t), seed=9)
    if lost_texts:
        tf.add("lost_answer", method="POST", path=r"/Messages\.json$", times=None,
               probability=lost_texts)
    s = stripe.StripeSandbox()
    served_stripe = Served(s, None, _serve(stripe.create_app(s)))
    s.config.base_url = served_stripe.url
    s.hold_webhooks = True  # delivered by the run, twice and out of order
    return Channels(Served(t, tf, _serve(tf)), served_stripe)


class Mobiles:
    """Distinct mobile numbers of one country, each one phonenumbers takes for a mobile."""

    def __init__(self, example: str) -> None:
        self.national = str(phonenumbers.parse(example).national_number)
        self.prefix = example[:len(example) - len(self.national)]
        self.next = 0
        self.used: set[str] = set()

    def take(self) -> str:
        from rules.sms import number_for

        while self.next < 100_000:
            digits = f"{self.national[:-5]}{self.next:05d}"
            self.next += 1
            found = number_for(f"{self.prefix}{digits}", None, None).e164
            if found and found not in self.used:
                self.used.add(found)
                return found
        raise RuntimeError("no more mobile numbers in the range")


def texting_country(now: datetime, horizon: timedelta) -> tuple[str, str]:
    """A country whose customers may be texted at every quarter hour from `now` for `horizon`
    (the law's hours in each of its zones, no public holiday, any weekday): the run's texts go
    out when they are due, none held back by quiet hours. Its code and an example mobile."""
    from rules.sms import may_text_at, zones_for

    steps = int(horizon.total_seconds() // 900) + 2
    for region in SMS_COUNTRIES:
        sample = phonenumbers.example_number_for_type(region, PhoneNumberType.MOBILE)
        if sample is None:
            continue
        example = phonenumbers.format_number(sample, PhoneNumberFormat.E164)
        zones = zones_for(example, None)
        if all(may_text_at(now + timedelta(minutes=15 * k), zones, wall_time(0), 24, region,
                           False)
               for k in range(steps)):
            return region, example
    raise RuntimeError(f"no country of {SMS_COUNTRIES} is inside texting hours for {horizon}")


class PrivateRedis:
    """A redis-server of this run's own on a free port: killed and started again empty (no
    persistence) without touching any other Redis on the machine."""

    def __init__(self) -> None:
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        client = Redis.from_url(self.url)
        for _ in range(100):
            try:
                client.ping()
                return
            except RedisError:
                time.sleep(0.05)
        raise RuntimeError("the private redis-server did not start")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


def settings(database_url: str, redis_url: str, xero_url: str, qbo_url: str,
             keys: str, channels: Channels | None = None) -> dict[str, str]:
    """The environment every worker process (and this process's app) runs with."""
    from sandboxes.twilio import DEMO_ACCOUNT_SID, DEMO_AUTH_TOKEN

    texts = {} if channels is None else {
        "TWILIO_ACCOUNT_SID": DEMO_ACCOUNT_SID, "TWILIO_AUTH_TOKEN": DEMO_AUTH_TOKEN,
        "TWILIO_FROM": "+15005550006", "TWILIO_API_URL": channels.twilio.url,
        "STRIPE_API_BASE": channels.stripe.url}
    return {**texts,
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


def _xero_books(x: Served, count: int, invoices: int, today: Any,
                mobiles: Mobiles | None = None) -> str:
    """`count` tenants under one consent, each contact with a mobile when `mobiles` gives
    them; returns its access token."""
    box = x.state
    ids = []
    for n in range(count):
        tenant = box.add_tenant(f"Chaos Trading {n} Ltd", "GB", "GBP", "GMTSTANDARDTIME")
        ids.append(tenant)
        for i in range(invoices):
            made = box.add_invoice(tenant, {
                "Type": "ACCREC", "Status": "AUTHORISED",
                "Contact": {"Name": f"Customer {n}-{i}",
                            "EmailAddress": f"customer{n}.{i}@example.com"},
                "Date": (today - timedelta(days=60)).isoformat(),
                "DueDate": (today - timedelta(days=30)).isoformat(),
                "LineItems": [{"Description": "Consulting", "Quantity": 1,
                               "UnitAmount": Decimal(100 + i), "AccountCode": "200",
                               "TaxType": "NONE"}]})
            if mobiles is not None:
                box.tenant(tenant).contacts[made["Contact"]["ContactID"]]["Phones"] = [
                    {"PhoneType": "MOBILE", "PhoneNumber": mobiles.take(),
                     "PhoneAreaCode": "", "PhoneCountryCode": ""}]
    event, token = str(uuid.uuid4()), secrets.token_urlsafe(32)
    now = box.now
    box.auth_events[event] = {"client_id": CLIENT, "connections": {
        str(uuid.uuid4()): {"tenantId": t, "created": now} for t in ids}}
    box.access_tokens[token] = {"auth_event_id": event, "client_id": CLIENT, "scope": "",
                                "expires_at": now + timedelta(days=365)}
    return token


def _quickbooks_books(q: Served, count: int, invoices: int, today: Any,
                      mobiles: Mobiles | None = None) -> dict[str, str]:
    """`count` companies, one consent each (each customer with a mobile when `mobiles` gives
    them); returns their access tokens by realm."""
    from benchmarks.books import seed_quickbooks_books
    from sandboxes.quickbooks import Consent

    box = q.state
    tokens = {}
    for n in range(count):
        # A company with its income account and "Services" item, and no customers yet.
        realm = seed_quickbooks_books(box, today, invoices=0, contacts=0, payments=0)
        company, moment = box.company(realm), box.config.clock()
        company.insert("Account", {  # where a card payment's fee is paid from
            "Name": "Checking", "SubAccount": False, "FullyQualifiedName": "Checking",
            "Active": True, "Classification": "Asset", "AccountType": "Bank",
            "AccountSubType": "Checking", "CurrentBalance": Decimal("0.00"),
            "CurrentBalanceWithSubAccounts": Decimal("0.00"),
            "CurrencyRef": company.currency_ref()}, moment, moment)
        for i in range(invoices):
            email = f"customer{n}.{i}@example.com"
            customer = box.create(realm, "Customer", {
                "DisplayName": f"Customer {n}-{i}", "PrimaryEmailAddr": {"Address": email},
                **({"Mobile": {"FreeFormNumber": mobiles.take()}} if mobiles else {})})
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


def connect_and_plan(app: Any, x: Served, q: Served, scale: Scale,
                     channels: Channels | None = None, mobiles: Mobiles | None = None
                     ) -> tuple[list[int], list[int]]:
    """Organisations connected and synced, one writeback planned per invoice (texts and card
    payments on when `channels` serve); the action ids, and the invoices to pay by card."""
    from app.connections.services import connect_quickbooks, connect_xero
    from collect.review import LIVE
    from connectors.base import TokenSet
    from jobs.tasks import sync_org
    from store.db import db
    from store.models import Action, Contact, Invoice, Organisation, User

    today = datetime.now(UTC).date()
    xero_orgs = scale.orgs // 2
    later = datetime.now(UTC) + timedelta(days=3650)
    with app.app_context():
        user = User(email="chaos@example.com", password_hash="-")
        db.session.add(user)
        db.session.commit()
        orgs = []
        if xero_orgs:
            token = _xero_books(x, xero_orgs, scale.invoices, today, mobiles)
            orgs += [o.id for o in connect_xero(user, TokenSet(token, "unused", later))]
        for realm, token in _quickbooks_books(q, scale.orgs - xero_orgs, scale.invoices,
                                              today, mobiles).items():
            orgs.append(connect_quickbooks(user, TokenSet(token, "unused", later), realm).id)
        ids: list[int] = []
        cards: list[int] = []
        ladder = scale.ladder()
        now = datetime.now(UTC)
        for org_id in orgs:
            # Live: the experiment is about carrying actions out (a new organisation starts in
            # review, which sends nothing).
            org = db.session.get(Organisation, org_id)
            assert org is not None
            org.mode, org.live_since, org.safe_mode = LIVE, datetime.now(UTC), False
            if channels is not None:
                _texts_and_cards_on(db.session(), org, channels, scale)
            db.session.commit()
            sync_org(org_id, plan_after=False)
            invoices = db.session.scalars(
                select(Invoice.id).where(Invoice.org_id == org_id, Invoice.status == "open")
                .order_by(Invoice.id)).all()
            for n, invoice_id in enumerate(invoices):
                invoice = db.session.get(Invoice, invoice_id)
                assert invoice is not None and invoice.contact_id is not None
                assert db.session.get(Contact, invoice.contact_id).email  # type: ignore[union-attr]
                label, kind, particulars = ladder[n % len(ladder)]
                if label == CARD:
                    cards.append(invoice.id)
                    continue
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
        return ids, cards


def _texts_and_cards_on(session: Any, org: Any, channels: Channels, scale: Scale) -> None:
    """Texts through the server's Twilio account (the emulator) at any hour the law allows,
    on any day; card payments through an account of the Stripe emulator whose webhooks come
    to this process's app, Stripe's fee booked as a bank fee."""
    from collect import payments
    from collect.book import policy_for
    from rules import policy_to_json
    from store.models import Policy, SmsSettings

    if scale.sms:
        body = policy_to_json(policy_for(session, org))
        body.update(send_time="00:00", send_window_hours=24, business_days_only=False)
        session.flush()
        row = session.scalar(select(Policy).where(Policy.org_id == org.id))
        row.body = body
        session.add(SmsSettings(org_id=org.id, enabled=True))
    if scale.cards:
        account = channels.stripe.state.add_account(
            webhook_url=f"{channels.app_url}/webhooks/stripe/{org.id}")
        payments.save_settings(session, org, payments.CardChoice(
            enabled=True, secret_key=account.secret_key, webhook_secret=account.webhook_secret,
            account_code=None, book_fees=True), datetime.now(UTC))


def pay_by_card(app: Any, stripe_box: Any, invoice_ids: list[int]) -> list[int]:
    """Each invoice's customer opens Stripe's page from the portal and pays by card (every
    fourth is declined first, then paid with a good card on the same page); the card payment
    rows. The webhooks wait in the emulator (the run delivers them)."""
    from collect import payments
    from sandboxes.stripe import CARD_DECLINED, CARD_SUCCEEDS
    from store.db import db
    from store.models import Invoice

    rows = []
    with app.app_context():
        session = db.session()
        for n, invoice_id in enumerate(invoice_ids):
            invoice = session.get(Invoice, invoice_id)
            assert invoice is not None and invoice.contact is not None
            now = datetime.now(UTC)
            row = payments.new_card_payment(session, invoice.contact, invoice, now)
            session.commit()
            payments.open_checkout(session, row, invoice.contact, invoice,
                                   "http://127.0.0.1/paid", "http://127.0.0.1/cancelled",
                                   None, now)
            session.commit()
            if n % 4 == 3:
                assert stripe_box.pay(row.session_id, CARD_DECLINED) == "failed"
            assert stripe_box.pay(row.session_id, CARD_SUCCEEDS, "A Customer") == "succeeded"
            rows.append(row.id)
        db.session.remove()
    return rows


class Webhooks:
    """Stripe's deliveries, as Stripe makes them, from a thread of their own: every event in
    rounds (the first in reverse order, the next shuffled), then, as Stripe retries, each
    event until our app has answered it 200 once."""

    def __init__(self, stripe_box: Any) -> None:
        self.box = stripe_box
        self.answered: set[str] = set()
        self.rounds = 0
        self.posts = 0
        self.thread: threading.Thread | None = None
        self.random = random.Random(11)

    def busy(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def round(self, everything: bool) -> None:
        if self.busy():
            return
        events = [e["id"] for e in self.box.events]
        if everything:
            self.rounds += 1
            if self.rounds == 1:
                events.reverse()
            else:
                self.random.shuffle(events)
        else:
            events = [e for e in events if e not in self.answered]
        self.thread = threading.Thread(target=self._deliver, args=(events,), daemon=True)
        self.thread.start()

    def _deliver(self, events: list[str]) -> None:
        for event_id in events:
            self.posts += 1
            if self.box.deliver(event_id) == 200:
                self.answered.add(event_id)

    def all_answered(self) -> bool:
        return not self.busy() and all(e["id"] in self.answered for e in self.box.events)


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
    from jobs.queues import enqueue_once
    from jobs.tasks import ACTION_RETRY, execute_action
    from store.db import db

    def enqueue(_: int) -> None:
        with app.app_context():
            enqueue_once(execute_action, action_id, job_id=f"action-{action_id}",
                         retry=ACTION_RETRY)
            db.session.remove()

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(enqueue, range(times)))


# --- workers that die ------------------------------------------------------------------


class Workers:
    """`count` worker processes, supervised as a process manager that restarts only a process
    that failed would: one killed (a crash point) is started again, one that exits with 0 is
    not (it is counted, and the run ends with fewer workers than it started with). The first
    worker's clock runs `clock_offset` seconds fast."""

    def __init__(self, env: dict[str, str], count: int, clock_offset: float = 0.0) -> None:
        self.env = env
        self.clock_offset = clock_offset
        self.processes: list[subprocess.Popen[bytes] | None] = []
        self.deaths = 0
        self.clean_exits = 0
        self.log = tempfile.NamedTemporaryFile(prefix="chaos-workers-", suffix=".log",
                                               delete=False)
        for n in range(count):
            self.processes.append(self._start(n))

    def _start(self, n: int) -> subprocess.Popen[bytes]:
        if n == 0 and self.clock_offset:
            command = [sys.executable, "-m", "benchmarks.chaos", "--worker-clock-offset",
                       str(self.clock_offset)]
        else:
            command = [str(Path(sys.executable).with_name("dunwell")), "worker"]
        return subprocess.Popen(command, env=self.env, stdout=self.log, stderr=self.log,
                                start_new_session=True)

    def keep_alive(self) -> None:
        for n, process in enumerate(self.processes):
            if process is None or process.poll() is None:
                continue
            _kill_group(process)  # its RQ scheduler process, orphaned
            if process.returncode == 0:
                self.clean_exits += 1
                self.processes[n] = None
                continue
            self.deaths += process.returncode == -signal.SIGKILL
            self.processes[n] = self._start(n)

    def running(self) -> int:
        return sum(1 for p in self.processes if p is not None and p.poll() is None)

    def crashes(self) -> dict[str, int]:
        """How many workers died at each crash point, as their log says."""
        self.log.flush()
        found: Counter[str] = Counter()
        with open(self.log.name, encoding="utf-8", errors="replace") as lines:
            for line in lines:
                if "crash point " in line and " dies now" in line:
                    found[line.split("crash point ", 1)[1].split(":", 1)[0]] += 1
        return dict(found)

    def stop(self) -> None:
        for process in self.processes:
            if process is not None:
                _kill_group(process)
                process.wait()
        self.log.close()


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


# --- counting the books ----------------------------------------------------------------


def count_effects(app: Any, x: Served, q: Served, ids: list[int],
                  twilio: Served | None = None) -> dict[str, Any]:
    """For each action: how many times its effect is in the books (or, for a text, at the
    Twilio emulator); per effect kind, expected (its action done), done and duplicated; and the
    ledger's states."""
    from connectors.base import effect_marker
    from rules.sms import number_for
    from store.db import db
    from store.models import Action, Connection, Contact, Invoice

    with app.app_context():
        rows = db.session.execute(
            select(Action.id, Action.key, Action.kind, Action.status, Action.result,
                   Action.attempts, Invoice.provider_id, Connection.provider,
                   Connection.tenant_id, Contact.mobile, Contact.phone, Contact.country)
            .join(Invoice, Invoice.id == Action.invoice_id)
            .join(Connection, Connection.org_id == Action.org_id)
            .outerjoin(Contact, Contact.id == Invoice.contact_id)
            .where(Action.id.in_(ids))).all()
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
    if twilio is not None:
        tally("text", [str(m["to"]) for m in list(twilio.state.messages.values())
                       if m["direction"] == "outbound-api"])

    def times(label: str, needle: str) -> int:
        return sum(n for text, n in effects.get(label, Counter()).items() if needle in text)

    duplicates: Counter[str] = Counter()
    missing: Counter[str] = Counter()
    expected: Counter[str] = Counter()
    done: Counter[str] = Counter()
    states = Counter(r.status for r in rows)
    unexplained = []
    fallbacks = 0
    for r in rows:
        marker = effect_marker(r.key)
        label = r.key.split(":")[2]
        where = f"{r.tenant_id}:{r.provider_id}"
        note = {"note": times("note", where) if r.provider == "xero"
                else times("note", effect_marker(f"{r.key}:note"))}
        if label == "reminder":
            found = {"email": times("email", where), **note}
        elif label == "sms":
            number = number_for(r.mobile, r.phone, r.country).e164
            texted = sum(effects.get("text", Counter())[t] for t in [number] if t)
            if (r.result or {}).get("sms_fallback"):  # by email instead, with its reason
                fallbacks += 1
                found = {"text": texted, "email": times("email", where), **note}
            else:
                found = {"text": texted, **note}
        elif label in ("fee_line", "fee_invoice"):
            found = {label: times("line", marker)}
        else:
            found = {"credit_note": times("credit", marker)}
        for what, n in found.items():
            duplicates[what] += max(0, n - 1)
            done[what] += n > 0
            fell_back = what == "text" and (r.result or {}).get("sms_fallback")
            if r.status == "done" and not fell_back:
                expected[what] += 1
                if n == 0:
                    missing[what] += 1
        if r.status == "skipped" and not (r.result or {}).get("reason"):
            unexplained.append(r.key)
    open_ = sum(n for s, n in states.items() if s not in FINAL)
    return {
        "actions": len(rows), "states": dict(states),
        "effects": {what: {"expected": expected[what], "done": done[what],
                           "duplicates": duplicates[what]}
                    for what in sorted(set(expected) | set(done) | set(duplicates))},
        "sms_fallbacks": fallbacks,
        "duplicates": sum(duplicates.values()), "duplicates_by_kind": dict(duplicates),
        "lost": open_ + len(unexplained) + sum(missing.values()),
        "missing_effects": dict(missing), "skipped_without_reason": len(unexplained),
        "executions": sum(r.attempts for r in rows),
    }


def count_cards(app: Any, x: Served, q: Served, stripe_box: Any, rows: list[int],
                webhooks: Webhooks | None) -> dict[str, Any]:
    """Each card payment against Stripe and the books: expected (its PaymentIntent succeeded
    at Stripe), done (a payment in the books, found by the processor's payment id in its
    reference) and duplicates; the same for the fee booked as a bank fee."""
    from store.db import db
    from store.models import AuditEvent, CardPayment, Connection, ProcessorEvent

    with app.app_context():
        # A fee the books refused leaves its payment booked: the activity log says why.
        refused = [str((data or {}).get("fee_refused")) for data in db.session.scalars(
            select(AuditEvent.data).where(AuditEvent.kind == "card_payment_booked"))
            if (data or {}).get("fee_refused")]
        found = db.session.execute(
            select(CardPayment.id, CardPayment.status, CardPayment.payment_id,
                   CardPayment.books_payment_id, CardPayment.booking_error, CardPayment.fee,
                   Connection.provider, Connection.tenant_id)
            .join(Connection, Connection.org_id == CardPayment.org_id)
            .where(CardPayment.id.in_(rows))).all()
        unapplied = db.session.scalar(select(func.count()).select_from(ProcessorEvent).where(
            ProcessorEvent.processed_at.is_(None)))
        events_stored = db.session.scalar(select(func.count()).select_from(ProcessorEvent))
        db.session.remove()
    payments: Counter[str] = Counter()
    fees: Counter[str] = Counter()
    for tenant in {r.tenant_id for r in found if r.provider == "xero"}:
        book = x.state.tenant(tenant)
        for p in list(book.payments.values()):
            if p.get("Status") != "DELETED":
                payments[str(p.get("Reference") or "")] += 1
        for t in list(book.bank_transactions.values()):
            fees[str(t.get("Reference") or "")] += 1
    for realm in {r.tenant_id for r in found if r.provider == "quickbooks"}:
        company = q.state.company(realm)
        for p in list(company.records["Payment"].values()):
            payments[str(p.get("PrivateNote") or "")] += 1
        for p in list(company.records.get("Purchase", {}).values()):
            fees[str(p.get("PrivateNote") or "")] += 1

    def booked(counter: Counter[str], payment_id: str | None) -> int:
        return sum(n for text, n in counter.items() if payment_id and payment_id in text)

    figures = {"card_payment": Counter[str](), "card_fee": Counter[str]()}
    states: Counter[str] = Counter()
    unbooked = 0
    for r in found:
        states[r.status] += 1
        intent = stripe_box.objects.get(r.payment_id or "") or {}
        succeeded = intent.get("status") == "succeeded"
        for what, counter in (("card_payment", payments), ("card_fee", fees)):
            n = booked(counter, r.payment_id)
            figures[what]["expected"] += succeeded and (what == "card_payment" or bool(r.fee))
            figures[what]["done"] += n > 0
            figures[what]["duplicates"] += max(0, n - 1)
        unbooked += succeeded and (r.books_payment_id is None or r.booking_error is not None)
    return {
        "card_effects": {what: {k: c[k] for k in ("expected", "done", "duplicates")}
                         for what, c in figures.items()},
        "card_payments": len(found), "card_payment_states": dict(states),
        "card_payments_unbooked": unbooked, "card_fees_refused": refused,
        "stripe_events": len(stripe_box.events),
        "stripe_events_stored": events_stored or 0, "stripe_events_unapplied": unapplied or 0,
        "webhook_posts": webhooks.posts if webhooks else 0,
        "webhook_rounds": webhooks.rounds if webhooks else 0,
    }


def _cards_settled(app: Any, rows: list[int], webhooks: Webhooks | None) -> bool:
    """Every webhook answered, every stored event applied, every paid payment booked."""
    from store.db import db
    from store.models import CardPayment, ProcessorEvent

    if not rows:
        return True
    if webhooks is not None and not webhooks.all_answered():
        return False
    with app.app_context():
        unapplied = db.session.scalar(select(func.count()).select_from(ProcessorEvent).where(
            ProcessorEvent.processed_at.is_(None)))
        unpaid = db.session.scalar(select(func.count()).select_from(CardPayment).where(
            CardPayment.id.in_(rows), CardPayment.status != "paid"))
        waiting = db.session.scalar(select(func.count()).select_from(CardPayment).where(
            CardPayment.id.in_(rows), CardPayment.status == "paid",
            CardPayment.books_payment_id.is_(None), CardPayment.booking_error.is_(None)))
        db.session.remove()
    return not unapplied and not unpaid and not waiting


def _final_share(app: Any, ids: list[int]) -> float:
    from store.db import db
    from store.models import Action

    with app.app_context():
        done = db.session.scalar(select(func.count()).select_from(Action).where(
            Action.id.in_(ids), Action.status.in_(FINAL)))
        db.session.remove()
    return (done or 0) / max(1, len(ids))


# --- the faults -------------------------------------------------------------------------


WORKER_BACKENDS = "dunwell-chaos-worker"  # the workers' PostgreSQL application_name


def interrupt_first_syncs(app: Any, x: Served, q: Served, scale: Scale) -> list[int]:
    """Organisations connected but not yet synced, whose first sync meets a provider 500 after
    its invoices were stored (on the payments page); returns their ids. The rules go first in
    each injector: the first rule that matches a request serves it."""
    from app.connections.services import connect_quickbooks, connect_xero
    from connectors.base import TokenSet
    from store.db import db
    from store.models import Organisation, User

    today = datetime.now(UTC).date()
    later = datetime.now(UTC) + timedelta(days=3650)
    orgs: list[int] = []
    with app.app_context():
        user = db.session.scalars(select(User)).first()
        assert user is not None
        known = set(db.session.scalars(select(Organisation.id)))
        for n in range(scale.first_syncs):
            if n % 2 == 0:
                token = _xero_books(x, 1, scale.first_sync_invoices, today)
                orgs += [o.id for o in connect_xero(user, TokenSet(token, "unused", later))
                         if o.id not in known]
                x.faults.add("server_error", method="GET", path="/Payments$", times=1)
            else:
                [(realm, token)] = _quickbooks_books(q, 1, scale.first_sync_invoices,
                                                     today).items()
                orgs.append(connect_quickbooks(user, TokenSet(token, "unused", later),
                                               realm).id)
                # Its queries, in order: customers, invoices, then payments (the 500).
                where = f"/company/{realm}/query"
                q.faults.add("slow", path=where, times=2, delay=0.0)
                q.faults.add("server_error", path=where, times=1)
        db.session.remove()
    return orgs


def retry_first_syncs(app: Any, redis: Redis, orgs: list[int], tries: Counter[int]) -> bool:
    """As RQ's retry or the owner's "sync now" would: a first sync that failed (or was lost
    with Redis) runs again. True once every one of them has completed."""
    from jobs.queues import FINISHED as FINISHED_JOB
    from jobs.queues import enqueue_once
    from jobs.tasks import SYNC_RETRY, sync_org
    from store.db import db
    from store.models import SyncRun

    finished = True
    with app.app_context():
        for org_id in orgs:
            runs = db.session.execute(select(SyncRun.status, func.count()).where(
                SyncRun.org_id == org_id).group_by(SyncRun.status)).all()
            by_status = dict(runs)  # type: ignore[arg-type]
            if by_status.get("done"):
                continue
            finished = False
            try:
                if tries[org_id]:
                    last = Job.fetch_many([f"sync-org-{org_id}-try-{tries[org_id] - 1}"],
                                          connection=redis)[0]
                    if last is not None and last.get_status(refresh=False) not in FINISHED_JOB:
                        continue  # waiting, running or booked for its retry
                enqueue_once(sync_org, org_id, job_id=f"sync-org-{org_id}-try-{tries[org_id]}",
                             retry=SYNC_RETRY)
                tries[org_id] += 1
            except RedisError:
                pass  # Redis is down: the next round tries again
        db.session.remove()
    return finished


def terminate_worker_backends(database_url: str, seconds: float, patience: float = 15.0) -> int:
    """pg_terminate_backend on every backend of the workers, again and again for `seconds`,
    from a side connection: jobs lose their connection in statements and in commits. A burst
    that found no backend (every worker between connections, or restarting) goes on, for up to
    `patience` seconds more, until it has ended one."""
    engine = create_engine(database_url, isolation_level="AUTOCOMMIT")
    killed = 0
    try:
        with engine.connect() as side:
            until = time.monotonic() + seconds
            give_up = until + patience
            while time.monotonic() < until or (not killed and time.monotonic() < give_up):
                killed += len(side.execute(sql_text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND application_name = :name "
                    "AND pid <> pg_backend_pid()"), {"name": WORKER_BACKENDS}).all())
                time.sleep(0.05)
    finally:
        engine.dispose()
    return killed


@dataclass
class Pause:
    """A worker caught holding a claim, stopped (SIGSTOP) until `until`."""

    pid: int
    action_id: int
    owner: str
    until: float


def _stopped_in_a_transaction(engine: Any) -> bool:
    """Whether a worker holds a transaction open right now: SQLite's write lock taken, or a
    worker backend idle in a transaction on PostgreSQL."""
    if engine.url.get_backend_name() == "sqlite":
        probe = sqlite3.connect(engine.url.database, timeout=0.5)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.rollback()
            return False
        except sqlite3.OperationalError:
            return True
        finally:
            probe.close()
    with engine.connect() as side:
        return bool(side.execute(sql_text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = :name AND state LIKE 'idle in transaction%'"),
            {"name": WORKER_BACKENDS}).scalar())


def pause_a_claimant(app: Any, redis: Redis, workers: Workers, seconds: float) -> Pause | None:
    """SIGSTOP the worker that holds a live claim, if one does right now. It is resumed once
    another worker carried its action out (at the latest after `seconds`)."""
    from store.db import db
    from store.models import Action

    ours = {p.pid for p in workers.processes if p is not None and p.poll() is None}
    with app.app_context():
        claimed = db.session.execute(select(Action.id, Action.claimed_by).where(
            Action.status == "claimed")).all()
        for action_id, owner in claimed:
            name = str(owner or "").split("/", 1)[0]
            try:
                pid = int(redis.hget(f"rq:worker:{name}", "pid") or 0)
            except (RedisError, ValueError):
                continue
            if pid not in ours:
                continue
            os.kill(pid, signal.SIGSTOP)
            time.sleep(0.3)  # a commit it had already sent lands before the claim is read
            if _stopped_in_a_transaction(db.engine):
                # Stopped mid-commit it holds the database (SQLite) or the row (PostgreSQL):
                # nobody can take over until it runs again. Another moment, then.
                os.kill(pid, signal.SIGCONT)
                continue
            db.session.rollback()
            still = db.session.scalar(select(Action.claimed_by).where(
                Action.id == action_id, Action.status == "claimed"))
            if still == owner:
                db.session.remove()
                return Pause(pid, action_id, str(owner), time.monotonic() + seconds)
            os.kill(pid, signal.SIGCONT)  # it finished meanwhile: try another time
        db.session.remove()
    return None


def count_books(app: Any, ids: list[int], first_orgs: list[int], redis: Redis,
                paused: Pause | None) -> dict[str, Any]:
    """What the faults beyond the writebacks may have left behind."""
    from store.db import db
    from store.models import Action, AuditEvent, Invoice, SyncRun

    with app.app_context():
        outcomes = db.session.execute(
            select(AuditEvent.action_id, func.count()).where(
                AuditEvent.kind.in_([f"action_{s}" for s in ("done", "skipped", "dead")]),
                AuditEvent.action_id.is_not(None))
            .group_by(AuditEvent.action_id).having(func.count() > 1)).all()
        stuck_actions = db.session.scalar(select(func.count()).select_from(Action).where(
            Action.status.in_(("planned", "claimed", "failed"))))
        stuck_runs = db.session.scalar(select(func.count()).select_from(SyncRun).where(
            SyncRun.status == "running"))
        first_invoices = db.session.scalar(select(func.count()).select_from(Invoice).where(
            Invoice.org_id.in_(first_orgs), Invoice.status == "open")) if first_orgs else 0
        planned = select(Action.invoice_id).where(Action.invoice_id.is_not(None))
        unplanned = db.session.scalar(select(func.count()).select_from(Invoice).where(
            Invoice.org_id.in_(first_orgs), Invoice.status == "open",
            Invoice.next_action_at.is_(None), Invoice.id.not_in(planned))) if first_orgs else 0
        # Actions of the experiment's organisations that it did not plan: Dunwell's own planning
        # (the fan-out every DUNWELL_PLAN_SECONDS, an organisation's daily run) is kept out of
        # the run's window, since the books are counted per invoice against the writebacks.
        beyond = db.session.execute(select(Action.kind, func.count()).where(
            Action.id.not_in(ids), Action.org_id.not_in(first_orgs or [0]))
            .group_by(Action.kind)).all()
        first_modes = sorted(db.session.scalars(select(SyncRun.mode).where(
            SyncRun.org_id.in_(first_orgs), SyncRun.status == "done")).all())
        taken_over = None
        if paused is not None:
            row = db.session.get(Action, paused.action_id)
            taken_over = row is not None and row.status in FINAL and row.attempts >= 2
        db.session.remove()
    try:
        booked = ScheduledJobRegistry("chaos", connection=redis).get_job_ids()
    except RedisError:
        booked = []
    daily = sum(1 for org_id in first_orgs
                if any(job.startswith(f"daily-{org_id}-") for job in booked))
    return {
        "double_ledger_entries": sum(n - 1 for _, n in outcomes),
        "stuck_actions": stuck_actions or 0, "stuck_sync_runs": stuck_runs or 0,
        "first_sync_orgs": len(first_orgs), "first_sync_invoices": first_invoices or 0,
        "first_sync_modes": first_modes, "invoices_unplanned": unplanned or 0,
        "first_sync_daily_runs_booked": daily,
        "actions_beyond_the_experiment": {kind: n for kind, n in beyond},
        "paused_workers": int(paused is not None), "paused_action_taken_over": taken_over,
    }


def run(scale: Scale, database_url: str,
        report: Callable[[str], None] = lambda line: None) -> dict[str, Any]:
    """The whole experiment; returns the figures (see the module's docstring)."""
    from app import create_app
    from jobs.queues import RETRY_SCALE

    begun = time.monotonic()

    def progress(line: str) -> None:
        report(f"{time.monotonic() - begun:6.1f} s  {line}")

    from migrations import upgrade
    from store.db import db
    from store.models import Action

    started = time.perf_counter()
    redis_server = PrivateRedis()
    redis_url = redis_server.url
    redis = Redis.from_url(redis_url)
    postgres = database_url.startswith("postgresql")
    upgrade(url=database_url)
    x, q = serve_sandboxes()
    channels = serve_channels(scale.lost_texts) if scale.sms or scale.cards else None
    env = settings(database_url, redis_url, x.url, q.url, Fernet.generate_key().decode(),
                   channels)
    app = create_app(flask_config(env))
    if channels is not None:  # Stripe's webhooks and Twilio's status callbacks come here
        env["BASE_URL"] = app.config["BASE_URL"] = channels.serve_app(app)
    workers: Workers | None = None
    paused: Pause | None = None
    webhooks: Webhooks | None = None
    country = None
    try:
        mobiles = None
        if scale.sms:
            country, example = texting_country(datetime.now(UTC),
                                               timedelta(seconds=scale.timeout + 600))
            mobiles = Mobiles(example)
        ids, card_invoices = connect_and_plan(app, x, q, scale, channels, mobiles)
        card_rows: list[int] = []
        if channels is not None and card_invoices:
            card_rows = pay_by_card(app, channels.stripe.state, card_invoices)
            webhooks = Webhooks(channels.stripe.state)
        first_orgs = interrupt_first_syncs(app, x, q, scale)
        for served in (x, q):
            # The invoice re-read right after a claim is sometimes slow: claims are held long
            # enough to be caught; and some writes reach the provider without their key.
            served.faults.add("slow", method="GET", path=r"(?i)/invoices?/[0-9a-f-]+$",
                              times=None, probability=0.2, delay=1.0)
            if scale.forget_keys:
                served.faults.add("forget_key", method="POST|PUT", times=None,
                                  probability=scale.forget_keys)
        progress(f"{len(ids)} actions planned over {scale.orgs} organisations, "
                 f"{len(card_rows)} card payments made; {len(first_orgs)} first syncs to "
                 f"interrupt; texts to {country or 'nobody'}")
        set_up = time.perf_counter()
        book(app, ids)
        crash = ",".join(c for c in (scale.crash, scale.card_crash if card_rows else "") if c)
        worker_env = {**os.environ, **env, "DUNWELL_CRASH_POINTS": crash,
                      "DUNWELL_ACTION_LEASE_SECONDS": str(scale.lease_seconds),
                      "DUNWELL_CARD_LEASE_SECONDS": str(scale.lease_seconds),
                      "DUNWELL_CARD_STUCK_SECONDS": "4",
                      "DUNWELL_SWEEP_SECONDS": "2", "DUNWELL_STUCK_SECONDS": "4",
                      # No planning fan-out within the run: it would plan the ladder's own
                      # actions beside the experiment's for the same invoices (an earlier
                      # full-size run found 645, and counted their emails as duplicates).
                      "DUNWELL_PLAN_SECONDS": str(int(scale.timeout) + 3600),
                      "DUNWELL_WORKER_BACKOFF": "0.5:2", "PGAPPNAME": WORKER_BACKENDS,
                      "PYTHONUNBUFFERED": "1"}
        workers = Workers(worker_env, scale.workers, scale.clock_offset)
        storm_target = ids[0]
        if scale.storm:
            storm(app, storm_target, scale.storm)
        flushed = terminated = redis_kills = 0
        bursts = [0.15, 0.4, 0.7][:scale.backend_bursts] if postgres else []
        redis_back_at: float | None = None
        last_burst = float("inf")
        tries: Counter[int] = Counter()
        first_done = not first_orgs
        deadline = time.monotonic() + scale.timeout
        last_redelivery = 0.0
        waiting: list[str] = []
        last_said = time.monotonic()
        while time.monotonic() < deadline:
            workers.keep_alive()
            share = _final_share(app, ids)
            if webhooks is not None and not webhooks.busy():
                # Every event in reverse order at once, again shuffled once 40 % of the
                # actions are final; then, as Stripe retries, those never answered 200.
                if webhooks.rounds < 2 and share >= (0.0, 0.4)[webhooks.rounds]:
                    webhooks.round(everything=True)
                    progress(f"stripe webhooks: round {webhooks.rounds} delivering")
                elif webhooks.rounds >= 2 and time.monotonic() - last_redelivery > 2:
                    webhooks.round(everything=False)
                    last_redelivery = time.monotonic()
            if redis_back_at is not None and time.monotonic() >= redis_back_at:
                redis_server.start()  # empty: every queued and scheduled job is gone
                redis_back_at = None
                progress("redis started again, empty")
            redis_up = redis_back_at is None
            if bursts and share >= bursts[0]:
                bursts.pop(0)
                terminated += terminate_worker_backends(database_url, 1.0)
                last_burst = time.monotonic()
                progress(f"{terminated} worker backends terminated so far at {share:.0%}")
            if scale.pause and paused is None and share >= 0.2 and redis_up:
                paused = pause_a_claimant(app, redis, workers, scale.timeout / 3)
                if paused is not None:
                    progress(f"worker {paused.pid} paused holding action {paused.action_id}")
            if paused is not None and paused.until and (
                    time.monotonic() >= paused.until or _taken_over(app, paused)):
                try:
                    os.kill(paused.pid, signal.SIGCONT)
                    paused.until = 0.0
                    progress(f"worker {paused.pid} resumed")
                except ProcessLookupError:  # it was dying (a crash point) when it was paused
                    progress(f"worker {paused.pid} died while paused; another is paused")
                    paused = None
            # Redis goes down at 30 %, or soon after the first burst: the jobs a burst failed
            # wait for their retry (30 s) in Redis, and lose it with Redis's data.
            if scale.redis_down and not redis_kills and (
                    share >= 0.3 or time.monotonic() - last_burst > 5):
                redis_server.kill()
                redis_kills = 1
                redis_back_at = time.monotonic() + scale.redis_down
                if paused is not None and paused.until:  # no takeover without Redis: wait on
                    paused.until += scale.redis_down
                progress(f"redis killed at {share:.0%} for {scale.redis_down:.0f} s")
            redis_up = redis_back_at is None
            if scale.flush_at is not None and not flushed and share >= scale.flush_at \
                    and redis_up:
                redis.flushdb()  # every queued and scheduled job is gone
                flushed = 1
                progress(f"redis flushed at {share:.0%}")
            if not first_done and redis_up:
                first_done = retry_first_syncs(app, redis, first_orgs, tries)
            faults_over = redis_up and (paused is None or not paused.until) and not bursts \
                and (not scale.redis_down or redis_kills)
            waiting = [name for name, met in (
                ("writebacks", share >= 1.0), ("first_syncs", first_done),
                ("faults", faults_over), ("actions", _all_final(app)),
                ("sync_runs", not _syncs_running(app)),
                ("card_payments", _cards_settled(app, card_rows, webhooks))) if not met]
            if not waiting:
                break
            if time.monotonic() - last_said > 15:
                progress(f"waiting for {', '.join(waiting)} ({share:.0%} of the writebacks final)"
                         + (f": {_open_actions(app, redis)}" if "actions" in waiting and redis_up
                            else ""))
                last_said = time.monotonic()
            time.sleep(0.1 if scale.pause and paused is None else 0.5)
        run_seconds = time.perf_counter() - set_up
        running = workers.running()
        deaths, clean_exits = workers.deaths, workers.clean_exits
        crashes = workers.crashes()
        workers_log = workers.log.name  # kept: what the workers said, for a failed run
        workers.stop()
        workers = None
        if webhooks is not None and webhooks.thread is not None:
            webhooks.thread.join()
        figures = count_effects(app, x, q, ids, channels.twilio if channels else None)
        cards = count_cards(app, x, q, channels.stripe.state, card_rows, webhooks) \
            if channels is not None else {"card_effects": {}}
        figures["effects"].update(cards.pop("card_effects"))
        books = count_books(app, ids, first_orgs, redis, paused)
        with app.app_context():
            storm_action = db.session.get(Action, storm_target)
            assert storm_action is not None
            storm_attempts = storm_action.attempts
        return {
            "benchmark": "chaos", "database": database_url.split(":", 1)[0].split("+")[0],
            "organisations": scale.orgs, "writebacks": len(ids), "workers": scale.workers,
            **figures, **cards, **books,
            "texting_country": country,
            "texts_answers_lost": channels.twilio.faults.count("lost_answer")
            if channels else 0,
            "worker_kills": deaths, "worker_kills_by_point": crashes,
            "redis_flushes": flushed,
            "workers_started": scale.workers, "workers_running_at_end": running,
            "workers_exited_cleanly": clean_exits,
            "redis_kills": redis_kills, "redis_down_seconds": scale.redis_down,
            "backends_terminated": terminated,
            "clock_offset_seconds": scale.clock_offset,
            "keys_forgotten": x.faults.count("forget_key") + q.faults.count("forget_key"),
            "first_sync_tries": sum(tries.values()),
            "storm_enqueues": scale.storm, "storm_action_claims": storm_attempts,
            "schedulers": scale.workers,
            "retry_scale": RETRY_SCALE,
            "wall_seconds": round(run_seconds, 1),
            "still_waiting_at_deadline": waiting,
            "total_seconds": round(time.perf_counter() - started, 1),
            "crash_points": crash,
            "workers_log": workers_log,
        }
    finally:
        if paused is not None and paused.until:
            with contextlib.suppress(ProcessLookupError):
                os.kill(paused.pid, signal.SIGCONT)
        if workers is not None:
            workers.stop()
        with app.app_context():
            db.engine.dispose()
        x.server.shutdown()
        q.server.shutdown()
        if channels is not None:
            channels.shutdown()
        redis_server.kill()


def _taken_over(app: Any, paused: Pause) -> bool:
    """Another worker claimed the paused worker's action since, and carried it out."""
    from store.db import db
    from store.models import Action

    with app.app_context():
        row = db.session.get(Action, paused.action_id)
        over = row is not None and row.status in FINAL and row.claimed_by != paused.owner
        db.session.remove()
    return over


def _all_final(app: Any) -> bool:
    """No action of any organisation still open (those of the first syncs too)."""
    from store.db import db
    from store.models import Action

    with app.app_context():
        left = db.session.scalar(select(func.count()).select_from(Action).where(
            Action.status.in_(("planned", "claimed", "failed"))))
        db.session.remove()
    return not left


def _syncs_running(app: Any) -> int:
    """Sync records still "running": a sync under way, or one whose execution ended while its
    outcome's write failed, which the sweeper ends (jobs.tasks.end_lost_sync_runs). One still
    running at the deadline is counted as stuck."""
    from store.db import db
    from store.models import SyncRun

    with app.app_context():
        running = db.session.scalar(select(func.count()).select_from(SyncRun).where(
            SyncRun.status == "running")) or 0
        db.session.remove()
    return running


def _open_actions(app: Any, redis: Redis) -> str:
    """The actions still open, with what holds each (for the engineer watching a slow run)."""
    from store.db import db
    from store.models import Action

    with app.app_context():
        rows = db.session.execute(select(Action.id, Action.kind, Action.status, Action.attempts,
                                         Action.updated_at, Action.lease_until).where(
            Action.status.in_(("planned", "claimed", "failed"))).order_by(Action.id).limit(5))
        said = []
        for row in rows:
            try:
                job = Job.fetch(f"action-{row.id}", connection=redis).get_status()
            except (NoSuchJobError, RedisError) as exc:  # in a group's job, or Redis is away
                job = type(exc).__name__
            said.append(f"{row.id} {row.kind} {row.status} attempts={row.attempts} "
                        f"updated={row.updated_at:%H:%M:%S} lease={row.lease_until} job={job}")
        db.session.remove()
    return "; ".join(said)


def run_skewed_worker(offset: float) -> None:
    """`dunwell worker` with a clock `offset` seconds fast: store.clock (every time stamp
    Dunwell takes) and the column defaults read it."""
    import store.clock
    from app import create_app
    from jobs.worker import run_worker

    real = datetime

    class Skewed(real):
        @classmethod
        def now(cls, tz: Any = None) -> Any:  # type: ignore[override]
            return real.now(tz) + timedelta(seconds=offset)

    store.clock.datetime = Skewed  # type: ignore[misc]
    with create_app().app_context():
        run_worker()


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
    parser.add_argument("--redis-down", type=float, default=defaults.redis_down,
                        help="seconds Redis stays killed (0: not killed)")
    parser.add_argument("--clock-offset", type=float, default=defaults.clock_offset,
                        help="seconds one worker's clock runs fast")
    parser.add_argument("--forget-keys", type=float, default=defaults.forget_keys)
    parser.add_argument("--first-syncs", type=int, default=defaults.first_syncs)
    parser.add_argument("--backend-bursts", type=int, default=defaults.backend_bursts)
    parser.add_argument("--no-pause", action="store_true")
    parser.add_argument("--no-sms", action="store_true", help="no texted reminders")
    parser.add_argument("--no-cards", action="store_true", help="no card payments")
    parser.add_argument("--lost-texts", type=float, default=defaults.lost_texts,
                        help="share of Twilio's answers to a new text lost")
    parser.add_argument("--card-crash", default=defaults.card_crash,
                        help="crash points of the card payments' jobs")
    parser.add_argument("--fresh-postgres", action="store_true",
                        help="run on a new PostgreSQL database (dropped at the end) of the server "
                             "BENCH_POSTGRES_URL names, instead of DATABASE_URL")
    parser.add_argument("--worker-clock-offset", type=float, default=None,
                        help=argparse.SUPPRESS)  # runs one worker of the experiment
    args = parser.parse_args(argv)
    if args.worker_clock_offset is not None:
        run_skewed_worker(args.worker_clock_offset)
        return
    logging.disable(logging.WARNING)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the workers are stopped too
    scale = Scale(orgs=args.orgs, invoices=args.invoices, workers=args.workers,
                  crash=args.crash, storm=args.storm, timeout=args.timeout,
                  lease_seconds=args.lease_seconds, redis_down=args.redis_down,
                  clock_offset=args.clock_offset, forget_keys=args.forget_keys,
                  first_syncs=args.first_syncs, pause=not args.no_pause,
                  backend_bursts=args.backend_bursts, sms=not args.no_sms,
                  cards=not args.no_cards, lost_texts=args.lost_texts,
                  card_crash=args.card_crash)
    with tempfile.TemporaryDirectory() as workdir, \
            _database(args.fresh_postgres, Path(workdir)) as database_url:
        print(json.dumps(run(scale, database_url,
                             report=lambda line: print(line, file=sys.stderr))))


@contextlib.contextmanager
def _database(postgres: bool, workdir: Path) -> Any:
    """DATABASE_URL, or a fresh SQLite file, or a new PostgreSQL database of this run's own."""
    if postgres:
        with fresh_database("postgresql", workdir) as url:
            yield url
        return
    yield os.environ.get("DATABASE_URL") or f"sqlite:///{workdir / 'chaos.sqlite3'}"


if __name__ == "__main__":
    main()
