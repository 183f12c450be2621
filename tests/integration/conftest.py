from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests
from redis import Redis
from rq import Queue
from sqlalchemy import select

from sandboxes.faults import FaultInjector
from tests.conftest import FakeClock, LiveServer
from tests.integration import flows

EMAIL, PASSWORD = "owner@example.com", "correct horse battery"


def run_jobs(app) -> None:  # type: ignore[no-untyped-def]
    """A real RQ worker, in burst mode: runs every queued job, then returns."""
    from jobs.worker import AppWorker
    from store.db import db

    with app.app_context():
        redis = Redis.from_url(app.config["REDIS_URL"])
        queue = Queue(app.config["RQ_QUEUE"], connection=redis)
        AppWorker([queue], connection=redis).work(burst=True, with_scheduler=False)
        db.session.remove()


def expire_tokens_and_sync(app, state, clock, org_id: int) -> None:  # type: ignore[no-untyped-def]
    """Access tokens expire, Xero's 30-minute grace passes, and a worker syncs: it must refresh."""
    from jobs.tasks import enqueue_sync

    state.expire_access_tokens()
    clock.advance(minutes=31)
    with app.app_context():
        enqueue_sync(org_id)
    run_jobs(app)


def create_user(app, email: str = EMAIL, password: str = PASSWORD) -> None:  # type: ignore[no-untyped-def]
    from app.auth.views import hash_password
    from store.db import db
    from store.models import User

    with app.app_context():
        db.session.add(User(email=email, password_hash=hash_password(password)))
        db.session.commit()


@dataclass
class Connected:
    web: LiveServer
    http: requests.Session
    org_id: int
    tenant_id: str


@pytest.fixture
def web(app) -> Iterator[LiveServer]:  # type: ignore[no-untyped-def]
    server = LiveServer(app)
    yield server
    server.stop()


def connect(app, web: LiveServer, provider: str = "xero",  # type: ignore[no-untyped-def]
            live: bool = True) -> Connected:
    """Sign up, sign in and connect the provider sandbox's first organisation. A new
    organisation starts in review; unless `live` is False the owner then presses Go live
    (charging lateness from before go-live too), as the tests written before review did."""
    from store.db import db
    from store.models import Connection

    create_user(app)
    http = requests.Session()
    flows.sign_in(http, web.url, EMAIL, PASSWORD)
    landed = flows.answer_consent(http, flows.start_connect(http, web.url, provider), "allow")
    assert landed.status_code == 200, landed.text[:300]
    with app.app_context():
        connection = db.session.scalars(select(Connection)).one()
        connected = Connected(web, http, connection.org_id, connection.tenant_id)
    if live:
        flows.go_live(http, web.url, connected.org_id)
    return connected


@pytest.fixture
def connected(app, web) -> Connected:  # type: ignore[no-untyped-def]
    """Signed in and connected to the Xero sandbox's first organisation; jobs not yet run."""
    return connect(app, web)


@dataclass
class Faulty:
    state: object
    faults: FaultInjector


@pytest.fixture
def faulty(clock: FakeClock) -> Faulty:
    """The Xero sandbox with its demo books, behind a fault injector."""
    from sandboxes.xero import SandboxConfig, XeroSandbox, create_app

    state = XeroSandbox(SandboxConfig(clock=clock, per_minute_limit=100_000))
    state.seed_demo(clock().date())
    return Faulty(state, FaultInjector(create_app(state), "xero"))


@pytest.fixture
def faulty_sandbox(faulty: Faulty) -> Iterator[tuple[object, LiveServer]]:
    """`faulty` served: a module whose `sandbox` fixture returns this has the app talk to it."""
    server = LiveServer(faulty.faults)
    yield faulty.state, server
    server.stop()
