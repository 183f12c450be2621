"""What the engineer on call sees of a demo-like run: connect the Xero sandbox, the first sync,
a webhook announcing a payment, a day's run with a 429 from the sandbox on the way, and a
revoked consent. The scrape of /metrics afterwards shows each of these in its series, and the
run's logs are JSON lines carrying the ids and never a secret or a customer's address."""

from __future__ import annotations

import io
import json
import math
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from tests.conftest import FakeClock, LiveServer
from tests.integration.conftest import EMAIL, PASSWORD, Faulty, connect, run_jobs
from tests.integration.test_webhooks import XERO_KEY, sign, xero_body

pytestmark = pytest.mark.db

METRICS_TOKEN = "metrics-token-for-tests"
REQUEST_ID = "webhook-request-0001"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def sandbox(faulty_sandbox: tuple[object, LiveServer]) -> tuple[object, LiveServer]:
    """The Xero sandbox behind a fault injector (the app fixture talks to this one)."""
    return faulty_sandbox


def scrape(web: LiveServer) -> Samples:
    answer = requests.get(f"{web.url}/metrics",
                          headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10)
    assert answer.status_code == 200, answer.text[:300]
    assert answer.headers["Content-Type"].startswith("text/plain")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(answer.text)
            for sample in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples named `name` whose labels include `labels` (0 when none)."""
    wanted = set(labels.items())
    return sum(v for (n, sample_labels), v in samples.items()
               if n == name and wanted <= set(sample_labels))


@dataclass
class Run:
    before: Samples
    after: Samples
    org_id: int
    tenant_id: str
    logs: str


def demo_like_run(app, faulty: Faulty, clock: FakeClock) -> Run:  # type: ignore[no-untyped-def]
    """Connect, sync, a webhook, a day's run with one 429, the day spent, consent revoked."""
    from collect.book import calendar_for
    from jobs.tasks import daily_run, enqueue_sync
    from observability.logs import configure_logging
    from store import clock as app_clock
    from store.db import db
    from store.models import Invoice, Organisation

    app.config.update(METRICS_TOKEN=METRICS_TOKEN, XERO_WEBHOOK_KEY=XERO_KEY)
    logs = io.StringIO()
    configure_logging("json", "INFO", stream=logs)
    web = LiveServer(app)
    try:
        assert requests.get(f"{web.url}/metrics", timeout=10).status_code == 404  # no token
        before = scrape(web)

        clock.set(datetime(2026, 11, 24, 7, 0, tzinfo=UTC))  # before the 09:00 send time
        connected = connect(app, web)
        run_jobs(app)  # the first sync

        # The customer pays an invoice due later today; Xero says so by webhook.
        with app.app_context():
            due = db.session.scalars(select(Invoice).where(
                Invoice.org_id == connected.org_id, Invoice.status == "open",
                Invoice.next_action_at > clock(),
                Invoice.next_action_at < clock() + timedelta(hours=12))
                .order_by(Invoice.id)).first()
            assert due is not None, "the seeded books must have reminders due later today"
            paid = (due.provider_id, due.amount_due)
        faulty.state.pay_invoice(connected.tenant_id, *paid)  # type: ignore[attr-defined]
        body = xero_body(connected.tenant_id, paid[0], when="2026-11-24T08:00:00.123")
        answer = requests.post(f"{web.url}/webhooks/xero", data=body, timeout=10, headers={
            "x-xero-signature": sign(XERO_KEY, body), "Content-Type": "application/json",
            "X-Request-ID": REQUEST_ID})
        assert answer.status_code == 200 and answer.headers["X-Request-ID"] == REQUEST_ID
        run_jobs(app)  # the targeted sync

        # The day's run; the sandbox answers one invoice re-check with a 429.
        faulty.faults.add("rate_limited", method="GET", path=r"/Invoices/[0-9a-f-]{36}$")
        clock.set(datetime(2026, 11, 24, 9, 5, tzinfo=UTC))
        with app.app_context():
            org = db.session.get(Organisation, connected.org_id)
            db.session.expunge(org)
            daily_run(connected.org_id, calendar_for(org).today(app_clock.now()).isoformat())
        run_jobs(app)
        assert faulty.faults.count("rate_limited") == 1
        # The 429 cools the tenant down for Xero's Retry-After (1 s, on Redis's clock, which
        # every worker shares): the actions that met the cool-down were booked for after it.
        # Once it is over the workers' scheduler queues them, and they run.
        wait_out_cool_down(app, connected.tenant_id)
        run_booked_actions(app)

        # Run again, the tenant's day is spent (Xero's daily 429): the run waits, the owner
        # is told.
        faulty.faults.add("rate_limited", method="GET", path=r"/Invoices$", problem="Daily",
                          retry_after=60)
        with app.app_context():
            daily_run(connected.org_id, calendar_for(org).today(app_clock.now()).isoformat())
        assert faulty.faults.count("rate_limited") == 2

        # The owner removes the app in Xero: the next refresh is refused.
        for record in faulty.state.refresh_tokens.values():  # type: ignore[attr-defined]
            record.revoked = True
        faulty.state.expire_access_tokens()  # type: ignore[attr-defined]
        clock.advance(minutes=31)
        with app.app_context():
            enqueue_sync(connected.org_id)
        run_jobs(app)

        after = scrape(web)
    finally:
        web.stop()
    return Run(before, after, connected.org_id, connected.tenant_id, logs.getvalue())


def wait_out_cool_down(app, tenant_id: str) -> None:  # type: ignore[no-untyped-def]
    from redis import Redis

    key = f"dunwell:budget:xero:{tenant_id}:cooldown"  # connectors/ratelimit.RateBudget
    redis = Redis.from_url(app.config["REDIS_URL"])
    left = redis.pttl(key)
    if left > 0:
        time.sleep(left / 1000 + 0.05)
    assert redis.pttl(key) < 0


def run_booked_actions(app) -> None:  # type: ignore[no-untyped-def]
    """What RQ's scheduler does for the actions booked for later (only those: the next day's
    run, booked too, stays booked), then a worker runs them."""
    from redis import Redis
    from rq import Queue
    from rq.registry import ScheduledJobRegistry

    queue = Queue(app.config["RQ_QUEUE"], connection=Redis.from_url(app.config["REDIS_URL"]))
    registry = ScheduledJobRegistry(queue=queue)
    # None, when the machine was slow enough for the cool-down to end before they ran.
    booked = [job_id for job_id in registry.get_job_ids() if job_id.startswith("action-")]
    for job_id in booked:
        job = queue.fetch_job(job_id)
        registry.remove(job)
        queue.enqueue_job(job)
    run_jobs(app)


def moved(run: Run, name: str, **labels: str) -> float:
    return value(run.after, name, **labels) - value(run.before, name, **labels)


def test_metrics_move_with_a_demo_like_run(app, faulty, clock) -> None:  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import Action, Connection

    run = demo_like_run(app, faulty, clock)
    with app.app_context():
        done = dict(db.session.execute(select(Action.kind, func.count()).where(
            Action.status == "done").group_by(Action.kind)).all())
        assert db.session.scalars(select(Connection.status)).one() == "needs_reconnect"
    assert done.get("reminder"), "the day's run must have sent reminders"

    # Web requests by URL rule (never by path), with their latency.
    callback = next(rule.rule for rule in app.url_map.iter_rules()
                    if rule.endpoint == "connections.xero_callback")
    assert moved(run, "dunwell_http_requests_total", route=callback) == 1
    assert moved(run, "dunwell_http_request_duration_seconds_count", route="/webhooks/xero") == 1
    assert not [labels for (name, labels) in run.after
                if name == "dunwell_http_requests_total" and str(run.org_id) in dict(labels)
                .get("route", "").split("/")]

    # Jobs by task, their time in the queue and their duration.
    assert moved(run, "dunwell_jobs_total", task="sync_org", outcome="finished") == 1
    assert moved(run, "dunwell_jobs_total", task="sync_org", outcome="failed") == 1  # revoked
    assert moved(run, "dunwell_jobs_total", task="sync_webhook_changes", outcome="finished") == 1
    # The day's actions run in groups (jobs.tasks.execute_actions, GROUP_SIZE to a job): the
    # jobs counted carried every action done.
    from jobs.tasks import GROUP_SIZE

    groups = moved(run, "dunwell_jobs_total", task="execute_actions")
    assert groups >= 1
    assert moved(run, "dunwell_jobs_total", task="execute_action") + groups * GROUP_SIZE >= \
        sum(done.values())
    assert moved(run, "dunwell_job_duration_seconds_count", task="sync_org") == 2
    assert moved(run, "dunwell_job_wait_seconds_count", task="sync_org") == 2

    # Actions by kind and outcome: exactly those the ledger recorded as done.
    for kind, count in done.items():
        assert moved(run, "dunwell_actions_total", kind=kind, outcome="done") == count

    # Provider calls by operation and status: each 429 counted (the minute's and the day's); the
    # refusal of the revoked refresh token counted as a token refresh failure.
    assert moved(run, "dunwell_provider_calls_total", provider="xero", status="429") == 2
    assert moved(run, "dunwell_provider_calls_total", provider="xero",
                 operation="get_invoices", status="200") >= 1
    assert moved(run, "dunwell_provider_call_duration_seconds_count", provider="xero") >= \
        moved(run, "dunwell_provider_calls_total", provider="xero") > 0
    assert moved(run, "dunwell_token_refresh_failures_total", provider="xero",
                 kind="authorizationrevoked") == 1

    # Syncs (the full one reads every record), webhooks and their lag.
    assert moved(run, "dunwell_sync_duration_seconds_count", provider="xero", mode="full") == 1
    assert moved(run, "dunwell_sync_records_sum", provider="xero", mode="full") >= 200
    assert moved(run, "dunwell_webhook_deliveries_total", provider="xero", status="200") == 1
    assert moved(run, "dunwell_webhook_lag_seconds_count", provider="xero") == 1

    # Gauges read at scrape time: the queue, the budget (this tenant among the top), attention.
    assert value(run.after, "dunwell_scrape_source_up", source="redis") == 1
    assert value(run.after, "dunwell_scrape_source_up", source="database") == 1
    assert value(run.after, "dunwell_queue_jobs", state="scheduled") >= 1  # the next daily run
    assert value(run.after, "dunwell_queue_oldest_job_age_seconds") >= 0
    used = value(run.after, "dunwell_rate_budget_day_used_ratio", provider="xero",
                 tenant=run.tenant_id)
    assert 0 < used < 1
    assert value(run.after, "dunwell_rate_budget_tenants", provider="xero") == 1
    assert value(run.after, "dunwell_organisations_needing_attention",
                 reason="needs_reconnect") == 1
    assert value(run.after, "dunwell_organisations_needing_attention",
                 reason="daily_limit_spent") == 1
    assert value(run.before, "dunwell_organisations_needing_attention") == 0

    # No label carries an organisation's, an invoice's or a tenant's id, except the top-N gauge.
    for (name, labels) in run.after:
        if name != "dunwell_rate_budget_day_used_ratio":
            assert run.tenant_id not in dict(labels).values(), name
    assert all(not math.isnan(v) for v in run.after.values())


def secrets_of_the_run(app, state) -> set[str]:  # type: ignore[no-untyped-def]
    """Every token the sandbox issued, every secret the app holds, the owner's password."""
    tokens = {*state.access_tokens, *state.refresh_tokens, *state.codes}
    config = app.config
    held = {config["SECRET_KEY"], config["XERO_CLIENT_SECRET"], config["TOKEN_ENCRYPTION_KEYS"],
            config["XERO_WEBHOOK_KEY"], METRICS_TOKEN, PASSWORD}
    return {secret for secret in tokens | held if secret and len(secret) >= 8}


def test_the_logs_of_a_run_are_json_lines_with_ids_and_no_secret(  # type: ignore[no-untyped-def]
        app, faulty, clock) -> None:
    run = demo_like_run(app, faulty, clock)
    lines = run.logs.splitlines()
    assert len(lines) > 100
    records = [json.loads(line) for line in lines]  # each line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)

    # Ids where they apply: the webhook's request id reached the job it enqueued and that job's
    # lines; the actions' lines name their organisation, invoice and action.
    webhook_jobs = [r for r in records if str(r.get("job_id", "")).startswith("webhook-sync-")]
    assert webhook_jobs and all(r["request_id"] == REQUEST_ID for r in webhook_jobs)
    assert all(r["org_id"] == run.org_id for r in webhook_jobs)
    outcomes = [r for r in records
                if r["logger"] == "collect.ledger" and ": done (" in r["message"]]
    assert outcomes
    # (the day's run sends its actions in groups, action-group-<first id>-<count>-<digest>,
    # booked for later after a 429 as ...-at-<when>; one sent on its own runs as
    # action-<id>, or action-<id>-at-<when>)
    assert all(r["org_id"] == run.org_id and r["invoice_id"] and r["action_id"] and
               re.fullmatch(rf"action-{r['action_id']}(-at-\d+)?"
                            r"|action-group-\d+-\d+-[0-9a-f]+(-try-\d+)?(-at-\d+)?",
                            r["job_id"])
               for r in outcomes)
    assert all(r["job_id"] for r in records if "action_id" in r)
    assert any(r["logger"] == "app.webhooks.services" and r.get("request_id") == REQUEST_ID
               for r in records)

    # Never a secret, a token or an email address of the owner or of a customer.
    text = run.logs
    secrets = secrets_of_the_run(app, faulty.state)
    assert set(faulty.state.access_tokens) & secrets  # type: ignore[attr-defined]
    assert not [secret for secret in secrets if secret in text]
    contacts = faulty.state.contacts(run.tenant_id)  # type: ignore[attr-defined]
    customers = {c["EmailAddress"] for c in contacts if c.get("EmailAddress")}
    assert customers, "the demo's customers have email addresses"
    assert not [email for email in customers | {EMAIL} if email in text]
    # Nor their names: a log line names an invoice by its id and number, never its customer.
    names = {c["Name"] for c in contacts if len(c.get("Name", "")) >= 6}
    assert names and not [name for name in names if name in text]
