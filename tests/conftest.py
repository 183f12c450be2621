"""Real parts for tests: SQLite or PostgreSQL (DUNWELL_TEST_DATABASE), Redis, the sandbox."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from redis import Redis
from sqlalchemy import create_engine, text
from werkzeug.serving import make_server

# The providers' official API descriptions, with their licences, that the sandboxes are held to.
SPECS_DIR = Path(__file__).resolve().parents[1] / "sandboxes" / "specs"

TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


class FakeClock:
    """A settable clock shared by the app and the sandbox."""

    def __init__(self, start: datetime) -> None:
        self.moment = start

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, **delta: float) -> None:
        self.moment += timedelta(**delta)

    def set(self, moment: datetime) -> None:
        self.moment = moment


class LiveServer:
    def __init__(self, wsgi_app) -> None:  # type: ignore[no-untyped-def]
        self.server = make_server("127.0.0.1", 0, wsgi_app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()


def backend() -> str:
    return os.environ.get("DUNWELL_TEST_DATABASE", "sqlite")


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """A brand-new, empty database for one test."""
    if backend() == "sqlite":
        yield f"sqlite:///{tmp_path / 'dunwell.sqlite3'}"
        return
    admin_url = os.environ.get(
        "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    name = f"dunwell_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def redis_url() -> Iterator[str]:
    client = Redis.from_url(TEST_REDIS_URL)
    client.flushdb()
    yield TEST_REDIS_URL
    client.flushdb()
    client.close()


@pytest.fixture
def clock() -> FakeClock:
    # A Tuesday, 10:00 in London: a business day inside the default send window.
    return FakeClock(datetime(2026, 11, 24, 10, 0, tzinfo=UTC))


@pytest.fixture
def sandbox(clock: FakeClock) -> Iterator[tuple[object, LiveServer]]:
    from connectors.sandbox.xero import SandboxConfig, XeroSandbox, create_app

    state = XeroSandbox(SandboxConfig(clock=clock, per_minute_limit=100_000))
    state.seed_demo(clock().date())
    server = LiveServer(create_app(state))
    yield state, server
    server.stop()


@pytest.fixture
def qbo_sandbox(clock: FakeClock) -> Iterator[tuple[object, LiveServer]]:
    from connectors.sandbox.quickbooks import QuickBooksSandbox, SandboxConfig, create_app

    state = QuickBooksSandbox(SandboxConfig(clock=clock, per_minute_limit=100_000))
    state.seed_demo(clock().date())
    server = LiveServer(create_app(state))
    yield state, server
    server.stop()


def app_settings(database_url: str, redis_url: str, clock: FakeClock,
                 sandbox_url: str, keys: str, qbo_url: str = "http://127.0.0.1:9"
                 ) -> dict[str, object]:
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "REDIS_URL": redis_url,
        "TOKEN_ENCRYPTION_KEYS": keys,
        "SESSION_COOKIE_SECURE": False,
        "OUTBOUND_ALLOW_LOOPBACK": True,  # receivers in tests listen on 127.0.0.1
        "CLOCK": clock,
        "RQ_QUEUE": "dunwell-test",
        # The test clock stands still, so a minute never ends: budgets are tested on their own.
        "XERO_CALLS_PER_MINUTE": 100_000,
        "XERO_APP_CALLS_PER_MINUTE": 100_000,
        "XERO_CLIENT_ID": "dunwell-demo",
        "XERO_CLIENT_SECRET": "dunwell-demo-secret",
        "XERO_AUTHORIZE_URL": f"{sandbox_url}/identity/connect/authorize",
        "XERO_TOKEN_URL": f"{sandbox_url}/connect/token",
        "XERO_REVOKE_URL": f"{sandbox_url}/connect/revocation",
        "XERO_API_URL": f"{sandbox_url}/api.xro/2.0",
        "XERO_CONNECTIONS_URL": f"{sandbox_url}/connections",
        "QUICKBOOKS_CLIENT_ID": "dunwell-demo",
        "QUICKBOOKS_CLIENT_SECRET": "dunwell-demo-secret",
        "QUICKBOOKS_DISCOVERY_URL": f"{qbo_url}/.well-known/openid_configuration",
        "QUICKBOOKS_API_URL": f"{qbo_url}/v3",
        "QUICKBOOKS_CALLS_PER_MINUTE": 100_000,
    }


@pytest.fixture
def encryption_keys() -> str:
    return Fernet.generate_key().decode()


@pytest.fixture
def app(database_url, redis_url, clock, sandbox, qbo_sandbox,  # type: ignore[no-untyped-def]
        encryption_keys):
    from app import create_app
    from migrations import upgrade

    upgrade(url=database_url)
    application = create_app(app_settings(database_url, redis_url, clock, sandbox[1].url,
                                          encryption_keys, qbo_sandbox[1].url))
    yield application
    with application.app_context():
        from app.extensions import db

        db.session.remove()
        db.engine.dispose()


def now_utc() -> datetime:
    return datetime.now(UTC)
