"""Jobs never read or write across organisations. Organisation A and organisation B are two
tenants of the same Xero sandbox, connected by two different people, each with synced books,
sent reminders and pending webhook events. Every RQ job of `jobs/` that takes an organisation
id is run for A (the ones found by looking at the package, so a job added later is run too),
and B's rows in every table stay exactly as they were, and the sandbox counts no call for B's
tenant. An action id is acted on within its own organisation only, and not at all once that
organisation is disconnected."""

from __future__ import annotations

import hashlib
import importlib
import inspect
import pkgutil
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urljoin

import pytest
import requests
from sqlalchemy import func, select, text

from tests.integration import flows
from tests.integration.conftest import PASSWORD, create_user, run_jobs

pytestmark = pytest.mark.db

B_OWNER = "b-owner@example.com"
B_TENANT_NAME = "Fjellbekk Design AS"
# Jobs that need more than the organisation id: how to call them for A.
EXTRA_ARGUMENTS: dict[str, Callable[[Any], tuple[Any, ...]]] = {
    "daily_run": lambda world: (world.a_local_day,),
    "reconcile_org": lambda world: (world.a_local_day,),
}
# Run after every other job, once A is disconnected with its grace over: they delete A's
# synced data, which is what they are for.
LAST = ("enqueue_purge", "purge_organisation")


@dataclass
class World:
    a: int
    b: int
    a_tenant: str
    b_tenant: str
    b_grant: int
    b_http: requests.Session
    a_local_day: str = ""


def _connect_tenant(app, base: str, email: str, tenant_name: str  # type: ignore[no-untyped-def]
                    ) -> requests.Session:
    """Another person signs up and connects one named tenant of the sandbox."""
    create_user(app, email, PASSWORD)
    http = requests.Session()
    flows.sign_in(http, base, email, PASSWORD)
    consent = flows.start_connect(http, base, "xero")
    form = next(f for f in flows.forms_of(consent.text) if f["method"] == "post")
    data: list[tuple[str, str]] = []
    for field in form["inputs"]:
        name, kind = field.get("name"), (field.get("type") or "text").lower()
        if not name or name == "decision" or kind in ("submit", "button"):
            continue
        if kind == "checkbox":
            continue  # ticked below: only the named tenant
        data.append((name, field.get("value") or ""))
    boxes = re.findall(r'name="tenant" value="([^"]+)"> ([^<]+?) <small>',
                             consent.text)
    [chosen] = [value for value, label in boxes if label == tenant_name]
    data += [("tenant", chosen), ("decision", "allow")]
    landed = http.post(urljoin(consent.url, form["action"] or consent.url), data=data)
    assert landed.status_code == 200, landed.text[:300]
    # A new organisation starts in review: its owner goes live, as connect() does for A.
    flows.go_live(http, base, int(re.search(r"/orgs/(\d+)", landed.url).group(1)))
    return http


def _rows_of(app, org_id: int, grant_id: int | None) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """A hash per table of one organisation's rows: every table with an org_id, its row of
    organisations, its grant (the tokens), and whole tables that belong to no organisation."""
    from store.db import db

    found: dict[str, str] = {}
    with app.app_context():
        for table in db.metadata.sorted_tables:
            query = f'SELECT * FROM "{table.name}"'
            if "org_id" in table.c:
                query += f" WHERE org_id = {int(org_id)}"
            elif table.name == "organisations":
                query += f" WHERE id = {int(org_id)}"
            elif table.name == "grants":
                query += f" WHERE id = {int(grant_id or 0)}"
            rows = sorted(str(tuple(r)) for r in db.session.execute(text(query)))
            found[table.name] = f"{len(rows)}:" + hashlib.sha256(
                "\n".join(rows).encode()).hexdigest()
        db.session.remove()
    return found


def _pending_webhook_event(app, org_id: int, tenant_id: str, state) -> str:  # type: ignore[no-untyped-def]
    """An invoice paid in the books and the webhook event that says so, not yet applied."""
    from store import clock
    from store.db import db
    from store.models import Invoice, WebhookEvent

    with app.app_context():
        invoice = db.session.scalars(select(Invoice).where(
            Invoice.org_id == org_id, Invoice.status == "open",
            Invoice.amount_due > Decimal("2")).order_by(Invoice.id)).first()
        assert invoice is not None
        state.pay_invoice(tenant_id, invoice.provider_id, Decimal("1.00"))
        db.session.add(WebhookEvent(
            provider="xero", tenant_id=tenant_id, event_key=uuid.uuid4().hex,
            entity="invoice", entity_id=invoice.provider_id, kind="INVOICE.UPDATE",
            occurred_at=clock.now(), received_at=clock.now(), org_id=org_id))
        db.session.commit()
        provider_id = invoice.provider_id
        db.session.remove()
    return provider_id


def _world(app, connected, sandbox) -> World:  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import Connection

    state, _ = sandbox
    b_http = _connect_tenant(app, connected.web.url, B_OWNER, B_TENANT_NAME)
    run_jobs(app)  # both books synced, planned, reminders sent
    with app.app_context():
        b_connection = db.session.scalars(select(Connection).where(
            Connection.org_id != connected.org_id)).one()
        world = World(a=connected.org_id, b=b_connection.org_id, a_tenant=connected.tenant_id,
                      b_tenant=b_connection.tenant_id, b_grant=b_connection.grant_id,
                      b_http=b_http)
        a_grant = db.session.scalars(select(Connection.grant_id).where(
            Connection.org_id == world.a)).one()
        db.session.remove()
    assert world.a_tenant != world.b_tenant and a_grant != world.b_grant
    for org_id, tenant in ((world.a, world.a_tenant), (world.b, world.b_tenant)):
        _pending_webhook_event(app, org_id, tenant, state)
    return world


def org_jobs() -> dict[str, Callable[..., Any]]:
    """Every public function of every module in jobs/ whose first parameter is org_id."""
    import jobs

    found: dict[str, Callable[..., Any]] = {}
    for info in pkgutil.iter_modules(jobs.__path__):
        module = importlib.import_module(f"jobs.{info.name}")
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if function.__module__ != module.__name__ or name.startswith("_"):
                continue
            parameters = list(inspect.signature(function).parameters)
            if parameters[:1] == ["org_id"]:
                found[f"{info.name}.{name}"] = function
    return found


def _arguments(name: str, function: Callable[..., Any], world: World) -> tuple[Any, ...]:
    short = name.split(".")[-1]
    if short in EXTRA_ARGUMENTS:
        return (world.a, *EXTRA_ARGUMENTS[short](world))
    needed = [p for p in list(inspect.signature(function).parameters.values())[1:]
              if p.default is inspect.Parameter.empty]
    assert not needed, (
        f"jobs: {name} needs {', '.join(p.name for p in needed)} as well as the organisation "
        "id; say how to call it in EXTRA_ARGUMENTS of tests/security/test_jobs_isolation.py")
    return (world.a,)


def test_every_job_run_for_one_organisation_leaves_the_other_untouched(
        app, connected, sandbox, clock) -> None:  # type: ignore[no-untyped-def]
    from collect.book import calendar_for
    from store.db import db
    from store.models import Connection, Invoice, Organisation, SyncRun, WebhookEvent

    state, _ = sandbox
    world = _world(app, connected, sandbox)
    clock.advance(days=8)  # the next steps of the ladder are due; every access token expired
    with app.app_context():
        world.a_local_day = calendar_for(db.session.get(Organisation, world.a)).today(
            clock()).isoformat()
        db.session.remove()
    jobs = org_jobs()
    assert {"tasks.sync_org", "tasks.plan_org", "tasks.plan_statements", "tasks.daily_run",
            "tasks.sync_webhook_changes", "tasks.reconcile_org",
            "fee_batches.run_for_org"} <= set(jobs)
    b_before = _rows_of(app, world.b, world.b_grant)
    b_calls, a_calls = state.calls(world.b_tenant), state.calls(world.a_tenant)

    def run(names: list[str]) -> None:
        for name in names:
            with app.app_context():
                jobs[name](*_arguments(name, jobs[name], world))
                db.session.remove()
        run_jobs(app)  # and whatever they queued, by a real worker

    first = sorted(n for n in jobs if n.split(".")[-1] not in LAST)
    run(first)
    assert _rows_of(app, world.b, world.b_grant) == b_before
    assert state.calls(world.b_tenant) == b_calls
    # The jobs did work for A: synced (its own tenant called), applied its webhook event.
    assert state.calls(world.a_tenant) > a_calls
    with app.app_context():
        assert db.session.scalar(select(SyncRun.id).where(
            SyncRun.org_id == world.a, SyncRun.status == "done",
            SyncRun.started_at >= clock() - timedelta(minutes=5))) is not None
        [a_event] = db.session.scalars(select(WebhookEvent).where(
            WebhookEvent.org_id == world.a)).all()
        assert a_event.processed_at is not None
        [b_event] = db.session.scalars(select(WebhookEvent).where(
            WebhookEvent.org_id == world.b)).all()
        assert b_event.processed_at is None  # B's stays B's, for B's own job
        db.session.remove()

    # A disconnects and its grace ends: the jobs that delete its synced data delete A's only.
    with app.app_context():
        connection = db.session.scalars(select(Connection).where(
            Connection.org_id == world.a)).one()
        connection.status = "disconnected"
        connection.purge_after = clock() - timedelta(minutes=1)
        db.session.commit()
        db.session.remove()
    last = sorted(n for n in jobs if n.split(".")[-1] in LAST)
    run(last)
    assert _rows_of(app, world.b, world.b_grant) == b_before
    assert state.calls(world.b_tenant) == b_calls
    if "retention.purge_organisation" in last:
        with app.app_context():
            assert db.session.scalar(select(func.count()).select_from(Invoice).where(
                Invoice.org_id == world.a)) == 0
            db.session.remove()


def _planned_actions_of(app, org_id: int, now) -> list[int]:  # type: ignore[no-untyped-def]
    """What is due for the organisation now, planned into the ledger (not yet queued)."""
    from collect import plan
    from store.db import db
    from store.models import Organisation

    with app.app_context():
        actions = plan.plan_org(db.session, db.session.get(Organisation, org_id), now)
        db.session.commit()
        ids = [a.id for a in actions if a.kind == "reminder"]
        db.session.remove()
    return ids


def test_an_action_is_executed_within_its_own_organisation_and_not_once_it_is_disconnected(
        app, connected, sandbox, clock) -> None:  # type: ignore[no-untyped-def]
    from jobs.tasks import execute_action
    from store.db import db
    from store.models import Action, Connection

    state, _ = sandbox
    world = _world(app, connected, sandbox)
    clock.advance(days=8)
    b_actions = _planned_actions_of(app, world.b, clock())
    assert len(b_actions) >= 2, "the seeded books have reminders due a week on"
    first, second = b_actions[:2]

    # B's action id handed to the job (the id is all a job is given): it acts in B's books
    # with B's connection, and A is not read or written.
    a_before = _rows_of(app, world.a, None)
    a_calls, b_calls = state.calls(world.a_tenant), state.calls(world.b_tenant)
    b_history = len(state.history(world.b_tenant))
    with app.app_context():
        assert execute_action(first) == "done"
        db.session.remove()
    assert _rows_of(app, world.a, None) == a_before
    assert state.calls(world.a_tenant) == a_calls
    assert state.calls(world.b_tenant) > b_calls
    assert len(state.history(world.b_tenant)) > b_history  # the note went into B's books

    # B disconnects (its owner presses Disconnect): B's planned action no longer runs.
    page = world.b_http.get(f"{connected.web.url}/orgs/{world.b}")
    gone = world.b_http.post(f"{connected.web.url}/orgs/{world.b}/disconnect",
                             data={"csrf_token": flows.csrf_token(page.text)},
                             allow_redirects=False)
    assert gone.status_code == 302, gone.text[:300]
    with app.app_context():
        assert db.session.scalars(select(Connection.status).where(
            Connection.org_id == world.b)).one() == "disconnected"
        db.session.remove()
    a_before = _rows_of(app, world.a, None)
    calls = state.calls()
    with app.app_context():
        assert execute_action(second) == "skipped"
        action = db.session.get(Action, second)
        assert action.status == "skipped" and action.org_id == world.b
        db.session.remove()
    assert state.calls() == calls  # no provider call at all, for B or anyone
    assert _rows_of(app, world.a, None) == a_before
